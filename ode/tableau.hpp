// Butcher tableaux of the explicit Runge–Kutta methods the solvers offer,
// with the coefficients exactly as Boost.Odeint's steppers use them (the same
// double expressions), so that a step replayed or taken from the tableau is the
// step Boost would take, to the bit:
//   Y_i = y + h Σ_{j<i} a_ij k_j,   k_i = f(Y_i, t + c_i h),
//   y1  = y + h Σ_i b_i k_i          (the propagated solution),
//   err = h Σ_i e_i k_i,  e = b − b̂  (adaptive methods: the embedded estimate).
// FSAL (dopri5): the last stage is evaluated at y1 (its row of a is b, its
// weight 0), so it is the next step's first stage; y1 does not depend on it.
#pragma once

#include <vector>

#include "ode/solver.hpp"

namespace enf::ode {

struct Tableau {
  Method method;
  std::vector<double> c;               // stage times, c_0 = 0
  std::vector<std::vector<double>> a;  // a[i][j], j < i (a[0] empty)
  std::vector<double> b;               // weights of y1
  std::vector<double> e;               // error weights b − b̂; empty for fixed-step methods
  bool fsal = false;
  int order = 1;        // of y1 (Boost's stepper_order: step growth)
  int error_order = 0;  // of the error estimate (Boost's error_order: step shrinking)

  int stages() const { return int(c.size()); }
  // The stages y1 depends on: all but an FSAL method's last (which only
  // serves the error estimate and the next step).
  int solution_stages() const { return fsal ? stages() - 1 : stages(); }
};

// Every Method has one.
const Tableau& tableau(Method m);

}  // namespace enf::ode
