// Matching structures for equivariant optimal-transport couplings (flow
// matching, issue 14; Klein, Krämer and Noé 2023):
//
//   std::vector<int> col = min_cost_assignment(cost);       // Hungarian, exact
//   Alignment a = align_structures(x, y, n, D);             // best permutation + orthogonal map
//   std::vector<double> y2 = apply_alignment(a, y, n, D);    // y2_i = Q·y_{perm[i]}
//
// align_structures minimises Σ_i |x_i − Q·y_{π(i)}|² over permutations π
// (within atom types when types are given) and orthogonal Q (rotations and
// reflections: the flows are E(n)-equivariant, so a reflection is as free as
// a rotation). The joint problem is not convex; it is solved by alternating
// exact assignment (Hungarian) and exact orthogonal Procrustes (SVD) from
// 2^D starts: y's principal axes turned onto x's under every choice of axis
// signs. The starts are built from the structures themselves, so the result
// (its cost, and y2 up to ties) does not change when either structure is
// rotated, reflected or permuted — the property the tests check. Both
// structures must be centred (centre-of-mass-free).
#pragma once

#include <Eigen/Dense>
#include <vector>

namespace enf {

// Exact minimum-cost perfect matching of a square cost matrix (Hungarian
// algorithm with potentials, O(n³)): col[i] is the column given to row i.
// std::invalid_argument for a non-square or non-finite matrix.
std::vector<int> min_cost_assignment(const Eigen::MatrixXd& cost);

// The orthogonal Q (D × D) minimising Σ_i |a_i − Q·b_i|² for rows a_i, b_i
// (n × D each): Q = U·Vᵀ from the SVD of Aᵀ·B.
Eigen::MatrixXd orthogonal_procrustes(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b);

struct Alignment {
  std::vector<int> perm;  // y2_i = Q·y_{perm[i]}
  Eigen::MatrixXd Q;      // D × D, orthogonal
  double cost = 0;        // Σ_i |x_i − y2_i|²
};

// x, y: n × D row-major, centred. types: per atom of x and of y (the same
// multiset), or both empty for no constraint.
Alignment align_structures(const double* x, const double* y, int n, int D, const std::vector<int>& x_types = {},
                           const std::vector<int>& y_types = {});

// y2 (n × D) = y permuted and mapped by a.
std::vector<double> apply_alignment(const Alignment& a, const double* y, int n, int D);

}  // namespace enf
