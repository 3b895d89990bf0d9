// Internal to ode/: the per-sample arithmetic of a Runge–Kutta step and its
// step-size control, shared by the single-sample solver (solver.cpp: dopri5
// stepped from its tableau, the initial-step heuristic, the error checker)
// and the lockstep batch solver (batch_solver.cpp).
//
// Why out of line, in one translation unit (rk_step.cpp): the compiler fuses
// multiply-adds (-ffp-contract, -march=native) where it likes, so the same
// sum written twice may round differently. With one definition called by
// both solvers, a sample solved in a batch is solved to the bit as
// integrate(Quadrature, …) solves it alone.
//
// Stages are passed as pointers k[j] to each stage's derivative (k[0] is
// f(y, t) at the step's start); every vector has the state's size.
#pragma once

#include <span>
#include <string>

#include "ode/solver.hpp"
#include "ode/tableau.hpp"

namespace enf::ode::detail {

// "%.12g": how every solver message prints a number.
std::string fmt(double v);

bool all_finite(std::span<const double> v);

// The checks integrate() makes before anything else (the system's emptiness
// aside): std::invalid_argument for invalid options or a non-finite t0 / t1.
void check_arguments(const SolverOptions& opt, double t0, double t1);

// Bookkeeping of one sample's solve: its result and the messages of its failures.
struct Run {
  Method method;
  double t0, t1;
  SolveResult res;
  const StepObserver* observer = nullptr;

  SolveResult& fail(Status s, double t, const std::string& why);
  SolveResult& non_finite_state(double t, double t_last);
  SolveResult& max_steps(double t, long max);
  SolveResult& step_size_underflow(double t, double dt);
  SolveResult& non_finite_initial_state();
  SolveResult& non_finite_derivative();
  SolveResult& fixed_steps_exceeded(double fixed_step, double ratio, long max);
};

// ---- one step from the tableau ----------------------------------------------------------

// t + dt·c_i: the time at which stage i is evaluated.
double stage_time(const Tableau& tab, int i, double t, double dt);

// out = y + Σ_{j<i} (dt·a_ij) k_j over the nonzero a_ij, summed left to right:
// the state at which stage i is evaluated (for an FSAL method's last stage, y1).
void stage_state(const Tableau& tab, int i, double dt, std::span<const double> y,
                 std::span<const double* const> k, std::span<double> out);

// out = y + Σ_i (dt·b_i) k_i over the nonzero b_i, left to right: y1 of a
// method whose last stage is not FSAL.
void solution(const Tableau& tab, double dt, std::span<const double> y, std::span<const double* const> k,
              std::span<double> out);

// err = Σ (dt·e_i) k_i over the nonzero e_i, the first term a product (Boost's scale_sum).
void error_estimate(const Tableau& tab, double dt, std::span<const double* const> k, std::span<double> err);

// Boost's default_error_checker: max_i |err_i| / (atol + rtol·(|y_i| + |dt|·|f_i|))
// at the step's start (y, f = k_0), over the first `components` entries (0: all).
double error_norm(double atol, double rtol, std::size_t components, std::span<const double> y,
                  std::span<const double> f, std::span<const double> err, double dt);

// Boost's controlled_runge_kutta::try_step after the error norm, with its
// default_step_adjuster (no step limit): err > 1 rejects and shrinks dt (by
// ≥ 0.2×, with the error order); otherwise t += dt and dt grows when err < 0.5
// (by ≤ 5×, with the method's order). Returns whether the step is accepted.
bool control_step(const Tableau& tab, double err, double& t, double& dt);

// ---- the fixed-step grid ----------------------------------------------------------------

// rk4 / euler: n = ceil(|t1 − t0| / fixed_step) equal steps, the same for every sample.
struct FixedGrid {
  double ratio = 0;  // |t1 − t0| / fixed_step, less a slack for rounding
  long steps = 0;    // 0: more than max_steps (the solve fails before any evaluation)
  double h = 0;
  // The end of step k (exactly t1 for the last).
  double end(long k, double t0, double t1) const { return k + 1 == steps ? t1 : t0 + double(k + 1) * h; }
};
FixedGrid fixed_grid(const SolverOptions& opt, double t0, double t1);

// ---- the first step ---------------------------------------------------------------------

// The Hairer–Nørsett–Wanner II.4 starting step with torchdiffeq's constants
// (fixtures README §3.2), in two halves around its one evaluation f1 = f(y1, t):
// probe() sets y1 = y0 + dir·h0·f0 and the time t of the evaluation; finish()
// returns a signed step pointing from t0 to t1, at most |t1 − t0| long.
struct InitialStep {
  double dir, span, d1, h0, t;
};
InitialStep initial_step_probe(std::span<const double> y0, std::span<const double> f0, double t0, double t1,
                               double rtol, double atol, std::span<double> y1);
// `order` is the order of the error estimate (4 for dopri5, giving
// torchdiffeq's 1/5). scratch (sized like y0) receives f1 − f0.
double initial_step_finish(const InitialStep& s, std::span<const double> y0, std::span<const double> f0,
                           std::span<const double> f1, int order, double rtol, double atol,
                           std::span<double> scratch);

}  // namespace enf::ode::detail
