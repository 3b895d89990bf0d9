// Flow matching for the QM9 flow (engine/molecule_flow_matching.hpp,
// MoleculeTrainer::step_flow_matching) on real molecules of the shipped test
// split, with a tiny field: the loss gradient against central finite
// differences, the loss's invariances, thread-count independence, ActNorm
// held fixed, the refusal of a variational dequantizer, and the held-out split.
#include <catch2/catch.hpp>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <set>

#include "datasets/molecule_io.hpp"
#include "support/tiny_qm9.hpp"
#include "engine/data_split.hpp"
#include "engine/molecule_flow_matching.hpp"
#include "engine/molecule_trainer.hpp"
#include "support/orthogonal.hpp"
#include "support/random_model.hpp"

using namespace enf;
using namespace enf::test;

namespace {


// The brief's small field (H = 8, one layer) with uniform dequantization;
// `count` molecules of the test split.
struct SmallQm9 {
  FieldConfig field = qm9_field_config(8, 1);
  MoleculeModelConfig mol;
  CnfOptions cnf;
  AdamWOptions adam;
  std::vector<MoleculeInput> mols;

  explicit SmallQm9(int count) {
    mols = test::test_split_molecules(count, mol);
    mol.dequantization = Dequantization::Uniform;
    adam.lr = 5e-3;
  }
  // The reference initialisation perturbed (no layer near the identity),
  // ActNorm standardising `mols` with the noise of seed 0.
  Parameters<double> params(std::uint64_t seed) const {
    Parameters<double> p = initial_molecule_parameters(field, mol, seed);
    Rng rng(seed + 100);
    for (double& v : p.values) v += 0.2 * rng.normal();
    MoleculeFlow<double> flow(field, mol, cnf);
    MoleculeModelConfig identity = mol;
    identity.actnorm = false;
    MoleculeFlow<double> raw(field, identity, cnf);
    actnorm_initialize(molecule_data_states(raw, p.values.data(), mols, 0)).write(p.values.data() + flow.actnorm_offset());
    return p;
  }
  template <class T>
  std::unique_ptr<MoleculeTrainer<T>> trainer(std::uint64_t seed, int threads, const MoleculeModelConfig* m = nullptr) const {
    const MoleculeModelConfig& c = m ? *m : mol;
    return std::make_unique<MoleculeTrainer<T>>(field, c, cnf, adam, initial_molecule_parameters(field, c, seed), false,
                                                threads, true);
  }
};

// Molecules of the first `scan` with distinct atom counts, the `count` smallest.
std::vector<MoleculeInput> distinct_sizes(const std::vector<MoleculeInput>& all, int count) {
  std::map<int, MoleculeInput> by_size;
  for (const auto& m : all) by_size.emplace(m.atoms(), m);
  std::vector<MoleculeInput> out;
  for (const auto& [n, m] : by_size)
    if (int(out.size()) < count) out.push_back(m);
  return out;
}

// A 9-channel state with its positions mapped by Q and nodes permuted (node i ← perm[i]).
std::vector<double> moved_state(const double* s, int n, const Eigen::MatrixXd& Q, const std::vector<int>& perm) {
  const int C = kMoleculeChannels;
  std::vector<double> out(std::size_t(n) * C);
  for (int i = 0; i < n; ++i) {
    const double* src = s + std::size_t(perm[i]) * C;
    for (int r = 0; r < 3; ++r) out[i * C + r] = Q(r, 0) * src[0] + Q(r, 1) * src[1] + Q(r, 2) * src[2];
    for (int c = 3; c < C; ++c) out[i * C + c] = src[c];
  }
  return out;
}

}  // namespace

TEST_CASE("molecule flow-matching gradient matches central finite differences", "[molecule][flow_matching]") {
  const SmallQm9 P(60);
  SmallQm9 Q = P;
  Q.mols = distinct_sizes(P.mols, 3);
  REQUIRE(Q.mols.size() == 3);
  const Parameters<double> p = Q.params(1);
  MoleculeFlow<double> flow(Q.field, Q.mol, Q.cnf);
  FlowMatchingObjective<double> objective(flow.cnf().field(), 2);
  FlowMatchingOptions o;
  o.time = TimeSampling::LogitNormal;
  const FlowMatchingBatch batch = molecule_flow_matching_batch(o, flow, p.values.data(), Q.mols, 7);
  REQUIRE(batch.n == 0);  // sizes differ
  std::vector<double> grad(p.values.size(), 0.0);
  const FlowMatchingLoss L = objective.loss_and_gradient(p.values.data(), batch, grad.data());
  CHECK(L.evaluations == 3);
  CHECK(L.loss == Approx(objective.loss(p.values.data(), batch)).epsilon(1e-14));
  // The loss is the mean over molecules of |f − u|² / (9 n): recomputed here one molecule at a time.
  double direct = 0;
  FieldWorkspace<double> ws;
  for (int b = 0; b < 3; ++b) {
    const int n = Q.mols[b].atoms(), S = n * kMoleculeChannels;
    REQUIRE(batch.atoms[b] == n);
    std::vector<double> f(S);
    flow.cnf().field().forward(p.values.data(), &batch.xt[batch.offset[b]], n, batch.t[b], nullptr, ws, f.data(),
                               nullptr);
    double e = 0;
    for (int k = 0; k < S; ++k) e += std::pow(f[k] - batch.target[batch.offset[b] + k], 2);
    direct += e / S / 3;
  }
  CHECK(L.loss == Approx(direct).epsilon(1e-13));
  // Nothing but the field's parameters has a gradient.
  for (std::size_t k = flow.actnorm_offset(); k < grad.size(); ++k) REQUIRE(grad[k] == 0.0);
  Rng rng(8);
  for (int dir = 0; dir < 3; ++dir) {
    const auto [predicted, fd] = along_random_direction(
        p, grad, rng, [&](const Parameters<double>& q) { return objective.loss(q.values.data(), batch); });
    CHECK(predicted == Approx(fd).epsilon(1e-7).margin(1e-10));
  }
}

TEST_CASE("molecule flow-matching loss is invariant under rotations, reflections and permutations of the atoms",
          "[molecule][flow_matching]") {
  const SmallQm9 P(12);
  const Parameters<double> p = P.params(2);
  MoleculeFlow<double> flow(P.field, P.mol, P.cnf);
  FlowMatchingObjective<double> objective(flow.cnf().field(), 1);
  FlowMatchingOptions o;
  o.coupling = Coupling::Independent;
  const FlowMatchingBatch batch = molecule_flow_matching_batch(o, flow, p.values.data(), P.mols, 3);
  const double L0 = objective.loss(p.values.data(), batch);
  // x_t and the target moved together (positions by an orthogonal map with
  // a reflection, nodes and their features permuted): f moves with them.
  Rng rng(4);
  FlowMatchingBatch moved = batch;
  for (int b = 0; b < batch.B; ++b) {
    const int n = batch.atoms[b];
    const Eigen::MatrixXd Q = random_orthogonal(3, rng, true);
    const std::vector<int> perm = random_permutation(n, rng);
    const auto xt = moved_state(&batch.xt[batch.offset[b]], n, Q, perm);
    const auto u = moved_state(&batch.target[batch.offset[b]], n, Q, perm);
    std::copy(xt.begin(), xt.end(), moved.xt.begin() + batch.offset[b]);
    std::copy(u.begin(), u.end(), moved.target.begin() + batch.offset[b]);
  }
  CHECK(objective.loss(p.values.data(), moved) == Approx(L0).epsilon(1e-12));
  // Through the coupling: equivariant OT (σ_min = 0) pairs each molecule with
  // a prior draw aligned to it, so rotating or reflecting the molecules'
  // positions rotates the whole path and leaves the loss as it is.
  o.coupling = Coupling::EquivariantOT;
  o.sigma_min = 0;
  std::vector<MoleculeInput> rotated = P.mols;
  std::map<int, int> sizes;
  for (auto& m : rotated) {
    ++sizes[m.atoms()];
    const Eigen::MatrixXd Q = random_orthogonal(3, rng, true);
    for (int i = 0; i < m.atoms(); ++i) {
      const Eigen::Vector3d x(m.x[i * 3], m.x[i * 3 + 1], m.x[i * 3 + 2]);
      const Eigen::Vector3d y = Q * x;  // Q: 3 × 3
      for (int d = 0; d < 3; ++d) m.x[i * 3 + d] = y(d);
    }
  }
  REQUIRE(std::any_of(sizes.begin(), sizes.end(), [](const auto& s) { return s.second > 1; }));  // a real assignment
  const FlowMatchingBatch a = molecule_flow_matching_batch(o, flow, p.values.data(), P.mols, 5);
  const FlowMatchingBatch r = molecule_flow_matching_batch(o, flow, p.values.data(), rotated, 5);
  CHECK(r.transport_cost == Approx(a.transport_cost).epsilon(1e-9));
  CHECK(objective.loss(p.values.data(), r) == Approx(objective.loss(p.values.data(), a)).epsilon(1e-9));
}

TEST_CASE("molecule couplings pair only molecules of equal size, at no more than the independent cost",
          "[molecule][flow_matching]") {
  const SmallQm9 P(24);
  const Parameters<double> p = P.params(3);
  MoleculeFlow<double> flow(P.field, P.mol, P.cnf);
  double cost[3];
  int k = 0;
  for (Coupling c : {Coupling::Independent, Coupling::MinibatchOT, Coupling::EquivariantOT}) {
    FlowMatchingOptions o;
    o.coupling = c;
    const FlowMatchingBatch b = molecule_flow_matching_batch(o, flow, p.values.data(), P.mols, 9, 2);
    for (int m = 0; m < b.B; ++m) {
      REQUIRE(b.atoms[m] == P.mols[m].atoms());
      // u = x1 − x0 has no centre of mass: neither the (coupled) prior draw nor the data state has one.
      double com[3] = {0, 0, 0};
      for (int i = 0; i < b.atoms[m]; ++i)
        for (int d = 0; d < 3; ++d) com[d] += b.target[b.offset[m] + i * kMoleculeChannels + d];
      for (double v : com) CHECK(std::abs(v) < 1e-10);
    }
    cost[k++] = b.transport_cost;
  }
  CHECK(cost[1] <= cost[0] + 1e-12);
  CHECK(cost[2] <= cost[1] + 1e-12);
  CHECK(cost[2] < cost[0]);
}

TEST_CASE("molecule flow-matching steps do not depend on the thread count", "[molecule][flow_matching]") {
  const SmallQm9 P(16);
  auto one = P.trainer<double>(5, 1), two = P.trainer<double>(5, 2);
  FlowMatchingOptions o;  // equivariant OT: parallel alignments too
  for (int k = 0; k < 2; ++k) {
    const MoleculeStepReport a = one->step_flow_matching(o, P.mols, 20 + k);
    const MoleculeStepReport b = two->step_flow_matching(o, P.mols, 20 + k);
    CHECK(a.loss == b.loss);
    CHECK(a.nfe_forward == long(P.mols.size()));
    CHECK(a.nfe_backward == long(P.mols.size()));
  }
  CHECK(one->params().values == two->params().values);
  // The objective alone, on one batch: the same gradient bits from 1 and 2 threads.
  const MoleculeFlow<double>& flow = one->flow();
  const FlowMatchingBatch batch = molecule_flow_matching_batch(o, flow, one->params().values.data(), P.mols, 40);
  std::vector<std::vector<double>> grads;
  for (int threads : {1, 2, 1}) {
    FlowMatchingObjective<double> objective(flow.cnf().field(), threads);
    grads.emplace_back(one->params().values.size(), 0.0);
    objective.loss_and_gradient(one->params().values.data(), batch, grads.back().data());
  }
  CHECK(grads[0] == grads[1]);
  CHECK(grads[0] == grads[2]);
}

TEST_CASE("flow-matching steps hold ActNorm fixed after its first-batch initialisation", "[molecule][flow_matching]") {
  const SmallQm9 P(16);
  FlowMatchingOptions o;
  o.coupling = Coupling::Independent;
  auto lazy = P.trainer<float>(6, 1), eager = P.trainer<float>(6, 1);
  const std::size_t at = lazy->flow().actnorm_offset();
  eager->initialize_actnorm(P.mols, 30);
  lazy->step_flow_matching(o, P.mols, 30);  // initialises ActNorm from this batch and its noise
  const std::vector<double> actnorm(lazy->params().values.begin() + at, lazy->params().values.end());
  CHECK(actnorm == std::vector<double>(eager->params().values.begin() + at, eager->params().values.end()));
  // A maximum-likelihood step moves ActNorm and leaves AdamW moments for it;
  // flow-matching steps after it must still not move it.
  lazy->step(P.mols, 31);
  const std::vector<double> after_ml(lazy->params().values.begin() + at, lazy->params().values.end());
  CHECK(after_ml != actnorm);
  const std::vector<double> field_before(lazy->params().values.begin(), lazy->params().values.begin() + at);
  for (int k = 0; k < 3; ++k) lazy->step_flow_matching(o, P.mols, 32 + k);
  CHECK(std::vector<double>(lazy->params().values.begin() + at, lazy->params().values.end()) == after_ml);
  CHECK(std::vector<double>(lazy->params().values.begin(), lazy->params().values.begin() + at) != field_before);
}

TEST_CASE("flow matching refuses a variational dequantizer", "[molecule][flow_matching]") {
  const SmallQm9 P(8);
  for (Dequantization d : {Dequantization::Variational, Dequantization::ArgmaxVariational}) {
    MoleculeModelConfig m = P.mol;
    m.dequantization = d;
    m.dequantizer_hidden = 8;
    m.dequantizer_layers = 1;
    CHECK_FALSE(molecule_flow_matching_unsupported(m).empty());
    auto t = P.trainer<float>(7, 1, &m);
    const auto before = t->params().values;
    CHECK_THROWS_AS(t->step_flow_matching(FlowMatchingOptions{}, P.mols, 1), std::invalid_argument);
    CHECK(t->params().values == before);
  }
  CHECK(molecule_flow_matching_unsupported(P.mol).empty());
}

TEST_CASE("flow-matching steps lower the regression loss on a fixed batch", "[molecule][flow_matching]") {
  const SmallQm9 P(16);
  auto t = P.trainer<double>(8, 0);
  FlowMatchingOptions o;
  o.coupling = Coupling::Independent;
  t->initialize_actnorm(P.mols, 0);
  FlowMatchingObjective<double> objective(t->flow().cnf().field(), 0);
  auto fixed_loss = [&] {
    const FlowMatchingBatch b = molecule_flow_matching_batch(o, t->flow(), t->params().values.data(), P.mols, 999);
    return objective.loss(t->params().values.data(), b);
  };
  const double before = fixed_loss();
  for (int k = 0; k < 40; ++k) t->step_flow_matching(o, P.mols, 100 + k);
  const double after = fixed_loss();
  INFO("fixed-batch FM loss " << before << " -> " << after);
  CHECK(after < 0.9 * before);
}

TEST_CASE("the held-out tenth is every position divisible by 10", "[molecule][split]") {
  for (int count : {0, 1, 9, 10, 11, 25, 13083}) {
    const HeldOutSplit s = every_kth_held_out(count, 10);
    INFO("count " << count);
    CHECK(int(s.train.size() + s.held_out.size()) == count);
    for (int i : s.held_out) CHECK(i % 10 == 0);
    for (int i : s.train) CHECK(i % 10 != 0);
    std::set<int> all(s.train.begin(), s.train.end());
    all.insert(s.held_out.begin(), s.held_out.end());
    CHECK(int(all.size()) == count);
    CHECK(std::is_sorted(s.train.begin(), s.train.end()));
    CHECK(std::is_sorted(s.held_out.begin(), s.held_out.end()));
  }
  CHECK(every_kth_held_out(13083, 10).held_out.size() == 1309);
  CHECK(every_kth_held_out(25, 10).held_out == std::vector<int>{0, 10, 20});
  CHECK_THROWS_AS(every_kth_held_out(10, 1), std::invalid_argument);
}
