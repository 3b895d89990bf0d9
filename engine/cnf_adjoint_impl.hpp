// The continuous adjoint: [z, a_z] integrated back from t = 1 to 0, with the
// parameter cotangent a_θ an ode::Quadrature along the backward steps (every
// method: ode/ steps each from its tableau when it carries a quadrature).
// Definitions of Cnf's members (cnf.hpp); compiled in cnf_instances.cpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/cnf.hpp"
#include "engine/cnf_forward_impl.hpp"

namespace enf {

template <class Field>
AdjointResult Cnf<Field>::adjoint(const T* params, const std::vector<double>& x, int n, const std::vector<double>& eps,
                                  double weight, Scratch& s, double* grad) const {
  const int S = n * field_.channels();
  AdjointResult r;
  auto start = Clock::now();
  r.forward = forward(params, x, n, eps, s);
  r.seconds_forward = since(start);
  r.loss = loss_of(r.forward, weight);
  if (!r.forward.solve.ok()) return r;
  start = Clock::now();
  // a_z(1) = −w ∂log p_z/∂z = w z (every channel has a unit Gaussian prior).
  std::vector<double> y(2 * S, 0.0);
  std::copy(r.forward.z.begin(), r.forward.z.end(), y.begin());
  for (int k = 0; k < S; ++k) y[S + k] = weight * r.forward.z[k];
  const double a_l = -weight, a_reg = weight * opt_.ode_regularization;
  // a_θ is a quadrature outside the state (it never feeds back), so the
  // error control sees [z, a_z] only.
  r.backward = adjoint_quadrature(params, y, n, a_l, a_reg, opt_.adjoint_solver, s, grad);
  r.input_cotangent.assign(y.begin() + S, y.begin() + 2 * S);
  for (int k = 0; k < S; ++k) r.reconstruction_error = std::max(r.reconstruction_error, std::abs(y[k] - x[k]));
  r.seconds_backward = since(start);
  return r;
}

// The adjoint with a_θ outside the solver's state: only [z, a_z]
// (2S numbers) are integrated; the rate of a_θ, −g(t) with g = a·∂F/∂θ, is
// an ode::Quadrature — each evaluation keeps g in the slot ode/ names, and
// every accepted step adds −h b_i g_i over its stages, what the solver
// itself would have added for a component outside its error norm, without
// carrying P numbers through each stage.
// y holds [z(1), a_z(1)] and receives [z(0), a_z(0)].
template <class Field>
ode::SolveResult Cnf<Field>::adjoint_quadrature(const T* params, std::vector<double>& y, int n, double a_l,
                                                double a_reg, const ode::SolverOptions& opt, Scratch& s,
                                                double* grad) const {
  const int S = n * field_.channels();
  const std::size_t P = field_.parameter_count();
  std::vector<AlignedVector<T>> slots(ode::quadrature_slots(opt.method), AlignedVector<T>(P));
  std::vector<double> acc(P, 0.0);
  if (opt_.trace == TraceEstimator::Exact) share_condition(s.ws, s.trace_ws);
  ode::Quadrature q;
  q.system = [&](const std::vector<double>& yy, std::vector<double>& dy, double t, int slot) {
    augmented_vjp(params, yy.data(), n, t, yy.data() + S, a_l, a_reg, a_reg, s);
    for (int k = 0; k < S; ++k) {
      dy[k] = double(s.f[k]);
      dy[S + k] = -double(s.zbar[k]);
    }
    slots[slot].swap(s.grad);
  };
  q.accumulate = [&](int slot, double hb) {
    const double w = -hb;
    const AlignedVector<T>& g = slots[slot];
    for (std::size_t k = 0; k < P; ++k) acc[k] += w * double(g[k]);
  };
  const auto result = ode::integrate(q, y, 1.0, 0.0, opt);
  for (std::size_t k = 0; k < P; ++k) grad[k] += acc[k];
  return result;
}

// The VJP of the augmented dynamics F = [f, tr, ‖f‖², ‖Jε‖²] at (z, t) for
// the cotangent (c_z, c_ℓ, c_K, c_R):
//   s.zbar = c_zᵀ∂f/∂z + c_ℓ ∂tr/∂z + c_K ∂‖f‖²/∂z + c_R ∂‖Jε‖²/∂z,
//   s.grad = the same wrt θ (overwritten), s.f = f(z, t).
template <class Field>
void Cnf<Field>::augmented_vjp(const T* params, const double* z, int n, double t, const double* c_z, double c_l,
                               double c_K, double c_R, Scratch& s) const {
  const int S = n * field_.channels();
  const std::size_t P = field_.parameter_count();
  to_scalar(z, S, s.z);
  s.f.resize(S);
  s.fbar.resize(S);
  s.zbar.resize(S);
  s.grad.assign(P, T(0));
  if (opt_.trace == TraceEstimator::Exact) {
    s.zbar_extra.assign(S, T(0));
    if (c_R != 0) {
      // The Frobenius term needs J·ε: one more tangent pass with its reverse.
      field_.forward(params, s.z.data(), n, T(t), &s.V, s.ws, s.f.data(), &s.JV);
      s.JVbar = s.JV * T(2 * c_R);
      field_.reverse(params, s.ws, nullptr, &s.JVbar, s.zbar_extra.data(), s.grad.data());
    }
    // f first (for the kinetic term's cotangent), then the trace VJP.
    field_.forward(params, s.z.data(), n, T(t), nullptr, s.ws, s.f.data(), nullptr);
    for (int k = 0; k < S; ++k) s.fbar[k] = T(c_z[k] + 2 * c_K * double(s.f[k]));
    exact_trace_vjp(field_, params, s.z.data(), n, T(t), s.trace_ws, s.trace, s.fbar.data(), T(c_l), s.f.data(),
                    s.zbar.data(), s.grad.data());
    for (int k = 0; k < S; ++k) s.zbar[k] += s.zbar_extra[k];
  } else {
    field_.forward(params, s.z.data(), n, T(t), &s.V, s.ws, s.f.data(), &s.JV);
    for (int k = 0; k < S; ++k) s.fbar[k] = T(c_z[k] + 2 * c_K * double(s.f[k]));
    s.JVbar = s.V * T(c_l) + s.JV * T(2 * c_R);
    field_.reverse(params, s.ws, s.fbar.data(), &s.JVbar, s.zbar.data(), s.grad.data());
  }
}

}  // namespace enf
