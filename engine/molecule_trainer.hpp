// One optimisation step of the QM9 flow (MoleculeFlow): the batch loss and its
// gradient over the whole model (field, ActNorm, dequantizer), the reference's
// adaptive gradient clipping, AdamW. Master weights stay in float64; the field
// and the dequantizer run in T (float32 for training by default).
//
// A new model starts as main_qm9.py's does: initialize_egnn for the field and
// then for the dequantizer network, from one Rng(seed), and ActNorm pending
// until the first step, which initialises it from that step's batch as
// flows/actnorm.py does on its first forward call: the batch is dequantized
// by the initial dequantizer with the same per-molecule noise the step then
// uses (MoleculeBatch: Rng(seed).split(b)), and ActNorm standardises those
// states (actnorm_initialize).
//
// Clipping follows main_qm9.py's utils.gradient_clipping(flow, queue): only
// the flow's parameters (the field and ActNorm) are measured and clipped; the
// dequantizer's gradient is applied as it is.
//
// step_flow_matching (issue 14, engine/molecule_flow_matching.hpp) regresses
// the CNF's field on the CNF's input ActNorm([x, v]); ActNorm is initialised
// from the first batch as above and then held fixed, and the (uniform)
// dequantizer has nothing to train: only the field's parameters move.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/initialization.hpp"
#include "engine/flow_matching.hpp"
#include "engine/molecule_batch.hpp"
#include "engine/optimizer.hpp"
#include "engine/trainer.hpp"

namespace enf {

struct MoleculeStepReport : StepReport {
  double flow_grad_norm = 0;            // of the field's and ActNorm's gradient: what the clipper sees
  double max_reconstruction_error = 0;  // of the continuous adjoint, over the batch
};

// A new model: the reference initialisation of the field, then of the
// dequantizer network (when it has one), from Rng(seed); ActNorm at the
// identity until initialised from a first batch.
Parameters<double> initial_molecule_parameters(const FieldConfig& field, const MoleculeModelConfig& mol,
                                               std::uint64_t seed);

template <class T>
class MoleculeTrainer : public TrainerCore {
 public:
  // params has molecule_layout(field, mol). actnorm_initialized = false (a
  // new model): the first step (or initialize_actnorm) initialises ActNorm.
  MoleculeTrainer(const FieldConfig& field, const MoleculeModelConfig& mol, const CnfOptions& cnf,
                  const AdamWOptions& adam, Parameters<double> params, bool actnorm_initialized, int threads = 0,
                  bool clip_gradients = true);
  MoleculeTrainer(const MoleculeTrainer&) = delete;  // batch_ refers to flow_
  MoleculeTrainer& operator=(const MoleculeTrainer&) = delete;

  const MoleculeFlow<T>& flow() const { return flow_; }
  MoleculeBatch<T>& batch() { return batch_; }
  // Shares every step's molecules with the ranks of comm (as Trainer's).
  void set_communicator(Communicator& comm) {
    batch_.set_communicator(comm);
    matching_.set_communicator(comm);
  }
  bool actnorm_initialized() const { return actnorm_ready_; }

  // ActNorm from the states [x, v] of `mols` dequantized with the current
  // dequantizer and the noise a step with `seed` draws; writes the 13 values
  // at "actnorm.x_log_s" (x_log_s, h_t, h_log_s).
  void initialize_actnorm(const std::vector<MoleculeInput>& mols, std::uint64_t seed);

  // One step on a batch of molecules; seed picks every molecule's noise.
  MoleculeStepReport step(const std::vector<MoleculeInput>& mols, std::uint64_t seed);
  // One flow-matching step on the same kind of batch: the regression loss of
  // molecule_flow_matching.hpp, the same optimizer and clipping; nfe counts
  // one field evaluation and one reverse pass per molecule.
  // std::invalid_argument for a model flow matching cannot train.
  MoleculeStepReport step_flow_matching(const FlowMatchingOptions& o, const std::vector<MoleculeInput>& mols,
                                        std::uint64_t seed);

 private:
  MoleculeFlow<T> flow_;
  MoleculeBatch<T> batch_;
  FlowMatchingObjective<T> matching_;
  bool actnorm_ready_;
  std::size_t flow_size_;  // the field's and ActNorm's parameters come first in the layout: what is clipped
};

// Compiled once, in molecule_trainer.cpp.
extern template class MoleculeTrainer<float>;
extern template class MoleculeTrainer<double>;

}  // namespace enf
