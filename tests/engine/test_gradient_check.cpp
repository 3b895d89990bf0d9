// The gradient checker behind `enf check gradients` (engine/gradient_check.hpp):
// its comparison catches a gradient wrong by a known amount and reports that
// amount; its differences are accurate; on a correct model every row passes.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "engine/gradient_check.hpp"
#include "support/fixtures.hpp"
#include "support/random_model.hpp"

using namespace enf;
using namespace enf::test;

namespace {

// f(x) = Σ_i sin(x_i) x_{i+1} + x_i³ / 3: its gradient in closed form and by
// the checker's central differences.
double f(const std::vector<double>& x) {
  double s = 0;
  for (std::size_t i = 0; i < x.size(); ++i) s += std::sin(x[i]) * x[(i + 1) % x.size()] + x[i] * x[i] * x[i] / 3;
  return s;
}
std::vector<double> gradient(const std::vector<double>& x) {
  const std::size_t n = x.size();
  std::vector<double> g(n);
  for (std::size_t i = 0; i < n; ++i)
    g[i] = std::cos(x[i]) * x[(i + 1) % n] + std::sin(x[(i + n - 1) % n]) + x[i] * x[i];
  return g;
}
std::vector<double> differences(const std::vector<double>& x) {
  std::vector<double> d(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    d[i] = central_difference(
        [&](double h) {
          std::vector<double> y = x;
          y[i] += h;
          return f(y);
        },
        1e-3);
  return d;
}

const std::vector<double> kX{0.3, -1.2, 2.0, 0.7, -0.4, 1.5};

}  // namespace

TEST_CASE("central differences with one Richardson step are accurate to O(h⁴)", "[gradient_check]") {
  // e^(a+h): the error of (4 D(h/2) − D(h)) / 3 is h⁴ e^a / 480, 2e-13 at
  // h = 1e-3 (a = 0.5), against rounding ~ε e^a / h ≈ 4e-13.
  const double d = central_difference([](double h) { return std::exp(0.5 + h); }, 1e-3);
  CHECK(std::abs(d - std::exp(0.5)) <= 2e-12);
  // Without the Richardson step the error would be h² e^a / 6 ≈ 3e-7: check it is not that.
  const double plain = (std::exp(0.5 + 1e-3) - std::exp(0.5 - 1e-3)) / 2e-3;
  CHECK(std::abs(plain - std::exp(0.5)) > 1e-7);
}

TEST_CASE("a correct gradient passes the comparison", "[gradient_check]") {
  const auto c = compare_derivatives("f", gradient(kX), differences(kX), 1e-8);
  INFO("max rel error " << c.max_rel_error);
  CHECK(c.ok);
  CHECK(c.entries == kX.size());
  CHECK(c.max_rel_error <= 1e-9);
  CHECK(c.max_abs_error <= 1e-8);
  CHECK(c.tolerance == 1e-8);
}

TEST_CASE("a gradient wrong by a known amount is caught, and the error reported is that amount",
          "[gradient_check]") {
  const auto fd = differences(kX);
  for (const double wrong : {1e-3, -1e-5}) {
    auto g = gradient(kX);
    // The largest entry, relatively off by `wrong`.
    std::size_t big = 0;
    for (std::size_t i = 0; i < g.size(); ++i)
      if (std::abs(g[i]) > std::abs(g[big])) big = i;
    const double delta = wrong * g[big];
    g[big] += delta;
    const auto c = compare_derivatives("f", g, fd, 1e-6);
    INFO("off by " << wrong << ": max rel error " << c.max_rel_error);
    CHECK_FALSE(c.ok);
    CHECK(c.worst == big);
    CHECK(c.max_abs_error == Approx(std::abs(delta)).epsilon(1e-4));
    // relative to max(|analytic|, |fd|): |δ| / (|g| + max(δ, 0)·sign) ≈ |wrong| / (1 + max(wrong, 0))
    CHECK(c.max_rel_error == Approx(std::abs(wrong) / (1 + std::max(wrong, 0.0))).epsilon(1e-4));
    // The same error passes a tolerance above it.
    CHECK(compare_derivatives("f", g, fd, 2 * std::abs(wrong)).ok);
  }
}

TEST_CASE("entries far below the quantity's scale are judged against 1% of it", "[gradient_check]") {
  // Entry 1 is 1e-12 vs 3e-12 (200% off itself) but 2e-12 is nothing next to
  // a quantity of size 10: the relative error is 2e-12 / 0.1.
  const auto c = compare_derivatives("q", {10.0, 1e-12}, {10.0, 3e-12}, 1e-9);
  CHECK(c.ok);
  CHECK(c.max_rel_error == Approx(2e-11).epsilon(1e-6));
  // An error of the quantity's size on a small entry is not hidden.
  CHECK_FALSE(compare_derivatives("q", {10.0, 0.5}, {10.0, 1e-12}, 1e-3).ok);
}

TEST_CASE("NaN, mismatched sizes and empty quantities never pass", "[gradient_check]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto c = compare_derivatives("q", {1.0, nan, 2.0}, {1.0, 1.0, 2.0}, 1e-3);
  CHECK_FALSE(c.ok);
  CHECK(c.worst == 1);
  CHECK(std::isinf(c.max_rel_error));
  CHECK_FALSE(compare_derivatives("q", {1.0}, {nan}, 1e-3).ok);
  CHECK_FALSE(compare_derivatives("q", {}, {}, 1e-3).ok);
  CHECK_THROWS_AS(compare_derivatives("q", {1.0}, {1.0, 2.0}, 1e-3), std::invalid_argument);
}

TEST_CASE("check_gradients passes every row on a correct model", "[gradient_check]") {
  // A small 2-D field (H = 8, L = 2) with perturbed weights, 2 structures of
  // 3 particles: the rows, their sizes and that all pass.
  FieldConfig cfg = particle_field(2);
  cfg.hidden = 8;
  cfg.layers = 2;
  const auto p = random_params(cfg, 5, 0.2);
  Rng rng(6);
  std::vector<double> x = random_state(cfg, 3, rng, 1.0);
  const auto x2 = random_state(cfg, 3, rng, 1.0);
  x.insert(x.end(), x2.begin(), x2.end());
  GradientCheckOptions o;
  o.params = 7;
  o.directions = 2;
  int lines = 0;
  const auto rows = check_gradients(cfg, p, x, 2, 3, o, [&](const std::string&) { ++lines; });
  REQUIRE(rows.size() == 5);
  const std::vector<std::pair<std::string, std::size_t>> expected{{"field_jvp", 2 * 2 * 6},
                                                                  {"field_vjp_input", 2 * 6},
                                                                  {"field_vjp_params", 2 * 7},
                                                                  {"nll_grad_adjoint", 2 * 7},
                                                                  {"nll_grad_discrete", 2 * 7}};
  for (std::size_t i = 0; i < rows.size(); ++i) {
    INFO(rows[i].quantity << ": max abs " << rows[i].max_abs_error << ", max rel " << rows[i].max_rel_error);
    CHECK(rows[i].quantity == expected[i].first);
    CHECK(rows[i].entries == expected[i].second);
    CHECK(rows[i].ok);
    CHECK(rows[i].max_abs_error > 0);  // differences are never bit-exact: something was compared
  }
  CHECK(lines == 4);  // two progress lines per structure
  // The thread count shares out the solves and changes nothing else.
  o.threads = 1;
  const auto one = check_gradients(cfg, p, x, 2, 3, o);
  o.threads = 2;
  const auto two = check_gradients(cfg, p, x, 2, 3, o);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    CHECK(one[i].max_abs_error == two[i].max_abs_error);
    CHECK(one[i].max_rel_error == two[i].max_rel_error);
  }
  CHECK_THROWS_AS(check_gradients(cfg, p, x, 3, 3, o), std::invalid_argument);  // 2 structures given, 3 claimed
}
