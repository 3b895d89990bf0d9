// Backprop through one explicit Runge–Kutta step (the discrete adjoint), for
// gradients of a solve's discrete solution: the caller records each accepted
// step's start (t, h, y; see the StepObserver of integrate) and replays the
// steps last to first, carrying the cotangent ȳ of the state.
//
// For the step y1 = y0 + h Σ b_i k_i, k_i = f(Y_i, t0 + c_i h) (tableau.hpp),
// reverse() recomputes the stages from y0 and reverses them in order s−1 … 0:
//   k̄_i = h b_i ȳ1 + Σ_{m>i} h a_mi Ȳ_m,   Ȳ_i = vjp(stage i at Y_i, k̄_i, h b_i),
//   ȳ0  = ȳ1 + Σ_i Ȳ_i.
// The system supplies only f and its VJP. h b_i is passed along because parts
// of a larger state that never feed f (a log-density, a regulariser) keep a
// constant cotangent c, and their contribution to stage i is c·h b_i.
// A stage with h b_i = 0 and k̄_i = 0 contributes nothing and is skipped.
#pragma once

#include <functional>
#include <vector>

#include "ode/tableau.hpp"

namespace enf::ode {

// Ȳ = k̄ᵀ ∂k/∂Y at the stage (Y, t), plus the stage's quadrature parts
// weighted by hb, into Ybar (sized like Y). The caller accumulates its
// parameter cotangents itself.
using StageVjp = std::function<void(const std::vector<double>& Y, double t, const std::vector<double>& kbar,
                                    double hb, std::vector<double>& Ybar)>;

class StepReplay {
 public:
  explicit StepReplay(Method m);
  const Tableau& tableau() const { return tab_; }
  // The stages the replay evaluates (f once and the VJP once each, per step).
  int stages() const { return tab_.solution_stages(); }

  // ȳ1 → ȳ0 (in place) for the step (t0, h) that started at y0.
  void reverse(const System& f, const StageVjp& vjp, double t0, double h, const std::vector<double>& y0,
               std::vector<double>& ybar);

 private:
  const Tableau& tab_;
  std::vector<std::vector<double>> K_, Ybar_;
  std::vector<double> Y_, kbar_, ybar0_;

  // Y_i = y0 + h Σ_{j<i} a_ij K_j.
  void stage_state(const std::vector<double>& y0, int i, double h);
};

}  // namespace enf::ode
