// The step arithmetic both solvers share (see rk_step.hpp: one definition, so
// that both round alike).
#include "ode/rk_step.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace enf::ode::detail {

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.12g", v);
  return buf;
}

bool all_finite(std::span<const double> v) {
  return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

void check_arguments(const SolverOptions& opt, double t0, double t1) {
  if (const std::string err = validate(opt); !err.empty()) throw std::invalid_argument("ODE solver options: " + err);
  if (!std::isfinite(t0) || !std::isfinite(t1))
    throw std::invalid_argument("ODE integration interval must be finite (t0 = " + fmt(t0) + ", t1 = " + fmt(t1) +
                                ")");
}

// ---- failure messages --------------------------------------------------------------------

SolveResult& Run::fail(Status s, double t, const std::string& why) {
  res.status = s;
  res.t_failed = t;
  res.message = to_string(method) + ": " + why + " (integrating from t = " + fmt(t0) + " to " + fmt(t1) + ")";
  return res;
}

SolveResult& Run::non_finite_state(double t, double t_last) {
  return fail(Status::NonFinite, t, "non-finite state at t = " + fmt(t) + "; last finite state at t = " + fmt(t_last));
}

SolveResult& Run::max_steps(double t, long max) {
  return fail(Status::MaxStepsExceeded, t,
              "maximum number of steps (" + std::to_string(max) + ") exceeded at t = " + fmt(t) + " (" +
                  std::to_string(res.stats.accepted) + " accepted, " + std::to_string(res.stats.rejected) +
                  " rejected steps)");
}

SolveResult& Run::step_size_underflow(double t, double dt) {
  return fail(Status::StepSizeUnderflow, t,
              "step size underflow at t = " + fmt(t) + " (step " + fmt(dt) + " no longer advances t)");
}

SolveResult& Run::non_finite_initial_state() {
  return fail(Status::NonFinite, t0, "non-finite initial state at t = " + fmt(t0));
}

SolveResult& Run::non_finite_derivative() {
  return fail(Status::NonFinite, t0, "non-finite derivative f(y0, t0) at t = " + fmt(t0));
}

SolveResult& Run::fixed_steps_exceeded(double fixed_step, double ratio, long max) {
  return fail(Status::MaxStepsExceeded, t0,
              "fixed step " + fmt(fixed_step) + " needs " + fmt(std::ceil(ratio)) + " steps, more than max_steps (" +
                  std::to_string(max) + ")");
}

// ---- one step ---------------------------------------------------------------------------

namespace {

// out = y + Σ_j (dt·w_j) k_j over the nonzero w_j, left to right.
void combine(std::span<const double> w_row, double dt, std::span<const double> y, std::span<const double* const> k,
             std::span<double> out) {
  const std::size_t n = y.size();
  std::copy(y.begin(), y.end(), out.begin());
  for (std::size_t j = 0; j < w_row.size(); ++j) {
    if (w_row[j] == 0) continue;
    const double w = dt * w_row[j];
    const double* kj = k[j];
    for (std::size_t m = 0; m < n; ++m) out[m] += w * kj[m];
  }
}

}  // namespace

double stage_time(const Tableau& tab, int i, double t, double dt) { return t + dt * tab.c[i]; }

void stage_state(const Tableau& tab, int i, double dt, std::span<const double> y, std::span<const double* const> k,
                 std::span<double> out) {
  combine(tab.a[i], dt, y, k, out);
}

void solution(const Tableau& tab, double dt, std::span<const double> y, std::span<const double* const> k,
              std::span<double> out) {
  combine(tab.b, dt, y, k, out);
}

void error_estimate(const Tableau& tab, double dt, std::span<const double* const> k, std::span<double> err) {
  const std::size_t n = err.size();
  bool first = true;
  for (int i = 0; i < tab.stages(); ++i) {
    if (tab.e[i] == 0) continue;
    const double w = dt * tab.e[i];
    const double* ki = k[i];
    for (std::size_t m = 0; m < n; ++m) err[m] = first ? w * ki[m] : err[m] + w * ki[m];
    first = false;
  }
}

double error_norm(double atol, double rtol, std::size_t components, std::span<const double> y,
                  std::span<const double> f, std::span<const double> err, double dt) {
  const std::size_t m = components == 0 ? y.size() : std::min(components, y.size());
  double worst = 0;
  for (std::size_t i = 0; i < m; ++i)
    worst = std::max(worst, std::abs(err[i]) / (atol + rtol * (std::abs(y[i]) + std::abs(dt) * std::abs(f[i]))));
  return worst;
}

bool control_step(const Tableau& tab, double err, double& t, double& dt) {
  if (err > 1.0) {
    dt *= std::max(9.0 / 10.0 * std::pow(err, -1.0 / (tab.error_order - 1)), 1.0 / 5.0);
    return false;
  }
  t += dt;
  if (err < 0.5) {
    const double e = std::max(std::pow(5.0, -double(tab.order)), err);
    dt *= 9.0 / 10.0 * std::pow(e, -1.0 / tab.order);
  }
  return true;
}

// ---- the first step ---------------------------------------------------------------------

namespace {

// RMS of v_i / (atol + rtol·|y_i|) (torchdiffeq's norm; 0 for an empty state).
double scaled_rms(std::span<const double> v, std::span<const double> y, double rtol, double atol) {
  if (v.empty()) return 0;
  double s = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double r = v[i] / (atol + rtol * std::abs(y[i]));
    s += r * r;
  }
  return std::sqrt(s / double(v.size()));
}

}  // namespace

InitialStep initial_step_probe(std::span<const double> y0, std::span<const double> f0, double t0, double t1,
                               double rtol, double atol, std::span<double> y1) {
  InitialStep s;
  s.dir = t1 > t0 ? 1.0 : -1.0;
  s.span = std::abs(t1 - t0);
  const double d0 = scaled_rms(y0, y0, rtol, atol);
  s.d1 = scaled_rms(f0, y0, rtol, atol);
  s.h0 = (d0 < 1e-5 || s.d1 < 1e-5) ? 1e-6 : 0.01 * d0 / s.d1;
  s.h0 = std::min(s.h0, s.span);
  for (std::size_t i = 0; i < y0.size(); ++i) y1[i] = y0[i] + s.dir * s.h0 * f0[i];
  s.t = t0 + s.dir * s.h0;
  return s;
}

double initial_step_finish(const InitialStep& s, std::span<const double> y0, std::span<const double> f0,
                           std::span<const double> f1, int order, double rtol, double atol,
                           std::span<double> scratch) {
  for (std::size_t i = 0; i < y0.size(); ++i) scratch[i] = f1[i] - f0[i];
  const double d2 = scaled_rms(scratch, y0, rtol, atol) / s.h0;
  // f blows up within h0: start with h0 and let the controller shrink it.
  if (!std::isfinite(d2)) return s.dir * s.h0;
  const double dmax = std::max(s.d1, d2);
  const double h1 = dmax <= 1e-15 ? std::max(1e-6, 1e-3 * s.h0) : std::pow(0.01 / dmax, 1.0 / (order + 1));
  return s.dir * std::min({100 * s.h0, h1, s.span});
}

FixedGrid fixed_grid(const SolverOptions& opt, double t0, double t1) {
  FixedGrid g;
  // The slack absorbs rounding in the ratio (0.3 / 0.1 must give 3 steps, not 4).
  g.ratio = std::abs(t1 - t0) / opt.fixed_step * (1 - 1e-12);
  if (!(g.ratio <= double(opt.max_steps))) return g;
  g.steps = std::max(1L, long(std::ceil(g.ratio)));
  g.h = (t1 - t0) / double(g.steps);
  return g;
}

}  // namespace enf::ode::detail
