// A gradient checker for users (as Ceres ships one): the derivatives a model
// is trained with, compared with central finite differences of the functions
// they differentiate, on the user's own model and structures.
//
//   field_jvp            forward-mode tangents J·v of the vector field
//   field_vjp_input      the reverse pass wrt the state and wrt the
//   field_vjp_params     parameters, for a random scalar of f and of J·V (so
//                        the second-order term the exact trace's gradient
//                        needs is exercised)
//   nll_grad_adjoint     d(−log p(x))/dθ by the continuous adjoint and by
//   nll_grad_discrete    backprop through the solver's steps, for a random
//                        subset of parameters
//
// Each quantity is one row: the largest absolute and relative error over its
// entries and whether the relative error is within its tolerance.
// Everything here runs in double: float32 rounding would hide the errors the
// checker is for.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "egnn/parameters.hpp"
#include "egnn/vector_field.hpp"

namespace enf {

// The relative error of entry i is |a_i − f_i| / max(|a_i|, |f_i|, floor),
// floor = kRelativeFloor · max_j |f_j|: a central difference resolves every
// entry to an absolute error set by the size of the whole quantity, so entries
// far below that size are measured against 1% of it instead of against
// themselves (else a gradient entry of 1e-12 would "fail" on rounding).
inline constexpr double kRelativeFloor = 1e-2;

struct DerivativeComparison {
  std::string quantity;
  std::size_t entries = 0;
  double max_abs_error = 0;
  double max_rel_error = 0;
  double tolerance = 0;   // on the relative error
  std::size_t worst = 0;  // the entry with the largest relative error
  bool ok = false;        // every entry finite and within tolerance (and at least one entry)
};

// Compares analytic derivatives with finite differences entry by entry.
// Throws std::invalid_argument when the sizes differ.
DerivativeComparison compare_derivatives(const std::string& quantity, const std::vector<double>& analytic,
                                         const std::vector<double>& finite_difference, double tolerance,
                                         double floor_fraction = kRelativeFloor);

// d/dh g(h) at 0 by central differences with one Richardson step:
// (4 D(h/2) − D(h)) / 3 with D(h) = (g(h) − g(−h)) / 2h, error O(h⁴).
double central_difference(const std::function<double(double)>& g, double h);

struct GradientCheckOptions {
  int directions = 2;  // J·v: random unit directions per structure
  int params = 20;     // parameters checked per structure (random subset; all if fewer)
  std::uint64_t seed = 0;
  int threads = 0;  // for the NLL's solves (0: OpenMP's default); results do not depend on it
  // Field: Richardson-extrapolated differences at h = 1e-4 are accurate to
  // ~1e-9 relative on EGNN fields (tests/egnn); 1e-6 leaves a factor 1000.
  double field_step = 1e-4;
  double field_tolerance = 1e-6;
  // NLL: exact trace, dopri5 at rtol = atol = solver_tolerance for the solves
  // and the adjoint. The adaptive step sequence makes the loss only piecewise
  // smooth in θ (jumps ~ tolerance·|loss|), so the difference carries
  // ~tolerance·|loss|/h of noise: h = 1e-3 keeps that near 1e-5 while the
  // truncation (h⁴ after Richardson) stays far below. Both gradients also
  // differ from the exact one by the solver's error (the adjoint by its
  // backward solve, the discrete one by the step sizes' dependence on θ).
  double solver_tolerance = 1e-9;
  double loss_step = 1e-3;
  double loss_tolerance = 1e-4;
};

// Checks one particle model (VectorField<double> of cfg with params) on
// `rows` structures x ([rows, n·C], centre of mass removed here). `log`
// receives progress lines (may be empty). Returns the rows in the order of
// the header comment.
std::vector<DerivativeComparison> check_gradients(const FieldConfig& cfg, const Parameters<double>& params,
                                                  const std::vector<double>& x, int rows, int n,
                                                  const GradientCheckOptions& opt,
                                                  const std::function<void(const std::string&)>& log = {});

}  // namespace enf
