// Dual-block primitives: every quantity is stored as 1+K stacked row blocks,
// block 0 the value and block k the k-th tangent (a directional derivative).
// Each primitive has a forward rule (value and tangents) and the reverse rule
// of that forward rule (cotangents of value and tangents flow back), so the
// network's reverse pass is reverse-over-forward, never reverse-over-reverse.
//
// Internal to egnn/: the public interface is egnn_network.hpp.
#pragma once

#include <Eigen/Core>
#include <cmath>

namespace enf::detail {

template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;
template <class T>
using ConstMatMap = Eigen::Map<const Mat<T>>;

// Scalar activations with the first two derivatives, all from σ(s).
//   silu(s)   = s σ(s)
//   silu'(s)  = σ (1 + s (1 − σ))
//   silu''(s) = σ (1 − σ) (2 + s (1 − 2σ))
template <class T>
inline T sigmoid(T s) {
  return T(1) / (T(1) + std::exp(-s));
}
template <class T>
inline T silu_d1(T s, T sg) {
  return sg * (T(1) + s * (T(1) - sg));
}
template <class T>
inline T silu_d2(T s, T sg) {
  return sg * (T(1) - sg) * (T(2) + s * (T(1) - T(2) * sg));
}

// y = silu(s) blockwise. Stores σ(s⁰) in `sig` (rows × cols of block 0) for the
// reverse rule. Block k: yᵏ = silu'(s⁰) sᵏ.
template <class T>
void silu_forward(const Mat<T>& s, int blocks, Mat<T>& y, Mat<T>& sig) {
  const Eigen::Index rows = s.rows() / blocks, cols = s.cols();
  y.resize(s.rows(), cols);
  sig.resize(rows, cols);
  for (Eigen::Index r = 0; r < rows; ++r) {
    for (Eigen::Index c = 0; c < cols; ++c) {
      const T s0 = s(r, c), sg = sigmoid(s0);
      sig(r, c) = sg;
      y(r, c) = s0 * sg;
    }
  }
  for (int b = 1; b < blocks; ++b) {
    for (Eigen::Index r = 0; r < rows; ++r) {
      for (Eigen::Index c = 0; c < cols; ++c) {
        y(b * rows + r, c) = silu_d1(s(r, c), sig(r, c)) * s(b * rows + r, c);
      }
    }
  }
}

// Reverse of silu_forward: s̄⁰ = g'(s⁰) ȳ⁰ + g''(s⁰) Σ_k sᵏ ȳᵏ,  s̄ᵏ = g'(s⁰) ȳᵏ.
// `ybar` is overwritten with s̄ (in place).
template <class T>
void silu_reverse(const Mat<T>& s, const Mat<T>& sig, int blocks, Mat<T>& ybar) {
  const Eigen::Index rows = s.rows() / blocks, cols = s.cols();
  for (Eigen::Index r = 0; r < rows; ++r) {
    for (Eigen::Index c = 0; c < cols; ++c) {
      const T s0 = s(r, c), sg = sig(r, c);
      const T d1 = silu_d1(s0, sg);
      T acc = d1 * ybar(r, c);
      if (blocks > 1) {
        const T d2 = silu_d2(s0, sg);
        T mix = 0;
        for (int b = 1; b < blocks; ++b) {
          const Eigen::Index rb = b * rows + r;
          mix += s(rb, c) * ybar(rb, c);
          ybar(rb, c) *= d1;
        }
        acc += d2 * mix;
      }
      ybar(r, c) = acc;
    }
  }
}

// Generic scalar dual activation on a stacked vector (blocks × n entries),
// with g, g', g'' given by `fn(s, &g, &g1, &g2)`.
template <class T, class Fn>
void scalar_forward(const Vec<T>& s, int blocks, Fn fn, Vec<T>& y, Vec<T>& d1, Vec<T>& d2) {
  const Eigen::Index n = s.size() / blocks;
  y.resize(s.size());
  d1.resize(n);
  d2.resize(n);
  for (Eigen::Index e = 0; e < n; ++e) {
    T g, g1, g2;
    fn(s[e], g, g1, g2);
    y[e] = g;
    d1[e] = g1;
    d2[e] = g2;
  }
  for (int b = 1; b < blocks; ++b)
    for (Eigen::Index e = 0; e < n; ++e) y[b * n + e] = d1[e] * s[b * n + e];
}

template <class T>
void scalar_reverse(const Vec<T>& s, const Vec<T>& d1, const Vec<T>& d2, int blocks, Vec<T>& ybar) {
  const Eigen::Index n = s.size() / blocks;
  for (Eigen::Index e = 0; e < n; ++e) {
    T mix = 0;
    for (int b = 1; b < blocks; ++b) {
      mix += s[b * n + e] * ybar[b * n + e];
      ybar[b * n + e] *= d1[e];
    }
    ybar[e] = d1[e] * ybar[e] + d2[e] * mix;
  }
}

// Y = X Wᵀ (+ b on block 0). W is [out, in] as PyTorch stores it.
template <class T>
void linear_forward(const Mat<T>& X, const ConstMatMap<T>& W, const T* bias, int blocks, Mat<T>& Y) {
  Y.resize(X.rows(), W.rows());
  Y.noalias() = X * W.transpose();
  if (bias) {
    const Eigen::Index rows = X.rows() / blocks;
    Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>> b(bias, W.rows());
    Y.topRows(rows).rowwise() += b;
  }
  (void)blocks;
}

// Reverse of linear_forward: X̄ (+)= Ȳ W, W̄ += Ȳᵀ X over every block,
// b̄ += Σ rows of block 0 of Ȳ.
template <class T>
void linear_reverse(const Mat<T>& X, const Mat<T>& Ybar, const ConstMatMap<T>& W, int blocks, Mat<T>* Xbar,
                    bool accumulate_x, T* Wbar, T* bbar) {
  if (Xbar) {
    if (accumulate_x)
      Xbar->noalias() += Ybar * W;
    else
      Xbar->noalias() = Ybar * W;
  }
  Eigen::Map<Mat<T>> Wb(Wbar, W.rows(), W.cols());
  Wb.noalias() += Ybar.transpose() * X;
  if (bbar) {
    const Eigen::Index rows = X.rows() / blocks;
    Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>> bb(bbar, W.rows());
    bb += Ybar.topRows(rows).colwise().sum();
  }
}

}  // namespace enf::detail
