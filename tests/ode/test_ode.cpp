// The ODE solvers: accuracy against closed forms, convergence orders, step
// statistics, failures as values, option validation.
#include <catch2/catch.hpp>

#include <Eigen/Dense>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <unsupported/Eigen/MatrixFunctions>
#include <vector>

#include "ode/solver.hpp"

using namespace enf::ode;
using Vec = std::vector<double>;

#include "support/count_allocations.hpp"  // g_allocations: every operator new of this executable

namespace {

// Tolerances.
// Adaptive methods at rtol = atol = 1e-10 on a smooth 5-D linear problem over a
// unit interval: the global error is a few times the local tolerance; 1e-8 is
// the bound asked for (and what the fixtures README §6 allows at 1e-10).
constexpr double kTightSolveRelative = 1e-8;
constexpr double kTightTol = 1e-10;
// Measured order of convergence, log2(e(h) / e(h/2)): within ±0.3 of theory.
constexpr double kOrderSlack = 0.3;
// Scalar Gaussian problem at 1e-10: same reasoning as kTightSolveRelative.
constexpr double kScalarRelative = 1e-8;
// A blow-up at t = 1 must be detected within this distance of it.
constexpr double kBlowUpWindow = 1e-3;

const std::vector<Method> kAdaptive = {Method::Dopri5, Method::CashKarp54, Method::Fehlberg78};

// A fixed 5×5 matrix with entries uniform in [−0.6, 0.6] (seeded), so that
// exp(A) is O(1) and the problem is non-stiff.
Eigen::MatrixXd test_matrix() {
  std::mt19937_64 rng(20240611);
  std::uniform_real_distribution<double> u(-0.6, 0.6);
  Eigen::MatrixXd A(5, 5);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 5; ++j) A(i, j) = u(rng);
  return A;
}

const Vec kY0 = {1.0, -0.5, 0.25, 2.0, -1.5};

System linear_field(const Eigen::MatrixXd& A) {
  return [A](const Vec& y, Vec& dydt, double) {
    Eigen::Map<Eigen::VectorXd>(dydt.data(), Eigen::Index(dydt.size())).noalias() =
        A * Eigen::Map<const Eigen::VectorXd>(y.data(), Eigen::Index(y.size()));
  };
}

Vec exact_linear(const Eigen::MatrixXd& A, const Vec& y0, double t) {
  const Eigen::VectorXd y = (A * t).exp() * Eigen::Map<const Eigen::VectorXd>(y0.data(), Eigen::Index(y0.size()));
  return Vec(y.data(), y.data() + y.size());
}

double rel_err(const Vec& a, const Vec& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}

SolverOptions adaptive_opts(Method m, double tol) {
  SolverOptions o;
  o.method = m;
  o.rtol = o.atol = tol;
  return o;
}

SolverOptions fixed_opts(Method m, double h) {
  SolverOptions o;
  o.method = m;
  o.fixed_step = h;
  return o;
}

// Error at t = 1 of the linear problem for the given options.
double linear_error(const SolverOptions& o) {
  const auto A = test_matrix();
  Vec y = kY0;
  const auto r = integrate(linear_field(A), y, 0.0, 1.0, o);
  REQUIRE(r.ok());
  return rel_err(y, exact_linear(A, kY0, 1.0));
}

}  // namespace

TEST_CASE("adaptive methods match exp(A) y0 forward and backward", "[ode]") {
  const auto A = test_matrix();
  const Vec y1_exact = exact_linear(A, kY0, 1.0);
  for (const Method m : kAdaptive) {
    INFO("method " << to_string(m));
    const auto opt = adaptive_opts(m, kTightTol);
    Vec y = kY0;
    const auto fwd = integrate(linear_field(A), y, 0.0, 1.0, opt);
    REQUIRE(fwd.ok());
    CHECK(fwd.message.empty());
    CHECK(rel_err(y, y1_exact) <= kTightSolveRelative);

    Vec back = y1_exact;
    const auto bwd = integrate(linear_field(A), back, 1.0, 0.0, opt);
    REQUIRE(bwd.ok());
    CHECK(bwd.stats.last_step < 0);
    CHECK(rel_err(back, kY0) <= kTightSolveRelative);
  }
}

TEST_CASE("fixed-step methods converge with orders 4 (rk4) and 1 (euler)", "[ode]") {
  struct Case {
    Method m;
    double h, order;
  };
  for (const Case c : {Case{Method::RK4, 0.1, 4.0}, Case{Method::Euler, 0.01, 1.0}}) {
    const double e1 = linear_error(fixed_opts(c.m, c.h));
    const double e2 = linear_error(fixed_opts(c.m, c.h / 2));
    const double measured = std::log2(e1 / e2);
    INFO(to_string(c.m) << ": e(h) = " << e1 << ", e(h/2) = " << e2 << ", order " << measured);
    CHECK(measured == Approx(c.order).margin(kOrderSlack));
  }
}

TEST_CASE("adaptive error decreases with the tolerance", "[ode]") {
  // Tolerances 1000× apart: fehlberg78 takes only 2–5 steps here, and between
  // neighbouring tolerances (1e-6 vs 1e-8) its error is not monotone.
  for (const Method m : kAdaptive) {
    const double e4 = linear_error(adaptive_opts(m, 1e-4));
    const double e7 = linear_error(adaptive_opts(m, 1e-7));
    const double e10 = linear_error(adaptive_opts(m, 1e-10));
    INFO(to_string(m) << ": errors " << e4 << ", " << e7 << ", " << e10);
    CHECK(e7 < e4);
    CHECK(e10 < e7);
  }
}

TEST_CASE("step statistics and function-evaluation counts", "[ode]") {
  // A derivative jump at t = 0.5 forces rejected steps.
  const System kink = [](const Vec& y, Vec& dydt, double t) {
    dydt[0] = t < 0.5 ? y[1] : -5.0 * y[0];
    dydt[1] = -y[0];
  };
  for (const Method m : kAdaptive) {
    INFO("method " << to_string(m));
    Vec y = {1.0, 0.0};
    const auto r = integrate(kink, y, 0.0, 1.0, adaptive_opts(m, 1e-8));
    REQUIRE(r.ok());
    const auto& s = r.stats;
    const long attempts = s.accepted + s.rejected;
    CHECK(s.nfe > 0);
    CHECK(s.accepted > 0);
    CHECK(s.rejected > 0);
    CHECK(s.last_step > 0);
    if (m == Method::Dopri5) {
      // FSAL: 6 new evaluations per attempt, 2 for the initial-step heuristic.
      CHECK(s.nfe <= 7 * attempts + 2);
      CHECK(s.nfe == 6 * attempts + 2);
    } else {
      // f(y) once per accepted step (not after the last), stages 2..s per attempt.
      const long stages = m == Method::CashKarp54 ? 6 : 13;
      CHECK(s.nfe == 2 + (stages - 1) * attempts + s.accepted - 1);
    }
  }

  SECTION("a given initial step saves the heuristic's extra evaluation") {
    auto opt = adaptive_opts(Method::Dopri5, 1e-8);
    opt.initial_step = 1e-3;
    Vec y = {1.0, 0.0};
    const auto r = integrate(kink, y, 0.0, 1.0, opt);
    REQUIRE(r.ok());
    CHECK(r.stats.nfe == 6 * (r.stats.accepted + r.stats.rejected) + 1);
  }
  SECTION("fixed steps: ceil(|t1 - t0| / h) equal steps") {
    const auto A = test_matrix();
    Vec y = kY0;
    auto r = integrate(linear_field(A), y, 0.0, 0.3, fixed_opts(Method::RK4, 0.1));
    REQUIRE(r.ok());
    CHECK(r.stats.accepted == 3);
    CHECK(r.stats.nfe == 12);
    y = kY0;
    r = integrate(linear_field(A), y, 1.0, 0.0, fixed_opts(Method::Euler, 0.3));
    REQUIRE(r.ok());
    CHECK(r.stats.accepted == 4);
    CHECK(r.stats.nfe == 4);
    CHECK(r.stats.last_step == Approx(-0.25));
  }
  SECTION("t0 == t1 does nothing") {
    Vec y = kY0;
    const auto r = integrate(linear_field(test_matrix()), y, 0.5, 0.5, SolverOptions{});
    CHECK(r.ok());
    CHECK(r.stats.nfe == 0);
    CHECK(y == kY0);
  }
}

TEST_CASE("no allocation per step", "[ode]") {
  const auto A = test_matrix();
  const System f = linear_field(A);
  for (const Method m : {Method::Dopri5, Method::CashKarp54, Method::Fehlberg78, Method::RK4, Method::Euler}) {
    INFO("method " << to_string(m));
    const auto opt = is_adaptive(m) ? adaptive_opts(m, 1e-9) : fixed_opts(m, 0.01);
    long allocs[2], steps[2];
    for (int k = 0; k < 2; ++k) {
      Vec y = kY0;
      const long before = g_allocations.load();
      const auto r = integrate(f, y, 0.0, 1.0 + 3.0 * k, opt);  // [0, 1] then [0, 4]
      allocs[k] = g_allocations.load() - before;
      steps[k] = r.stats.accepted;
      REQUIRE(r.ok());
    }
    CHECK(steps[1] > 2 * steps[0]);
    CHECK(allocs[1] == allocs[0]);
  }
}

TEST_CASE("rk4 integrates backwards and recovers the start", "[ode]") {
  // rk4 with h = 0.01 on this problem: global error ~1e-9 each way.
  constexpr double kRk4Roundtrip = 1e-7;
  const auto A = test_matrix();
  Vec y = kY0;
  REQUIRE(integrate(linear_field(A), y, 0.0, 1.0, fixed_opts(Method::RK4, 0.01)).ok());
  REQUIRE(integrate(linear_field(A), y, 1.0, 0.0, fixed_opts(Method::RK4, 0.01)).ok());
  CHECK(rel_err(y, kY0) <= kRk4Roundtrip);
}

TEST_CASE("failures are returned as values", "[ode]") {
  const auto A = test_matrix();

  SECTION("max_steps exceeded") {
    auto opt = adaptive_opts(Method::Dopri5, 1e-10);
    opt.max_steps = 3;
    Vec y = kY0;
    const auto r = integrate(linear_field(A), y, 0.0, 1.0, opt);
    CHECK(r.status == Status::MaxStepsExceeded);
    CHECK_THAT(r.message, Catch::Contains("steps"));
    CHECK(r.stats.accepted + r.stats.rejected == 3);
    CHECK(r.t_failed > 0.0);
    CHECK(r.t_failed < 1.0);
    for (double v : y) CHECK(std::isfinite(v));
  }
  SECTION("a stiff problem exhausts the step budget") {
    // y' = -1e5 (y - cos t): explicit methods need ~1e5 steps.
    const System stiff = [](const Vec& y, Vec& dydt, double t) { dydt[0] = -1e5 * (y[0] - std::cos(t)); };
    auto opt = adaptive_opts(Method::Dopri5, 1e-6);
    opt.max_steps = 1000;
    Vec y = {0.0};
    const auto r = integrate(stiff, y, 0.0, 1.0, opt);
    CHECK(r.status == Status::MaxStepsExceeded);
    CHECK_THAT(r.message, Catch::Contains("steps"));
  }
  SECTION("fixed step needing more than max_steps") {
    auto opt = fixed_opts(Method::Euler, 1e-3);
    opt.max_steps = 10;
    Vec y = kY0;
    const auto r = integrate(linear_field(A), y, 0.0, 1.0, opt);
    CHECK(r.status == Status::MaxStepsExceeded);
    CHECK_THAT(r.message, Catch::Contains("steps"));
    CHECK(r.stats.nfe == 0);
  }
  SECTION("a field that turns NaN after t = 0.5") {
    const System nan_late = [](const Vec& y, Vec& dydt, double t) {
      for (std::size_t i = 0; i < y.size(); ++i)
        dydt[i] = t > 0.5 ? std::numeric_limits<double>::quiet_NaN() : -y[i];
    };
    for (const Method m : {Method::Dopri5, Method::CashKarp54, Method::Fehlberg78, Method::RK4, Method::Euler}) {
      INFO("method " << to_string(m));
      Vec y = kY0;
      const auto r = integrate(nan_late, y, 0.0, 1.0, is_adaptive(m) ? adaptive_opts(m, 1e-6) : fixed_opts(m, 0.01));
      CHECK(r.status == Status::NonFinite);
      CHECK(r.t_failed >= 0.5);
      CHECK_THAT(r.message, Catch::Contains("non-finite"));
      for (double v : y) CHECK(std::isfinite(v));
    }
  }
  SECTION("NaN going backwards (t < 0.5, from 1 to 0)") {
    const System nan_early = [](const Vec& y, Vec& dydt, double t) {
      dydt[0] = t < 0.5 ? std::numeric_limits<double>::quiet_NaN() : y[0];
    };
    Vec y = {1.0};
    const auto r = integrate(nan_early, y, 1.0, 0.0, SolverOptions{});
    CHECK(r.status == Status::NonFinite);
    CHECK(r.t_failed <= 0.5);
  }
  SECTION("NaN at the start") {
    Vec y = {std::numeric_limits<double>::quiet_NaN()};
    const auto r = integrate([](const Vec& v, Vec& d, double) { d[0] = v[0]; }, y, 0.0, 1.0, SolverOptions{});
    CHECK(r.status == Status::NonFinite);
    CHECK(r.stats.nfe == 0);
    Vec z = {1.0};
    const auto r2 = integrate([](const Vec&, Vec& d, double) { d[0] = std::log(-1.0); }, z, 0.0, 1.0, SolverOptions{});
    CHECK(r2.status == Status::NonFinite);
    CHECK(r2.t_failed == 0.0);
  }
  SECTION("a solution blowing up at t = 1 stops there") {
    // y' = y², y(0) = 1: y = 1/(1 − t).
    const System blowup = [](const Vec& y, Vec& dydt, double) { dydt[0] = y[0] * y[0]; };
    Vec y = {1.0};
    const auto r = integrate(blowup, y, 0.0, 2.0, SolverOptions{});
    CHECK(r.status != Status::Ok);
    CHECK(r.t_failed == Approx(1.0).margin(kBlowUpWindow));
    CHECK_FALSE(r.message.empty());
  }
}

TEST_CASE("invalid options throw std::invalid_argument", "[ode]") {
  const System f = [](const Vec& y, Vec& d, double) { d[0] = -y[0]; };
  Vec y = {1.0};
  auto bad = [&](auto mutate) {
    SolverOptions o;
    mutate(o);
    CHECK_FALSE(validate(o).empty());
    CHECK_THROWS_AS(integrate(f, y, 0.0, 1.0, o), std::invalid_argument);
  };
  bad([](SolverOptions& o) { o.rtol = 0; });
  bad([](SolverOptions& o) { o.rtol = -1e-5; });
  bad([](SolverOptions& o) { o.atol = -1; });
  bad([](SolverOptions& o) { o.fixed_step = 0; });
  bad([](SolverOptions& o) { o.fixed_step = -0.1; });
  bad([](SolverOptions& o) { o.max_steps = 0; });
  bad([](SolverOptions& o) { o.max_steps = -5; });
  bad([](SolverOptions& o) { o.initial_step = -1; });
  bad([](SolverOptions& o) { o.rtol = std::numeric_limits<double>::quiet_NaN(); });
  CHECK(validate(SolverOptions{}).empty());
  CHECK_THROWS_AS(integrate(f, y, 0.0, std::numeric_limits<double>::infinity(), SolverOptions{}),
                  std::invalid_argument);

  for (const Method m : {Method::Dopri5, Method::CashKarp54, Method::Fehlberg78, Method::RK4, Method::Euler})
    CHECK(parse_method(to_string(m)) == m);
  CHECK(parse_method("cash_karp") == Method::CashKarp54);
  try {
    parse_method("rk45");
    FAIL("parse_method accepted an unknown name");
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    for (const char* name : {"rk45", "dopri5", "cash_karp", "fehlberg78", "rk4", "euler"})
      CHECK_THAT(msg, Catch::Contains(name));
  }
}

TEST_CASE("scalar nonlinear problem dy/dt = -2ty has y = exp(-t^2)", "[ode]") {
  const System gauss = [](const Vec& y, Vec& dydt, double t) { dydt[0] = -2.0 * t * y[0]; };
  for (const Method m : kAdaptive) {
    INFO("method " << to_string(m));
    Vec y = {std::exp(-1.0)};
    const auto r = integrate(gauss, y, -1.0, 2.0, adaptive_opts(m, kTightTol));
    REQUIRE(r.ok());
    CHECK(y[0] == Approx(std::exp(-4.0)).epsilon(kScalarRelative));
    const auto back = integrate(gauss, y, 2.0, 0.0, adaptive_opts(m, kTightTol));
    REQUIRE(back.ok());
    CHECK(y[0] == Approx(1.0).epsilon(kScalarRelative));
  }
}
