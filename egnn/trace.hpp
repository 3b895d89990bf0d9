// The exact trace of the field's Jacobian and its vector-Jacobian product,
// built on forward-mode tangents: tr J = Σ_k e_kᵀ J e_k over every input
// direction, taken in chunks of at most 32 directions (trace_chunk_limit) so
// that memory stays bounded for large molecules (each chunk re-evaluates the
// value, a 1/16 to 1/32 overhead). Works with any field type exposing
// VectorField's interface.
#pragma once

#include <algorithm>
#include <vector>

#include "egnn/dual_ops.hpp"

namespace enf {

// At most 32 directions a chunk, and at most 16 once a chunk's tangent rows
// (directions × the n(n − 1) edges) pass 2560: measured with enf bench score
// (exact trace, random E-NF models, node-local first layer, 2 threads), LJ13
// (156 edges) took 0.71 s with 16, 0.84 s with 32, 0.75 s with 8; DW4 (12
// edges) the same from 8 to 32; LJ55 (2970) and alanine's conformer model
// (156) within 2 % from 8 to 32. Larger chunks' matrices outgrow the caches.
inline int trace_chunk_limit(int n) { return long(n) * (n - 1) * 32 > 2560 ? 16 : 32; }

// Chunks of equal size (the last one padded with zero directions, which add
// nothing): every chunk then has the same shape, so the workspace's matrices
// keep their size from chunk to chunk and from call to call instead of being
// reallocated for a short last chunk. dimz = n·C directions on n nodes.
inline int trace_chunk_size(int dimz, int n) {
  const int limit = trace_chunk_limit(n);
  const int chunks = (dimz + limit - 1) / limit;
  return (dimz + chunks - 1) / chunks;
}

template <class T>
struct TraceScratch {
  detail::Mat<T> V, JV, JVbar;
  std::vector<T> zbar;
  std::vector<int> nodes;  // the node of each direction of a chunk
};

// f(z, t) into f and returns tr(∂f/∂z). z, f: n·C values.
template <class Field, class T = typename Field::Scalar>
T exact_trace(const Field& field, const T* params, const T* z, int n, T t, typename Field::Workspace& ws,
              TraceScratch<T>& s, T* f) {
  const int C = field.channels(), dimz = n * C, K = trace_chunk_size(dimz, n);
  T tr = 0;
  s.nodes.resize(K);
  for (int k0 = 0; k0 < dimz; k0 += K) {
    const int real = std::min(K, dimz - k0);
    s.V.setZero(K, dimz);
    for (int k = 0; k < real; ++k) s.V(k, k0 + k) = T(1);
    // Direction k0 + k is node (k0 + k) / C's: a field that can use it
    // computes its first layer's tangents on that node's edges only. The
    // padding directions are zero: any node will do.
    if constexpr (requires { field.forward_node_tangents(params, z, n, t, s.V, s.nodes.data(), ws, f, s.JV); }) {
      for (int k = 0; k < K; ++k) s.nodes[k] = std::min(k0 + k, dimz - 1) / C;
      field.forward_node_tangents(params, z, n, t, s.V, s.nodes.data(), ws, f, s.JV);
    } else {
      field.forward(params, z, n, t, &s.V, ws, f, &s.JV);
    }
    for (int k = 0; k < real; ++k) tr += s.JV(k, k0 + k);
  }
  return tr;
}

// z̄ = f̄ᵀ ∂f/∂z + a_ℓ ∂tr(∂f/∂z)/∂z (f̄ may be null), overwriting zbar, and the
// same cotangent's parameter gradient accumulated into grad. Also returns f.
template <class Field, class T = typename Field::Scalar>
void exact_trace_vjp(const Field& field, const T* params, const T* z, int n, T t, typename Field::Workspace& ws,
                     TraceScratch<T>& s, const T* fbar, T a_l, T* f, T* zbar, T* grad) {
  const int dimz = n * field.channels(), K = trace_chunk_size(dimz, n);
  std::fill_n(zbar, dimz, T(0));
  s.zbar.resize(dimz);
  for (int k0 = 0; k0 < dimz; k0 += K) {
    const int real = std::min(K, dimz - k0);
    s.V.setZero(K, dimz);
    s.JVbar.setZero(K, dimz);
    for (int k = 0; k < real; ++k) {
      s.V(k, k0 + k) = T(1);
      s.JVbar(k, k0 + k) = a_l;
    }
    field.forward(params, z, n, t, &s.V, ws, f, &s.JV);
    field.reverse(params, ws, k0 == 0 ? fbar : nullptr, &s.JVbar, s.zbar.data(), grad);
    for (int k = 0; k < dimz; ++k) zbar[k] += s.zbar[k];
  }
}

}  // namespace enf
