// AdamW + AMSGrad against a hand-computed reference, and the reference's
// adaptive gradient clipping.
#include <catch2/catch.hpp>
#include <cmath>

#include "engine/optimizer.hpp"

using namespace enf;

TEST_CASE("AdamW with AMSGrad follows PyTorch's update rule", "[optimizer]") {
  // Two steps on one parameter, written out from torch.optim.AdamW's algorithm.
  AdamWOptions o;
  o.lr = 0.1;
  o.weight_decay = 0.01;
  AdamW opt(1, o);
  std::vector<double> p{1.0};
  opt.step(p, std::vector<double>{0.5});
  // step 1: p = 1·(1 − 0.001); m = 0.05, v = 0.00025; m̂ = 0.5, v̂ = 0.25 → p −= 0.1·0.5/(0.5 + 1e-8)
  const double p1 = 0.999 - 0.1 * 0.5 / (0.5 + 1e-8);
  CHECK(p[0] == Approx(p1).epsilon(1e-15));
  opt.step(p, std::vector<double>{-0.1});
  const double m2 = 0.9 * 0.05 + 0.1 * -0.1, v2 = 0.999 * 0.00025 + 0.001 * 0.01;
  const double vmax = std::max(0.00025, v2);
  const double p2 = p1 * 0.999 - 0.1 / (1 - 0.81) * m2 / (std::sqrt(vmax) / std::sqrt(1 - 0.999 * 0.999) + 1e-8);
  CHECK(p[0] == Approx(p2).epsilon(1e-14));
  CHECK(opt.steps() == 2);
}

TEST_CASE("AdamW minimises a quadratic", "[optimizer]") {
  AdamWOptions o;
  o.lr = 0.05;
  o.weight_decay = 0;
  AdamW opt(3, o);
  std::vector<double> p{3, -2, 1}, target{0.5, 0.25, -1};
  for (int it = 0; it < 2000; ++it) {
    std::vector<double> g(3);
    for (int k = 0; k < 3; ++k) g[k] = 2 * (p[k] - target[k]) * (k + 1);
    opt.step(p, g);
  }
  for (int k = 0; k < 3; ++k) CHECK(p[k] == Approx(target[k]).margin(1e-3));
}

TEST_CASE("gradient clipping at 1.5 mean + 2 std of recent norms", "[optimizer]") {
  GradientClipper clip(10.0, 3);
  CHECK(clip.max_norm() == Approx(15.0));
  std::vector<double> g{3, 4};  // norm 5: kept
  CHECK(clip.clip(g) == Approx(5.0));
  CHECK_FALSE(clip.last_clipped());
  CHECK(g[0] == 3.0);
  // queue {5, 10}: mean 7.5, std 2.5 → allowed 16.25
  CHECK(clip.max_norm() == Approx(16.25));
  std::vector<double> big{0, 100};
  CHECK(clip.clip(big) == Approx(100.0));
  CHECK(clip.last_clipped());
  CHECK(big[1] == Approx(16.25 * 100 / (100 + 1e-6)));
  // the queue records the allowed norm (16.25), not the outlier (100); it keeps
  // the last 3: {5, 5, 16.25} → mean 8.75, population std √28.125
  clip.clip(g);
  clip.clip(g);
  CHECK(clip.max_norm() == Approx(1.5 * 8.75 + 2 * std::sqrt(28.125)));
}
