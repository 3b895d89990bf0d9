// The E-NF vector field f(z, t): the reference's EGNN_dynamics (positions
// only, node feature t) and EGNN_dynamics_QM9 (positions plus F node
// features). One call computes only what is asked:
//   forward(V = null)       the velocity f
//   forward(V = K rows)     f and the K tangents J·V (forward mode)
//   reverse(f̄, (J·V)̄)       after a forward with tangents: z̄ and ∂/∂θ, accumulated
// A state is flattened node-major, z[i·C + c] with C = D + F channels
// ([x, y, (z), h_1 … h_F]); the Jacobian's row is the output index.
#pragma once

#include <span>
#include <string>
#include <vector>

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

  int channels() const { return dim + features; }
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
  int n = 0, K = 0;        // n: nodes of all graphs
  std::vector<int> sizes;  // of the graphs of the last forward
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
               Mat* JV) const {
    const int sizes[1] = {n};
    const T times[1] = {t};
    forward(params, z, std::span<const int>(sizes), std::span<const T>(times), V, ws, f, JV);
  }

  // G samples at once, each at its own time: sizes n_1 … n_G, z the G states
  // one after the other (Σ n_g·C values; f likewise), t[g] sample g's time.
  // V: K × (Σ n_g·C) directions of the whole stack; as the stack's Jacobian is
  // block diagonal, row k of J·V restricted to sample g is J_g V_g. Each
  // sample's results are those forward() gives it alone, to rounding (the
  // products over the stacked rows may round differently from one sample's).
  void forward(const T* params, const T* z, std::span<const int> sizes, std::span<const T> t, const Mat* V,
               FieldWorkspace<T>& ws, T* f, Mat* JV) const;

  // Reverse of the last forward on `ws` (one sample or G). fbar: n·C (or
  // null), JVbar: K×(n·C) (or null), n the nodes of all samples. zbar: n·C
  // out (overwritten). grad: accumulated, summed over the samples.
  void reverse(const T* params, FieldWorkspace<T>& ws, const T* fbar, const Mat* JVbar, T* zbar, T* grad) const;

  // The network's weights prepared once for every call on `ws` until unpin:
  // `params` must not change meanwhile (one ODE solve). EgnnNetwork::pin.
  void pin(const T* params, FieldWorkspace<T>& ws) const { net_.pin(params, ws.net); }
  static void unpin(FieldWorkspace<T>& ws) { EgnnNetwork<T>::unpin(ws.net); }
  static bool pinned(const FieldWorkspace<T>& ws, const T* params) {
    return ws.net.pinned && ws.net.wt_params == params;
  }

  // Multiply-adds of one evaluation with K tangents, and of its reverse pass.
  double forward_madds(int n, int K) const;
  double reverse_madds(int n, int K) const;

 private:
  FieldConfig cfg_;
  EgnnNetwork<T> net_;
  std::size_t param_count_;
};

extern template class VectorField<float>;
extern template class VectorField<double>;

}  // namespace enf
