#include "egnn/egnn_network.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace enf {

using detail::ConstMatMap;

// The conditioning comes last so that with Ec = 0 the layout is the reference's.
int edge_input_width(const EgnnConfig& c) { return 2 * c.hidden + 1 + (c.edge_attr ? 1 : 0) + c.edge_features; }

std::string EgnnConfig::validate() const {
  if (dim < 1 || dim > 3) return "dim must be 1, 2 or 3 (got " + std::to_string(dim) + ")";
  if (in_node_nf < 1) return "in_node_nf must be at least 1";
  if (out_node_nf < 1) return "out_node_nf must be at least 1";
  // Upper bounds: sizes come from files (model.json, args.json), and a
  // corrupted one must be an error, not gigabytes allocated. 4096 wide and 64
  // deep are far beyond any E-NF model (the QM9 one is 64 wide, 6 deep).
  if (hidden < 1 || hidden > 4096) return "hidden width must be 1 to 4096 (got " + std::to_string(hidden) + ")";
  if (layers < 1 || layers > 64) return "number of layers must be 1 to 64 (got " + std::to_string(layers) + ")";
  if (in_node_nf > 4096 || out_node_nf > 4096) return "node features must be at most 4096";
  if (edge_features < 0 || edge_features > 4096) return "edge features must be 0 to 4096";
  if (!(coords_range > 0)) return "coords_range must be positive";
  return {};
}

void register_egnn_parameters(const EgnnConfig& cfg, ParameterLayout& layout) {
  if (auto err = cfg.validate(); !err.empty()) throw std::invalid_argument("EGNN config: " + err);
  const int H = cfg.hidden, edge_in = edge_input_width(cfg);
  const std::string& p = cfg.prefix;
  layout.add(p + "embedding.weight", {H, cfg.in_node_nf});
  layout.add(p + "embedding.bias", {H});
  layout.add(p + "embedding_out.weight", {cfg.out_node_nf, H});
  layout.add(p + "embedding_out.bias", {cfg.out_node_nf});
  for (int l = 0; l < cfg.layers; ++l) {
    const std::string g = p + "gcl_" + std::to_string(l) + ".";
    layout.add(g + "edge_mlp.0.weight", {H, edge_in});
    layout.add(g + "edge_mlp.0.bias", {H});
    layout.add(g + "edge_mlp.2.weight", {H, H});
    layout.add(g + "edge_mlp.2.bias", {H});
    layout.add(g + "node_mlp.0.weight", {H, 2 * H});
    layout.add(g + "node_mlp.0.bias", {H});
    layout.add(g + "node_mlp.2.weight", {H, H});
    layout.add(g + "node_mlp.2.bias", {H});
    layout.add(g + "coord_mlp.0.weight", {H, H});
    layout.add(g + "coord_mlp.0.bias", {H});
    layout.add(g + "coord_mlp.2.weight", {1, H});
    if (cfg.attention) {
      layout.add(g + "att_mlp.0.weight", {1, H});
      layout.add(g + "att_mlp.0.bias", {1});
    }
  }
}

template <class T>
EgnnNetwork<T>::EgnnNetwork(EgnnConfig cfg, const ParameterLayout& layout) : cfg_(std::move(cfg)) {
  if (auto err = cfg_.validate(); !err.empty()) throw std::invalid_argument("EGNN config: " + err);
  const int H = cfg_.hidden, edge_in = edge_input_width(cfg_);
  auto get = [&](const std::string& name, std::vector<int> shape) {
    const auto& info = layout.at(cfg_.prefix + name);
    if (info.shape != shape) throw std::invalid_argument("parameter '" + info.name + "' has the wrong shape");
    return info.offset;
  };
  emb_w_ = get("embedding.weight", {H, cfg_.in_node_nf});
  emb_b_ = get("embedding.bias", {H});
  out_w_ = get("embedding_out.weight", {cfg_.out_node_nf, H});
  out_b_ = get("embedding_out.bias", {cfg_.out_node_nf});
  for (int l = 0; l < cfg_.layers; ++l) {
    const std::string g = "gcl_" + std::to_string(l) + ".";
    LayerOffsets o;
    o.e0w = get(g + "edge_mlp.0.weight", {H, edge_in});
    o.e0b = get(g + "edge_mlp.0.bias", {H});
    o.e2w = get(g + "edge_mlp.2.weight", {H, H});
    o.e2b = get(g + "edge_mlp.2.bias", {H});
    o.n0w = get(g + "node_mlp.0.weight", {H, 2 * H});
    o.n0b = get(g + "node_mlp.0.bias", {H});
    o.n2w = get(g + "node_mlp.2.weight", {H, H});
    o.n2b = get(g + "node_mlp.2.bias", {H});
    o.c0w = get(g + "coord_mlp.0.weight", {H, H});
    o.c0b = get(g + "coord_mlp.0.bias", {H});
    o.c2w = get(g + "coord_mlp.2.weight", {1, H});
    if (cfg_.attention) {
      o.aw = get(g + "att_mlp.0.weight", {1, H});
      o.ab = get(g + "att_mlp.0.bias", {1});
    }
    off_.push_back(o);
  }
}

template <class T>
double EgnnNetwork<T>::layer_madds(int n, double E, double pq_rows, bool coord, bool node) const {
  const double H = cfg_.hidden, D = cfg_.dim;
  double total = E * D * 2;                      // d, r
  total += 2 * pq_rows * H * H + E * H * 2;      // P, Q, and the gather with r, a
  total += E * H * cfg_.edge_features;           // conditioning (value block only: counted per block, an upper bound)
  total += E * H * H;                            // edge_mlp.2
  if (cfg_.attention) total += 2 * E * H;        // att_mlp.0 and the gate
  if (coord) total += E * H * H + E * H + E * D; // coord_mlp.0, .2, aggregation
  if (node) total += E * H + 2 * double(n) * H * H + double(n) * H * H;
  return total;
}

template <class T>
double EgnnNetwork<T>::forward_madds(int n, EgnnRequest req) const {
  const double H = cfg_.hidden, E = double(n) * (n - 1);
  double total = double(n) * cfg_.in_node_nf * H;  // embedding
  for (int l = 0; l < cfg_.layers; ++l) {
    const bool last = l == cfg_.layers - 1;
    total += layer_madds(n, E, n, !last || req.positions, !last || req.features);
  }
  if (req.features) total += double(n) * H * cfg_.out_node_nf;
  return total;
}

template <class T>
double EgnnNetwork<T>::local_tangent_madds(int n, EgnnRequest req) const {
  const bool last = cfg_.layers == 1, coord = !last || req.positions, node = !last || req.features;
  // Layer 0 on the node's 2(n − 1) edges, with its one row of P and of Q and
  // no conditioning term (a constant), in place of the dense layer 0.
  const double edges = 2.0 * (n - 1);
  const double local = layer_madds(n, edges, 1, coord, node) - edges * cfg_.hidden * cfg_.edge_features;
  return forward_madds(n, req) - layer_madds(n, double(n) * (n - 1), n, coord, node) + local;
}

template <class T>
void EgnnNetwork<T>::forward(const T* p, const Mat& x, const Mat& h0, int n, int blocks, EgnnRequest req,
                             EgnnWorkspace<T>& ws, const T* edge_features) const {
  const int sizes[1] = {n};
  forward(p, x, h0, std::span<const int>(sizes, 1), blocks, req, ws, edge_features, nullptr);
}

template <class T>
void EgnnNetwork<T>::forward(const T* p, const Mat& x, const Mat& h0, std::span<const int> sizes, int blocks,
                             EgnnRequest req, EgnnWorkspace<T>& ws, const T* edge_features,
                             const int* tangent_nodes, int nodes_per_block) const {
  const int L = cfg_.layers, H = cfg_.hidden;
  if (sizes.empty()) throw std::invalid_argument("EGNN forward: no graph");
  long nodes = 0;
  for (int n : sizes) {
    if (n < 2) throw std::invalid_argument("EGNN needs at least 2 nodes");
    nodes += n;
  }
  if (x.rows() != Eigen::Index(blocks) * nodes || x.cols() != cfg_.dim || h0.rows() != x.rows() ||
      h0.cols() != cfg_.in_node_nf)
    throw std::invalid_argument("EGNN forward: input shapes do not match the configuration");
  if (cfg_.edge_features > 0 && !edge_features)
    throw std::invalid_argument("EGNN forward: the network has edge conditioning but none was given");
  const bool mean = cfg_.aggregation == Aggregation::Mean;
  if (!std::equal(sizes.begin(), sizes.end(), ws.sizes.begin(), ws.sizes.end()) || ws.mean_scale != mean) {
    ws.mean_scale = mean;
    ws.sizes.assign(sizes.begin(), sizes.end());
    ws.recv.clear();
    ws.send.clear();
    ws.first_edge.assign(1, 0);
    ws.node_scale.clear();
    ws.graph_first.clear();
    int base = 0;
    for (int n : sizes) {
      // Mean aggregation divides a node's coordinate update by its n − 1 neighbours.
      const T scale = mean ? T(1) / T(n - 1) : T(1);
      for (int i = 0; i < n; ++i) {
        for (int j = 0; j < n; ++j)
          if (i != j) {
            ws.recv.push_back(base + i);
            ws.send.push_back(base + j);
          }
        ws.first_edge.push_back(int(ws.recv.size()));
        ws.node_scale.push_back(scale);
        ws.graph_first.push_back(base);
      }
      base += n;
    }
    ws.nodes = base;
    ws.edges = int(ws.recv.size());
  }
  ws.blocks = blocks;
  ws.request = req;
  ws.local_tangents = false;
  ws.xs.resize(L + 1);
  ws.hs.resize(L + 1);
  ws.layers.resize(L);
  ws.xs[0] = x;
  ws.h0 = h0;  // a copy into a matrix of the same size: no allocation from call to call
  if (cfg_.edge_features > 0)
    ws.edge_features = ConstMatMap<T>(edge_features, ws.edges, cfg_.edge_features);
  detail::linear_forward<T>(ws.h0, ConstMatMap<T>(p + emb_w_, H, cfg_.in_node_nf), p + emb_b_, blocks, ws.hs[0]);
  int first_layer = 0;
  if (tangent_nodes && blocks > 1) {
    // Layer 0's value block alone, then its tangents on their own edges.
    const int N = ws.nodes, P = nodes_per_block;
    if (P < 1) throw std::invalid_argument("EGNN forward: at least one tangent node per block");
    // The last block that named each node, and each graph (by its first node).
    ws.lt_mark.assign(N, 0);
    ws.lt_graph_mark.assign(N, 0);
    for (int b = 1; b < blocks; ++b) {
      for (int k = 0; k < P; ++k) {
        const int i = tangent_nodes[(b - 1) * P + k];
        if (i < 0 || i >= N) throw std::invalid_argument("EGNN forward: a tangent node outside the graphs");
        int& graph = ws.lt_graph_mark[ws.graph_first[i]];
        if (graph == b) throw std::invalid_argument("EGNN forward: two tangent nodes of one block in one graph");
        graph = b;
        ws.lt_mark[i] = b;
      }
      for (int j = 0; j < N; ++j)
        if (ws.lt_mark[j] != b && (!ws.xs[0].row(b * N + j).isZero(0) || !ws.h0.row(b * N + j).isZero(0)))
          throw std::invalid_argument("EGNN forward: a tangent block is not zero outside its nodes");
    }
    // Swaps, not copies, keep every matrix at its size from call to call:
    // the value-only layer reads and writes the lt_ matrices of N rows.
    std::swap(ws.xs[0], ws.lt_x0);
    std::swap(ws.hs[0], ws.lt_h0);
    std::swap(ws.xs[1], ws.lt_x1);
    std::swap(ws.hs[1], ws.lt_h1);
    ws.xs[0] = ws.lt_x0.topRows(N);
    ws.hs[0] = ws.lt_h0.topRows(N);
    const bool last = L == 1;
    layer_forward(p, 0, 1, !last || req.positions, !last || req.features, ws);
    std::swap(ws.xs[0], ws.lt_x0);  // the full inputs back in xs[0], hs[0]
    std::swap(ws.hs[0], ws.lt_h0);
    std::swap(ws.xs[1], ws.lt_x1);  // layer 0's value block in lt_x1, lt_h1
    std::swap(ws.hs[1], ws.lt_h1);
    layer0_local_tangents(p, blocks, tangent_nodes, P, !last || req.positions, !last || req.features, ws);
    ws.local_tangents = true;
    first_layer = 1;
  }
  ws.unrecorded = ws.forward_only;
  for (int l = first_layer; l < L; ++l) {
    const bool last = l == L - 1;
    if (ws.forward_only)
      layer_forward_tiled(p, l, blocks, !last || req.positions, !last || req.features, ws);
    else
      layer_forward(p, l, blocks, !last || req.positions, !last || req.features, ws);
  }
  if (req.features)
    detail::linear_forward<T>(ws.hs[L], ConstMatMap<T>(p + out_w_, cfg_.out_node_nf, H), p + out_b_, blocks,
                              ws.h_out);
}

template <class T>
void EgnnNetwork<T>::layer_geometry(const T* p, int l, int blocks, EgnnWorkspace<T>& ws) const {
  const LayerOffsets& o = off_[l];
  EgnnLayerRecord<T>& R = ws.layers[l];
  const int D = cfg_.dim, H = cfg_.hidden, n = ws.nodes, E = ws.edges, B = blocks;
  const int edge_in = edge_input_width(cfg_);
  const Mat& x = ws.xs[l];
  const Mat& h = ws.hs[l];

  // Geometry: d = x_i − x_j, r = |d|², u = d / (sqrt(r + 1e-8) + 1).
  // Tangents: rᵏ = 2 d⁰·dᵏ;  uᵏ = dᵏ/den − d⁰ rᵏ q with q = 1 / (2 sq den²).
  R.d.resize(Eigen::Index(B) * E, D);
  R.u.resize(Eigen::Index(B) * E, D);
  R.r.resize(Eigen::Index(B) * E);
  R.sq.resize(E);
  // On raw rows (row-major, D = 2 or 3 columns): Eigen's per-row expressions
  // of runtime size cost more than their arithmetic here.
  const T* X = x.data();
  T *d = R.d.data(), *u = R.u.data();
  for (int b = 0; b < B; ++b)
    for (int e = 0; e < E; ++e) {
      const T* xi = X + (std::size_t(b) * n + ws.recv[e]) * D;
      const T* xj = X + (std::size_t(b) * n + ws.send[e]) * D;
      T* de = d + (std::size_t(b) * E + e) * D;
      for (int c = 0; c < D; ++c) de[c] = xi[c] - xj[c];
    }
  for (int e = 0; e < E; ++e) {
    const T* d0 = d + std::size_t(e) * D;
    T r0 = 0;
    for (int c = 0; c < D; ++c) r0 += d0[c] * d0[c];
    const T sq = std::sqrt(r0 + T(1e-8)), den = sq + T(1), q = T(1) / (T(2) * sq * den * den);
    R.r[e] = r0;
    R.sq[e] = sq;
    for (int c = 0; c < D; ++c) u[std::size_t(e) * D + c] = d0[c] / den;
    for (int b = 1; b < B; ++b) {
      const T* db = d + (std::size_t(b) * E + e) * D;
      T dot = 0;
      for (int c = 0; c < D; ++c) dot += d0[c] * db[c];
      const T rb = T(2) * dot;
      R.r[b * E + e] = rb;
      T* ub = u + (std::size_t(b) * E + e) * D;
      for (int c = 0; c < D; ++c) ub[c] = db[c] / den - d0[c] * (rb * q);
    }
  }
  // edge_mlp.0 on [h_i, h_j, r, a] = A h_i + B h_j + w_r r + w_a a + b: the
  // node parts are multiplied once per node, not once per edge.
  ConstMatMap<T> W0(p + o.e0w, H, edge_in);
  R.P.resize(h.rows(), H);
  R.Q.resize(h.rows(), H);
  R.P.noalias() = h * W0.leftCols(H).transpose();
  R.Q.noalias() = h * W0.middleCols(H, H).transpose();
  // The r and a columns of W0, made contiguous; a zero bias for tangent blocks.
  ws.wr = W0.col(2 * H);
  if (cfg_.edge_attr)
    ws.wa = W0.col(2 * H + 1);
  else
    ws.wa.setZero(H);
  ws.zero.setZero(H);
}

template <class T>
void EgnnNetwork<T>::layer_nodes(const T* p, int l, int blocks, bool node, EgnnWorkspace<T>& ws) const {
  const LayerOffsets& o = off_[l];
  EgnnLayerRecord<T>& R = ws.layers[l];
  const int H = cfg_.hidden, n = ws.nodes;
  const Mat& h = ws.hs[l];
  Mat& ho = ws.hs[l + 1];
  if (!node) {
    ho = h;
    return;
  }
  ConstMatMap<T> N0(p + o.n0w, H, 2 * H);
  R.pren.resize(h.rows(), H);
  R.pren.noalias() = h * N0.leftCols(H).transpose();
  R.pren.noalias() += R.s * N0.rightCols(H).transpose();
  R.pren.topRows(n).rowwise() += Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(p + o.n0b, H);
  detail::silu_forward<T>(R.pren, blocks, R.yn, R.sign, R.dyn);
  detail::linear_forward<T>(R.yn, ConstMatMap<T>(p + o.n2w, H, H), p + o.n2b, blocks, ho);
  ho += h;
}

// edge_mlp.0's pre-activation [h_i, h_j, r, a, e] W0ᵀ + b of edges e0 ..
// e0 + Te − 1 in every block (row b·Te + k is edge e0 + k of block b), from
// the node parts P, Q of layer_geometry: the bias and the conditioning e on
// the value block only (their tangents are zero).
template <class T>
void EgnnNetwork<T>::edge_preactivation(const T* p, int l, int B, int e0, int Te, EgnnWorkspace<T>& ws,
                                        Mat& pre1) const {
  const LayerOffsets& o = off_[l];
  const EgnnLayerRecord<T>& R = ws.layers[l];
  const int H = cfg_.hidden, n = ws.nodes, E = ws.edges, Ec = cfg_.edge_features;
  // a_ij: r of the network input, fixed across layers.
  const detail::Vec<T>& a = ws.local_tangents ? ws.edge_attr : ws.layers[0].r;
  const T *wr = ws.wr.data(), *wa = ws.wa.data();
  pre1.resize(Eigen::Index(B) * Te, H);
  for (int b = 0; b < B; ++b) {
    const T* bias = b == 0 ? p + o.e0b : ws.zero.data();
    for (int k = 0; k < Te; ++k) {
      const int e = e0 + k;
      T* dst = pre1.data() + (std::size_t(b) * Te + k) * H;
      const T* Pi = R.P.data() + (std::size_t(b) * n + ws.recv[e]) * H;
      const T* Qj = R.Q.data() + (std::size_t(b) * n + ws.send[e]) * H;
      const T rv = R.r[b * E + e], av = cfg_.edge_attr ? a[b * E + e] : T(0);
#pragma omp simd
      for (int c = 0; c < H; ++c) dst[c] = Pi[c] + Qj[c] + wr[c] * rv + wa[c] * av + bias[c];
    }
  }
  // Added after the loop above so that with Ec = 0 that loop is unchanged.
  if (Ec > 0) {
    ConstMatMap<T> W0(p + o.e0w, H, edge_input_width(cfg_));
    pre1.topRows(Te).noalias() += ws.edge_features.middleRows(e0, Te) * W0.rightCols(Ec).transpose();
  }
}

// Attention on Te edges stacked in B blocks: m = m0 · σ(att·m0 + b), and for
// the tangents mᵏ = m0ᵏ α⁰ + m0⁰ αᵏ.
template <class T>
void EgnnNetwork<T>::gate_messages(const T* p, int l, int B, int Te, const Mat& m0, detail::Vec<T>& g,
                                   detail::Vec<T>& alpha, detail::Vec<T>& gd1, detail::Vec<T>& gd2, Mat& m) const {
  const LayerOffsets& o = off_[l];
  const int H = cfg_.hidden;
  Eigen::Map<const detail::Vec<T>> aw(p + o.aw, H);
  g.noalias() = m0 * aw;
  g.head(Te).array() += p[o.ab];
  detail::scalar_forward<T>(g, B, detail::sigmoid_with_slopes<T>, alpha, gd1, gd2);
  m.resize(m0.rows(), H);
  for (int k = 0; k < Te; ++k) m.row(k) = m0.row(k) * alpha[k];
  for (int b = 1; b < B; ++b)
    for (int k = 0; k < Te; ++k) m.row(b * Te + k) = m0.row(b * Te + k) * alpha[k] + m0.row(k) * alpha[b * Te + k];
}

template <class T>
void EgnnNetwork<T>::layer_forward(const T* p, int l, int blocks, bool coord, bool node,
                                   EgnnWorkspace<T>& ws) const {
  using Vec = detail::Vec<T>;
  const LayerOffsets& o = off_[l];
  EgnnLayerRecord<T>& R = ws.layers[l];
  const int H = cfg_.hidden, n = ws.nodes, E = ws.edges, B = blocks;
  const Mat& x = ws.xs[l];
  const Mat& h = ws.hs[l];
  R.coord_done = coord;
  R.node_done = node;

  layer_geometry(p, l, blocks, ws);
  edge_preactivation(p, l, B, 0, E, ws, R.pre1);
  detail::silu_forward<T>(R.pre1, B, R.y1, R.sig1, R.dy1);
  detail::linear_forward<T>(R.y1, ConstMatMap<T>(p + o.e2w, H, H), p + o.e2b, B, R.pre2);
  detail::silu_forward<T>(R.pre2, B, R.m0, R.sig2, R.dm0);

  // Attention: m = m0 · σ(att·m0 + b).
  if (cfg_.attention) gate_messages(p, l, B, E, R.m0, R.g, R.alpha, R.gd1, R.gd2, R.m);
  const Mat& m = cfg_.attention ? R.m : R.m0;

  // Coordinates: x'_i = x_i + scale Σ_j u_ij φ_ij.
  Mat& xo = ws.xs[l + 1];
  xo = x;
  if (coord) {
    detail::linear_forward<T>(m, ConstMatMap<T>(p + o.c0w, H, H), p + o.c0b, B, R.c1);
    detail::silu_forward<T>(R.c1, B, R.y3, R.sig3, R.dy3);
    Eigen::Map<const Vec> c2(p + o.c2w, H);
    R.phi_raw.resize(R.y3.rows());
    R.phi_raw.noalias() = R.y3 * c2;  // without noalias, Eigen makes a temporary per call
    if (cfg_.tanh) {
      // The reference's EGNN multiplies the per-layer range by 19 under mean aggregation.
      const T C = T(cfg_.coords_range / cfg_.layers * (cfg_.aggregation == Aggregation::Mean ? 19 : 1));
      detail::scalar_forward<T>(
          R.phi_raw, B,
          detail::ScaledTanh<T>{C},
          R.phi, R.pd1, R.pd2);
    } else {
      R.phi = R.phi_raw;
    }
    const T* scale = ws.node_scale.data();
    for (int e = 0; e < E; ++e) xo.row(ws.recv[e]) += (scale[ws.recv[e]] * R.phi[e]) * R.u.row(e);
    for (int b = 1; b < B; ++b)
      for (int e = 0; e < E; ++e)
        xo.row(b * n + ws.recv[e]) +=
            scale[ws.recv[e]] * (R.u.row(b * E + e) * R.phi[e] + R.u.row(e) * R.phi[b * E + e]);
  }

  // Nodes: h' = h + node_mlp([h, Σ_j m_ij]).
  if (node) {
    // Edges are grouped by receiver: node i's messages are contiguous rows.
    R.s.resize(h.rows(), H);
    const int* first = ws.first_edge.data();
    for (int b = 0; b < B; ++b)
      for (int i = 0; i < n; ++i)
        R.s.row(b * n + i) = m.middleRows(std::size_t(b) * E + first[i], first[i + 1] - first[i]).colwise().sum();
  }
  layer_nodes(p, l, blocks, node, ws);
}

template class EgnnNetwork<float>;
template class EgnnNetwork<double>;

}  // namespace enf
