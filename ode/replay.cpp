// The discrete adjoint of one explicit RK step (see replay.hpp). The
// arithmetic is term for term what the engine's replay did before it moved
// here, so gradients are unchanged to the bit.
#include "ode/replay.hpp"

#include <algorithm>

namespace enf::ode {

StepReplay::StepReplay(Method m) : tab_(ode::tableau(m)) {}

void StepReplay::stage_state(const std::vector<double>& y0, int i, double h) {
  Y_ = y0;
  for (int j = 0; j < i; ++j)
    if (tab_.a[i][j] != 0)
      for (std::size_t k = 0; k < Y_.size(); ++k) Y_[k] += h * tab_.a[i][j] * K_[j][k];
}

void StepReplay::reverse(const System& f, const StageVjp& vjp, double t0, double h, const std::vector<double>& y0,
                         std::vector<double>& ybar) {
  const int stages = this->stages();
  const std::size_t S = y0.size();
  K_.resize(stages);
  Ybar_.resize(stages);
  for (int i = 0; i < stages; ++i) {
    K_[i].resize(S);
    Ybar_[i].resize(S);
  }
  kbar_.resize(S);
  // Recompute the stages' velocities.
  for (int i = 0; i < stages; ++i) {
    stage_state(y0, i, h);
    f(Y_, K_[i], t0 + tab_.c[i] * h);
  }
  // Reverse them, last first: stage i's cotangent gathers the later stages'.
  ybar0_ = ybar;
  for (int i = stages - 1; i >= 0; --i) {
    for (std::size_t k = 0; k < S; ++k) {
      double v = h * tab_.b[i] * ybar[k];
      for (int m = i + 1; m < stages; ++m)
        if (tab_.a[m][i] != 0) v += h * tab_.a[m][i] * Ybar_[m][k];
      kbar_[k] = v;
    }
    const double hb = h * tab_.b[i];
    if (hb == 0 && std::all_of(kbar_.begin(), kbar_.end(), [](double v) { return v == 0; })) {
      std::fill(Ybar_[i].begin(), Ybar_[i].end(), 0.0);
      continue;
    }
    stage_state(y0, i, h);
    vjp(Y_, t0 + tab_.c[i] * h, kbar_, hb, Ybar_[i]);
    for (std::size_t k = 0; k < S; ++k) ybar0_[k] += Ybar_[i][k];
  }
  ybar.swap(ybar0_);
}

}  // namespace enf::ode
