// Lockstep solves (Cnf::forward_lockstep / reverse_lockstep): many samples
// advance stage by stage with one stacked field evaluation per stage. Each
// sample's result is bit for bit what it gives alone, whatever the other
// samples, their sizes and their order; and it agrees with the one-sample
// solve on Boost's dopri5 (Cnf::forward / reverse) to the rounding of two
// dopri5 implementations.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/flow.hpp"
#include "support/cnf_options.hpp"
#include "support/random_model.hpp"

using namespace enf;
using namespace enf::test;

namespace {

// Boost's dopri5 and the tableau-stepped one differ by rounding in a few
// operations per stage, which the step-size control can turn into slightly
// different steps; at 1e-8 the solutions then differ by at most a few
// tolerances: log p to 1e-6, the state to 1e-6 (measured ≤ 1e-8).
constexpr double kTwoSolvers = 1e-6;

template <class T>
FieldConfig field_config(bool molecules) {
  FieldConfig c = molecules ? small_molecule_field() : FieldConfig{};
  if (!molecules) {
    c.dim = 3;
    c.layers = 2;
  }
  c.hidden = 16;  // a multiple of the SIMD width: stacks are bit for bit (egnn_network.hpp)
  return c;
}

struct Batch {
  std::vector<std::vector<double>> x, eps;
  std::vector<int> n;
};

Batch make_batch(const FieldConfig& cfg, const std::vector<int>& sizes, Rng& rng) {
  Batch b;
  for (int n : sizes) {
    b.x.push_back(random_state(cfg, n, rng, 1.0));
    std::vector<double> e(b.x.back().size());
    for (double& v : e) v = rng.rademacher();
    b.eps.push_back(std::move(e));
    b.n.push_back(n);
  }
  return b;
}

Batch select(const Batch& all, const std::vector<int>& which) {
  Batch b;
  for (int i : which) {
    b.x.push_back(all.x[i]);
    b.eps.push_back(all.eps[i]);
    b.n.push_back(all.n[i]);
  }
  return b;
}

void require_same(const ForwardResult& a, const ForwardResult& b) {
  REQUIRE(a.z == b.z);
  REQUIRE(a.delta_logp == b.delta_logp);
  REQUIRE(a.log_px == b.log_px);
  REQUIRE(a.kinetic == b.kinetic);
  REQUIRE(a.frobenius == b.frobenius);
  REQUIRE(a.solve.stats.nfe == b.solve.stats.nfe);
}

}  // namespace

TEMPLATE_TEST_CASE("a lockstep solve gives every sample what it gives alone", "[cnf][lockstep]", float, double) {
  using T = TestType;
  const bool molecules = GENERATE(false, true);
  const TraceEstimator trace = GENERATE(TraceEstimator::Exact, TraceEstimator::Rademacher);
  const double lambda = GENERATE(0.0, 0.1);
  CAPTURE(molecules, int(trace), lambda);
  const FieldConfig cfg = field_config<T>(molecules);
  const auto pd = random_params(cfg, 51, 0.1);
  const std::vector<T> p(pd.values.begin(), pd.values.end());
  VectorField<T> field(cfg, pd.layout);
  CnfOptions o = exact_options(1e-8);
  o.trace = trace;
  o.ode_regularization = lambda;
  Cnf<VectorField<T>> cnf(field, o);
  typename Cnf<VectorField<T>>::Scratch s;
  Rng rng(52);
  // Molecules of different sizes; particles all alike.
  const Batch all = make_batch(cfg, molecules ? std::vector<int>{5, 3, 7, 4, 6} : std::vector<int>(5, 6), rng);

  std::vector<ForwardResult> alone;
  for (int b = 0; b < 5; ++b) alone.push_back(cnf.forward_alone(p.data(), all.x[b], all.n[b], all.eps[b], s));
  for (const std::vector<int>& order : {std::vector<int>{0, 1, 2, 3, 4}, std::vector<int>{3, 1, 4, 0, 2},
                                        std::vector<int>{2, 4}}) {
    const Batch b = select(all, order);
    const auto got = cnf.forward_lockstep(p.data(), b.x, b.n, b.eps, s);
    REQUIRE(got.size() == order.size());
    for (std::size_t k = 0; k < order.size(); ++k) {
      REQUIRE(got[k].solve.ok());
      require_same(got[k], alone[order[k]]);
    }
  }
  // The same solve on Boost's dopri5, sample by sample (double: float's own
  // rounding is far above the solvers' difference).
  if constexpr (std::is_same_v<T, double>) {
    for (int b = 0; b < 5; ++b) {
      const ForwardResult ref = cnf.forward(p.data(), all.x[b], all.n[b], all.eps[b], s);
      CHECK(std::abs(ref.log_px - alone[b].log_px) <= kTwoSolvers * std::max(1.0, std::abs(ref.log_px)));
      for (std::size_t k = 0; k < ref.z.size(); ++k) CHECK(std::abs(ref.z[k] - alone[b].z[k]) <= kTwoSolvers);
    }
  }
}

TEST_CASE("lockstep sampling gives every sample what it gives alone", "[cnf][lockstep]") {
  const FieldConfig cfg = field_config<double>(true);
  const auto p = random_params(cfg, 53, 0.1);
  VectorField<double> field(cfg, p.layout);
  Cnf<VectorField<double>> cnf(field, exact_options(1e-8));
  Cnf<VectorField<double>>::Scratch s;
  Rng rng(54);
  const Batch all = make_batch(cfg, {4, 6, 3, 5}, rng);
  std::vector<std::vector<double>> alone;
  for (int b = 0; b < 4; ++b) {
    std::vector<std::vector<double>> one{all.x[b]};
    const auto r = cnf.reverse_lockstep(p.values.data(), one, {all.n[b]}, s);
    REQUIRE(r[0].ok());
    alone.push_back(one[0]);
    std::vector<double> ref = all.x[b];
    REQUIRE(cnf.reverse(p.values.data(), ref, all.n[b], s).ok());
    for (std::size_t k = 0; k < ref.size(); ++k) CHECK(std::abs(ref[k] - one[0][k]) <= kTwoSolvers);
  }
  std::vector<std::vector<double>> z{all.x[3], all.x[0], all.x[2], all.x[1]};
  const auto r = cnf.reverse_lockstep(p.values.data(), z, {all.n[3], all.n[0], all.n[2], all.n[1]}, s);
  const int order[4] = {3, 0, 2, 1};
  for (int k = 0; k < 4; ++k) {
    REQUIRE(r[k].ok());
    REQUIRE(z[k] == alone[order[k]]);
  }
}

TEST_CASE("a batch's log-likelihoods do not depend on the thread count or the grouping", "[cnf][lockstep]") {
  // BatchFlow groups samples by thread count and memory: with Hutchinson's
  // one tangent, 1 thread solves the 9 samples together and 2 threads in
  // groups of 5 and 4; every result stays the same, bit for bit.
  FieldConfig cfg;
  cfg.dim = 2;
  cfg.hidden = 16;
  cfg.layers = 2;
  const auto p = random_params(cfg, 55, 0.1);
  VectorField<double> field(cfg, p.layout);
  Cnf<VectorField<double>> cnf(field, training_options(1e-7));
  Rng rng(56);
  const int B = 9, n = 4;
  std::vector<double> x;
  for (int b = 0; b < B; ++b) {
    const auto xb = random_state(cfg, n, rng, 1.0);
    x.insert(x.end(), xb.begin(), xb.end());
  }
  BatchFlow<VectorField<double>> one(cnf, 1), two(cnf, 2);
  const auto a = one.log_likelihood(p.values.data(), x, B, n, 7);
  const auto b = two.log_likelihood(p.values.data(), x, B, n, 7);
  for (int k = 0; k < B; ++k) require_same(a[k], b[k]);
  // And each is the sample alone.
  Cnf<VectorField<double>>::Scratch s;
  for (int k = 0; k < B; ++k) {
    std::vector<double> xk(x.begin() + k * n * 2, x.begin() + (k + 1) * n * 2);
    remove_centre_of_mass(xk, 1, n, 2, 2);
    Rng noise = Rng(7).split(std::uint64_t(k));
    require_same(a[k], cnf.forward_alone(p.values.data(), xk, n, draw_noise(TraceEstimator::Rademacher, n * 2, noise), s));
  }
}
