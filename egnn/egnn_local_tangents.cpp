// Layer 0 of the EGNN with node-local tangents (EgnnNetwork::forward's
// tangent_nodes; the exact trace's unit directions).
//
// A tangent block whose input direction is zero outside node i moves, in
// layer 0, only the edges that touch i: d_jk, r_jk, u_jk and every edge
// quantity built from them and from h_j, h_k are constant in that direction
// unless j = i or k = i. Its edge tangents are therefore computed on those
// 2(n − 1) edges ("compact rows") instead of all n(n − 1); the node outputs
// (x_1, h_1) are dense again, and later layers run as usual. The rules are
// layer_forward's tangent rules (egnn_network.cpp), row by row.
#include <stdexcept>

#include "egnn/egnn_network.hpp"

namespace enf {

using detail::ConstMatMap;

namespace {

// silu'(s) from s and σ(s) (layer_forward's block-0 record keeps σ, not silu',
// when it ran on the value block alone).
template <class T>
T silu_slope(T s, T sig) {
  return sig * (T(1) + s * (T(1) - sig));
}

}  // namespace

template <class T>
void EgnnNetwork<T>::layer0_local_tangents(const T* p, int blocks, const int* tangent_nodes, int nodes_per_block,
                                           bool coord, bool node, EgnnWorkspace<T>& ws) const {
  using Vec = detail::Vec<T>;
  const Mat& x = ws.xs[0];  // every block's input
  const Mat& h = ws.hs[0];
  const LayerOffsets& o = off_[0];
  const EgnnLayerRecord<T>& R = ws.layers[0];
  const int D = cfg_.dim, H = cfg_.hidden, N = ws.nodes, E = ws.edges, B = blocks;
  const int edge_in = 2 * H + 1 + (cfg_.edge_attr ? 1 : 0) + cfg_.edge_features;

  // The compact rows: for each tangent block and each of its nodes i (one
  // per graph at most), the edges i receives on, then those it sends on
  // (edge (j <- i) of j's n − 1, senders ascending). Nodes of different
  // graphs share no edge.
  ws.lt_edge.clear();
  ws.lt_block.clear();
  ws.lt_node.clear();
  for (int b = 1; b < B; ++b)
    for (int k = 0; k < nodes_per_block; ++k) {
      const int i = tangent_nodes[(b - 1) * nodes_per_block + k], base = ws.graph_first[i];
      const int n = ws.first_edge[i + 1] - ws.first_edge[i] + 1;
      const auto add = [&](int e) {
        ws.lt_edge.push_back(e);
        ws.lt_block.push_back(b);
        ws.lt_node.push_back(i);
      };
      for (int e = ws.first_edge[i]; e < ws.first_edge[i + 1]; ++e) add(e);
      for (int j = base; j < base + n; ++j)
        if (j != i) add(ws.first_edge[j] + (i - base) - (i > j ? 1 : 0));
    }
  const int M = int(ws.lt_edge.size());

  // Geometry: dᵏ, rᵏ = 2 d⁰·dᵏ, uᵏ = dᵏ/den − d⁰ rᵏ q.
  ws.lt_d.resize(M, D);
  ws.lt_u.resize(M, D);
  ws.lt_r.resize(M);
  for (int m = 0; m < M; ++m) {
    const int e = ws.lt_edge[m], b = ws.lt_block[m];
    ws.lt_d.row(m) = x.row(b * N + ws.recv[e]) - x.row(b * N + ws.send[e]);
    const T sq = R.sq[e], den = sq + T(1), q = T(1) / (T(2) * sq * den * den);
    const T rb = T(2) * R.d.row(e).dot(ws.lt_d.row(m));
    ws.lt_r[m] = rb;
    ws.lt_u.row(m) = ws.lt_d.row(m) / den - R.d.row(e) * (rb * q);
  }
  // The edge attribute a = layer 0's r, for every block: zero tangent off the compact rows.
  ws.edge_attr.setZero(Eigen::Index(B) * E);
  ws.edge_attr.head(E) = R.r;
  for (int m = 0; m < M; ++m) ws.edge_attr[ws.lt_block[m] * E + ws.lt_edge[m]] = ws.lt_r[m];

  // edge_mlp.0: Pᵏ and Qᵏ are zero off node i, so row (j <- k) gets Pᵏ_i when
  // j = i and Qᵏ_i when k = i. Then silu' (block 0's) times the pre-activation.
  ConstMatMap<T> W0(p + o.e0w, H, edge_in);
  const Vec& wr = ws.wr;  // layer_forward's copies of layer 0's r and a columns
  const Vec& wa = ws.wa;
  Mat& Pi = ws.lt_pi;
  Mat& Qi = ws.lt_qi;
  ws.lt_y1.resize(M, H);
  for (int m = 0; m < M;) {
    const int b = ws.lt_block[m], i = ws.lt_node[m];
    Pi.noalias() = h.row(b * N + i) * W0.leftCols(H).transpose();
    Qi.noalias() = h.row(b * N + i) * W0.middleCols(H, H).transpose();
    for (; m < M && ws.lt_block[m] == b && ws.lt_node[m] == i; ++m) {
      const int e = ws.lt_edge[m];
      const T rv = ws.lt_r[m], av = cfg_.edge_attr ? rv : T(0);
      const T* hi = ws.recv[e] == i ? Pi.data() : Qi.data();
      const T* pre = R.pre1.data() + std::size_t(e) * H;
      const T* sig = R.sig1.data() + std::size_t(e) * H;
      T* dst = ws.lt_y1.data() + std::size_t(m) * H;
      for (int c = 0; c < H; ++c) dst[c] = silu_slope(pre[c], sig[c]) * (hi[c] + wr[c] * rv + wa[c] * av);
    }
  }
  // edge_mlp.2, its silu, the attention gate: mᵏ = m0ᵏ α⁰ + m0⁰ αᵏ.
  ws.lt_pre2.noalias() = ws.lt_y1 * ConstMatMap<T>(p + o.e2w, H, H).transpose();
  for (int m = 0; m < M; ++m) {
    const int e = ws.lt_edge[m];
    for (int c = 0; c < H; ++c) ws.lt_pre2(m, c) *= silu_slope(R.pre2(e, c), R.sig2(e, c));  // now m0ᵏ
  }
  ws.lt_m = ws.lt_pre2;
  if (cfg_.attention) {
    Eigen::Map<const Vec> aw(p + o.aw, H);
    ws.lt_g.noalias() = ws.lt_pre2 * aw;
    for (int m = 0; m < M; ++m) {
      const int e = ws.lt_edge[m];
      ws.lt_m.row(m) = ws.lt_pre2.row(m) * R.alpha[e] + R.m0.row(e) * (R.gd1[e] * ws.lt_g[m]);
    }
  }

  // Coordinates: x'ᵏ_i = xᵏ_i + scale Σ_j (uᵏ φ⁰ + u⁰ φᵏ) on the compact rows.
  // The value block's x_1 and h_1 are layer_forward's (ws.lt_x1, ws.lt_h1).
  Mat& xo = ws.xs[1];
  xo.resize(Eigen::Index(B) * N, D);
  xo.topRows(N) = ws.lt_x1;
  xo.bottomRows(Eigen::Index(B - 1) * N) = x.bottomRows(Eigen::Index(B - 1) * N);
  if (coord) {
    ws.lt_c1.noalias() = ws.lt_m * ConstMatMap<T>(p + o.c0w, H, H).transpose();
    for (int m = 0; m < M; ++m) {
      const int e = ws.lt_edge[m];
      for (int c = 0; c < H; ++c) ws.lt_c1(m, c) *= silu_slope(R.c1(e, c), R.sig3(e, c));  // y3ᵏ
    }
    Eigen::Map<const Vec> c2(p + o.c2w, H);
    ws.lt_phi.noalias() = ws.lt_c1 * c2;
    for (int m = 0; m < M; ++m) {
      const int e = ws.lt_edge[m], b = ws.lt_block[m];
      const T phi = cfg_.tanh ? R.pd1[e] * ws.lt_phi[m] : ws.lt_phi[m];
      xo.row(b * N + ws.recv[e]) += ws.node_scale[ws.recv[e]] * (ws.lt_u.row(m) * R.phi[e] + R.u.row(e) * phi);
    }
  }

  // Nodes: h'ᵏ = hᵏ + W2 (silu'(pren⁰) (N_a hᵏ + N_b sᵏ)), sᵏ_j = Σ over j's compact rows.
  Mat& ho = ws.hs[1];
  ho.resize(Eigen::Index(B) * N, H);
  ho.topRows(N) = ws.lt_h1;
  const auto h_tangent = h.bottomRows(Eigen::Index(B - 1) * N);
  if (node) {
    ws.lt_s.setZero(Eigen::Index(B - 1) * N, H);
    for (int m = 0; m < M; ++m)
      ws.lt_s.row((ws.lt_block[m] - 1) * N + ws.recv[ws.lt_edge[m]]) += ws.lt_m.row(m);
    ConstMatMap<T> N0(p + o.n0w, H, 2 * H);
    ws.lt_pren.noalias() = h_tangent * N0.leftCols(H).transpose();
    ws.lt_pren.noalias() += ws.lt_s * N0.rightCols(H).transpose();
    for (int b = 1; b < B; ++b)
      for (int j = 0; j < N; ++j)
        for (int c = 0; c < H; ++c)
          ws.lt_pren((b - 1) * N + j, c) *= silu_slope(R.pren(j, c), R.sign(j, c));
    ho.bottomRows(Eigen::Index(B - 1) * N).noalias() = ws.lt_pren * ConstMatMap<T>(p + o.n2w, H, H).transpose();
    ho.bottomRows(Eigen::Index(B - 1) * N) += h_tangent;
  } else {
    ho.bottomRows(Eigen::Index(B - 1) * N) = h_tangent;
  }
}

// The rest of EgnnNetwork is instantiated in egnn_network.cpp.
template void EgnnNetwork<float>::layer0_local_tangents(const float*, int, const int*, int, bool, bool,
                                                        EgnnWorkspace<float>&) const;
template void EgnnNetwork<double>::layer0_local_tangents(const double*, int, const int*, int, bool, bool,
                                                         EgnnWorkspace<double>&) const;

}  // namespace enf
