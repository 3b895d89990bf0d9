// MoleculeTrainer (molecule_trainer.hpp): one optimisation step of the QM9 flow.
#include "engine/molecule_trainer.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "engine/initialization.hpp"
#include "engine/molecule_flow_matching.hpp"

namespace enf {

Parameters<double> initial_molecule_parameters(const FieldConfig& field, const MoleculeModelConfig& mol,
                                               std::uint64_t seed) {
  Parameters<double> p(molecule_layout(field, mol));
  Rng rng(seed);
  initialize_egnn(field.egnn(), p, rng);
  if (mol.has_network()) initialize_egnn(mol.dequantizer_egnn(), p, rng);
  return p;
}

template <class T>
MoleculeTrainer<T>::MoleculeTrainer(const FieldConfig& field, const MoleculeModelConfig& mol, const CnfOptions& cnf,
                                    const AdamWOptions& adam, Parameters<double> params, bool actnorm_initialized,
                                    int threads, bool clip_gradients)
    : TrainerCore(std::move(params), adam, clip_gradients),
      flow_(field, mol, cnf),
      batch_(flow_, threads),
      matching_(flow_.cnf().field(), batch_.threads()),
      actnorm_ready_(actnorm_initialized || !mol.actnorm),
      flow_size_(flow_.actnorm_offset() + 1 + 2 * kMoleculeFeatures) {
  if (master_.values.size() != flow_.parameter_count())
    throw std::invalid_argument("molecule trainer: the parameters do not have the model's layout");
}

template <class T>
void MoleculeTrainer<T>::initialize_actnorm(const std::vector<MoleculeInput>& mols, std::uint64_t seed) {
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

template <class T>
MoleculeStepReport MoleculeTrainer<T>::step(const std::vector<MoleculeInput>& mols, std::uint64_t seed) {
  const auto t0 = Clock::now();
  if (!actnorm_ready_) initialize_actnorm(mols, seed);
  MoleculeStepReport r;
  r.flow_grad_norm = take_step<T>(r, [&](const T* p, double* grad) {
    const BatchLoss L = batch_.loss_and_gradient(p, mols, seed, grad);
    r.max_reconstruction_error = L.max_reconstruction_error;
    return L;
  }, flow_size_, t0);
  return r;
}

template <class T>
MoleculeStepReport MoleculeTrainer<T>::step_flow_matching(const FlowMatchingOptions& o,
                                                          const std::vector<MoleculeInput>& mols, std::uint64_t seed) {
  const auto t0 = Clock::now();
  if (const std::string e = molecule_flow_matching_unsupported(flow_.config()); !e.empty())
    throw std::invalid_argument("flow matching: " + e);
  if (!actnorm_ready_) initialize_actnorm(mols, seed);
  // ActNorm (and everything after it in the layout) is held at its value:
  // the regression defines no gradient for it (moving it would move the
  // data states the field is fitted to), and AdamW would still shift it by
  // weight decay, or by moments a maximum-likelihood run left, on a zero
  // gradient. Restored after the update, so an FM step leaves it bit for bit.
  const std::size_t frozen = flow_.actnorm_offset();
  const std::vector<double> held(master_.values.begin() + frozen, master_.values.end());
  MoleculeStepReport r;
  // Forward time: states, coupling, evaluation and reverse pass. The
  // regression's gradient covers the field only (the objective fills the
  // first field-size entries, the field's tensors leading the layout).
  r.flow_grad_norm = take_step<T>(r, [&](const T* p, double* grad) {
    const FlowMatchingBatch batch = molecule_flow_matching_batch(o, flow_, p, mols, seed, batch_.threads());
    return matching_.loss_and_gradient(p, batch, grad);
  }, flow_size_, t0);
  std::copy(held.begin(), held.end(), master_.values.begin() + frozen);
  return r;
}

template class MoleculeTrainer<float>;
template class MoleculeTrainer<double>;

}  // namespace enf
