// Hungarian assignment, orthogonal Procrustes and their alternation
// (alignment.hpp).
#include "engine/alignment.hpp"

#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

namespace enf {

std::vector<int> min_cost_assignment(const Eigen::MatrixXd& cost) {
  const int n = int(cost.rows());
  if (cost.cols() != n) throw std::invalid_argument("min_cost_assignment: the cost matrix must be square");
  if (!cost.allFinite()) throw std::invalid_argument("min_cost_assignment: non-finite cost");
  // Shortest augmenting paths with row/column potentials u, v (1-based; row
  // 0 and column 0 are the virtual start), as in Kuhn–Munkres/Jonker–Volgenant.
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0.0), v(n + 1, 0.0);
  std::vector<int> row_of(n + 1, 0), way(n + 1, 0);  // row_of[j]: row matched to column j
  for (int i = 1; i <= n; ++i) {
    row_of[0] = i;
    int j0 = 0;
    std::vector<double> minv(n + 1, inf);
    std::vector<char> used(n + 1, 0);
    do {
      used[j0] = 1;
      const int i0 = row_of[j0];
      double delta = inf;
      int j1 = 0;
      for (int j = 1; j <= n; ++j) {
        if (used[j]) continue;
        const double cur = cost(i0 - 1, j - 1) - u[i0] - v[j];
        if (cur < minv[j]) minv[j] = cur, way[j] = j0;
        if (minv[j] < delta) delta = minv[j], j1 = j;
      }
      for (int j = 0; j <= n; ++j) {
        if (used[j]) {
          u[row_of[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (row_of[j0] != 0);
    do {
      const int j1 = way[j0];
      row_of[j0] = row_of[j1];
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<int> col(n);
  for (int j = 1; j <= n; ++j) col[row_of[j] - 1] = j - 1;
  return col;
}

Eigen::MatrixXd orthogonal_procrustes(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  // Σ|a_i − Q b_i|² = const − 2 tr(Qᵀ Aᵀ B)... maximised by Q = U Vᵀ, Aᵀ B = U Σ Vᵀ.
  const Eigen::JacobiSVD<Eigen::MatrixXd> svd(a.transpose() * b, Eigen::ComputeFullU | Eigen::ComputeFullV);
  return svd.matrixU() * svd.matrixV().transpose();
}

namespace {

using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// The permutation minimising Σ|x_i − z_perm[i]|², within types when given.
std::vector<int> assign(const Eigen::MatrixXd& x, const Eigen::MatrixXd& z, const std::vector<int>& xt,
                        const std::vector<int>& zt) {
  const int n = int(x.rows());
  std::vector<int> perm(n);
  if (xt.empty()) {
    Eigen::MatrixXd cost(n, n);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) cost(i, j) = (x.row(i) - z.row(j)).squaredNorm();
    return min_cost_assignment(cost);
  }
  std::map<int, std::pair<std::vector<int>, std::vector<int>>> groups;
  for (int i = 0; i < n; ++i) groups[xt[i]].first.push_back(i), groups[zt[i]].second.push_back(i);
  for (const auto& [type, g] : groups) {
    const auto& [rows, cols] = g;
    const int m = int(rows.size());
    Eigen::MatrixXd cost(m, m);
    for (int a = 0; a < m; ++a)
      for (int b = 0; b < m; ++b) cost(a, b) = (x.row(rows[a]) - z.row(cols[b])).squaredNorm();
    const std::vector<int> c = min_cost_assignment(cost);
    for (int a = 0; a < m; ++a) perm[rows[a]] = cols[c[a]];
  }
  return perm;
}

}  // namespace

Alignment align_structures(const double* xp, const double* yp, int n, int D, const std::vector<int>& x_types,
                           const std::vector<int>& y_types) {
  if (n < 1 || D < 1) throw std::invalid_argument("align_structures: empty structures");
  if (x_types.size() != y_types.size() || (!x_types.empty() && int(x_types.size()) != n))
    throw std::invalid_argument("align_structures: types must be given for every atom of both structures, or none");
  if (!x_types.empty()) {
    std::map<int, int> balance;
    for (int i = 0; i < n; ++i) ++balance[x_types[i]], --balance[y_types[i]];
    for (const auto& [type, count] : balance)
      if (count != 0) throw std::invalid_argument("align_structures: the structures have different atom types");
  }
  const Eigen::MatrixXd x = Eigen::Map<const RowMat>(xp, n, D), y = Eigen::Map<const RowMat>(yp, n, D);
  // Principal axes (columns, ascending eigenvalues) of each structure.
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> ex(x.transpose() * x), ey(y.transpose() * y);
  Alignment best;
  best.cost = std::numeric_limits<double>::infinity();
  for (int signs = 0; signs < (1 << D); ++signs) {
    Eigen::VectorXd s(D);
    for (int d = 0; d < D; ++d) s(d) = (signs >> d) & 1 ? -1.0 : 1.0;
    Eigen::MatrixXd Q = ex.eigenvectors() * s.asDiagonal() * ey.eigenvectors().transpose();
    std::vector<int> perm;
    double cost = std::numeric_limits<double>::infinity();
    // Each half-step can only lower the cost; stop when it no longer does.
    for (int iter = 0; iter < 100; ++iter) {
      const Eigen::MatrixXd z = y * Q.transpose();  // rows Q·y_j
      std::vector<int> p = assign(x, z, x_types, y_types);
      Eigen::MatrixXd yp2(n, D);
      for (int i = 0; i < n; ++i) yp2.row(i) = y.row(p[i]);
      const Eigen::MatrixXd Qn = orthogonal_procrustes(x, yp2);
      const double c = (x - yp2 * Qn.transpose()).squaredNorm();
      const bool improved = c < cost * (1 - 1e-12);
      if (c <= cost) cost = c, perm = std::move(p), Q = Qn;
      if (!improved) break;
    }
    if (cost < best.cost) best = Alignment{perm, Q, cost};
  }
  return best;
}

std::vector<double> apply_alignment(const Alignment& a, const double* y, int n, int D) {
  std::vector<double> out(std::size_t(n) * D, 0.0);
  for (int i = 0; i < n; ++i)
    for (int r = 0; r < D; ++r) {
      double s = 0;
      for (int c = 0; c < D; ++c) s += a.Q(r, c) * y[a.perm[i] * D + c];
      out[i * D + r] = s;
    }
  return out;
}

}  // namespace enf
