#include "engine/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <utility>

namespace enf {

std::string AdamWOptions::validate() const {
  if (!(lr > 0)) return "learning rate must be positive";
  if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) return "betas must lie in [0, 1)";
  if (!(eps > 0)) return "eps must be positive";
  if (!(weight_decay >= 0)) return "weight decay must be non-negative";
  return {};
}

WeightAverage::WeightAverage(double decay, std::vector<double> initial) : decay_(decay), avg_(std::move(initial)) {
  if (!(decay >= 0 && decay < 1)) throw std::invalid_argument("weight average: decay must lie in [0, 1)");
}

void WeightAverage::update(std::span<const double> w) {
  if (w.size() != avg_.size()) throw std::invalid_argument("weight average: the weights' size differs from the average's");
  const double d = std::min(decay_, double(t_) / (10.0 + double(t_)));
  ++t_;
  for (std::size_t k = 0; k < w.size(); ++k) avg_[k] = d * avg_[k] + (1 - d) * w[k];
}

void WeightAverage::restore(long updates, std::vector<double> values) {
  if (values.size() != avg_.size())
    throw std::invalid_argument("weight average: the saved average's size differs from the model's");
  t_ = updates;
  avg_ = std::move(values);
}

AdamW::AdamW(std::size_t size, AdamWOptions opt) : opt_(opt), m_(size, 0.0), v_(size, 0.0), vmax_(size, 0.0) {
  if (auto e = opt_.validate(); !e.empty()) throw std::invalid_argument("optimizer: " + e);
}

void AdamW::step(std::span<double> p, std::span<const double> g) {
  if (p.size() != m_.size() || g.size() != m_.size())
    throw std::invalid_argument("optimizer: parameter and gradient sizes differ from the optimizer's");
  ++t_;
  const double b1 = opt_.beta1, b2 = opt_.beta2;
  const double bc1 = 1 - std::pow(b1, double(t_)), bc2 = 1 - std::pow(b2, double(t_));
  const double step = opt_.lr / bc1, decay = 1 - opt_.lr * opt_.weight_decay, sqrt_bc2 = std::sqrt(bc2);
  for (std::size_t k = 0; k < p.size(); ++k) {
    p[k] *= decay;  // decoupled weight decay
    m_[k] = b1 * m_[k] + (1 - b1) * g[k];
    v_[k] = b2 * v_[k] + (1 - b2) * g[k] * g[k];
    double second = v_[k];
    if (opt_.amsgrad) second = vmax_[k] = std::max(vmax_[k], v_[k]);
    p[k] -= step * m_[k] / (std::sqrt(second) / sqrt_bc2 + opt_.eps);
  }
}

void AdamW::restore(long steps, std::vector<double> m, std::vector<double> v, std::vector<double> v_max) {
  if (m.size() != m_.size() || v.size() != m_.size() || v_max.size() != m_.size())
    throw std::invalid_argument("optimizer state has the wrong size");
  t_ = steps;
  m_ = std::move(m);
  v_ = std::move(v);
  vmax_ = std::move(v_max);
}

GradientClipper::GradientClipper(double initial, std::size_t max_len) : max_len_(max_len) {
  queue_.push_front(initial);
}

double GradientClipper::max_norm() const {
  const double n = double(queue_.size());
  const double mean = std::accumulate(queue_.begin(), queue_.end(), 0.0) / n;
  double var = 0;
  for (double x : queue_) var += (x - mean) * (x - mean) / n;
  return 1.5 * mean + 2 * std::sqrt(var);
}

double GradientClipper::clip(std::span<double> g) {
  const double allowed = max_norm();
  double sq = 0;
  for (double x : g) sq += x * x;
  const double norm = std::sqrt(sq);
  last_clipped_ = norm > allowed;
  if (last_clipped_) {
    const double scale = allowed / (norm + 1e-6);
    for (double& x : g) x *= scale;
  }
  queue_.push_front(last_clipped_ ? allowed : norm);
  if (queue_.size() > max_len_) queue_.pop_back();
  return norm;
}

void GradientClipper::restore(const std::vector<double>& history) {
  if (history.empty() || history.size() > max_len_)
    throw std::invalid_argument("gradient clipper state: expected 1 to " + std::to_string(max_len_) + " norms, got " +
                                std::to_string(history.size()));
  queue_.assign(history.begin(), history.end());
}

}  // namespace enf
