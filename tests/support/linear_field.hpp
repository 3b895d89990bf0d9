// Test support: the linear field f(z) = A z, whose flow is known exactly:
// z(t) = exp(At) z(0) and ℓ(1) = ∫ tr A dt = tr A. Its parameters are the
// entries of A (row-major), so adjoint gradients can be checked on it too.
#pragma once

#include <vector>

#include "egnn/dual_ops.hpp"
// Cnf's member definitions: the program compiles them for VectorField only
// (engine/cnf_instances.cpp), so Cnf<LinearField> is instantiated from these.
#include "engine/cnf_adjoint_impl.hpp"
#include "engine/cnf_discrete_impl.hpp"
#include "engine/cnf_forward_impl.hpp"

namespace enf::test {

class LinearField {
 public:
  using Scalar = double;
  using Mat = detail::Mat<double>;
  struct Workspace {
    Mat V;
    std::vector<double> z;
  };

  LinearField(int nodes, int dim, int channels) : n_(nodes), dim_(dim), channels_(channels) {}
  int channels() const { return channels_; }
  int dim() const { return dim_; }
  std::size_t parameter_count() const { return std::size_t(n_ * channels_) * (n_ * channels_); }

  void forward(const double* A, const double* z, int n, double /*t*/, const Mat* V, Workspace& ws, double* f,
               Mat* JV) const {
    const int S = n * channels_;
    Eigen::Map<const Mat> a(A, S, S);
    Eigen::Map<const Eigen::VectorXd> zz(z, S);
    Eigen::Map<Eigen::VectorXd>(f, S) = a * zz;
    ws.z.assign(z, z + S);
    if (V) {
      ws.V = *V;
      *JV = *V * a.transpose();  // row k: A V_k
    } else {
      ws.V.resize(0, S);
    }
  }
  // z̄ = Aᵀ f̄ (J·V does not depend on z); Ā += f̄ zᵀ + Σ_k (J·V_k)̄ V_kᵀ.
  void reverse(const double* A, Workspace& ws, const double* fbar, const Mat* JVbar, double* zbar,
               double* grad) const {
    const int S = int(ws.z.size());
    Eigen::Map<const Mat> a(A, S, S);
    Eigen::Map<Mat> g(grad, S, S);
    Eigen::Map<Eigen::VectorXd> zb(zbar, S);
    zb.setZero();
    if (fbar) {
      Eigen::Map<const Eigen::VectorXd> fb(fbar, S);
      zb = a.transpose() * fb;
      g += fb * Eigen::Map<const Eigen::RowVectorXd>(ws.z.data(), S);
    }
    if (JVbar && ws.V.rows() > 0) g += JVbar->transpose() * ws.V;
  }

 private:
  int n_, dim_, channels_;
};

}  // namespace enf::test
