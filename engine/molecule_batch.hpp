// Molecules through the QM9 flow on the one batch path (SampleBatch): an
// item is dequantization, ActNorm and p(N) around the CNF. Molecule b draws
// its noise from Rng(seed).split(b), so its result depends on neither the
// batch nor the thread count; gradients are summed in a fixed order.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "datasets/molecule.hpp"
#include "engine/molecule_flow.hpp"
#include "engine/sample_batch.hpp"

namespace enf {

// Centred positions and type indices of a molecule (throws naming it when an
// element is not H, C, N, O, F).
MoleculeInput molecule_input(const Molecule& m);

struct MoleculeScore {
  double log_p = 0;          // mean over the draws of the ELBO log p(x, h, N)
  double log_p_iw = 0;       // log-mean-exp over the draws (the importance-weighted bound; = log_p for 1 draw)
  MoleculeLikelihood first;  // every term of the first draw
  long nfe = 0;              // summed over the draws
  // p(N) = 0 for its atom count: not integrated (log_p = log_p_iw = −inf,
  // first holds only atoms and log_pN); callers report it and leave it out of
  // means, which it would make −inf or NaN.
  bool impossible_size = false;
};

template <class T>
class MoleculeBatch {
 public:
  MoleculeBatch(const MoleculeFlow<T>& flow, int threads = 0) : flow_(flow), batch_(threads) {}
  int threads() const { return batch_.threads(); }
  const MoleculeFlow<T>& flow() const { return flow_; }
  // The ranks loss_and_gradient shares its molecules with (single_process()
  // by default), balanced by their cost (atoms²).
  void set_communicator(Communicator& comm) { batch_.set_communicator(comm); }
  // Whether molecules with p(N) = 0 are integrated all the same (default:
  // not, see MoleculeScore::impossible_size). Validation needs their
  // −log p(x, h | N), which does not involve p(N).
  void integrate_impossible_sizes(bool on) { integrate_impossible_ = on; }

  // Told the count of finished molecules, from one thread at a time.
  using Progress = std::function<void(int)>;

  // log p(x, h, N) of every molecule over `draws` dequantization draws.
  // done(count) is called (from one thread at a time) as molecules finish.
  std::vector<MoleculeScore> score(const T* params, const std::vector<MoleculeInput>& mols, int draws,
                                   std::uint64_t seed, const Progress& done);

  // Mean loss over the batch and its gradient (added to grad, whole layout).
  BatchLoss loss_and_gradient(const T* params, const std::vector<MoleculeInput>& mols, std::uint64_t seed,
                                      double* grad);

  // One molecule per entry of `atoms` (its atom count).
  std::vector<typename MoleculeFlow<T>::Sample> sample(const T* params, const std::vector<int>& atoms,
                                                       std::uint64_t seed, const Progress& done);

  // Streaming forms of score and sample, for commands that write each result
  // as it is ready and stop on Ctrl-C. Molecule b gives the same result as
  // in the batch forms. stop() is asked before each molecule is started: once
  // it is true no further molecule starts, and those in progress finish.
  // done(b, result) is called from one thread at a time (any order of b; the
  // caller restores the order it wants). Return the count of molecules done.
  // first: the index of mols[0] / atoms[0] in the whole job (a rank's share
  // starts there): molecule b draws its noise as molecule first + b would.
  using Stop = std::function<bool()>;
  int score_each(const T* params, const std::vector<MoleculeInput>& mols, int draws, std::uint64_t seed,
                 const Stop& stop, const std::function<void(int, MoleculeScore&&)>& done, std::uint64_t first = 0);
  // Each sample, and with score_draws > 0 its score (as score() of the
  // centred sample with seed score_seed; empty without), in the same worker.
  using SampleDone = std::function<void(int, typename MoleculeFlow<T>::Sample&&, MoleculeScore*)>;
  int sample_each(const T* params, const std::vector<int>& atoms, std::uint64_t seed, int score_draws,
                  std::uint64_t score_seed, const Stop& stop, const SampleDone& done, std::uint64_t first = 0);

 private:
  using Scratch = typename MoleculeFlow<T>::Scratch;
  MoleculeScore score_one(const T* params, const MoleculeInput& mol, std::uint64_t b, int draws, std::uint64_t seed,
                          Scratch& s) const;

  const MoleculeFlow<T>& flow_;
  SampleBatch<Scratch> batch_;
  bool integrate_impossible_ = false;
};

// Compiled once, in molecule_batch.cpp.
extern template class MoleculeBatch<float>;
extern template class MoleculeBatch<double>;

}  // namespace enf
