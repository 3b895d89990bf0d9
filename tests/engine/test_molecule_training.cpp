// Training the QM9 flow (MoleculeTrainer) on real molecules of the shipped
// test split with a tiny model: ActNorm's first-batch initialisation, the
// loss going down, and an exact resume from a checkpoint.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <memory>

#include "datasets/molecule_io.hpp"
#include "engine/checkpoint.hpp"
#include "engine/molecule_trainer.hpp"
#include "engine/validation.hpp"
#include "support/tiny_qm9.hpp"

using namespace enf;
using enf::test::TinyQm9;

namespace {


// ActNorm standardises with sqrt(var + 1e-5): a unit variance up to that.
constexpr double kUnitVariance = 1e-4;
// A mean of zero up to the rounding of sums over ~150 nodes.
constexpr double kZeroMean = 1e-10;
// What a handful of steps must gain on the fixed-noise NLL of the training
// molecules (nats per molecule; measured: 40 nats in 20 steps, 127 → 88).
constexpr double kMinimumGain = 20.0;

}  // namespace

TEST_CASE("ActNorm initialised from the first batch standardises that batch", "[molecule][training][actnorm]") {
  const TinyQm9 P(8);
  auto t = P.trainer<double>(1);
  const std::uint64_t seed = 77;
  t->initialize_actnorm(P.mols, seed);
  REQUIRE(t->actnorm_initialized());
  // The batch as the first step sees it: molecule b's noise from Rng(seed).split(b).
  const double* p = t->params().values.data();
  const ActNormParams a = ActNormParams::read(p + t->flow().actnorm_offset());
  typename MoleculeFlow<double>::Scratch s;
  std::array<double, kMoleculeFeatures> sum{}, sq{};
  double nodes = 0, sq_x = 0;
  for (std::size_t b = 0; b < P.mols.size(); ++b) {
    Rng rng = Rng(seed).split(b);
    const MoleculeNoise noise = t->flow().draw_noise(P.mols[b].atoms(), rng);
    std::vector<double> y = t->flow().dequantized_state(p, P.mols[b], noise, s);
    const int n = P.mols[b].atoms();
    actnorm_forward(a, y, n);
    for (int i = 0; i < n; ++i) {
      for (int d = 0; d < 3; ++d) sq_x += y[i * kMoleculeChannels + d] * y[i * kMoleculeChannels + d];
      for (int c = 0; c < kMoleculeFeatures; ++c) {
        const double v = y[i * kMoleculeChannels + 3 + c];
        sum[c] += v;
        sq[c] += v * v;
      }
      nodes += 1;
    }
  }
  for (int c = 0; c < kMoleculeFeatures; ++c) {
    INFO("feature channel " << c);
    CHECK(std::abs(sum[c] / nodes) < kZeroMean);
    CHECK(sq[c] / nodes == Approx(1.0).epsilon(kUnitVariance));
  }
  // Positions: the reference scales Σ|x|² per node (all three coordinates) to 1.
  CHECK(sq_x / nodes == Approx(1.0).epsilon(kUnitVariance));
}

TEST_CASE("the first step initialises ActNorm from its own batch and noise", "[molecule][training][actnorm]") {
  const TinyQm9 P(8);
  const auto batch = P.batch(0, 4);
  auto lazy = P.trainer<float>(2), eager = P.trainer<float>(2);
  eager->initialize_actnorm(batch, 5);
  CHECK_FALSE(lazy->actnorm_initialized());
  lazy->step(batch, 5);
  eager->step(batch, 5);
  CHECK(lazy->params().values == eager->params().values);
}

TEST_CASE("a few training steps lower the NLL of real QM9 molecules", "[molecule][training]") {
  const TinyQm9 P(8);
  auto t = P.trainer<float>(3);
  t->initialize_actnorm(P.mols, 0);
  // The NLL with one fixed draw of every molecule's noise, in float64.
  auto nll = [&]() {
    CnfOptions o = P.cnf;
    o.ode_regularization = 0;
    MoleculeFlow<double> f64(P.field, P.mol, o);
    MoleculeBatch<double> b(f64, 0);
    double mean = 0;
    for (const auto& s : b.score(t->params().values.data(), P.mols, 1, 12345, [](int) {})) mean -= s.log_p / 8;
    return mean;
  };
  const double before = nll();
  double first_loss = 0, last_loss = 0;
  const int steps = 20;
  for (int k = 0; k < steps; ++k) {
    const MoleculeStepReport r = t->step(P.batch(4 * k, 4), 1000 + k);
    REQUIRE(std::isfinite(r.loss));
    if (k < 2) first_loss += r.loss / 2;
    if (k >= steps - 2) last_loss += r.loss / 2;
  }
  const double after = nll();
  INFO("fixed-noise NLL " << before << " -> " << after << "; batch loss " << first_loss << " -> " << last_loss);
  CHECK(after < before - kMinimumGain);
  CHECK(last_loss < first_loss);
}

TEST_CASE("resuming from a checkpoint continues bit for bit", "[molecule][training][checkpoint]") {
  // Clipping on, as for QM9: its queue of recent norms is saved with AdamW's
  // moments, as enf train saves them.
  const TinyQm9 P(8);
  auto straight = P.trainer<float>(4), first = P.trainer<float>(4);
  for (int k = 0; k < 2; ++k) {
    straight->step(P.batch(4 * k, 4), 50 + k);
    first->step(P.batch(4 * k, 4), 50 + k);
  }
  Checkpoint c;
  c.system = "qm9";
  c.field = P.field;
  c.molecule = P.mol;
  c.params = first->params();
  c.state = {{"adam.m", first->optimizer().m()},
             {"adam.v", first->optimizer().v()},
             {"adam.v_max", first->optimizer().v_max()},
             {"clipper.history", first->clipper()->history()}};
  const auto dir = std::filesystem::temp_directory_path() / ("enf_molecule_resume_" + std::to_string(::getpid()));
  save_checkpoint(dir.string(), c);
  const Checkpoint r = load_checkpoint(dir.string());
  std::filesystem::remove_all(dir);
  REQUIRE(r.molecule.has_value());
  MoleculeTrainer<float> resumed(r.field, *r.molecule, P.cnf, P.adam, r.params, true, 1, true);
  resumed.optimizer().restore(first->optimizer().steps(), r.state[0].second, r.state[1].second, r.state[2].second);
  resumed.clipper()->restore(r.state[3].second);
  for (int k = 2; k < 4; ++k) {
    straight->step(P.batch(4 * k, 4), 50 + k);
    resumed.step(P.batch(4 * k, 4), 50 + k);
  }
  CHECK(resumed.params().values == straight->params().values);
  CHECK(resumed.clipper()->history() == straight->clipper()->history());
  CHECK(resumed.optimizer().v_max() == straight->optimizer().v_max());
}

TEST_CASE("Validation counts molecules of p(N) = 0 in the NLL given N, and only there", "[molecule][training]") {
  // A molecule whose atom count the model's p(N) never saw is integrated for
  // −log p(x, h | N) (which has no p(N) in it) but left out of the NLL.
  const TinyQm9 P(6);
  const Parameters<double> params = initial_molecule_parameters(P.field, P.mol, 3);
  const Validation all = molecule_validation(P.field, P.mol, params, P.mols, 2, 11);
  CHECK(all.extra["excluded"] == 0);
  MoleculeModelConfig unseen = P.mol;
  const int n0 = P.mols[0].atoms();
  unseen.node_counts[std::size_t(n0)] = 0;
  long dropped = 0;
  for (const auto& m : P.mols) dropped += m.atoms() == n0;
  REQUIRE(dropped < long(P.mols.size()));
  const Validation some = molecule_validation(P.field, unseen, params, P.mols, 2, 11);
  CHECK(some.extra["excluded"] == dropped);
  CHECK(some.extra["molecules"] == long(P.mols.size()) - dropped);
  CHECK(double(some.extra["nll_given_n"]) == Approx(double(all.extra["nll_given_n"])).epsilon(1e-12));
  CHECK(std::isfinite(some.nll));
  // None of the counts seen: the NLL given N stands in, and says so.
  MoleculeModelConfig none = P.mol;
  for (double& c : none.node_counts) c = 0;
  none.node_counts[2] = 1;  // only 2-atom molecules, which the split has none of
  const Validation given = molecule_validation(P.field, none, params, P.mols, 2, 11);
  CHECK(given.extra["nll"].is_null());
  CHECK(given.nll == Approx(double(all.extra["nll_given_n"])).epsilon(1e-12));
  // A stop asked during the validation: no result, marked interrupted.
  CHECK(molecule_validation(P.field, P.mol, params, P.mols, 2, 11, [] { return true; }).interrupted);
  CHECK_FALSE(all.interrupted);
}
