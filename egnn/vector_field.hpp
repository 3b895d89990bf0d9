// The E-NF vector field f(z, t): the reference's EGNN_dynamics (positions
// only, node feature t) and EGNN_dynamics_QM9 (positions plus F node
// features). One call computes only what is asked:
//   forward(V = null)       the velocity f
//   forward(V = K rows)     f and the K tangents J·V (forward mode)
//   reverse(f̄, (J·V)̄)       after a forward with tangents: z̄ and ∂/∂θ, accumulated
// A state is flattened node-major, z[i·C + c] with C = D + F channels
// ([x, y, (z), h_1 … h_F]); the Jacobian's row is the output index.
//
// A conditional field (node_condition Fc > 0 and/or edge_condition Ec > 0)
// also sees fixed per-molecule inputs that are not flowed: per-atom features
// c_i beside the time in the embedding input, h0 = [h_i, c_i, t], and
// per-edge features e_ij appended to every layer's edge_mlp.0 input (edge
// order: egnn_network.hpp). They are constants: not part of the state, no
// tangents, no cotangents; they only shape f.
#pragma once

#include <span>
#include <string>

#include "egnn/egnn_network.hpp"

namespace enf {

struct FieldConfig {
  int dim = 3;           // D
  int features = 0;      // F: 0 for particle systems (DW4, LJ13), 6 for QM9
  int hidden = 32;
  int layers = 3;
  bool attention = true;
  bool tanh = true;
  double coords_range = 15.0;
  Aggregation aggregation = Aggregation::Sum;
  bool condition_time = true;  // t enters as a node feature
  int node_condition = 0;      // Fc: per-atom conditioning values (0 = unconditional)
  int edge_condition = 0;      // Ec: per-edge (i, j) conditioning values (0 = unconditional)

  int channels() const { return dim + features; }
  bool conditional() const { return node_condition > 0 || edge_condition > 0; }
  std::string validate() const;
  EgnnConfig egnn() const;  // the network this field wraps (prefix "egnn.")
};

// The layout of the field's parameters, named as the reference's state_dict.
ParameterLayout field_layout(const FieldConfig& cfg);

template <class T>
struct FieldWorkspace {
  using Mat = detail::Mat<T>;
  EgnnWorkspace<T> net;
  Mat x, h0, xbar_out, hbar_out, xbar_in, h0bar;
  int n = 0, K = 0;  // the last forward's nodes (all graphs') and tangent directions
  // The conditioning of the molecule this workspace evaluates (set_condition):
  // node [n, Fc], edge [n(n−1), Ec]; condition_n = its n (−1: none set).
  Mat node_condition, edge_condition;
  int condition_n = -1;
};

// For the life of the scope, the field's forwards on `ws` keep no record for
// a reverse pass (EgnnWorkspace::forward_only: tiled, cache-resident edge
// pipelines); the previous setting comes back at its end. For callers whose
// evaluations no reverse pass follows: a solve's f, the exact trace. Any
// workspace without that switch (test fields) is left alone.
template <class Workspace>
class ForwardOnlyScope {
 public:
  explicit ForwardOnlyScope(Workspace& ws) : ws_(ws) {
    if constexpr (requires { ws.net.forward_only; }) {
      previous_ = ws.net.forward_only;
      ws.net.forward_only = true;
    }
  }
  ~ForwardOnlyScope() {
    if constexpr (requires { ws_.net.forward_only; }) ws_.net.forward_only = previous_;
  }
  ForwardOnlyScope(const ForwardOnlyScope&) = delete;
  ForwardOnlyScope& operator=(const ForwardOnlyScope&) = delete;

 private:
  Workspace& ws_;
  bool previous_ = false;
};

template <class T>
class VectorField {
 public:
  using Mat = detail::Mat<T>;
  using Scalar = T;
  using Workspace = FieldWorkspace<T>;

  VectorField(FieldConfig cfg, const ParameterLayout& layout);

  int channels() const { return cfg_.channels(); }
  int dim() const { return cfg_.dim; }

  const FieldConfig& config() const { return cfg_; }
  const EgnnNetwork<T>& network() const { return net_; }
  std::size_t parameter_count() const { return param_count_; }

  // One sample of n nodes (no padding). z: n·C values. V: K×(n·C) tangent
  // directions or null. f: n·C out. JV: K×(n·C) out (when V is given).
  void forward(const T* params, const T* z, int n, T t, const Mat* V, FieldWorkspace<T>& ws, T* f,
               Mat* JV) const;

  // Several samples in one evaluation (issue 13's lockstep solves): G graphs
  // of sizes[g] nodes stacked without padding, each at its own time t[g]. z,
  // f: every graph's n_g·C values in order (Σ n_g·C); V, JV: K rows of Σ n_g·C
  // columns, row k holding each graph's own k-th direction in its columns.
  // Each graph's f and JV are forward()'s for it alone, to rounding; one
  // matrix product per layer serves all of them. reverse() follows it as it
  // follows forward(). A conditional field takes one molecule per call.
  // tangent_nodes (optional, nodes_per_row per row of V): row k is zero
  // outside the channels of nodes tangent_nodes[k·P .. (k + 1)·P − 1], P =
  // nodes_per_row, each of another graph (checked), and the first layer's
  // tangents are computed on those nodes' edges alone (EgnnNetwork::forward);
  // no reverse() may follow.
  void forward_stacked(const T* params, const T* z, std::span<const int> sizes, const T* t, const Mat* V,
                       FieldWorkspace<T>& ws, T* f, Mat* JV, const int* tangent_nodes = nullptr,
                       int nodes_per_row = 1) const;

  // One graph whose K directions are each supported on one node (the exact
  // trace's unit vectors): forward() with tangent_nodes, about 1/L less work.
  void forward_node_tangents(const T* params, const T* z, int n, T t, const Mat& V, const int* tangent_nodes,
                             FieldWorkspace<T>& ws, T* f, Mat& JV) const {
    forward_stacked(params, z, std::span<const int>(&n, 1), &t, &V, ws, f, &JV, tangent_nodes);
  }

  // Sets the conditioning for every later forward on `ws` with n nodes:
  // node [n, Fc] and edge [n(n−1), Ec] row-major (edge order:
  // egnn_network.hpp; null when that width is 0). Copied into `ws`.
  //
  // Why on the workspace and not a forward argument: the conditioning is
  // fixed for a molecule over a whole integration, while the field is called
  // by generic code (ODE solvers, trace estimators, the CNF) that passes only
  // (z, t, V, ws). Carried by the workspace, it reaches every such call with no
  // signature changing, and the reverse pass reads the very copy the forward
  // used. A conditional field refuses to run on a workspace without it (or
  // set for another n), so it can never be silently ignored.
  void set_condition(FieldWorkspace<T>& ws, int n, const T* node, const T* edge) const;

  // Reverse of the last forward on `ws`. fbar: n·C (or null), JVbar: K×(n·C)
  // (or null). zbar: n·C out (overwritten). grad: accumulated.
  void reverse(const T* params, FieldWorkspace<T>& ws, const T* fbar, const Mat* JVbar, T* zbar, T* grad) const;

  // Multiply-adds of one evaluation with K tangents, and of its reverse pass.
  double forward_madds(int n, int K) const;
  // Of forward_node_tangents with K directions.
  double forward_madds_node_tangents(int n, int K) const;
  double reverse_madds(int n, int K) const;

 private:
  FieldConfig cfg_;
  EgnnNetwork<T> net_;
  std::size_t param_count_;
};

extern template class VectorField<float>;
extern template class VectorField<double>;

}  // namespace enf
