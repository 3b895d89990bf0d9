// The conformer model (engine/conformer_flow.hpp): log p(x | graph) is
// invariant under rotations, reflections and translations of x and under a
// relabelling of the atoms (conditioning permuted with them), depends on the
// graph, and sampling inverts scoring; the flow-matching loss with each
// molecule's conditioning has the gradient of its finite differences.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "datasets/molecular_graph.hpp"
#include "engine/conformer_flow.hpp"
#include "engine/flow.hpp"
#include "support/finite_difference.hpp"
#include "support/orthogonal.hpp"
#include "support/random_model.hpp"

using namespace enf;

namespace {

// Ethanol, C C O and six H, with plausible coordinates (Å).
MolecularGraph ethanol_graph(const std::vector<int>& order = {}) {
  std::vector<int> Z = {6, 6, 8, 1, 1, 1, 1, 1, 1};
  std::vector<GraphBond> bonds = {{0, 1, 1}, {1, 2, 1}, {0, 3, 1}, {0, 4, 1}, {0, 5, 1}, {1, 6, 1}, {1, 7, 1}, {2, 8, 1}};
  if (!order.empty()) {  // atom k of the new graph is atom order[k] of the old
    std::vector<int> inverse(order.size()), Z2(order.size());
    for (std::size_t k = 0; k < order.size(); ++k) inverse[order[k]] = int(k), Z2[k] = Z[order[k]];
    for (GraphBond& b : bonds) b = {inverse[b.i], inverse[b.j], b.order};
    Z = Z2;
  }
  return MolecularGraph("ethanol", Z, {}, bonds);
}

const std::vector<double> kEthanol = {-1.17, 0.25, 0.00, 0.19, -0.43, 0.00,  1.19, 0.57,  0.00,
                                      -1.27, 0.88, 0.89, -1.27, 0.88, -0.89, -1.98, -0.48, 0.00,
                                      0.29,  -1.07, 0.89, 0.29, -1.07, -0.89, 2.03,  0.10,  0.00};

CnfOptions exact(double tol) {
  CnfOptions o;
  o.trace = TraceEstimator::Exact;
  o.solver.rtol = o.solver.atol = tol;
  return o;
}

double log_p(ConformerFlow<double>& flow, const Parameters<double>& p, const ConformerCondition& c,
             const std::vector<double>& x) {
  double out = NAN;
  flow.log_likelihood_each(
      p.values.data(), {&c}, {x}, 0, [] { return false; }, [&](int, ForwardResult&& r) { out = r.log_px; });
  return out;
}

}  // namespace

TEST_CASE("conformer flow: log p(x | graph) is E(3)-invariant and atom-order invariant, and sees the graph",
          "[conformer]") {
  const FieldConfig cfg = conformer_field_config(16, 2);
  const Parameters<double> p = test::random_params(cfg, 3, 0.1);
  VectorField<double> field(cfg, p.layout);
  ConformerFlow<double> flow(field, exact(1e-9), 1);
  const ConformerCondition c = conformer_condition(ethanol_graph());
  const double base = log_p(flow, p, c, kEthanol);
  REQUIRE(std::isfinite(base));

  Rng rng(11);
  for (bool reflect : {false, true}) {
    const Eigen::MatrixXd Q = test::random_orthogonal(3, rng, reflect);
    std::vector<double> y(kEthanol.size());
    for (int i = 0; i < 9; ++i)
      for (int d = 0; d < 3; ++d) {
        double v = 0.7 * (d + 1);  // a translation
        for (int e = 0; e < 3; ++e) v += Q(d, e) * kEthanol[i * 3 + e];
        y[i * 3 + d] = v;
      }
    CHECK(log_p(flow, p, c, y) == Approx(base).epsilon(0).margin(1e-7));
  }

  const std::vector<int> order = test::random_permutation(9, rng);
  std::vector<double> permuted(27);
  for (int k = 0; k < 9; ++k)
    for (int d = 0; d < 3; ++d) permuted[k * 3 + d] = kEthanol[order[k] * 3 + d];
  const ConformerCondition cp = conformer_condition(ethanol_graph(order));
  CHECK(log_p(flow, p, cp, permuted) == Approx(base).epsilon(0).margin(1e-7));

  // The same atoms wired otherwise (methoxymethane's graph: C–O–C) score differently.
  const MolecularGraph ether("ether", {6, 6, 8, 1, 1, 1, 1, 1, 1}, {},
                             {{0, 2, 1}, {1, 2, 1}, {0, 3, 1}, {0, 4, 1}, {0, 5, 1}, {1, 6, 1}, {1, 7, 1}, {1, 8, 1}});
  CHECK(std::abs(log_p(flow, p, conformer_condition(ether), kEthanol) - base) > 1e-3);
}

TEST_CASE("conformer flow: sampling inverts scoring", "[conformer]") {
  const FieldConfig cfg = conformer_field_config(16, 2);
  const Parameters<double> p = test::random_params(cfg, 5, 0.1);
  VectorField<double> field(cfg, p.layout);
  ConformerFlow<double> flow(field, exact(1e-10), 2);
  const ConformerCondition c = conformer_condition(ethanol_graph());
  const auto xs = flow.sample(p.values.data(), c, 3, 7);
  REQUIRE(xs.size() == 3);
  // x = φ⁻¹(z): the forward solve of x returns to the prior draw z.
  for (int k = 0; k < 3; ++k) {
    Rng rng = Rng(7).split(std::uint64_t(k));
    std::vector<double> z(27);
    for (double& v : z) v = rng.normal();
    remove_centre_of_mass(z, 1, 9, 3, 3);
    flow.log_likelihood_each(
        p.values.data(), {&c}, {xs[k]}, 0, [] { return false; },
        [&](int, ForwardResult&& r) {
          for (int j = 0; j < 27; ++j) CHECK(r.z[j] == Approx(z[j]).margin(1e-6));
        });
  }
  // Conformers of one molecule do not depend on the thread count.
  ConformerFlow<double> one(field, exact(1e-10), 1);
  CHECK(one.sample(p.values.data(), c, 3, 7) == xs);
}

TEST_CASE("conformer flow matching: the loss gradient with per-molecule conditioning against finite differences",
          "[conformer]") {
  const FieldConfig cfg = conformer_field_config(8, 2);
  Parameters<double> p = test::random_params(cfg, 9, 0.2);
  VectorField<double> field(cfg, p.layout);
  ConformerFlow<double> flow(field, exact(1e-6), 1);
  const std::vector<int> order = {2, 0, 1, 5, 3, 4, 8, 6, 7};
  const std::vector<ConformerCondition> conds = {conformer_condition(ethanol_graph()),
                                                 conformer_condition(ethanol_graph(order))};
  FlowMatchingOptions o;
  o.coupling = Coupling::Independent;
  Rng rng(4);
  const FlowMatchingBatch batch = conformer_flow_matching_batch(o, {kEthanol, kEthanol}, rng);
  FlowMatchingObjective<double> objective(field, 1);
  objective.set_prepare([&](int b, FieldWorkspace<double>& ws) { flow.condition(conds[b], ws); });
  std::vector<double> grad(p.values.size(), 0.0);
  objective.loss_and_gradient(p.values.data(), batch, grad.data());

  Rng dir(8);
  const auto [analytic, fd] = test::along_random_direction(
      p, grad, dir, [&](const Parameters<double>& q) { return objective.loss(q.values.data(), batch); });
  CHECK(analytic == Approx(fd).epsilon(1e-6));

  // Without the prepare hook the conditional field refuses to run.
  FlowMatchingObjective<double> bare(field, 1);
  CHECK_THROWS(bare.loss(p.values.data(), batch));
  // OT couplings would pair molecules with other molecules' draws: refused.
  o.coupling = Coupling::MinibatchOT;
  CHECK_THROWS_WITH(conformer_flow_matching_batch(o, {kEthanol}, rng), Catch::Contains("independent coupling only"));
}
