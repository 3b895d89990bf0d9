// A batch of independent samples through the CNF, one solve each, run by
// SampleBatch (engine/sample_batch.hpp): each integrates with its own
// adaptive steps and draws its own noise from Rng(seed).split(index), so its
// result depends on neither the batch it came in nor the thread count;
// gradients are summed in a fixed order.
//
// Layout: x [B, n, C] node-major (positions first in each node's C channels).
// Positions are centred (centre of mass removed) on the way in.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "egnn/vector_field.hpp"
#include "engine/cnf.hpp"
#include "engine/rng.hpp"
#include "engine/sample_batch.hpp"

namespace enf {

// Removes the centre of mass of the positions of each of the B samples.
void remove_centre_of_mass(std::vector<double>& x, int B, int n, int dim, int channels);

// ε for one sample: Rademacher or Gaussian (per the estimator), n·C values;
// Rademacher when the trace is exact (only the Frobenius regularizer uses it).
std::vector<double> draw_noise(TraceEstimator trace, int size, Rng& rng);
// Item `index`'s ε of a job with `seed`: from Rng(seed).split(index), empty
// when the CNF's options need none.
std::vector<double> draw_noise(const CnfOptions& o, int size, std::uint64_t seed, std::uint64_t index);

// One sample's share of a batch's loss and gradient: cnf.gradient with
// weight 1/B (added to acc) and the SampleLoss the batch sums; a failed
// solve throws naming the sample `what`. The one per-sample step of every
// batch whose samples are single CNF solves (BatchFlow, ConformerFlow).
template <class Field>
SampleLoss sample_gradient(const Cnf<Field>& cnf, const typename Field::Scalar* params, const std::vector<double>& x,
                           int n, const std::vector<double>& eps, int B, typename Cnf<Field>::Scratch& s, double* acc,
                           const std::string& what);

// Samples per lockstep group for graphs of n nodes: about 512 edges stacked
// (a power of two of samples, at most 64). Measured with enf bench sample
// (dopri5 1e-4, 1000 draws, float32, 2 threads, random E-NF models): DW4 ran
// at 49 GFLOP/s one by one, 68–71 with groups of 4 to 32, 52–54 with 64 or
// 128; LJ13 at 62 one by one and with groups up to 8 (1248 edges), 60 with 16,
// 45 with 32 or more: a stage's matrices then outgrow the caches and the
// elementwise passes over them cost more than the larger products save.
inline int lockstep_group(int n) {
  const long edges = long(n) * (n - 1);
  int group = 1;
  while (group < 64 && 2 * group * edges <= 512) group *= 2;
  return group;
}

template <class Field>
class BatchFlow {
 public:
  using T = typename Field::Scalar;

  BatchFlow(const Cnf<Field>& cnf, int threads = 0) : cnf_(cnf), batch_(threads) {}
  int threads() const { return batch_.threads(); }
  // The ranks loss_and_gradient shares its samples with (single_process() by default).
  void set_communicator(Communicator& comm) { batch_.set_communicator(comm); }

  // log p(x) and z(1) of each sample. Throws naming the sample when a solve fails.
  std::vector<ForwardResult> log_likelihood(const T* params, std::vector<double> x, int B, int n, std::uint64_t seed);

  // The same, streamed: stop() is asked before each lockstep group starts
  // (true: no further group starts; those in progress finish), done(b,
  // result) is called from one thread at a time, in any order of b. Returns
  // the count done. first: the index of x's first structure in the whole job
  // (a rank's share starts there): structure b draws its noise as structure
  // first + b would.
  //
  // Solved in lockstep groups (Cnf::forward_lockstep), as sample() is: the
  // job's structures k·G .. (k+1)·G − 1, G = likelihood_group(n), share
  // their stages' field evaluations; each keeps its own steps and its result
  // is the one it has alone, to rounding, the same bits for any thread count.
  int log_likelihood_each(const T* params, std::vector<double> x, int B, int n, std::uint64_t seed,
                          const std::function<bool()>& stop, const std::function<void(int, ForwardResult&&)>& done,
                          std::uint64_t first = 0);

  // The same structures solved one by one (Cnf::forward): the slow, obvious
  // path, kept as the reference the lockstep one is tested and timed against.
  std::vector<ForwardResult> log_likelihood_alone(const T* params, std::vector<double> x, int B, int n,
                                                  std::uint64_t seed, std::uint64_t first = 0);

  // Structures per lockstep group of log_likelihood_each for graphs of n nodes.
  int likelihood_group(int n) const;

  // B samples: z ~ prior (centre-of-mass free), integrated from t = 1 to 0.
  // nfe (when given) receives the field evaluations summed over the samples;
  // sample b is the job's sample first + b (its noise).
  //
  // Solved in lockstep groups (Cnf::reverse_lockstep): the job's samples
  // k·G .. (k+1)·G − 1, G = lockstep_group(n), share their stages' field
  // evaluations, and the groups run over the threads. Each sample keeps its
  // own steps: its result is the one it has alone, to rounding. Its bits
  // depend on its group's members (the stacked products' rounding), which the
  // job's indices fix: the same bits for any thread count, and for any
  // split over ranks in whole groups (shard_of_groups, communicator.hpp).
  std::vector<double> sample(const T* params, int B, int n, std::uint64_t seed, long* nfe = nullptr,
                             std::uint64_t first = 0);
  // The same samples solved one by one (Cnf::reverse): the slow, obvious
  // path, kept as the reference the lockstep one is tested and timed against.
  std::vector<double> sample_alone(const T* params, int B, int n, std::uint64_t seed, long* nfe = nullptr,
                                   std::uint64_t first = 0);

  // Mean loss and its gradient (added to grad, P values), by the CNF's gradient mode.
  BatchLoss loss_and_gradient(const T* params, std::vector<double> x, int B, int n, std::uint64_t seed, double* grad);

 private:
  using Scratch = typename Cnf<Field>::Scratch;
  const Cnf<Field>& cnf_;
  SampleBatch<Scratch> batch_;

  // first: the index of x[0] in the job (named in the messages).
  void check(const std::vector<double>& x, int B, int n, std::uint64_t first = 0) const;
};

// Compiled once, in flow.cpp.
extern template SampleLoss sample_gradient(const Cnf<VectorField<float>>&, const float*, const std::vector<double>&,
                                          int, const std::vector<double>&, int, Cnf<VectorField<float>>::Scratch&,
                                          double*, const std::string&);
extern template SampleLoss sample_gradient(const Cnf<VectorField<double>>&, const double*, const std::vector<double>&,
                                          int, const std::vector<double>&, int, Cnf<VectorField<double>>::Scratch&,
                                          double*, const std::string&);
extern template class BatchFlow<VectorField<float>>;
extern template class BatchFlow<VectorField<double>>;

}  // namespace enf
