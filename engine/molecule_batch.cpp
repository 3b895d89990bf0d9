// MoleculeBatch (molecule_batch.hpp): molecules in parallel over threads.
#include "engine/molecule_batch.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <stdexcept>
#include <string>

#include "egnn/parallel.hpp"

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
MoleculeBatch<T>::MoleculeBatch(const MoleculeFlow<T>& flow, int threads) : flow_(flow) {
  threads_ = threads > 0 ? threads : omp_get_max_threads();
  scratch_.resize(threads_);
}

template <class T>
MoleculeScore MoleculeBatch<T>::score_one(const T* params, const MoleculeInput& mol, std::uint64_t b, int draws,
                                          std::uint64_t seed, int thread) {
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
    MoleculeLikelihood L = flow_.log_likelihood(params, mol, noise, scratch_[thread]);
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
  int finished = 0;
  std::atomic<bool> failed{false};
  parallel_for(int(mols.size()), threads_, [&](int b, int thread) {
    if (failed || stop()) return;
    MoleculeScore r = score_one(params, mols[b], first + std::uint64_t(b), draws, seed, thread);
    handed_over(failed, [&] {
      ++finished;
      done(b, std::move(r));
    });
  });
  return finished;
}

template <class T>
MoleculeBatchLoss MoleculeBatch<T>::loss_and_gradient(const T* params, const std::vector<MoleculeInput>& mols,
                                                      std::uint64_t seed, double* grad) {
  const int B = int(mols.size());
  if (B < 1) throw std::invalid_argument("an empty batch");
  const std::size_t P = flow_.parameter_count();
  // A molecule's cost grows with its edges: atoms².
  std::vector<double> cost(B);
  for (int b = 0; b < B; ++b) cost[b] = double(mols[b].atoms()) * mols[b].atoms();
  std::vector<SampleLoss> res;
  MoleculeBatchLoss L;
  L.shards = distributed_gradient_sum(*comm_, B, P, threads_, group_grad_, grad, res, cost,
                                      [&](int b, int thread, double* acc, SampleLoss& out) {
    Rng rng = Rng(seed).split(std::uint64_t(b));
    const MoleculeNoise noise = flow_.draw_noise(mols[b].atoms(), rng);
    const MoleculeGradientResult r = flow_.gradient(params, mols[b], noise, 1.0 / B, scratch_[thread], acc);
    const auto& ode = r.likelihood.ode;
    if (!ode.solve.ok()) throw std::runtime_error("molecule " + std::to_string(b) + ": " + ode.solve.message);
    if (!r.backward.ok())
      throw std::runtime_error("molecule " + std::to_string(b) + " (gradient): " + r.backward.message);
    out = {r.loss, r.likelihood.nll(), ode.kinetic + ode.frobenius, ode.solve.stats.nfe, r.backward.stats.nfe,
           r.seconds_forward, r.seconds_backward, r.reconstruction_error};
  });
  for (const SampleLoss& r : res) {
    L.add(r, B);
    L.max_reconstruction_error = std::max(L.max_reconstruction_error, r.reconstruction_error);
  }
  return L;
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
  int finished = 0;
  std::atomic<bool> failed{false};
  parallel_for(int(atoms.size()), threads_, [&](int b, int thread) {
    if (failed || stop()) return;
    Rng rng = Rng(seed).split(first + std::uint64_t(b));
    typename MoleculeFlow<T>::Sample s = flow_.sample(params, atoms[b], rng, scratch_[thread]);
    if (!s.solve.ok()) throw std::runtime_error("sample " + std::to_string(first + b) + ": " + s.solve.message);
    MoleculeScore score;
    if (score_draws > 0) {
      // As molecule_input() of the written molecule: the same centred
      // positions and types, so the score is the one enf score would give.
      MoleculeInput in{s.x, s.types};
      remove_centre_of_mass(in.x, 1, in.atoms(), 3, 3);
      score = score_one(params, in, first + std::uint64_t(b), score_draws, score_seed, thread);
    }
    handed_over(failed, [&] {
      ++finished;
      done(b, std::move(s), score_draws > 0 ? &score : nullptr);
    });
  });
  return finished;
}

template class MoleculeBatch<float>;
template class MoleculeBatch<double>;

}  // namespace enf
