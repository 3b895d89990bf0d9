// A batch of independent samples through the CNF, in parallel over threads.
// Each sample integrates with its own adaptive steps and draws its own noise
// from Rng(seed).split(index), so its result depends on neither the batch it
// came in nor the thread count; gradients are summed in a fixed order.
//
// Layout: x [B, n, C] node-major (positions first in each node's C channels).
// Positions are centred (centre of mass removed) on the way in.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "egnn/communicator.hpp"
#include "egnn/distributed_sum.hpp"
#include "egnn/vector_field.hpp"
#include "engine/cnf.hpp"
#include "engine/rng.hpp"

namespace enf {

// Removes the centre of mass of the positions of each of the B samples.
void remove_centre_of_mass(std::vector<double>& x, int B, int n, int dim, int channels);

// ε for one sample: Rademacher or Gaussian (per the estimator), n·C values;
// Rademacher when the trace is exact (only the Frobenius regularizer uses it).
std::vector<double> draw_noise(TraceEstimator trace, int size, Rng& rng);

// What one sample of a training batch reports (it travels between ranks as bytes).
struct SampleLoss {
  double loss = 0;            // its weighted loss, already divided by B
  double nll = 0;             // its −log p
  double regularization = 0;  // its K + R
  long nfe_forward = 0, nfe_backward = 0;
  double seconds_forward = 0, seconds_backward = 0;  // CPU time of its solves
  double reconstruction_error = 0;  // of the continuous adjoint's backward solve (0: discrete gradient)
};

// A batch's loss: particles' (BatchFlow) and, with more, molecules' (MoleculeBatch).
struct BatchLoss {
  double loss = 0;  // mean over samples of −log p(x) + λ(K + R)
  double nll = 0;   // mean −log p(x)
  double regularization = 0;  // mean K + R
  long nfe_forward = 0, nfe_backward = 0;  // summed over samples
  double cpu_seconds_forward = 0, cpu_seconds_backward = 0;  // summed over samples (all threads)

  ShardTiming shards;  // where the gradient's time went, per rank (distributed_sum.hpp)

  // Adds one of B samples.
  void add(const SampleLoss& s, int B);
};

// One sample's share of a batch's loss and gradient: cnf.gradient with
// weight 1/B (added to acc) and the SampleLoss the batch sums; a failed
// solve throws naming the sample `what`. The one per-sample step of every
// batch whose samples are single CNF solves (BatchFlow, ConformerFlow).
template <class Field>
SampleLoss sample_gradient(const Cnf<Field>& cnf, const typename Field::Scalar* params, const std::vector<double>& x,
                           int n, const std::vector<double>& eps, int B, typename Cnf<Field>::Scratch& s, double* acc,
                           const std::string& what);

template <class Field>
class BatchFlow {
 public:
  using T = typename Field::Scalar;

  BatchFlow(const Cnf<Field>& cnf, int threads = 0);
  int threads() const { return threads_; }
  // The ranks loss_and_gradient shares its samples with (single_process() by default).
  void set_communicator(Communicator& comm) { comm_ = &comm; }

  // log p(x) and z(1) of each sample. Throws naming the sample when a solve fails.
  std::vector<ForwardResult> log_likelihood(const T* params, std::vector<double> x, int B, int n, std::uint64_t seed);

  // The same, streamed: stop() is asked before each sample starts (true: no
  // further sample starts; those in progress finish), done(b, result) is
  // called from one thread at a time, in any order of b. Returns the count done.
  // first: the index of x's first structure in the whole job (a rank's share
  // starts there): structure b draws its noise as structure first + b would.
  int log_likelihood_each(const T* params, std::vector<double> x, int B, int n, std::uint64_t seed,
                          const std::function<bool()>& stop, const std::function<void(int, ForwardResult&&)>& done,
                          std::uint64_t first = 0);

  // B samples: z ~ prior (centre-of-mass free), integrated from t = 1 to 0.
  // nfe (when given) receives the field evaluations summed over the samples;
  // sample b is the job's sample first + b (its noise).
  std::vector<double> sample(const T* params, int B, int n, std::uint64_t seed, long* nfe = nullptr,
                             std::uint64_t first = 0);

  // Mean loss and its gradient (added to grad, P values), by the CNF's gradient mode.
  BatchLoss loss_and_gradient(const T* params, std::vector<double> x, int B, int n, std::uint64_t seed, double* grad);

 private:
  const Cnf<Field>& cnf_;
  int threads_;
  Communicator* comm_ = &single_process();
  std::vector<typename Cnf<Field>::Scratch> scratch_;
  std::vector<std::vector<double>> group_grad_;

  std::vector<double> noise(int S, Rng& rng) const;
  // first: the index of x[0] in the job (named in the messages).
  void check(const std::vector<double>& x, int B, int n, std::uint64_t first = 0) const;
  template <class Fn>
  void run(int B, Fn fn);
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
