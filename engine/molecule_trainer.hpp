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
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

#include "engine/initialization.hpp"
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
inline Parameters<double> initial_molecule_parameters(const FieldConfig& field, const MoleculeModelConfig& mol,
                                                      std::uint64_t seed) {
  Parameters<double> p(molecule_layout(field, mol));
  Rng rng(seed);
  initialize_egnn(field.egnn(), p, rng);
  if (mol.has_network()) initialize_egnn(mol.dequantizer_egnn(), p, rng);
  return p;
}

template <class T>
class MoleculeTrainer {
 public:
  // params has molecule_layout(field, mol). actnorm_initialized = false (a
  // new model): the first step (or initialize_actnorm) initialises ActNorm.
  MoleculeTrainer(const FieldConfig& field, const MoleculeModelConfig& mol, const CnfOptions& cnf,
                  const AdamWOptions& adam, Parameters<double> params, bool actnorm_initialized, int threads = 0,
                  bool clip_gradients = true)
      : master_(std::move(params)),
        flow_(field, mol, cnf),
        batch_(flow_, threads),
        adam_(master_.values.size(), adam),
        clip_(clip_gradients),
        actnorm_ready_(actnorm_initialized || !mol.actnorm),
        flow_size_(flow_.actnorm_offset() + 1 + 2 * kMoleculeFeatures) {
    if (master_.values.size() != flow_.parameter_count())
      throw std::invalid_argument("molecule trainer: the parameters do not have the model's layout");
  }
  MoleculeTrainer(const MoleculeTrainer&) = delete;  // batch_ refers to flow_
  MoleculeTrainer& operator=(const MoleculeTrainer&) = delete;

  const Parameters<double>& params() const { return master_; }
  Parameters<double>& params() { return master_; }
  const MoleculeFlow<T>& flow() const { return flow_; }
  MoleculeBatch<T>& batch() { return batch_; }
  AdamW& optimizer() { return adam_; }
  GradientClipper* clipper() { return clip_ ? &clipper_ : nullptr; }  // null when clipping is off
  bool actnorm_initialized() const { return actnorm_ready_; }

  // ActNorm from the states [x, v] of `mols` dequantized with the current
  // dequantizer and the noise a step with `seed` draws; writes the 13 values
  // at "actnorm.x_log_s" (x_log_s, h_t, h_log_s).
  void initialize_actnorm(const std::vector<MoleculeInput>& mols, std::uint64_t seed) {
    const Parameters<T> p = master_.template cast<T>();
    typename MoleculeFlow<T>::Scratch s;
    std::vector<std::vector<double>> states(mols.size());
    for (std::size_t b = 0; b < mols.size(); ++b) {
      Rng rng = Rng(seed).split(std::uint64_t(b));
      const MoleculeNoise noise = flow_.draw_noise(mols[b].atoms(), rng);
      states[b] = flow_.dequantized_state(p.values.data(), mols[b], noise, s);
    }
    actnorm_initialize(states).write(master_.values.data() + flow_.actnorm_offset());
    actnorm_ready_ = true;
  }

  // One step on a batch of molecules; seed picks every molecule's noise.
  MoleculeStepReport step(const std::vector<MoleculeInput>& mols, std::uint64_t seed) {
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    if (!actnorm_ready_) initialize_actnorm(mols, seed);
    const Parameters<T> p = master_.template cast<T>();
    AlignedVector<double> grad(master_.values.size(), 0.0);
    const MoleculeBatchLoss L = batch_.loss_and_gradient(p.values.data(), mols, seed, grad.data());
    const auto t1 = Clock::now();
    MoleculeStepReport r;
    double sq = 0, sq_flow = 0;
    for (std::size_t k = 0; k < grad.size(); ++k) {
      sq += grad[k] * grad[k];
      if (k + 1 == flow_size_) sq_flow = sq;
    }
    r.grad_norm = std::sqrt(sq);
    r.flow_grad_norm = std::sqrt(sq_flow);
    if (clip_) {
      clipper_.clip(std::span<double>(grad.data(), flow_size_));
      r.clipped = clipper_.last_clipped();
    }
    adam_.step(master_.values, grad);
    fill_step_report(r, L, t0, t1, Clock::now());
    r.max_reconstruction_error = L.max_reconstruction_error;
    return r;
  }

 private:
  Parameters<double> master_;
  MoleculeFlow<T> flow_;
  MoleculeBatch<T> batch_;
  AdamW adam_;
  bool clip_;
  GradientClipper clipper_;
  bool actnorm_ready_;
  std::size_t flow_size_;  // the field's and ActNorm's parameters come first in the layout
};

}  // namespace enf
