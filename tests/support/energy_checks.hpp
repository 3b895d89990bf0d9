// Checks of target energies shared by the energy tests (DW4, LJ13, LJ55).
#pragma once

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "datasets/energies.hpp"
#include "engine/rng.hpp"
#include "support/finite_difference.hpp"
#include "support/random_model.hpp"

namespace enf::test {

// Directional derivatives of E along random unit directions equal −F·v.
inline void check_forces(const ParticleSystem& sys, const std::vector<double>& x, LJConvention conv, Rng& rng,
                         int directions = 4) {
  std::vector<double> f(x.size());
  energy_and_forces(sys, x.data(), f.data(), conv);
  double fnorm = 0;
  for (double e : f) fnorm += e * e;
  fnorm = std::sqrt(fnorm);
  for (int k = 0; k < directions; ++k) {
    const std::vector<double> v = test::unit_direction(x.size(), rng);
    const double fd = test::derivative([&](double h) {
      std::vector<double> y = x;
      for (std::size_t i = 0; i < y.size(); ++i) y[i] += h * v[i];
      return energy(sys, y.data(), conv);
    });
    double analytic = 0;
    for (std::size_t i = 0; i < x.size(); ++i) analytic -= f[i] * v[i];
    INFO(sys.name << " " << to_string(conv) << ": dE/dv analytic " << analytic << ", finite difference " << fd);
    CHECK(std::abs(analytic - fd) <= 1e-7 * std::max(1.0, fnorm));
  }
}

}  // namespace enf::test
