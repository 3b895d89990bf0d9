// E(n) symmetry of the vector field: f(Rx + b) = R f(x) for rotations,
// reflections and translations in 2-D and 3-D; permutation equivariance;
// invariant feature velocities and divergence.
#include <catch2/catch.hpp>
#include <Eigen/LU>
#include <Eigen/QR>

#include "support/batch_field.hpp"
#include "support/fixtures.hpp"
#include "support/random_model.hpp"

using namespace enf;
using namespace enf::test;

namespace {

// Equivariance holds exactly in real arithmetic; in float64 the two sides
// differ by rounding only (a few ulps of the largest intermediate, |f| ≲ 10).
constexpr double kRoundoff = 1e-11;

struct Eval {
  std::vector<double> f;
  double div;
};

Eval evaluate(BatchField<double>& batch, const Parameters<double>& p, const std::vector<double>& z, int n) {
  const double t = 0.6;
  BatchInput<double> in{1, n, z.data(), nullptr, {&t, 1}};
  Eval e{std::vector<double>(z.size()), 0};
  batch.divergence(p.values.data(), in, e.f.data(), &e.div);
  return e;
}

// Haar-random orthogonal matrix with the requested determinant sign.
Eigen::MatrixXd random_orthogonal(int D, bool reflection, Rng& rng) {
  Eigen::MatrixXd A(D, D);
  for (int i = 0; i < D; ++i)
    for (int j = 0; j < D; ++j) A(i, j) = rng.normal();
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(A);
  Eigen::MatrixXd Q = qr.householderQ();
  if ((Q.determinant() < 0) != reflection) Q.col(0) *= -1;
  return Q;
}

std::vector<FieldConfig> configs() {
  FieldConfig dw4 = particle_field(2), lj = particle_field(3), mol = small_molecule_field();
  return {dw4, lj, mol};
}

}  // namespace

TEST_CASE("rotations, reflections and translations: f(Rx + b) = R f(x)", "[symmetry][egnn]") {
  for (const FieldConfig& cfg : configs()) {
    const int D = cfg.dim, C = cfg.channels(), n = 7;
    const auto p = random_params(cfg, 21);
    VectorField<double> field(cfg, p.layout);
    BatchField<double> batch(field, 1);
    Rng rng(22);
    for (bool reflection : {false, true}) {
      SECTION("D=" + std::to_string(D) + " F=" + std::to_string(cfg.features) +
              (reflection ? " reflection" : " rotation")) {
        const auto z = random_state(cfg, n, rng);
        const Eigen::MatrixXd R = random_orthogonal(D, reflection, rng);
        Eigen::VectorXd b(D);
        for (int d = 0; d < D; ++d) b[d] = 3 * rng.normal();
        std::vector<double> zt = z;
        for (int i = 0; i < n; ++i) {
          Eigen::VectorXd x(D);
          for (int d = 0; d < D; ++d) x[d] = z[i * C + d];
          const Eigen::VectorXd y = R * x + b;
          for (int d = 0; d < D; ++d) zt[i * C + d] = y[d];
        }
        const Eval e = evaluate(batch, p, z, n), et = evaluate(batch, p, zt, n);
        double err = 0, scale = 1;
        for (int i = 0; i < n; ++i) {
          Eigen::VectorXd v(D), vt(D);
          for (int d = 0; d < D; ++d) {
            v[d] = e.f[i * C + d];
            vt[d] = et.f[i * C + d];
          }
          err = std::max(err, (R * v - vt).cwiseAbs().maxCoeff());
          for (int c = D; c < C; ++c) err = std::max(err, std::abs(e.f[i * C + c] - et.f[i * C + c]));
          scale = std::max(scale, v.cwiseAbs().maxCoeff());
        }
        CHECK(err <= kRoundoff * scale);
        CHECK(std::abs(e.div - et.div) <= kRoundoff * std::max(1.0, std::abs(e.div)));
        // And the test can fail: the field is not invariant (R f ≠ f).
        CHECK(max_abs_diff(e.f, et.f) > 1e-3);
      }
    }
  }
}

TEST_CASE("permuting the nodes permutes the velocity", "[symmetry][egnn]") {
  for (const FieldConfig& cfg : configs()) {
    const int C = cfg.channels(), n = 6;
    const auto p = random_params(cfg, 23);
    VectorField<double> field(cfg, p.layout);
    BatchField<double> batch(field, 1);
    Rng rng(24);
    const auto z = random_state(cfg, n, rng);
    const std::vector<int> perm{3, 0, 5, 1, 4, 2};
    std::vector<double> zp(z.size());
    for (int i = 0; i < n; ++i)
      for (int c = 0; c < C; ++c) zp[i * C + c] = z[perm[i] * C + c];
    const Eval e = evaluate(batch, p, z, n), ep = evaluate(batch, p, zp, n);
    double err = 0;
    for (int i = 0; i < n; ++i)
      for (int c = 0; c < C; ++c) err = std::max(err, std::abs(ep.f[i * C + c] - e.f[perm[i] * C + c]));
    INFO("D=" << cfg.dim << " F=" << cfg.features);
    CHECK(err <= kRoundoff * std::max(1.0, max_abs(e.f)));
    CHECK(std::abs(e.div - ep.div) <= kRoundoff * std::max(1.0, std::abs(e.div)));
  }
}

TEST_CASE("the velocity stays in the centre-of-mass-free subspace", "[symmetry][egnn]") {
  for (const FieldConfig& cfg : configs()) {
    const int C = cfg.channels(), n = 9;
    const auto p = random_params(cfg, 25);
    VectorField<double> field(cfg, p.layout);
    BatchField<double> batch(field, 1);
    Rng rng(26);
    const Eval e = evaluate(batch, p, random_state(cfg, n, rng), n);
    for (int d = 0; d < cfg.dim; ++d) {
      double s = 0;
      for (int i = 0; i < n; ++i) s += e.f[i * C + d];
      CHECK(std::abs(s) <= kRoundoff * std::max(1.0, max_abs(e.f)));
    }
  }
}
