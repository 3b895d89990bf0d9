// The QM9 flow of the reference, one molecule at a time (fixtures README §4):
//   positions x (centred), atom types → dequantize v ~ q(v | x, h)
//   → ActNorm → CNF (t: 0 → 1) → z = [z_x, z_h]
//   log p(x, h, N) = log p(z_x) + log p(z_h) + logdet_ActNorm + Δlog p_ODE
//                    − log q(v | x, h) + log p(N)
// a variational lower bound for one draw of the dequantization noise.
// Molecules of any size up to the histogram's largest; each is solved with
// its own adaptive steps, so a result never depends on its batch.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "egnn/parallel.hpp"
#include "engine/cnf.hpp"
#include "engine/flow.hpp"
#include "engine/molecule_model.hpp"

namespace enf {

// One molecule as the flow sees it: centred positions (n × 3, Å) and atom
// type indices (0..4 = H, C, N, O, F).
struct MoleculeInput {
  std::vector<double> x;
  std::vector<int> types;
  int atoms() const { return int(types.size()); }
};

// The random numbers of one likelihood evaluation: the dequantization noise
// (n × 6: standard normal, or uniform for uniform dequantization) and the
// Hutchinson probe (n × 9, empty when the trace is exact and unregularized).
struct MoleculeNoise {
  std::vector<double> dequantizer, trace;
};

struct MoleculeLikelihood {
  int atoms = 0;
  DequantizerTerms dequantizer;
  std::vector<double> xh;           // n × 9: [x, v]
  std::vector<double> actnorm_out;  // n × 9: the CNF's input
  double actnorm_logdet = 0;
  ForwardResult ode;  // z(1), the ODE's Δlog p, K, R, solver stats
  double delta_logp_total = 0, log_pz_x = 0, log_pz_h = 0, log_pN = 0;
  double log_p = 0;  // log p(x, h, N)
  double nll() const { return -log_p; }
};

struct MoleculeGradientResult {
  MoleculeLikelihood likelihood;
  double loss = 0;  // w·(−log p(x, h, N) + λ(K + R))
  ode::SolveResult backward;
  double reconstruction_error = 0;  // of the continuous adjoint (AdjointResult)
  double seconds_forward = 0, seconds_backward = 0;
};

// A drawn molecule (MoleculeFlow<T>::sample), whatever the field's scalar.
struct MoleculeSample {
  std::vector<double> x;  // n × 3, Å
  std::vector<int> types, charges;
  std::vector<double> state;  // n × 9 after the inverse ActNorm: [x, v]
  ode::SolveResult solve;
};

template <class T>
class MoleculeFlow {
 public:
  using Field = VectorField<T>;

  MoleculeFlow(const FieldConfig& field, const MoleculeModelConfig& mol, const CnfOptions& cnf)
      : mol_(mol),
        layout_(molecule_layout(field, mol)),
        field_(field, field_layout(field)),
        cnf_(field_, cnf),
        deq_(mol, layout_),
        counts_(mol.node_counts),
        actnorm_offset_(layout_.at("actnorm.x_log_s").offset) {}

  const ParameterLayout& layout() const { return layout_; }
  const MoleculeModelConfig& config() const { return mol_; }
  const Cnf<Field>& cnf() const { return cnf_; }
  const NodeCountDistribution& node_counts() const { return counts_; }
  std::size_t parameter_count() const { return layout_.total_size(); }
  std::size_t actnorm_offset() const { return actnorm_offset_; }

  struct Scratch {
    typename Cnf<Field>::Scratch cnf;
    typename Dequantizer<T>::Workspace deq;
    AlignedVector<T> grad;  // the dequantizer's gradient in T, whole layout
  };

  MoleculeNoise draw_noise(int n, Rng& rng) const;

  MoleculeLikelihood log_likelihood(const T* params, const MoleculeInput& in, const MoleculeNoise& noise,
                                    Scratch& s) const;

  // The dequantized state [x, v] (n × 9) that enters ActNorm: what the
  // reference's data-dependent ActNorm initialisation sees on a first batch.
  std::vector<double> dequantized_state(const T* params, const MoleculeInput& in, const MoleculeNoise& noise,
                                        Scratch& s) const;

  // The loss w·(−log p(x, h, N) + λ(K + R)) and its gradient wrt every
  // parameter (the field by the CNF's gradient mode, then ActNorm and the
  // dequantizer through the CNF's input cotangent), accumulated into grad.
  MoleculeGradientResult gradient(const T* params, const MoleculeInput& in, const MoleculeNoise& noise, double weight,
                                  Scratch& s, double* grad) const;

  using Sample = MoleculeSample;  // the same type for float and double fields

  // z ~ prior (positions without centre of mass), integrated from t = 1 to 0,
  // through the inverse ActNorm; atom types by argmax, charges by floor.
  Sample sample(const T* params, int n, Rng& rng, Scratch& s) const;

 private:
  MoleculeModelConfig mol_;
  ParameterLayout layout_;
  Field field_;
  Cnf<Field> cnf_;
  Dequantizer<T> deq_;
  NodeCountDistribution counts_;
  std::size_t actnorm_offset_;

  // Dequantization and ActNorm: everything before the ODE.
  MoleculeLikelihood prepare(const T* params, const MoleculeInput& in, const MoleculeNoise& noise, Scratch& s) const;

  // The terms around the CNF's: its prior (the one particles use, by part),
  // ActNorm's log-determinant, the dequantizer's log q and p(N).
  void finish(MoleculeLikelihood& L) const;
};

// Compiled once, in molecule_flow.cpp.
extern template class MoleculeFlow<float>;
extern template class MoleculeFlow<double>;

}  // namespace enf
