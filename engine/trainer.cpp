// Trainer (trainer.hpp): one optimisation step of the particle flow.
#include "engine/trainer.hpp"

#include <cmath>

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
    : master_(std::move(init)),
      field_(field, master_.layout),
      cnf_(field_, cnf),
      flow_(cnf_, threads),
      matching_(field_, threads),
      adam_(master_.values.size(), adam),
      clip_(clip_gradients) {}

// Norm, clipping and the optimizer's update: the end of every step.
void apply_gradient(AlignedVector<double>& grad, bool clip, GradientClipper& clipper, AdamW& adam,
                    AlignedVector<double>& params, StepReport& r) {
  double sq = 0;
  for (double g : grad) sq += g * g;
  r.grad_norm = std::sqrt(sq);
  if (clip) {
    clipper.clip(grad);
    r.clipped = clipper.last_clipped();
  }
  adam.step(params, grad);
}

template <class T>
StepReport Trainer<T>::step(const std::vector<double>& x, int B, int n, std::uint64_t seed) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const Parameters<T> p = master_.template cast<T>();
  AlignedVector<double> grad(master_.values.size(), 0.0);
  const BatchLoss L = flow_.loss_and_gradient(p.values.data(), x, B, n, seed, grad.data());
  const auto t1 = Clock::now();
  StepReport r;
  apply_gradient(grad, clip_, clipper_, adam_, master_.values, r);
  fill_step_report(r, L, t0, t1, Clock::now());
  return r;
}

template <class T>
StepReport Trainer<T>::step_flow_matching(const FlowMatchingOptions& o, const std::vector<double>& x, int B, int n,
                                          std::uint64_t seed) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  Rng rng(seed);
  const FlowMatchingBatch batch = make_flow_matching_batch(o, x, B, n, field_.dim(), field_.channels(), rng, flow_.threads());
  const Parameters<T> p = master_.template cast<T>();
  AlignedVector<double> grad(master_.values.size(), 0.0);
  const FlowMatchingLoss L = matching_.loss_and_gradient(p.values.data(), batch, grad.data());
  const auto t1 = Clock::now();
  StepReport r;
  apply_gradient(grad, clip_, clipper_, adam_, master_.values, r);
  fill_step_report(r, L, t0, t1, Clock::now());
  return r;
}

template class Trainer<float>;
template class Trainer<double>;

}  // namespace enf
