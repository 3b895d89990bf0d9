// ode/'s own knowledge of its methods: the tableaux step as Boost's steppers
// do, dopri5 stepped from its tableau takes Boost's steps (to rounding), the
// replay of a step is the transpose of its Jacobian, and a quadrature along
// the steps is the sum the solver forms for a state component.
#include <catch2/catch.hpp>

#include <Eigen/Dense>
#include <boost/numeric/odeint.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "ode/replay.hpp"
#include "ode/solver.hpp"
#include "ode/tableau.hpp"

using namespace enf::ode;
using Vec = std::vector<double>;
namespace odeint = boost::numeric::odeint;

namespace {

// Boost's generic steppers sum zero-weight terms and group sums their own way:
// the same tableau then differs by rounding only.
constexpr double kRounding = 1e-14;

// A small nonlinear system (a damped pendulum chain) and its Jacobian.
void pendulum(const Vec& y, Vec& dydt, double t) {
  const std::size_t n = y.size() / 2;
  for (std::size_t i = 0; i < n; ++i) {
    const double coupling = i + 1 < n ? y[i + 1] - y[i] : 0.0;
    dydt[i] = y[n + i];
    dydt[n + i] = -std::sin(y[i]) - 0.1 * y[n + i] + 0.3 * coupling + 0.05 * std::cos(t);
  }
}
Eigen::MatrixXd pendulum_jacobian(const Vec& y) {
  const int n = int(y.size() / 2);
  Eigen::MatrixXd J = Eigen::MatrixXd::Zero(2 * n, 2 * n);
  for (int i = 0; i < n; ++i) {
    J(i, n + i) = 1;
    J(n + i, i) = -std::cos(y[i]) - (i + 1 < n ? 0.3 : 0.0);
    if (i + 1 < n) J(n + i, i + 1) = 0.3;
    J(n + i, n + i) = -0.1;
  }
  return J;
}
const Vec kStart = {0.3, -0.2, 0.5, 0.1, 0.0, -0.4};

// One step from the tableau, written out plainly.
Vec tableau_step(const Tableau& tab, const Vec& y, double t, double h, Vec* err) {
  const int s = tab.stages();
  std::vector<Vec> k(s, Vec(y.size()));
  for (int i = 0; i < s; ++i) {
    Vec Y = y;
    for (int j = 0; j < i; ++j)
      for (std::size_t m = 0; m < y.size(); ++m) Y[m] += h * tab.a[i][j] * k[j][m];
    pendulum(Y, k[i], t + tab.c[i] * h);
  }
  Vec y1 = y;
  if (err) err->assign(y.size(), 0.0);
  for (int i = 0; i < s; ++i)
    for (std::size_t m = 0; m < y.size(); ++m) {
      y1[m] += h * tab.b[i] * k[i][m];
      if (err) (*err)[m] += h * tab.e[i] * k[i][m];
    }
  return y1;
}

void check_close(const Vec& a, const Vec& b, double tol) {
  REQUIRE(a.size() == b.size());
  for (std::size_t m = 0; m < a.size(); ++m) CHECK(std::abs(a[m] - b[m]) <= tol * (1 + std::abs(b[m])));
}

}  // namespace

TEST_CASE("every tableau steps as Boost's stepper does", "[ode][tableau]") {
  const double t = 0.2, h = 0.15;
  Vec dydt(kStart.size()), out(kStart.size()), dout(kStart.size()), berr(kStart.size()), err;
  pendulum(kStart, dydt, t);
  {
    odeint::runge_kutta_dopri5<Vec> st;
    st.do_step(pendulum, kStart, dydt, t, out, dout, h, berr);
    check_close(tableau_step(tableau(Method::Dopri5), kStart, t, h, &err), out, kRounding);
    check_close(err, berr, kRounding);
  }
  {
    odeint::runge_kutta_cash_karp54<Vec> st;
    st.do_step(pendulum, kStart, t, out, h, berr);
    check_close(tableau_step(tableau(Method::CashKarp54), kStart, t, h, &err), out, kRounding);
    check_close(err, berr, kRounding);
  }
  {
    odeint::runge_kutta_fehlberg78<Vec> st;
    st.do_step(pendulum, kStart, t, out, h, berr);
    check_close(tableau_step(tableau(Method::Fehlberg78), kStart, t, h, &err), out, kRounding);
    check_close(err, berr, kRounding);
  }
  {
    odeint::runge_kutta4<Vec> st;
    st.do_step(pendulum, kStart, t, out, h);
    check_close(tableau_step(tableau(Method::RK4), kStart, t, h, nullptr), out, kRounding);
  }
  {
    odeint::euler<Vec> st;
    st.do_step(pendulum, kStart, t, out, h);
    check_close(tableau_step(tableau(Method::Euler), kStart, t, h, nullptr), out, kRounding);
  }
  for (Method m : {Method::Dopri5, Method::CashKarp54, Method::Fehlberg78, Method::RK4, Method::Euler}) {
    const Tableau& tab = tableau(m);
    INFO(to_string(m));
    CHECK(tab.method == m);
    CHECK(int(tab.a.size()) == tab.stages());
    CHECK(int(tab.b.size()) == tab.stages());
    CHECK(tab.e.empty() != is_adaptive(m));
    for (int i = 0; i < tab.stages(); ++i) CHECK(int(tab.a[i].size()) == i);
  }
}

// A solve with a Quadrature is stepped by ode/ from the method's tableau; a
// plain solve by Boost's stepper (runge_kutta_dopri5, cash_karp54,
// fehlberg78, runge_kutta4, euler). The arithmetic is the same term for
// term, but the compiler fuses multiply-adds as it likes in each, so values
// agree to rounding, not to the bit: the same steps, and states within 1e-12.
TEST_CASE("every method stepped from its tableau takes Boost's steps", "[ode][tableau]") {
  for (const Method m : {Method::Dopri5, Method::CashKarp54, Method::Fehlberg78, Method::RK4, Method::Euler})
  for (const double t1 : {3.0, -2.0}) {
    INFO(to_string(m) << ", t1 = " << t1);
    SolverOptions opt;
    opt.method = m;
    opt.rtol = 1e-7;
    opt.atol = 1e-8;
    opt.fixed_step = 0.01;
    Vec y = kStart;
    const auto boost = integrate(pendulum, y, 0.0, t1, opt);
    REQUIRE(boost.ok());
    REQUIRE(boost.stats.accepted > 5);  // enough steps to compare (fehlberg78 takes 7 here)
    std::vector<double> slots(quadrature_slots(m));
    double q = 0;
    Quadrature quad;
    quad.system = [&](const Vec& yy, Vec& dydt, double t, int slot) {
      pendulum(yy, dydt, t);
      slots.at(slot) = 1.0;
    };
    quad.accumulate = [&](int slot, double w) { q += w * slots[slot]; };
    Vec yq = kStart;
    const auto own = integrate(quad, yq, 0.0, t1, opt);
    REQUIRE(own.ok());
    CHECK(own.stats.accepted == boost.stats.accepted);
    CHECK(own.stats.rejected == boost.stats.rejected);
    CHECK(own.stats.nfe == boost.stats.nfe);
    CHECK(own.stats.last_step == Approx(boost.stats.last_step).epsilon(1e-12));
    check_close(yq, y, 1e-12);
    CHECK(q == Approx(t1).epsilon(1e-13));  // ∫ 1 dt: the weights of every step sum to its h
  }
}

TEST_CASE("a step's replay is the transpose of its Jacobian", "[ode][replay]") {
  const double t0 = 0.4, h = 0.2;
  const std::size_t S = kStart.size();
  for (Method m : {Method::Dopri5, Method::CashKarp54, Method::Fehlberg78, Method::RK4, Method::Euler}) {
    INFO(to_string(m));
    const Tableau& tab = tableau(m);
    // The Jacobian of one step by central differences.
    Eigen::MatrixXd M(S, S);
    const double d = 1e-6;
    for (std::size_t j = 0; j < S; ++j) {
      Vec yp = kStart, ym = kStart;
      yp[j] += d;
      ym[j] -= d;
      const Vec fp = tableau_step(tab, yp, t0, h, nullptr), fm = tableau_step(tab, ym, t0, h, nullptr);
      for (std::size_t i = 0; i < S; ++i) M(i, j) = (fp[i] - fm[i]) / (2 * d);
    }
    Vec ybar = {1.0, -2.0, 0.5, 0.25, -1.0, 3.0};
    const Eigen::VectorXd expect = M.transpose() * Eigen::Map<const Eigen::VectorXd>(ybar.data(), Eigen::Index(S));
    StepReplay replay(m);
    double hb_sum = 0;
    replay.reverse(pendulum,
                   [&](const Vec& Y, double, const Vec& kbar, double hb, Vec& Ybar) {
                     hb_sum += hb;
                     const Eigen::VectorXd v =
                         pendulum_jacobian(Y).transpose() * Eigen::Map<const Eigen::VectorXd>(kbar.data(), Eigen::Index(S));
                     Ybar.assign(v.data(), v.data() + S);
                   },
                   t0, h, kStart, ybar);
    for (std::size_t i = 0; i < S; ++i) CHECK(ybar[i] == Approx(expect(i)).margin(1e-8));
    CHECK(hb_sum == Approx(h));  // Σ b_i = 1: a constant rate integrates exactly
    CHECK(replay.stages() == (tab.fsal ? tab.stages() - 1 : tab.stages()));
  }
}

// q = ∫ g dt carried as state components outside the error norm, against the
// same q accumulated by the Quadrature: the same steps and the same sums.
TEST_CASE("a quadrature along the steps is the state component's sum", "[ode][quadrature]") {
  for (const Method m : {Method::Dopri5, Method::CashKarp54, Method::Fehlberg78, Method::RK4, Method::Euler}) {
  INFO(to_string(m));
  const std::size_t S = kStart.size(), Q = 3;
  auto g = [](const Vec& y, double t, double* out) {
    out[0] = y[0] * y[1];
    out[1] = std::sin(t) + y[2] * y[2];
    out[2] = 1.0;
  };
  SolverOptions opt;
  opt.method = m;
  opt.fixed_step = 0.01;
  opt.rtol = opt.atol = 1e-8;
  opt.error_components = S;
  opt.initial_step = 0.05;  // the automatic one would see q's components
  Vec aug(S + Q, 0.0);
  std::copy(kStart.begin(), kStart.end(), aug.begin());
  const auto ra = integrate(
      [&](const Vec& y, Vec& dydt, double t) {
        pendulum(Vec(y.begin(), y.begin() + S), dydt, t);
        g(y, t, dydt.data() + S);
      },
      aug, 0.0, 2.0, opt);
  REQUIRE(ra.ok());

  std::vector<std::array<double, 3>> slots(quadrature_slots(m));
  std::array<double, 3> q{0, 0, 0};
  Vec y = kStart;
  Quadrature quad;
  quad.system = [&](const Vec& yy, Vec& dydt, double t, int slot) {
    pendulum(yy, dydt, t);
    g(yy, t, slots.at(slot).data());
  };
  quad.accumulate = [&](int slot, double w) {
    for (std::size_t k = 0; k < Q; ++k) q[k] += w * slots[slot][k];
  };
  const auto rq = integrate(quad, y, 0.0, 2.0, opt);
  REQUIRE(rq.ok());
  CHECK(rq.stats.accepted == ra.stats.accepted);
  CHECK(rq.stats.rejected == ra.stats.rejected);
  CHECK(rq.stats.nfe == ra.stats.nfe);
  // The augmented solve is Boost's stepper, the quadrature ode/'s: equal to rounding.
  for (std::size_t k = 0; k < S; ++k) CHECK(y[k] == Approx(aug[k]).epsilon(1e-12));
  for (std::size_t k = 0; k < Q; ++k) CHECK(q[k] == Approx(aug[S + k]).epsilon(1e-12));
  // ∫ 1 dt: the step weights sum to 2; the fixed grids add 200 (rk4: 800) of
  // them, hence rounding of order 1e-13 there.
  CHECK(q[2] == Approx(2.0).epsilon(is_adaptive(m) ? 1e-14 : 1e-12));
  }
}
