// The lockstep batch solver against the single-sample solver: every sample of
// a batch is solved as integrate() solves it alone (dopri5 to the bit against
// the tableau-stepped solve, to rounding against Boost's steppers), whatever
// else shares its batch; failures stay with their sample; each call of the
// BatchSystem holds every active sample.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "ode/batch_solver.hpp"
#include "ode/solver.hpp"

using namespace enf::ode;
using Vec = std::vector<double>;

#include "support/count_allocations.hpp"  // g_allocations: every operator new of this executable

namespace {

// Boost's steppers group their sums their own way: states then agree to
// rounding accumulated over a few hundred steps.
constexpr double kRounding = 1e-12;
// Step sizes come from an error estimate that is a difference of nearly equal
// stages (|err| ~ tol, the stages ~ 1): a rounding there moves the next step
// by ~1e-11 relative. Over a solve, t drifts by as much, and the last
// (shortened) step or the time of a failure shows that drift amplified, while
// the states hardly move (their local error is ~ tol). Measured: ≤ 1.2e-9.
constexpr double kStepRounding = 1e-7;

const std::vector<Method> kAllMethods = {Method::Dopri5, Method::CashKarp54, Method::Fehlberg78, Method::RK4,
                                         Method::Euler};

// A damped pendulum chain (test_rk.cpp's) with per-sample parameters and a
// jump of the forcing at t = kink, which forces rejected steps near it.
struct Pendulum {
  int n;  // pendulums; the state is (angles, velocities)
  double damping, coupling, forcing, kink;
  void operator()(const double* y, double* dydt, double t) const {
    for (int i = 0; i < n; ++i) {
      const double c = i + 1 < n ? y[i + 1] - y[i] : 0.0;
      dydt[i] = y[n + i];
      dydt[n + i] = -std::sin(y[i]) - damping * y[n + i] + coupling * c + forcing * std::cos(t) + (t > kink ? 0.4 : 0.0);
    }
  }
};

Pendulum pendulum(int b) {
  return {1 + b % 3, 0.05 + 0.03 * b, 0.2 + 0.05 * b, 0.05 * (b % 4), b % 2 ? -0.4 - 0.3 * b : 0.35 + 0.4 * b};
}

Vec pendulum_start(int b) {
  const int n = pendulum(b).n;
  Vec y(2 * std::size_t(n));
  for (int i = 0; i < 2 * n; ++i) y[i] = 0.3 * std::sin(1.0 + b + 0.7 * i);
  return y;
}

// One sample: its system, written on raw pointers so that the batch system
// below can call it without copying, and its start.
struct Problem {
  std::function<void(const double* y, double* dydt, double t, std::size_t n)> f;
  Vec y0;
};

std::vector<Problem> pendulums(int count) {
  std::vector<Problem> p;
  for (int b = 0; b < count; ++b)
    p.push_back({[P = pendulum(b)](const double* y, double* d, double t, std::size_t) { P(y, d, t); },
                 pendulum_start(b)});
  return p;
}

// y' = y², y(0) = y0: blows up at t = 1/y0.
Problem blowup(double y0) {
  return {[](const double* y, double* d, double, std::size_t) { d[0] = y[0] * y[0]; }, {y0}};
}

// The problem solved alone, as the engine does today.
SolveResult alone(const Problem& p, Vec& y, double t0, double t1, const SolverOptions& opt, bool quadrature) {
  y = p.y0;
  if (!quadrature)
    return integrate([&](const Vec& v, Vec& d, double t) { p.f(v.data(), d.data(), t, v.size()); }, y, t0, t1, opt);
  Quadrature q;
  q.system = [&](const Vec& v, Vec& d, double t, int) { p.f(v.data(), d.data(), t, v.size()); };
  q.accumulate = [](int, double) {};
  return integrate(q, y, t0, t1, opt);
}

struct Batch {
  BatchSolveResult res;
  std::vector<Vec> y;
  std::vector<std::vector<int>> calls;  // the active set of every call
};

// The problems solved together; every call's active set is kept, and its
// sizes and pointers checked.
Batch solve_batch(const std::vector<Problem>& problems, double t0, double t1, const SolverOptions& opt) {
  Batch out;
  for (const Problem& p : problems) out.y.push_back(p.y0);
  std::vector<std::size_t> sizes;
  for (const Problem& p : problems) sizes.push_back(p.y0.size());
  bool consistent = true;
  const BatchSystem f = [&](const BatchEval& e) {
    consistent = consistent && e.y.size() == e.active.size() && e.t.size() == e.active.size() &&
                 e.dydt.size() == e.active.size();
    out.calls.emplace_back(e.active.begin(), e.active.end());
    for (std::size_t k = 0; k < e.active.size(); ++k) {
      const auto b = std::size_t(e.active[k]);
      if (b >= problems.size()) {
        consistent = false;
        continue;
      }
      consistent = consistent && (sizes[b] == 0 || (e.y[k] && e.dydt[k]));
      consistent = consistent && std::min(t0, t1) <= e.t[k] && e.t[k] <= std::max(t0, t1);
      problems[b].f(e.y[k], e.dydt[k], e.t[k], sizes[b]);
    }
  };
  out.res = integrate_batch(f, out.y, t0, t1, opt);
  CHECK(consistent);
  REQUIRE(out.res.samples.size() == problems.size());
  return out;
}

void check_identical(const SolveResult& a, const Vec& ya, const SolveResult& b, const Vec& yb) {
  CHECK(a.status == b.status);
  CHECK(a.message == b.message);
  CHECK(a.t_failed == b.t_failed);
  CHECK(a.stats.nfe == b.stats.nfe);
  CHECK(a.stats.accepted == b.stats.accepted);
  CHECK(a.stats.rejected == b.stats.rejected);
  CHECK(a.stats.last_step == b.stats.last_step);
  CHECK(ya == yb);
}

// Against the solve on Boost's stepper: the same status, counts and message,
// the step sizes within kStepRounding and the states to rounding (the
// components outside the error norm only to the accuracy the steps give them,
// which is not checked). dopri5 on Boost's stepper and on its tableau round
// differently (test_rk.cpp), and that difference grows past rounding where
// the steps turn on it: the accepted/rejected pattern near a blow-up or at a
// stiff stability limit, hundreds of steps of a fast component. Where
// `dopri5_close` is false, dopri5 is held to the status only here (its
// reference is then the tableau-stepped solve, to the bit).
void check_close(const SolveResult& a, const Vec& ya, const SolveResult& b, const Vec& yb, const SolverOptions& opt,
                 bool dopri5_close) {
  CHECK(a.status == b.status);
  if (opt.method == Method::Dopri5 && !dopri5_close) return;
  if (opt.method != Method::Dopri5) CHECK(a.message == b.message);
  CHECK(a.stats.nfe == b.stats.nfe);
  CHECK(a.stats.accepted == b.stats.accepted);
  CHECK(a.stats.rejected == b.stats.rejected);
  CHECK(a.stats.last_step == Approx(b.stats.last_step).epsilon(kStepRounding));
  CHECK(a.t_failed == Approx(b.t_failed).epsilon(kStepRounding));
  REQUIRE(ya.size() == yb.size());
  const std::size_t controlled = opt.error_components ? std::min(opt.error_components, ya.size()) : ya.size();
  double worst = 0;
  for (std::size_t m = 0; m < controlled; ++m)
    worst = std::max(worst, std::abs(ya[m] - yb[m]) / std::max(1.0, std::abs(yb[m])));
  CHECK(worst <= kRounding);
}

// Each sample against its solve alone: bit for bit against the tableau-stepped
// dopri5, to rounding against Boost's steppers (dopri5: see check_close).
void check_against_alone(const std::vector<Problem>& problems, const Batch& batch, double t0, double t1,
                         const SolverOptions& opt, bool dopri5_close = false) {
  for (std::size_t b = 0; b < problems.size(); ++b) {
    INFO("sample " << b);
    Vec y;
    const SolveResult ref = alone(problems[b], y, t0, t1, opt, false);
    check_close(batch.res.samples[b], batch.y[b], ref, y, opt, dopri5_close);
    if (opt.method == Method::Dopri5) {
      const SolveResult quad = alone(problems[b], y, t0, t1, opt, true);
      check_identical(batch.res.samples[b], batch.y[b], quad, y);
    }
  }
}

// Every call holds every sample still active: a sample is in calls 1 … nfe_b
// and no other, so there are max_b nfe_b calls and Σ_b nfe_b evaluations.
void check_lockstep(const Batch& batch) {
  long max_nfe = 0, sum_nfe = 0;
  for (const SolveResult& r : batch.res.samples) {
    max_nfe = std::max(max_nfe, r.stats.nfe);
    sum_nfe += r.stats.nfe;
  }
  CHECK(batch.res.calls == long(batch.calls.size()));
  CHECK(batch.res.calls == max_nfe);
  CHECK(batch.res.evaluations == sum_nfe);
  for (std::size_t c = 0; c < batch.calls.size(); ++c) {
    const std::vector<int>& active = batch.calls[c];
    INFO("call " << c);
    CHECK(std::is_sorted(active.begin(), active.end()));
    std::vector<int> expect;
    for (std::size_t b = 0; b < batch.res.samples.size(); ++b)
      if (batch.res.samples[b].stats.nfe > long(c)) expect.push_back(int(b));
    CHECK(active == expect);
  }
}

SolverOptions options(Method m) {
  SolverOptions o;
  o.method = m;
  o.rtol = 1e-7;
  o.atol = 1e-8;
  o.fixed_step = 0.01;
  return o;
}

}  // namespace

TEST_CASE("each sample of a batch is solved as integrate() solves it alone", "[ode][batch]") {
  auto problems = pendulums(6);
  problems.push_back({[](const double*, double*, double, std::size_t) {}, {}});  // an empty state
  for (const Method m : kAllMethods)
    for (const double t1 : {3.0, -2.0}) {
      INFO(to_string(m) << ", t1 = " << t1);
      const SolverOptions opt = options(m);
      const Batch batch = solve_batch(problems, 0.0, t1, opt);
      check_against_alone(problems, batch, 0.0, t1, opt, true);
      check_lockstep(batch);
      // The samples differ: in state size and in their steps (the test would
      // prove little if they moved as one).
      long min_acc = batch.res.samples[0].stats.accepted, max_acc = min_acc, rejected = 0;
      for (const SolveResult& r : batch.res.samples) {
        CHECK(r.ok());
        min_acc = std::min(min_acc, r.stats.accepted);
        max_acc = std::max(max_acc, r.stats.accepted);
        rejected += r.stats.rejected;
      }
      if (is_adaptive(m)) {
        CHECK(min_acc < max_acc);
        CHECK(rejected > 0);
        CHECK(batch.res.evaluations < long(problems.size()) * batch.res.calls);
      } else {
        CHECK(min_acc == max_acc);  // one grid
      }
    }
}

TEST_CASE("a sample's result does not depend on its batch", "[ode][batch]") {
  const auto problems = pendulums(5);
  std::vector<int> perm = {3, 0, 4, 2, 1};
  std::vector<Problem> permuted;
  for (int b : perm) permuted.push_back(problems[std::size_t(b)]);
  for (const Method m : kAllMethods) {
    INFO(to_string(m));
    const SolverOptions opt = options(m);
    const Batch all = solve_batch(problems, 0.0, 2.5, opt);
    const Batch shuffled = solve_batch(permuted, 0.0, 2.5, opt);
    for (std::size_t b = 0; b < problems.size(); ++b) {
      INFO("sample " << b);
      const Batch one = solve_batch({problems[b]}, 0.0, 2.5, opt);
      check_identical(all.res.samples[b], all.y[b], one.res.samples[0], one.y[0]);
      const std::size_t at = std::size_t(std::find(perm.begin(), perm.end(), int(b)) - perm.begin());
      check_identical(shuffled.res.samples[at], shuffled.y[at], one.res.samples[0], one.y[0]);
      CHECK(one.res.calls == one.res.samples[0].stats.nfe);
    }
  }
}

TEST_CASE("batch options: a given first step, error components, t0 == t1", "[ode][batch]") {
  const auto problems = pendulums(5);
  SECTION("a given initial step (one evaluation less)") {
    for (const Method m : {Method::Dopri5, Method::CashKarp54, Method::Fehlberg78}) {
      INFO(to_string(m));
      SolverOptions opt = options(m);
      opt.initial_step = 0.02;
      const Batch batch = solve_batch(problems, 1.0, -1.5, opt);
      check_against_alone(problems, batch, 1.0, -1.5, opt);
      check_lockstep(batch);
      if (m == Method::Dopri5)
        for (const SolveResult& r : batch.res.samples) CHECK(r.stats.nfe == 6 * (r.stats.accepted + r.stats.rejected) + 1);
    }
  }
  SECTION("error components: a fast component outside the error norm") {
    // Every sample carries z' = 20 z after its pendulum state, which in the
    // norm costs many steps (outside it, z is as inaccurate as the steps make
    // it); only the first 2 components (the smallest chain) enter the norm.
    std::vector<Problem> withq;
    for (int b = 0; b < 5; ++b) {
      Problem p = problems[std::size_t(b)];
      const Pendulum P = pendulum(b);
      p.f = [P](const double* y, double* d, double t, std::size_t n) {
        P(y, d, t);
        d[n - 1] = 20 * y[n - 1];
      };
      p.y0.push_back(1.0);
      withq.push_back(p);
    }
    for (const Method m : {Method::Dopri5, Method::CashKarp54, Method::Fehlberg78}) {
      INFO(to_string(m));
      SolverOptions opt = options(m);
      opt.error_components = 2;
      const Batch batch = solve_batch(withq, 0.0, 2.0, opt);
      check_against_alone(withq, batch, 0.0, 2.0, opt);
      opt.error_components = 0;
      const Batch full = solve_batch(withq, 0.0, 2.0, opt);
      check_against_alone(withq, full, 0.0, 2.0, opt);
      // The option is honoured: the quadrature in the norm costs steps.
      for (std::size_t b = 0; b < withq.size(); ++b)
        CHECK(full.res.samples[b].stats.accepted > batch.res.samples[b].stats.accepted);
    }
  }
  SECTION("t0 == t1: no evaluation, every state as it was (even a non-finite one)") {
    auto probs = problems;
    probs[1].y0[0] = std::numeric_limits<double>::quiet_NaN();
    for (const Method m : kAllMethods) {
      const Batch batch = solve_batch(probs, 0.7, 0.7, options(m));
      CHECK(batch.res.calls == 0);
      CHECK(batch.res.evaluations == 0);
      for (std::size_t b = 0; b < probs.size(); ++b) {
        CHECK(batch.res.samples[b].ok());
        CHECK(batch.res.samples[b].stats.nfe == 0);
        if (b != 1) CHECK(batch.y[b] == probs[b].y0);
      }
      CHECK(std::isnan(batch.y[1][0]));
    }
  }
  SECTION("an empty batch") {
    std::vector<Vec> none;
    const auto r = integrate_batch([](const BatchEval&) { FAIL("called"); }, none, 0.0, 1.0, SolverOptions{});
    CHECK(r.samples.empty());
    CHECK(r.calls == 0);
  }
}

TEST_CASE("a failing sample fails as it would alone, the others finish", "[ode][batch]") {
  auto problems = pendulums(5);
  SECTION("a blow-up: y' = y² from y0 = 10 (t = 0.1) to t = 1") {
    problems.insert(problems.begin() + 2, blowup(10.0));
    for (const Method m : {Method::Dopri5, Method::CashKarp54, Method::Fehlberg78}) {
      INFO(to_string(m));
      const Batch batch = solve_batch(problems, 0.0, 1.0, options(m));
      check_against_alone(problems, batch, 0.0, 1.0, options(m));
      check_lockstep(batch);
      const SolveResult& r = batch.res.samples[2];
      CHECK_FALSE(r.ok());
      CHECK(r.t_failed == Approx(0.1).margin(1e-3));
      for (std::size_t b = 0; b < problems.size(); ++b)
        if (b != 2) CHECK(batch.res.samples[b].ok());
    }
  }
  SECTION("one sample exhausts max_steps (a stiff one)") {
    problems.push_back({[](const double* y, double* d, double t, std::size_t) { d[0] = -1e5 * (y[0] - std::cos(t)); },
                        {0.0}});
    for (const Method m : {Method::Dopri5, Method::CashKarp54, Method::Fehlberg78}) {
      INFO(to_string(m));
      SolverOptions opt = options(m);
      opt.max_steps = 400;
      const Batch batch = solve_batch(problems, 0.0, 1.0, opt);
      check_against_alone(problems, batch, 0.0, 1.0, opt);
      check_lockstep(batch);
      const SolveResult& r = batch.res.samples.back();
      CHECK(r.status == Status::MaxStepsExceeded);
      CHECK(r.stats.accepted + r.stats.rejected == 400);
      for (std::size_t b = 0; b + 1 < problems.size(); ++b) CHECK(batch.res.samples[b].ok());
    }
  }
  SECTION("a non-finite initial state, a non-finite f(y0), a field turning NaN") {
    problems[1].y0[1] = std::numeric_limits<double>::infinity();
    problems.push_back({[](const double*, double* d, double, std::size_t) { d[0] = std::log(-1.0); }, {1.0}});
    problems.push_back({[](const double* y, double* d, double t, std::size_t n) {
                          for (std::size_t i = 0; i < n; ++i)
                            d[i] = t > 0.5 ? std::numeric_limits<double>::quiet_NaN() : -y[i];
                        },
                        {1.0, -0.5}});
    for (const Method m : kAllMethods) {
      INFO(to_string(m));
      const Batch batch = solve_batch(problems, 0.0, 1.0, options(m));
      check_against_alone(problems, batch, 0.0, 1.0, options(m));
      check_lockstep(batch);
      CHECK(batch.res.samples[1].status == Status::NonFinite);
      CHECK(batch.res.samples[1].stats.nfe == 0);
      CHECK_THAT(batch.res.samples[1].message, Catch::Contains("non-finite initial state"));
      CHECK(batch.y[1][1] == std::numeric_limits<double>::infinity());
      const std::size_t late = problems.size() - 1, at0 = late - 1;
      CHECK(batch.res.samples[late].status == Status::NonFinite);
      CHECK(batch.res.samples[late].t_failed >= 0.5);
      for (double v : batch.y[late]) CHECK(std::isfinite(v));
      if (is_adaptive(m)) {
        CHECK(batch.res.samples[at0].status == Status::NonFinite);
        CHECK(batch.res.samples[at0].t_failed == 0.0);
        CHECK(batch.res.samples[at0].stats.nfe == 1);
      }
      for (std::size_t b : {0, 2, 3, 4}) CHECK(batch.res.samples[b].ok());
    }
  }
  SECTION("a fixed step needing more than max_steps fails every sample before any evaluation") {
    problems[3].y0[0] = std::numeric_limits<double>::quiet_NaN();
    SolverOptions opt = options(Method::Euler);
    opt.fixed_step = 1e-3;
    opt.max_steps = 10;
    const Batch batch = solve_batch(problems, 0.0, 1.0, opt);
    check_against_alone(problems, batch, 0.0, 1.0, opt);
    CHECK(batch.res.calls == 0);
    for (std::size_t b = 0; b < problems.size(); ++b) {
      Vec y;
      const SolveResult ref = alone(problems[b], y, 0.0, 1.0, opt, false);
      CHECK(batch.res.samples[b].status == (b == 3 ? Status::NonFinite : Status::MaxStepsExceeded));
      CHECK(batch.res.samples[b].message == ref.message);
    }
  }
}

TEST_CASE("invalid arguments throw where integrate() throws", "[ode][batch]") {
  const BatchSystem f = [](const BatchEval& e) {
    for (std::size_t k = 0; k < e.active.size(); ++k) e.dydt[k][0] = -e.y[k][0];
  };
  const System g = [](const Vec& y, Vec& d, double) { d[0] = -y[0]; };
  auto both_throw = [&](const SolverOptions& o, double t0, double t1) {
    std::vector<Vec> ys = {{1.0}, {2.0}};
    Vec y = {1.0};
    CHECK_THROWS_AS(integrate(g, y, t0, t1, o), std::invalid_argument);
    CHECK_THROWS_AS(integrate_batch(f, ys, t0, t1, o), std::invalid_argument);
    CHECK(ys == std::vector<Vec>{{1.0}, {2.0}});
  };
  auto bad = [&](auto mutate) {
    SolverOptions o;
    mutate(o);
    both_throw(o, 0.0, 1.0);
  };
  bad([](SolverOptions& o) { o.rtol = 0; });
  bad([](SolverOptions& o) { o.atol = -1; });
  bad([](SolverOptions& o) { o.fixed_step = 0; });
  bad([](SolverOptions& o) { o.max_steps = 0; });
  bad([](SolverOptions& o) { o.initial_step = -1; });
  bad([](SolverOptions& o) { o.rtol = std::numeric_limits<double>::quiet_NaN(); });
  both_throw(SolverOptions{}, 0.0, std::numeric_limits<double>::infinity());
  both_throw(SolverOptions{}, std::numeric_limits<double>::quiet_NaN(), 1.0);
  std::vector<Vec> ys = {{1.0}};
  CHECK_THROWS_AS(integrate_batch(BatchSystem{}, ys, 0.0, 1.0, SolverOptions{}), std::invalid_argument);
  // The system's own exception leaves every state as it was.
  CHECK_THROWS_AS(integrate_batch([](const BatchEval&) { throw std::runtime_error("boom"); }, ys, 0.0, 1.0,
                                  SolverOptions{}),
                  std::runtime_error);
  CHECK(ys == std::vector<Vec>{{1.0}});
}

TEST_CASE("batch stepping does not allocate", "[ode][batch]") {
  // A system on raw pointers that allocates nothing itself.
  const BatchSystem f = [](const BatchEval& e) {
    for (std::size_t k = 0; k < e.active.size(); ++k) {
      const double* y = e.y[k];
      e.dydt[k][0] = y[1];
      e.dydt[k][1] = -std::sin(y[0]) - 0.1 * (1 + e.active[k]) * y[1];
    }
  };
  for (const Method m : kAllMethods) {
    INFO(to_string(m));
    long allocs[2], calls[2];
    for (int k = 0; k < 2; ++k) {
      std::vector<Vec> ys = {{0.3, 0.0}, {-0.2, 0.5}, {1.0, 0.1}};
      const long before = g_allocations.load();
      const auto r = integrate_batch(f, ys, 0.0, 1.0 + 3.0 * k, options(m));  // [0, 1] then [0, 4]
      allocs[k] = g_allocations.load() - before;
      calls[k] = r.calls;
      for (const SolveResult& s : r.samples) REQUIRE(s.ok());
    }
    CHECK(calls[1] > 2 * calls[0]);
    CHECK(allocs[1] == allocs[0]);
  }
}
