// MoleculeFlow (molecule_flow.hpp): dequantization and ActNorm around the CNF.
#include "engine/molecule_flow.hpp"

#include <stdexcept>

namespace enf {

template <class T>
MoleculeNoise MoleculeFlow<T>::draw_noise(int n, Rng& rng) const {
  MoleculeNoise e;
  e.dequantizer.resize(std::size_t(n) * kMoleculeFeatures);
  for (double& v : e.dequantizer) v = mol_.dequantization == Dequantization::Uniform ? rng.uniform() : rng.normal();
  if (cnf_.options().needs_noise()) e.trace = enf::draw_noise(cnf_.options().trace, n * kMoleculeChannels, rng);
  return e;
}

template <class T>
MoleculeLikelihood MoleculeFlow<T>::log_likelihood(const T* params, const MoleculeInput& in, const MoleculeNoise& noise,
                                                   Scratch& s) const {
  MoleculeLikelihood L = prepare(params, in, noise, s);
  L.ode = cnf_.forward(params, L.actnorm_out, in.atoms(), noise.trace, s.cnf);
  finish(L);
  return L;
}

template <class T>
std::vector<double> MoleculeFlow<T>::dequantized_state(const T* params, const MoleculeInput& in,
                                                       const MoleculeNoise& noise, Scratch& s) const {
  return prepare(params, in, noise, s).xh;
}

template <class T>
MoleculeGradientResult MoleculeFlow<T>::gradient(const T* params, const MoleculeInput& in, const MoleculeNoise& noise,
                                                 double weight, Scratch& s, double* grad) const {
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
      for (int c = 0; c < kMoleculeFeatures; ++c) vbar[i * kMoleculeFeatures + c] = ybar[i * kMoleculeChannels + 3 + c];
    s.grad.assign(layout_.total_size(), T(0));
    // The loss holds +w·log q(v | x, h).
    deq_.reverse(params, L.dequantizer, noise.dequantizer, vbar, weight, s.deq, s.grad.data());
    for (std::size_t k = 0; k < s.grad.size(); ++k) grad[k] += double(s.grad[k]);
  }
  return r;
}

template <class T>
typename MoleculeFlow<T>::Sample MoleculeFlow<T>::sample(const T* params, int n, Rng& rng, Scratch& s) const {
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

template <class T>
MoleculeLikelihood MoleculeFlow<T>::prepare(const T* params, const MoleculeInput& in, const MoleculeNoise& noise,
                                            Scratch& s) const {
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

template <class T>
void MoleculeFlow<T>::finish(MoleculeLikelihood& L) const {
  L.log_pz_x = L.ode.log_pz_x;
  L.log_pz_h = L.ode.log_pz_h;
  L.delta_logp_total = L.actnorm_logdet + L.ode.delta_logp;
  L.log_pN = counts_.log_prob(L.atoms);
  L.log_p = L.log_pz_x + L.log_pz_h + L.delta_logp_total - L.dequantizer.log_q_v + L.log_pN;
}

template class MoleculeFlow<float>;
template class MoleculeFlow<double>;

}  // namespace enf
