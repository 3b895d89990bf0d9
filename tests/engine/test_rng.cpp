// The random number generator and the reference-style initialisation.
#include <catch2/catch.hpp>
#include <cmath>

#include "engine/initialization.hpp"
#include "support/fixtures.hpp"

using namespace enf;

TEST_CASE("a seed gives the same stream; another seed another stream", "[rng]") {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next_u64();
    CHECK(x == b.next_u64());
    CHECK(x != c.next_u64());
  }
  Rng s1 = Rng(7).split(3), s2 = Rng(7).split(3), s3 = Rng(7).split(4);
  CHECK(s1.next_u64() == s2.next_u64());
  CHECK(s1.next_u64() != s3.next_u64());
}

TEST_CASE("uniform, normal and Rademacher draws have the right moments", "[rng][stochastic]") {
  // Means within 5 standard errors; fixed seed.
  Rng rng(1);
  const int n = 200000;
  double su = 0, sn = 0, sn2 = 0, sr = 0, umin = 1, umax = 0;
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform(), z = rng.normal(), r = rng.rademacher();
    su += u;
    sn += z;
    sn2 += z * z;
    sr += r;
    umin = std::min(umin, u);
    umax = std::max(umax, u);
    REQUIRE((r == 1.0 || r == -1.0));
  }
  CHECK(umin >= 0.0);
  CHECK(umax < 1.0);
  CHECK(std::abs(su / n - 0.5) <= 5 * std::sqrt(1.0 / 12 / n));
  CHECK(std::abs(sn / n) <= 5 / std::sqrt(double(n)));
  CHECK(std::abs(sn2 / n - 1) <= 5 * std::sqrt(2.0 / n));
  CHECK(std::abs(sr / n) <= 5 / std::sqrt(double(n)));
}

TEST_CASE("initialisation follows PyTorch's Linear default and the 0.001-gain last coordinate layer", "[init]") {
  const FieldConfig cfg = test::particle_field(3);
  Parameters<double> p(field_layout(cfg));
  Rng rng(0);
  initialize_egnn(cfg.egnn(), p, rng);
  for (const auto& info : p.layout.tensors()) {
    const bool last_coord = info.name.find("coord_mlp.2.weight") != std::string::npos;
    // the fan-in of a bias is its weight's input width
    const std::string weight = info.name.substr(0, info.name.rfind('.')) + ".weight";
    const int fan_in = p.layout.at(weight).shape[1];
    const double bound = last_coord ? 0.001 * std::sqrt(6.0 / (cfg.hidden + 1)) : 1 / std::sqrt(double(fan_in));
    double maxabs = 0, mean_sq = 0;
    for (double v : p.tensor(info.name)) {
      maxabs = std::max(maxabs, std::abs(v));
      mean_sq += v * v / info.size;
    }
    INFO(info.name);
    CHECK(maxabs <= bound);
    if (info.size >= 32) CHECK(std::sqrt(mean_sq) > 0.4 * bound);  // uniform: rms = bound/√3 ≈ 0.58·bound
  }
  Parameters<double> q(p.layout);
  Rng rng2(0);
  initialize_egnn(cfg.egnn(), q, rng2);
  CHECK(p.values == q.values);
}
