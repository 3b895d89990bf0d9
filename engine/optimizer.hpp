// AdamW with AMSGrad (PyTorch's torch.optim.AdamW(amsgrad=True) step for
// step), and the reference's adaptive gradient-norm clipping for QM9:
// clip at 1.5 × mean + 2 × std of the last 50 (clipped) norms.
#pragma once

#include <deque>
#include <span>
#include <string>
#include <vector>

namespace enf {

struct AdamWOptions {
  double lr = 5e-4;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-12;  // the reference's default
  bool amsgrad = true;
  std::string validate() const;
};

class AdamW {
 public:
  AdamW(std::size_t size, AdamWOptions opt);
  // One update of params (double or float buffer mirrored in double) from grad.
  void step(std::span<double> params, std::span<const double> grad);
  long steps() const { return t_; }
  const AdamWOptions& options() const { return opt_; }

  // State for checkpoints: m, v, v_max and the step count.
  const std::vector<double>& m() const { return m_; }
  const std::vector<double>& v() const { return v_; }
  const std::vector<double>& v_max() const { return vmax_; }
  void restore(long steps, std::vector<double> m, std::vector<double> v, std::vector<double> v_max);

 private:
  AdamWOptions opt_;
  long t_ = 0;
  std::vector<double> m_, v_, vmax_;
};

// An exponential moving average of the weights (Polyak averaging): what a
// flow-matching run validates and saves, since the regression loss is noisy
// step to step. The decay warms up as min(decay, (1 + t) / (10 + t)), t the
// updates so far, so that an early average does not keep the random
// initialisation for thousands of steps (the warm-up of EMA in EDM and EFM).
class WeightAverage {
 public:
  // decay in [0, 1): 0 keeps the latest weights (no averaging).
  WeightAverage(double decay, std::vector<double> initial);
  void update(std::span<const double> weights);
  double decay() const { return decay_; }
  long updates() const { return t_; }
  const std::vector<double>& values() const { return avg_; }
  void restore(long updates, std::vector<double> values);

 private:
  double decay_;
  long t_ = 0;
  std::vector<double> avg_;
};

// The reference's gradient clipping (utils.gradient_clipping): the allowed
// norm is 1.5·mean + 2·std (population) of a queue of the last 50 norms,
// seeded with `initial` (3000 in main_qm9.py). Returns the norm before clipping.
class GradientClipper {
 public:
  explicit GradientClipper(double initial = 3000, std::size_t max_len = 50);
  double max_norm() const;
  // Scales grad by max_norm / (norm + 1e-6) when norm > max_norm (as
  // torch.nn.utils.clip_grad_norm_), then records min(norm, max_norm).
  double clip(std::span<double> grad);
  bool last_clipped() const { return last_clipped_; }

  // State for checkpoints: the queue of recent norms, newest first.
  std::vector<double> history() const { return {queue_.begin(), queue_.end()}; }
  void restore(const std::vector<double>& history);

 private:
  std::deque<double> queue_;
  std::size_t max_len_;
  bool last_clipped_ = false;
};

}  // namespace enf
