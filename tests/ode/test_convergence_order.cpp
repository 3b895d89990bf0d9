// Convergence order of every stepper enf's ODE layer uses, in fixed steps.
//
// ode/'s public API takes fixed steps only for rk4 and euler (the embedded
// pairs always run under step-size control), so the one templated test below
// drives the Boost.Odeint steppers ode/solver.cpp wraps — the same types, on
// the same std::vector<double> state — with do_step, n equal steps over
// [0, T]; a second test checks rk4 and euler through ode::integrate itself.
//
// The order each stepper propagates (its do_step's solution, the one the
// controlled stepper keeps too): Euler 1, RK4 4, Cash–Karp 5 (the 5th-order
// solution of the 5(4) pair), Dormand–Prince 5 (the 5th of 5(4); enf's
// discrete gradient replays these weights, engine/cnf.cpp), Fehlberg 8: Boost's
// runge_kutta_fehlberg78 propagates the 8th-order solution of the 7(8) pair
// (its b weights put 41/840 on stages 12 and 13, not on 1 and 11), which is
// also its declared order_value; the test checks both.
//
// Measurement: the max-norm error at T for n = n₀·2^(j/2), j = 0…4 (h over
// a factor 4), and the least-squares slope of log e against log h. Windows:
// n₀ per stepper and problem (the steppers' tables below), chosen from a scan
// of n₀ = 8 … 524288 so that the largest error is ≤ 1e-2 (the next term of
// the error expansion is then small) and the smallest ≥ 1e-11, 100 times the
// level at which float64 roundoff stops the errors falling here (~1e-13 on
// the Kepler problems, fewer steps than 10⁴): rounding then moves log e of a
// point by < 1%, the measured order by < 0.01. The test checks both ends of
// each window, so a window that drifts into roundoff or out of the
// asymptotic regime fails instead of measuring something else.
// Orders measured (this machine): euler 1.00 1.00 1.00; rk4 4.05 4.08 4.07;
// cash_karp 5.05 4.98 4.97; dopri5 5.17 5.20 5.21; fehlberg78 8.14 8.33 8.30.
#include <catch2/catch.hpp>

#include <boost/numeric/odeint.hpp>
#include <cmath>
#include <cstdio>
#include <functional>
#include <numbers>
#include <string>
#include <vector>

#include "ode/solver.hpp"

namespace odeint = boost::numeric::odeint;
using State = std::vector<double>;

namespace {

constexpr double kOrderSlack = 0.3;       // |measured − theoretical| ≤ 0.3 (fehlberg78: see there)
constexpr double kRoundoffFloor = 1e-11;  // smallest error allowed in a window (see the header)
constexpr double kAsymptotic = 1e-2;      // largest error allowed in a window

struct Problem {
  std::string name;
  std::function<void(const State&, State&, double)> f;
  State y0;
  double T;
  State exact;  // y(T)
};

// Linear, 2-D: a damped rotation, y(t) = e^(−t/10) R(t) y₀.
Problem damped_rotation() {
  const double T = 10, d = std::exp(-T / 10);
  return {"damped rotation (linear)",
          [](const State& y, State& dy, double) {
            dy[0] = -0.1 * y[0] + y[1];
            dy[1] = -y[0] - 0.1 * y[1];
          },
          {1.0, 0.5},
          T,
          {d * (std::cos(T) + 0.5 * std::sin(T)), d * (-std::sin(T) + 0.5 * std::cos(T))}};
}

// Nonlinear, 4-D: the Kepler problem, eccentricity 0.5, one period 2π: the
// orbit returns to its start (perihelion 0.5, speed √3).
Problem kepler() {
  const State y0{0.5, 0.0, 0.0, std::sqrt(3.0)};
  return {"Kepler orbit, e = 0.5 (nonlinear)",
          [](const State& y, State& dy, double) {
            const double r = std::hypot(y[0], y[1]), r3 = r * r * r;
            dy[0] = y[2];
            dy[1] = y[3];
            dy[2] = -y[0] / r3;
            dy[3] = -y[1] / r3;
          },
          y0, 2 * std::numbers::pi, y0};
}

// Non-autonomous (exercises the stages' times c_i): the Kepler field with a
// time-varying speed, y' = (1 + cos(t)/2) F(y). Its solution is the orbit at
// τ(t) = t + sin(t)/2, and τ(2π) = 2π: it too returns to its start.
Problem kepler_time_varying() {
  Problem p = kepler();
  p.name = "Kepler orbit at speed 1 + cos(t)/2 (non-autonomous)";
  p.f = [f = p.f](const State& y, State& dy, double t) {
    f(y, dy, t);
    for (double& v : dy) v *= 1 + 0.5 * std::cos(t);
  };
  return p;
}

double max_error(const State& y, const State& exact) {
  double e = 0;
  for (std::size_t i = 0; i < y.size(); ++i) e = std::max(e, std::abs(y[i] - exact[i]));
  return e;
}

// n equal steps with a fresh stepper (dopri5 keeps f(y) between steps: FSAL),
// on ode/solver.cpp's time grid t_k = k·T/n.
template <class Stepper>
double error_with_steps(const Problem& p, long n) {
  Stepper stepper;
  State y = p.y0;
  const double h = p.T / double(n);
  for (long k = 0; k < n; ++k) {
    const double t = double(k) * h, t_next = k + 1 == n ? p.T : double(k + 1) * h;
    stepper.do_step(p.f, y, t, t_next - t);
  }
  return max_error(y, p.exact);
}

struct Measured {
  double order = 0, largest = 0, smallest = 0;
  std::string table;  // h and e of every point, for the failure message
};

// Slope of log e against log h over n₀·2^(j/2), j = 0…4.
Measured measure(const std::function<double(long)>& error_with, double T, long n0) {
  Measured m;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  constexpr int points = 5;
  m.smallest = INFINITY;
  for (int j = 0; j < points; ++j) {
    const long n = std::lround(double(n0) * std::pow(2.0, j / 2.0));
    const double e = error_with(n), x = std::log(T / double(n)), y = std::log(e);
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
    m.largest = std::max(m.largest, e);
    m.smallest = std::min(m.smallest, e);
    char point[48];
    std::snprintf(point, sizeof point, " n=%ld: e=%.2e", n, e);
    m.table += point;
  }
  m.order = (points * sxy - sx * sy) / (points * sxx - sx * sx);
  return m;
}

// The steppers, each with its order and the window (n₀) of each problem:
// damped rotation, Kepler, time-varying Kepler.
struct Euler {
  using Stepper = odeint::euler<State>;
  static constexpr const char* name = "euler";
  static constexpr int order = 1;
  static constexpr long n0[3] = {4096, 524288, 524288};
  static constexpr double slack_above = kOrderSlack;
};
struct RK4 {
  using Stepper = odeint::runge_kutta4<State>;
  static constexpr const char* name = "rk4";
  static constexpr int order = 4;
  static constexpr long n0[3] = {64, 512, 1024};
  static constexpr double slack_above = kOrderSlack;
};
struct CashKarp {
  using Stepper = odeint::runge_kutta_cash_karp54<State>;
  static constexpr const char* name = "cash_karp";
  static constexpr int order = 5;
  static constexpr long n0[3] = {32, 256, 362};
  static constexpr double slack_above = kOrderSlack;
};
struct Dopri5 {
  using Stepper = odeint::runge_kutta_dopri5<State>;
  static constexpr const char* name = "dopri5";
  static constexpr int order = 5;
  static constexpr long n0[3] = {32, 256, 362};
  static constexpr double slack_above = kOrderSlack;
};
struct Fehlberg78 {
  using Stepper = odeint::runge_kutta_fehlberg78<State>;
  static constexpr const char* name = "fehlberg78";
  static constexpr int order = 8;
  static constexpr long n0[3] = {8, 45, 64};
  // An 8th-order error falls 256× per halving of h, so between the
  // pre-asymptotic regime (local exponents 7–11 at errors above 1e-6) and the
  // roundoff floor the usable window is a factor ~4 in h; in it the Kepler
  // problems measure 8.3–8.4 (the same exponent in long double down to errors
  // of 4e-15, so it is the h⁹ terms, not rounding), the linear one 8.1. The
  // band [7.7, 8.5] still tells the 8th-order solution from the 7th (what a
  // 7(8) pair propagating its lower order would give) and from a 9th.
  static constexpr double slack_above = 0.5;
};

}  // namespace

TEMPLATE_TEST_CASE("every stepper converges with its order in fixed steps", "[ode][order]", Euler, RK4, CashKarp,
                   Dopri5, Fehlberg78) {
  using Stepper = typename TestType::Stepper;
  // The order we expect is the one Boost declares for do_step's solution.
  CHECK(int(Stepper::order_value) == TestType::order);
  const std::vector<Problem> problems{damped_rotation(), kepler(), kepler_time_varying()};
  for (std::size_t i = 0; i < problems.size(); ++i) {
    const Problem& p = problems[i];
    const Measured m =
        measure([&](long n) { return error_with_steps<Stepper>(p, n); }, p.T, TestType::n0[i]);
    INFO(TestType::name << " on " << p.name << ": measured order " << m.order << " (theory " << TestType::order
                        << ");" << m.table);
    CHECK(m.order >= TestType::order - kOrderSlack);
    CHECK(m.order <= TestType::order + TestType::slack_above);
    CHECK(m.smallest >= kRoundoffFloor);
    CHECK(m.largest <= kAsymptotic);
  }
}

TEST_CASE("ode::integrate's fixed-step rk4 and euler converge with orders 4 and 1", "[ode][order]") {
  // The public API on the nonlinear problem, fixed_step = T/n exactly: the
  // solver then takes n steps (solver.hpp).
  const Problem p = kepler();
  const enf::ode::System f = p.f;
  for (const auto& [method, order, n0] :
       {std::tuple{enf::ode::Method::RK4, 4, 512L}, std::tuple{enf::ode::Method::Euler, 1, 524288L}}) {
    const Measured m = measure(
        [&](long n) {
          enf::ode::SolverOptions o;
          o.method = method;
          o.fixed_step = p.T / double(n);
          o.max_steps = 10'000'000;
          State y = p.y0;
          const auto r = enf::ode::integrate(f, y, 0.0, p.T, o);
          REQUIRE(r.ok());
          REQUIRE(r.stats.accepted == n);
          return max_error(y, p.exact);
        },
        p.T, n0);
    INFO(enf::ode::to_string(method) << ": measured order " << m.order << ";" << m.table);
    CHECK(std::abs(m.order - order) <= kOrderSlack);
    CHECK(m.smallest >= kRoundoffFloor);
    CHECK(m.largest <= kAsymptotic);
  }
}
