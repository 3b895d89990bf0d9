// ODE solvers for the flow: adaptive Runge–Kutta pairs with step-size control
// and fixed-step RK4 / Euler, all Boost.Odeint steppers used as they are. The
// state is a flat std::vector<double>; this module knows nothing of networks,
// files or the command line.
//
// With a Quadrature (below) every method is stepped here from its tableau
// (tableau.hpp), so that ode/ knows which stage every evaluation is; the
// arithmetic and step control are Boost's steppers and controlled_runge_kutta
// term for term, equal to rounding (the compiler's fused multiply-adds differ
// now and then; tests/ode/test_rk checks every method).
// Adaptive methods (dopri5, cash_karp, fehlberg78):
//   * controlled_runge_kutta with Boost's default_error_checker(atol, rtol):
//     a step is accepted iff max_i |err_i| / (atol + rtol·(|y_i| + |dt·f_i|))
//     ≤ 1, evaluated at the step's start (y, f). Step growth ≤ 5×, shrink ≥ 0.2×.
//   * the loop is ours: it counts accepted and rejected steps, stops after
//     max_steps attempts, shortens the last step to end exactly on t1 and
//     checks the state for NaN/Inf after every accepted step.
//   * first step: opt.initial_step, or (0) the Hairer–Nørsett–Wanner II.4
//     heuristic with torchdiffeq's constants (2 evaluations, f(t0) reused).
//   * NFE (every call of the System counts), automatic first step:
//       dopri5      2 + 6·(accepted + rejected)       (FSAL)
//       cash_karp   2 + 5·(accepted + rejected) + accepted − 1
//       fehlberg78  2 + 12·(accepted + rejected) + accepted − 1
//     With a given initial_step, one less.
// Fixed-step methods (rk4, euler): n = ceil(|t1 − t0| / fixed_step) equal steps
//   t_k = t0 + k·(t1 − t0)/n; NFE = 4n (rk4) or n (euler).
//
// t1 < t0 integrates backwards in time. t0 == t1 is a no-op (no evaluation).
// Only invalid options or non-finite t0/t1 throw (std::invalid_argument);
// run-time failures are returned as a Status with a message naming the method,
// the time and the reason. On failure y holds the last finite state reached
// (the message gives its time); on success y(t1).
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace enf::ode {

enum class Method { Dopri5, CashKarp54, Fehlberg78, RK4, Euler };

// Names: "dopri5", "cash_karp", "fehlberg78", "rk4", "euler".
std::string to_string(Method m);
// Throws std::invalid_argument listing the valid names.
Method parse_method(const std::string& name);
bool is_adaptive(Method m);

struct SolverOptions {
  Method method = Method::Dopri5;
  double rtol = 1e-5, atol = 1e-5;  // adaptive methods; both > 0
  double initial_step = 0;          // |first step|; 0: automatic (HNW II.4 heuristic)
  long max_steps = 100000;          // attempted steps (accepted + rejected); > 0
  double fixed_step = 0.01;         // rk4 / euler: the largest step; > 0
  // Adaptive methods: only the first k components enter the error norm (0:
  // all). The adjoint uses it for the parameter cotangent, a pure quadrature
  // that never feeds back into the dynamics ("seminorm", Kidger et al. 2021).
  std::size_t error_components = 0;
};

// Empty if the options are valid, else a message naming every problem.
std::string validate(const SolverOptions& opt);

struct SolveStats {
  long nfe = 0;           // evaluations of the System
  long accepted = 0;      // accepted steps (every step for rk4 / euler)
  long rejected = 0;      // rejected steps (adaptive only)
  double last_step = 0;   // signed size of the last accepted step
};

enum class Status {
  Ok,
  MaxStepsExceeded,   // max_steps attempts without reaching t1
  NonFinite,          // the state (or f at t0, or y0) contains NaN or Inf
  StepSizeUnderflow,  // adaptive step became too small to advance t (e.g. blow-up)
};
std::string to_string(Status s);

struct SolveResult {
  Status status = Status::Ok;
  SolveStats stats;
  std::string message;  // empty when Ok
  double t_failed = 0;  // time at which the failure was detected (0 when Ok)
  bool ok() const { return status == Status::Ok; }
};

// dydt = f(y, t); dydt arrives sized like y.
using System = std::function<void(const std::vector<double>& y, std::vector<double>& dydt, double t)>;

// Integrates y from t0 to t1 (t1 < t0: backwards in time), ending exactly on
// t1. y is updated in place. Throws std::invalid_argument on invalid options
// or non-finite t0 / t1; everything else is reported in the result.
SolveResult integrate(const System& f, std::vector<double>& y, double t0, double t1,
                      const SolverOptions& opt);

// Called once per accepted step with its start time t, its signed size h (the
// step the stepper took, so y_next = Φ_h(y)) and the state y at its start.
// Backprop through the solver's steps replays them from these.
using StepObserver = std::function<void(double t, double h, const std::vector<double>& y)>;
SolveResult integrate(const System& f, std::vector<double>& y, double t0, double t1, const SolverOptions& opt,
                      const StepObserver& observer);

// y' = f(y, t) together with a quadrature q = ∫ g(y(t), t) dt that never feeds
// back (so it stays out of the state and its error norm, however long g is):
// every evaluation computes f and keeps g(y, t) in one of quadrature_slots()
// slots the caller owns; after each accepted step ode/ calls accumulate(slot,
// h·b_i) for the step's stages with b_i ≠ 0, in stage order — the sum the
// method itself would have formed for a component of y. A step's stages may
// include the previous step's last evaluation (FSAL), hence the slots.
// Every method: with a quadrature ode/ steps each from its tableau (Boost's
// steppers take plain solves), so the state agrees with a plain solve's to
// rounding, in the same steps.
struct Quadrature {
  std::function<void(const std::vector<double>& y, std::vector<double>& dydt, double t, int slot)> system;
  std::function<void(int slot, double weight)> accumulate;
};
int quadrature_slots(Method m);
SolveResult integrate(const Quadrature& q, std::vector<double>& y, double t0, double t1, const SolverOptions& opt);

}  // namespace enf::ode
