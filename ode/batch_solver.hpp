// A batch of independent ODE solves advanced in lockstep: every sample keeps
// its own t, step size, error control and accept/reject, but each evaluation
// of the vector field is ONE call over every sample still active, so that the
// caller can stack them into one big matrix product.
//
// Contract:
//   * Per sample, the solve is integrate()'s (solver.hpp): the same steps, the
//     same SolveResult (status, message, t_failed, stats: nfe, accepted,
//     rejected, last_step), the same final state.
//       dopri5      bit-identical to integrate(Quadrature, …) (ode/ steps it
//                   from its tableau with the same code, rk_step.hpp); equal
//                   to rounding to integrate(System, …) (Boost's stepper).
//       cash_karp,  stepped from their tableaux with Boost's step control;
//       fehlberg78  equal to Boost's steppers to rounding (Boost groups its
//                   sums its own way), the same counts.
//       rk4, euler  the same step grid for every sample; equal to Boost's
//                   steppers to rounding, the same counts.
//   * A sample's result never depends on which other samples share its batch
//     (or their order): bit for bit.
//   * Each call of the BatchSystem holds every sample still active, each with
//     its own (y, t): one evaluation per sample and call, so the number of
//     calls is the largest per-sample NFE and `evaluations` their sum. The
//     samples of one call need not be at the same stage (non-FSAL methods
//     evaluate f(y) after an accepted step but not after a rejected one).
//   * A sample that finishes or fails leaves the active set; the others go on.
//   * The pointers of a BatchEval are valid during the call only; dydt[k] has
//     the size of sample active[k]'s state.
//   * Throws std::invalid_argument exactly where integrate() would (invalid
//     options, non-finite t0 / t1, an empty system); an exception thrown by
//     the BatchSystem propagates and leaves every y[b] as it was.
//   * Workspaces are sized once per call of integrate_batch; stepping does not
//     allocate (failure messages aside).
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "ode/solver.hpp"

namespace enf::ode {

// One evaluation request for the samples still active: active[k] is the index
// of a sample in the batch; y[k] its state (size of that sample's state),
// t[k] its own time, dydt[k] where f goes (same size). Called once per stage
// for all active samples together.
struct BatchEval {
  std::span<const int> active;
  std::span<const double* const> y;
  std::span<const double> t;
  std::span<double* const> dydt;
};
using BatchSystem = std::function<void(const BatchEval&)>;

struct BatchSolveResult {
  std::vector<SolveResult> samples;  // one per sample, as integrate() would report it
  long calls = 0;                    // calls of the BatchSystem
  long evaluations = 0;              // Σ over calls of active.size()
};

// Integrates every y[b] from t0 to t1 (states may differ in size), in lockstep.
// y[b] is updated in place (on failure: its last finite state, as integrate()).
// Throws std::invalid_argument exactly where integrate() would (bad options,
// non-finite t0/t1, empty system). Methods: every Method (dopri5, cash_karp,
// fehlberg78, rk4, euler).
BatchSolveResult integrate_batch(const BatchSystem& f, std::vector<std::vector<double>>& y, double t0, double t1,
                                 const SolverOptions& opt);

}  // namespace enf::ode
