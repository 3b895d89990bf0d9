// One optimisation step of the flow: the batch loss and its gradient (adjoint
// or discrete), optional gradient clipping, AdamW. Master weights stay in
// float64; the field runs in T (float32 for training by default).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "egnn/vector_field.hpp"
#include "engine/flow.hpp"
#include "engine/flow_matching.hpp"
#include "engine/optimizer.hpp"

namespace enf {

struct StepReport {
  double loss = 0, nll = 0, regularization = 0;
  double grad_norm = 0;
  bool clipped = false;
  long nfe_forward = 0, nfe_backward = 0;                                   // summed over the batch
  double seconds_total = 0;                                                 // wall clock of the step
  double seconds_forward = 0, seconds_backward = 0, seconds_optimizer = 0;  // wall, split by CPU share
  ShardTiming shards;  // the gradient's time per rank (one entry in a single process)
};

// What every trainer reports of a step, from its batch loss and the clock at the start, after the gradient and
// after the optimizer. Wall time is split between the passes by CPU share.
void fill_step_report(StepReport& r, const BatchLoss& L, std::chrono::steady_clock::time_point t0,
                      std::chrono::steady_clock::time_point t1, std::chrono::steady_clock::time_point t2);
// The same for a flow-matching step (one evaluation and one reverse pass per
// sample; the gradient's wall time counted as forward: coupling, evaluation, reverse).
void fill_step_report(StepReport& r, const FlowMatchingLoss& L, std::chrono::steady_clock::time_point t0,
                      std::chrono::steady_clock::time_point t1, std::chrono::steady_clock::time_point t2);

// What every trainer (Trainer, MoleculeTrainer, ConformerTrainer) holds and
// does around its batch's loss: float64 master weights, AdamW, clipping.
class TrainerCore {
 public:
  const Parameters<double>& params() const { return master_; }
  Parameters<double>& params() { return master_; }
  AdamW& optimizer() { return adam_; }
  GradientClipper* clipper() { return clip_ ? &clipper_ : nullptr; }  // null when clipping is off

 protected:
  using Clock = std::chrono::steady_clock;
  TrainerCore(Parameters<double> init, const AdamWOptions& adam, bool clip_gradients)
      : master_(std::move(init)), adam_(master_.values.size(), adam), clip_(clip_gradients) {}

  // One step into r: loss(p, grad), p the weights cast to T, returns the
  // batch's loss (BatchLoss or FlowMatchingLoss) and adds its gradient to
  // grad (zeroed); then the norm, clipping of the first `clipped` entries,
  // AdamW, and the times from t0 (work before the loss, e.g. ActNorm's
  // initialisation, counts). Returns the norm of the entries clipped.
  template <class T, class Loss>
  double take_step(StepReport& r, Loss loss, std::size_t clipped = SIZE_MAX, Clock::time_point t0 = Clock::now()) {
    const Parameters<T> p = master_.template cast<T>();
    AlignedVector<double> grad(master_.values.size(), 0.0);
    const auto L = loss(p.values.data(), grad.data());
    const auto t1 = Clock::now();
    const double clipped_norm = apply_gradient(grad, clipped, r);
    fill_step_report(r, L, t0, t1, Clock::now());
    return clipped_norm;
  }

  Parameters<double> master_;

 private:
  AdamW adam_;
  bool clip_;
  GradientClipper clipper_;

  double apply_gradient(AlignedVector<double>& grad, std::size_t clipped, StepReport& r);
};

template <class T>
class Trainer : public TrainerCore {
 public:
  Trainer(const FieldConfig& field, const CnfOptions& cnf, const AdamWOptions& adam, Parameters<double> init,
          int threads = 0, bool clip_gradients = false);

  const Cnf<VectorField<T>>& cnf() const { return cnf_; }
  BatchFlow<VectorField<T>>& flow() { return flow_; }
  // Shares every step's samples with the ranks of comm (distributed_sum.hpp):
  // each rank takes the same steps, bit for bit, as one process would.
  void set_communicator(Communicator& comm) {
    flow_.set_communicator(comm);
    matching_.set_communicator(comm);
  }

  // One step on the batch x [B, n, C]; seed picks the samples' noise.
  StepReport step(const std::vector<double>& x, int B, int n, std::uint64_t seed);
  // One flow-matching step on the same batch (issue 14): the regression loss
  // of flow_matching.hpp in place of the NLL, the same optimizer and
  // clipping; seed picks the prior draws, times and ε. The report's loss is
  // the regression loss, nll is 0 and the NFE count one evaluation and one
  // reverse pass per sample.
  StepReport step_flow_matching(const FlowMatchingOptions& o, const std::vector<double>& x, int B, int n,
                                std::uint64_t seed);

 private:
  VectorField<T> field_;
  Cnf<VectorField<T>> cnf_;
  BatchFlow<VectorField<T>> flow_;
  FlowMatchingObjective<T> matching_;
};

// Compiled once, in trainer.cpp.
extern template class Trainer<float>;
extern template class Trainer<double>;

}  // namespace enf
