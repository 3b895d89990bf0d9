#include "datasets/energies.hpp"

#include "datasets/systems.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace enf {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Shared by energy() and energy_and_forces(): with f == nullptr the gradient
// is skipped, so the Metropolis inner loop pays for energies only.
double double_well(const double* x, double* f) {
  const DoubleWellParams p;
  constexpr int n = 4, D = 2;
  if (f)
    for (int k = 0; k < n * D; ++k) f[k] = 0;
  double e = 0;
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      const double dx = x[i * D] - x[j * D], dy = x[i * D + 1] - x[j * D + 1];
      const double d = std::sqrt(dx * dx + dy * dy), u = d - p.d0, u2 = u * u;
      e += p.a * u2 * u2 + p.b * u2 + p.c;
      if (f && d > 0) {
        const double g = (4 * p.a * u2 * u + 2 * p.b * u) / d;  // dE/dd · 1/d
        f[i * D] -= g * dx;
        f[i * D + 1] -= g * dy;
        f[j * D] += g * dx;
        f[j * D + 1] += g * dy;
      }
    }
  return e;
}

// Any n, D ≤ 3 (LJ13, LJ55): the same conventions for every cluster size.
double lennard_jones(const double* x, int n, int D, double* f, LJConvention conv) {
  const LennardJonesParams p;
  // Ordered counts each unordered pair twice; computing i<j once and scaling
  // keeps the two conventions exactly proportional in their pair terms.
  const double pair_factor = conv == LJConvention::Ordered ? 2.0 : 1.0;
  const double min_d2 = (kLJMinDistance * p.rm) * (kLJMinDistance * p.rm), rm2 = p.rm * p.rm;
  if (f)
    for (int k = 0; k < n * D; ++k) f[k] = 0;
  double pair = 0;
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      double d[3], d2 = 0;
      for (int k = 0; k < D; ++k) {
        d[k] = x[i * D + k] - x[j * D + k];
        d2 += d[k] * d[k];
      }
      if (!(d2 >= min_d2)) {  // also catches NaN coordinates
        if (f)
          for (int k = 0; k < n * D; ++k) f[k] = 0;
        return kInf;
      }
      const double s = rm2 / d2, s6 = s * s * s, s12 = s6 * s6;
      pair += s12 - 2 * s6;
      if (f) {
        // dU/dd · 1/d = 12 ε (s6 − s12) / d², U = ε(s12 − 2 s6).
        const double g = pair_factor * p.eps * 12 * (s6 - s12) / d2;
        for (int k = 0; k < D; ++k) {
          f[i * D + k] -= g * d[k];
          f[j * D + k] += g * d[k];
        }
      }
    }
  double mean[3] = {0, 0, 0};
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < D; ++k) mean[k] += x[i * D + k] / n;
  double harmonic = 0;
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < D; ++k) {
      const double c = x[i * D + k] - mean[k];
      harmonic += c * c;
      // x̄'s own dependence on x_i drops out because Σ_i (x_i − x̄) = 0.
      if (f) f[i * D + k] -= 2 * p.harmonic * c;
    }
  return pair_factor * p.eps * pair + p.harmonic * harmonic;
}

// The system's energy kind, or the error naming those with an energy.
SystemEnergy energy_kind(const ParticleSystem& sys) {
  const SystemInfo* info = find_system(sys.name);
  if (info && info->n == sys.n && info->dim == sys.dim && has_energy(*info) && sys.dim <= 3) return info->energy;
  std::string valid;
  for (const auto& s : systems())
    if (has_energy(s))
      valid += (valid.empty() ? "" : " or ") + s.name + " (" + std::to_string(s.n) + "×" + std::to_string(s.dim) + ")";
  throw std::invalid_argument("no energy for particle system '" + sys.name + "' (" + std::to_string(sys.n) + "×" +
                              std::to_string(sys.dim) + "); use " + valid);
}

double dispatch(const ParticleSystem& sys, const double* x, double* f, LJConvention lj) {
  if (energy_kind(sys) == SystemEnergy::DoubleWell) return double_well(x, f);
  return lennard_jones(x, sys.n, sys.dim, f, lj);
}

void check_rows(const ParticleSystem& sys, const std::vector<double>& x, int rows) {
  if (rows < 0 || x.size() != std::size_t(rows) * std::size_t(sys.n * sys.dim))
    throw std::invalid_argument(sys.name + " energies: " + std::to_string(x.size()) + " values do not hold " +
                                std::to_string(rows) + " rows of " + std::to_string(sys.n * sys.dim));
}

}  // namespace

double move_energy_change(const ParticleSystem& sys, const double* x, int i, const double* delta, LJConvention lj) {
  const SystemEnergy kind = energy_kind(sys);
  const int n = sys.n, D = sys.dim;
  if (i < 0 || i >= n)
    throw std::invalid_argument(sys.name + ": no particle " + std::to_string(i) + " (0.." + std::to_string(n - 1) + ")");
  double moved[3];
  for (int k = 0; k < D; ++k) moved[k] = x[i * D + k] + delta[k];
  auto d2_to = [&](const double* p, int j) {
    double d2 = 0;
    for (int k = 0; k < D; ++k) d2 += (p[k] - x[j * D + k]) * (p[k] - x[j * D + k]);
    return d2;
  };
  double change = 0;
  if (kind == SystemEnergy::DoubleWell) {
    const DoubleWellParams p;
    auto u = [&](double d2) {
      const double v = std::sqrt(d2) - p.d0, v2 = v * v;
      return p.a * v2 * v2 + p.b * v2;  // c cancels in the difference
    };
    for (int j = 0; j < n; ++j)
      if (j != i) change += u(d2_to(moved, j)) - u(d2_to(x + i * D, j));
    return change;
  }
  const LennardJonesParams p;
  const double min_d2 = (kLJMinDistance * p.rm) * (kLJMinDistance * p.rm), rm2 = p.rm * p.rm;
  auto u = [&](double d2) {
    const double s = rm2 / d2, s6 = s * s * s;
    return s6 * s6 - 2 * s6;
  };
  for (int j = 0; j < n; ++j) {
    if (j == i) continue;
    const double d2 = d2_to(moved, j);
    if (!(d2 >= min_d2)) return kInf;
    change += u(d2) - u(d2_to(x + i * D, j));
  }
  change *= (lj == LJConvention::Ordered ? 2.0 : 1.0) * p.eps;
  // Σ_j ‖x_j − x̄‖² after x_i += δ: the old sum + 2 δ·(x_i − x̄) + ‖δ‖²(1 − 1/n).
  double harmonic = 0;
  for (int k = 0; k < D; ++k) {
    double mean = 0;
    for (int j = 0; j < n; ++j) mean += x[j * D + k];
    mean /= n;
    harmonic += 2 * delta[k] * (x[i * D + k] - mean) + delta[k] * delta[k] * (1 - 1.0 / n);
  }
  return change + p.harmonic * harmonic;
}

LJConvention lj_convention(const std::string& name) {
  if (name == "ordered") return LJConvention::Ordered;
  if (name == "unordered") return LJConvention::Unordered;
  throw std::invalid_argument("unknown Lennard-Jones convention '" + name + "' (use ordered or unordered)");
}

const char* to_string(LJConvention c) { return c == LJConvention::Ordered ? "ordered" : "unordered"; }

double energy(const ParticleSystem& sys, const double* x, LJConvention lj) { return dispatch(sys, x, nullptr, lj); }

double energy_and_forces(const ParticleSystem& sys, const double* x, double* forces, LJConvention lj) {
  return dispatch(sys, x, forces, lj);
}

std::vector<double> energies(const ParticleSystem& sys, const std::vector<double>& x, int rows, LJConvention lj) {
  check_rows(sys, x, rows);
  const std::size_t S = std::size_t(sys.n) * sys.dim;
  std::vector<double> e(rows);
  for (int r = 0; r < rows; ++r) e[r] = dispatch(sys, x.data() + r * S, nullptr, lj);
  return e;
}

std::vector<double> energies_and_forces(const ParticleSystem& sys, const std::vector<double>& x, int rows,
                                        std::vector<double>& forces, LJConvention lj) {
  check_rows(sys, x, rows);
  const std::size_t S = std::size_t(sys.n) * sys.dim;
  forces.resize(x.size());
  std::vector<double> e(rows);
  for (int r = 0; r < rows; ++r) e[r] = dispatch(sys, x.data() + r * S, forces.data() + r * S, lj);
  return e;
}

MeanError mean_and_error(const std::vector<double>& v) {
  MeanError m;
  if (v.empty()) return m;
  for (double e : v) m.mean += e;
  m.mean /= double(v.size());
  if (v.size() < 2) return m;
  double ss = 0;
  for (double e : v) ss += (e - m.mean) * (e - m.mean);
  m.stddev = std::sqrt(ss / double(v.size() - 1));
  m.error = m.stddev / std::sqrt(double(v.size()));
  return m;
}

MeanError batch_means(const std::vector<double>& v, int series, int batches_per_series) {
  if (series < 1 || batches_per_series < 1 || series * batches_per_series < 2)
    throw std::invalid_argument("batch_means: need at least 2 batches (got " + std::to_string(series) + " series × " +
                                std::to_string(batches_per_series) + ")");
  const std::size_t base = v.size() / std::size_t(series), extra = v.size() % std::size_t(series);
  const std::size_t size = base / std::size_t(batches_per_series);
  if (size == 0)
    throw std::invalid_argument("batch_means: " + std::to_string(v.size()) + " values are too few for " +
                                std::to_string(series) + " series × " + std::to_string(batches_per_series) +
                                " batches");
  std::vector<double> means;
  std::size_t start = 0;
  for (std::size_t s = 0; s < std::size_t(series); ++s) {
    for (std::size_t b = 0; b < std::size_t(batches_per_series); ++b) {
      double m = 0;
      for (std::size_t k = 0; k < size; ++k) m += v[start + b * size + k];
      means.push_back(m / double(size));
    }
    start += base + (s < extra ? 1 : 0);
  }
  MeanError out = mean_and_error(means);
  out.stddev = mean_and_error(v).stddev;
  return out;
}

double integrated_autocorrelation_time(const std::vector<double>& v, int series, double c) {
  if (series < 1 || v.size() / std::size_t(series) < 2)
    throw std::invalid_argument("integrated_autocorrelation_time: " + std::to_string(v.size()) +
                                " values are too few for " + std::to_string(series) + " series");
  // Chains as batch_means lays them out: lengths differ by at most one, longer first.
  const std::size_t base = v.size() / std::size_t(series), extra = v.size() % std::size_t(series);
  std::vector<std::vector<double>> chains;
  for (std::size_t s = 0, start = 0; s < std::size_t(series); ++s) {
    const std::size_t len = base + (s < extra ? 1 : 0);
    std::vector<double> x(v.begin() + start, v.begin() + start + len);
    double m = 0;
    for (double e : x) m += e;
    m /= double(len);
    for (double& e : x) e -= m;
    chains.push_back(std::move(x));
    start += len;
  }
  auto autocovariance = [&](std::size_t t) {
    double sum = 0, count = 0;
    for (const auto& x : chains) {
      for (std::size_t i = 0; i + t < x.size(); ++i) sum += x[i] * x[i + t];
      count += double(x.size() > t ? x.size() - t : 0);
    }
    return count > 0 ? sum / count : 0.0;
  };
  const double c0 = autocovariance(0);
  if (!(c0 > 0)) throw std::invalid_argument("integrated_autocorrelation_time: the values do not vary");
  double tau = 1;
  for (std::size_t t = 1; t < base; ++t) {
    tau += 2 * autocovariance(t) / c0;
    if (double(t) >= c * tau) break;
  }
  return tau;
}

}  // namespace enf
