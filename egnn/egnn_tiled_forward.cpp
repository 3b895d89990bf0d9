// An EGNN layer's forward pass with no reverse pass to follow (the workspace's
// forward_only): the edge pipeline — edge_mlp, attention, coord_mlp and the
// two aggregations — runs over tiles of edges, each tile a few whole
// receivers' edges in every block, so that its intermediates ([B·T, H]) stay
// in cache from one operation to the next. layer_forward instead keeps every
// edge's intermediates for the reverse pass, matrices of B·E rows that outgrow
// the caches on large graphs (LJ55's exact trace: 17 blocks × 2970 edges × 32)
// and make its elementwise passes run from memory.
//
// The arithmetic is layer_forward's, operation for operation, on fewer rows
// at a time: the same numbers to rounding (tests/egnn/test_egnn_tiled.cpp).
#include <algorithm>
#include <cmath>

#include "egnn/egnn_network.hpp"

namespace enf {

using detail::ConstMatMap;

namespace {

// Rows of a tile's matrices (blocks × edges) to aim for: 1024 × H = 32 floats
// is 128 KiB a matrix, a few of which fit in L2 together. A tile holds at
// least one receiver's edges.
constexpr int kTileRows = 1024;

}  // namespace

template <class T>
void EgnnNetwork<T>::layer_forward_tiled(const T* p, int l, int blocks, bool coord, bool node,
                                         EgnnWorkspace<T>& ws) const {
  using Vec = detail::Vec<T>;
  const LayerOffsets& o = off_[l];
  EgnnLayerRecord<T>& R = ws.layers[l];
  const int H = cfg_.hidden, n = ws.nodes, E = ws.edges, B = blocks;
  const int edge_in = edge_input_width(cfg_), Ec = cfg_.edge_features;
  R.coord_done = coord;
  R.node_done = node;

  layer_geometry(p, l, blocks, ws);
  // a_ij: r of the network input, fixed across layers.
  const Vec& a = ws.local_tangents ? ws.edge_attr : ws.layers[0].r;
  ConstMatMap<T> W0(p + o.e0w, H, edge_in);
  const T *wr = ws.wr.data(), *wa = ws.wa.data();
  Mat& xo = ws.xs[l + 1];
  xo = ws.xs[l];
  if (node) R.s.resize(Eigen::Index(B) * n, H);
  const T C = T(cfg_.coords_range / cfg_.layers * (cfg_.aggregation == Aggregation::Mean ? 19 : 1));
  const T* scale = ws.node_scale.data();
  const int* first = ws.first_edge.data();

  for (int i0 = 0; i0 < n;) {
    // Receivers i0 .. i1 − 1: their edges e0 .. e1 − 1 are contiguous.
    int i1 = i0 + 1;
    while (i1 < n && (first[i1 + 1] - first[i0]) * B <= kTileRows) ++i1;
    const int e0 = first[i0], Te = first[i1] - e0;
    const Eigen::Index rows = Eigen::Index(B) * Te;

    // edge_mlp.0 from the node parts P, Q (row b·Te + k is edge e0 + k of block b).
    ws.t_pre1.resize(rows, H);
    for (int b = 0; b < B; ++b) {
      const T* bias = b == 0 ? p + o.e0b : ws.zero.data();
      for (int k = 0; k < Te; ++k) {
        const int e = e0 + k;
        T* dst = ws.t_pre1.data() + (std::size_t(b) * Te + k) * H;
        const T* Pi = R.P.data() + (std::size_t(b) * n + ws.recv[e]) * H;
        const T* Qj = R.Q.data() + (std::size_t(b) * n + ws.send[e]) * H;
        const T rv = R.r[b * E + e], av = cfg_.edge_attr ? a[b * E + e] : T(0);
#pragma omp simd
        for (int c = 0; c < H; ++c) dst[c] = Pi[c] + Qj[c] + wr[c] * rv + wa[c] * av + bias[c];
      }
    }
    if (Ec > 0) ws.t_pre1.topRows(Te).noalias() += ws.edge_features.middleRows(e0, Te) * W0.rightCols(Ec).transpose();
    detail::silu_forward<T>(ws.t_pre1, B, ws.t_y1, ws.t_sig, ws.t_d1);
    detail::linear_forward<T>(ws.t_y1, ConstMatMap<T>(p + o.e2w, H, H), p + o.e2b, B, ws.t_pre2);
    detail::silu_forward<T>(ws.t_pre2, B, ws.t_m0, ws.t_sig, ws.t_d1);

    // Attention: m = m0 · σ(att·m0 + b);  mᵏ = m0ᵏ α⁰ + m0⁰ αᵏ.
    if (cfg_.attention) {
      Eigen::Map<const Vec> aw(p + o.aw, H);
      ws.t_g.noalias() = ws.t_m0 * aw;
      ws.t_g.head(Te).array() += p[o.ab];
      detail::scalar_forward<T>(
          ws.t_g, B,
          detail::sigmoid_with_slopes<T>,
          ws.t_alpha, ws.t_gd1, ws.t_gd2);
      ws.t_m.resize(rows, H);
      for (int k = 0; k < Te; ++k) ws.t_m.row(k) = ws.t_m0.row(k) * ws.t_alpha[k];
      for (int b = 1; b < B; ++b)
        for (int k = 0; k < Te; ++k)
          ws.t_m.row(b * Te + k) = ws.t_m0.row(b * Te + k) * ws.t_alpha[k] + ws.t_m0.row(k) * ws.t_alpha[b * Te + k];
    }
    const Mat& m = cfg_.attention ? ws.t_m : ws.t_m0;

    // Coordinates: x'_i = x_i + scale Σ_j u_ij φ_ij, edges in the same order as layer_forward.
    if (coord) {
      detail::linear_forward<T>(m, ConstMatMap<T>(p + o.c0w, H, H), p + o.c0b, B, ws.t_c1);
      detail::silu_forward<T>(ws.t_c1, B, ws.t_y3, ws.t_sig, ws.t_d1);
      Eigen::Map<const Vec> c2(p + o.c2w, H);
      ws.t_phi_raw.noalias() = ws.t_y3 * c2;
      if (cfg_.tanh) {
        detail::scalar_forward<T>(
            ws.t_phi_raw, B,
            detail::ScaledTanh<T>{C},
            ws.t_phi, ws.t_pd1, ws.t_pd2);
      } else {
        ws.t_phi = ws.t_phi_raw;
      }
      const Vec& phi = ws.t_phi;
      for (int k = 0; k < Te; ++k) {
        const int e = e0 + k, i = ws.recv[e];
        xo.row(i) += (scale[i] * phi[k]) * R.u.row(e);
      }
      for (int b = 1; b < B; ++b)
        for (int k = 0; k < Te; ++k) {
          const int e = e0 + k, i = ws.recv[e];
          xo.row(b * n + i) += scale[i] * (R.u.row(b * E + e) * phi[k] + R.u.row(e) * phi[b * Te + k]);
        }
    }

    // Node i's messages: its edges' rows of the tile (contiguous in each block).
    if (node)
      for (int b = 0; b < B; ++b)
        for (int i = i0; i < i1; ++i)
          R.s.row(b * n + i) = m.middleRows(std::size_t(b) * Te + first[i] - e0, first[i + 1] - first[i]).colwise().sum();
    i0 = i1;
  }
  layer_nodes(p, l, blocks, node, ws);
}

// The rest of EgnnNetwork is instantiated in egnn_network.cpp.
template void EgnnNetwork<float>::layer_forward_tiled(const float*, int, int, bool, bool, EgnnWorkspace<float>&) const;
template void EgnnNetwork<double>::layer_forward_tiled(const double*, int, int, bool, bool,
                                                       EgnnWorkspace<double>&) const;

}  // namespace enf
