#include "egnn/vector_field.hpp"

#include <stdexcept>

namespace enf {

std::string FieldConfig::validate() const {
  if (dim < 1 || dim > 3) return "dim must be 1, 2 or 3 (got " + std::to_string(dim) + ")";
  if (features < 0) return "features must be non-negative";
  if (node_condition < 0 || node_condition > 4096) return "node_condition must be 0 to 4096";
  if (edge_condition < 0 || edge_condition > 4096) return "edge_condition must be 0 to 4096";
  return egnn().validate();
}

EgnnConfig FieldConfig::egnn() const {
  EgnnConfig e;
  e.dim = dim;
  // Particle systems: one node feature (t, or 1 without time conditioning).
  // Molecules: [h, t] or [h]. Conditional: [h, c, t] or [h, c].
  const int nf = features + node_condition;
  e.in_node_nf = nf == 0 ? 1 : nf + (condition_time ? 1 : 0);
  e.out_node_nf = e.in_node_nf;
  e.hidden = hidden;
  e.layers = layers;
  e.attention = attention;
  e.tanh = tanh;
  e.coords_range = coords_range;
  e.aggregation = aggregation;
  e.edge_attr = true;
  e.edge_features = edge_condition;
  e.prefix = "egnn.";
  return e;
}

ParameterLayout field_layout(const FieldConfig& cfg) {
  if (auto err = cfg.validate(); !err.empty()) throw std::invalid_argument("vector field config: " + err);
  ParameterLayout layout;
  register_egnn_parameters(cfg.egnn(), layout);
  return layout;
}

template <class T>
VectorField<T>::VectorField(FieldConfig cfg, const ParameterLayout& layout) : cfg_(cfg), net_(cfg.egnn(), layout), param_count_(layout.total_size()) {}

template <class T>
void VectorField<T>::set_condition(FieldWorkspace<T>& ws, int n, const T* node, const T* edge) const {
  const int Fc = cfg_.node_condition, Ec = cfg_.edge_condition;
  if (n < 2) throw std::invalid_argument("vector field condition: at least 2 nodes");
  if ((Fc > 0 && !node) || (Ec > 0 && !edge))
    throw std::invalid_argument("vector field condition: node (" + std::to_string(Fc) + " per atom) and edge (" +
                                std::to_string(Ec) + " per pair) conditioning must be given when configured");
  if (Fc > 0) ws.node_condition = detail::ConstMatMap<T>(node, n, Fc);
  if (Ec > 0) ws.edge_condition = detail::ConstMatMap<T>(edge, Eigen::Index(n) * (n - 1), Ec);
  ws.condition_n = n;
}

template <class T>
double VectorField<T>::forward_madds(int n, int K) const {
  EgnnRequest req{true, cfg_.features > 0};
  return net_.forward_madds(n, req) * (1 + K);
}

template <class T>
double VectorField<T>::forward_madds_node_tangents(int n, int K) const {
  EgnnRequest req{true, cfg_.features > 0};
  return net_.forward_madds(n, req) + K * net_.local_tangent_madds(n, req);
}

template <class T>
double VectorField<T>::reverse_madds(int n, int K) const {
  // Every matrix product of the forward pass has two in the reverse pass
  // (input cotangent and weight gradient); the elementwise work is of the same order.
  return 2 * forward_madds(n, K);
}

template <class T>
void VectorField<T>::forward(const T* params, const T* z, int n, T t, const Mat* V, FieldWorkspace<T>& ws, T* f,
                             Mat* JV) const {
  const int sizes[1] = {n};
  forward_stacked(params, z, std::span<const int>(sizes, 1), &t, V, ws, f, JV);
}

template <class T>
void VectorField<T>::forward_stacked(const T* params, const T* z, std::span<const int> sizes, const T* t,
                                     const Mat* V, FieldWorkspace<T>& ws, T* f, Mat* JV,
                                     const int* tangent_nodes, int nodes_per_row) const {
  const int D = cfg_.dim, F = cfg_.features, C = cfg_.channels(), Fc = cfg_.node_condition;
  const int K = V ? int(V->rows()) : 0, B = 1 + K, G = int(sizes.size());
  const int in_nf = net_.config().in_node_nf;
  int n = 0;  // every graph's nodes: the rows of one block
  for (int s : sizes) n += s;
  if (V && V->cols() != Eigen::Index(n) * C)
    throw std::invalid_argument("vector field: tangent directions have " + std::to_string(V->cols()) +
                                " columns, expected n·C = " + std::to_string(n * C));
  if (cfg_.conditional() && (G != 1 || ws.condition_n != n))
    throw std::invalid_argument("vector field: conditional, but the workspace has no conditioning for " +
                                std::to_string(n) + " nodes (set_condition; one molecule per call)");
  ws.n = n;
  ws.K = K;
  ws.x.resize(Eigen::Index(B) * n, D);
  ws.h0.setZero(Eigen::Index(B) * n, in_nf);
  for (int g = 0, i = 0; g < G; ++g)
    for (int end = i + sizes[g]; i < end; ++i) {
      for (int d = 0; d < D; ++d) ws.x(i, d) = z[i * C + d];
      for (int c = 0; c < F; ++c) ws.h0(i, c) = z[i * C + D + c];
      // The conditioning, like t, is in block 0 only: its tangents are zero.
      for (int c = 0; c < Fc; ++c) ws.h0(i, F + c) = ws.node_condition(i, c);
      if (F + Fc == 0)
        ws.h0(i, 0) = cfg_.condition_time ? t[g] : T(1);
      else if (cfg_.condition_time)
        ws.h0(i, F + Fc) = t[g];  // the time slot carries no tangent
    }
  for (int k = 0; k < K; ++k)
    for (int i = 0; i < n; ++i) {
      for (int d = 0; d < D; ++d) ws.x((k + 1) * n + i, d) = (*V)(k, i * C + d);
      for (int c = 0; c < F; ++c) ws.h0((k + 1) * n + i, c) = (*V)(k, i * C + D + c);
    }
  EgnnRequest req{true, F > 0};
  net_.forward(params, ws.x, ws.h0, sizes, B, req, ws.net,
               cfg_.edge_condition > 0 ? ws.edge_condition.data() : nullptr, tangent_nodes, nodes_per_row);

  // v = x_L − x_0, then each graph's centre of mass is removed (per block: it is linear).
  const Mat& xL = ws.net.xs.back();
  if (JV) JV->resize(K, Eigen::Index(n) * C);
  for (int b = 0; b < B; ++b) {
    T* out = b == 0 ? f : JV->row(b - 1).data();
    for (int g = 0, first = 0; g < G; first += sizes[g++]) {
      const int end = first + sizes[g];
      // D ≤ 3 values on the stack: every evaluation makes one per graph and
      // block, and a heap row would be a malloc each.
      T mean[3] = {0, 0, 0};
      for (int i = first; i < end; ++i)
        for (int d = 0; d < D; ++d) mean[d] += xL(b * n + i, d) - ws.x(b * n + i, d);
      for (int d = 0; d < D; ++d) mean[d] /= T(sizes[g]);
      for (int i = first; i < end; ++i) {
        for (int d = 0; d < D; ++d) out[i * C + d] = xL(b * n + i, d) - ws.x(b * n + i, d) - mean[d];
        for (int c = 0; c < F; ++c) out[i * C + D + c] = ws.net.h_out(b * n + i, c);
      }
    }
  }
}

template <class T>
void VectorField<T>::reverse(const T* params, FieldWorkspace<T>& ws, const T* fbar, const Mat* JVbar, T* zbar,
                             T* grad) const {
  const int D = cfg_.dim, F = cfg_.features, C = cfg_.channels(), n = ws.n, K = ws.K, B = 1 + K;
  const std::vector<int>& sizes = ws.net.sizes;
  if (JVbar && (JVbar->rows() != K || JVbar->cols() != Eigen::Index(n) * C))
    throw std::invalid_argument("vector field reverse: cotangent of J·V has the wrong shape");
  ws.xbar_out.setZero(Eigen::Index(B) * n, D);
  ws.hbar_out.setZero(Eigen::Index(B) * n, net_.config().out_node_nf);
  for (int b = 0; b < B; ++b) {
    const T* in = b == 0 ? fbar : (JVbar ? JVbar->row(b - 1).data() : nullptr);
    if (!in) continue;
    // Reverse of each graph's mean removal: x̄_L = f̄ − mean(f̄).
    for (std::size_t g = 0, first = 0; g < sizes.size(); first += sizes[g++]) {
      const int end = int(first) + sizes[g];
      T mean[3] = {0, 0, 0};  // D ≤ 3, on the stack (see forward_stacked)
      for (int i = int(first); i < end; ++i)
        for (int d = 0; d < D; ++d) mean[d] += in[i * C + d];
      for (int d = 0; d < D; ++d) mean[d] /= T(sizes[g]);
      for (int i = int(first); i < end; ++i) {
        for (int d = 0; d < D; ++d) ws.xbar_out(b * n + i, d) = in[i * C + d] - mean[d];
        for (int c = 0; c < F; ++c) ws.hbar_out(b * n + i, c) = in[i * C + D + c];
      }
    }
  }
  net_.reverse(params, &ws.xbar_out, F > 0 ? &ws.hbar_out : nullptr, ws.net, ws.xbar_in, ws.h0bar, grad);
  // v = x_L − x_0: the input also receives −x̄_L directly.
  for (int i = 0; i < n; ++i) {
    for (int d = 0; d < D; ++d) zbar[i * C + d] = ws.xbar_in(i, d) - ws.xbar_out(i, d);
    for (int c = 0; c < F; ++c) zbar[i * C + D + c] = ws.h0bar(i, c);
  }
}

template class VectorField<float>;
template class VectorField<double>;

}  // namespace enf
