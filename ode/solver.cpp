// Adaptive and fixed-step integration on Boost.Odeint steppers (see solver.hpp).
#include "ode/solver.hpp"
#include "ode/rk_step.hpp"
#include "ode/tableau.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include <boost/numeric/odeint.hpp>

namespace enf::ode {

namespace odeint = boost::numeric::odeint;
using State = std::vector<double>;
using detail::all_finite;
using detail::fmt;
using detail::Run;

// ---- names and options ------------------------------------------------------------

namespace {

constexpr struct {
  Method method;
  const char* name;
} kMethodNames[] = {
    {Method::Dopri5, "dopri5"}, {Method::CashKarp54, "cash_karp"}, {Method::Fehlberg78, "fehlberg78"},
    {Method::RK4, "rk4"},       {Method::Euler, "euler"},
};

}  // namespace

std::string to_string(Method m) {
  for (const auto& e : kMethodNames)
    if (e.method == m) return e.name;
  return "unknown";
}

Method parse_method(const std::string& name) {
  std::string valid;
  for (const auto& e : kMethodNames) {
    if (name == e.name) return e.method;
    valid += valid.empty() ? "" : ", ";
    valid += e.name;
  }
  throw std::invalid_argument("unknown ODE method '" + name + "' (valid: " + valid + ")");
}

bool is_adaptive(Method m) {
  return m == Method::Dopri5 || m == Method::CashKarp54 || m == Method::Fehlberg78;
}

std::string to_string(Status s) {
  switch (s) {
    case Status::Ok: return "ok";
    case Status::MaxStepsExceeded: return "max_steps_exceeded";
    case Status::NonFinite: return "non_finite";
    case Status::StepSizeUnderflow: return "step_size_underflow";
  }
  return "unknown";
}

std::string validate(const SolverOptions& opt) {
  std::string msg;
  auto bad = [&msg](const std::string& what) { msg += (msg.empty() ? "" : "; ") + what; };
  const auto positive = [](double v) { return std::isfinite(v) && v > 0; };
  if (!positive(opt.rtol)) bad("rtol must be positive and finite (got " + fmt(opt.rtol) + ")");
  if (!positive(opt.atol)) bad("atol must be positive and finite (got " + fmt(opt.atol) + ")");
  if (!std::isfinite(opt.initial_step) || opt.initial_step < 0)
    bad("initial_step must be 0 (automatic) or positive (got " + fmt(opt.initial_step) + ")");
  if (opt.max_steps <= 0) bad("max_steps must be positive (got " + std::to_string(opt.max_steps) + ")");
  if (!positive(opt.fixed_step)) bad("fixed_step must be positive and finite (got " + fmt(opt.fixed_step) + ")");
  bool known = false;
  for (const auto& e : kMethodNames) known = known || e.method == opt.method;
  if (!known) bad("unknown method");
  return msg;
}

// ---- the integration ----------------------------------------------------------------

namespace {

// Wraps the user's System (or a Quadrature's) and counts its calls. Odeint
// copies the system it is given on every step: this is three pointers, so
// that costs nothing. Boost's steppers call it without a slot; the dopri5
// stepper below says which quadrature slot each evaluation fills.
struct Counted {
  const System* f;
  const Quadrature* q;
  long* nfe;
  void operator()(const State& y, State& dydt, double t) const { eval(y, dydt, t, 0); }
  void eval(const State& y, State& dydt, double t, int slot) const {
    ++*nfe;
    if (q)
      q->system(y, dydt, t, slot);
    else
      (*f)(y, dydt, t);
  }
};

// Hairer–Nørsett–Wanner II.4 starting step with torchdiffeq's constants
// (fixtures README §3.2; the arithmetic is rk_step.hpp's, shared with the batch
// solver); one evaluation, f0 = f(y0, t0) given. `order` is the order of the
// error estimate (4 for dopri5, giving torchdiffeq's 1/5). Returns a signed
// step pointing from t0 to t1, at most |t1 − t0| long. Its evaluation fills
// quadrature slot 1, which the first step's second stage overwrites.
double initial_step(const Counted& sys, const State& y0, const State& f0, double t0, double t1, int order,
                    double rtol, double atol, State& y1, State& f1) {
  const detail::InitialStep s = detail::initial_step_probe(y0, f0, t0, t1, rtol, atol, y1);
  sys.eval(y1, f1, s.t, 1);
  return detail::initial_step_finish(s, y0, f0, f1, order, rtol, atol, y1);  // reuse y1 as f1 − f0
}

// The controlled-stepper loop. Fsal: Dopri5, whose try_step carries f(y) from
// one step to the next (7 stages, 6 new evaluations per attempt, the last one
// being f at the new state); otherwise f(y) is evaluated once per accepted step
// and reused by every retry of the next step.
template <bool Fsal, class Controlled>
void adaptive(Controlled& ctl, int error_order, const Counted& sys, State& y, const SolverOptions& opt, Run& run) {
  const std::size_t n = y.size();
  const double t0 = run.t0, t1 = run.t1;
  SolveStats& st = run.res.stats;
  State dydt(n), ynew(n), dydt_new(n);

  sys.eval(y, dydt, t0, 0);  // the first step's first stage: quadrature slot 0
  if (!all_finite(dydt)) {
    run.non_finite_derivative();
    return;
  }
  double dt = opt.initial_step > 0
                  ? (t1 > t0 ? 1.0 : -1.0) * std::min(opt.initial_step, std::abs(t1 - t0))
                  : initial_step(sys, y, dydt, t0, t1, error_order, opt.rtol, opt.atol, ynew, dydt_new);

  double t = t0;
  long attempts = 0;
  while (true) {
    // Shorten (or stretch by at most 1e-10 relative) the step to land on t1.
    const double remaining = t1 - t;
    const bool last = std::abs(dt) >= std::abs(remaining) * (1 - 1e-10);
    if (last) dt = remaining;
    if (attempts >= opt.max_steps) {
      run.max_steps(t, opt.max_steps);
      return;
    }
    if (!std::isfinite(dt) || t + dt == t) {
      run.step_size_underflow(t, dt);
      return;
    }
    ++attempts;
    const double dt_try = dt;
    double t_new = t;
    odeint::controlled_step_result r;
    if constexpr (Fsal)
      r = ctl.try_step(sys, y, dydt, t_new, ynew, dydt_new, dt);
    else
      r = ctl.try_step(sys, y, dydt, t_new, ynew, dt);
    if (r == odeint::fail) {
      ++st.rejected;
      continue;
    }
    ++st.accepted;
    st.last_step = dt_try;
    if (run.observer) (*run.observer)(t, dt_try, y);
    t_new = last ? t1 : t_new;
    if (!all_finite(ynew)) {
      run.non_finite_state(t_new, t);
      return;
    }
    t = t_new;
    y.swap(ynew);
    if constexpr (Fsal) dydt.swap(dydt_new);
    if (last) return;
    if constexpr (!Fsal) sys(y, dydt, t);
  }
}

template <class Stepper>
void fixed(Stepper& stepper, const Counted& sys, State& y, const SolverOptions& opt, Run& run) {
  const double t0 = run.t0, t1 = run.t1;
  const detail::FixedGrid grid = detail::fixed_grid(opt, t0, t1);
  if (grid.steps == 0) {
    run.fixed_steps_exceeded(opt.fixed_step, grid.ratio, opt.max_steps);
    return;
  }
  State ynew(y.size());
  SolveStats& st = run.res.stats;
  double t = t0;
  for (long k = 0; k < grid.steps; ++k) {
    const double t_next = grid.end(k, t0, t1);
    stepper.do_step(sys, y, t, ynew, t_next - t);
    ++st.accepted;
    if (run.observer) (*run.observer)(t, t_next - t, y);
    st.last_step = t_next - t;
    if (!all_finite(ynew)) {
      run.non_finite_state(t_next, t);
      return;
    }
    y.swap(ynew);
    t = t_next;
  }
}

// Boost's default_error_checker (max over i of |err_i| / (atol + rtol(|x_i| +
// |dt·f_i|))), restricted to the first `components` entries (0: all).
class PrefixErrorChecker {
 public:
  PrefixErrorChecker(double atol, double rtol, std::size_t components)
      : atol_(atol), rtol_(rtol), components_(components) {}
  template <class Algebra>
  double error(Algebra&, const State& x, const State& dxdt, State& err, double dt) const {
    return detail::error_norm(atol_, rtol_, components_, x, dxdt, err, dt);
  }

 private:
  double atol_, rtol_;
  std::size_t components_;
};
using ErrorChecker = PrefixErrorChecker;

// dopri5 stepped from its tableau, for solves with a Quadrature: Boost's
// runge_kutta_dopri5::do_step and controlled_runge_kutta::try_step (FSAL
// version, no step limit, Boost's default_step_adjuster) term for term, but
// with the stage order ours, so each evaluation can be told its quadrature
// slot and an accepted step can add h·b_i·g_i for its stages. The compiler
// fuses multiply-adds (-ffp-contract) where it likes, so now and then a value
// rounds differently from Boost's (tests/ode/test_rk.cpp: steps and states
// agree to rounding); plain solves therefore stay on Boost's stepper. The
// arithmetic is rk_step.hpp's, which the batch solver (batch_solver.hpp) uses
// too: a sample's dopri5 solve there is this one, to the bit.
// slot_[i] is stage i's slot; the last stage, f at the new state, becomes the
// next step's first, so accepting swaps the first and last slots.
class Dopri5Stepper {
 public:
  Dopri5Stepper(ErrorChecker checker, const std::function<void(int, double)>* accumulate)
      : tab_(tableau(Method::Dopri5)), checker_(checker), accumulate_(accumulate) {
    const int s = tab_.stages();
    k_.resize(s);
    k_ptr_.resize(s);
    slot_.resize(s);
    for (int i = 0; i < s; ++i) slot_[i] = i;
  }

  odeint::controlled_step_result try_step(const Counted& sys, const State& y, const State& dydt, double& t,
                                          State& ynew, State& dydt_new, double& dt) {
    const int s = tab_.stages();
    const std::size_t n = y.size();
    // Stage 0 is dydt, the last stage dydt_new (evaluated at ynew).
    for (int i = 1; i + 1 < s; ++i) k_[i].resize(n);
    x_tmp_.resize(n);
    err_.resize(n);
    k_ptr_[0] = dydt.data();
    for (int i = 1; i + 1 < s; ++i) k_ptr_[i] = k_[i].data();
    k_ptr_[s - 1] = dydt_new.data();
    for (int i = 1; i + 1 < s; ++i) {
      detail::stage_state(tab_, i, dt, y, k_ptr_, x_tmp_);
      sys.eval(x_tmp_, k_[i], detail::stage_time(tab_, i, t, dt), slot_[i]);
    }
    detail::stage_state(tab_, s - 1, dt, y, k_ptr_, ynew);
    sys.eval(ynew, dydt_new, detail::stage_time(tab_, s - 1, t, dt), slot_[s - 1]);
    detail::error_estimate(tab_, dt, k_ptr_, err_);
    odeint::range_algebra algebra;
    const double max_rel_err = checker_.error(algebra, y, dydt, err_, dt);
    const double h = dt;
    if (!detail::control_step(tab_, max_rel_err, t, dt)) return odeint::fail;
    if (accumulate_)
      for (int i = 0; i < tab_.solution_stages(); ++i)
        if (const double w = h * tab_.b[i]; w != 0) (*accumulate_)(slot_[i], w);
    std::swap(slot_[0], slot_[s - 1]);
    return odeint::success;
  }

 private:
  const Tableau& tab_;
  ErrorChecker checker_;
  const std::function<void(int, double)>* accumulate_;
  std::vector<State> k_;  // stages 1 … s−2
  std::vector<const double*> k_ptr_;  // every stage (dydt, k_…, dydt_new)
  std::vector<int> slot_;
  State x_tmp_, err_;
};

// The other methods stepped from their tableaux, for solves with a
// Quadrature: adaptive (Cash–Karp, Fehlberg 7(8)) as Boost's
// runge_kutta_cash_karp54 / fehlberg78 in controlled_runge_kutta (no FSAL:
// stage 0 is f(y) at the step's start, evaluated once per accepted step into
// slot 0 and reused by every retry), or one fixed step (RK4, Euler). Stage i
// fills slot i; an accepted step adds h·b_i·g_i for its stages.
class TableauStepper {
 public:
  TableauStepper(Method m, ErrorChecker checker, const std::function<void(int, double)>* accumulate)
      : tab_(tableau(m)), checker_(checker), accumulate_(accumulate) {
    k_.resize(tab_.stages());
    k_ptr_.resize(tab_.stages());
  }

  // Adaptive: Boost's try_step(system, x, dxdt, t, xout, dt) for a non-FSAL stepper.
  odeint::controlled_step_result try_step(const Counted& sys, const State& y, const State& dydt, double& t,
                                          State& ynew, double& dt) {
    stages(sys, y, dydt, t, dt);
    detail::solution(tab_, dt, y, k_ptr_, ynew);
    err_.resize(y.size());
    detail::error_estimate(tab_, dt, k_ptr_, err_);
    odeint::range_algebra algebra;
    const double max_rel_err = checker_.error(algebra, y, dydt, err_, dt);
    const double h = dt;
    if (!detail::control_step(tab_, max_rel_err, t, dt)) return odeint::fail;
    accumulate(h);
    return odeint::success;
  }

  // Fixed: Boost's do_step(system, x, t, xout, dt), stage 0 evaluated here.
  void do_step(const Counted& sys, const State& y, double t, State& ynew, double dt) {
    dydt_.resize(y.size());
    sys.eval(y, dydt_, t, 0);
    stages(sys, y, dydt_, t, dt);
    detail::solution(tab_, dt, y, k_ptr_, ynew);
    accumulate(dt);
  }

 private:
  const Tableau& tab_;
  ErrorChecker checker_;
  const std::function<void(int, double)>* accumulate_;
  std::vector<State> k_;  // stages 1 … s−1
  std::vector<const double*> k_ptr_;
  State x_tmp_, err_, dydt_;

  void stages(const Counted& sys, const State& y, const State& dydt, double t, double dt) {
    const std::size_t n = y.size();
    x_tmp_.resize(n);
    k_ptr_[0] = dydt.data();
    for (int i = 1; i < tab_.stages(); ++i) {
      k_[i].resize(n);
      k_ptr_[i] = k_[i].data();
      detail::stage_state(tab_, i, dt, y, k_ptr_, x_tmp_);
      sys.eval(x_tmp_, k_[i], detail::stage_time(tab_, i, t, dt), i);
    }
  }
  void accumulate(double h) {
    if (accumulate_)
      for (int i = 0; i < tab_.stages(); ++i)
        if (const double w = h * tab_.b[i]; w != 0) (*accumulate_)(i, w);
  }
};

template <class ErrorStepper>
using Controlled = odeint::controlled_runge_kutta<ErrorStepper, ErrorChecker>;

template <class ErrorStepper, bool Fsal>
void run_adaptive(const Counted& sys, State& y, const SolverOptions& opt, Run& run) {
  Controlled<ErrorStepper> ctl{ErrorChecker(opt.atol, opt.rtol, opt.error_components)};
  adaptive<Fsal>(ctl, int(ErrorStepper::error_order_value), sys, y, opt, run);
}

}  // namespace

SolveResult integrate(const System& f, std::vector<double>& y, double t0, double t1, const SolverOptions& opt) {
  return integrate(f, y, t0, t1, opt, StepObserver{});
}

namespace {

SolveResult solve(const System* f, const Quadrature* q, std::vector<double>& y, double t0, double t1,
                  const SolverOptions& opt, const StepObserver& observer) {
  detail::check_arguments(opt, t0, t1);
  if (f ? !*f : !q->system) throw std::invalid_argument("ODE system is empty");

  Run run{opt.method, t0, t1, {}, observer ? &observer : nullptr};
  if (t0 == t1) return run.res;
  if (!all_finite(y)) return run.non_finite_initial_state();

  Counted sys{f, q, &run.res.stats.nfe};
  State cur(y);  // work on a copy: on failure y receives the last finite state
  if (q) {
    // With a quadrature every method steps from its tableau in ode/.
    const ErrorChecker checker(opt.atol, opt.rtol, opt.error_components);
    if (opt.method == Method::Dopri5) {
      Dopri5Stepper stepper{checker, &q->accumulate};
      adaptive<true>(stepper, tableau(Method::Dopri5).error_order, sys, cur, opt, run);
    } else {
      TableauStepper stepper{opt.method, checker, &q->accumulate};
      if (is_adaptive(opt.method))
        adaptive<false>(stepper, tableau(opt.method).error_order, sys, cur, opt, run);
      else
        fixed(stepper, sys, cur, opt, run);
    }
  } else {
    switch (opt.method) {
      case Method::Dopri5:
        run_adaptive<odeint::runge_kutta_dopri5<State>, true>(sys, cur, opt, run);
        break;
      case Method::CashKarp54:
        run_adaptive<odeint::runge_kutta_cash_karp54<State>, false>(sys, cur, opt, run);
        break;
      case Method::Fehlberg78:
        run_adaptive<odeint::runge_kutta_fehlberg78<State>, false>(sys, cur, opt, run);
        break;
      case Method::RK4: {
        odeint::runge_kutta4<State> stepper;
        fixed(stepper, sys, cur, opt, run);
        break;
      }
      case Method::Euler: {
        odeint::euler<State> stepper;
        fixed(stepper, sys, cur, opt, run);
        break;
      }
    }
  }
  y.swap(cur);
  return run.res;
}

}  // namespace

SolveResult integrate(const System& f, std::vector<double>& y, double t0, double t1, const SolverOptions& opt,
                      const StepObserver& observer) {
  return solve(&f, nullptr, y, t0, t1, opt, observer);
}

int quadrature_slots(Method m) { return tableau(m).stages(); }

SolveResult integrate(const Quadrature& q, std::vector<double>& y, double t0, double t1, const SolverOptions& opt) {
  if (!q.accumulate) throw std::invalid_argument("ODE quadrature has no accumulate");
  return solve(nullptr, &q, y, t0, t1, opt, StepObserver{});
}

}  // namespace enf::ode
