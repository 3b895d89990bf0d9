// Flow matching reaches a likelihood comparable to maximum likelihood on a
// small problem (issue 14): the same small DW4 flow, the same 500 training
// structures, trained once by maximum likelihood (Hutchinson, adjoint) and
// once by flow matching, then both scored by the exact-trace NLL on 500 test
// structures. A stochastic test: the tolerance comes from repeated runs
// (seeds 1–4, see the comment at the check) and leaves room for that spread.
#include <catch2/catch.hpp>

#include <cstdio>
#include <numeric>
#include <vector>

#include "datasets/particles.hpp"
#include "engine/initialization.hpp"
#include "engine/trainer.hpp"
#include "engine/validation.hpp"
#include "support/cnf_options.hpp"
#include "support/fixtures.hpp"

using namespace enf;
using namespace enf::test;

namespace {

struct Setup {
  ParticleSystem sys = particle_system("dw4");
  Structures train = load_structures(shipped_split(sys, "train").path, sys, 0, 500);
  Structures test = load_structures(shipped_split(sys, "test").path, sys, 0, 500);
  FieldConfig field = [] {
    FieldConfig f = particle_field(2);
    f.hidden = 16;
    f.layers = 2;
    return f;
  }();
};

// Test NLL (exact trace, 1e-5) of the flow after `steps` steps of batch 50
// through the training data in order, by either objective.
double train_and_score(const Setup& s, bool flow_matching, int steps, std::uint64_t seed) {
  const CnfOptions o = training_options(1e-4);
  AdamWOptions adam;
  adam.lr = 2e-3;
  Parameters<double> init(field_layout(s.field));
  Rng rng(seed);
  initialize_egnn(s.field.egnn(), init, rng);
  Trainer<float> trainer(s.field, o, adam, init, 2);
  FlowMatchingOptions fm;
  fm.coupling = Coupling::Independent;
  const int B = 50, S = s.sys.n * s.sys.dim;
  for (int step = 0; step < steps; ++step) {
    const int first = (step * B) % s.train.rows;
    std::vector<double> x(s.train.x.begin() + std::size_t(first) * S, s.train.x.begin() + std::size_t(first + B) * S);
    const std::uint64_t step_seed = (seed << 20) + std::uint64_t(step);
    if (flow_matching)
      trainer.step_flow_matching(fm, x, B, s.sys.n, step_seed);
    else
      trainer.step(x, B, s.sys.n, step_seed);
  }
  return particle_validation(s.field, trainer.params(), s.test.x, s.test.rows, s.sys.n, 2, 0).nll;
}

}  // namespace

TEST_CASE("flow matching reaches a test likelihood comparable to maximum likelihood on DW4", "[flow_matching][slow]") {
  const Setup s;
  const std::uint64_t seed = 1;
  const double untrained = train_and_score(s, false, 0, seed);
  // A maximum-likelihood step solves the ODE both ways (~70 field
  // evaluations and reverse passes per structure), a flow-matching step
  // evaluates once and reverses once: FM gets 5× the steps at about a
  // seventh of the field evaluations.
  const double ml = train_and_score(s, false, 200, seed);
  const double fm = train_and_score(s, true, 1000, seed);
  std::printf("DW4 test NLL: untrained %.3f, maximum likelihood %.3f, flow matching %.3f\n", untrained, ml, fm);
  INFO("untrained " << untrained << ", maximum likelihood " << ml << ", flow matching " << fm);
  // Both learn: far below the untrained flow.
  CHECK(ml < untrained - 1.0);
  CHECK(fm < untrained - 1.0);
  // Comparable: flow matching no more than 1 nat worse. Seeds 1–4 gave
  // FM − ML = +0.41, +0.22, +0.46, −0.07 nats (ML 9.37, 8.46, 8.83, 8.57;
  // untrained 18.6): the bound is twice the largest gap seen and a ninth
  // of what training gains over the untrained flow.
  CHECK(fm < ml + 1.0);
}
