#include "engine/statistics.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace enf {

MeanError mean_standard_error(const std::vector<double>& v) {
  MeanError m;
  if (v.empty()) return m;
  const double n = double(v.size()), dof = double(std::max<std::size_t>(1, v.size() - 1));
  double var = 0;
  for (double x : v) m.mean += x / n;
  for (double x : v) var += (x - m.mean) * (x - m.mean) / dof;
  m.error = std::sqrt(var / n);
  return m;
}

double kish_ess_fraction(const std::vector<double>& log_weights) {
  if (log_weights.empty()) return 0;
  double top = -INFINITY;
  for (double lw : log_weights) top = std::max(top, lw);
  double sw = 0, sw2 = 0;
  for (double lw : log_weights) {
    const double w = std::isfinite(lw) ? std::exp(lw - top) : 0.0;
    sw += w;
    sw2 += w * w;
  }
  return sw2 > 0 ? sw * sw / sw2 / double(log_weights.size()) : 0;
}

std::vector<double> boltzmann_log_weights(const std::vector<double>& energies, const std::vector<double>& log_q) {
  if (energies.size() != log_q.size())
    throw std::invalid_argument("boltzmann_log_weights: " + std::to_string(energies.size()) + " energies but " +
                                std::to_string(log_q.size()) + " log-densities");
  std::vector<double> lw(energies.size());
  for (std::size_t b = 0; b < lw.size(); ++b) lw[b] = -energies[b] - log_q[b];
  return lw;
}

std::vector<double> pair_distances(const std::vector<double>& x, int rows, int n, int dim) {
  std::vector<double> d;
  d.reserve(std::size_t(rows) * std::size_t(n) * std::size_t(std::max(0, n - 1)) / 2);
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j) {
        double s = 0;
        for (int k = 0; k < dim; ++k) {
          const double v = x[(std::size_t(r) * n + i) * dim + k] - x[(std::size_t(r) * n + j) * dim + k];
          s += v * v;
        }
        d.push_back(std::sqrt(s));
      }
  return d;
}

}  // namespace enf
