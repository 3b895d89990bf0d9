// MoleculeBatch (molecule_batch.hpp): molecules in parallel over threads.
#include "engine/molecule_batch.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace enf {

MoleculeInput molecule_input(const Molecule& m) {
  MoleculeInput in;
  const int n = m.atoms();
  if (int(m.positions.size()) != 3 * n)
    throw std::invalid_argument("molecule '" + m.name + "': positions are not n × 3");
  for (int i = 0; i < n; ++i) {
    const int t = qm9_type_index(m.atomic_numbers[i]);
    if (t < 0)
      throw std::invalid_argument("molecule '" + m.name + "': atom " + std::to_string(i + 1) + " is " +
                                  element_symbol(m.atomic_numbers[i]) + "; the flow models H, C, N, O, F");
    in.types.push_back(t);
  }
  in.x = m.positions;
  remove_centre_of_mass(in.x, 1, n, 3, 3);
  return in;
}


template <class T>
MoleculeScore MoleculeBatch<T>::score_one(const T* params, const MoleculeInput& mol, std::uint64_t b, int draws,
                                          std::uint64_t seed, Scratch& s) const {
  MoleculeScore out;
  if (!integrate_impossible_ && std::isinf(flow_.node_counts().log_prob(mol.atoms()))) {
    // Its log-likelihood is −inf whatever the ODE gives: minutes of solving
    // (the exact trace) would change nothing.
    out.impossible_size = true;
    out.first.atoms = mol.atoms();
    out.first.log_pN = out.first.log_p = out.log_p = out.log_p_iw = -std::numeric_limits<double>::infinity();
    return out;
  }
  Rng rng = Rng(seed).split(b);
  std::vector<double> lp(draws);
  for (int d = 0; d < draws; ++d) {
    const MoleculeNoise noise = flow_.draw_noise(mol.atoms(), rng);
    MoleculeLikelihood L = flow_.log_likelihood(params, mol, noise, s);
    if (!L.ode.solve.ok()) throw std::runtime_error("molecule " + std::to_string(b) + ": " + L.ode.solve.message);
    lp[d] = L.log_p;
    out.nfe += L.ode.solve.stats.nfe;
    if (d == 0) out.first = std::move(L);
  }
  double mean = 0, mx = lp[0];
  for (double v : lp) {
    mean += v / draws;
    mx = std::max(mx, v);
  }
  double se = 0;
  for (double v : lp) se += std::exp(v - mx);
  out.log_p = mean;
  out.log_p_iw = std::isfinite(mx) ? mx + std::log(se / draws) : mx;
  return out;
}

template <class T>
std::vector<MoleculeScore> MoleculeBatch<T>::score(const T* params, const std::vector<MoleculeInput>& mols, int draws,
                                                   std::uint64_t seed, const Progress& done) {
  std::vector<MoleculeScore> out(mols.size());
  int finished = 0;
  score_each(params, mols, draws, seed, [] { return false; }, [&](int b, MoleculeScore&& r) {
    out[b] = std::move(r);
    done(++finished);
  });
  return out;
}

template <class T>
int MoleculeBatch<T>::score_each(const T* params, const std::vector<MoleculeInput>& mols, int draws,
                                 std::uint64_t seed, const Stop& stop,
                                 const std::function<void(int, MoleculeScore&&)>& done, std::uint64_t first) {
  if (draws < 1) throw std::invalid_argument("draws must be at least 1");
  return batch_.each(int(mols.size()), stop, [&](int b, Scratch& s) {
    return score_one(params, mols[b], first + std::uint64_t(b), draws, seed, s);
  }, done);
}

template <class T>
BatchLoss MoleculeBatch<T>::loss_and_gradient(const T* params, const std::vector<MoleculeInput>& mols,
                                              std::uint64_t seed, double* grad) {
  const int B = int(mols.size());
  if (B < 1) throw std::invalid_argument("an empty batch");
  // A molecule's cost grows with its edges: atoms².
  std::vector<double> cost(B);
  for (int b = 0; b < B; ++b) cost[b] = double(mols[b].atoms()) * mols[b].atoms();
  return batch_.loss_and_gradient(B, flow_.parameter_count(), cost, grad, [&](int b, Scratch& s, double* acc) {
    Rng rng = Rng(seed).split(std::uint64_t(b));
    const MoleculeNoise noise = flow_.draw_noise(mols[b].atoms(), rng);
    const MoleculeGradientResult r = flow_.gradient(params, mols[b], noise, 1.0 / B, s, acc);
    const auto& ode = r.likelihood.ode;
    if (!ode.solve.ok()) throw std::runtime_error("molecule " + std::to_string(b) + ": " + ode.solve.message);
    if (!r.backward.ok())
      throw std::runtime_error("molecule " + std::to_string(b) + " (gradient): " + r.backward.message);
    return SampleLoss{r.loss, r.likelihood.nll(), ode.kinetic + ode.frobenius, ode.solve.stats.nfe,
                      r.backward.stats.nfe, r.seconds_forward, r.seconds_backward, r.reconstruction_error};
  });
}

template <class T>
std::vector<typename MoleculeFlow<T>::Sample> MoleculeBatch<T>::sample(const T* params, const std::vector<int>& atoms,
                                                                       std::uint64_t seed, const Progress& done) {
  std::vector<typename MoleculeFlow<T>::Sample> out(atoms.size());
  int finished = 0;
  sample_each(params, atoms, seed, 0, 0, [] { return false; },
              [&](int b, typename MoleculeFlow<T>::Sample&& s, MoleculeScore*) {
                out[b] = std::move(s);
                done(++finished);
              });
  return out;
}

template <class T>
int MoleculeBatch<T>::sample_each(const T* params, const std::vector<int>& atoms, std::uint64_t seed, int score_draws,
                                  std::uint64_t score_seed, const Stop& stop, const SampleDone& done,
                                  std::uint64_t first) {
  using Result = std::pair<typename MoleculeFlow<T>::Sample, MoleculeScore>;
  return batch_.each(int(atoms.size()), stop, [&](int b, Scratch& s) {
    Rng rng = Rng(seed).split(first + std::uint64_t(b));
    Result r;
    auto& [sample, score] = r;
    sample = flow_.sample(params, atoms[b], rng, s);
    if (!sample.solve.ok())
      throw std::runtime_error("sample " + std::to_string(first + b) + ": " + sample.solve.message);
    if (score_draws > 0) {
      // As molecule_input() of the written molecule: the same centred
      // positions and types, so the score is the one enf score would give.
      MoleculeInput in{sample.x, sample.types};
      remove_centre_of_mass(in.x, 1, in.atoms(), 3, 3);
      score = score_one(params, in, first + std::uint64_t(b), score_draws, score_seed, s);
    }
    return r;
  }, [&](int b, Result&& r) { done(b, std::move(r.first), score_draws > 0 ? &r.second : nullptr); });
}

template class MoleculeBatch<float>;
template class MoleculeBatch<double>;

}  // namespace enf
