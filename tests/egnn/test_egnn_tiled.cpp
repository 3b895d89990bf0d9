// The forward-only layer (EgnnWorkspace::forward_only, egnn_tiled_forward.cpp):
// the edge pipeline in tiles of whole receivers' edges, with no record for a
// reverse pass. The recording forward is the slow, obvious reference: the
// same velocity and tangents to rounding for every kind of field, graphs
// large enough for many tiles, stacked graphs, node-local tangents; a reverse
// pass after it is refused, and ForwardOnlyScope restores the setting.
#include <catch2/catch.hpp>

#include "egnn/trace.hpp"
#include "support/fixtures.hpp"
#include "support/random_model.hpp"

using namespace enf;
using namespace enf::test;

namespace {

template <class T>
using Mat = detail::Mat<T>;

FieldConfig with(FieldConfig c, void (*change)(FieldConfig&)) {
  change(c);
  return c;
}

// f and J·V for K random dense directions (K = 0: the velocity alone) over
// graphs of `sizes` nodes stacked, forward-only against recording.
template <class T>
void check_against_recording(const FieldConfig& cfg, const std::vector<int>& sizes, int K, double tol) {
  const auto p = random_params(cfg, 71);
  const Parameters<T> pt = p.template cast<T>();
  VectorField<T> field(cfg, pt.layout);
  const int C = cfg.channels();
  Rng rng(72);
  std::vector<T> z, times;
  int N = 0;
  for (int n : sizes) {
    const auto zg = random_state(cfg, n, rng);
    z.insert(z.end(), zg.begin(), zg.end());
    times.push_back(T(0.2 + 0.1 * times.size()));
    N += n;
  }
  Mat<T> V = Mat<double>::NullaryExpr(K, N * C, [&] { return rng.normal(); }).template cast<T>();
  FieldWorkspace<T> recording, tiled;
  const int n0 = sizes[0];
  if (cfg.conditional()) {
    std::vector<T> node_cond(std::size_t(n0) * cfg.node_condition),
        edge_cond(std::size_t(n0) * (n0 - 1) * cfg.edge_condition);
    for (T& v : node_cond) v = T(rng.normal());
    for (T& v : edge_cond) v = T(rng.normal());
    field.set_condition(recording, n0, node_cond.data(), edge_cond.data());
    field.set_condition(tiled, n0, node_cond.data(), edge_cond.data());
  }
  std::vector<T> f_rec(z.size()), f_tiled(z.size());
  Mat<T> JV_rec, JV_tiled;
  const Mat<T>* Vp = K > 0 ? &V : nullptr;
  field.forward_stacked(pt.values.data(), z.data(), sizes, times.data(), Vp, recording, f_rec.data(),
                        K > 0 ? &JV_rec : nullptr);
  {
    const ForwardOnlyScope scope(tiled);
    field.forward_stacked(pt.values.data(), z.data(), sizes, times.data(), Vp, tiled, f_tiled.data(),
                          K > 0 ? &JV_tiled : nullptr);
  }
  CHECK_FALSE(tiled.net.forward_only);  // the scope restored it
  const std::vector<double> fr(f_rec.begin(), f_rec.end()), ft(f_tiled.begin(), f_tiled.end());
  INFO("f differs by " << max_abs_diff(ft, fr) << " of " << max_abs(fr));
  CHECK(max_abs(fr) > 0);
  CHECK(max_abs_diff(ft, fr) <= tol * std::max(1.0, max_abs(fr)));
  if (K > 0) {
    const Mat<double> jr = JV_rec.template cast<double>(), jt = JV_tiled.template cast<double>();
    INFO("JV differs by " << (jt - jr).cwiseAbs().maxCoeff() << " of " << jr.cwiseAbs().maxCoeff());
    CHECK(jr.cwiseAbs().maxCoeff() > 0);
    CHECK((jt - jr).cwiseAbs().maxCoeff() <= tol * std::max(1.0, jr.cwiseAbs().maxCoeff()));
  }
}

}  // namespace

TEST_CASE("forward-only tiles: the recording forward's velocity and tangents", "[egnn][tiled]") {
  const std::pair<const char*, FieldConfig> cases[] = {
      {"particles", particle_field(3)},
      {"particles 2-D", particle_field(2)},
      {"molecules", small_molecule_field()},
      {"mean aggregation", with(small_molecule_field(), [](FieldConfig& c) { c.aggregation = Aggregation::Mean; })},
      {"one layer", with(small_molecule_field(), [](FieldConfig& c) { c.layers = 1; })},
      {"no attention, no tanh", with(particle_field(3), [](FieldConfig& c) { c.attention = c.tanh = false; })},
      {"conditional", with(small_molecule_field(), [](FieldConfig& c) { c.node_condition = 2; c.edge_condition = 3; })},
  };
  for (const auto& [name, cfg] : cases)
    SECTION(name) {
      // Small graphs (one tile) and 40 nodes with 3 tangents (1560 edges × 4
      // blocks: a receiver or four per tile, many tiles).
      for (const int K : {0, 1, 3}) {
        check_against_recording<double>(cfg, {6}, K, 1e-12);
        check_against_recording<float>(cfg, {6}, K, 1e-5);
      }
      check_against_recording<double>(cfg, {40}, 3, 1e-12);
      check_against_recording<float>(cfg, {40}, 3, 1e-5);
      if (!cfg.conditional()) {  // conditional fields evaluate one graph per call
        check_against_recording<double>(cfg, {5, 30, 2, 17}, 2, 1e-12);
        check_against_recording<double>(cfg, {4, 4, 4}, 0, 1e-12);
      }
    }
}

TEST_CASE("forward-only tiles: the exact trace with node-local tangents, and refused reverse passes", "[egnn][tiled]") {
  const FieldConfig cfg = small_molecule_field();
  const auto p = random_params(cfg, 73);
  VectorField<double> field(cfg, p.layout);
  Rng rng(74);
  const int n = 24;
  const auto z = random_state(cfg, n, rng);
  // The exact trace in forward-only mode (its later layers tiled) against the recording one.
  FieldWorkspace<double> recording, tiled;
  TraceScratch<double> s1, s2;
  std::vector<double> f1(z.size()), f2(z.size());
  const double tr = exact_trace(field, p.values.data(), z.data(), n, 0.4, recording, s1, f1.data());
  double tr_tiled;
  {
    const ForwardOnlyScope scope(tiled);
    tr_tiled = exact_trace(field, p.values.data(), z.data(), n, 0.4, tiled, s2, f2.data());
  }
  INFO("trace " << tr << " tiled " << tr_tiled);
  CHECK(std::abs(tr_tiled - tr) <= 1e-12 * std::max(1.0, std::abs(tr)));
  CHECK(max_abs_diff(f2, f1) <= 1e-12 * std::max(1.0, max_abs(f1)));

  // No reverse pass after a forward-only forward; a recording one on the same workspace may be.
  std::vector<double> f(z.size()), zbar(z.size()), grad(p.values.size(), 0.0);
  Mat<double> V = Mat<double>::Random(2, z.size()), JV;
  {
    const ForwardOnlyScope scope(tiled);
    field.forward(p.values.data(), z.data(), n, 0.5, &V, tiled, f.data(), &JV);
  }
  CHECK_THROWS_WITH(field.reverse(p.values.data(), tiled, f.data(), &JV, zbar.data(), grad.data()),
                    Catch::Matchers::Contains("forward-only"));
  field.forward(p.values.data(), z.data(), n, 0.5, &V, tiled, f.data(), &JV);
  CHECK_NOTHROW(field.reverse(p.values.data(), tiled, f.data(), &JV, zbar.data(), grad.data()));
  // Scopes nest: the inner one's end leaves the outer one's setting.
  {
    const ForwardOnlyScope outer(tiled);
    { const ForwardOnlyScope inner(tiled); }
    CHECK(tiled.net.forward_only);
  }
  CHECK_FALSE(tiled.net.forward_only);
}
