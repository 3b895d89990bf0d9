// Adaptive and fixed-step integration on Boost.Odeint steppers (see solver.hpp).
#include "ode/solver.hpp"
#include "ode/tableau.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <utility>

#include <boost/numeric/odeint.hpp>

namespace enf::ode {

namespace odeint = boost::numeric::odeint;
using State = std::vector<double>;

// ---- names and options ------------------------------------------------------------

namespace {

constexpr struct {
  Method method;
  const char* name;
} kMethodNames[] = {
    {Method::Dopri5, "dopri5"}, {Method::CashKarp54, "cash_karp"}, {Method::Fehlberg78, "fehlberg78"},
    {Method::RK4, "rk4"},       {Method::Euler, "euler"},
};

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.12g", v);
  return buf;
}

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

bool all_finite(const State& v) {
  return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

// Shared bookkeeping of one solve: the result and the messages of its failures.
struct Run {
  Method method;
  double t0, t1;
  SolveResult res;
  const StepObserver* observer = nullptr;

  SolveResult& fail(Status s, double t, const std::string& why) {
    res.status = s;
    res.t_failed = t;
    res.message = to_string(method) + ": " + why + " (integrating from t = " + fmt(t0) + " to " + fmt(t1) + ")";
    return res;
  }
  SolveResult& non_finite_state(double t, double t_last) {
    return fail(Status::NonFinite, t,
                "non-finite state at t = " + fmt(t) + "; last finite state at t = " + fmt(t_last));
  }
  SolveResult& max_steps(double t, long max) {
    return fail(Status::MaxStepsExceeded, t,
                "maximum number of steps (" + std::to_string(max) + ") exceeded at t = " + fmt(t) + " (" +
                    std::to_string(res.stats.accepted) + " accepted, " + std::to_string(res.stats.rejected) +
                    " rejected steps)");
  }
};

// RMS of v_i / (atol + rtol·|y_i|) (torchdiffeq's norm; 0 for an empty state).
double scaled_rms(const State& v, const State& y, double rtol, double atol) {
  if (v.empty()) return 0;
  double s = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double r = v[i] / (atol + rtol * std::abs(y[i]));
    s += r * r;
  }
  return std::sqrt(s / double(v.size()));
}

// Hairer–Nørsett–Wanner II.4 starting step with torchdiffeq's constants
// (fixtures README §3.2); one evaluation, f0 = f(y0, t0) given. `order` is the
// order of the error estimate (4 for dopri5, giving torchdiffeq's 1/5). Returns
// a signed step pointing from t0 to t1, at most |t1 − t0| long. Its evaluation
// fills quadrature slot 1, which the first step's second stage overwrites.
double initial_step(const Counted& sys, const State& y0, const State& f0, double t0, double t1, int order,
                    double rtol, double atol, State& y1, State& f1) {
  const double dir = t1 > t0 ? 1.0 : -1.0, span = std::abs(t1 - t0);
  const double d0 = scaled_rms(y0, y0, rtol, atol), d1 = scaled_rms(f0, y0, rtol, atol);
  double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
  h0 = std::min(h0, span);
  for (std::size_t i = 0; i < y0.size(); ++i) y1[i] = y0[i] + dir * h0 * f0[i];
  sys.eval(y1, f1, t0 + dir * h0, 1);
  for (std::size_t i = 0; i < y0.size(); ++i) y1[i] = f1[i] - f0[i];  // reuse y1 as f1 − f0
  const double d2 = scaled_rms(y1, y0, rtol, atol) / h0;
  // f blows up within h0: start with h0 and let the controller shrink it.
  if (!std::isfinite(d2)) return dir * h0;
  const double dmax = std::max(d1, d2);
  const double h1 = dmax <= 1e-15 ? std::max(1e-6, 1e-3 * h0) : std::pow(0.01 / dmax, 1.0 / (order + 1));
  return dir * std::min({100 * h0, h1, span});
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
    run.fail(Status::NonFinite, t0, "non-finite derivative f(y0, t0) at t = " + fmt(t0));
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
      run.fail(Status::StepSizeUnderflow, t,
               "step size underflow at t = " + fmt(t) + " (step " + fmt(dt) + " no longer advances t)");
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
void fixed(const Counted& sys, State& y, const SolverOptions& opt, Run& run) {
  const double t0 = run.t0, t1 = run.t1;
  // The slack absorbs rounding in the ratio (0.3 / 0.1 must give 3 steps, not 4).
  const double ratio = std::abs(t1 - t0) / opt.fixed_step * (1 - 1e-12);
  if (!(ratio <= double(opt.max_steps))) {
    run.fail(Status::MaxStepsExceeded, t0,
             "fixed step " + fmt(opt.fixed_step) + " needs " + fmt(std::ceil(ratio)) + " steps, more than max_steps (" +
                 std::to_string(opt.max_steps) + ")");
    return;
  }
  const long steps = std::max(1L, long(std::ceil(ratio)));
  const double h = (t1 - t0) / double(steps);
  Stepper stepper;
  State ynew(y.size());
  SolveStats& st = run.res.stats;
  double t = t0;
  for (long k = 0; k < steps; ++k) {
    const double t_next = k + 1 == steps ? t1 : t0 + double(k + 1) * h;
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
    const std::size_t m = components_ == 0 ? x.size() : std::min(components_, x.size());
    double worst = 0;
    for (std::size_t i = 0; i < m; ++i)
      worst = std::max(worst, std::abs(err[i]) / (atol_ + rtol_ * (std::abs(x[i]) + std::abs(dt) * std::abs(dxdt[i]))));
    return worst;
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
// agree to rounding); plain solves therefore stay on Boost's stepper.
// slot_[i] is stage i's slot; the last stage, f at the new state, becomes the
// next step's first, so accepting swaps the first and last slots.
class Dopri5Stepper {
 public:
  Dopri5Stepper(ErrorChecker checker, const std::function<void(int, double)>* accumulate)
      : tab_(tableau(Method::Dopri5)), checker_(checker), accumulate_(accumulate) {
    const int s = tab_.stages();
    k_.resize(s);
    slot_.resize(s);
    for (int i = 0; i < s; ++i) slot_[i] = i;
  }

  odeint::controlled_step_result try_step(const Counted& sys, const State& y, const State& dydt, double& t,
                                          State& ynew, State& dydt_new, double& dt) {
    const int s = tab_.stages();
    const std::size_t n = y.size();
    // Stage 0 is dydt, the last stage dydt_new (evaluated at ynew).
    for (int i = 1; i + 1 < s; ++i) {
      stage_state(y, dydt, i, dt, x_tmp_);
      k_[i].resize(n);
      sys.eval(x_tmp_, k_[i], t + dt * tab_.c[i], slot_[i]);
    }
    stage_state(y, dydt, s - 1, dt, ynew);
    sys.eval(ynew, dydt_new, t + dt * tab_.c[s - 1], slot_[s - 1]);
    // err = Σ (dt·e_i) k_i, first term a product (Boost's scale_sum).
    err_.resize(n);
    bool first = true;
    for (int i = 0; i < s; ++i) {
      if (tab_.e[i] == 0) continue;
      const double w = dt * tab_.e[i];
      const State& k = stage(i, dydt, dydt_new);
      for (std::size_t m = 0; m < n; ++m) err_[m] = first ? w * k[m] : err_[m] + w * k[m];
      first = false;
    }
    odeint::range_algebra algebra;
    const double max_rel_err = checker_.error(algebra, y, dydt, err_, dt);
    if (max_rel_err > 1.0) {
      dt *= std::max(9.0 / 10.0 * std::pow(max_rel_err, -1.0 / (tab_.error_order - 1)), 1.0 / 5.0);
      return odeint::fail;
    }
    if (accumulate_)
      for (int i = 0; i < tab_.solution_stages(); ++i)
        if (const double w = dt * tab_.b[i]; w != 0) (*accumulate_)(slot_[i], w);
    std::swap(slot_[0], slot_[s - 1]);
    t += dt;
    if (max_rel_err < 0.5) {
      const double err = std::max(std::pow(5.0, -double(tab_.order)), max_rel_err);
      dt *= 9.0 / 10.0 * std::pow(err, -1.0 / tab_.order);
    }
    return odeint::success;
  }

 private:
  const Tableau& tab_;
  ErrorChecker checker_;
  const std::function<void(int, double)>* accumulate_;
  std::vector<State> k_;  // stages 1 … s−2
  std::vector<int> slot_;
  State x_tmp_, err_;

  const State& stage(int i, const State& first, const State& last) const {
    return i == 0 ? first : i == tab_.stages() - 1 ? last : k_[i];
  }
  // out = y + Σ_{j<i} (dt·a_ij) k_j over the nonzero a_ij, summed left to right.
  void stage_state(const State& y, const State& dydt, int i, double dt, State& out) const {
    out.resize(y.size());
    std::copy(y.begin(), y.end(), out.begin());
    for (int j = 0; j < i; ++j) {
      if (tab_.a[i][j] == 0) continue;
      const double w = dt * tab_.a[i][j];
      const State& k = j == 0 ? dydt : k_[j];
      for (std::size_t m = 0; m < y.size(); ++m) out[m] += w * k[m];
    }
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
  if (const std::string err = validate(opt); !err.empty()) throw std::invalid_argument("ODE solver options: " + err);
  if (!std::isfinite(t0) || !std::isfinite(t1))
    throw std::invalid_argument("ODE integration interval must be finite (t0 = " + fmt(t0) + ", t1 = " + fmt(t1) +
                                ")");
  if (f ? !*f : !q->system) throw std::invalid_argument("ODE system is empty");

  Run run{opt.method, t0, t1, {}, observer ? &observer : nullptr};
  if (t0 == t1) return run.res;
  if (!all_finite(y)) return run.fail(Status::NonFinite, t0, "non-finite initial state at t = " + fmt(t0));

  Counted sys{f, q, &run.res.stats.nfe};
  State cur(y);  // work on a copy: on failure y receives the last finite state
  switch (opt.method) {
    case Method::Dopri5:
      if (q) {
        Dopri5Stepper stepper{ErrorChecker(opt.atol, opt.rtol, opt.error_components), &q->accumulate};
        adaptive<true>(stepper, tableau(Method::Dopri5).error_order, sys, cur, opt, run);
      } else {
        run_adaptive<odeint::runge_kutta_dopri5<State>, true>(sys, cur, opt, run);
      }
      break;
    case Method::CashKarp54: run_adaptive<odeint::runge_kutta_cash_karp54<State>, false>(sys, cur, opt, run); break;
    case Method::Fehlberg78: run_adaptive<odeint::runge_kutta_fehlberg78<State>, false>(sys, cur, opt, run); break;
    case Method::RK4: fixed<odeint::runge_kutta4<State>>(sys, cur, opt, run); break;
    case Method::Euler: fixed<odeint::euler<State>>(sys, cur, opt, run); break;
  }
  y.swap(cur);
  return run.res;
}

}  // namespace

SolveResult integrate(const System& f, std::vector<double>& y, double t0, double t1, const SolverOptions& opt,
                      const StepObserver& observer) {
  return solve(&f, nullptr, y, t0, t1, opt, observer);
}

int quadrature_slots(Method m) {
  if (m != Method::Dopri5) throw std::invalid_argument("a quadrature along the steps needs dopri5, not " + to_string(m));
  return tableau(m).stages();
}

SolveResult integrate(const Quadrature& q, std::vector<double>& y, double t0, double t1, const SolverOptions& opt) {
  quadrature_slots(opt.method);  // throws for other methods
  if (!q.accumulate) throw std::invalid_argument("ODE quadrature has no accumulate");
  return solve(nullptr, &q, y, t0, t1, opt, StepObserver{});
}

}  // namespace enf::ode
