// The conditional vector field: positions flowed, per-atom and per-edge
// conditioning fixed (FieldConfig::node_condition / edge_condition). Its
// derivatives against central differences (including the conditioning's
// weight columns), E(n) equivariance, atom-order invariance, that the
// conditioning matters and where it enters, and float32 against float64.
// With no conditioning nothing changes: the other egnn tests cover that.
#include <catch2/catch.hpp>
#include <Eigen/Dense>
#include <cmath>

#include "egnn/trace.hpp"
#include "engine/checkpoint.hpp"
#include "support/finite_difference.hpp"
#include "support/fixtures.hpp"
#include "support/orthogonal.hpp"
#include "support/random_model.hpp"

using namespace enf;
using namespace enf::test;
using Mat = detail::Mat<double>;

namespace {

// As test_egnn_derivatives.cpp: Richardson differences are good to ~1e-9 here.
constexpr double kFdRelative = 1e-7;
// As test_egnn_symmetry.cpp: exact in real arithmetic, rounding only in float64.
constexpr double kRoundoff = 1e-11;

// One molecule's conditioning: node [n, Fc], edge [n(n−1), Ec] in the network's edge order.
struct Condition {
  std::vector<double> node, edge;
};

const double* ptr(const std::vector<double>& v) { return v.empty() ? nullptr : v.data(); }

// Node: a one-hot "element" over Fc − 1 classes and a "charge" in {−1, 0, 1}
// (what issue 15 will pass); edge: N(0, 1) values (bond order, graph distance …).
Condition random_condition(const FieldConfig& cfg, int n, Rng& rng) {
  const int Fc = cfg.node_condition, Ec = cfg.edge_condition;
  Condition c{std::vector<double>(std::size_t(n) * Fc, 0.0), std::vector<double>(std::size_t(n) * (n - 1) * Ec)};
  for (int i = 0; i < n && Fc > 0; ++i) {
    if (Fc > 1) c.node[i * Fc + int(rng.uniform() * (Fc - 1))] = 1;
    c.node[i * Fc + Fc - 1] = std::floor(rng.uniform() * 3) - 1;
  }
  for (double& e : c.edge) e = rng.normal();
  return c;
}

struct Case {
  std::string name;
  FieldConfig cfg;
};

FieldConfig conditional(int dim, int features, int Fc, int Ec, bool attention) {
  FieldConfig c;
  c.dim = dim;
  c.features = features;
  c.hidden = 8;
  c.layers = 2;
  c.attention = attention;
  c.node_condition = Fc;
  c.edge_condition = Ec;
  return c;
}

std::vector<Case> cases() {
  FieldConfig mean_agg = conditional(3, 0, 3, 1, false);
  mean_agg.aggregation = Aggregation::Mean;
  mean_agg.tanh = false;
  mean_agg.condition_time = false;
  return {{"3-D positions, node and edge conditioning, attention", conditional(3, 0, 4, 2, true)},
          {"3-D positions, node and edge conditioning, no attention", conditional(3, 0, 4, 2, false)},
          {"mean aggregation, no attention/tanh/time", mean_agg},
          {"edge conditioning only", conditional(3, 0, 0, 3, true)},
          {"2-D, flowed features beside node and edge conditioning", conditional(2, 2, 2, 3, true)}};
}

// f and (with V) J·V at z, on a fresh workspace carrying the conditioning.
void eval(const VectorField<double>& field, const Parameters<double>& p, const Condition& c,
          const std::vector<double>& z, int n, double t, const Mat* V, std::vector<double>& f, Mat* JV) {
  FieldWorkspace<double> ws;
  field.set_condition(ws, n, ptr(c.node), ptr(c.edge));
  f.resize(z.size());
  field.forward(p.values.data(), z.data(), n, t, V, ws, f.data(), JV);
}

std::vector<double> velocity(const VectorField<double>& field, const Parameters<double>& p, const Condition& c,
                             const std::vector<double>& z, int n, double t = 0.6) {
  std::vector<double> f;
  eval(field, p, c, z, n, t, nullptr, f, nullptr);
  return f;
}

// f and tr(∂f/∂z), through the generic exact_trace: the conditioning reaches
// it on the workspace.
double divergence(const VectorField<double>& field, const Parameters<double>& p, const Condition& c,
                  const std::vector<double>& z, int n, std::vector<double>& f) {
  FieldWorkspace<double> ws;
  TraceScratch<double> s;
  field.set_condition(ws, n, ptr(c.node), ptr(c.edge));
  f.resize(z.size());
  return exact_trace(field, p.values.data(), z.data(), n, 0.6, ws, s, f.data());
}

Mat random_mat(int rows, int cols, Rng& rng) {
  Mat m(rows, cols);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) m(i, j) = rng.normal();
  return m;
}

// L = w_fᵀ f + Σ_k w_kᵀ (J·V_k).
double scalar_loss(const VectorField<double>& field, const Parameters<double>& p, const Condition& c,
                   const std::vector<double>& z, int n, double t, const Mat& V, const std::vector<double>& wf,
                   const Mat& wJ) {
  std::vector<double> f;
  Mat JV;
  eval(field, p, c, z, n, t, &V, f, &JV);
  double L = 0;
  for (std::size_t i = 0; i < f.size(); ++i) L += wf[i] * f[i];
  return L + (JV.array() * wJ.array()).sum();
}

// The flat indices of the conditioning's weights: every layer's edge_mlp.0
// columns past [h_i, h_j, r, a], and the embedding's columns [F, F + Fc).
std::vector<std::size_t> condition_weights(const FieldConfig& cfg, const ParameterLayout& layout) {
  std::vector<std::size_t> idx;
  const int H = cfg.hidden, first = 2 * H + 2, width = first + cfg.edge_condition;
  for (int l = 0; l < cfg.layers; ++l) {
    const auto& w = layout.at("egnn.gcl_" + std::to_string(l) + ".edge_mlp.0.weight");
    REQUIRE(w.shape == std::vector<int>{H, width});
    for (int r = 0; r < H; ++r)
      for (int k = first; k < width; ++k) idx.push_back(w.offset + std::size_t(r) * width + k);
  }
  const auto& emb = layout.at("egnn.embedding.weight");
  const int in = emb.shape[1];
  for (int r = 0; r < H; ++r)
    for (int k = cfg.features; k < cfg.features + cfg.node_condition; ++k)
      idx.push_back(emb.offset + std::size_t(r) * in + k);
  return idx;
}

}  // namespace

TEST_CASE("conditional field: forward-mode tangents match central differences", "[derivatives][egnn][conditional]") {
  for (const auto& c : cases()) {
    SECTION(c.name) {
      const auto p = random_params(c.cfg, 31);
      VectorField<double> field(c.cfg, p.layout);
      Rng rng(32);
      const int n = 5;
      const auto z = random_state(c.cfg, n, rng);
      const Condition cond = random_condition(c.cfg, n, rng);
      const int S = int(z.size()), K = 3;
      const Mat V = random_mat(K, S, rng);
      std::vector<double> f;
      Mat JV;
      eval(field, p, cond, z, n, 0.3, &V, f, &JV);
      for (int k = 0; k < K; ++k) {
        double err = 0, scale = 1;
        for (int i = 0; i < S; ++i) {
          const double fd = derivative([&](double h) {
            std::vector<double> zh = z;
            for (int j = 0; j < S; ++j) zh[j] += h * V(k, j);
            return velocity(field, p, cond, zh, n, 0.3)[i];
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

TEST_CASE("conditional field: the reverse pass matches central differences wrt the input, every parameter "
          "tensor and the conditioning's weight columns",
          "[derivatives][egnn][conditional]") {
  for (const auto& c : cases()) {
    SECTION(c.name) {
      auto p = random_params(c.cfg, 33);
      VectorField<double> field(c.cfg, p.layout);
      Rng rng(34);
      const int n = 5;
      const auto z = random_state(c.cfg, n, rng);
      const Condition cond = random_condition(c.cfg, n, rng);
      const int S = int(z.size()), K = 2;
      const Mat V = random_mat(K, S, rng), wJ = random_mat(K, S, rng);
      std::vector<double> wf(S);
      for (double& w : wf) w = rng.normal();

      FieldWorkspace<double> ws;
      field.set_condition(ws, n, ptr(cond.node), ptr(cond.edge));
      std::vector<double> f(S), zbar(S), grad(p.values.size(), 0.0);
      Mat JV;
      field.forward(p.values.data(), z.data(), n, 0.7, &V, ws, f.data(), &JV);
      field.reverse(p.values.data(), ws, wf.data(), &wJ, zbar.data(), grad.data());
      auto loss = [&](const Parameters<double>& q, const std::vector<double>& zz) {
        return scalar_loss(field, q, cond, zz, n, 0.7, V, wf, wJ);
      };

      for (int i = 0; i < S; ++i) {
        const double fd = derivative([&](double h) {
          std::vector<double> zh = z;
          zh[i] += h;
          return loss(p, zh);
        });
        INFO("input entry " << i);
        CHECK(std::abs(fd - zbar[i]) <= kFdRelative * std::max(1.0, std::abs(fd)));
      }
      // A random direction within a set of parameter entries.
      auto check_direction = [&](const std::string& what, const std::vector<std::size_t>& entries) {
        const std::vector<double> u = unit_direction(entries.size(), rng);
        double predicted = 0;
        for (std::size_t k = 0; k < entries.size(); ++k) predicted += u[k] * grad[entries[k]];
        const double fd = derivative([&](double h) {
          Parameters<double> q = p;
          for (std::size_t k = 0; k < entries.size(); ++k) q.values[entries[k]] += h * u[k];
          return loss(q, z);
        });
        INFO(what << ": finite difference " << fd << ", reverse pass " << predicted);
        CHECK(std::abs(fd - predicted) <= kFdRelative * std::max(1.0, std::abs(fd)));
        return predicted;
      };
      for (const auto& info : p.layout.tensors()) {
        std::vector<std::size_t> entries(info.size);
        for (std::size_t k = 0; k < info.size; ++k) entries[k] = info.offset + k;
        check_direction("tensor " + info.name, entries);
      }
      // The new columns alone, where an error would be diluted in a whole tensor;
      // and they do receive a gradient.
      const double along = check_direction("conditioning weights", condition_weights(c.cfg, p.layout));
      CHECK(std::abs(along) > 1e-6);
    }
  }
}

TEST_CASE("conditional field: rotations, reflections and translations of the positions rotate the velocity",
          "[symmetry][egnn][conditional]") {
  for (const auto& c : cases()) {
    const FieldConfig& cfg = c.cfg;
    const int D = cfg.dim, C = cfg.channels(), n = 7;
    const auto p = random_params(cfg, 35);
    VectorField<double> field(cfg, p.layout);
    Rng rng(36);
    for (bool reflect : {false, true}) {
      SECTION(c.name + (reflect ? ", reflection" : ", rotation")) {
        const auto z = random_state(cfg, n, rng);
        const Condition cond = random_condition(cfg, n, rng);
        const Eigen::MatrixXd R = random_orthogonal(D, rng, reflect);
        Eigen::VectorXd b(D);
        for (int d = 0; d < D; ++d) b[d] = 3 * rng.normal();
        std::vector<double> zt = z;
        for (int i = 0; i < n; ++i) {
          const Eigen::VectorXd y = R * Eigen::Map<const Eigen::VectorXd>(&z[i * C], D) + b;
          for (int d = 0; d < D; ++d) zt[i * C + d] = y[d];
        }
        std::vector<double> f, ft;
        const double div = divergence(field, p, cond, z, n, f), divt = divergence(field, p, cond, zt, n, ft);
        double err = 0, scale = 1;
        for (int i = 0; i < n; ++i) {
          const Eigen::VectorXd v = Eigen::Map<const Eigen::VectorXd>(&f[i * C], D);
          err = std::max(err, (R * v - Eigen::Map<const Eigen::VectorXd>(&ft[i * C], D)).cwiseAbs().maxCoeff());
          for (int k = D; k < C; ++k) err = std::max(err, std::abs(f[i * C + k] - ft[i * C + k]));
          scale = std::max(scale, v.cwiseAbs().maxCoeff());
        }
        CHECK(err <= kRoundoff * scale);
        CHECK(std::abs(div - divt) <= kRoundoff * std::max(1.0, std::abs(div)));
        CHECK(max_abs_diff(f, ft) > 1e-3);  // the field is not invariant: the check can fail
      }
    }
  }
}

TEST_CASE("conditional field: permuting the atoms with their conditioning permutes the velocity",
          "[symmetry][egnn][conditional]") {
  for (const auto& c : cases()) {
    SECTION(c.name) {
      const FieldConfig& cfg = c.cfg;
      const int C = cfg.channels(), Fc = cfg.node_condition, Ec = cfg.edge_condition, n = 6;
      const auto p = random_params(cfg, 37);
      VectorField<double> field(cfg, p.layout);
      Rng rng(38);
      const auto z = random_state(cfg, n, rng);
      const Condition cond = random_condition(cfg, n, rng);
      const std::vector<int> perm = random_permutation(n, rng);  // new atom i is old atom perm[i]
      std::vector<double> zp(z.size());
      Condition cp{std::vector<double>(cond.node.size()), std::vector<double>(cond.edge.size())};
      for (int i = 0; i < n; ++i) {
        for (int k = 0; k < C; ++k) zp[i * C + k] = z[perm[i] * C + k];
        for (int k = 0; k < Fc; ++k) cp.node[i * Fc + k] = cond.node[perm[i] * Fc + k];
        for (int j = 0; j < n; ++j)
          if (j != i)
            for (int k = 0; k < Ec; ++k)
              cp.edge[edge_index(i, j, n) * Ec + k] = cond.edge[edge_index(perm[i], perm[j], n) * Ec + k];
      }
      std::vector<double> f, fp;
      const double div = divergence(field, p, cond, z, n, f), divp = divergence(field, p, cp, zp, n, fp);
      double err = 0;
      for (int i = 0; i < n; ++i)
        for (int k = 0; k < C; ++k) err = std::max(err, std::abs(fp[i * C + k] - f[perm[i] * C + k]));
      CHECK(err <= kRoundoff * std::max(1.0, max_abs(f)));
      CHECK(std::abs(div - divp) <= kRoundoff * std::max(1.0, std::abs(div)));
      // Permuting the atoms but not their conditioning is another molecule.
      const auto mixed = velocity(field, p, cond, zp, n);
      double moved = 0;
      for (int i = 0; i < n; ++i)
        for (int k = 0; k < C; ++k) moved = std::max(moved, std::abs(mixed[i * C + k] - f[perm[i] * C + k]));
      CHECK(moved > 1e-4);
    }
  }
}

TEST_CASE("conditional field: the conditioning matters, and edge (i, j) is the message i receives from j",
          "[egnn][conditional]") {
  FieldConfig cfg = conditional(3, 0, 3, 2, true);
  cfg.layers = 1;  // one layer: e_ij reaches x_i only (before the centre of mass is removed)
  const int n = 5, D = 3, i = 1, j = 3;
  const auto p = random_params(cfg, 39);
  VectorField<double> field(cfg, p.layout);
  Rng rng(40);
  const auto z = random_state(cfg, n, rng);
  const Condition cond = random_condition(cfg, n, rng);
  const auto f = velocity(field, p, cond, z, n);

  Condition changed = cond;
  changed.edge[edge_index(i, j, n) * cfg.edge_condition + 1] += 0.5;
  const auto g = velocity(field, p, changed, z, n);
  CHECK(max_abs_diff(f, g) > 1e-4);
  // Only x_i's update changed, so every other atom moves by the same −Δ/n.
  double spread = 0;
  for (int k = 0; k < n; ++k)
    for (int d = 0; d < D; ++d)
      if (k != i) spread = std::max(spread, std::abs((g[k * D + d] - f[k * D + d]) - (g[d] - f[d])));
  CHECK(spread <= kRoundoff);
  double at_i = 0;
  for (int d = 0; d < D; ++d) at_i = std::max(at_i, std::abs((g[i * D + d] - f[i * D + d]) - (g[d] - f[d])));
  CHECK(at_i > 1e-4);

  // And the node conditioning: another element for one atom.
  Condition element = cond;
  std::swap(element.node[2 * 3 + 0], element.node[2 * 3 + 1]);
  if (element.node == cond.node) element.node[2 * 3 + 2] += 1;
  CHECK(max_abs_diff(f, velocity(field, p, element, z, n)) > 1e-4);
}

TEST_CASE("conditional field: with its conditioning weights zero it is the unconditional field",
          "[egnn][conditional]") {
  // Pins the layout: the embedding input is [h, c, t] (t stays last) and the
  // conditioning columns come after [h_i, h_j, r, a] in every edge_mlp.0.
  for (int F : {0, 2}) {
    const FieldConfig cfg = conditional(3, F, 3, 2, true);
    FieldConfig plain = cfg;
    plain.node_condition = plain.edge_condition = 0;
    auto p = random_params(cfg, 41);
    for (std::size_t k : condition_weights(cfg, p.layout)) p.values[k] = 0;
    Parameters<double> q(field_layout(plain));
    const int Fc = cfg.node_condition;
    for (const auto& info : q.layout.tensors()) {
      const auto& src = p.layout.at(info.name);
      const bool node_in = info.name == "egnn.embedding.weight";
      const bool node_out = info.name.rfind("egnn.embedding_out.", 0) == 0;
      const int rows = info.shape[0], cols = info.shape.size() > 1 ? info.shape[1] : 1;
      const int src_cols = src.shape.size() > 1 ? src.shape[1] : 1;
      for (int r = 0; r < rows; ++r)
        for (int k = 0; k < cols; ++k) {
          // Node-feature indices past the flowed features shift by Fc.
          const int sr = node_out && r >= F ? r + Fc : r, sk = node_in && k >= F ? k + Fc : k;
          q.values[info.offset + std::size_t(r) * cols + k] = p.values[src.offset + std::size_t(sr) * src_cols + sk];
        }
    }
    VectorField<double> field(cfg, p.layout), reference(plain, q.layout);
    Rng rng(42);
    const int n = 6;
    const auto z = random_state(cfg, n, rng);
    const auto f = velocity(field, p, random_condition(cfg, n, rng), z, n);
    FieldWorkspace<double> ws;
    std::vector<double> g(z.size());
    reference.forward(q.values.data(), z.data(), n, 0.6, nullptr, ws, g.data(), nullptr);
    INFO("F = " << F);
    CHECK(max_abs_diff(f, g) <= kRoundoff * std::max(1.0, max_abs(g)));
  }
}

TEST_CASE("conditional field: float32 agrees with float64", "[derivatives][egnn][conditional]") {
  const FieldConfig cfg = conditional(3, 0, 4, 2, true);
  const auto p = random_params(cfg, 43);
  const auto pf = p.cast<float>();
  VectorField<double> fd(cfg, p.layout);
  VectorField<float> ff(cfg, p.layout);
  Rng rng(44);
  const int n = 7;
  const auto z = random_state(cfg, n, rng);
  const Condition cond = random_condition(cfg, n, rng);
  const int S = int(z.size());
  const Mat V = random_mat(2, S, rng), wJ = random_mat(2, S, rng);
  std::vector<double> wf(S), f(S), zbar(S), grad(p.values.size(), 0.0);
  for (double& w : wf) w = rng.normal();
  FieldWorkspace<double> wsd;
  fd.set_condition(wsd, n, cond.node.data(), cond.edge.data());
  Mat JV;
  fd.forward(p.values.data(), z.data(), n, 0.5, &V, wsd, f.data(), &JV);
  fd.reverse(p.values.data(), wsd, wf.data(), &wJ, zbar.data(), grad.data());

  const std::vector<float> nodef(cond.node.begin(), cond.node.end()), edgef(cond.edge.begin(), cond.edge.end());
  std::vector<float> zf(z.begin(), z.end()), wff(wf.begin(), wf.end()), f32(S), zbar32(S), grad32(p.values.size(), 0.f);
  detail::Mat<float> Vf = V.cast<float>(), wJf = wJ.cast<float>(), JVf;
  FieldWorkspace<float> wsf;
  ff.set_condition(wsf, n, nodef.data(), edgef.data());
  ff.forward(pf.values.data(), zf.data(), n, 0.5f, &Vf, wsf, f32.data(), &JVf);
  ff.reverse(pf.values.data(), wsf, wff.data(), &wJf, zbar32.data(), grad32.data());
  auto rel = [](const auto& a, const auto& b) {
    double err = 0, scale = 1;
    for (std::size_t i = 0; i < std::size_t(b.size()); ++i) {
      err = std::max(err, std::abs(double(a.data()[i]) - double(b.data()[i])));
      scale = std::max(scale, std::abs(double(b.data()[i])));
    }
    return err / scale;
  };
  CHECK(rel(f32, f) <= tol::kFloat32);
  CHECK(rel(JVf, JV) <= tol::kFloat32);
  CHECK(rel(zbar32, zbar) <= tol::kFloat32);
  CHECK(rel(grad32, grad) <= tol::kFloat32);
}

TEST_CASE("conditional field: refuses to run without its conditioning", "[egnn][conditional]") {
  const FieldConfig cfg = conditional(3, 0, 2, 1, true);
  const auto p = random_params(cfg, 45);
  VectorField<double> field(cfg, p.layout);
  Rng rng(46);
  const auto z = random_state(cfg, 5, rng);
  const Condition cond = random_condition(cfg, 5, rng);
  std::vector<double> f(z.size());
  FieldWorkspace<double> ws;
  CHECK_THROWS_AS(field.forward(p.values.data(), z.data(), 5, 0.5, nullptr, ws, f.data(), nullptr),
                  std::invalid_argument);
  CHECK_THROWS_AS(field.set_condition(ws, 5, cond.node.data(), nullptr), std::invalid_argument);
  field.set_condition(ws, 4, cond.node.data(), cond.edge.data());  // another molecule's size
  CHECK_THROWS_AS(field.forward(p.values.data(), z.data(), 5, 0.5, nullptr, ws, f.data(), nullptr),
                  std::invalid_argument);
  field.set_condition(ws, 5, cond.node.data(), cond.edge.data());
  CHECK_NOTHROW(field.forward(p.values.data(), z.data(), 5, 0.5, nullptr, ws, f.data(), nullptr));
}

TEST_CASE("conditional field: the model JSON carries the conditioning widths, and only when there is some",
          "[egnn][conditional]") {
  const FieldConfig cfg = conditional(3, 0, 4, 2, true);
  const FieldConfig back = field_config_from_json(to_json(cfg));
  CHECK(back.node_condition == 4);
  CHECK(back.edge_condition == 2);
  const nlohmann::json plain = to_json(particle_field(3));
  CHECK_FALSE(plain.contains("node_condition"));
  CHECK_FALSE(plain.contains("edge_condition"));
  const FieldConfig old = field_config_from_json(plain);  // a checkpoint written before conditioning existed
  CHECK(old.node_condition == 0);
  CHECK(old.edge_condition == 0);
  CHECK(field_layout(old).total_size() == field_layout(particle_field(3)).total_size());
}
