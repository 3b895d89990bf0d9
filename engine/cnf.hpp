// The continuous normalizing flow (FFJORD) around a vector field, one sample
// at a time: every sample integrates with its own adaptive steps, so its
// result never depends on the batch it came in.
//
// Forward (data → latent), t: 0 → 1, augmented state [z, ℓ, K, R]:
//   dz/dt = f(z, t),  dℓ/dt = tr(∂f/∂z)  (exact, or εᵀJε with ε drawn once per solve),
//   dK/dt = ‖f‖²,     dR/dt = ‖J ε‖²     (RNODE regularizers, only when λ > 0)
//   log p(x) = log p_z(z(1)) + ℓ(1)   (the fixtures' sign convention: ℓ(1) = delta_logp)
// Reverse (latent → data): dz/dt = f from t = 1 down to 0.
// Loss of one sample: w·(−log p(x) + λ (K(1) + R(1))).
//
// Gradients of that loss wrt the parameters by the continuous adjoint: the
// augmented system [z, a_z, a_θ] integrated from 1 to 0 with
//   da_z/dt = −(a_zᵀ ∂f/∂z + a_ℓ ∂tr/∂z + a_K ∂‖f‖²/∂z + a_R ∂‖Jε‖²/∂z),
//   da_θ/dt = −(the same wrt θ),
// a_z(1) = −w ∂log p_z/∂z, a_ℓ = −w, a_K = a_R = wλ (constant: nothing depends
// on ℓ, K, R). Memory is O(1) in the number of steps; z is recomputed backwards.
// Only [z, a_z] enter the backward solve's error norm: a_θ is a quadrature
// that never feeds back (the "seminorm" of Kidger et al. 2021; torchdiffeq
// 0.2.5 by default also controls a_θ, so its backward NFE are higher).
//
// The ODE state is float64 whatever the field's scalar type; a float32 field
// is evaluated on the state rounded to float32.
//
// Field concept (VectorField<T> and the tests' linear field): Scalar,
// Workspace, channels(), dim(), parameter_count(), forward(), reverse().
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include "egnn/parameters.hpp"
#include "egnn/trace.hpp"
#include "ode/replay.hpp"
#include "ode/solver.hpp"

namespace enf {

enum class TraceEstimator { Exact, Rademacher, Gaussian };
std::string to_string(TraceEstimator t);
TraceEstimator parse_trace_estimator(const std::string& name);  // "exact", "rademacher", "gaussian"

// How the loss gradient is computed: the continuous adjoint (the reference's
// method, O(1) memory), or backprop through the forward solve's own steps
// (the exact gradient of the discrete solution; memory O(steps · state)).
enum class GradientMode { Adjoint, Discrete };
std::string to_string(GradientMode m);
GradientMode parse_gradient_mode(const std::string& name);  // "adjoint", "discrete"

struct CnfOptions {
  TraceEstimator trace = TraceEstimator::Exact;
  GradientMode gradient = GradientMode::Adjoint;
  double ode_regularization = 0;  // λ
  ode::SolverOptions solver;          // forward and sampling solves
  ode::SolverOptions adjoint_solver;  // the backward adjoint solve
  std::string validate() const;
  // Whether a solve needs ε: Hutchinson trace or the Frobenius regularizer.
  bool needs_noise() const { return trace != TraceEstimator::Exact || ode_regularization > 0; }
};

// The prior of the latent: positions isotropic Gaussian on the centre-of-mass
// free subspace ((n−1)·D degrees of freedom), features standard normal.
double log_prior(const std::vector<double>& z, int n, int dim, int channels);

struct ForwardResult {
  std::vector<double> z;  // z(1), n·C
  double delta_logp = 0;  // ℓ(1) = ∫ tr(∂f/∂z) dt
  double log_pz = 0;
  double log_px = 0;
  double kinetic = 0, frobenius = 0;  // K(1), R(1) (0 when λ = 0)
  ode::SolveResult solve;
};

struct AdjointResult {
  ForwardResult forward;
  double loss = 0;
  ode::SolveResult backward;
  // ∂loss/∂x: the cotangent of the flow's input (n·C), for models that put
  // trainable maps in front of the CNF (ActNorm, dequantization).
  std::vector<double> input_cotangent;
  // max |z(0) − x| of the state the continuous adjoint integrates back (0 for
  // the discrete gradient): large when the backward solve is unstable.
  double reconstruction_error = 0;
  double seconds_forward = 0, seconds_backward = 0;  // this thread's time in each pass
};

template <class Field>
class Cnf {
 public:
  using T = typename Field::Scalar;
  using Workspace = typename Field::Workspace;

  Cnf(const Field& field, CnfOptions opt) : field_(field), opt_(std::move(opt)) {
    if (auto err = opt_.validate(); !err.empty()) throw std::invalid_argument("flow options: " + err);
  }
  const CnfOptions& options() const { return opt_; }
  const Field& field() const { return field_; }

  // Per-thread scratch.
  struct Scratch {
    Workspace ws;
    TraceScratch<T> trace;
    std::vector<T> z, f, eps, fbar, zbar, f_extra, zbar_extra;
    AlignedVector<T> grad;  // written through Eigen maps: aligned (see parameters.hpp)
    detail::Mat<T> V, JV, JVbar;
  };

  // x → z(1) with ℓ, K, R. eps: n·C noise (ignored unless needs_noise()).
  ForwardResult forward(const T* params, const std::vector<double>& x, int n, const std::vector<double>& eps,
                        Scratch& s) const {
    return forward_recorded(params, x, n, eps, s, ode::StepObserver{});
  }

  // z(1) → x: integrates dz/dt = f from 1 down to 0, in place.
  ode::SolveResult reverse(const T* params, std::vector<double>& z, int n, Scratch& s) const {
    const int S = n * field_.channels();
    check_state(z, S, "reverse");
    return ode::integrate(
        [&](const std::vector<double>& yy, std::vector<double>& dy, double t) {
          to_scalar(yy.data(), S, s.z);
          s.f.resize(S);
          field_.forward(params, s.z.data(), n, T(t), nullptr, s.ws, s.f.data(), nullptr);
          for (int k = 0; k < S; ++k) dy[k] = double(s.f[k]);
        },
        z, 1.0, 0.0, opt_.solver);
  }

  // Loss w·(−log p(x) + λ(K + R)) and its parameter gradient, accumulated
  // into grad (parameter_count() values), by the method of options().gradient.
  AdjointResult gradient(const T* params, const std::vector<double>& x, int n, const std::vector<double>& eps,
                         double weight, Scratch& s, double* grad) const {
    return opt_.gradient == GradientMode::Adjoint ? adjoint(params, x, n, eps, weight, s, grad)
                                                  : discrete(params, x, n, eps, weight, s, grad);
  }

  using Clock = std::chrono::steady_clock;
  static double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

  // The continuous adjoint.
  AdjointResult adjoint(const T* params, const std::vector<double>& x, int n, const std::vector<double>& eps,
                        double weight, Scratch& s, double* grad) const {
    const int S = n * field_.channels();
    const std::size_t P = field_.parameter_count();
    AdjointResult r;
    auto start = Clock::now();
    r.forward = forward(params, x, n, eps, s);
    r.seconds_forward = since(start);
    r.loss = loss_of(r.forward, weight);
    if (!r.forward.solve.ok()) return r;
    start = Clock::now();
    // a_z(1) = −w ∂log p_z/∂z = w z (every channel has a unit Gaussian prior).
    std::vector<double> y(2 * S + P, 0.0);
    std::copy(r.forward.z.begin(), r.forward.z.end(), y.begin());
    for (int k = 0; k < S; ++k) y[S + k] = weight * r.forward.z[k];
    const double a_l = -weight, a_reg = weight * opt_.ode_regularization;
    // a_θ is a quadrature (it never feeds back): error control on [z, a_z] only.
    ode::SolverOptions backward = opt_.adjoint_solver;
    backward.error_components = std::size_t(2 * S);
    if (backward.method == ode::Method::Dopri5) {
      r.backward = adjoint_quadrature(params, y, n, a_l, a_reg, backward, s, grad);
      r.input_cotangent.assign(y.begin() + S, y.begin() + 2 * S);
      for (int k = 0; k < S; ++k) r.reconstruction_error = std::max(r.reconstruction_error, std::abs(y[k] - x[k]));
    } else {
      r.backward = ode::integrate(
          [&](const std::vector<double>& yy, std::vector<double>& dy, double t) {
            // d[z, a_z, a_θ]/dt = [f, −a·∂F/∂z, −a·∂F/∂θ]
            augmented_vjp(params, yy.data(), n, t, yy.data() + S, a_l, a_reg, a_reg, s);
            for (int k = 0; k < S; ++k) {
              dy[k] = double(s.f[k]);
              dy[S + k] = -double(s.zbar[k]);
            }
            for (std::size_t k = 0; k < P; ++k) dy[2 * S + k] = -double(s.grad[k]);
          },
          y, 1.0, 0.0, backward);
      for (std::size_t k = 0; k < P; ++k) grad[k] += y[2 * S + k];
      r.input_cotangent.assign(y.begin() + S, y.begin() + 2 * S);
    }
    r.seconds_backward = since(start);
    return r;
  }

  // Backprop through the forward solve's accepted steps: ode::StepReplay
  // recomputes each step's stages from its recorded start state and reverses
  // them; the CNF supplies f and the augmented VJP. The step sizes are
  // constants of the discrete solution. ℓ, K, R never feed F, so their
  // cotangents stay −w, wλ, wλ throughout (weighted by h b_i per stage).
  AdjointResult discrete(const T* params, const std::vector<double>& x, int n, const std::vector<double>& eps,
                         double weight, Scratch& s, double* grad) const {
    const int S = n * field_.channels();
    const std::size_t P = field_.parameter_count();
    struct Step {
      double t, h;
      std::vector<double> z;
    };
    std::vector<Step> steps;
    AdjointResult r;
    auto start = Clock::now();
    r.forward = forward_recorded(params, x, n, eps, s, [&](double t, double h, const std::vector<double>& y) {
      steps.push_back({t, h, std::vector<double>(y.begin(), y.begin() + S)});
    });
    r.seconds_forward = since(start);
    r.loss = loss_of(r.forward, weight);
    if (!r.forward.solve.ok()) return r;
    start = Clock::now();
    const double a_l = -weight, a_reg = weight * opt_.ode_regularization;
    std::vector<double> ybar(S);
    for (int k = 0; k < S; ++k) ybar[k] = weight * r.forward.z[k];
    // Only the z part feeds the stages.
    const ode::System f = [&](const std::vector<double>& Y, std::vector<double>& K, double t) {
      to_scalar(Y.data(), S, s.z);
      s.f.resize(S);
      field_.forward(params, s.z.data(), n, T(t), nullptr, s.ws, s.f.data(), nullptr);
      for (int k = 0; k < S; ++k) K[k] = double(s.f[k]);
    };
    const ode::StageVjp vjp = [&](const std::vector<double>& Y, double t, const std::vector<double>& kbar, double hb,
                                  std::vector<double>& Ybar) {
      augmented_vjp(params, Y.data(), n, t, kbar.data(), hb * a_l, hb * a_reg, hb * a_reg, s);
      for (int k = 0; k < S; ++k) Ybar[k] = double(s.zbar[k]);
      for (std::size_t k = 0; k < P; ++k) grad[k] += double(s.grad[k]);
    };
    ode::StepReplay replay(opt_.solver.method);
    for (auto it = steps.rbegin(); it != steps.rend(); ++it) replay.reverse(f, vjp, it->t, it->h, it->z, ybar);
    r.input_cotangent = ybar;
    r.backward.stats.nfe = long(steps.size()) * 2 * replay.stages();
    r.backward.stats.accepted = long(steps.size());
    r.seconds_backward = since(start);
    return r;
  }

 private:
  const Field& field_;
  CnfOptions opt_;

  static void check_state(const std::vector<double>& x, int S, const char* what) {
    if (int(x.size()) != S)
      throw std::invalid_argument(std::string(what) + ": state has " + std::to_string(x.size()) +
                                  " values, expected " + std::to_string(S));
  }
  static void to_scalar(const double* y, int S, std::vector<T>& out) {
    out.resize(S);
    for (int k = 0; k < S; ++k) out[k] = T(y[k]);
  }
  void load_noise(const std::vector<double>& eps, int S, Scratch& s) const {
    if (!opt_.needs_noise()) return;
    if (int(eps.size()) != S) throw std::invalid_argument("noise ε has the wrong size");
    s.V.resize(1, S);
    for (int k = 0; k < S; ++k) s.V(0, k) = T(eps[k]);
  }

  // [z, ℓ, K, R]' at t.
  void augmented(const T* params, const std::vector<double>& y, std::vector<double>& dy, int n, double t,
                 Scratch& s) const {
    const int S = n * field_.channels();
    to_scalar(y.data(), S, s.z);
    s.f.resize(S);
    double tr = 0, jeps2 = 0;
    const bool reg = opt_.ode_regularization > 0;
    if (opt_.trace == TraceEstimator::Exact) {
      tr = double(exact_trace(field_, params, s.z.data(), n, T(t), s.ws, s.trace, s.f.data()));
      if (reg) {
        s.f_extra.resize(S);
        field_.forward(params, s.z.data(), n, T(t), &s.V, s.ws, s.f_extra.data(), &s.JV);
        jeps2 = double(s.JV.row(0).squaredNorm());
      }
    } else {
      field_.forward(params, s.z.data(), n, T(t), &s.V, s.ws, s.f.data(), &s.JV);
      tr = double(s.V.row(0).dot(s.JV.row(0)));
      jeps2 = double(s.JV.row(0).squaredNorm());
    }
    double f2 = 0;
    for (int k = 0; k < S; ++k) {
      dy[k] = double(s.f[k]);
      f2 += dy[k] * dy[k];
    }
    dy[S] = tr;
    dy[S + 1] = reg ? f2 : 0.0;
    dy[S + 2] = reg ? jeps2 : 0.0;
  }

  // The dopri5 adjoint with a_θ outside the solver's state: only [z, a_z]
  // (2S numbers) are integrated; the rate of a_θ, −g(t) with g = a·∂F/∂θ, is
  // an ode::Quadrature — each evaluation keeps g in the slot ode/ names, and
  // every accepted step adds −h b_i g_i over its stages, what the solver
  // itself would have added for a component outside its error norm, without
  // carrying P numbers through each stage.
  // On return y_full[0, 2S) holds [z(0), a_z(0)].
  ode::SolveResult adjoint_quadrature(const T* params, std::vector<double>& y_full, int n, double a_l,
                                      double a_reg, const ode::SolverOptions& opt, Scratch& s, double* grad) const {
    const int S = n * field_.channels();
    const std::size_t P = field_.parameter_count();
    std::vector<double> y(y_full.begin(), y_full.begin() + 2 * S);
    std::vector<AlignedVector<T>> slots(ode::quadrature_slots(opt.method), AlignedVector<T>(P));
    std::vector<double> acc(P, 0.0);
    ode::Quadrature q;
    q.system = [&](const std::vector<double>& yy, std::vector<double>& dy, double t, int slot) {
      augmented_vjp(params, yy.data(), n, t, yy.data() + S, a_l, a_reg, a_reg, s);
      for (int k = 0; k < S; ++k) {
        dy[k] = double(s.f[k]);
        dy[S + k] = -double(s.zbar[k]);
      }
      slots[slot].swap(s.grad);
    };
    q.accumulate = [&](int slot, double hb) {
      const double w = -hb;
      const AlignedVector<T>& g = slots[slot];
      for (std::size_t k = 0; k < P; ++k) acc[k] += w * double(g[k]);
    };
    const auto result = ode::integrate(q, y, 1.0, 0.0, opt);
    for (std::size_t k = 0; k < P; ++k) grad[k] += acc[k];
    std::copy(y.begin(), y.end(), y_full.begin());
    return result;
  }

  double loss_of(const ForwardResult& f, double weight) const {
    return weight * (-f.log_px + opt_.ode_regularization * (f.kinetic + f.frobenius));
  }

  template <class Observer>
  ForwardResult forward_recorded(const T* params, const std::vector<double>& x, int n, const std::vector<double>& eps,
                                 Scratch& s, Observer obs) const {
    const int S = n * field_.channels();
    check_state(x, S, "forward");
    load_noise(eps, S, s);
    std::vector<double> y(S + 3, 0.0);
    std::copy(x.begin(), x.end(), y.begin());
    ForwardResult r;
    r.solve = ode::integrate(
        [&](const std::vector<double>& yy, std::vector<double>& dy, double t) { augmented(params, yy, dy, n, t, s); },
        y, 0.0, 1.0, opt_.solver, ode::StepObserver(obs));
    r.z.assign(y.begin(), y.begin() + S);
    r.delta_logp = y[S];
    r.kinetic = y[S + 1];
    r.frobenius = y[S + 2];
    r.log_pz = log_prior(r.z, n, field_.dim(), field_.channels());
    r.log_px = r.log_pz + r.delta_logp;
    return r;
  }

  // The VJP of the augmented dynamics F = [f, tr, ‖f‖², ‖Jε‖²] at (z, t) for
  // the cotangent (c_z, c_ℓ, c_K, c_R):
  //   s.zbar = c_zᵀ∂f/∂z + c_ℓ ∂tr/∂z + c_K ∂‖f‖²/∂z + c_R ∂‖Jε‖²/∂z,
  //   s.grad = the same wrt θ (overwritten), s.f = f(z, t).
  void augmented_vjp(const T* params, const double* z, int n, double t, const double* c_z, double c_l, double c_K,
                     double c_R, Scratch& s) const {
    const int S = n * field_.channels();
    const std::size_t P = field_.parameter_count();
    to_scalar(z, S, s.z);
    s.f.resize(S);
    s.fbar.resize(S);
    s.zbar.resize(S);
    s.grad.assign(P, T(0));
    if (opt_.trace == TraceEstimator::Exact) {
      s.zbar_extra.assign(S, T(0));
      if (c_R != 0) {
        // The Frobenius term needs J·ε: one more tangent pass with its reverse.
        field_.forward(params, s.z.data(), n, T(t), &s.V, s.ws, s.f.data(), &s.JV);
        s.JVbar = s.JV * T(2 * c_R);
        field_.reverse(params, s.ws, nullptr, &s.JVbar, s.zbar_extra.data(), s.grad.data());
      }
      // f first (for the kinetic term's cotangent), then the trace VJP.
      field_.forward(params, s.z.data(), n, T(t), nullptr, s.ws, s.f.data(), nullptr);
      for (int k = 0; k < S; ++k) s.fbar[k] = T(c_z[k] + 2 * c_K * double(s.f[k]));
      exact_trace_vjp(field_, params, s.z.data(), n, T(t), s.ws, s.trace, s.fbar.data(), T(c_l), s.f.data(),
                      s.zbar.data(), s.grad.data());
      for (int k = 0; k < S; ++k) s.zbar[k] += s.zbar_extra[k];
    } else {
      field_.forward(params, s.z.data(), n, T(t), &s.V, s.ws, s.f.data(), &s.JV);
      for (int k = 0; k < S; ++k) s.fbar[k] = T(c_z[k] + 2 * c_K * double(s.f[k]));
      s.JVbar = s.V * T(c_l) + s.JV * T(2 * c_R);
      field_.reverse(params, s.ws, s.fbar.data(), &s.JVbar, s.zbar.data(), s.grad.data());
    }
  }
};

}  // namespace enf
