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
  R.coord_done = coord;
  R.node_done = node;

  layer_geometry(p, l, blocks, ws);
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

    edge_preactivation(p, l, B, e0, Te, ws, ws.t_pre1);
    detail::silu_forward<T>(ws.t_pre1, B, ws.t_y1, ws.t_sig, ws.t_d1);
    detail::linear_forward<T>(ws.t_y1, ConstMatMap<T>(p + o.e2w, H, H), p + o.e2b, B, ws.t_pre2);
    detail::silu_forward<T>(ws.t_pre2, B, ws.t_m0, ws.t_sig, ws.t_d1);

    // Attention: m = m0 · σ(att·m0 + b).
    if (cfg_.attention) gate_messages(p, l, B, Te, ws.t_m0, ws.t_g, ws.t_alpha, ws.t_gd1, ws.t_gd2, ws.t_m);
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
