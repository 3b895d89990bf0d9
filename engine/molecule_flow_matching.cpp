// Flow matching for the QM9 flow (molecule_flow_matching.hpp).
#include "engine/molecule_flow_matching.hpp"

#include <limits>
#include <stdexcept>

namespace enf {

std::string molecule_flow_matching_unsupported(const MoleculeModelConfig& mol) {
  if (mol.dequantization != Dequantization::Uniform)
    return to_string(mol.dequantization) +
           " dequantization is trained through the likelihood, which flow matching does not compute (use uniform)";
  return "";
}

template <class T>
std::vector<std::vector<double>> molecule_data_states(const MoleculeFlow<T>& flow, const T* params,
                                                      const std::vector<MoleculeInput>& mols, std::uint64_t seed) {
  if (const std::string e = molecule_flow_matching_unsupported(flow.config()); !e.empty())
    throw std::invalid_argument("flow matching: " + e);
  typename MoleculeFlow<T>::Scratch s;
  std::vector<std::vector<double>> states(mols.size());
  for (std::size_t b = 0; b < mols.size(); ++b) {
    Rng rng = Rng(seed).split(std::uint64_t(b));
    const MoleculeNoise noise = flow.draw_noise(mols[b].atoms(), rng);
    states[b] = flow.dequantized_state(params, mols[b], noise, s);
    if (flow.config().actnorm)
      actnorm_forward(ActNormParams::read(params + flow.actnorm_offset()), states[b], mols[b].atoms());
  }
  return states;
}

template <class T>
FlowMatchingBatch molecule_flow_matching_batch(const FlowMatchingOptions& o, const MoleculeFlow<T>& flow,
                                               const T* params, const std::vector<MoleculeInput>& mols,
                                               std::uint64_t seed, int threads) {
  const std::vector<std::vector<double>> x0 = molecule_data_states(flow, params, mols, seed);
  // The path's draws: a stream no molecule's dequantization noise uses.
  Rng rng = Rng(seed).split(std::numeric_limits<std::uint64_t>::max());
  return make_flow_matching_batch(o, x0, 3, kMoleculeChannels, rng, threads);
}

#define ENF_MOLECULE_FM(T)                                                                                            \
  template std::vector<std::vector<double>> molecule_data_states<T>(const MoleculeFlow<T>&, const T*,                \
                                                                    const std::vector<MoleculeInput>&, std::uint64_t); \
  template FlowMatchingBatch molecule_flow_matching_batch<T>(const FlowMatchingOptions&, const MoleculeFlow<T>&,      \
                                                             const T*, const std::vector<MoleculeInput>&,            \
                                                             std::uint64_t, int);
ENF_MOLECULE_FM(float)
ENF_MOLECULE_FM(double)
#undef ENF_MOLECULE_FM

}  // namespace enf
