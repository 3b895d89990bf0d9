#include "engine/gradient_check.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <numeric>
#include <omp.h>
#include <stdexcept>

#include "egnn/parallel.hpp"
#include "engine/cnf.hpp"
#include "engine/rng.hpp"

namespace enf {

DerivativeComparison compare_derivatives(const std::string& quantity, const std::vector<double>& analytic,
                                         const std::vector<double>& finite_difference, double tolerance,
                                         double floor_fraction) {
  if (analytic.size() != finite_difference.size())
    throw std::invalid_argument(quantity + ": " + std::to_string(analytic.size()) + " analytic values but " +
                                std::to_string(finite_difference.size()) + " finite differences");
  DerivativeComparison c;
  c.quantity = quantity;
  c.entries = analytic.size();
  c.tolerance = tolerance;
  double scale = 0;
  for (double f : finite_difference)
    if (std::isfinite(f)) scale = std::max(scale, std::abs(f));
  const double floor = std::max(floor_fraction * scale, std::numeric_limits<double>::min());
  bool finite = true;
  for (std::size_t i = 0; i < analytic.size(); ++i) {
    const double a = analytic[i], f = finite_difference[i];
    if (!std::isfinite(a) || !std::isfinite(f)) {
      // A NaN would compare false with every bound and pass silently.
      if (finite) c.worst = i;
      finite = false;
      c.max_abs_error = c.max_rel_error = std::numeric_limits<double>::infinity();
      continue;
    }
    const double abs = std::abs(a - f), rel = abs / std::max({std::abs(a), std::abs(f), floor});
    c.max_abs_error = std::max(c.max_abs_error, abs);
    if (finite && rel > c.max_rel_error) {
      c.max_rel_error = rel;
      c.worst = i;
    }
  }
  c.ok = finite && c.entries > 0 && c.max_rel_error <= tolerance;
  return c;
}

double central_difference(const std::function<double(double)>& g, double h) {
  const double d1 = (g(h) - g(-h)) / (2 * h);
  const double d2 = (g(h / 2) - g(-h / 2)) / h;
  return (4 * d2 - d1) / 3;
}

namespace {

using Field = VectorField<double>;
using Mat = detail::Mat<double>;

// The vector version of central_difference (every output of one perturbation).
template <class G>
std::vector<double> central_difference_all(G g, double h) {
  const std::vector<double> p = g(h), m = g(-h), p2 = g(h / 2), m2 = g(-h / 2);
  std::vector<double> d(p.size());
  for (std::size_t i = 0; i < d.size(); ++i) d[i] = (4 * (p2[i] - m2[i]) / h - (p[i] - m[i]) / (2 * h)) / 3;
  return d;
}

// Random directions of unit length, so a step means the same in every direction.
std::vector<double> unit_direction(std::size_t size, Rng& rng) {
  std::vector<double> u(size);
  double norm = 0;
  for (double& v : u) {
    v = rng.normal();
    norm += v * v;
  }
  for (double& v : u) v /= std::sqrt(norm);
  return u;
}

// `count` distinct indices of [0, size) (all of them, in order, when count ≥ size).
std::vector<std::size_t> random_subset(std::size_t size, int count, Rng& rng) {
  std::vector<std::size_t> idx(size);
  std::iota(idx.begin(), idx.end(), 0);
  if (std::size_t(count) >= size) return idx;
  for (int k = 0; k < count; ++k) std::swap(idx[k], idx[k + std::size_t(rng.uniform() * double(size - k))]);
  idx.resize(count);
  std::sort(idx.begin(), idx.end());
  return idx;
}

// Every call of the CNF is in this class: engine/cnf.hpp is being
// restructured, and the checker should follow it in one place.
class Nll {
 public:
  Nll(const Field& field, double tol, GradientMode mode) : cnf_(field, options(tol, mode)) {}

  // −log p(x) of one structure; throws when the solve fails.
  double loss(const double* params, const std::vector<double>& x, int n) {
    const auto r = cnf_.forward(params, x, n, {}, scratch_);
    if (!r.solve.ok()) throw std::runtime_error("forward solve: " + r.solve.message);
    return -r.log_px;
  }
  // d(−log p(x))/dθ (all parameters); `nfe` receives the forward and backward evaluations.
  std::vector<double> gradient(const double* params, const std::vector<double>& x, int n, std::size_t P,
                               long nfe[2]) {
    std::vector<double> grad(P, 0.0);
    const auto r = cnf_.gradient(params, x, n, {}, 1.0, scratch_, grad.data());
    if (!r.forward.solve.ok()) throw std::runtime_error("forward solve: " + r.forward.solve.message);
    if (!r.backward.ok()) throw std::runtime_error("backward solve: " + r.backward.message);
    nfe[0] = r.forward.solve.stats.nfe;
    nfe[1] = r.backward.stats.nfe;
    return grad;
  }

 private:
  static CnfOptions options(double tol, GradientMode mode) {
    CnfOptions o;
    o.trace = TraceEstimator::Exact;  // the Hutchinson estimate would make the loss random
    o.gradient = mode;
    o.solver.method = ode::Method::Dopri5;
    o.solver.rtol = o.solver.atol = tol;
    o.adjoint_solver = o.solver;
    return o;
  }
  Cnf<Field> cnf_;
  Cnf<Field>::Scratch scratch_;
};

struct Collected {
  std::vector<double> analytic, fd;
  void add(double a, double f) {
    analytic.push_back(a);
    fd.push_back(f);
  }
};

}  // namespace

std::vector<DerivativeComparison> check_gradients(const FieldConfig& cfg, const Parameters<double>& params,
                                                  const std::vector<double>& x, int rows, int n,
                                                  const GradientCheckOptions& opt,
                                                  const std::function<void(const std::string&)>& log) {
  const int C = cfg.channels(), S = n * C, K = opt.directions;
  if (rows < 1 || n < 2 || x.size() != std::size_t(rows) * S)
    throw std::invalid_argument("gradient check: expected rows ≥ 1 structures of n ≥ 2 nodes, " +
                                std::to_string(C) + " values each");
  if (K < 1 || opt.params < 1) throw std::invalid_argument("gradient check: directions and params must be ≥ 1");
  const Field field(cfg, params.layout);
  const std::size_t P = field.parameter_count();
  Parameters<double> q = params;  // perturbed one entry at a time, restored exactly
  // ws holds the tape of the forward the reverse pass reads; the differences
  // evaluate on fd_ws, so they never overwrite it.
  FieldWorkspace<double> ws, fd_ws;
  Rng rng(opt.seed);
  Collected jv, vjp_in, vjp_par, nll[2];
  // The solves dominate (each difference of the NLL is 4 of them): one CNF
  // and one parameter copy per thread, the parameters shared out.
  const int threads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
  std::vector<std::unique_ptr<Nll>> adjoint, discrete;
  std::vector<Parameters<double>> qt(threads, params);
  for (int th = 0; th < threads; ++th) {
    adjoint.push_back(std::make_unique<Nll>(field, opt.solver_tolerance, GradientMode::Adjoint));
    discrete.push_back(std::make_unique<Nll>(field, opt.solver_tolerance, GradientMode::Discrete));
  }
  auto say = [&](const std::string& s) {
    if (log) log(s);
  };

  for (int b = 0; b < rows; ++b) {
    std::vector<double> z(x.begin() + std::size_t(b) * S, x.begin() + std::size_t(b + 1) * S);
    // The flow's inputs are centre-of-mass free (the prior lives there).
    for (int d = 0; d < cfg.dim; ++d) {
      double m = 0;
      for (int i = 0; i < n; ++i) m += z[i * C + d] / n;
      for (int i = 0; i < n; ++i) z[i * C + d] -= m;
    }
    const double t = rng.uniform(0.05, 0.95);
    Mat V(K, S);
    for (int k = 0; k < K; ++k) {
      const auto u = unit_direction(S, rng);
      for (int i = 0; i < S; ++i) V(k, i) = u[i];
    }
    // f (and J·V) at a perturbed state or with perturbed parameters.
    auto velocity = [&](const double* p, const std::vector<double>& zz) {
      std::vector<double> f(S);
      field.forward(p, zz.data(), n, t, nullptr, fd_ws, f.data(), nullptr);
      return f;
    };
    Mat wJ(K, S);
    std::vector<double> wf(S);
    for (double& w : wf) w = rng.normal();
    for (int k = 0; k < K; ++k)
      for (int i = 0; i < S; ++i) wJ(k, i) = rng.normal();
    // L = w_fᵀ f + Σ_k w_kᵀ (J·V)_k: a random scalar of f and of its tangents.
    auto scalar = [&](const double* p, const std::vector<double>& zz) {
      std::vector<double> f(S);
      Mat JV;
      field.forward(p, zz.data(), n, t, &V, fd_ws, f.data(), &JV);
      double L = 0;
      for (int i = 0; i < S; ++i) L += wf[i] * f[i];
      return L + (JV.array() * wJ.array()).sum();
    };

    // (a) J·v.
    std::vector<double> f(S), zbar(S), grad(P, 0.0);
    Mat JV;
    field.forward(params.values.data(), z.data(), n, t, &V, ws, f.data(), &JV);
    for (int k = 0; k < K; ++k) {
      const auto d = central_difference_all(
          [&](double h) {
            std::vector<double> zz = z;
            for (int i = 0; i < S; ++i) zz[i] += h * V(k, i);
            return velocity(params.values.data(), zz);
          },
          opt.field_step);
      for (int i = 0; i < S; ++i) jv.add(JV(k, i), d[i]);
    }
    // (b) the reverse pass for the cotangents (w_f, w_J).
    field.reverse(params.values.data(), ws, wf.data(), &wJ, zbar.data(), grad.data());
    for (int i = 0; i < S; ++i)
      vjp_in.add(zbar[i], central_difference(
                              [&](double h) {
                                std::vector<double> zz = z;
                                zz[i] += h;
                                return scalar(params.values.data(), zz);
                              },
                              opt.field_step));
    const auto subset = random_subset(P, opt.params, rng);
    for (std::size_t j : subset) {
      const double orig = q.values[j];
      vjp_par.add(grad[j], central_difference(
                               [&](double h) {
                                 q.values[j] = orig + h;
                                 const double L = scalar(q.values.data(), z);
                                 q.values[j] = orig;
                                 return L;
                               },
                               opt.field_step));
    }
    say("structure " + std::to_string(b + 1) + "/" + std::to_string(rows) + ": field checked at t = " +
        std::to_string(t) + " (" + std::to_string(K) + " directions, " + std::to_string(subset.size()) +
        " parameters)");

    // (c) the NLL gradient by both modes against one set of differences.
    long nfe[2][2];
    std::vector<double> g[2];
    parallel_for(2, threads, [&](int mode, int th) {
      g[mode] = (mode == 0 ? adjoint : discrete)[th]->gradient(params.values.data(), z, n, P, nfe[mode]);
    });
    const double loss = adjoint[0]->loss(params.values.data(), z, n);
    std::vector<double> d(subset.size());
    parallel_for(int(subset.size()), threads, [&](int k, int th) {
      const std::size_t j = subset[k];
      auto& qq = qt[th].values;
      const double orig = qq[j];
      d[k] = central_difference(
          [&](double h) {
            qq[j] = orig + h;
            const double L = adjoint[th]->loss(qq.data(), z, n);
            qq[j] = orig;
            return L;
          },
          opt.loss_step);
    });
    for (std::size_t k = 0; k < subset.size(); ++k) {
      nll[0].add(g[0][subset[k]], d[k]);
      nll[1].add(g[1][subset[k]], d[k]);
    }
    char line[200];
    std::snprintf(line, sizeof line,
                  "structure %d/%d: -log p(x) = %.6f; NFE forward %ld, adjoint backward %ld, discrete backward %ld",
                  b + 1, rows, loss, nfe[0][0], nfe[0][1], nfe[1][1]);
    say(line);
  }
  return {compare_derivatives("field_jvp", jv.analytic, jv.fd, opt.field_tolerance),
          compare_derivatives("field_vjp_input", vjp_in.analytic, vjp_in.fd, opt.field_tolerance),
          compare_derivatives("field_vjp_params", vjp_par.analytic, vjp_par.fd, opt.field_tolerance),
          compare_derivatives("nll_grad_adjoint", nll[0].analytic, nll[0].fd, opt.loss_tolerance),
          compare_derivatives("nll_grad_discrete", nll[1].analytic, nll[1].fd, opt.loss_tolerance)};
}

}  // namespace enf
