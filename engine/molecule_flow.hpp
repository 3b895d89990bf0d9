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

  MoleculeNoise draw_noise(int n, Rng& rng) const {
    MoleculeNoise e;
    e.dequantizer.resize(std::size_t(n) * kMoleculeFeatures);
    for (double& v : e.dequantizer) v = mol_.dequantization == Dequantization::Uniform ? rng.uniform() : rng.normal();
    if (cnf_.options().needs_noise()) e.trace = enf::draw_noise(cnf_.options().trace, n * kMoleculeChannels, rng);
    return e;
  }

  MoleculeLikelihood log_likelihood(const T* params, const MoleculeInput& in, const MoleculeNoise& noise,
                                    Scratch& s) const {
    MoleculeLikelihood L = prepare(params, in, noise, s);
    L.ode = cnf_.forward(params, L.actnorm_out, in.atoms(), noise.trace, s.cnf);
    finish(L);
    return L;
  }

  // The dequantized state [x, v] (n × 9) that enters ActNorm: what the
  // reference's data-dependent ActNorm initialisation sees on a first batch.
  std::vector<double> dequantized_state(const T* params, const MoleculeInput& in, const MoleculeNoise& noise,
                                        Scratch& s) const {
    return prepare(params, in, noise, s).xh;
  }

  // The loss w·(−log p(x, h, N) + λ(K + R)) and its gradient wrt every
  // parameter (the field by the CNF's gradient mode, then ActNorm and the
  // dequantizer through the CNF's input cotangent), accumulated into grad.
  MoleculeGradientResult gradient(const T* params, const MoleculeInput& in, const MoleculeNoise& noise, double weight,
                                  Scratch& s, double* grad) const {
    const int n = in.atoms();
    MoleculeGradientResult r;
    r.likelihood = prepare(params, in, noise, s);
    MoleculeLikelihood& L = r.likelihood;
    AdjointResult a = cnf_.gradient(params, L.actnorm_out, n, noise.trace, weight, s.cnf, grad);
    L.ode = a.forward;
    finish(L);
    r.seconds_forward = a.seconds_forward;
    r.seconds_backward = a.seconds_backward;
    r.backward = a.backward;
    r.reconstruction_error = a.reconstruction_error;
    r.loss = weight * (L.nll() + cnf_.options().ode_regularization * (L.ode.kinetic + L.ode.frobenius));
    if (!L.ode.solve.ok() || !a.backward.ok()) return r;
    std::vector<double> ybar = std::move(a.input_cotangent);
    if (mol_.actnorm) {
      // The loss holds −w·logdet.
      actnorm_reverse(ActNormParams::read(params + actnorm_offset_), L.actnorm_out, ybar, n, weight,
                      grad + actnorm_offset_);
    }
    if (mol_.has_network()) {
      std::vector<double> vbar(std::size_t(n) * kMoleculeFeatures);
      for (int i = 0; i < n; ++i)
        for (int c = 0; c < kMoleculeFeatures; ++c)
          vbar[i * kMoleculeFeatures + c] = ybar[i * kMoleculeChannels + 3 + c];
      s.grad.assign(layout_.total_size(), T(0));
      // The loss holds +w·log q(v | x, h).
      deq_.reverse(params, L.dequantizer, noise.dequantizer, vbar, weight, s.deq, s.grad.data());
      for (std::size_t k = 0; k < s.grad.size(); ++k) grad[k] += double(s.grad[k]);
    }
    return r;
  }

  struct Sample {
    std::vector<double> x;  // n × 3, Å
    std::vector<int> types, charges;
    std::vector<double> state;  // n × 9 after the inverse ActNorm: [x, v]
    ode::SolveResult solve;
  };

  // z ~ prior (positions without centre of mass), integrated from t = 1 to 0,
  // through the inverse ActNorm; atom types by argmax, charges by floor.
  Sample sample(const T* params, int n, Rng& rng, Scratch& s) const {
    const int C = kMoleculeChannels;
    std::vector<double> z(std::size_t(n) * C);
    for (double& v : z) v = rng.normal();
    remove_centre_of_mass(z, 1, n, 3, C);
    Sample out;
    out.solve = cnf_.reverse(params, z, n, s.cnf);
    if (mol_.actnorm) actnorm_inverse(ActNormParams::read(params + actnorm_offset_), z, n);
    out.x.resize(std::size_t(n) * 3);
    std::vector<double> v(std::size_t(n) * kMoleculeFeatures);
    for (int i = 0; i < n; ++i) {
      for (int d = 0; d < 3; ++d) out.x[i * 3 + d] = z[i * C + d];
      for (int c = 0; c < kMoleculeFeatures; ++c) v[i * kMoleculeFeatures + c] = z[i * C + 3 + c];
    }
    Dequantizer<T>::quantize(mol_.dequantization, v, n, out.types, out.charges);
    out.state = std::move(z);
    return out;
  }

 private:
  MoleculeModelConfig mol_;
  ParameterLayout layout_;
  Field field_;
  Cnf<Field> cnf_;
  Dequantizer<T> deq_;
  NodeCountDistribution counts_;
  std::size_t actnorm_offset_;

  // Dequantization and ActNorm: everything before the ODE.
  MoleculeLikelihood prepare(const T* params, const MoleculeInput& in, const MoleculeNoise& noise, Scratch& s) const {
    const int n = in.atoms(), C = kMoleculeChannels, F = kMoleculeFeatures;
    if (n < 2) throw std::invalid_argument("a molecule needs at least 2 atoms");
    if (int(in.x.size()) != 3 * n) throw std::invalid_argument("molecule positions: expected n × 3 values");
    for (int t : in.types)
      if (t < 0 || t >= kMoleculeTypes) throw std::invalid_argument("molecule: atom type index out of range");
    MoleculeLikelihood L;
    L.atoms = n;
    L.dequantizer = deq_.forward(params, in.x, in.types, noise.dequantizer, s.deq);
    L.xh.resize(std::size_t(n) * C);
    for (int i = 0; i < n; ++i) {
      for (int d = 0; d < 3; ++d) L.xh[i * C + d] = in.x[i * 3 + d];
      for (int c = 0; c < F; ++c) L.xh[i * C + 3 + c] = L.dequantizer.v[i * F + c];
    }
    L.actnorm_out = L.xh;
    if (mol_.actnorm) L.actnorm_logdet = actnorm_forward(ActNormParams::read(params + actnorm_offset_), L.actnorm_out, n);
    return L;
  }

  // The terms around the CNF's: its prior (the one particles use, by part),
  // ActNorm's log-determinant, the dequantizer's log q and p(N).
  void finish(MoleculeLikelihood& L) const {
    L.log_pz_x = L.ode.log_pz_x;
    L.log_pz_h = L.ode.log_pz_h;
    L.delta_logp_total = L.actnorm_logdet + L.ode.delta_logp;
    L.log_pN = counts_.log_prob(L.atoms);
    L.log_p = L.log_pz_x + L.log_pz_h + L.delta_logp_total - L.dequantizer.log_q_v + L.log_pN;
  }
};

}  // namespace enf
