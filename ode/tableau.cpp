// The coefficients are typed as Boost.Odeint writes them (runge_kutta_dopri5,
// runge_kutta_cash_karp54, runge_kutta_fehlberg78, runge_kutta4, euler): the
// same quotients of the same integers give the same doubles, and
// tests/ode/test_ode.cpp checks every tableau's step against Boost's.
#include "ode/tableau.hpp"

namespace enf::ode {

namespace {

Tableau make_dopri5() {
  Tableau t;
  t.method = Method::Dopri5;
  t.c = {0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1};
  t.b = {35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84, 0};
  t.a = {{},
         {1.0 / 5},
         {3.0 / 40, 9.0 / 40},
         {44.0 / 45, -56.0 / 15, 32.0 / 9},
         {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
         {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
         {t.b.begin(), t.b.end() - 1}};  // FSAL: the 7th stage is f(y1)
  // b − b̂ with b̂ the 4th-order weights, as Boost forms them (dc1 … dc7).
  t.e = {35.0 / 384 - 5179.0 / 57600,
         0,
         500.0 / 1113 - 7571.0 / 16695,
         125.0 / 192 - 393.0 / 640,
         -2187.0 / 6784 - -92097.0 / 339200,
         11.0 / 84 - 187.0 / 2100,
         -1.0 / 40};
  t.fsal = true;
  t.order = 5;
  t.error_order = 4;
  return t;
}

Tableau make_cash_karp() {
  Tableau t;
  t.method = Method::CashKarp54;
  t.c = {0.0, 1.0 / 5.0, 3.0 / 10.0, 3.0 / 5.0, 1.0, 7.0 / 8.0};
  t.a = {{},
         {1.0 / 5.0},
         {3.0 / 40.0, 9.0 / 40.0},
         {3.0 / 10.0, -9.0 / 10.0, 6.0 / 5.0},
         {-11.0 / 54.0, 5.0 / 2.0, -70.0 / 27.0, 35.0 / 27.0},
         {1631.0 / 55296.0, 175.0 / 512.0, 575.0 / 13824.0, 44275.0 / 110592.0, 253.0 / 4096.0}};
  t.b = {37.0 / 378.0, 0.0, 250.0 / 621.0, 125.0 / 594.0, 0.0, 512.0 / 1771.0};
  t.e = {37.0 / 378.0 - 2825.0 / 27648.0, 0.0,
         250.0 / 621.0 - 18575.0 / 48384.0, 125.0 / 594.0 - 13525.0 / 55296.0,
         -277.0 / 14336.0, 512.0 / 1771.0 - 1.0 / 4.0};
  t.order = 5;
  t.error_order = 4;
  return t;
}

Tableau make_fehlberg78() {
  Tableau t;
  t.method = Method::Fehlberg78;
  t.c = {0.0, 2.0 / 27.0, 1.0 / 9.0, 1.0 / 6.0, 5.0 / 12.0, 1.0 / 2.0, 5.0 / 6.0,
         1.0 / 6.0, 2.0 / 3.0, 1.0 / 3.0, 1.0, 0.0, 1.0};
  t.a = {{},
         {2.0 / 27.0},
         {1.0 / 36.0, 1.0 / 12.0},
         {1.0 / 24.0, 0.0, 1.0 / 8.0},
         {5.0 / 12.0, 0.0, -25.0 / 16.0, 25.0 / 16.0},
         {1.0 / 20.0, 0.0, 0.0, 1.0 / 4.0, 1.0 / 5.0},
         {-25.0 / 108.0, 0.0, 0.0, 125.0 / 108.0, -65.0 / 27.0, 125.0 / 54.0},
         {31.0 / 300.0, 0.0, 0.0, 0.0, 61.0 / 225.0, -2.0 / 9.0, 13.0 / 900.0},
         {2.0, 0.0, 0.0, -53.0 / 6.0, 704.0 / 45.0, -107.0 / 9.0, 67.0 / 90.0, 3.0},
         {-91.0 / 108.0, 0.0, 0.0, 23.0 / 108.0, -976.0 / 135.0, 311.0 / 54.0, -19.0 / 60.0, 17.0 / 6.0, -1.0 / 12.0},
         {2383.0 / 4100.0, 0.0, 0.0, -341.0 / 164.0, 4496.0 / 1025.0, -301.0 / 82.0, 2133.0 / 4100.0, 45.0 / 82.0,
          45.0 / 164.0, 18.0 / 41.0},
         {3.0 / 205.0, 0.0, 0.0, 0.0, 0.0, -6.0 / 41.0, -3.0 / 205.0, -3.0 / 41.0, 3.0 / 41.0, 6.0 / 41.0, 0.0},
         {-1777.0 / 4100.0, 0.0, 0.0, -341.0 / 164.0, 4496.0 / 1025.0, -289.0 / 82.0, 2193.0 / 4100.0, 51.0 / 82.0,
          33.0 / 164.0, 12.0 / 41.0, 0.0, 1.0}};
  t.b = {0.0, 0.0, 0.0, 0.0, 0.0, 34.0 / 105.0, 9.0 / 35.0, 9.0 / 35.0, 9.0 / 280.0, 9.0 / 280.0, 0.0,
         41.0 / 840.0, 41.0 / 840.0};
  t.e = {0.0 - 41.0 / 840.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0 - 41.0 / 840.0, 41.0 / 840.0,
         41.0 / 840.0};
  t.order = 8;
  t.error_order = 7;
  return t;
}

Tableau make_rk4() {
  Tableau t;
  t.method = Method::RK4;
  t.c = {0, 0.5, 0.5, 1};
  t.a = {{}, {0.5}, {0, 0.5}, {0, 0, 1}};
  t.b = {1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6};
  t.order = 4;
  return t;
}

Tableau make_euler() {
  Tableau t;
  t.method = Method::Euler;
  t.c = {0};
  t.a = {{}};
  t.b = {1};
  t.order = 1;
  return t;
}

}  // namespace

const Tableau& tableau(Method m) {
  static const Tableau dopri5 = make_dopri5(), cash_karp = make_cash_karp(), fehlberg78 = make_fehlberg78(),
                       rk4 = make_rk4(), euler = make_euler();
  switch (m) {
    case Method::Dopri5: return dopri5;
    case Method::CashKarp54: return cash_karp;
    case Method::Fehlberg78: return fehlberg78;
    case Method::RK4: return rk4;
    case Method::Euler: return euler;
  }
  return dopri5;  // unreachable: every Method is listed
}

}  // namespace enf::ode
