// DW4 / LJ13 target energies, their forces, the shipped data's mean energies,
// and the Metropolis sampler that regenerates such data.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "datasets/energies.hpp"
#include "engine/mcmc.hpp"
#include "support/random_model.hpp"
#include "engine/rng.hpp"
#include "support/energy_checks.hpp"
#include "support/finite_difference.hpp"

using namespace enf;
using test::check_forces;

namespace {

Structures shipped(const std::string& system, const std::string& split, long count = -1) {
  const ParticleSystem sys = particle_system(system);
  const SplitSpec s = shipped_split(sys, split);
  return load_structures(s.path, sys, s.first, count < 0 ? s.count : count);
}

std::vector<double> row(const Structures& s, const ParticleSystem& sys, int r) {
  const std::size_t S = std::size_t(sys.n) * sys.dim;
  return {s.x.begin() + r * S, s.x.begin() + (r + 1) * S};
}

// A random rotation (3-D: from a uniform unit quaternion; 2-D: an angle),
// with a reflection half the time: E is E(n)-invariant, not only SE(n).
std::vector<double> random_orthogonal(int D, Rng& rng) {
  std::vector<double> R(D * D);
  if (D == 2) {
    const double a = rng.uniform(0, 2 * std::numbers::pi);
    R = {std::cos(a), -std::sin(a), std::sin(a), std::cos(a)};
  } else {
    const std::vector<double> q = test::unit_direction(4, rng);
    const double w = q[0], x = q[1], y = q[2], z = q[3];
    R = {1 - 2 * (y * y + z * z), 2 * (x * y - w * z),     2 * (x * z + w * y),
         2 * (x * y + w * z),     1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
         2 * (x * z - w * y),     2 * (y * z + w * x),     1 - 2 * (x * x + y * y)};
  }
  if (rng.uniform() < 0.5)
    for (int j = 0; j < D; ++j) R[j] = -R[j];  // flip the first row
  return R;
}

std::vector<double> transform(const std::vector<double>& x, int D, const std::vector<double>& R, const double* t) {
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size() / D; ++i)
    for (int a = 0; a < D; ++a) {
      double s = t ? t[a] : 0.0;
      for (int b = 0; b < D; ++b) s += R[a * D + b] * x[i * D + b];
      y[i * D + a] = s;
    }
  return y;
}

}  // namespace

TEST_CASE("DW4 and LJ13 forces are minus the finite-difference gradient of the energy", "[energies]") {
  Rng rng(11);
  const Structures dw = shipped("dw4", "test", 5);
  const ParticleSystem dw4 = particle_system("dw4");
  for (int r = 0; r < dw.rows; ++r) check_forces(dw4, row(dw, dw4, r), LJConvention::Ordered, rng);
  // Off the data manifold too: near the barrier top (d = d0) and at short range.
  check_forces(dw4, {0, 0, 4, 0, 0, 4, 4, 4}, LJConvention::Ordered, rng);
  check_forces(dw4, {0, 0, 0.3, 0, 0, 0.2, 1, 1}, LJConvention::Ordered, rng);

  const Structures lj = shipped("lj13", "test", 5);
  const ParticleSystem lj13 = particle_system("lj13");
  for (LJConvention conv : {LJConvention::Ordered, LJConvention::Unordered})
    for (int r = 0; r < lj.rows; ++r) {
      std::vector<double> x = row(lj, lj13, r);
      check_forces(lj13, x, conv, rng);
      x[0] += 0.5;  // not centred: the harmonic term's x̄ dependence must cancel
      check_forces(lj13, x, conv, rng);
    }
}

TEST_CASE("Energies are invariant and forces equivariant under E(n)", "[energies]") {
  Rng rng(12);
  for (const std::string name : {"dw4", "lj13"}) {
    const ParticleSystem sys = particle_system(name);
    const Structures s = shipped(name, "test", 4);
    for (int r = 0; r < s.rows; ++r) {
      const std::vector<double> x = row(s, sys, r), R = random_orthogonal(sys.dim, rng);
      const double t[3] = {rng.uniform(-5, 5), rng.uniform(-5, 5), rng.uniform(-5, 5)};
      const std::vector<double> y = transform(x, sys.dim, R, t);
      std::vector<double> fx(x.size()), fy(x.size());
      const double ex = energy_and_forces(sys, x.data(), fx.data()), ey = energy_and_forces(sys, y.data(), fy.data());
      CHECK(ey == Approx(ex).epsilon(1e-12));
      const std::vector<double> rfx = transform(fx, sys.dim, R, nullptr);
      for (std::size_t k = 0; k < x.size(); ++k) CHECK(fy[k] == Approx(rfx[k]).margin(1e-9));
    }
  }
}

TEST_CASE("LJ13 conventions differ by the pair sum only; batch helpers match single structures", "[energies]") {
  const ParticleSystem sys = particle_system("lj13");
  const Structures s = shipped("lj13", "test", 6);
  const auto ord = energies(sys, s.x, s.rows, LJConvention::Ordered);
  const auto uno = energies(sys, s.x, s.rows, LJConvention::Unordered);
  std::vector<double> forces;
  const auto with_forces = energies_and_forces(sys, s.x, s.rows, forces);
  REQUIRE(forces.size() == s.x.size());
  for (int r = 0; r < s.rows; ++r) {
    const std::vector<double> x = row(s, sys, r);
    double harmonic = 0;  // the rows are centred
    for (double v : x) harmonic += 0.5 * v * v;
    CHECK(ord[r] - harmonic == Approx(2 * (uno[r] - harmonic)).epsilon(1e-12));
    CHECK(with_forces[r] == Approx(ord[r]).epsilon(1e-14));  // FMA contraction may differ between the paths
    std::vector<double> f(x.size());
    energy_and_forces(sys, x.data(), f.data());
    for (std::size_t k = 0; k < x.size(); ++k) CHECK(forces[r * x.size() + k] == f[k]);
  }
  CHECK(lj_convention("unordered") == LJConvention::Unordered);
  CHECK_THROWS_WITH(lj_convention("half"), Catch::Contains("use ordered or unordered"));
  CHECK_THROWS_WITH(energies(sys, s.x, s.rows + 1), Catch::Contains("do not hold"));
  // A known name at the wrong size, or a system without a target energy, is refused naming those with one.
  CHECK_THROWS_WITH(energy(ParticleSystem{"lj13", 55, 3}, s.x.data()),
                    Catch::Contains("'lj13' (55×3)") && Catch::Contains("use dw4 (4×2) or lj13 (13×3) or lj55 (55×3)"));
  CHECK_THROWS_WITH(energy(particle_system("qm9_positional"), s.x.data()),
                    Catch::Contains("no energy for particle system 'qm9_positional'"));
}

TEST_CASE("LJ13 at coinciding particles is +inf with zero forces, never NaN", "[energies]") {
  const ParticleSystem sys = particle_system("lj13");
  std::vector<double> x = row(shipped("lj13", "test", 1), sys, 0), f(x.size(), 7.0);
  for (int d = 0; d < 3; ++d) x[3 + d] = x[d] + (d == 0 ? 1e-12 : 0.0);
  for (LJConvention conv : {LJConvention::Ordered, LJConvention::Unordered}) {
    CHECK(energy(sys, x.data(), conv) == std::numeric_limits<double>::infinity());
    CHECK(energy_and_forces(sys, x.data(), f.data(), conv) == std::numeric_limits<double>::infinity());
    CHECK(std::all_of(f.begin(), f.end(), [](double v) { return v == 0.0; }));
  }
  // Just above the guard the energy is huge but finite, and so are the forces.
  x[3] = x[0] + 1e-9;
  const double e = energy_and_forces(sys, x.data(), f.data());
  CHECK(std::isfinite(e));
  CHECK(e > 1e100);
  CHECK(std::all_of(f.begin(), f.end(), [](double v) { return std::isfinite(v); }));
  // DW4 is finite at coinciding particles.
  const std::vector<double> dw(8, 0.0);
  CHECK(energy(particle_system("dw4"), dw.data()) == Approx(6 * (0.9 * 256 - 4 * 16)));
}

// The printed values are PROVENANCE.md's; the tolerance is the larger of 3
// standard errors (rows treated as independent: batch means over the file
// order give a smaller error, so the rows are shuffled) and 0.01.
TEST_CASE("Shipped test splits have the documented mean energies", "[energies][data]") {
  SECTION("DW4") {
    const auto m = mean_and_error(energies(particle_system("dw4"), shipped("dw4", "test").x, 10000));
    const double tol = std::max(3 * m.error, 0.01);
    INFO("DW4 test split: mean " << m.mean << " ± " << m.error << " (sd " << m.stddev << "), tolerance " << tol);
    CHECK(std::abs(m.mean - -22.45) <= tol);    // 3 SE = 0.057 is the larger
    CHECK(std::abs(m.mean - -22.45) <= 0.005);  // and it rounds to the printed value
  }
  SECTION("LJ13") {
    const ParticleSystem sys = particle_system("lj13");
    const Structures s = shipped("lj13", "test");
    REQUIRE(s.rows == 10000);
    const auto ord = mean_and_error(energies(sys, s.x, s.rows, LJConvention::Ordered));
    const auto uno = mean_and_error(energies(sys, s.x, s.rows, LJConvention::Unordered));
    const double tol = std::max(3 * ord.error, 0.01);
    INFO("LJ13 test split: ordered " << ord.mean << " ± " << ord.error << ", unordered " << uno.mean << " ± "
                                     << uno.error << ", tolerance " << tol);
    CHECK(std::abs(ord.mean - -43.13) <= tol);  // 3 SE = 0.21 is the larger
    CHECK(std::abs(ord.mean - -43.13) <= 0.005);
    // The i<j convention is a different target: −17.05, far from −43.13.
    CHECK(std::abs(uno.mean - -17.05) <= 0.005);
  }
}

// Equilibrium <E> of DW4 at kT = 1, by an independent method: self-normalised
// importance sampling on the centre-of-mass-free subspace from an isotropic
// Gaussian (σ = 2.2), 2.4e8 draws in 16 blocks, error from the spread of the
// blocks (effective sample size 1.5e5). A 4-chain, 1e7-step-per-chain run of
// sample_boltzmann gave −22.5445 ± 0.0062, in agreement.
constexpr double kDw4EquilibriumMean = -22.5453, kDw4EquilibriumError = 0.0062;

// The shipped DW4 splits are NOT exact samples of exp(−E): their mean energy
// lies above the equilibrium value (test −22.4504 ± 0.0190, 4.7σ; train
// −22.4767 ± 0.0060 treating rows as independent, 8σ; the eacf MCMC file
// −22.41). Held to the shipped split alone at its combined error, a correct
// sampler fails once it is run long enough, so the generated mean is held to
// the equilibrium reference, and to the shipped split only after this
// documented offset (shipped test mean − equilibrium reference).
constexpr double kDw4ShippedTestOffset = 0.095;

TEST_CASE("Metropolis DW4 samples have the equilibrium mean energy", "[mcmc][stochastic]") {
  const ParticleSystem sys = particle_system("dw4");
  McmcOptions opt;
  opt.chains = 4;
  opt.samples = 200000;
  opt.burn_in = 20000;
  opt.thin = 50;  // 1e7 steps in all; batches of 2500 samples = 125000 steps ≫ the correlation time
  opt.seed = 2024;
  const McmcResult res = sample_boltzmann(sys, opt);
  const MeanError gen = res.mean_energy;
  const MeanError naive = mean_and_error(res.energy);
  const MeanError data = mean_and_error(energies(sys, shipped("dw4", "test").x, 10000));

  const double to_reference = std::hypot(gen.error, kDw4EquilibriumError);
  const double to_data = std::hypot(gen.error, data.error);
  INFO("generated " << gen.mean << " ± " << gen.error << " (batch means; naive " << naive.error << "), acceptance "
                    << res.mean_acceptance() << "; equilibrium " << kDw4EquilibriumMean << " ± " << kDw4EquilibriumError
                    << "; shipped test " << data.mean << " ± " << data.error);
  CHECK(gen.error > naive.error);  // the samples are correlated: the naive error would overstate agreement
  CHECK(std::abs(gen.mean - kDw4EquilibriumMean) <= 4 * to_reference);
  CHECK(std::abs(data.mean - gen.mean - kDw4ShippedTestOffset) <= 4 * to_data);
  CHECK(res.mean_acceptance() == Approx(0.5).margin(0.05));
}

TEST_CASE("Metropolis output is centred, seeded and independent of the thread count", "[mcmc]") {
  for (const std::string name : {"dw4", "lj13"}) {
    const ParticleSystem sys = particle_system(name);
    McmcOptions opt;
    opt.chains = 3;
    opt.samples = 10;  // 4 + 3 + 3
    opt.burn_in = 2000;
    opt.thin = 5;
    opt.seed = 5;
    opt.threads = 1;
    std::vector<double> fractions;
    const McmcResult a = sample_boltzmann(sys, opt, [&](double f) { fractions.push_back(f); });
    opt.threads = 3;
    const McmcResult b = sample_boltzmann(sys, opt);
    opt.seed = 6;
    const McmcResult c = sample_boltzmann(sys, opt);
    CHECK(a.x == b.x);
    CHECK(a.energy == b.energy);
    CHECK(a.x != c.x);
    CHECK(a.chain_rows == std::vector<int>{4, 3, 3});
    REQUIRE(a.x.size() == std::size_t(10 * sys.n * sys.dim));
    for (int r = 0; r < a.rows; ++r) {
      const std::vector<double> x(a.x.begin() + r * sys.n * sys.dim, a.x.begin() + (r + 1) * sys.n * sys.dim);
      for (int d = 0; d < sys.dim; ++d) {
        double m = 0;
        for (int i = 0; i < sys.n; ++i) m += x[i * sys.dim + d];
        CHECK(std::abs(m) < 1e-12);
      }
      CHECK(energy(sys, x.data()) == Approx(a.energy[r]).epsilon(1e-12));
    }
    REQUIRE(!fractions.empty());
    CHECK(fractions.back() == 1.0);
    CHECK(std::is_sorted(fractions.begin(), fractions.end()));
    for (double s : a.step_size) CHECK(s > 0);
  }
}

TEST_CASE("Bad sampler options and batch-means requests give clear errors", "[mcmc]") {
  auto message = [](auto edit) {
    McmcOptions o;
    edit(o);
    return o.validate();
  };
  CHECK(message([](McmcOptions&) {}).empty());
  CHECK(message([](McmcOptions& o) { o.samples = 0; }) == "samples = 0: must be at least 1");
  CHECK(message([](McmcOptions& o) { o.chains = 0; }) == "chains = 0: must be at least 1");
  CHECK(message([](McmcOptions& o) { o.chains = 8, o.samples = 5; }) ==
        "chains = 8: exceeds samples (5); every chain must keep at least one sample");
  CHECK(message([](McmcOptions& o) { o.burn_in = -1; }) == "burn_in = -1: must be 0 or more steps");
  CHECK(message([](McmcOptions& o) { o.thin = 0; }) == "thin = 0: must be at least 1 step");
  CHECK_THAT(message([](McmcOptions& o) { o.target_acceptance = 1; }),
             Catch::StartsWith("target_acceptance = 1") && Catch::EndsWith("strictly between 0 and 1"));
  CHECK_THAT(message([](McmcOptions& o) { o.initial_step = -0.1; }), Catch::Contains("positive finite"));
  CHECK(message([](McmcOptions& o) { o.threads = -2; }) == "threads = -2: must be 0 (all cores) or more");

  McmcOptions bad;
  bad.thin = 0;
  CHECK_THROWS_AS(sample_boltzmann(particle_system("dw4"), bad), std::invalid_argument);
  CHECK_THROWS_WITH(sample_boltzmann(particle_system("dw4"), bad), "MCMC options: thin = 0: must be at least 1 step");
  CHECK_THROWS_WITH(sample_boltzmann(particle_system("qm9_positional"), McmcOptions{}),
                    Catch::Contains("no energy for particle system 'qm9_positional'"));
  CHECK_THROWS_WITH(batch_means({1, 2, 3}, 1, 1), Catch::Contains("at least 2 batches"));
  CHECK_THROWS_WITH(batch_means({1, 2, 3}, 2, 2), Catch::Contains("too few"));
  // Unequal chains (lengths 3 and 2): batches stay inside their chain.
  const MeanError m = batch_means({1, 1, 9, 5, 5}, 2, 1);
  CHECK(m.mean == Approx(3.0));  // batch means 1 and 5; the 9 is chain 0's leftover
}

// The estimator behind the MCMC defaults (engine/mcmc.hpp): for an AR(1)
// series x_t = ρ x_{t−1} + noise, τ = (1 + ρ)/(1 − ρ) exactly (19 for ρ = 0.9).
// 4 series × 50 000 values: the estimate's relative error is ~4.5% (Sokal:
// √(2(2M + 1)/N) for a window M ≈ 5τ), the tolerance 12%.
TEST_CASE("The integrated autocorrelation time of an AR(1) series is (1 + rho)/(1 - rho)", "[mcmc]") {
  Rng rng(19);
  std::vector<double> v;
  for (int s = 0; s < 4; ++s) {
    double x = rng.normal() / std::sqrt(1 - 0.81);  // stationary from the start
    for (int t = 0; t < 50000; ++t) v.push_back(x = 0.9 * x + rng.normal());
  }
  CHECK(integrated_autocorrelation_time(v, 4) == Approx(19.0).epsilon(0.12));
  std::vector<double> white;
  for (int t = 0; t < 20000; ++t) white.push_back(rng.normal());
  CHECK(integrated_autocorrelation_time(white) == Approx(1.0).margin(0.1));
  CHECK_THROWS_WITH(integrated_autocorrelation_time({1, 1, 1}), Catch::Contains("do not vary"));
  CHECK_THROWS_WITH(integrated_autocorrelation_time({1, 2, 3}, 2), Catch::Contains("too few"));
}
