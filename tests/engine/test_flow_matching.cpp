// Flow matching (engine/flow_matching.hpp) and the structure matching it
// couples with (engine/alignment.hpp): the assignment against brute force,
// the alignment's invariances, the coupling's optimality over the batch, and
// the loss gradient against central finite differences.
#include <catch2/catch.hpp>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "engine/alignment.hpp"
#include "engine/flow.hpp"
#include "engine/flow_matching.hpp"
#include "support/finite_difference.hpp"
#include "support/fixtures.hpp"
#include "support/orthogonal.hpp"
#include "support/random_model.hpp"

using namespace enf;
using namespace enf::test;

namespace {

// n points in D dimensions, N(0, scale²), centred; anisotropic so the
// principal axes are well separated (ties would make "the" optimum ambiguous).
std::vector<double> random_structure(int n, int D, Rng& rng) {
  std::vector<double> x(std::size_t(n) * D);
  for (int i = 0; i < n; ++i)
    for (int d = 0; d < D; ++d) x[i * D + d] = rng.normal() * (1.0 + 0.7 * d);
  for (int d = 0; d < D; ++d) {
    double m = 0;
    for (int i = 0; i < n; ++i) m += x[i * D + d] / n;
    for (int i = 0; i < n; ++i) x[i * D + d] -= m;
  }
  return x;
}

// y' = Q·y with the points permuted: y'_i = Q·y_{perm[i]}.
std::vector<double> transform(const std::vector<double>& y, int n, int D, const Eigen::MatrixXd& Q,
                              const std::vector<int>& perm) {
  std::vector<double> out(y.size());
  for (int i = 0; i < n; ++i)
    for (int r = 0; r < D; ++r) {
      double s = 0;
      for (int c = 0; c < D; ++c) s += Q(r, c) * y[perm[i] * D + c];
      out[i * D + r] = s;
    }
  return out;
}

// B states drawn one after another, concatenated [B, n·C].
template <class Draw>
std::vector<double> batch_of(int B, Draw draw) {
  std::vector<double> x;
  for (int b = 0; b < B; ++b) {
    const std::vector<double> s = draw();
    x.insert(x.end(), s.begin(), s.end());
  }
  return x;
}

}  // namespace

TEST_CASE("Hungarian assignment is the brute-force optimum", "[flow_matching]") {
  Rng rng(1);
  for (int n = 1; n <= 7; ++n)
    for (int trial = 0; trial < 20; ++trial) {
      Eigen::MatrixXd cost(n, n);
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) cost(i, j) = trial % 3 == 0 ? double(int(rng.uniform() * 4)) : rng.normal();
      const std::vector<int> col = min_cost_assignment(cost);
      std::vector<int> seen = col;
      std::sort(seen.begin(), seen.end());
      std::vector<int> identity(n);
      std::iota(identity.begin(), identity.end(), 0);
      REQUIRE(seen == identity);  // a permutation
      double got = 0;
      for (int i = 0; i < n; ++i) got += cost(i, col[i]);
      double best = std::numeric_limits<double>::infinity();
      std::vector<int> p = identity;
      do {
        double c = 0;
        for (int i = 0; i < n; ++i) c += cost(i, p[i]);
        best = std::min(best, c);
      } while (std::next_permutation(p.begin(), p.end()));
      CHECK(got == Approx(best).margin(1e-12));
    }
  CHECK_THROWS_AS(min_cost_assignment(Eigen::MatrixXd(2, 3)), std::invalid_argument);
}

TEST_CASE("Orthogonal Procrustes recovers a known rotation or reflection", "[flow_matching]") {
  Rng rng(2);
  for (int D : {2, 3})
    for (bool reflect : {false, true}) {
      const int n = 9;
      const std::vector<double> y = random_structure(n, D, rng);
      const Eigen::MatrixXd Q = random_orthogonal(D, rng, reflect);
      std::vector<int> id(n);
      std::iota(id.begin(), id.end(), 0);
      const std::vector<double> x = transform(y, n, D, Q, id);
      using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
      const Eigen::MatrixXd got =
          orthogonal_procrustes(Eigen::Map<const RowMat>(x.data(), n, D), Eigen::Map<const RowMat>(y.data(), n, D));
      CHECK((got - Q).norm() < 1e-10);
    }
}

TEST_CASE("Alignment finds a hidden rotation, reflection and permutation exactly", "[flow_matching]") {
  Rng rng(3);
  for (int D : {2, 3})
    for (int trial = 0; trial < 10; ++trial) {
      const int n = 4 + trial;
      const std::vector<double> y = random_structure(n, D, rng);
      const std::vector<int> perm = random_permutation(n, rng);
      const std::vector<double> x = transform(y, n, D, random_orthogonal(D, rng, trial % 2 == 1), perm);
      const Alignment a = align_structures(x.data(), y.data(), n, D);
      CHECK(a.cost < 1e-18 * n + 1e-20);
      CHECK(a.perm == perm);
      const std::vector<double> y2 = apply_alignment(a, y.data(), n, D);
      double d = 0;
      for (std::size_t k = 0; k < x.size(); ++k) d = std::max(d, std::abs(y2[k] - x[k]));
      CHECK(d < 1e-10);
    }
}

TEST_CASE("Alignment cost is invariant under rotations, reflections and permutations of either structure",
          "[flow_matching]") {
  Rng rng(4);
  for (int D : {2, 3})
    for (int trial = 0; trial < 8; ++trial) {
      const int n = 5 + trial;
      const std::vector<double> x = random_structure(n, D, rng), y = random_structure(n, D, rng);
      const Alignment a = align_structures(x.data(), y.data(), n, D);
      // The aligned cost cannot exceed the identity pairing's, nor the best over a few fixed maps.
      double plain = 0;
      for (std::size_t k = 0; k < x.size(); ++k) plain += (x[k] - y[k]) * (x[k] - y[k]);
      CHECK(a.cost <= plain + 1e-12);
      const std::vector<double> x2 = transform(x, n, D, random_orthogonal(D, rng, trial % 2 == 0),
                                               random_permutation(n, rng));
      const std::vector<double> y2 = transform(y, n, D, random_orthogonal(D, rng, trial % 3 == 0),
                                               random_permutation(n, rng));
      CHECK(align_structures(x2.data(), y.data(), n, D).cost == Approx(a.cost).epsilon(1e-9));
      CHECK(align_structures(x.data(), y2.data(), n, D).cost == Approx(a.cost).epsilon(1e-9));
      CHECK(align_structures(x2.data(), y2.data(), n, D).cost == Approx(a.cost).epsilon(1e-9));
    }
}

TEST_CASE("Typed alignment permutes only within atom types", "[flow_matching]") {
  Rng rng(5);
  const int n = 8, D = 3;
  const std::vector<int> types{0, 1, 1, 0, 2, 0, 1, 2};
  const std::vector<double> x = random_structure(n, D, rng), y = random_structure(n, D, rng);
  const Alignment a = align_structures(x.data(), y.data(), n, D, types, types);
  for (int i = 0; i < n; ++i) CHECK(types[a.perm[i]] == types[i]);
  CHECK(a.cost >= align_structures(x.data(), y.data(), n, D).cost - 1e-12);  // a constraint cannot help
  CHECK_THROWS_AS(align_structures(x.data(), y.data(), n, D, types, {0, 0, 0, 0, 1, 1, 1, 2}), std::invalid_argument);
}

TEST_CASE("Couplings pair the batch at no more than the independent cost", "[flow_matching]") {
  Rng rng(6);
  const int B = 6, n = 4, D = 2, C = 2;
  std::vector<double> x0, x1;
  for (int b = 0; b < B; ++b) {
    const auto s = random_structure(n, D, rng), t = random_structure(n, D, rng);
    x0.insert(x0.end(), s.begin(), s.end());
    x1.insert(x1.end(), t.begin(), t.end());
  }
  auto total = [&](const std::vector<double>& y) {
    double c = 0;
    for (std::size_t k = 0; k < y.size(); ++k) c += (x0[k] - y[k]) * (x0[k] - y[k]);
    return c;
  };
  const double independent = total(couple(Coupling::Independent, x0, x1, B, n, D, C));
  const double ot = total(couple(Coupling::MinibatchOT, x0, x1, B, n, D, C));
  const double eot = total(couple(Coupling::EquivariantOT, x0, x1, B, n, D, C));
  CHECK(independent == Approx(total(x1)).epsilon(1e-15));
  CHECK(ot <= independent + 1e-12);
  CHECK(eot <= ot + 1e-12);
  // The pairwise alignments in parallel give the same pairing, bit for bit.
  CHECK(couple(Coupling::EquivariantOT, x0, x1, B, n, D, C, 2) == couple(Coupling::EquivariantOT, x0, x1, B, n, D, C));
  // Minibatch OT is the best of all B! pairings of whole structures.
  std::vector<int> p(B);
  std::iota(p.begin(), p.end(), 0);
  double best = std::numeric_limits<double>::infinity();
  const std::size_t S = std::size_t(n) * C;
  do {
    double c = 0;
    for (int a = 0; a < B; ++a)
      for (std::size_t k = 0; k < S; ++k) c += std::pow(x0[a * S + k] - x1[p[a] * S + k], 2);
    best = std::min(best, c);
  } while (std::next_permutation(p.begin(), p.end()));
  CHECK(ot == Approx(best).epsilon(1e-12));
}

TEST_CASE("Flow-matching loss gradient matches central finite differences", "[flow_matching]") {
  for (const FieldConfig cfg : {particle_field(2), small_molecule_field()}) {
    FieldConfig c = cfg;
    c.hidden = 6;
    c.layers = 2;
    const Parameters<double> p = random_params(c, 7, 0.2);
    VectorField<double> field(c, p.layout);
    FlowMatchingObjective<double> objective(field, 2);
    Rng rng(8);
    const int B = 3, n = 5, D = c.dim, C = c.channels();
    const std::vector<double> x0 = batch_of(B, [&] { return random_state(c, n, rng, 1.2); });
    FlowMatchingOptions o;
    o.time = TimeSampling::LogitNormal;
    const FlowMatchingBatch batch = make_flow_matching_batch(o, x0, B, n, D, C, rng);
    std::vector<double> grad(p.values.size(), 0.0);
    const FlowMatchingLoss L = objective.loss_and_gradient(p.values.data(), batch, grad.data());
    CHECK(L.loss == Approx(objective.loss(p.values.data(), batch)).epsilon(1e-14));
    for (int dir = 0; dir < 3; ++dir) {
      const auto [predicted, fd] = along_random_direction(
          p, grad, rng, [&](const Parameters<double>& q) { return objective.loss(q.values.data(), batch); });
      CHECK(predicted == Approx(fd).epsilon(1e-7).margin(1e-10));
    }
  }
}

TEST_CASE("Flow-matching loss is invariant under rotations, reflections and permutations of the data",
          "[flow_matching]") {
  // With the field E(n)-equivariant, rotating x0 and x1 together rotates x_t,
  // f(x_t) and the target: |f − u|² does not change; permuting the nodes of
  // both permutes every term.
  FieldConfig c = particle_field(3);
  c.hidden = 8;
  c.layers = 2;
  const Parameters<double> p = random_params(c, 9, 0.2);
  VectorField<double> field(c, p.layout);
  FlowMatchingObjective<double> objective(field, 1);
  Rng rng(10);
  const int B = 2, n = 6, D = 3;
  const std::vector<double> x0 = batch_of(B, [&] { return random_structure(n, D, rng); });
  FlowMatchingOptions o;
  o.coupling = Coupling::Independent;
  Rng draw(11);
  const FlowMatchingBatch batch = make_flow_matching_batch(o, x0, B, n, D, D, draw);
  const Eigen::MatrixXd Q = random_orthogonal(D, rng, true);
  const std::vector<int> perm = random_permutation(n, rng);
  FlowMatchingBatch moved = batch;
  for (int b = 0; b < B; ++b) {
    const std::size_t at = std::size_t(b) * n * D;
    const std::vector<double> xt(batch.xt.begin() + at, batch.xt.begin() + at + n * D);
    const std::vector<double> u(batch.target.begin() + at, batch.target.begin() + at + n * D);
    const auto xt2 = transform(xt, n, D, Q, perm), u2 = transform(u, n, D, Q, perm);
    std::copy(xt2.begin(), xt2.end(), moved.xt.begin() + at);
    std::copy(u2.begin(), u2.end(), moved.target.begin() + at);
  }
  CHECK(objective.loss(p.values.data(), moved) == Approx(objective.loss(p.values.data(), batch)).epsilon(1e-12));
}

// Small states are evaluated in stacks (lockstep_group: DW4-sized states 32
// to an evaluation): the loss and gradient are the per-state sums of a plain
// forward and reverse pass on each state alone.
TEST_CASE("Flow-matching stacks: the loss and gradient of the states one by one, any thread count",
          "[flow_matching][lockstep]") {
  for (const bool mixed : {false, true}) {
    const FieldConfig c = mixed ? small_molecule_field() : particle_field(2);
    const Parameters<double> p = random_params(c, 9, 0.2);
    VectorField<double> field(c, p.layout);
    Rng rng(10);
    const int B = 70, D = c.dim, C = c.channels();
    std::vector<std::vector<double>> x0;
    for (int b = 0; b < B; ++b) x0.push_back(random_state(c, mixed ? 2 + b % 5 : 4, rng, 1.2));
    FlowMatchingOptions o;
    o.coupling = Coupling::Independent;  // states of mixed sizes
    const FlowMatchingBatch batch = make_flow_matching_batch(o, x0, D, C, rng);
    REQUIRE(lockstep_group(mixed ? 6 : 4) > 1);

    // The slow, obvious reference: each state alone.
    double loss = 0;
    std::vector<double> want(p.values.size(), 0.0);
    FieldWorkspace<double> ws;
    for (int b = 0; b < B; ++b) {
      const std::size_t at = batch.offset[b], S = batch.offset[b + 1] - at;
      std::vector<double> z(batch.xt.begin() + at, batch.xt.begin() + at + S), f(S), fbar(S), zbar(S);
      field.forward(p.values.data(), z.data(), batch.atoms[b], batch.t[b], nullptr, ws, f.data(), nullptr);
      double e = 0;
      for (std::size_t k = 0; k < S; ++k) {
        const double d = f[k] - batch.target[at + k];
        e += d * d;
        fbar[k] = 2 * d / (double(S) * B);
      }
      loss += e / double(S) / B;
      field.reverse(p.values.data(), ws, fbar.data(), nullptr, zbar.data(), want.data());
    }
    FlowMatchingObjective<double> one(field, 1), two(field, 2);
    std::vector<double> g1(p.values.size(), 0.0), g2(p.values.size(), 0.0);
    const FlowMatchingLoss L1 = one.loss_and_gradient(p.values.data(), batch, g1.data());
    const FlowMatchingLoss L2 = two.loss_and_gradient(p.values.data(), batch, g2.data());
    INFO((mixed ? "molecules of 2 to 6 atoms" : "DW4-sized particles") << ": loss " << L1.loss << " vs " << loss
                                                                       << ", gradient " << max_abs_diff(g1, want));
    CHECK(L1.loss == Approx(loss).epsilon(1e-13));
    CHECK(max_abs_diff(g1, want) <= 1e-12 * std::max(1.0, max_abs(want)));
    CHECK(L1.loss == L2.loss);  // bit for bit
    CHECK(g1 == g2);
    CHECK(one.loss(p.values.data(), batch) == Approx(loss).epsilon(1e-13));
  }
}
