// The EGNN of the reference implementation (E_GCL layers, §1 of the fixtures
// README), evaluated on one graph of n fully connected nodes, with K tangent
// directions carried alongside the values (forward mode) and the exact reverse
// pass of that forward computation.
//
// Shapes: a "stacked" matrix has 1+K row blocks of n rows each (block 0 the
// value, block k the k-th tangent); positions are [n, D], node features [n, F].
// Edges are all ordered pairs i != j; node i receives (sums) over its j.
//
// Edge order (the rows of every per-edge quantity, and of the edge
// conditioning a caller passes): grouped by receiver, receivers ascending,
// then senders ascending with j = i skipped:
//   (0,1), (0,2), …, (0,n−1), (1,0), (1,2), …, (n−1,n−2);
// edge (i, j) is row edge_index(i, j, n) = i·(n−1) + j − [j > i].
#pragma once

#include <span>
#include <string>
#include <vector>

#include "egnn/dual_ops.hpp"
#include "egnn/parameters.hpp"

namespace enf {

enum class Aggregation { Sum, Mean };

struct EgnnConfig {
  int dim = 3;             // D: 2 or 3
  int in_node_nf = 1;      // width of the embedding's input
  int out_node_nf = 1;     // width of embedding_out's output
  int hidden = 32;         // H
  int layers = 3;          // L
  bool attention = true;   // m_ij *= sigmoid(att_mlp(m_ij))
  bool tanh = true;        // phi = (coords_range / L) * tanh(coord_mlp(m_ij))
  double coords_range = 15.0;
  // Sum, or Mean: coordinate updates divided by the n − 1 neighbours, and the
  // tanh range multiplied by 19, as the reference's EGNN does (egnn/models.py,
  // gcl.py; with masks it divides by N − 1 real neighbours, which compaction
  // gives too). Node messages are always summed.
  Aggregation aggregation = Aggregation::Sum;
  bool edge_attr = true;   // a_ij = |x_i − x_j|² of the network input enters the edge MLP
  // Ec: fixed per-edge conditioning e_ij appended to every layer's edge_mlp.0
  // input, [h_i, h_j, r_ij, (a_ij), e_ij]. Constant inputs: no tangents, no
  // cotangent; only their weight columns get a gradient. 0 = none (the
  // reference network).
  int edge_features = 0;
  std::string prefix = "egnn.";

  // Returns an empty string when valid, else what is wrong.
  std::string validate() const;
};

// Columns of edge_mlp.0's input: [h_i (H), h_j (H), r, (a), e (Ec)].
int edge_input_width(const EgnnConfig& c);

// The row of edge (i, j), i != j, among the n(n−1) edges (order above).
inline int edge_index(int i, int j, int n) { return i * (n - 1) + j - (j > i ? 1 : 0); }

// Appends the network's tensors to `layout` in the reference's state_dict order.
void register_egnn_parameters(const EgnnConfig& cfg, ParameterLayout& layout);

// What the caller needs from a forward pass: skipping an output skips the work
// only it needs (the last layer's node update, or its coordinate update).
struct EgnnRequest {
  bool positions = true;   // x_L
  bool features = false;   // embedding_out(h_L)
};

template <class T>
struct EgnnLayerRecord {
  using Mat = detail::Mat<T>;
  using Vec = detail::Vec<T>;
  Mat d, u;                    // [B·E, D]: x_i − x_j and its normalised form
  Vec r, sq;                   // r: [B·E] squared distance; sq: [E] sqrt(r⁰ + 1e-8)
  Mat P, Q;                    // [B·n, H]: the receiver and sender parts of edge_mlp.0
  Mat pre1, sig1, dy1, y1;     // edge_mlp.0 pre-activation, σ, SiLU', SiLU output
  Mat pre2, sig2, dm0, m0;     // edge_mlp.2
  Vec g, gd1, gd2, alpha;      // attention logit, σ' and σ'', gate
  Mat m;                       // gated message (attention on)
  Mat c1, sig3, dy3, y3;       // coord_mlp.0
  Vec phi_raw, phi, pd1, pd2;  // coord_mlp.2 output, after C·tanh, and its derivatives
  Mat s, pren, sign, dyn, yn;  // node aggregation, node_mlp.0 pre-activation, σ, SiLU', output
  bool coord_done = false, node_done = false;
};

template <class T>
struct EgnnWorkspace {
  using Mat = detail::Mat<T>;
  using Vec = detail::Vec<T>;
  // The graphs of the last forward, stacked: their node and edge counts
  // summed (one block's rows), node i's edges (rows first_edge[i] ..
  // first_edge[i+1], grouped by receiver) and its coordinate update's scale.
  std::vector<int> sizes;
  int nodes = 0, edges = 0, blocks = 0;
  std::vector<int> recv, send;         // edge e: recv[e] <- send[e]
  std::vector<int> first_edge;
  std::vector<int> graph_first;        // node i's graph begins at node graph_first[i]
  std::vector<T> node_scale;
  bool mean_scale = false;             // node_scale is mean aggregation's (else all 1)
  Mat h0;                              // embedding input (kept for the reverse pass)
  Mat edge_features;                   // [E, Ec] copy of the conditioning (read again by the reverse pass)
  std::vector<Mat> xs, hs;             // inputs of layer l (xs[L], hs[L]: network output)
  std::vector<EgnnLayerRecord<T>> layers;
  Mat h_out;                           // embedding_out(h_L)
  EgnnRequest request;
  // reverse-pass scratch; the node MLP's (ynbar, mix_node: B·n rows) apart
  // from the edge MLPs' (ybar, mix: B·E rows), so that neither changes shape
  // from layer to layer (each change of shape is a reallocation)
  Mat xbar, hbar, xbar_next, hbar_next, mbar, m0bar, Pbar, Qbar, ybar, ubar, dbar, sbar, mix, ynbar, mix_node;
  Vec rbar, abar, phibar, gbar;
  Vec wr, wa, zero;  // per-layer contiguous copies of W0's r and a columns

  // A forward with node-local tangents (forward's tangent_nodes): layer 0's
  // record holds the value block only, its tangents having been computed on
  // each direction's own edges; the edge attribute a and its tangents are in
  // edge_attr. The reverse pass refuses such a forward.
  bool local_tangents = false;
  Vec edge_attr;                                   // [B·E]
  std::vector<int> lt_edge, lt_block, lt_node;     // compact row -> edge, block, its tangent node
  std::vector<int> lt_mark, lt_graph_mark;         // per node (graph): the last block that named it
  Mat lt_x0, lt_h0, lt_x1, lt_h1;                  // layer 0's inputs and outputs, value block
  Mat lt_pi, lt_qi;                                // a tangent node's row of P and of Q
  Mat lt_d, lt_u, lt_y1, lt_pre2, lt_m, lt_c1, lt_s, lt_pren;  // compact tangents
  Vec lt_r, lt_g, lt_phi;

  // Set by a caller whose forwards no reverse pass follows (a solve's f
  // evaluations, the exact trace; ForwardOnlyScope in vector_field.hpp):
  // each layer's edge pipeline then runs in tiles of whole receivers' edges
  // that stay in cache (egnn_tiled_forward.cpp), keeping no per-edge record.
  // The same numbers to rounding; reverse() refuses after such a forward.
  bool forward_only = false;
  bool unrecorded = false;  // the last forward was forward-only
  Mat t_pre1, t_sig, t_d1, t_y1, t_pre2, t_m0, t_m, t_c1, t_y3;  // one tile's rows, [B·T, H]
  Vec t_g, t_gd1, t_gd2, t_alpha, t_phi_raw, t_phi, t_pd1, t_pd2;
};

template <class T>
class EgnnNetwork {
 public:
  using Mat = detail::Mat<T>;

  // Resolves every tensor by name in `layout` (which must contain the network).
  EgnnNetwork(EgnnConfig cfg, const ParameterLayout& layout);

  const EgnnConfig& config() const { return cfg_; }

  // x: [B·n, D], h0: [B·n, in_node_nf] stacked with B = 1 + K blocks.
  // edge_features: [n(n−1), Ec] row-major in the edge order above, required
  // when Ec > 0 and ignored otherwise; a constant (the same for every block,
  // its tangents zero). It is copied into the workspace, so the caller's
  // buffer need not outlive the call.
  // Results stay in the workspace: ws.xs[L] (positions) and ws.h_out.
  void forward(const T* params, const Mat& x, const Mat& h0, int n, int blocks, EgnnRequest req, EgnnWorkspace<T>& ws,
               const T* edge_features = nullptr) const;

  // Several graphs at once, stacked without padding: graph g has sizes[g]
  // nodes, and each block holds every graph's nodes in order (Σ sizes rows).
  // Edges, and the edge conditioning's rows, are graph 0's in the order
  // above, then graph 1's, and so on. Graphs never exchange messages: each
  // graph's rows are what forward() on that graph alone gives, to rounding.
  // One matrix product per layer serves them all (issue 13's lockstep solves).
  //
  // tangent_nodes (optional, (blocks − 1)·nodes_per_block entries): tangent
  // block k's directions are zero outside nodes tangent_nodes[(k − 1)·P ..
  // k·P − 1], P = nodes_per_block, each in another graph (checked), as the
  // exact trace's unit directions are (P > 1: the same direction of several
  // stacked graphs at once). Layer 0 then computes each tangent on those
  // nodes' 2(n − 1) edges instead of all n(n − 1), since every other edge's
  // tangent is zero there: the same numbers to rounding for about 1/L less
  // work. No reverse pass may follow such a forward.
  void forward(const T* params, const Mat& x, const Mat& h0, std::span<const int> sizes, int blocks, EgnnRequest req,
               EgnnWorkspace<T>& ws, const T* edge_features = nullptr, const int* tangent_nodes = nullptr,
               int nodes_per_block = 1) const;

  // Reverse of the last forward on `ws`: given cotangents of the stacked
  // outputs (null = zero), writes the cotangents of the stacked inputs and
  // accumulates the parameter gradient into `grad` (the layout of `params`).
  // The edge conditioning has no cotangent (it is not an input that moves).
  void reverse(const T* params, const Mat* xbar_out, const Mat* hbar_out, EgnnWorkspace<T>& ws, Mat& xbar_in,
               Mat& h0bar, T* grad) const;

  // Multiply-adds of one forward pass over n nodes, per block (value or tangent).
  double forward_madds(int n, EgnnRequest req) const;
  // Of one node-local tangent block (forward's tangent_nodes): layer 0 on 2(n − 1) edges.
  double local_tangent_madds(int n, EgnnRequest req) const;

 private:
  struct LayerOffsets {
    std::size_t e0w, e0b, e2w, e2b, n0w, n0b, n2w, n2b, c0w, c0b, c2w, aw = 0, ab = 0;
  };
  EgnnConfig cfg_;
  std::size_t emb_w_, emb_b_, out_w_, out_b_;
  std::vector<LayerOffsets> off_;

  double layer_madds(int n, double edges, double pq_rows, bool coord, bool node) const;
  void layer_forward(const T* p, int l, int blocks, bool coord, bool node, EgnnWorkspace<T>& ws) const;
  // layer_forward's parts: the edge geometry and the node parts of edge_mlp.0
  // (P, Q), and the node update from the aggregated messages R.s.
  void layer_geometry(const T* p, int l, int blocks, EgnnWorkspace<T>& ws) const;
  void layer_nodes(const T* p, int l, int blocks, bool node, EgnnWorkspace<T>& ws) const;
  // Shared by both: edge_mlp.0's pre-activation of edges e0 .. e0 + Te − 1
  // (rows b·Te + k), and the attention gate on Te edges in B blocks.
  void edge_preactivation(const T* p, int l, int B, int e0, int Te, EgnnWorkspace<T>& ws, Mat& pre1) const;
  void gate_messages(const T* p, int l, int B, int Te, const Mat& m0, detail::Vec<T>& g, detail::Vec<T>& alpha,
                     detail::Vec<T>& gd1, detail::Vec<T>& gd2, Mat& m) const;
  // layer_forward without the per-edge record, in tiles (egnn_tiled_forward.cpp).
  void layer_forward_tiled(const T* p, int l, int blocks, bool coord, bool node, EgnnWorkspace<T>& ws) const;
  void layer_reverse(const T* p, int l, int blocks, EgnnWorkspace<T>& ws, T* grad) const;
  // Layer 0's tangents on each direction's own edges (egnn_local_tangents.cpp),
  // after layer_forward computed its value block into ws.lt_x1, ws.lt_h1.
  void layer0_local_tangents(const T* p, int blocks, const int* tangent_nodes, int nodes_per_block, bool coord,
                             bool node, EgnnWorkspace<T>& ws) const;
};

extern template class EgnnNetwork<float>;
extern template class EgnnNetwork<double>;

}  // namespace enf
