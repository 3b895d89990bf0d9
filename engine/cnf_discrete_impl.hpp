// Backprop through the forward solve's accepted steps (the exact gradient of
// the discrete solution; memory O(steps · state)).
// Definitions of Cnf's members (cnf.hpp); compiled in cnf_instances.cpp.
#pragma once

#include <vector>

#include "engine/cnf.hpp"
#include "engine/cnf_adjoint_impl.hpp"
#include "engine/cnf_forward_impl.hpp"
#include "ode/replay.hpp"

namespace enf {

// Backprop through the forward solve's accepted steps: ode::StepReplay
// recomputes each step's stages from its recorded start state and reverses
// them; the CNF supplies f and the augmented VJP. The step sizes are
// constants of the discrete solution. ℓ, K, R never feed F, so their
// cotangents stay −w, wλ, wλ throughout (weighted by h b_i per stage).
template <class Field>
AdjointResult Cnf<Field>::discrete(const T* params, const std::vector<double>& x, int n, const std::vector<double>& eps,
                                   double weight, Scratch& s, double* grad) const {
  const int S = n * field_.channels();
  const std::size_t P = field_.parameter_count();
  s.record_t.clear();
  s.record_h.clear();
  s.record_z.clear();
  AdjointResult r;
  auto start = Clock::now();
  r.forward = forward_recorded(params, x, n, eps, s, [&](double t, double h, const std::vector<double>& y) {
    s.record_t.push_back(t);
    s.record_h.push_back(h);
    s.record_z.insert(s.record_z.end(), y.begin(), y.begin() + S);
  });
  r.seconds_forward = since(start);
  r.loss = loss_of(r.forward, weight);
  if (!r.forward.solve.ok()) return r;
  start = Clock::now();
  const double a_l = -weight, a_reg = weight * opt_.ode_regularization;
  std::vector<double> ybar(S);
  for (int k = 0; k < S; ++k) ybar[k] = weight * r.forward.z[k];
  // Only the z part feeds the stages.
  share_condition(s.ws, s.replay_ws);
  if (opt_.trace == TraceEstimator::Exact) share_condition(s.ws, s.trace_ws);
  const ForwardOnlyScope replay_scope(s.replay_ws);  // the VJPs below recompute their own forward
  const ode::System f = [&](const std::vector<double>& Y, std::vector<double>& K, double t) {
    to_scalar(Y.data(), S, s.z);
    s.f.resize(S);
    field_.forward(params, s.z.data(), n, T(t), nullptr, s.replay_ws, s.f.data(), nullptr);
    for (int k = 0; k < S; ++k) K[k] = double(s.f[k]);
  };
  const ode::StageVjp vjp = [&](const std::vector<double>& Y, double t, const std::vector<double>& kbar, double hb,
                                std::vector<double>& Ybar) {
    augmented_vjp(params, Y.data(), n, t, kbar.data(), hb * a_l, hb * a_reg, hb * a_reg, s);
    for (int k = 0; k < S; ++k) Ybar[k] = double(s.zbar[k]);
    for (std::size_t k = 0; k < P; ++k) grad[k] += double(s.grad[k]);
  };
  ode::StepReplay replay(opt_.solver.method);
  const long steps = long(s.record_t.size());
  for (long k = steps - 1; k >= 0; --k) {
    s.replay_y0.assign(s.record_z.begin() + k * S, s.record_z.begin() + (k + 1) * S);
    replay.reverse(f, vjp, s.record_t[k], s.record_h[k], s.replay_y0, ybar);
  }
  r.input_cotangent = ybar;
  r.backward.stats.nfe = steps * 2 * replay.stages();
  r.backward.stats.accepted = steps;
  r.seconds_backward = since(start);
  return r;
}

}  // namespace enf
