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

// σ(s) = 1 / (1 + e^(−s))
template <class T>
inline T sigmoid(T s) {
  return T(1) / (T(1) + std::exp(-s));
}

// y = silu(s) blockwise. Stores σ(s⁰) and silu'(s⁰) (rows × cols of block 0)
// for the tangents and the reverse rule. Block k: yᵏ = silu'(s⁰) sᵏ.
// Whole-block array expressions, so Eigen vectorises the exponentials.
template <class T>
void silu_forward(const Mat<T>& s, int blocks, Mat<T>& y, Mat<T>& sig, Mat<T>& d1) {
  const Eigen::Index rows = s.rows() / blocks, cols = s.cols();
  y.resize(s.rows(), cols);
  const auto s0 = s.topRows(rows).array();
  sig = (T(1) + (-s0).exp()).inverse().matrix();
  y.topRows(rows) = (s0 * sig.array()).matrix();
  if (blocks == 1) return;
  d1 = (sig.array() * (T(1) + s0 * (T(1) - sig.array()))).matrix();
  for (int b = 1; b < blocks; ++b)
    y.middleRows(b * rows, rows) = (d1.array() * s.middleRows(b * rows, rows).array()).matrix();
}

// Reverse of silu_forward: s̄⁰ = g'(s⁰) ȳ⁰ + g''(s⁰) Σ_k sᵏ ȳᵏ,  s̄ᵏ = g'(s⁰) ȳᵏ.
// `ybar` is overwritten with s̄ (in place); `mix` is scratch.
template <class T>
void silu_reverse(const Mat<T>& s, const Mat<T>& sig, Mat<T>& d1, int blocks, Mat<T>& ybar, Mat<T>& mix) {
  const Eigen::Index rows = s.rows() / blocks;
  const auto s0 = s.topRows(rows).array();
  const auto sg = sig.array();
  if (blocks == 1) {
    ybar.array() *= sg * (T(1) + s0 * (T(1) - sg));
    return;
  }
  mix = (s.middleRows(rows, rows).array() * ybar.middleRows(rows, rows).array()).matrix();
  for (int b = 2; b < blocks; ++b)
    mix.array() += s.middleRows(b * rows, rows).array() * ybar.middleRows(b * rows, rows).array();
  for (int b = 1; b < blocks; ++b) ybar.middleRows(b * rows, rows).array() *= d1.array();
  ybar.topRows(rows).array() =
      d1.array() * ybar.topRows(rows).array() + sg * (T(1) - sg) * (T(2) + s0 * (T(1) - T(2) * sg)) * mix.array();
}

// σ(s) with its first two derivatives: scalar_forward's fn for the attention gate.
template <class T>
void sigmoid_with_slopes(T s, T& y, T& d1, T& d2) {
  y = sigmoid(s);
  d1 = y * (T(1) - y);
  d2 = d1 * (T(1) - T(2) * y);
}

// C·tanh(s) with its first two derivatives: scalar_forward's fn for the
// coordinate update's bounded range.
template <class T>
struct ScaledTanh {
  T C;
  void operator()(T s, T& y, T& d1, T& d2) const {
    const T th = std::tanh(s);
    y = C * th;
    d1 = C * (T(1) - th * th);
    d2 = T(-2) * th * d1;
  }
};

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
