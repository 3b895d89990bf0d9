// Test support: random orthogonal maps and permutations, for the symmetry
// tests of flow matching (particles and molecules).
#pragma once

#include <Eigen/Dense>
#include <numeric>
#include <utility>
#include <vector>

#include "engine/rng.hpp"

namespace enf::test {

// A random D × D orthogonal matrix: det −1 when `reflect`, else +1.
inline Eigen::MatrixXd random_orthogonal(int D, Rng& rng, bool reflect) {
  Eigen::MatrixXd A(D, D);
  for (int i = 0; i < D; ++i)
    for (int j = 0; j < D; ++j) A(i, j) = rng.normal();
  Eigen::MatrixXd Q = Eigen::HouseholderQR<Eigen::MatrixXd>(A).householderQ();
  if (reflect == (Q.determinant() > 0)) Q.col(0) *= -1;
  return Q;
}

inline std::vector<int> random_permutation(int n, Rng& rng) {
  std::vector<int> p(n);
  std::iota(p.begin(), p.end(), 0);
  for (int i = n - 1; i > 0; --i) std::swap(p[i], p[int(rng.uniform() * (i + 1))]);
  return p;
}

}  // namespace enf::test
