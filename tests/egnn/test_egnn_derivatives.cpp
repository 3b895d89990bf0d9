// Every derivative path of the vector field against central finite
// differences: forward-mode tangents J·V, the reverse pass (wrt the input and
// every parameter tensor), the exact divergence, the adjoint's VJP; and the
// Hutchinson estimate against the exact trace.
#include <catch2/catch.hpp>
#include <cmath>

#include "support/batch_field.hpp"
#include "support/finite_difference.hpp"
#include "support/fixtures.hpp"
#include "support/random_model.hpp"

using namespace enf;
using namespace enf::test;
using Mat = detail::Mat<double>;

namespace {

// Richardson-extrapolated central differences (support/finite_difference.hpp)
// are accurate to ~1e-9 relative here; the bound leaves a factor 100.
constexpr double kFdRelative = 1e-7;

struct Case {
  std::string name;
  FieldConfig cfg;
  int n;
};

std::vector<Case> cases() {
  FieldConfig dw4 = particle_field(2), lj = particle_field(3);
  dw4.hidden = lj.hidden = 16;
  FieldConfig mean_agg = particle_field(3);
  mean_agg.hidden = 8;
  mean_agg.attention = false;
  mean_agg.tanh = false;
  mean_agg.aggregation = Aggregation::Mean;
  mean_agg.condition_time = false;
  return {{"positions 2-D", dw4, 5},
          {"positions 3-D", lj, 6},
          {"positions, mean aggregation, no attention/tanh/time", mean_agg, 5},
          {"positions and features", small_molecule_field(), 6}};
}

// f and J·V at z.
void eval(const VectorField<double>& field, const Parameters<double>& p, const std::vector<double>& z, int n,
          double t, const Mat& V, std::vector<double>& f, Mat& JV) {
  FieldWorkspace<double> ws;
  f.resize(z.size());
  field.forward(p.values.data(), z.data(), n, t, &V, ws, f.data(), &JV);
}

// L = w_fᵀ f + Σ_k w_kᵀ (J·V_k), the random scalar function the reverse pass is checked on.
double scalar_loss(const VectorField<double>& field, const Parameters<double>& p, const std::vector<double>& z, int n,
                   double t, const Mat& V, const std::vector<double>& wf, const Mat& wJ) {
  std::vector<double> f;
  Mat JV;
  eval(field, p, z, n, t, V, f, JV);
  double L = 0;
  for (std::size_t i = 0; i < f.size(); ++i) L += wf[i] * f[i];
  return L + (JV.array() * wJ.array()).sum();
}

Mat random_mat(int rows, int cols, Rng& rng) {
  Mat m(rows, cols);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) m(i, j) = rng.normal();
  return m;
}

}  // namespace

TEST_CASE("forward-mode tangents match central differences", "[derivatives][egnn]") {
  for (const auto& c : cases()) {
    SECTION(c.name) {
      const auto p = random_params(c.cfg, 1);
      VectorField<double> field(c.cfg, p.layout);
      Rng rng(2);
      const auto z = random_state(c.cfg, c.n, rng);
      const int S = int(z.size()), K = 3;
      const Mat V = random_mat(K, S, rng);
      std::vector<double> f;
      Mat JV;
      eval(field, p, z, c.n, 0.3, V, f, JV);
      for (int k = 0; k < K; ++k) {
        double err = 0, scale = 1;
        for (int i = 0; i < S; ++i) {
          const double fd = derivative([&](double h) {
            std::vector<double> zh = z, fh;
            for (int j = 0; j < S; ++j) zh[j] += h * V(k, j);
            Mat unused;
            eval(field, p, zh, c.n, 0.3, V, fh, unused);
            return fh[i];
          });
          err = std::max(err, std::abs(fd - JV(k, i)));
          scale = std::max(scale, std::abs(fd));
        }
        INFO("direction " << k << ": max error " << err << " at scale " << scale);
        CHECK(err <= kFdRelative * scale);
      }
    }
  }
}

TEST_CASE("the reverse pass matches central differences wrt the input and every parameter tensor",
          "[derivatives][egnn]") {
  for (const auto& c : cases()) {
    SECTION(c.name) {
      auto p = random_params(c.cfg, 3);
      VectorField<double> field(c.cfg, p.layout);
      Rng rng(4);
      const auto z = random_state(c.cfg, c.n, rng);
      const int S = int(z.size()), K = 2;
      const Mat V = random_mat(K, S, rng), wJ = random_mat(K, S, rng);
      std::vector<double> wf(S);
      for (double& w : wf) w = rng.normal();

      FieldWorkspace<double> ws;
      std::vector<double> f(S), zbar(S), grad(p.values.size(), 0.0);
      Mat JV;
      field.forward(p.values.data(), z.data(), c.n, 0.7, &V, ws, f.data(), &JV);
      field.reverse(p.values.data(), ws, wf.data(), &wJ, zbar.data(), grad.data());

      // Input: every coordinate.
      for (int i = 0; i < S; ++i) {
        const double fd = derivative([&](double h) {
          std::vector<double> zh = z;
          zh[i] += h;
          return scalar_loss(field, p, zh, c.n, 0.7, V, wf, wJ);
        });
        INFO("input entry " << i);
        CHECK(std::abs(fd - zbar[i]) <= kFdRelative * std::max(1.0, std::abs(fd)));
      }
      // Parameters: a random direction inside each tensor, so every entry takes part.
      for (const auto& info : p.layout.tensors()) {
        const std::vector<double> u = unit_direction(info.size, rng);
        double predicted = 0;
        for (std::size_t k = 0; k < info.size; ++k) predicted += u[k] * grad[info.offset + k];
        auto shifted = [&](double h) {
          Parameters<double> q = p;
          for (std::size_t k = 0; k < info.size; ++k) q.values[info.offset + k] += h * u[k];
          return scalar_loss(field, q, z, c.n, 0.7, V, wf, wJ);
        };
        const double fd = derivative(shifted);
        INFO("tensor " << info.name << ": finite difference " << fd << ", reverse pass " << predicted);
        CHECK(std::abs(fd - predicted) <= kFdRelative * std::max(1.0, std::abs(fd)));
      }
    }
  }
}

TEST_CASE("directional derivative of the adjoint VJP at full DW4/LJ13 model size", "[derivatives][egnn]") {
  // The reference configuration (H=32, L=3), perturbed weights: one direction
  // over all parameters at once, the OpenMM-style energy/force consistency check.
  for (int dim : {2, 3}) {
    const FieldConfig cfg = particle_field(dim);
    const int n = dim == 2 ? 4 : 13;
    auto p = random_params(cfg, 5);
    VectorField<double> field(cfg, p.layout);
    Rng rng(6);
    const auto z = random_state(cfg, n, rng);
    const int S = int(z.size());
    Mat eps(1, S);
    for (int i = 0; i < S; ++i) eps(0, i) = rng.rademacher();
    std::vector<double> a(S);
    for (double& v : a) v = rng.normal();
    const double a_l = 0.7;
    // L = aᵀ f + a_ℓ εᵀJε
    auto loss = [&](const Parameters<double>& q, const std::vector<double>& zz) {
      return scalar_loss(field, q, zz, n, 0.4, eps, a, eps * a_l);
    };
    BatchField<double> batch(field, 1);
    std::vector<double> zbar(S), grad(p.values.size(), 0.0);
    const double t = 0.4;
    BatchInput<double> in{1, n, z.data(), nullptr, {&t, 1}};
    batch.adjoint_vjp(p.values.data(), in, eps.data(), a.data(), &a_l, zbar.data(), grad.data());

    const std::vector<double> u = unit_direction(p.values.size(), rng), v = unit_direction(S, rng);
    double predicted = 0;
    for (std::size_t k = 0; k < u.size(); ++k) predicted += u[k] * grad[k];
    for (int i = 0; i < S; ++i) predicted += v[i] * zbar[i];
    auto shifted = [&](double h) {
      Parameters<double> q = p;
      for (std::size_t k = 0; k < u.size(); ++k) q.values[k] += h * u[k];
      std::vector<double> zz = z;
      for (int i = 0; i < S; ++i) zz[i] += h * v[i];
      return loss(q, zz);
    };
    const double fd = derivative(shifted);
    INFO("dim " << dim << ": finite difference " << fd << ", adjoint VJP " << predicted);
    CHECK(std::abs(fd - predicted) <= kFdRelative * std::max(1.0, std::abs(fd)));
  }
}

TEST_CASE("the exact-trace adjoint VJP matches central differences of aᵀf + a_ℓ·tr J", "[derivatives][egnn]") {
  for (const auto& c : cases()) {
    SECTION(c.name) {
      auto p = random_params(c.cfg, 7);
      VectorField<double> field(c.cfg, p.layout);
      BatchField<double> batch(field, 1);
      Rng rng(8);
      const auto z = random_state(c.cfg, c.n, rng);
      const int S = int(z.size());
      std::vector<double> a(S), f(S), zbar(S), grad(p.values.size(), 0.0);
      for (double& v : a) v = rng.normal();
      const double a_l = -1.3, t = 0.2;
      auto loss = [&](const Parameters<double>& q, const std::vector<double>& zz) {
        BatchInput<double> in{1, c.n, zz.data(), nullptr, {&t, 1}};
        std::vector<double> ff(S);
        double div = 0;
        batch.divergence(q.values.data(), in, ff.data(), &div);
        double L = a_l * div;
        for (int i = 0; i < S; ++i) L += a[i] * ff[i];
        return L;
      };
      BatchInput<double> in{1, c.n, z.data(), nullptr, {&t, 1}};
      batch.adjoint_vjp(p.values.data(), in, nullptr, a.data(), &a_l, zbar.data(), grad.data());
      const std::vector<double> u = unit_direction(p.values.size(), rng), v = unit_direction(S, rng);
      double predicted = 0;
      for (std::size_t k = 0; k < u.size(); ++k) predicted += u[k] * grad[k];
      for (int i = 0; i < S; ++i) predicted += v[i] * zbar[i];
      auto shifted = [&](double h) {
        Parameters<double> q = p;
        for (std::size_t k = 0; k < u.size(); ++k) q.values[k] += h * u[k];
        std::vector<double> zz = z;
        for (int i = 0; i < S; ++i) zz[i] += h * v[i];
        return loss(q, zz);
      };
      const double fd = derivative(shifted);
      INFO("finite difference " << fd << ", adjoint VJP " << predicted);
      CHECK(std::abs(fd - predicted) <= kFdRelative * std::max(1.0, std::abs(fd)));
    }
  }
}

TEST_CASE("exact divergence equals the trace of a finite-difference Jacobian", "[derivatives][egnn]") {
  for (const auto& c : cases()) {
    SECTION(c.name) {
      const auto p = random_params(c.cfg, 9);
      VectorField<double> field(c.cfg, p.layout);
      BatchField<double> batch(field, 1);
      Rng rng(10);
      const auto z = random_state(c.cfg, c.n, rng);
      const int S = int(z.size());
      const double t = 0.5;
      std::vector<double> f(S);
      double div = 0;
      BatchInput<double> in{1, c.n, z.data(), nullptr, {&t, 1}};
      batch.divergence(p.values.data(), in, f.data(), &div);
      double trace = 0;
      FieldWorkspace<double> ws;
      for (int i = 0; i < S; ++i) {
        trace += derivative([&](double h) {
          std::vector<double> zh = z, fh(S);
          zh[i] += h;
          field.forward(p.values.data(), zh.data(), c.n, t, nullptr, ws, fh.data(), nullptr);
          return fh[i];
        });
      }
      INFO("exact " << div << ", finite-difference trace " << trace);
      CHECK(std::abs(div - trace) <= kFdRelative * std::max(1.0, std::abs(trace)) * S);
    }
  }
}

TEST_CASE("the mean of Hutchinson estimates converges to the exact divergence", "[stochastic][egnn]") {
  // Unbiased for Rademacher and Gaussian ε: the mean of m estimates lies within
  // 5 standard errors (sample standard deviation / √m) of the exact trace.
  const FieldConfig cfg = particle_field(3);
  const auto p = random_params(cfg, 11);
  VectorField<double> field(cfg, p.layout);
  BatchField<double> batch(field);
  Rng rng(12);
  const int n = 13, S = n * 3, m = 4000;
  const auto z1 = random_state(cfg, n, rng);
  std::vector<double> z(std::size_t(m) * S);
  for (int b = 0; b < m; ++b) std::copy(z1.begin(), z1.end(), z.begin() + std::size_t(b) * S);
  const double t = 0.5;
  std::vector<double> f(z.size()), est(m);
  double exact = 0;
  BatchInput<double> one{1, n, z1.data(), nullptr, {&t, 1}};
  batch.divergence(p.values.data(), one, f.data(), &exact);
  for (const std::string noise : {"rademacher", "gaussian"}) {
    std::vector<double> eps(z.size());
    for (double& e : eps) e = noise == "rademacher" ? rng.rademacher() : rng.normal();
    BatchInput<double> in{m, n, z.data(), nullptr, {&t, 1}};
    batch.hutchinson(p.values.data(), in, eps.data(), f.data(), est.data());
    double mean = 0, var = 0;
    for (double e : est) mean += e / m;
    for (double e : est) var += (e - mean) * (e - mean) / (m - 1);
    const double stderr_ = std::sqrt(var / m);
    INFO(noise << ": mean " << mean << " ± " << stderr_ << ", exact " << exact);
    CHECK(stderr_ > 0);
    CHECK(std::abs(mean - exact) <= 5 * stderr_);
  }
}

TEST_CASE("parameters that cannot affect the velocity get exactly zero gradient", "[derivatives][egnn]") {
  // Fixtures README §2a: embedding_out and the last layer's node_mlp never reach f.
  const auto& fx = fixture("egnn_dw4.json");
  const FieldConfig cfg = particle_field(2);
  const auto p = random_params(cfg, 13);
  VectorField<double> field(cfg, p.layout);
  Rng rng(14);
  const auto z = random_state(cfg, 4, rng);
  Mat V = random_mat(2, 8, rng), wJ = random_mat(2, 8, rng);
  std::vector<double> wf(8, 1.0), f(8), zbar(8), grad(p.values.size(), 0.0);
  FieldWorkspace<double> ws;
  Mat JV;
  field.forward(p.values.data(), z.data(), 4, 0.5, &V, ws, f.data(), &JV);
  field.reverse(p.values.data(), ws, wf.data(), &wJ, zbar.data(), grad.data());
  for (const auto& info : p.layout.tensors()) {
    bool unused = false;
    for (const auto& name : fx["variants"]["init"]["params_not_affecting_f"]) unused |= name == info.name;
    double norm = 0;
    for (std::size_t k = 0; k < info.size; ++k) norm += std::abs(grad[info.offset + k]);
    INFO(info.name);
    if (unused)
      CHECK(norm == 0.0);
    else
      CHECK(norm > 0.0);
  }
}

TEST_CASE("float32 derivatives agree with float64", "[derivatives][egnn]") {
  const FieldConfig cfg = small_molecule_field();
  const auto p = random_params(cfg, 15);
  const auto pf = p.cast<float>();
  VectorField<double> fd(cfg, p.layout);
  VectorField<float> ff(cfg, p.layout);
  Rng rng(16);
  const int n = 7;
  const auto z = random_state(cfg, n, rng);
  const int S = int(z.size());
  const Mat V = random_mat(2, S, rng), wJ = random_mat(2, S, rng);
  std::vector<double> wf(S), f(S), zbar(S), grad(p.values.size(), 0.0);
  for (double& w : wf) w = rng.normal();
  FieldWorkspace<double> wsd;
  Mat JV;
  fd.forward(p.values.data(), z.data(), n, 0.5, &V, wsd, f.data(), &JV);
  fd.reverse(p.values.data(), wsd, wf.data(), &wJ, zbar.data(), grad.data());

  std::vector<float> zf(z.begin(), z.end()), wff(wf.begin(), wf.end()), f32(S), zbar32(S), grad32(p.values.size(), 0.f);
  detail::Mat<float> Vf = V.cast<float>(), wJf = wJ.cast<float>(), JVf;
  FieldWorkspace<float> wsf;
  ff.forward(pf.values.data(), zf.data(), n, 0.5f, &Vf, wsf, f32.data(), &JVf);
  ff.reverse(pf.values.data(), wsf, wff.data(), &wJf, zbar32.data(), grad32.data());
  auto rel = [](const auto& a, const auto& b) {
    double err = 0, scale = 1;
    for (std::size_t i = 0; i < a.size(); ++i) {
      err = std::max(err, std::abs(double(a[i]) - double(b[i])));
      scale = std::max(scale, std::abs(double(b[i])));
    }
    return err / scale;
  };
  CHECK(rel(f32, f) <= tol::kFloat32);
  CHECK(rel(std::vector<float>(JVf.data(), JVf.data() + JVf.size()), std::vector<double>(JV.data(), JV.data() + JV.size())) <= tol::kFloat32);
  CHECK(rel(zbar32, zbar) <= tol::kFloat32);
  CHECK(rel(grad32, grad) <= tol::kFloat32);
}
