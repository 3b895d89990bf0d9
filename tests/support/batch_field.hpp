// The plain reference path of the vector field (as OpenMM's reference
// platform): production evaluates sample by sample (VectorField, through
// engine/sample_batch.hpp), and the tests check the field's derivatives,
// symmetries and batching against this. Batched evaluation over independent
// samples, in parallel over threads, with node masks for molecules of different sizes
// padded to a common n. Each sample is evaluated on its real nodes only, so a
// padded molecule gives exactly what it gives unpadded, and a sample's result
// never depends on which others share its batch or on the thread count.
//
// Layouts (row-major, node-major states): z [B, n, C]; mask [B, n] of 0/1 or
// null (all nodes real); t one value or one per sample; V [B, K, n, C];
// outputs use the same layouts and are exactly 0 on padded nodes.
#pragma once

#include <span>
#include <vector>

#include "egnn/trace.hpp"
#include "egnn/vector_field.hpp"

namespace enf {

template <class T>
struct BatchInput {
  int batch = 0;                 // B
  int nodes = 0;                 // n (padded size)
  const T* z = nullptr;          // [B, n, C]
  const T* mask = nullptr;       // [B, n] or null
  std::span<const T> t;          // size 1 (shared) or B
};

template <class T>
class BatchField {
 public:
  using Mat = detail::Mat<T>;

  // threads <= 0: use every available core.
  BatchField(const VectorField<T>& field, int threads = 0);

  int threads() const { return threads_; }
  const VectorField<T>& field() const { return field_; }

  // f(z, t).
  void velocity(const T* params, const BatchInput<T>& in, T* f);
  // f and J·V for K directions per sample.
  void jvp(const T* params, const BatchInput<T>& in, int K, const T* V, T* f, T* JV);
  // The reverse pass of jvp: z̄ = f̄ᵀJ + Σ_k (J·V_k)̄ᵀ ∂(J·V_k)/∂z per sample, and
  // the parameter gradient summed over samples into grad (accumulated).
  void vjp(const T* params, const BatchInput<T>& in, int K, const T* V, const T* fbar, const T* JVbar, T* zbar,
           T* grad);
  // Exact divergence tr(∂f/∂z) over every real entry of the state.
  void divergence(const T* params, const BatchInput<T>& in, T* f, T* div);
  // Hutchinson estimate εᵀJε for the given ε [B, n, C] (one tangent).
  void hutchinson(const T* params, const BatchInput<T>& in, const T* eps, T* f, T* est);
  // The adjoint's vector-Jacobian product a ᵀ∂f/∂z + a_ℓ ∂(tr)/∂z, with tr the
  // Hutchinson estimate εᵀJε (eps given) or the exact trace (eps null); and
  // its parameter gradient, summed over samples into grad (accumulated).
  // a: [B, n, C], a_l: [B].
  void adjoint_vjp(const T* params, const BatchInput<T>& in, const T* eps, const T* a, const T* a_l, T* zbar,
                   T* grad);

 private:
  // Per-thread scratch, sized once per shape: nothing allocates per sample.
  struct Scratch {
    FieldWorkspace<T> ws;
    std::vector<int> nodes;                // indices of the real nodes of the current sample
    std::vector<T> z, out, fbar, zbar;  // compact per-sample vectors
    Mat V, JV, JVbar;
    TraceScratch<T> trace;
  };
  const VectorField<T>& field_;
  int threads_;
  std::vector<Scratch> scratch_;  // one per thread
  std::vector<AlignedVector<T>> group_grad_;  // aligned: see parameters.hpp

  void check(const BatchInput<T>& in) const;
  // Gathers sample b's real nodes into s.nodes and s.z; returns their number.
  int compact(const BatchInput<T>& in, int b, Scratch& s) const;
  // Copies a compact per-sample array (rows × n_real·C) into the padded layout.
  void scatter(const T* compact, int rows, int b, const Scratch& s, int nodes, T* padded) const;
  // Gathers rows × n·C padded values of sample b into a compact matrix.
  void gather(const T* padded, int rows, int b, const Scratch& s, int nodes, Mat& out) const;
  template <class Fn>
  void for_each_sample(int B, Fn fn);
  template <class Fn>
  void for_each_sample_grad(int B, T* grad, Fn fn);
};

extern template class BatchField<float>;
extern template class BatchField<double>;

}  // namespace enf
