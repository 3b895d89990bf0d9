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
//
// This header declares; the members are defined by idea in
//   cnf_forward_impl.hpp   the forward solve (log-likelihood) and the reverse one (sampling)
//   cnf_adjoint_impl.hpp   the continuous adjoint and the augmented dynamics' VJP
//   cnf_discrete_impl.hpp  backprop through the forward solve's steps
// and compiled once, in cnf_instances.cpp, for VectorField<float> and
// VectorField<double>. Another field type includes the three to instantiate.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "egnn/parameters.hpp"
#include "egnn/trace.hpp"
#include "egnn/vector_field.hpp"
#include "ode/batch_solver.hpp"
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
// free subspace ((n−1)·D degrees of freedom), features (C − D channels)
// standard normal. One prior for particles (no features) and molecules.
struct LogPrior {
  double positions = 0, features = 0;
};
LogPrior log_prior_parts(const std::vector<double>& z, int n, int dim, int channels);
double log_prior(const std::vector<double>& z, int n, int dim, int channels);  // positions + features

struct ForwardResult {
  std::vector<double> z;  // z(1), n·C
  double delta_logp = 0;  // ℓ(1) = ∫ tr(∂f/∂z) dt
  double log_pz = 0;
  double log_pz_x = 0, log_pz_h = 0;  // log_pz by part: positions, features
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
    // The exact trace's VJP chunks (1 + K blocks) apart from ws's value and
    // Frobenius passes (1 or 2 blocks): a workspace that changed shape at
    // every evaluation would reallocate its records each time.
    Workspace trace_ws;
    // The discrete gradient's replayed stages (f alone, never reversed) apart
    // from ws's VJPs (f with ε's tangent), for the same reason.
    Workspace replay_ws;
    TraceScratch<T> trace;
    std::vector<T> z, f, eps, fbar, zbar, f_extra, zbar_extra;
    AlignedVector<T> grad;  // written through Eigen maps: aligned (see parameters.hpp)
    detail::Mat<T> V, JV, JVbar;
    // The discrete gradient's record of the accepted steps (start t, size h,
    // the state z of each, flat): kept across solves, so that a solve of a
    // shape already seen allocates nothing per step.
    std::vector<double> record_t, record_h, record_z, replay_y0;
  };

  // x → z(1) with ℓ, K, R. eps: n·C noise (ignored unless needs_noise()).
  ForwardResult forward(const T* params, const std::vector<double>& x, int n, const std::vector<double>& eps,
                        Scratch& s) const;

  // z(1) → x: integrates dz/dt = f from 1 down to 0, in place.
  ode::SolveResult reverse(const T* params, std::vector<double>& z, int n, Scratch& s) const;
  // The same for several states at once, in lockstep (ode/batch_solver.hpp):
  // each keeps its own steps, and every stage is one field evaluation over
  // every state still moving, stacked (VectorField::forward_stacked). Each
  // state ends as reverse() would leave it, to rounding. Unconditional fields.
  ode::BatchSolveResult reverse_lockstep(const T* params, std::vector<std::vector<double>>& z, int n,
                                         Scratch& s) const;

  // forward() for several structures at once, in lockstep (ode/batch_solver.hpp):
  // each keeps its own steps, and every stage is one field evaluation over
  // every structure still moving, stacked, with its tangents: ε's one row
  // (Hutchinson), or the exact trace's chunks, whose direction k is e_k of
  // every structure at once (the Jacobian is block-diagonal over the stack).
  // Each result is forward()'s to rounding; solve.ok() false on a failed
  // structure, the others unaffected. eps: one n·C vector per structure (or
  // none when !options().needs_noise()). Unconditional fields.
  std::vector<ForwardResult> forward_lockstep(const T* params, const std::vector<std::vector<double>>& x, int n,
                                              const std::vector<std::vector<double>>& eps, Scratch& s,
                                              long* evaluations = nullptr) const;

  // Loss w·(−log p(x) + λ(K + R)) and its parameter gradient, accumulated
  // into grad (parameter_count() values), by the method of options().gradient.
  AdjointResult gradient(const T* params, const std::vector<double>& x, int n, const std::vector<double>& eps,
                         double weight, Scratch& s, double* grad) const {
    return opt_.gradient == GradientMode::Adjoint ? adjoint(params, x, n, eps, weight, s, grad)
                                                  : discrete(params, x, n, eps, weight, s, grad);
  }
  // The continuous adjoint (cnf_adjoint_impl.hpp).
  AdjointResult adjoint(const T* params, const std::vector<double>& x, int n, const std::vector<double>& eps,
                        double weight, Scratch& s, double* grad) const;
  // Backprop through the forward solve's accepted steps (cnf_discrete_impl.hpp).
  AdjointResult discrete(const T* params, const std::vector<double>& x, int n, const std::vector<double>& eps,
                         double weight, Scratch& s, double* grad) const;

  using Clock = std::chrono::steady_clock;
  // A conditional field's molecule (set on s.ws by the caller) onto another
  // workspace of the scratch, before a solve evaluates on that one too.
  static void share_condition(const Workspace& from, Workspace& to) {
    if constexpr (requires { to.condition_n; }) {
      to.node_condition = from.node_condition;
      to.edge_condition = from.edge_condition;
      to.condition_n = from.condition_n;
    }
  }
  // A forward solve's result from its final augmented state [z, ℓ, K, R].
  ForwardResult forward_result(const std::vector<double>& y, int n, ode::SolveResult solve) const;
  static double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

 private:
  const Field& field_;
  CnfOptions opt_;

  static void check_state(const std::vector<double>& x, int S, const char* what) {
    if (int(x.size()) != S)
      throw std::invalid_argument(std::string(what) + ": state has " + std::to_string(x.size()) + " values, expected " +
                                  std::to_string(S));
  }
  static void to_scalar(const double* y, int S, std::vector<T>& out) {
    out.resize(S);
    for (int k = 0; k < S; ++k) out[k] = T(y[k]);
  }
  double loss_of(const ForwardResult& f, double weight) const {
    return weight * (-f.log_px + opt_.ode_regularization * (f.kinetic + f.frobenius));
  }

  // The forward solve, telling obs of every accepted step.
  ForwardResult forward_recorded(const T* params, const std::vector<double>& x, int n, const std::vector<double>& eps,
                                 Scratch& s, const ode::StepObserver& obs) const;
  void load_noise(const std::vector<double>& eps, int S, Scratch& s) const;
  // [z, ℓ, K, R]' at t.
  void augmented(const T* params, const std::vector<double>& y, std::vector<double>& dy, int n, double t,
                 Scratch& s) const;
  // The adjoint with a_θ a quadrature outside the solver's state (any method).
  ode::SolveResult adjoint_quadrature(const T* params, std::vector<double>& y, int n, double a_l, double a_reg,
                                      const ode::SolverOptions& opt, Scratch& s, double* grad) const;
  // The VJP of the augmented dynamics; s.zbar, s.grad (overwritten), s.f.
  void augmented_vjp(const T* params, const double* z, int n, double t, const double* c_z, double c_l, double c_K,
                     double c_R, Scratch& s) const;
};

// Compiled once, in cnf_instances.cpp.
extern template class Cnf<VectorField<float>>;
extern template class Cnf<VectorField<double>>;

}  // namespace enf
