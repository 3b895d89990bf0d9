// Test support: random but reproducible models and inputs.
#pragma once

#include <cmath>
#include <utility>
#include <vector>

#include "egnn/vector_field.hpp"
#include "engine/initialization.hpp"
#include "engine/rng.hpp"
#include "support/finite_difference.hpp"

namespace enf::test {

// The reference initialisation plus `perturbation`·N(0,1) on every parameter,
// so that no layer is close to the identity (as the fixtures' "perturbed").
inline Parameters<double> random_params(const FieldConfig& cfg, std::uint64_t seed, double perturbation = 0.2) {
  Parameters<double> p(field_layout(cfg));
  Rng rng(seed);
  initialize_egnn(cfg.egnn(), p, rng);
  for (double& v : p.values) v += perturbation * rng.normal();
  return p;
}

// n nodes: positions N(0, scale²) with the centre of mass removed, features N(0, 1).
inline std::vector<double> random_state(const FieldConfig& cfg, int n, Rng& rng, double scale = 1.5) {
  const int C = cfg.channels();
  std::vector<double> z(std::size_t(n) * C);
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < C; ++c) z[i * C + c] = rng.normal() * (c < cfg.dim ? scale : 1.0);
  for (int d = 0; d < cfg.dim; ++d) {
    double m = 0;
    for (int i = 0; i < n; ++i) m += z[i * C + d];
    for (int i = 0; i < n; ++i) z[i * C + d] -= m / n;
  }
  return z;
}

// A random direction of unit length, so a finite-difference step means the
// same whatever the size of what it perturbs.
inline std::vector<double> unit_direction(std::size_t size, Rng& rng) {
  std::vector<double> u(size);
  double norm = 0;
  for (double& x : u) {
    x = rng.normal();
    norm += x * x;
  }
  for (double& x : u) x /= std::sqrt(norm);
  return u;
}

// The gradient's component along a random unit direction u of parameter
// space, and the finite difference of `loss(params)` along u.
template <class Loss>
std::pair<double, double> along_random_direction(const Parameters<double>& p, const std::vector<double>& grad,
                                                 Rng& rng, Loss loss) {
  const std::vector<double> u = unit_direction(p.values.size(), rng);
  double predicted = 0;
  for (std::size_t k = 0; k < u.size(); ++k) predicted += u[k] * grad[k];
  const double fd = derivative([&](double h) {
    Parameters<double> q = p;
    for (std::size_t k = 0; k < u.size(); ++k) q.values[k] += h * u[k];
    return loss(q);
  });
  return {predicted, fd};
}

inline FieldConfig small_molecule_field() {
  FieldConfig c;
  c.dim = 3;
  c.features = 3;
  c.hidden = 8;
  c.layers = 2;
  return c;
}

}  // namespace enf::test
