// Test support: solver and CNF options at a given tolerance, the settings the
// fixture comparisons use (dopri5, rtol = atol, exact trace).
#pragma once

#include "engine/cnf.hpp"
#include "ode/solver.hpp"

namespace enf::test {

inline ode::SolverOptions tight(double tol) {
  ode::SolverOptions o;
  o.method = ode::Method::Dopri5;
  o.rtol = o.atol = tol;
  return o;
}

// Exact trace, forward and adjoint solves both at `tol`.
inline CnfOptions exact_options(double tol) {
  CnfOptions o;
  o.trace = TraceEstimator::Exact;
  o.solver = o.adjoint_solver = tight(tol);
  return o;
}

// Training's settings: Hutchinson with Rademacher noise, both solves at `tol`.
inline CnfOptions training_options(double tol) {
  CnfOptions o;
  o.trace = TraceEstimator::Rademacher;
  o.solver = o.adjoint_solver = tight(tol);
  return o;
}

}  // namespace enf::test
