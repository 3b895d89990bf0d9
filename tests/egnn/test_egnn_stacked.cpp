// Several graphs in one evaluation (VectorField::forward_stacked, issue 13's
// lockstep solves): each graph's velocity, tangents, input cotangent and
// parameter gradient are what the graph gives alone, whatever its neighbours
// in the stack, their sizes, order and times.
#include <catch2/catch.hpp>

#include <numeric>

#include "support/fixtures.hpp"
#include "support/random_model.hpp"

using namespace enf;
using namespace enf::test;

namespace {

template <class T>
using Mat = detail::Mat<T>;

// Graphs of the given sizes, each with its own state, time and K directions.
struct Stack {
  std::vector<int> sizes;
  std::vector<double> z, t, fbar;
  Mat<double> V, JVbar;
};

Stack random_stack(const FieldConfig& cfg, std::vector<int> sizes, int K, std::uint64_t seed) {
  Rng rng(seed);
  Stack s;
  s.sizes = std::move(sizes);
  const int C = cfg.channels(), n = std::accumulate(s.sizes.begin(), s.sizes.end(), 0);
  for (int size : s.sizes) {
    const auto z = random_state(cfg, size, rng);
    s.z.insert(s.z.end(), z.begin(), z.end());
    s.t.push_back(rng.uniform());
  }
  s.fbar.resize(std::size_t(n) * C);
  for (double& v : s.fbar) v = rng.normal();
  s.V.resize(K, n * C);
  s.JVbar.resize(K, n * C);
  for (Eigen::Index k = 0; k < s.V.size(); ++k) {
    s.V.data()[k] = rng.normal();
    s.JVbar.data()[k] = rng.normal();
  }
  return s;
}

// One graph's (or the whole stack's) results.
struct Result {
  std::vector<double> f, JV, zbar, grad;
};

// The stack in one call (alone = false) or graph by graph (alone = true, the
// per-graph parameter gradients summed), in precision T.
template <class T>
Result evaluate(const FieldConfig& cfg, const Parameters<double>& p, const Stack& s, bool alone) {
  VectorField<T> field(cfg, p.layout);
  const std::vector<T> params(p.values.begin(), p.values.end());
  const int C = cfg.channels(), K = int(s.V.rows()), n = std::accumulate(s.sizes.begin(), s.sizes.end(), 0);
  FieldWorkspace<T> ws;
  Result r;
  r.f.resize(std::size_t(n) * C);
  r.JV.resize(std::size_t(K) * n * C);
  r.zbar.resize(std::size_t(n) * C);
  std::vector<T> grad(params.size(), T(0));
  auto run = [&](int first, int count, int node, int nodes) {
    const int cols = nodes * C;
    const std::vector<T> z(s.z.begin() + std::size_t(node) * C, s.z.begin() + std::size_t(node + nodes) * C);
    const std::vector<T> t(s.t.begin() + first, s.t.begin() + first + count);
    const std::vector<T> fbar(s.fbar.begin() + std::size_t(node) * C, s.fbar.begin() + std::size_t(node + nodes) * C);
    const Mat<T> V = s.V.middleCols(node * C, cols).cast<T>(), JVbar = s.JVbar.middleCols(node * C, cols).cast<T>();
    std::vector<T> f(cols), zbar(cols);
    Mat<T> JV;
    field.forward_stacked(params.data(), z.data(), std::span<const int>(s.sizes.data() + first, count), t.data(), &V,
                          ws, f.data(), &JV);
    field.reverse(params.data(), ws, fbar.data(), &JVbar, zbar.data(), grad.data());
    for (int k = 0; k < cols; ++k) {
      r.f[node * C + k] = double(f[k]);
      r.zbar[node * C + k] = double(zbar[k]);
      for (int j = 0; j < K; ++j) r.JV[std::size_t(j) * n * C + node * C + k] = double(JV(j, k));
    }
  };
  if (alone) {
    for (int g = 0, node = 0; g < int(s.sizes.size()); node += s.sizes[g++]) run(g, 1, node, s.sizes[g]);
  } else {
    run(0, int(s.sizes.size()), 0, n);
  }
  r.grad.assign(grad.begin(), grad.end());
  return r;
}

double scale_of(const std::vector<double>& v) { return std::max(1.0, max_abs(v)); }

void check_close(const Result& a, const Result& b, double tol) {
  INFO("f " << max_abs_diff(a.f, b.f) << ", JV " << max_abs_diff(a.JV, b.JV) << ", zbar "
            << max_abs_diff(a.zbar, b.zbar) << ", grad " << max_abs_diff(a.grad, b.grad));
  CHECK(max_abs_diff(a.f, b.f) <= tol * scale_of(b.f));
  CHECK(max_abs_diff(a.JV, b.JV) <= tol * scale_of(b.JV));
  CHECK(max_abs_diff(a.zbar, b.zbar) <= tol * scale_of(b.zbar));
  CHECK(max_abs_diff(a.grad, b.grad) <= tol * scale_of(b.grad));
}

FieldConfig mean_molecule_field() {
  FieldConfig c = small_molecule_field();
  c.aggregation = Aggregation::Mean;
  return c;
}

}  // namespace

TEST_CASE("stacked graphs: every graph's velocity, tangents and cotangents are its own, alone", "[stacked][egnn]") {
  // Particles (no features, t the node feature), molecules (features and t),
  // and the reference QM9 network's mean aggregation (which scales by each
  // graph's own n − 1).
  const std::pair<const char*, FieldConfig> cases[] = {
      {"particles", particle_field(3)}, {"molecules", small_molecule_field()}, {"mean", mean_molecule_field()}};
  for (const auto& [name, cfg] : cases) {
    SECTION(name) {
      const auto p = random_params(cfg, 41);
      const Stack s = random_stack(cfg, {5, 2, 8, 3, 5}, 3, 42);
      const Result stacked = evaluate<double>(cfg, p, s, false), alone = evaluate<double>(cfg, p, s, true);
      // Each value and tangent is the same arithmetic on the same rows; only
      // the matrix products' blocking may differ, and the gradient is summed
      // over all graphs in one product instead of graph by graph.
      check_close(stacked, alone, 1e-13);
      const Result stacked32 = evaluate<float>(cfg, p, s, false), alone32 = evaluate<float>(cfg, p, s, true);
      check_close(stacked32, alone32, 1e-5);
    }
  }
}

TEST_CASE("stacked graphs: a graph's results do not depend on its neighbours, their order or their times",
          "[stacked][egnn]") {
  const FieldConfig cfg = small_molecule_field();
  const auto p = random_params(cfg, 43);
  Stack s = random_stack(cfg, {4, 6, 3}, 2, 44);
  const Result base = evaluate<double>(cfg, p, s, false);
  // The same graphs in reverse order, the middle one's time changed: graphs 0
  // and 2 keep their numbers (to rounding), graph 1's velocity changes.
  const int C = cfg.channels();
  Stack r;
  r.sizes = {3, 6, 4};
  r.t = {s.t[2], s.t[1] + 0.25, s.t[0]};
  auto cols = [&](int node, int nodes) { return std::make_pair(node * C, nodes * C); };
  const std::pair<int, int> g0 = cols(0, 4), g1 = cols(4, 6), g2 = cols(10, 3);
  auto take = [](const std::vector<double>& v, std::pair<int, int> c) {
    return std::vector<double>(v.begin() + c.first, v.begin() + c.first + c.second);
  };
  for (const auto& c : {g2, g1, g0}) {
    for (double v : take(s.z, c)) r.z.push_back(v);
    for (double v : take(s.fbar, c)) r.fbar.push_back(v);
  }
  r.V.resize(s.V.rows(), s.V.cols());
  r.JVbar.resize(s.V.rows(), s.V.cols());
  r.V << s.V.middleCols(g2.first, g2.second), s.V.middleCols(g1.first, g1.second), s.V.middleCols(g0.first, g0.second);
  r.JVbar << s.JVbar.middleCols(g2.first, g2.second), s.JVbar.middleCols(g1.first, g1.second),
      s.JVbar.middleCols(g0.first, g0.second);
  const Result other = evaluate<double>(cfg, p, r, false);
  const std::pair<int, int> r0 = {g2.second + g1.second, g0.second}, r2 = {0, g2.second};
  const double tol = 1e-13 * scale_of(base.f);
  CHECK(max_abs_diff(take(other.f, r0), take(base.f, g0)) <= tol);
  CHECK(max_abs_diff(take(other.f, r2), take(base.f, g2)) <= tol);
  CHECK(max_abs_diff(take(other.zbar, r0), take(base.zbar, g0)) <= 1e-13 * scale_of(base.zbar));
  CHECK(max_abs_diff(take(other.f, {g2.second, g1.second}), take(base.f, g1)) > 1e-6);
}

TEST_CASE("stacked graphs: bad stacks get a clear error", "[stacked][errors][egnn]") {
  const FieldConfig cfg = particle_field(3);
  const auto p = random_params(cfg, 45);
  VectorField<double> field(cfg, p.layout);
  FieldWorkspace<double> ws;
  std::vector<double> z(3 * 7, 0.1), f(z.size()), t{0.5, 0.5};
  const int sizes[2] = {6, 1};
  CHECK_THROWS_WITH(field.forward_stacked(p.values.data(), z.data(), std::span<const int>(sizes, 2), t.data(),
                                          nullptr, ws, f.data(), nullptr),
                    Catch::Matchers::Contains("at least 2 nodes"));
  FieldConfig conditional = small_molecule_field();
  conditional.node_condition = 2;
  const auto pc = random_params(conditional, 46);
  VectorField<double> cfield(conditional, pc.layout);
  FieldWorkspace<double> cws;
  const int two[2] = {3, 3};
  std::vector<double> zc(6 * conditional.channels(), 0.1), fc(zc.size()), cond(6 * 2, 0.0);
  cfield.set_condition(cws, 6, cond.data(), nullptr);
  CHECK_THROWS_WITH(cfield.forward_stacked(pc.values.data(), zc.data(), std::span<const int>(two, 2), t.data(),
                                           nullptr, cws, fc.data(), nullptr),
                    Catch::Matchers::Contains("one molecule per call"));
}
