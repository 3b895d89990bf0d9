// BatchField (batch_field.hpp): the plain reference path of the field.
#include "support/batch_field.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "egnn/parallel.hpp"

namespace enf {

template <class T>
BatchField<T>::BatchField(const VectorField<T>& field, int threads) : field_(field) {
  threads_ = threads > 0 ? threads : omp_get_max_threads();
  scratch_.resize(threads_);
}

template <class T>
void BatchField<T>::check(const BatchInput<T>& in) const {
  const int C = field_.config().channels();
  if (in.batch < 1) throw std::invalid_argument("batch is empty");
  if (in.nodes < 2) throw std::invalid_argument("samples have " + std::to_string(in.nodes) + " nodes; at least 2 are needed");
  if (!in.z) throw std::invalid_argument("no input state given");
  if (in.t.size() != 1 && in.t.size() != std::size_t(in.batch))
    throw std::invalid_argument("t has " + std::to_string(in.t.size()) + " values; expected 1 or the batch size " +
                                std::to_string(in.batch));
  for (T t : in.t)
    if (!std::isfinite(t)) throw std::invalid_argument("t is not finite");
  for (int b = 0; b < in.batch; ++b) {
    int real = 0;
    for (int i = 0; i < in.nodes; ++i) {
      const T m = in.mask ? in.mask[b * in.nodes + i] : T(1);
      if (m != T(0) && m != T(1))
        throw std::invalid_argument("sample " + std::to_string(b) + ", node " + std::to_string(i) +
                                    ": mask value must be 0 or 1");
      if (m == T(0)) continue;
      ++real;
      for (int c = 0; c < C; ++c) {
        const T v = in.z[(std::size_t(b) * in.nodes + i) * C + c];
        if (!std::isfinite(v))
          throw std::invalid_argument("sample " + std::to_string(b) + ", node " + std::to_string(i) + ", channel " +
                                      std::to_string(c) + ": input is not finite (" + std::to_string(double(v)) +
                                      ")");
      }
    }
    if (real < 2)
      throw std::invalid_argument("sample " + std::to_string(b) + ": the mask leaves " + std::to_string(real) +
                                  " node(s); at least 2 are needed");
  }
}

template <class T>
int BatchField<T>::compact(const BatchInput<T>& in, int b, Scratch& s) const {
  const int C = field_.config().channels();
  s.nodes.clear();
  for (int i = 0; i < in.nodes; ++i)
    if (!in.mask || in.mask[b * in.nodes + i] != T(0)) s.nodes.push_back(i);
  const int nr = int(s.nodes.size());
  s.z.resize(std::size_t(nr) * C);
  for (int k = 0; k < nr; ++k) std::copy_n(in.z + (std::size_t(b) * in.nodes + s.nodes[k]) * C, C, s.z.data() + k * C);
  return nr;
}

template <class T>
void BatchField<T>::scatter(const T* compact, int rows, int b, const Scratch& s, int nodes, T* padded) const {
  const int C = field_.config().channels(), nr = int(s.nodes.size());
  const std::size_t S = std::size_t(nodes) * C;
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < nr; ++k)
      std::copy_n(compact + (std::size_t(r) * nr + k) * C, C, padded + (std::size_t(b) * rows + r) * S + s.nodes[k] * C);
}

template <class T>
void BatchField<T>::gather(const T* padded, int rows, int b, const Scratch& s, int nodes, Mat& out) const {
  const int C = field_.config().channels(), nr = int(s.nodes.size());
  const std::size_t S = std::size_t(nodes) * C;
  out.resize(rows, nr * C);
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < nr; ++k)
      std::copy_n(padded + (std::size_t(b) * rows + r) * S + s.nodes[k] * C, C, out.row(r).data() + k * C);
}

template <class T>
template <class Fn>
void BatchField<T>::for_each_sample(int B, Fn fn) {
  parallel_for(B, threads_, [&](int b, int thread) { fn(b, scratch_[thread]); });
}

// The same bits for any thread count: min(B, 16) contiguous groups of
// samples, each summed in order into its own buffer, added in group order.
template <class T>
template <class Fn>
void BatchField<T>::for_each_sample_grad(int B, T* grad, Fn fn) {
  constexpr int kMaxGroups = 16;
  const std::size_t P = field_.parameter_count();
  const int groups = std::min(B, kMaxGroups);
  if (int(group_grad_.size()) < groups) group_grad_.resize(groups);
  parallel_for(groups, threads_, [&](int g, int thread) {
    auto& acc = group_grad_[g];
    acc.assign(P, T(0));
    const int lo = int(std::int64_t(B) * g / groups), hi = int(std::int64_t(B) * (g + 1) / groups);
    for (int b = lo; b < hi; ++b) fn(b, scratch_[thread], acc.data());
  });
  for (int g = 0; g < groups; ++g)
    for (std::size_t i = 0; i < P; ++i) grad[i] += group_grad_[g][i];
}

namespace {
template <class T>
T time_of(const BatchInput<T>& in, int b) {
  return in.t[in.t.size() == 1 ? 0 : b];
}
}  // namespace

template <class T>
void BatchField<T>::velocity(const T* params, const BatchInput<T>& in, T* f) {
  check(in);
  const std::size_t S = std::size_t(in.nodes) * field_.config().channels();
  std::fill_n(f, in.batch * S, T(0));
  for_each_sample(in.batch, [&](int b, Scratch& s) {
    const int nr = compact(in, b, s);
    s.out.resize(s.z.size());
    field_.forward(params, s.z.data(), nr, time_of(in, b), nullptr, s.ws, s.out.data(), nullptr);
    scatter(s.out.data(), 1, b, s, in.nodes, f);
  });
}

template <class T>
void BatchField<T>::jvp(const T* params, const BatchInput<T>& in, int K, const T* V, T* f, T* JV) {
  check(in);
  if (K < 1) throw std::invalid_argument("jvp needs at least one tangent direction");
  const std::size_t S = std::size_t(in.nodes) * field_.config().channels();
  std::fill_n(f, in.batch * S, T(0));
  std::fill_n(JV, in.batch * K * S, T(0));
  for_each_sample(in.batch, [&](int b, Scratch& s) {
    const int nr = compact(in, b, s);
    gather(V, K, b, s, in.nodes, s.V);
    s.out.resize(s.z.size());
    field_.forward(params, s.z.data(), nr, time_of(in, b), &s.V, s.ws, s.out.data(), &s.JV);
    scatter(s.out.data(), 1, b, s, in.nodes, f);
    scatter(s.JV.data(), K, b, s, in.nodes, JV);
  });
}

template <class T>
void BatchField<T>::vjp(const T* params, const BatchInput<T>& in, int K, const T* V, const T* fbar, const T* JVbar,
                        T* zbar, T* grad) {
  check(in);
  const std::size_t S = std::size_t(in.nodes) * field_.config().channels();
  std::fill_n(zbar, in.batch * S, T(0));
  for_each_sample_grad(in.batch, grad, [&](int b, Scratch& s, T* g) {
    const int nr = compact(in, b, s);
    s.out.resize(s.z.size());
    s.zbar.resize(s.z.size());
    s.fbar.assign(s.z.size(), T(0));
    if (fbar) {
      gather(fbar, 1, b, s, in.nodes, s.JVbar);
      std::copy_n(s.JVbar.data(), s.z.size(), s.fbar.data());
    }
    if (K > 0) {
      gather(V, K, b, s, in.nodes, s.V);
      if (JVbar)
        gather(JVbar, K, b, s, in.nodes, s.JVbar);
      else
        s.JVbar.setZero(K, s.z.size());
    }
    field_.forward(params, s.z.data(), nr, time_of(in, b), K ? &s.V : nullptr, s.ws, s.out.data(), K ? &s.JV : nullptr);
    field_.reverse(params, s.ws, s.fbar.data(), K ? &s.JVbar : nullptr, s.zbar.data(), g);
    scatter(s.zbar.data(), 1, b, s, in.nodes, zbar);
  });
}

template <class T>
void BatchField<T>::divergence(const T* params, const BatchInput<T>& in, T* f, T* div) {
  check(in);
  const std::size_t S = std::size_t(in.nodes) * field_.config().channels();
  std::fill_n(f, in.batch * S, T(0));
  for_each_sample(in.batch, [&](int b, Scratch& s) {
    const int nr = compact(in, b, s);
    s.out.resize(s.z.size());
    const T tr = exact_trace(field_, params, s.z.data(), nr, time_of(in, b), s.ws, s.trace, s.out.data());
    div[b] = tr;
    scatter(s.out.data(), 1, b, s, in.nodes, f);
  });
}

template <class T>
void BatchField<T>::hutchinson(const T* params, const BatchInput<T>& in, const T* eps, T* f, T* est) {
  check(in);
  const std::size_t S = std::size_t(in.nodes) * field_.config().channels();
  std::fill_n(f, in.batch * S, T(0));
  for_each_sample(in.batch, [&](int b, Scratch& s) {
    const int nr = compact(in, b, s);
    gather(eps, 1, b, s, in.nodes, s.V);
    s.out.resize(s.z.size());
    field_.forward(params, s.z.data(), nr, time_of(in, b), &s.V, s.ws, s.out.data(), &s.JV);
    est[b] = s.V.row(0).dot(s.JV.row(0));
    scatter(s.out.data(), 1, b, s, in.nodes, f);
  });
}

template <class T>
void BatchField<T>::adjoint_vjp(const T* params, const BatchInput<T>& in, const T* eps, const T* a, const T* a_l,
                                T* zbar, T* grad) {
  check(in);
  const std::size_t S = std::size_t(in.nodes) * field_.config().channels();
  std::fill_n(zbar, in.batch * S, T(0));
  for_each_sample_grad(in.batch, grad, [&](int b, Scratch& s, T* g) {
    const int nr = compact(in, b, s), dimz = int(s.z.size());
    const T t = time_of(in, b);
    s.out.resize(dimz);
    s.zbar.resize(dimz);
    gather(a, 1, b, s, in.nodes, s.JVbar);
    s.fbar.assign(s.JVbar.data(), s.JVbar.data() + dimz);
    if (eps) {
      // εᵀJε: the cotangent of J·ε is a_ℓ ε.
      gather(eps, 1, b, s, in.nodes, s.V);
      s.JVbar = s.V * a_l[b];
      field_.forward(params, s.z.data(), nr, t, &s.V, s.ws, s.out.data(), &s.JV);
      field_.reverse(params, s.ws, s.fbar.data(), &s.JVbar, s.zbar.data(), g);
    } else {
      exact_trace_vjp(field_, params, s.z.data(), nr, t, s.ws, s.trace, s.fbar.data(), a_l[b], s.out.data(),
                      s.zbar.data(), g);
    }
    scatter(s.zbar.data(), 1, b, s, in.nodes, zbar);
  });
}

template class BatchField<float>;
template class BatchField<double>;

}  // namespace enf
