// Trainer (trainer.hpp): one optimisation step of the particle flow.
#include "engine/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <span>
#include <utility>

namespace enf {

void fill_step_report(StepReport& r, const FlowMatchingLoss& L, std::chrono::steady_clock::time_point t0,
                      std::chrono::steady_clock::time_point t1, std::chrono::steady_clock::time_point t2) {
  r.loss = L.loss;
  r.shards = L.shards;
  r.nfe_forward = r.nfe_backward = L.evaluations;
  r.seconds_forward = std::chrono::duration<double>(t1 - t0).count();  // coupling, evaluation and reverse pass
  r.seconds_optimizer = std::chrono::duration<double>(t2 - t1).count();
  r.seconds_total = std::chrono::duration<double>(t2 - t0).count();
}

void fill_step_report(StepReport& r, const BatchLoss& L, std::chrono::steady_clock::time_point t0,
                      std::chrono::steady_clock::time_point t1, std::chrono::steady_clock::time_point t2) {
  r.loss = L.loss;
  r.nll = L.nll;
  r.regularization = L.regularization;
  r.nfe_forward = L.nfe_forward;
  r.nfe_backward = L.nfe_backward;
  r.shards = L.shards;
  const double grad_wall = std::chrono::duration<double>(t1 - t0).count();
  const double cpu = L.cpu_seconds_forward + L.cpu_seconds_backward;
  r.seconds_forward = cpu > 0 ? grad_wall * L.cpu_seconds_forward / cpu : 0;
  r.seconds_backward = grad_wall - r.seconds_forward;
  r.seconds_optimizer = std::chrono::duration<double>(t2 - t1).count();
  r.seconds_total = std::chrono::duration<double>(t2 - t0).count();
}

template <class T>
Trainer<T>::Trainer(const FieldConfig& field, const CnfOptions& cnf, const AdamWOptions& adam, Parameters<double> init,
                    int threads, bool clip_gradients)
    : TrainerCore(std::move(init), adam, clip_gradients),
      field_(field, master_.layout),
      cnf_(field_, cnf),
      flow_(cnf_, threads),
      matching_(field_, threads) {}

double TrainerCore::apply_gradient(AlignedVector<double>& grad, std::size_t clipped, StepReport& r) {
  const std::size_t m = std::min(clipped, grad.size());
  double sq = 0, sq_clipped = 0;
  for (std::size_t k = 0; k < grad.size(); ++k) {
    sq += grad[k] * grad[k];
    if (k + 1 == m) sq_clipped = sq;
  }
  r.grad_norm = std::sqrt(sq);
  if (clip_) {
    clipper_.clip(std::span<double>(grad.data(), m));
    r.clipped = clipper_.last_clipped();
  }
  adam_.step(master_.values, grad);
  return std::sqrt(sq_clipped);
}

template <class T>
StepReport Trainer<T>::step(const std::vector<double>& x, int B, int n, std::uint64_t seed) {
  StepReport r;
  take_step<T>(r, [&](const T* p, double* grad) { return flow_.loss_and_gradient(p, x, B, n, seed, grad); });
  return r;
}

template <class T>
StepReport Trainer<T>::step_flow_matching(const FlowMatchingOptions& o, const std::vector<double>& x, int B, int n,
                                          std::uint64_t seed) {
  StepReport r;
  take_step<T>(r, [&](const T* p, double* grad) {
    Rng rng(seed);
    const FlowMatchingBatch batch =
        make_flow_matching_batch(o, x, B, n, field_.dim(), field_.channels(), rng, flow_.threads());
    return matching_.loss_and_gradient(p, batch, grad);
  });
  return r;
}

template class Trainer<float>;
template class Trainer<double>;

}  // namespace enf
