// Training the conformer model (issue 15; engine/conformer_flow.hpp): one
// flow-matching or maximum-likelihood step on a batch of molecules, each
// with its own molecule's conditioning, AdamW on float64 master weights (the
// field in T); and the validation NLL, −log p(x | graph), in float64.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "engine/conformer_flow.hpp"
#include "engine/optimizer.hpp"
#include "engine/trainer.hpp"
#include "engine/training_run.hpp"

namespace enf {

template <class T>
class ConformerTrainer : public TrainerCore {
 public:
  // cnf: the solves of a maximum-likelihood step (trace estimator, gradient
  // mode, tolerances, λ); a flow-matching step solves nothing.
  ConformerTrainer(const FieldConfig& field, const CnfOptions& cnf, const AdamWOptions& adam, Parameters<double> init,
                   int threads = 0, bool clip_gradients = false);
  int threads() const { return flow_.threads(); }
  void set_communicator(Communicator& comm) {
    flow_.set_communicator(comm);
    matching_.set_communicator(comm);
  }

  // One step on molecules conditions[b] at positions x[b] ([n_b, 3]); seed
  // picks the prior draws, times and ε. The report's loss is the regression loss.
  StepReport step_flow_matching(const FlowMatchingOptions& o, const std::vector<const ConformerCondition*>& conditions,
                                const std::vector<std::vector<double>>& x, std::uint64_t seed);
  // One maximum-likelihood step on the same kind of batch: the loss and
  // gradient of ConformerFlow::loss_and_gradient (seed picks each
  // molecule's Hutchinson noise), the same optimizer and clipping. The
  // report's loss is the mean −log p(x | graph) + λ(K + R), nll the mean
  // −log p(x | graph), NFE forward and backward summed over the batch.
  StepReport step(const std::vector<const ConformerCondition*>& conditions, const std::vector<std::vector<double>>& x,
                  std::uint64_t seed);

 private:
  VectorField<T> field_;
  ConformerFlow<T> flow_;
  FlowMatchingObjective<T> matching_;
  const std::vector<const ConformerCondition*>* batch_conditions_ = nullptr;
};

extern template class ConformerTrainer<float>;
extern template class ConformerTrainer<double>;

// Mean −log p(x | graph) over the validation molecules: float64, Gaussian
// Hutchinson with a fixed seed, rtol = atol = 1e-5 (validation_cnf_options).
// stop() true: no result (interrupted).
Validation conformer_validation(const FieldConfig& field, const Parameters<double>& params,
                                const std::vector<ConformerCondition>& conditions,
                                const std::vector<std::vector<double>>& x, int threads, std::uint64_t seed,
                                const std::function<bool()>& stop);

}  // namespace enf
