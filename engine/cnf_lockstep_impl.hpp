// Lockstep solves of many samples (Cnf::forward_lockstep, reverse_lockstep):
// ode::integrate_batch keeps every sample's own t, step size and error
// control, and asks for every still-active sample's stage at once; here that
// request becomes one stacked evaluation of the field (VectorField's forward
// over G graphs), so each layer's products run over every sample's rows.
//
// Per sample the arithmetic is that of the sample alone: the stacked field is
// bit for bit the single one, the exact trace adds its diagonal entries in the
// same order as exact_trace(), Hutchinson's sums run in index order
// (in_order_dot), and the solver is the per-sample dopri5 of ode/rk_step.
// Definitions of Cnf's members (cnf.hpp); compiled in cnf_instances.cpp.
#pragma once

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/cnf.hpp"
#include "engine/cnf_forward_impl.hpp"

namespace enf {

template <class Field>
void Cnf<Field>::augmented_stack(const T* params, const ode::BatchEval& ev, const std::vector<int>& n,
                                 const std::vector<std::vector<double>>& eps, Scratch& s) const {
  const int C = field_.channels(), G = int(ev.active.size());
  s.sizes.resize(G);
  s.offsets.resize(G + 1);
  s.times.resize(G);
  s.offsets[0] = 0;
  int widest = 0;
  for (int g = 0; g < G; ++g) {
    s.sizes[g] = n[ev.active[g]];
    s.offsets[g + 1] = s.offsets[g] + s.sizes[g] * C;
    s.times[g] = T(ev.t[g]);
    widest = std::max(widest, s.sizes[g] * C);
  }
  const int total = s.offsets[G];
  s.z.resize(total);
  s.f.resize(total);
  for (int g = 0; g < G; ++g)
    for (int k = 0; k < s.sizes[g] * C; ++k) s.z[s.offsets[g] + k] = T(ev.y[g][k]);
  const bool reg = opt_.ode_regularization > 0;
  auto load_noise_stack = [&] {
    s.V.resize(1, total);
    for (int g = 0; g < G; ++g) {
      const std::vector<double>& e = eps[ev.active[g]];
      for (int k = 0; k < s.sizes[g] * C; ++k) s.V(0, s.offsets[g] + k) = T(e[k]);
    }
  };
  std::vector<T>& tr = s.traces;  // per sample, accumulated in T as exact_trace() does
  tr.assign(G, T(0));
  std::vector<double>& hutch = s.sums;
  hutch.assign(2 * std::size_t(G), 0.0);  // εᵀJε and ‖Jε‖² per sample
  if (opt_.trace == TraceEstimator::Exact) {
    // Direction k of the stack is e_k in every sample that has a k-th entry:
    // J is block diagonal, so each sample reads its own column k. Chunks of
    // equal size as exact_trace() takes them, by the widest sample.
    const int K = trace_chunk_size(widest);
    for (int k0 = 0; k0 < widest; k0 += K) {
      s.V.setZero(K, total);
      for (int g = 0; g < G; ++g)
        for (int k = 0; k < K && k0 + k < s.sizes[g] * C; ++k) s.V(k, s.offsets[g] + k0 + k) = T(1);
      field_.forward(params, s.z.data(), s.sizes, s.times, &s.V, s.ws, s.f.data(), &s.JV);
      for (int g = 0; g < G; ++g)
        for (int k = 0; k < K && k0 + k < s.sizes[g] * C; ++k) tr[g] += s.JV(k, s.offsets[g] + k0 + k);
    }
    if (reg) {
      load_noise_stack();
      s.f_extra.resize(total);
      field_.forward(params, s.z.data(), s.sizes, s.times, &s.V, s.ws, s.f_extra.data(), &s.JV);
      for (int g = 0; g < G; ++g) {
        const T* jv = s.JV.data() + s.offsets[g];
        hutch[2 * g + 1] = in_order_dot(jv, jv, s.sizes[g] * C);
      }
    }
  } else {
    load_noise_stack();
    field_.forward(params, s.z.data(), s.sizes, s.times, &s.V, s.ws, s.f.data(), &s.JV);
    for (int g = 0; g < G; ++g) {
      const T* jv = s.JV.data() + s.offsets[g];
      hutch[2 * g] = in_order_dot(s.V.data() + s.offsets[g], jv, s.sizes[g] * C);
      hutch[2 * g + 1] = in_order_dot(jv, jv, s.sizes[g] * C);
    }
  }
  for (int g = 0; g < G; ++g) {
    const int S = s.sizes[g] * C;
    double* dy = ev.dydt[g];
    double f2 = 0;
    for (int k = 0; k < S; ++k) {
      dy[k] = double(s.f[s.offsets[g] + k]);
      f2 += dy[k] * dy[k];
    }
    dy[S] = opt_.trace == TraceEstimator::Exact ? double(tr[g]) : hutch[2 * g];
    dy[S + 1] = reg ? f2 : 0.0;
    dy[S + 2] = reg ? hutch[2 * g + 1] : 0.0;
  }
}

template <class Field>
std::vector<ForwardResult> Cnf<Field>::forward_lockstep(const T* params, const std::vector<std::vector<double>>& x,
                                                        const std::vector<int>& n,
                                                        const std::vector<std::vector<double>>& eps,
                                                        Scratch& s) const {
  const int B = int(x.size()), C = field_.channels();
  if (int(n.size()) != B || (opt_.needs_noise() && int(eps.size()) != B))
    throw std::invalid_argument("lockstep forward: " + std::to_string(B) + " states, " + std::to_string(n.size()) +
                                " sizes and " + std::to_string(eps.size()) + " noise vectors");
  std::vector<std::vector<double>> y(B);
  for (int b = 0; b < B; ++b) {
    check_state(x[b], n[b] * C, "forward");
    if (opt_.needs_noise() && int(eps[b].size()) != n[b] * C) throw std::invalid_argument("noise ε has the wrong size");
    y[b].assign(std::size_t(n[b]) * C + 3, 0.0);
    std::copy(x[b].begin(), x[b].end(), y[b].begin());
  }
  const WeightPin<Field> pin(field_, params, s.ws);
  ode::BatchSolveResult solved = ode::integrate_batch(
      [&](const ode::BatchEval& ev) { augmented_stack(params, ev, n, eps, s); }, y, 0.0, 1.0, opt_.solver);
  std::vector<ForwardResult> out;
  out.reserve(B);
  for (int b = 0; b < B; ++b) out.push_back(finish_forward(y[b], n[b], std::move(solved.samples[b])));
  return out;
}

template <class Field>
std::vector<ode::SolveResult> Cnf<Field>::reverse_lockstep(const T* params, std::vector<std::vector<double>>& z,
                                                           const std::vector<int>& n, Scratch& s) const {
  const int B = int(z.size()), C = field_.channels();
  if (int(n.size()) != B)
    throw std::invalid_argument("lockstep reverse: " + std::to_string(B) + " states and " + std::to_string(n.size()) +
                                " sizes");
  for (int b = 0; b < B; ++b) check_state(z[b], n[b] * C, "reverse");
  const WeightPin<Field> pin(field_, params, s.ws);
  ode::BatchSolveResult solved = ode::integrate_batch(
      [&](const ode::BatchEval& ev) {
        const int G = int(ev.active.size());
        s.sizes.resize(G);
        s.offsets.resize(G + 1);
        s.times.resize(G);
        s.offsets[0] = 0;
        for (int g = 0; g < G; ++g) {
          s.sizes[g] = n[ev.active[g]];
          s.offsets[g + 1] = s.offsets[g] + s.sizes[g] * C;
          s.times[g] = T(ev.t[g]);
        }
        s.z.resize(s.offsets[G]);
        s.f.resize(s.offsets[G]);
        for (int g = 0; g < G; ++g)
          for (int k = 0; k < s.sizes[g] * C; ++k) s.z[s.offsets[g] + k] = T(ev.y[g][k]);
        field_.forward(params, s.z.data(), s.sizes, s.times, nullptr, s.ws, s.f.data(), nullptr);
        for (int g = 0; g < G; ++g)
          for (int k = 0; k < s.sizes[g] * C; ++k) ev.dydt[g][k] = double(s.f[s.offsets[g] + k]);
      },
      z, 1.0, 0.0, opt_.solver);
  return std::move(solved.samples);
}

}  // namespace enf
