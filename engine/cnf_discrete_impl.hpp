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
  struct Step {
    double t, h;
    std::vector<double> z;
  };
  std::vector<Step> steps;
  AdjointResult r;
  auto start = Clock::now();
  r.forward = forward_recorded(params, x, n, eps, s, [&](double t, double h, const std::vector<double>& y) {
    steps.push_back({t, h, std::vector<double>(y.begin(), y.begin() + S)});
  });
  r.seconds_forward = since(start);
  r.loss = loss_of(r.forward, weight);
  if (!r.forward.solve.ok()) return r;
  start = Clock::now();
  const double a_l = -weight, a_reg = weight * opt_.ode_regularization;
  std::vector<double> ybar(S);
  for (int k = 0; k < S; ++k) ybar[k] = weight * r.forward.z[k];
  // Only the z part feeds the stages.
  const ode::System f = [&](const std::vector<double>& Y, std::vector<double>& K, double t) {
    to_scalar(Y.data(), S, s.z);
    s.f.resize(S);
    field_.forward(params, s.z.data(), n, T(t), nullptr, s.ws, s.f.data(), nullptr);
    for (int k = 0; k < S; ++k) K[k] = double(s.f[k]);
  };
  const ode::StageVjp vjp = [&](const std::vector<double>& Y, double t, const std::vector<double>& kbar, double hb,
                                std::vector<double>& Ybar) {
    augmented_vjp(params, Y.data(), n, t, kbar.data(), hb * a_l, hb * a_reg, hb * a_reg, s);
    for (int k = 0; k < S; ++k) Ybar[k] = double(s.zbar[k]);
    for (std::size_t k = 0; k < P; ++k) grad[k] += double(s.grad[k]);
  };
  ode::StepReplay replay(opt_.solver.method);
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) replay.reverse(f, vjp, it->t, it->h, it->z, ybar);
  r.input_cotangent = ybar;
  r.backward.stats.nfe = long(steps.size()) * 2 * replay.stages();
  r.backward.stats.accepted = long(steps.size());
  r.seconds_backward = since(start);
  return r;
}

}  // namespace enf
