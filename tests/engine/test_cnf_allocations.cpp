// No allocation inside a solve (issue 13): once a scratch has served one solve
// of a shape, the CNF's solves of that shape allocate a fixed number of times
// however many steps they take — nothing per step or per stage, on every
// path: through operator new (support/count_allocations) and through malloc
// (support/count_mallocs: Eigen's matrices, which operator new does not see).
// Each case solves rk4 in 10 and in 30 steps, and dopri5 at 1e-4 and 1e-9,
// and compares the two runs' counts.
#include <catch2/catch.hpp>

#include "engine/flow.hpp"
#include "support/count_allocations.hpp"
#include "support/count_mallocs.hpp"
#include "support/random_model.hpp"
#include "support/fixtures.hpp"

using namespace enf;
using namespace enf::test;

namespace {

struct Setup {
  FieldConfig cfg;
  Parameters<double> p;
  std::vector<double> x, eps;
  int n = 5;
};

Setup setup() {
  Setup s;
  s.cfg = particle_field(3);
  s.p = random_params(s.cfg, 3, 0.05);
  Rng rng(4);
  s.x = random_state(s.cfg, s.n, rng);
  s.eps.resize(s.x.size());
  for (double& v : s.eps) v = rng.normal() < 0 ? -1.0 : 1.0;
  return s;
}

// The solver of run k (0 or 1): rk4 in 10 or 30 steps, or dopri5 at 1e-4 or
// 1e-9 (several times the steps, and its step control, rejections included).
CnfOptions options(ode::Method method, TraceEstimator trace, GradientMode gradient, int k) {
  CnfOptions o;
  o.trace = trace;
  o.gradient = gradient;
  o.solver.method = method;
  o.solver.fixed_step = k == 0 ? 0.1 : 1.0 / 30;
  o.solver.rtol = o.solver.atol = k == 0 ? 1e-4 : 1e-9;
  o.adjoint_solver = o.solver;
  return o;
}

// Allocations of op(cnf, scratch) with the options of runs 0 and 1, each
// after a warm-up with its own options: operator new's and malloc's.
struct Counts {
  std::pair<long, long> news, mallocs;
};
template <class Op>
Counts allocations(const Setup& s, ode::Method method, TraceEstimator trace, GradientMode gradient, Op op) {
  VectorField<double> field(s.cfg, s.p.layout);
  Cnf<VectorField<double>>::Scratch scratch;
  long news[2], mallocs[2];
  for (int k = 0; k < 2; ++k) {
    Cnf<VectorField<double>> cnf(field, options(method, trace, gradient, k));
    op(cnf, scratch);  // warm-up: the scratch's first sizing
    const long before = g_allocations.load(), before_malloc = g_mallocs.load();
    op(cnf, scratch);
    news[k] = g_allocations.load() - before;
    mallocs[k] = g_mallocs.load() - before_malloc;
  }
  return {{news[0], news[1]}, {mallocs[0], mallocs[1]}};
}

}  // namespace

TEST_CASE("CNF solves allocate nothing per step", "[cnf][allocations]") {
  const Setup s = setup();
  const double* p = s.p.values.data();
  std::vector<double> grad(s.p.values.size());
  const auto forward = [&](auto& cnf, auto& scratch) { REQUIRE(cnf.forward(p, s.x, s.n, s.eps, scratch).solve.ok()); };
  const auto reverse = [&](auto& cnf, auto& scratch) {
    std::vector<double> z = s.x;
    REQUIRE(cnf.reverse(p, z, s.n, scratch).ok());
  };
  const auto lockstep = [&](auto& cnf, auto& scratch) {
    std::vector<std::vector<double>> z(4, s.x);
    cnf.reverse_lockstep(p, z, s.n, scratch);
  };
  const auto gradient = [&](auto& cnf, auto& scratch) {
    REQUIRE(cnf.gradient(p, s.x, s.n, s.eps, 1.0, scratch, grad.data()).forward.solve.ok());
  };
  const auto gradient_steps = [&](auto& cnf, auto& scratch) {
    return cnf.gradient(p, s.x, s.n, s.eps, 1.0, scratch, grad.data()).forward.solve.stats.accepted;
  };
  for (const ode::Method m : {ode::Method::RK4, ode::Method::Dopri5}) {
    INFO("method " << ode::to_string(m));
    // The two runs really differ in steps.
    {
      VectorField<double> field(s.cfg, s.p.layout);
      Cnf<VectorField<double>>::Scratch scratch;
      Cnf<VectorField<double>> few(field, options(m, TraceEstimator::Rademacher, GradientMode::Adjoint, 0)),
          many(field, options(m, TraceEstimator::Rademacher, GradientMode::Adjoint, 1));
      CHECK(gradient_steps(many, scratch) >= 3 * gradient_steps(few, scratch));
    }
    const auto check = [](const char* what, Counts c) {
      INFO(what << ": " << c.news.first << " operator new in the first run, " << c.news.second << " in the second; "
                << c.mallocs.first << " and " << c.mallocs.second << " mallocs");
      CHECK(c.news.first == c.news.second);
      CHECK(c.news.first <= 64);  // measured 12–38: the solve's own setup (results, the solver's stage vectors)
      if (kMallocsCounted) CHECK(c.mallocs.first == c.mallocs.second);
    };
    check("forward, Hutchinson", allocations(s, m, TraceEstimator::Rademacher, GradientMode::Adjoint, forward));
    check("forward, exact trace", allocations(s, m, TraceEstimator::Exact, GradientMode::Adjoint, forward));
    check("reverse (sampling)", allocations(s, m, TraceEstimator::Rademacher, GradientMode::Adjoint, reverse));
    check("reverse in lockstep", allocations(s, m, TraceEstimator::Rademacher, GradientMode::Adjoint, lockstep));
    check("adjoint gradient", allocations(s, m, TraceEstimator::Rademacher, GradientMode::Adjoint, gradient));
    check("adjoint gradient, exact trace", allocations(s, m, TraceEstimator::Exact, GradientMode::Adjoint, gradient));
    check("discrete gradient", allocations(s, m, TraceEstimator::Rademacher, GradientMode::Discrete, gradient));
  }
}
