// Lockstep solves (ode/batch_solver.hpp through Cnf::reverse_lockstep and
// Cnf::forward_lockstep): a group of samples advances together, every stage
// one stacked field evaluation, each sample with its own steps. Tested
// against the same samples solved one by one (the slow, obvious path), for
// sampling and for likelihoods with every trace estimator; and the groups'
// independence of threads and of shares over ranks.
#include <catch2/catch.hpp>

#include "egnn/communicator.hpp"
#include "engine/flow.hpp"
#include "support/cnf_options.hpp"
#include "support/fixtures.hpp"
#include "support/random_model.hpp"

using namespace enf;
using namespace enf::test;

// The lockstep path (every stage one stacked evaluation over a group of
// samples) against the samples solved one by one.
template <class T>
void check_lockstep_sampling(ode::Method method, double rtol, double tol) {
  // Mildly perturbed weights, as the round-trip test's: with 0.2 this random
  // field is chaotic enough to amplify a rounding difference of the stacked
  // products (1e-13) to 1e-2 over one solve (measured), which would hide
  // whether the solves agree.
  const FieldConfig cfg = particle_field(3);
  const auto p = random_params(cfg, 53, 0.05);
  const Parameters<T> pt = p.template cast<T>();
  VectorField<T> field(cfg, pt.layout);
  CnfOptions o = exact_options(rtol);
  o.solver.method = method;
  o.solver.fixed_step = 1.0 / 7;
  Cnf<VectorField<T>> cnf(field, o);
  BatchFlow<VectorField<T>> flow(cnf, 2);
  const int n = 5, B = 150;  // 9 groups of 16 (lockstep_group(5)) and one of 6
  REQUIRE(lockstep_group(n) == 16);
  long nfe_lockstep = 0, nfe_alone = 0;
  const auto lockstep = flow.sample(pt.values.data(), B, n, 13, &nfe_lockstep);
  const auto alone = flow.sample_alone(pt.values.data(), B, n, 13, &nfe_alone);
  INFO("max diff " << max_abs_diff(lockstep, alone));
  CHECK(max_abs_diff(lockstep, alone) <= tol);
  CHECK(nfe_lockstep == nfe_alone);  // the same steps, sample by sample
  // A rank's share of whole groups (samples 80 .. 149 of the job) on one
  // thread: each sample's bits are those of the whole job on two.
  const int S = n * 3;
  BatchFlow<VectorField<T>> one(cnf, 1);
  const Shard second = shard_of_groups(B, lockstep_group(n), 1, 2);
  REQUIRE(second.begin == 80);
  REQUIRE(second.end == B);
  const auto share = one.sample(pt.values.data(), second.size(), n, 13, nullptr, std::uint64_t(second.begin));
  CHECK(share == std::vector<double>(lockstep.begin() + second.begin * S, lockstep.end()));
  // A share cutting a group (samples 30 .. 99) solves its samples beside
  // others: the same numbers to rounding, not necessarily the same bits.
  const auto cut = one.sample(pt.values.data(), 70, n, 13, nullptr, 30);
  CHECK(max_abs_diff(cut, std::vector<double>(lockstep.begin() + 30 * S, lockstep.begin() + 100 * S)) <= tol);
}

TEST_CASE("lockstep groups: about 512 edges; shares of whole groups begin at a multiple of the group",
          "[lockstep]") {
  CHECK(lockstep_group(2) == 64);
  CHECK(lockstep_group(4) == 32);   // DW4: 384 edges
  CHECK(lockstep_group(13) == 2);   // LJ13: 312
  CHECK(lockstep_group(55) == 1);   // LJ55: one by one
  for (int ranks : {1, 2, 3, 5})
    for (int count : {1, 63, 64, 150, 1000}) {
      int next = 0;
      for (int r = 0; r < ranks; ++r) {
        const Shard s = shard_of_groups(count, 64, r, ranks);
        INFO("count " << count << " rank " << r << " of " << ranks);
        CHECK(s.begin == next);
        CHECK((s.begin % 64 == 0 || s.begin == count));
        CHECK(s.end >= s.begin);
        next = s.end;
      }
      CHECK(next == count);
    }
}

TEST_CASE("sampling in lockstep groups equals sampling one by one", "[cnf][lockstep]") {
  // dopri5: the batch solver steps from the tableau, enf::ode's integrate()
  // through Boost's stepper: equal to rounding, amplified by the steps.
  SECTION("dopri5, float64") { check_lockstep_sampling<double>(ode::Method::Dopri5, 1e-6, 1e-9); }
  SECTION("dopri5, float32") { check_lockstep_sampling<float>(ode::Method::Dopri5, 1e-5, 1e-5); }
  SECTION("rk4, float64") { check_lockstep_sampling<double>(ode::Method::RK4, 1e-6, 1e-12); }
}


// Likelihoods: log p(x), Δlog p, K, R and z(1) of each structure in lockstep
// against forward() alone. Mild weights, as for sampling (a chaotic field
// amplifies the stacked products' rounding, 1e-16, beyond what tells whether
// the solves agree).
template <class T>
void check_lockstep_likelihood(ode::Method method, TraceEstimator trace, double lambda, double rtol, double tol) {
  const FieldConfig cfg = particle_field(3);
  const auto p = random_params(cfg, 54, 0.05);
  const Parameters<T> pt = p.template cast<T>();
  VectorField<T> field(cfg, pt.layout);
  CnfOptions o = exact_options(rtol);
  o.solver.method = method;
  o.solver.fixed_step = 1.0 / 7;
  o.trace = trace;
  o.ode_regularization = lambda;
  Cnf<VectorField<T>> cnf(field, o);
  BatchFlow<VectorField<T>> flow(cnf, 2);
  const int n = 5, B = 40, S = n * 3;
  REQUIRE(flow.likelihood_group(n) == 16);  // BatchFlow's groups: 16, 16 and 8
  Rng rng(55);
  std::vector<double> x;
  for (int b = 0; b < B; ++b) {
    const auto xb = random_state(cfg, n, rng, 1.2);
    x.insert(x.end(), xb.begin(), xb.end());
  }
  remove_centre_of_mass(x, B, n, 3, 3);
  // Cnf::forward_lockstep over all 40 as one group, noise as BatchFlow draws it.
  std::vector<std::vector<double>> xs, eps;
  for (int b = 0; b < B; ++b) {
    xs.emplace_back(x.begin() + b * S, x.begin() + (b + 1) * S);
    eps.push_back(draw_noise(o, S, 21, b));
  }
  typename Cnf<VectorField<T>>::Scratch scratch;
  const auto lockstep = cnf.forward_lockstep(pt.values.data(), xs, n, eps, scratch);
  const auto alone = flow.log_likelihood_alone(pt.values.data(), x, B, n, 21);
  double worst = 0;
  for (int b = 0; b < B; ++b) {
    INFO("structure " << b);
    REQUIRE(lockstep[b].solve.ok());
    CHECK(lockstep[b].solve.stats.nfe == alone[b].solve.stats.nfe);  // the same steps
    CHECK(lockstep[b].solve.stats.rejected == alone[b].solve.stats.rejected);
    worst = std::max({worst, std::abs(lockstep[b].log_px - alone[b].log_px),
                      std::abs(lockstep[b].delta_logp - alone[b].delta_logp),
                      std::abs(lockstep[b].kinetic - alone[b].kinetic),
                      std::abs(lockstep[b].frobenius - alone[b].frobenius), max_abs_diff(lockstep[b].z, alone[b].z)});
    if (lambda > 0) CHECK(lockstep[b].frobenius > 0);
  }
  INFO("largest difference " << worst);
  CHECK(worst <= tol);
  // BatchFlow's groups: the same to rounding; on one thread, and a rank's
  // share of whole groups (structures 16 .. 39), the same bits as on two.
  const auto grouped = flow.log_likelihood(pt.values.data(), x, B, n, 21);
  for (int b = 0; b < B; ++b) CHECK(std::abs(grouped[b].log_px - alone[b].log_px) <= tol);
  BatchFlow<VectorField<T>> one(cnf, 1);
  const auto single = one.log_likelihood(pt.values.data(), x, B, n, 21);
  const std::vector<double> tail(x.begin() + 16 * S, x.end());
  std::vector<ForwardResult> share(B - 16);
  one.log_likelihood_each(pt.values.data(), tail, B - 16, n, 21, [] { return false; },
                          [&](int b, ForwardResult&& r) { share[b] = std::move(r); }, 16);
  for (int b = 0; b < B; ++b) {
    CHECK(single[b].log_px == grouped[b].log_px);
    CHECK(single[b].z == grouped[b].z);
    if (b >= 16) CHECK(share[b - 16].log_px == grouped[b].log_px);
  }
}

TEST_CASE("likelihoods in lockstep groups equal likelihoods one by one", "[cnf][lockstep]") {
  SECTION("Hutchinson (Rademacher), dopri5, float64") {
    check_lockstep_likelihood<double>(ode::Method::Dopri5, TraceEstimator::Rademacher, 0, 1e-6, 1e-9);
  }
  SECTION("Gaussian Hutchinson with both regularizers, rk4, float64") {
    check_lockstep_likelihood<double>(ode::Method::RK4, TraceEstimator::Gaussian, 0.1, 1e-6, 1e-12);
  }
  SECTION("exact trace, dopri5, float64") {
    check_lockstep_likelihood<double>(ode::Method::Dopri5, TraceEstimator::Exact, 0, 1e-6, 1e-9);
  }
  SECTION("exact trace with both regularizers, rk4, float64") {
    check_lockstep_likelihood<double>(ode::Method::RK4, TraceEstimator::Exact, 0.1, 1e-6, 1e-12);
  }
  SECTION("exact trace, dopri5, float32") {
    check_lockstep_likelihood<float>(ode::Method::Dopri5, TraceEstimator::Exact, 0, 1e-5, 1e-4);
  }
}

TEST_CASE("a lockstep likelihood rejects noise of the wrong size", "[cnf][lockstep]") {
  const FieldConfig cfg = particle_field(3);
  const auto p = random_params(cfg, 56, 0.05);
  VectorField<double> field(cfg, p.layout);
  CnfOptions o = exact_options(1e-6);
  o.trace = TraceEstimator::Rademacher;
  Cnf<VectorField<double>> cnf(field, o);
  Cnf<VectorField<double>>::Scratch s;
  Rng rng(57);
  const std::vector<std::vector<double>> x{random_state(cfg, 4, rng), random_state(cfg, 4, rng)};
  CHECK_THROWS_WITH(cnf.forward_lockstep(p.values.data(), x, 4, {std::vector<double>(12, 1.0)}, s),
                    Catch::Contains("one vector per structure"));
  CHECK_THROWS_WITH(cnf.forward_lockstep(p.values.data(), x, 4, {std::vector<double>(12, 1.0), std::vector<double>(11, 1.0)}, s),
                    Catch::Contains("wrong size"));
}
