// Node-local tangents (EgnnNetwork::forward's tangent_nodes, the exact
// trace's first layer on each direction's own edges): the same velocity and
// tangents as the dense forward, for every kind of field, and refused where
// their promise does not hold.
#include <catch2/catch.hpp>

#include "egnn/trace.hpp"
#include "support/fixtures.hpp"
#include "support/random_model.hpp"

using namespace enf;
using namespace enf::test;

namespace {

template <class T>
using Mat = detail::Mat<T>;

// K random directions, direction k supported on node nodes[k] (all its channels).
Mat<double> local_directions(int n, int C, const std::vector<int>& nodes, Rng& rng) {
  Mat<double> V = Mat<double>::Zero(int(nodes.size()), n * C);
  for (std::size_t k = 0; k < nodes.size(); ++k)
    for (int c = 0; c < C; ++c) V(k, nodes[k] * C + c) = rng.normal();
  return V;
}

// The node-local forward's f and J·V against the dense one's, to tol (relative to the largest value).
template <class T>
void check_same(const std::vector<T>& f_local, const std::vector<T>& f_dense, const Mat<T>& JV_local,
                const Mat<T>& JV_dense, double tol) {
  std::vector<double> fd(f_dense.begin(), f_dense.end()), fl(f_local.begin(), f_local.end());
  const Mat<double> jd = JV_dense.template cast<double>(), jl = JV_local.template cast<double>();
  INFO("f " << max_abs_diff(fl, fd) << ", JV " << (jl - jd).cwiseAbs().maxCoeff() << " of " << jd.cwiseAbs().maxCoeff());
  CHECK(max_abs_diff(fl, fd) <= tol * std::max(1.0, max_abs(fd)));
  CHECK((jl - jd).cwiseAbs().maxCoeff() <= tol * std::max(1.0, jd.cwiseAbs().maxCoeff()));
  CHECK(jd.cwiseAbs().maxCoeff() > 0);
}

template <class T>
void check_against_dense(const FieldConfig& cfg, int n, double tol) {
  const auto p = random_params(cfg, 61);
  const Parameters<T> pt = p.template cast<T>();
  VectorField<T> field(cfg, pt.layout);
  const int C = cfg.channels();
  Rng rng(62);
  const auto z64 = random_state(cfg, n, rng);
  const std::vector<T> z(z64.begin(), z64.end());
  // Nodes first, last, repeated, and every node once.
  std::vector<int> nodes{0, n - 1, 1, 1};
  for (int i = 0; i < n; ++i) nodes.push_back(i);
  const Mat<T> V = local_directions(n, C, nodes, rng).cast<T>();
  std::vector<T> node_cond(std::size_t(n) * cfg.node_condition), edge_cond(std::size_t(n) * (n - 1) * cfg.edge_condition);
  for (T& v : node_cond) v = T(rng.normal());
  for (T& v : edge_cond) v = T(rng.normal());
  FieldWorkspace<T> dense_ws, local_ws;
  if (cfg.conditional()) {
    field.set_condition(dense_ws, n, node_cond.data(), edge_cond.data());
    field.set_condition(local_ws, n, node_cond.data(), edge_cond.data());
  }
  std::vector<T> f_dense(z.size()), f_local(z.size());
  Mat<T> JV_dense, JV_local;
  const T t = T(0.37);
  field.forward(pt.values.data(), z.data(), n, t, &V, dense_ws, f_dense.data(), &JV_dense);
  field.forward_node_tangents(pt.values.data(), z.data(), n, t, V, nodes.data(), local_ws, f_local.data(), JV_local);
  check_same(f_local, f_dense, JV_local, JV_dense, tol);
  // Tangents do not move the value: f is the dense one's whatever the directions.
  // And the exact trace (which takes this path) is the dense Jacobian's.
  TraceScratch<T> scratch;
  std::vector<T> f_tr(z.size());
  const double tr = double(exact_trace(field, pt.values.data(), z.data(), n, t, local_ws, scratch, f_tr.data()));
  Mat<T> I = Mat<T>::Identity(n * C, n * C), J;
  field.forward(pt.values.data(), z.data(), n, t, &I, dense_ws, f_dense.data(), &J);
  const double tr_dense = double(J.trace());
  INFO("trace " << tr << " dense " << tr_dense);
  CHECK(std::abs(tr - tr_dense) <= tol * std::max(1.0, J.template cast<double>().cwiseAbs().sum()));
}

FieldConfig with(FieldConfig c, void (*change)(FieldConfig&)) {
  change(c);
  return c;
}

}  // namespace

TEST_CASE("node-local tangents: the dense forward's velocity and tangents, and its exact trace", "[egnn][trace]") {
  const std::pair<const char*, FieldConfig> cases[] = {
      {"particles", particle_field(3)},
      {"particles 2-D", particle_field(2)},
      {"molecules", small_molecule_field()},
      {"mean aggregation", with(small_molecule_field(), [](FieldConfig& c) { c.aggregation = Aggregation::Mean; })},
      {"one layer (layer 0 is the last)", with(small_molecule_field(), [](FieldConfig& c) { c.layers = 1; })},
      {"no attention, no tanh", with(particle_field(3), [](FieldConfig& c) { c.attention = c.tanh = false; })},
      {"conditional", with(small_molecule_field(), [](FieldConfig& c) { c.node_condition = 2; c.edge_condition = 3; })},
  };
  for (const auto& [name, cfg] : cases)
    SECTION(name) {
      // The same arithmetic on fewer rows: the dense products' rounding apart, equal.
      check_against_dense<double>(cfg, 6, 1e-12);
      check_against_dense<float>(cfg, 6, 1e-5);
      check_against_dense<double>(cfg, 2, 1e-12);
    }
}

TEST_CASE("node-local tangents: a direction off its node is refused, and so is a reverse pass", "[egnn][errors]") {
  const FieldConfig cfg = particle_field(3);
  const auto p = random_params(cfg, 63);
  VectorField<double> field(cfg, p.layout);
  FieldWorkspace<double> ws;
  Rng rng(64);
  const int n = 5;
  const auto z = random_state(cfg, n, rng);
  std::vector<double> f(z.size()), zbar(z.size()), grad(p.values.size(), 0.0);
  Mat<double> V = local_directions(n, 3, {2, 4}, rng), JV;
  const std::vector<int> wrong{2, 3};
  CHECK_THROWS_WITH(field.forward_node_tangents(p.values.data(), z.data(), n, 0.5, V, wrong.data(), ws, f.data(), JV),
                    Catch::Matchers::Contains("not zero outside its node"));
  const std::vector<int> right{2, 4};
  field.forward_node_tangents(p.values.data(), z.data(), n, 0.5, V, right.data(), ws, f.data(), JV);
  CHECK_THROWS_WITH(field.reverse(p.values.data(), ws, f.data(), &JV, zbar.data(), grad.data()),
                    Catch::Matchers::Contains("node-local tangents"));
  // A dense forward on the same workspace may be reversed again.
  field.forward(p.values.data(), z.data(), n, 0.5, &V, ws, f.data(), &JV);
  CHECK_NOTHROW(field.reverse(p.values.data(), ws, f.data(), &JV, zbar.data(), grad.data()));
}

// Several stacked graphs (Cnf::forward_lockstep's exact trace): each tangent
// row supported on one node of every graph, the first layer's tangents on
// those nodes' edges, against the dense stacked forward.
template <class T>
void check_stacked_against_dense(const FieldConfig& cfg, double tol) {
  const auto p = random_params(cfg, 65);
  const Parameters<T> pt = p.template cast<T>();
  VectorField<T> field(cfg, pt.layout);
  const int C = cfg.channels();
  const std::vector<int> sizes{4, 6, 5};
  const int G = int(sizes.size()), K = 7;
  Rng rng(66);
  std::vector<T> z, t;
  std::vector<int> first{0};
  for (int g = 0; g < G; ++g) {
    const auto zg = random_state(cfg, sizes[g], rng);
    z.insert(z.end(), zg.begin(), zg.end());
    t.push_back(T(0.2 + 0.3 * g));
    first.push_back(first.back() + sizes[g]);
  }
  const int N = first.back();
  // Row k: node (k + g) mod n_g of graph g (so rows 4.. revisit nodes), random values on its channels.
  std::vector<int> nodes;
  Mat<T> V = Mat<T>::Zero(K, N * C);
  for (int k = 0; k < K; ++k)
    for (int g = 0; g < G; ++g) {
      const int i = first[g] + (k + g) % sizes[g];
      nodes.push_back(i);
      for (int c = 0; c < C; ++c) V(k, i * C + c) = T(rng.normal());
    }
  FieldWorkspace<T> dense_ws, local_ws;
  std::vector<T> f_dense(z.size()), f_local(z.size());
  Mat<T> JV_dense, JV_local;
  field.forward_stacked(pt.values.data(), z.data(), sizes, t.data(), &V, dense_ws, f_dense.data(), &JV_dense);
  field.forward_stacked(pt.values.data(), z.data(), sizes, t.data(), &V, local_ws, f_local.data(), &JV_local,
                        nodes.data(), G);
  check_same(f_local, f_dense, JV_local, JV_dense, tol);
}

TEST_CASE("node-local tangents over stacked graphs: one node of every graph per row", "[egnn][trace][lockstep]") {
  SECTION("particles") {
    check_stacked_against_dense<double>(particle_field(3), 1e-12);
    check_stacked_against_dense<float>(particle_field(3), 1e-5);
  }
  SECTION("molecules") { check_stacked_against_dense<double>(small_molecule_field(), 1e-12); }
  SECTION("mean aggregation, one layer") {
    check_stacked_against_dense<double>(with(small_molecule_field(), [](FieldConfig& c) {
                                          c.aggregation = Aggregation::Mean;
                                          c.layers = 1;
                                        }),
                                        1e-12);
  }
  SECTION("two nodes of one row in one graph are refused") {
    const FieldConfig cfg = particle_field(3);
    const auto p = random_params(cfg, 67);
    VectorField<double> field(cfg, p.layout);
    FieldWorkspace<double> ws;
    Rng rng(68);
    const std::vector<int> sizes{4, 5};
    const double t[2] = {0.5, 0.5};
    std::vector<double> z = random_state(cfg, 4, rng), z1 = random_state(cfg, 5, rng);
    z.insert(z.end(), z1.begin(), z1.end());
    std::vector<double> f(z.size());
    Mat<double> V = local_directions(9, 3, {1}, rng), JV;
    V.row(0).segment(2 * 3, 3).setConstant(0.5);  // node 2 too: graph 0 again
    const std::vector<int> same_graph{1, 2};
    CHECK_THROWS_WITH(field.forward_stacked(p.values.data(), z.data(), sizes, t, &V, ws, f.data(), &JV,
                                            same_graph.data(), 2),
                      Catch::Matchers::Contains("two tangent nodes of one block in one graph"));
    const std::vector<int> outside{1, 9};
    CHECK_THROWS_WITH(field.forward_stacked(p.values.data(), z.data(), sizes, t, &V, ws, f.data(), &JV,
                                            outside.data(), 2),
                      Catch::Matchers::Contains("outside the graphs"));
    const std::vector<int> other_graph{1, 6};  // row 0 is nonzero on node 2, named by neither
    CHECK_THROWS_WITH(field.forward_stacked(p.values.data(), z.data(), sizes, t, &V, ws, f.data(), &JV,
                                            other_graph.data(), 2),
                      Catch::Matchers::Contains("not zero outside its nodes"));
  }
}
