// The EGNN's reverse pass (EgnnNetwork::reverse, layer_reverse): the
// cotangents of a recorded forward (egnn_network.cpp) back to its inputs and
// the parameter gradient. The rest of EgnnNetwork is in egnn_network.cpp.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "egnn/egnn_network.hpp"

namespace enf {

using detail::ConstMatMap;

template <class T>
void EgnnNetwork<T>::reverse(const T* p, const Mat* xbar_out, const Mat* hbar_out, EgnnWorkspace<T>& ws,
                             Mat& xbar_in, Mat& h0bar, T* grad) const {
  const int L = cfg_.layers, H = cfg_.hidden, B = ws.blocks;
  if (ws.local_tangents)
    throw std::logic_error("EGNN reverse: the last forward had node-local tangents (no record to reverse)");
  if (ws.unrecorded)
    throw std::logic_error("EGNN reverse: the last forward was forward-only (EgnnWorkspace::forward_only: no record)");
  const Eigen::Index rows = Eigen::Index(B) * ws.nodes;
  if (xbar_out)
    ws.xbar = *xbar_out;
  else
    ws.xbar.setZero(rows, cfg_.dim);
  if (hbar_out && ws.request.features) {
    detail::linear_reverse<T>(ws.hs[L], *hbar_out, ConstMatMap<T>(p + out_w_, cfg_.out_node_nf, H), B, &ws.hbar,
                              false, grad + out_w_, grad + out_b_);
  } else {
    ws.hbar.setZero(rows, H);
  }
  ws.abar.setZero(Eigen::Index(B) * ws.edges);
  for (int l = L - 1; l >= 0; --l) {
    layer_reverse(p, l, B, ws, grad);
    std::swap(ws.xbar, ws.xbar_next);
    std::swap(ws.hbar, ws.hbar_next);
  }
  xbar_in = ws.xbar;
  detail::linear_reverse<T>(ws.h0, ws.hbar, ConstMatMap<T>(p + emb_w_, H, cfg_.in_node_nf), B, &h0bar, false,
                            grad + emb_w_, grad + emb_b_);
}

// Reverse of layer_forward. Reads ws.xbar/ws.hbar (cotangents of the layer's
// outputs), writes ws.xbar_next/ws.hbar_next (of its inputs).
template <class T>
void EgnnNetwork<T>::layer_reverse(const T* p, int l, int B, EgnnWorkspace<T>& ws, T* grad) const {
  using Vec = detail::Vec<T>;
  const LayerOffsets& o = off_[l];
  EgnnLayerRecord<T>& R = ws.layers[l];
  const int D = cfg_.dim, H = cfg_.hidden, n = ws.nodes, E = ws.edges;
  const int* first = ws.first_edge.data();
  const int edge_in = edge_input_width(cfg_), Ec = cfg_.edge_features;
  const Mat& h = ws.hs[l];
  const Mat& m = cfg_.attention ? R.m : R.m0;
  const Eigen::Index BE = Eigen::Index(B) * E;
  Mat& xbar = ws.xbar;       // of x_{l+1}
  Mat& hbar = ws.hbar;       // of h_{l+1}
  Mat& xin = ws.xbar_next;   // of x_l
  Mat& hin = ws.hbar_next;   // of h_l
  xin = xbar;                // residual x' = x + ...
  hin = hbar;                // residual h' = h + ...
  ws.mbar.setZero(BE, H);

  // Node update: h' = h + W2 silu(N_a h + N_b s + b0) + b2.
  if (R.node_done) {
    detail::linear_reverse<T>(R.yn, hbar, ConstMatMap<T>(p + o.n2w, H, H), B, &ws.ynbar, false, grad + o.n2w,
                              grad + o.n2b);
    detail::silu_reverse<T>(R.pren, R.sign, R.dyn, B, ws.ynbar, ws.mix_node);  // ynbar now holds p̄ren
    ConstMatMap<T> N0(p + o.n0w, H, 2 * H);
    hin.noalias() += ws.ynbar * N0.leftCols(H);
    ws.sbar.noalias() = ws.ynbar * N0.rightCols(H);
    Eigen::Map<detail::Mat<T>> gN0(grad + o.n0w, H, 2 * H);
    gN0.leftCols(H).noalias() += ws.ynbar.transpose() * h;
    gN0.rightCols(H).noalias() += ws.ynbar.transpose() * R.s;
    Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(grad + o.n0b, H) += ws.ynbar.topRows(n).colwise().sum();
    for (int b = 0; b < B; ++b)
      for (int i = 0; i < n; ++i)
        ws.mbar.middleRows(std::size_t(b) * E + first[i], first[i + 1] - first[i]).rowwise() = ws.sbar.row(b * n + i);
  }

  // Coordinate update: x'_i = x_i + scale Σ_j u φ;  (uφ)ᵏ = uᵏ φ⁰ + u⁰ φᵏ.
  ws.ubar.setZero(BE, D);
  if (R.coord_done) {
    ws.phibar.resize(BE);
    for (int e = 0; e < E; ++e) {
      const T scale = ws.node_scale[ws.recv[e]];
      const auto w0 = xbar.row(ws.recv[e]) * scale;  // cotangent of (uφ)⁰
      ws.ubar.row(e) = w0 * R.phi[e];
      T pb0 = w0.dot(R.u.row(e));
      for (int b = 1; b < B; ++b) {
        const auto wb = xbar.row(b * n + ws.recv[e]) * scale;
        ws.ubar.row(e) += wb * R.phi[b * E + e];
        pb0 += wb.dot(R.u.row(b * E + e));
        ws.ubar.row(b * E + e) = wb * R.phi[e];
        ws.phibar[b * E + e] = wb.dot(R.u.row(e));
      }
      ws.phibar[e] = pb0;
    }
    if (cfg_.tanh) detail::scalar_reverse<T>(R.phi_raw, R.pd1, R.pd2, B, ws.phibar);
    Eigen::Map<const Vec> c2(p + o.c2w, H);
    Eigen::Map<Vec>(grad + o.c2w, H).noalias() += R.y3.transpose() * ws.phibar;
    ws.ybar.noalias() = ws.phibar * c2.transpose();
    detail::silu_reverse<T>(R.c1, R.sig3, R.dy3, B, ws.ybar, ws.mix);  // c̄1
    detail::linear_reverse<T>(m, ws.ybar, ConstMatMap<T>(p + o.c0w, H, H), B, &ws.mbar, true, grad + o.c0w,
                              grad + o.c0b);
  }

  // Attention gate: m = m0 α.
  Mat* m0bar = &ws.mbar;
  if (cfg_.attention) {
    ws.m0bar.resize(BE, H);
    ws.gbar.resize(BE);
    for (int e = 0; e < E; ++e) {
      const T a0 = R.alpha[e];
      ws.m0bar.row(e) = ws.mbar.row(e) * a0;
      T ab0 = ws.mbar.row(e).dot(R.m0.row(e));
      for (int b = 1; b < B; ++b) {
        const Eigen::Index eb = b * E + e;
        ws.m0bar.row(e) += ws.mbar.row(eb) * R.alpha[eb];
        ab0 += ws.mbar.row(eb).dot(R.m0.row(eb));
        ws.m0bar.row(eb) = ws.mbar.row(eb) * a0;
        ws.gbar[eb] = ws.mbar.row(eb).dot(R.m0.row(e));
      }
      ws.gbar[e] = ab0;
    }
    detail::scalar_reverse<T>(R.g, R.gd1, R.gd2, B, ws.gbar);  // ḡ
    Eigen::Map<const Vec> aw(p + o.aw, H);
    ws.m0bar.noalias() += ws.gbar * aw.transpose();
    Eigen::Map<Vec>(grad + o.aw, H).noalias() += R.m0.transpose() * ws.gbar;
    grad[o.ab] += ws.gbar.head(E).sum();
    m0bar = &ws.m0bar;
  }

  // edge_mlp: m0 = silu(W2 silu(pre1) + b2).
  detail::silu_reverse<T>(R.pre2, R.sig2, R.dm0, B, *m0bar, ws.mix);
  detail::linear_reverse<T>(R.y1, *m0bar, ConstMatMap<T>(p + o.e2w, H, H), B, &ws.ybar, false, grad + o.e2w,
                            grad + o.e2b);
  detail::silu_reverse<T>(R.pre1, R.sig1, R.dy1, B, ws.ybar, ws.mix);  // p̄re1
  const Mat& pre1bar = ws.ybar;

  ConstMatMap<T> W0(p + o.e0w, H, edge_in);
  Eigen::Map<detail::Mat<T>> gW0(grad + o.e0w, H, edge_in);
  Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(grad + o.e0b, H) += pre1bar.topRows(E).colwise().sum();
  gW0.col(2 * H).noalias() += pre1bar.transpose() * R.r;
  ws.rbar.noalias() = pre1bar * W0.col(2 * H);
  if (cfg_.edge_attr) {
    const Vec& a = ws.layers[0].r;
    gW0.col(2 * H + 1).noalias() += pre1bar.transpose() * a;
    ws.abar.noalias() += pre1bar * W0.col(2 * H + 1);
  }
  // The conditioning entered the value block only; it needs no cotangent.
  if (Ec > 0) gW0.rightCols(Ec).noalias() += pre1bar.topRows(E).transpose() * ws.edge_features;
  ws.Pbar.resize(h.rows(), H);
  ws.Qbar.setZero(h.rows(), H);
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < n; ++i)
      ws.Pbar.row(b * n + i) = pre1bar.middleRows(std::size_t(b) * E + first[i], first[i + 1] - first[i]).colwise().sum();
  for (int b = 0; b < B; ++b)
    for (int e = 0; e < E; ++e) {
      T* dst = ws.Qbar.data() + (std::size_t(b) * n + ws.send[e]) * H;
      const T* src = pre1bar.data() + (std::size_t(b) * E + e) * H;
#pragma omp simd
      for (int c = 0; c < H; ++c) dst[c] += src[c];
    }
  hin.noalias() += ws.Pbar * W0.leftCols(H);
  hin.noalias() += ws.Qbar * W0.middleCols(H, H);
  gW0.leftCols(H).noalias() += ws.Pbar.transpose() * h;
  gW0.middleCols(H, H).noalias() += ws.Qbar.transpose() * h;

  // The edge attribute a is layer 0's r: its cotangent joins r̄ there.
  if (l == 0) ws.rbar += ws.abar;

  // u = d/den(r⁰), uᵏ = dᵏ/den − d⁰ rᵏ q(r⁰), q = 1/(2 sq den²), q' = −(den²/sq + 2 den) q².
  ws.dbar.resize(BE, D);
  for (int e = 0; e < E; ++e) {
    const T sq = R.sq[e], den = sq + T(1), q = T(1) / (T(2) * sq * den * den);
    const T dq = -(den * den / sq + T(2) * den) * q * q;
    const auto d0 = R.d.row(e);
    ws.dbar.row(e) = ws.ubar.row(e) / den;
    T r0bar = ws.rbar[e] - ws.ubar.row(e).dot(d0) * q;
    for (int b = 1; b < B; ++b) {
      const Eigen::Index eb = b * E + e;
      const auto ub = ws.ubar.row(eb);
      const T rb = R.r[eb], ubd0 = ub.dot(d0);
      ws.dbar.row(eb) = ub / den;
      r0bar -= ub.dot(R.d.row(eb)) * q + ubd0 * rb * dq;
      ws.dbar.row(e) -= ub * (rb * q);
      ws.rbar[eb] -= ubd0 * q;
    }
    // r⁰ = |d⁰|², rᵏ = 2 d⁰·dᵏ
    ws.dbar.row(e) += T(2) * r0bar * d0;
    for (int b = 1; b < B; ++b) {
      const Eigen::Index eb = b * E + e;
      ws.dbar.row(e) += T(2) * ws.rbar[eb] * R.d.row(eb);
      ws.dbar.row(eb) += T(2) * ws.rbar[eb] * d0;
    }
  }
  for (int b = 0; b < B; ++b)
    for (int e = 0; e < E; ++e) {
      xin.row(b * n + ws.recv[e]) += ws.dbar.row(b * E + e);
      xin.row(b * n + ws.send[e]) -= ws.dbar.row(b * E + e);
    }
}

// layer_reverse too: egnn_network.hpp's extern template declarations keep
// this file from instantiating anything it does not name.
template void EgnnNetwork<float>::layer_reverse(const float*, int, int, EgnnWorkspace<float>&, float*) const;
template void EgnnNetwork<double>::layer_reverse(const double*, int, int, EgnnWorkspace<double>&, double*) const;
template void EgnnNetwork<float>::reverse(const float*, const EgnnNetwork<float>::Mat*, const EgnnNetwork<float>::Mat*,
                                          EgnnWorkspace<float>&, EgnnNetwork<float>::Mat&, EgnnNetwork<float>::Mat&,
                                          float*) const;
template void EgnnNetwork<double>::reverse(const double*, const EgnnNetwork<double>::Mat*,
                                           const EgnnNetwork<double>::Mat*, EgnnWorkspace<double>&,
                                           EgnnNetwork<double>::Mat&, EgnnNetwork<double>::Mat&, double*) const;

}  // namespace enf
