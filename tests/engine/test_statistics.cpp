// The statistics of engine/statistics.hpp on examples worked out by hand.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "engine/statistics.hpp"

using namespace enf;

TEST_CASE("NLL mean and standard error of the mean", "[statistics]") {
  // 1, 2, 3, 4: mean 2.5; sample variance (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3;
  // standard error √(5/3 / 4) = √(5/12).
  const MeanError m = mean_standard_error({1, 2, 3, 4});
  CHECK(m.mean == Approx(2.5).epsilon(1e-15));
  CHECK(m.error == Approx(std::sqrt(5.0 / 12.0)).epsilon(1e-15));
  // Negated log-likelihoods: the same error, the mean negated.
  const MeanError neg = mean_standard_error({-1, -2, -3, -4});
  CHECK(neg.mean == -m.mean);
  CHECK(neg.error == m.error);
  // One value: no spread to estimate, error 0 (not NaN); none: zeros.
  const MeanError one = mean_standard_error({7});
  CHECK(one.mean == 7);
  CHECK(one.error == 0);
  const MeanError none = mean_standard_error({});
  CHECK(none.mean == 0);
  CHECK(none.error == 0);
  // Equal values: error exactly 0.
  CHECK(mean_standard_error({0.1, 0.1, 0.1}).error == 0);
}

TEST_CASE("Kish effective sample size of importance weights", "[statistics]") {
  // Equal weights: every sample counts, ESS fraction 1.
  CHECK(kish_ess_fraction({-3, -3, -3, -3}) == Approx(1).epsilon(1e-15));
  // Weights 1, 1, 2 (log 0, 0, log 2): (Σw)²/Σw² = 16/6, over 3 samples = 8/9.
  CHECK(kish_ess_fraction({0, 0, std::log(2.0)}) == Approx(8.0 / 9.0).epsilon(1e-14));
  // The same weights scaled by e^-1000: shift-invariant, no underflow.
  CHECK(kish_ess_fraction({-1000, -1000, -1000 + std::log(2.0)}) == Approx(8.0 / 9.0).epsilon(1e-12));
  // One weight dominating: ESS of one sample, 1/N.
  CHECK(kish_ess_fraction({0, -800, -800, -800}) == Approx(0.25).epsilon(1e-12));
  // Non-finite log-weights (a failed energy or log q) count as weight 0:
  // weights 1, 0, 1 give (2)²/2 / 3 = 2/3.
  CHECK(kish_ess_fraction({0, NAN, 0}) == Approx(2.0 / 3.0).epsilon(1e-15));
  CHECK(kish_ess_fraction({0, -INFINITY, 0}) == Approx(2.0 / 3.0).epsilon(1e-15));
  // No positive weight, or no samples: 0.
  CHECK(kish_ess_fraction({-INFINITY, -INFINITY}) == 0);
  CHECK(kish_ess_fraction({}) == 0);
}

TEST_CASE("Boltzmann log importance weights", "[statistics]") {
  const std::vector<double> lw = boltzmann_log_weights({1.5, -2}, {-0.5, 3});
  REQUIRE(lw.size() == 2);
  CHECK(lw[0] == -1.0);  // −1.5 + 0.5
  CHECK(lw[1] == -1.0);  // 2 − 3
  CHECK_THROWS_AS(boltzmann_log_weights({1}, {1, 2}), std::invalid_argument);
}

TEST_CASE("Interatomic distances of every structure", "[statistics]") {
  // Two 2-D structures of three particles: a 3-4-5 triangle and a unit segment
  // with a point on it.
  const std::vector<double> x = {0, 0, 3, 0, 0, 4,  //
                                 0, 0, 1, 0, 0.5, 0};
  const std::vector<double> d = pair_distances(x, 2, 3, 2);
  REQUIRE(d.size() == 6);
  CHECK(d[0] == 3);  // (0, 1)
  CHECK(d[1] == 4);  // (0, 2)
  CHECK(d[2] == 5);  // (1, 2)
  CHECK(d[3] == 1);
  CHECK(d[4] == 0.5);
  CHECK(d[5] == 0.5);
}
