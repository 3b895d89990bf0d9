// The forward solve of the augmented state [z, ℓ, K, R] (data → latent: the
// log-likelihood) and the reverse solve of z alone (latent → data: sampling).
// Definitions of Cnf's members (cnf.hpp); compiled in cnf_instances.cpp.
#pragma once

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/cnf.hpp"
#include "ode/batch_solver.hpp"

namespace enf {

template <class Field>
ForwardResult Cnf<Field>::forward(const T* params, const std::vector<double>& x, int n, const std::vector<double>& eps,
                                  Scratch& s) const {
  return forward_recorded(params, x, n, eps, s, ode::StepObserver{});
}

template <class Field>
ode::SolveResult Cnf<Field>::reverse(const T* params, std::vector<double>& z, int n, Scratch& s) const {
  const int S = n * field_.channels();
  check_state(z, S, "reverse");
  const ForwardOnlyScope scope(s.ws);  // no reverse pass follows these evaluations
  return ode::integrate(
      [&](const std::vector<double>& yy, std::vector<double>& dy, double t) {
        to_scalar(yy.data(), S, s.z);
        s.f.resize(S);
        field_.forward(params, s.z.data(), n, T(t), nullptr, s.ws, s.f.data(), nullptr);
        for (int k = 0; k < S; ++k) dy[k] = double(s.f[k]);
      },
      z, 1.0, 0.0, opt_.solver);
}

template <class Field>
ode::BatchSolveResult Cnf<Field>::reverse_lockstep(const T* params, std::vector<std::vector<double>>& z, int n,
                                                   Scratch& s) const {
  const int S = n * field_.channels();
  for (const auto& zb : z) check_state(zb, S, "reverse");
  const ForwardOnlyScope scope(s.ws);  // no reverse pass follows these evaluations
  std::vector<int> sizes;
  std::vector<T> times;
  return ode::integrate_batch(
      [&](const ode::BatchEval& e) {
        const int m = int(e.active.size());
        sizes.assign(m, n);
        times.resize(m);
        s.z.resize(std::size_t(m) * S);
        s.f.resize(std::size_t(m) * S);
        for (int k = 0; k < m; ++k) {
          for (int i = 0; i < S; ++i) s.z[std::size_t(k) * S + i] = T(e.y[k][i]);
          times[k] = T(e.t[k]);
        }
        field_.forward_stacked(params, s.z.data(), sizes, times.data(), nullptr, s.ws, s.f.data(), nullptr);
        for (int k = 0; k < m; ++k)
          for (int i = 0; i < S; ++i) e.dydt[k][i] = double(s.f[std::size_t(k) * S + i]);
      },
      z, 1.0, 0.0, opt_.solver);
}

template <class Field>
ForwardResult Cnf<Field>::forward_recorded(const T* params, const std::vector<double>& x, int n,
                                           const std::vector<double>& eps, Scratch& s,
                                           const ode::StepObserver& obs) const {
  const int S = n * field_.channels();
  check_state(x, S, "forward");
  load_noise(eps, S, s);
  const ForwardOnlyScope scope(s.ws);  // no reverse pass follows these evaluations
  std::vector<double> y(S + 3, 0.0);
  std::copy(x.begin(), x.end(), y.begin());
  const ode::SolveResult solve = ode::integrate(
      [&](const std::vector<double>& yy, std::vector<double>& dy, double t) { augmented(params, yy, dy, n, t, s); }, y,
      0.0, 1.0, opt_.solver, obs);
  return forward_result(y, n, solve);
}

template <class Field>
ForwardResult Cnf<Field>::forward_result(const std::vector<double>& y, int n, ode::SolveResult solve) const {
  const int S = n * field_.channels();
  ForwardResult r;
  r.solve = std::move(solve);
  r.z.assign(y.begin(), y.begin() + S);
  r.delta_logp = y[S];
  r.kinetic = y[S + 1];
  r.frobenius = y[S + 2];
  const LogPrior pz = log_prior_parts(r.z, n, field_.dim(), field_.channels());
  r.log_pz_x = pz.positions;
  r.log_pz_h = pz.features;
  r.log_pz = pz.positions + pz.features;
  r.log_px = r.log_pz + r.delta_logp;
  return r;
}

template <class Field>
std::vector<ForwardResult> Cnf<Field>::forward_lockstep(const T* params, const std::vector<std::vector<double>>& x,
                                                        int n, const std::vector<std::vector<double>>& eps,
                                                        Scratch& s, long* evaluations) const {
  const int S = n * field_.channels();
  const bool exact = opt_.trace == TraceEstimator::Exact, reg = opt_.ode_regularization > 0;
  const std::size_t B = x.size();
  if (opt_.needs_noise() && eps.size() != B) throw std::invalid_argument("noise ε: one vector per structure needed");
  std::vector<std::vector<double>> y(B);
  for (std::size_t b = 0; b < B; ++b) {
    check_state(x[b], S, "forward");
    if (opt_.needs_noise() && int(eps[b].size()) != S) throw std::invalid_argument("noise ε has the wrong size");
    y[b].assign(S + 3, 0.0);
    std::copy(x[b].begin(), x[b].end(), y[b].begin());
  }
  const ForwardOnlyScope scope(s.ws);  // no reverse pass follows these evaluations
  // Chunks of the exact trace as exact_trace() takes them (egnn/trace.hpp).
  const int K = exact ? trace_chunk_size(S, n) : 0;
  std::vector<int> sizes;
  std::vector<T> times, tr;
  const ode::BatchSolveResult solved = ode::integrate_batch(
      [&](const ode::BatchEval& e) {
        const int m = int(e.active.size());
        const Eigen::Index mS = Eigen::Index(m) * S;
        sizes.assign(m, n);
        times.resize(m);
        s.z.resize(mS);
        s.f.resize(mS);
        for (int j = 0; j < m; ++j) {
          for (int i = 0; i < S; ++i) s.z[std::size_t(j) * S + i] = T(e.y[j][i]);
          times[j] = T(e.t[j]);
        }
        tr.assign(m, T(0));
        if (exact) {
          const int C = field_.channels();
          s.trace.nodes.resize(std::size_t(K) * m);
          for (int k0 = 0; k0 < S; k0 += K) {
            const int real = std::min(K, S - k0);
            s.trace.V.setZero(K, mS);
            for (int j = 0; j < m; ++j)
              for (int k = 0; k < real; ++k) s.trace.V(k, Eigen::Index(j) * S + k0 + k) = T(1);
            // Direction k is node (k0 + k) / C's in every structure: the first
            // layer's tangents on those nodes' edges alone (as exact_trace()
            // does for one; padding directions are zero: any node will do).
            for (int k = 0; k < K; ++k)
              for (int j = 0; j < m; ++j) s.trace.nodes[std::size_t(k) * m + j] = j * n + std::min(k0 + k, S - 1) / C;
            field_.forward_stacked(params, s.z.data(), sizes, times.data(), &s.trace.V, s.ws, s.f.data(),
                                   &s.trace.JV, s.trace.nodes.data(), m);
            for (int j = 0; j < m; ++j)
              for (int k = 0; k < real; ++k) tr[j] += s.trace.JV(k, Eigen::Index(j) * S + k0 + k);
          }
        }
        if (!exact || reg) {
          // ε of every structure in one tangent row: J·ε by blocks.
          s.V.resize(1, mS);
          for (int j = 0; j < m; ++j)
            for (int i = 0; i < S; ++i) s.V(0, Eigen::Index(j) * S + i) = T(eps[e.active[j]][i]);
          s.f_extra.resize(mS);
          field_.forward_stacked(params, s.z.data(), sizes, times.data(), &s.V, s.ws,
                                 exact ? s.f_extra.data() : s.f.data(), &s.JV);
        }
        for (int j = 0; j < m; ++j) {
          const Eigen::Index o = Eigen::Index(j) * S;
          double* dy = e.dydt[j];
          double f2 = 0;
          for (int i = 0; i < S; ++i) {
            dy[i] = double(s.f[o + i]);
            f2 += dy[i] * dy[i];
          }
          dy[S] = exact ? double(tr[j]) : double(s.V.row(0).segment(o, S).dot(s.JV.row(0).segment(o, S)));
          dy[S + 1] = reg ? f2 : 0.0;
          dy[S + 2] = reg ? double(s.JV.row(0).segment(o, S).squaredNorm()) : 0.0;
        }
      },
      y, 0.0, 1.0, opt_.solver);
  if (evaluations) *evaluations = solved.evaluations;
  std::vector<ForwardResult> out;
  out.reserve(B);
  for (std::size_t b = 0; b < B; ++b) out.push_back(forward_result(y[b], n, solved.samples[b]));
  return out;
}

template <class Field>
void Cnf<Field>::load_noise(const std::vector<double>& eps, int S, Scratch& s) const {
  if (!opt_.needs_noise()) return;
  if (int(eps.size()) != S) throw std::invalid_argument("noise ε has the wrong size");
  s.V.resize(1, S);
  for (int k = 0; k < S; ++k) s.V(0, k) = T(eps[k]);
}

// [z, ℓ, K, R]' at t: the trace exact (by chunks) or εᵀJε; K and R only when λ > 0.
template <class Field>
void Cnf<Field>::augmented(const T* params, const std::vector<double>& y, std::vector<double>& dy, int n, double t,
                           Scratch& s) const {
  const int S = n * field_.channels();
  to_scalar(y.data(), S, s.z);
  s.f.resize(S);
  double tr = 0, jeps2 = 0;
  const bool reg = opt_.ode_regularization > 0;
  if (opt_.trace == TraceEstimator::Exact) {
    tr = double(exact_trace(field_, params, s.z.data(), n, T(t), s.ws, s.trace, s.f.data()));
    if (reg) {
      s.f_extra.resize(S);
      field_.forward(params, s.z.data(), n, T(t), &s.V, s.ws, s.f_extra.data(), &s.JV);
      jeps2 = double(s.JV.row(0).squaredNorm());
    }
  } else {
    field_.forward(params, s.z.data(), n, T(t), &s.V, s.ws, s.f.data(), &s.JV);
    tr = double(s.V.row(0).dot(s.JV.row(0)));
    jeps2 = double(s.JV.row(0).squaredNorm());
  }
  double f2 = 0;
  for (int k = 0; k < S; ++k) {
    dy[k] = double(s.f[k]);
    f2 += dy[k] * dy[k];
  }
  dy[S] = tr;
  dy[S + 1] = reg ? f2 : 0.0;
  dy[S + 2] = reg ? jeps2 : 0.0;
}

}  // namespace enf
