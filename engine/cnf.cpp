// The CNF's names, options and prior (its members: cnf_*_impl.hpp).
#include "engine/cnf.hpp"

#include <cmath>
#include <numbers>
#include <stdexcept>

namespace enf {

std::string to_string(TraceEstimator t) {
  switch (t) {
    case TraceEstimator::Exact: return "exact";
    case TraceEstimator::Rademacher: return "rademacher";
    case TraceEstimator::Gaussian: return "gaussian";
  }
  return "?";
}

TraceEstimator parse_trace_estimator(const std::string& name) {
  if (name == "exact") return TraceEstimator::Exact;
  if (name == "rademacher" || name == "hutchinson") return TraceEstimator::Rademacher;
  if (name == "gaussian") return TraceEstimator::Gaussian;
  throw std::invalid_argument("unknown trace estimator '" + name + "' (use exact, rademacher or gaussian)");
}

std::string to_string(GradientMode m) { return m == GradientMode::Adjoint ? "adjoint" : "discrete"; }

GradientMode parse_gradient_mode(const std::string& name) {
  if (name == "adjoint") return GradientMode::Adjoint;
  if (name == "discrete") return GradientMode::Discrete;
  throw std::invalid_argument("unknown gradient mode '" + name + "' (use adjoint or discrete)");
}

std::string CnfOptions::validate() const {
  if (!(ode_regularization >= 0)) return "ode_regularization must be non-negative";
  if (auto e = ode::validate(solver); !e.empty()) return "solver: " + e;
  if (auto e = ode::validate(adjoint_solver); !e.empty()) return "adjoint solver: " + e;
  if (gradient == GradientMode::Discrete && solver.method != ode::Method::Dopri5 && solver.method != ode::Method::RK4 &&
      solver.method != ode::Method::Euler)
    return "the discrete gradient replays dopri5, rk4 or euler steps, not " + ode::to_string(solver.method);
  return {};
}

LogPrior log_prior_parts(const std::vector<double>& z, int n, int dim, int channels) {
  const double log2pi = std::log(2 * std::numbers::pi);
  double sq_x = 0, sq_h = 0;
  for (int i = 0; i < n; ++i) {
    for (int d = 0; d < dim; ++d) sq_x += z[i * channels + d] * z[i * channels + d];
    for (int c = dim; c < channels; ++c) sq_h += z[i * channels + c] * z[i * channels + c];
  }
  LogPrior p;
  p.positions = -0.5 * sq_x - 0.5 * (n - 1) * dim * log2pi;
  p.features = -0.5 * sq_h - 0.5 * n * (channels - dim) * log2pi;
  return p;
}

double log_prior(const std::vector<double>& z, int n, int dim, int channels) {
  const LogPrior p = log_prior_parts(z, n, dim, channels);
  return p.positions + p.features;
}

}  // namespace enf
