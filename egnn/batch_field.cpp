#include "egnn/batch_field.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace enf {

namespace {
// Gradients are summed per fixed group of samples, then over groups in order:
// the result is bit-for-bit the same for any thread count.
constexpr int kMaxGroups = 16;
}  // namespace

template <class T>
BatchField<T>::BatchField(const VectorField<T>& field, int threads) : field_(field) {
  threads_ = threads > 0 ? threads : omp_get_max_threads();
  ws_.resize(threads_);
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
typename BatchField<T>::Compact BatchField<T>::compact(const BatchInput<T>& in, int b) const {
  const int C = field_.config().channels();
  Compact c;
  for (int i = 0; i < in.nodes; ++i)
    if (!in.mask || in.mask[b * in.nodes + i] != T(0)) c.nodes.push_back(i);
  c.z.resize(c.nodes.size() * C);
  for (std::size_t k = 0; k < c.nodes.size(); ++k)
    std::copy_n(in.z + (std::size_t(b) * in.nodes + c.nodes[k]) * C, C, c.z.data() + k * C);
  return c;
}

template <class T>
template <class Fn>
void BatchField<T>::for_each_sample(int B, Fn fn) {
  std::string error;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_)
  for (int b = 0; b < B; ++b) {
    try {
      fn(b, ws_[omp_get_thread_num()]);
    } catch (const std::exception& e) {
#pragma omp critical
      if (error.empty()) error = e.what();
    }
  }
  if (!error.empty()) throw std::runtime_error(error);
}

template <class T>
template <class Fn>
void BatchField<T>::for_each_sample_grad(int B, T* grad, Fn fn) {
  const int groups = std::min(B, kMaxGroups);
  std::string error;
  if (int(group_grad_.size()) < groups) group_grad_.resize(groups);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_)
  for (int g = 0; g < groups; ++g) {
    try {
      auto& acc = group_grad_[g];
      acc.assign(field_.parameter_count(), T(0));
      const int lo = int(std::int64_t(B) * g / groups), hi = int(std::int64_t(B) * (g + 1) / groups);
      for (int b = lo; b < hi; ++b) fn(b, ws_[omp_get_thread_num()], acc.data());
    } catch (const std::exception& e) {
#pragma omp critical
      if (error.empty()) error = e.what();
    }
  }
  if (!error.empty()) throw std::runtime_error(error);
  for (int g = 0; g < groups; ++g)
    for (std::size_t i = 0; i < field_.parameter_count(); ++i) grad[i] += group_grad_[g][i];
}

template <class T>
void BatchField<T>::velocity(const T* params, const BatchInput<T>& in, T* f) {
  check(in);
  const int C = field_.config().channels(), n = in.nodes;
  std::fill_n(f, std::size_t(in.batch) * n * C, T(0));
  for_each_sample(in.batch, [&](int b, FieldWorkspace<T>& ws) {
    Compact c = compact(in, b);
    std::vector<T> out(c.z.size());
    field_.forward(params, c.z.data(), int(c.nodes.size()), in.t[in.t.size() == 1 ? 0 : b], nullptr, ws, out.data(),
                   nullptr);
    for (std::size_t k = 0; k < c.nodes.size(); ++k)
      std::copy_n(out.data() + k * C, C, f + (std::size_t(b) * n + c.nodes[k]) * C);
  });
}

template <class T>
void BatchField<T>::jvp(const T* params, const BatchInput<T>& in, int K, const T* V, T* f, T* JV) {
  check(in);
  const int C = field_.config().channels(), n = in.nodes;
  const std::size_t S = std::size_t(n) * C;
  std::fill_n(f, in.batch * S, T(0));
  std::fill_n(JV, in.batch * K * S, T(0));
  for_each_sample(in.batch, [&](int b, FieldWorkspace<T>& ws) {
    Compact c = compact(in, b);
    const int nr = int(c.nodes.size());
    Mat Vc(K, nr * C), JVc;
    for (int k = 0; k < K; ++k)
      for (int i = 0; i < nr; ++i)
        for (int ch = 0; ch < C; ++ch) Vc(k, i * C + ch) = V[(std::size_t(b) * K + k) * S + c.nodes[i] * C + ch];
    std::vector<T> out(c.z.size());
    field_.forward(params, c.z.data(), nr, in.t[in.t.size() == 1 ? 0 : b], &Vc, ws, out.data(), &JVc);
    for (int i = 0; i < nr; ++i)
      for (int ch = 0; ch < C; ++ch) {
        f[b * S + c.nodes[i] * C + ch] = out[i * C + ch];
        for (int k = 0; k < K; ++k) JV[(std::size_t(b) * K + k) * S + c.nodes[i] * C + ch] = JVc(k, i * C + ch);
      }
  });
}

template <class T>
void BatchField<T>::vjp(const T* params, const BatchInput<T>& in, int K, const T* V, const T* fbar, const T* JVbar,
                        T* zbar, T* grad) {
  check(in);
  const int C = field_.config().channels(), n = in.nodes;
  const std::size_t S = std::size_t(n) * C;
    std::fill_n(zbar, in.batch * S, T(0));
  for_each_sample_grad(in.batch, grad, [&](int b, FieldWorkspace<T>& ws, T* g) {
    Compact c = compact(in, b);
    const int nr = int(c.nodes.size());
    Mat Vc(K, nr * C), JVc, JVbarc(K, nr * C);
    std::vector<T> out(c.z.size()), fb(c.z.size()), zb(c.z.size());
    for (int i = 0; i < nr; ++i)
      for (int ch = 0; ch < C; ++ch) {
        const std::size_t src = c.nodes[i] * C + ch;
        fb[i * C + ch] = fbar ? fbar[b * S + src] : T(0);
        for (int k = 0; k < K; ++k) {
          Vc(k, i * C + ch) = V[(std::size_t(b) * K + k) * S + src];
          JVbarc(k, i * C + ch) = JVbar ? JVbar[(std::size_t(b) * K + k) * S + src] : T(0);
        }
      }
    field_.forward(params, c.z.data(), nr, in.t[in.t.size() == 1 ? 0 : b], K ? &Vc : nullptr, ws, out.data(),
                   K ? &JVc : nullptr);
    field_.reverse(params, ws, fb.data(), K ? &JVbarc : nullptr, zb.data(), g);
    for (int i = 0; i < nr; ++i)
      for (int ch = 0; ch < C; ++ch) zbar[b * S + c.nodes[i] * C + ch] = zb[i * C + ch];
  });
}

template <class T>
void BatchField<T>::divergence(const T* params, const BatchInput<T>& in, T* f, T* div) {
  check(in);
  const int C = field_.config().channels(), n = in.nodes;
  const std::size_t S = std::size_t(n) * C;
  std::fill_n(f, in.batch * S, T(0));
  for_each_sample(in.batch, [&](int b, FieldWorkspace<T>& ws) {
    Compact c = compact(in, b);
    const int nr = int(c.nodes.size()), dimz = nr * C;
    std::vector<T> out(c.z.size());
    Mat Vc, JVc;
    T tr = 0;
    for (int k0 = 0; k0 < dimz; k0 += kTraceChunk) {
      const int K = std::min(kTraceChunk, dimz - k0);
      Vc.setZero(K, dimz);
      for (int k = 0; k < K; ++k) Vc(k, k0 + k) = T(1);
      field_.forward(params, c.z.data(), nr, in.t[in.t.size() == 1 ? 0 : b], &Vc, ws, out.data(), &JVc);
      for (int k = 0; k < K; ++k) tr += JVc(k, k0 + k);
    }
    div[b] = tr;
    for (int i = 0; i < nr; ++i) std::copy_n(out.data() + i * C, C, f + b * S + c.nodes[i] * C);
  });
}

template <class T>
void BatchField<T>::hutchinson(const T* params, const BatchInput<T>& in, const T* eps, T* f, T* est) {
  check(in);
  const int C = field_.config().channels(), n = in.nodes;
  const std::size_t S = std::size_t(n) * C;
  std::fill_n(f, in.batch * S, T(0));
  for_each_sample(in.batch, [&](int b, FieldWorkspace<T>& ws) {
    Compact c = compact(in, b);
    const int nr = int(c.nodes.size());
    Mat Vc(1, nr * C), JVc;
    for (int i = 0; i < nr; ++i)
      for (int ch = 0; ch < C; ++ch) Vc(0, i * C + ch) = eps[b * S + c.nodes[i] * C + ch];
    std::vector<T> out(c.z.size());
    field_.forward(params, c.z.data(), nr, in.t[in.t.size() == 1 ? 0 : b], &Vc, ws, out.data(), &JVc);
    est[b] = Vc.row(0).dot(JVc.row(0));
    for (int i = 0; i < nr; ++i) std::copy_n(out.data() + i * C, C, f + b * S + c.nodes[i] * C);
  });
}

template <class T>
void BatchField<T>::adjoint_vjp(const T* params, const BatchInput<T>& in, const T* eps, const T* a, const T* a_l,
                                T* zbar, T* grad) {
  check(in);
  const int C = field_.config().channels(), n = in.nodes;
  const std::size_t S = std::size_t(n) * C;
    std::fill_n(zbar, in.batch * S, T(0));
  for_each_sample_grad(in.batch, grad, [&](int b, FieldWorkspace<T>& ws, T* g) {
    Compact c = compact(in, b);
    const int nr = int(c.nodes.size()), dimz = nr * C;
    const T t = in.t[in.t.size() == 1 ? 0 : b];
    std::vector<T> out(dimz), ab(dimz), zb(dimz), acc(dimz, T(0));
    for (int i = 0; i < nr; ++i)
      for (int ch = 0; ch < C; ++ch) ab[i * C + ch] = a[b * S + c.nodes[i] * C + ch];
    Mat Vc, JVc, JVbar;
    if (eps) {
      // εᵀJε: J·ε's cotangent is a_ℓ ε.
      Vc.resize(1, dimz);
      for (int i = 0; i < nr; ++i)
        for (int ch = 0; ch < C; ++ch) Vc(0, i * C + ch) = eps[b * S + c.nodes[i] * C + ch];
      JVbar = Vc * a_l[b];
      field_.forward(params, c.z.data(), nr, t, &Vc, ws, out.data(), &JVc);
      field_.reverse(params, ws, ab.data(), &JVbar, acc.data(), g);
    } else {
      // tr J = Σ_k e_kᵀ J e_k, in chunks of directions; f̄ enters once.
      for (int k0 = 0; k0 < dimz; k0 += kTraceChunk) {
        const int K = std::min(kTraceChunk, dimz - k0);
        Vc.setZero(K, dimz);
        JVbar.setZero(K, dimz);
        for (int k = 0; k < K; ++k) {
          Vc(k, k0 + k) = T(1);
          JVbar(k, k0 + k) = a_l[b];
        }
        field_.forward(params, c.z.data(), nr, t, &Vc, ws, out.data(), &JVc);
        field_.reverse(params, ws, k0 == 0 ? ab.data() : nullptr, &JVbar, zb.data(), g);
        for (int k = 0; k < dimz; ++k) acc[k] += zb[k];
      }
    }
    for (int i = 0; i < nr; ++i)
      for (int ch = 0; ch < C; ++ch) zbar[b * S + c.nodes[i] * C + ch] = acc[i * C + ch];
  });
}

template class BatchField<float>;
template class BatchField<double>;

}  // namespace enf
