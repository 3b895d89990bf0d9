// What `enf bench step` and its --mpi mode (tools/bench_mpi.cpp) share: the
// reference E-NF configuration and the stream of training batches, so that
// both time the very same step.
#pragma once

#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

#include "datasets/particles.hpp"
#include "egnn/vector_field.hpp"
#include "engine/cnf.hpp"
#include "engine/rng.hpp"
#include "tools/bench_common.hpp"
#include "tools/options.hpp"

namespace enf::cli {

// The reference field: H = 32, L = 3, attention, tanh, time conditioning (the defaults).
inline FieldConfig bench_field_config(int dim) {
  FieldConfig field;
  field.dim = dim;
  field.hidden = 32;
  field.layers = 3;
  return field;
}

// Training: Hutchinson with Rademacher noise, dopri5 at rtol = atol = 1e-4 forward and adjoint.
inline CnfOptions bench_cnf_options(GradientMode gradient) {
  CnfOptions cnf;
  cnf.trace = TraceEstimator::Rademacher;
  cnf.gradient = gradient;
  cnf.solver.rtol = cnf.solver.atol = 1e-4;
  cnf.adjoint_solver = cnf.solver;
  return cnf;
}

// FLOPs of the field's work in one maximum-likelihood training step, from the
// step's NFE summed over its samples (StepReport), all of n nodes, with the
// Hutchinson trace of bench_cnf_options (λ = 0):
//  forward:  each evaluation the velocity with one tangent J·ε;
//  adjoint:  each evaluation of the augmented dynamics' VJP (cnf_adjoint_impl.hpp)
//            one forward with the tangent (f and J·ε again) and its reverse
//            pass (f̄ᵀJ, the trace term's ε̄ᵀ∂(J·ε)/∂z and both wrt θ);
//  discrete: the backward NFE are half the replay's stage recomputations
//            (velocity only) and half the stage VJPs (as one adjoint evaluation).
// Not counted: the prior, the optimizer, the gradient's sums over samples,
// the ODE solver's own vector arithmetic.
template <class Field>
double training_step_flops(const Field& field, int n, GradientMode gradient, double nfe_forward, double nfe_backward) {
  const double vjp = evaluation_flops(field, n, FieldWork::Hutchinson) + 2 * field.reverse_madds(n, 1);
  const double backward = gradient == GradientMode::Adjoint
                              ? nfe_backward * vjp
                              : nfe_backward / 2 * (evaluation_flops(field, n, FieldWork::Velocity) + vjp);
  return nfe_forward * evaluation_flops(field, n, FieldWork::Hutchinson) + backward;
}

// FLOPs of one flow-matching step of B structures of n nodes: per structure
// one velocity evaluation and its reverse pass (flow_matching.cpp); the
// coupling (assignment, alignment) and the optimizer are not counted.
template <class Field>
double flow_matching_step_flops(const Field& field, int n, int B) {
  return B * (evaluation_flops(field, n, FieldWork::Velocity) + 2 * field.reverse_madds(n, 0));
}

// Batches of B structures drawn without replacement from `train`, reshuffled
// every pass. A function of the seed alone: every rank of a job draws the
// same batches (the distributed step needs the whole batch on each rank).
class BatchStream {
 public:
  BatchStream(const Structures& train, int structure_size, int B, Rng shuffle)
      : train_(train), S_(structure_size), B_(B), order_(std::size_t(train.rows)), cursor_(train.rows),
        shuffle_(std::move(shuffle)) {
    std::iota(order_.begin(), order_.end(), 0);
  }
  std::vector<double> next() {
    std::vector<double> x;
    x.reserve(std::size_t(B_) * S_);
    for (int b = 0; b < B_; ++b) {
      if (cursor_ >= train_.rows) {
        for (int i = train_.rows - 1; i > 0; --i) std::swap(order_[i], order_[int(shuffle_.uniform() * (i + 1))]);
        cursor_ = 0;
      }
      const int r = order_[cursor_++];
      x.insert(x.end(), train_.x.begin() + std::size_t(r) * S_, train_.x.begin() + std::size_t(r + 1) * S_);
    }
    return x;
  }

 private:
  const Structures& train_;
  int S_, B_;
  std::vector<int> order_;
  long cursor_;
  Rng shuffle_;
};

// enf bench step --mpi (tools/bench_mpi.cpp): steps and the exchange timed
// over the job's ranks (tools/mpi_world.hpp).
int run_bench_step_mpi(const ParsedOptions& opt);

}  // namespace enf::cli
