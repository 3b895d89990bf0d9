// Flow matching for the QM9 flow (issue 14; engine/flow_matching.hpp for the
// path, the loss and the couplings). What is regressed is the CNF's vector
// field alone, on the CNF's own input, so that the trained model is the same
// MoleculeFlow, scored by the same dequantization bound (enf score):
//
//   data state x0 = ActNorm([x, v])   (n × 9: centred positions, dequantized features)
//   prior draw x1 = [centre-of-mass-free N(0, I) positions, N(0, 1) features]
//                                     (the prior log p(z_x) + log p(z_h) of the ML model)
//
// v = one-hot/charge + U[0,1) − ½, uniform dequantization only: the
// variational dequantizers are trained through the likelihood, which flow
// matching does not compute (their q(v | x, h) would stay at its random
// initialisation and the bound would be loose), so they are refused.
// Molecule b's dequantization noise is MoleculeFlow::draw_noise from
// Rng(seed).split(b), exactly what an ML step (and the first-batch ActNorm
// initialisation) draws for it; x1, ε and t come from a stream of their own.
//
// Molecules have different sizes: each is one state of its own n; the
// couplings pair molecules of equal atom count within the batch (minibatch
// and equivariant OT per group of equal n; equivariant OT aligns positions
// by permutation and rotation/reflection, features permuted with their atoms).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/flow_matching.hpp"
#include "engine/molecule_flow.hpp"

namespace enf {

// The reason flow matching cannot train this model ("" when it can).
std::string molecule_flow_matching_unsupported(const MoleculeModelConfig& mol);

// x0 of every molecule: ActNorm([x, v]) with params' ActNorm, n_b × 9 each.
template <class T>
std::vector<std::vector<double>> molecule_data_states(const MoleculeFlow<T>& flow, const T* params,
                                                      const std::vector<MoleculeInput>& mols, std::uint64_t seed);

// The batch's regression problem (std::invalid_argument for a model flow
// matching cannot train); threads: the coupling's alignments.
template <class T>
FlowMatchingBatch molecule_flow_matching_batch(const FlowMatchingOptions& o, const MoleculeFlow<T>& flow,
                                               const T* params, const std::vector<MoleculeInput>& mols,
                                               std::uint64_t seed, int threads = 1);

}  // namespace enf
