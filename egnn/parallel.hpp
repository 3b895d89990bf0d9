// Independent work items over OpenMP threads. Exceptions cannot cross an
// OpenMP region: the first one is kept and rethrown (as std::runtime_error
// with its message) once every item has run.
#pragma once

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace enf {

// fn(i, thread) for i in [0, count), dynamically scheduled one item at a time.
template <class Fn>
void parallel_for(int count, int threads, Fn fn) {
  std::string error;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int i = 0; i < count; ++i) {
    try {
      fn(i, omp_get_thread_num());
    } catch (const std::exception& e) {
#pragma omp critical(enf_parallel_for_error)
      if (error.empty()) error = e.what();
    }
  }
  if (!error.empty()) throw std::runtime_error(error);
}

// Hands a finished item's result over from inside a parallel loop: fn (the
// caller's done callback) runs under one lock, so callbacks run one at a time.
// An exception must not leave an OpenMP critical region (its lock would stay
// taken): it is caught inside and rethrown outside (parallel_for keeps the
// first), and `failed` is set so that items not yet started are skipped, their
// results could not be handed over either (e.g. a full disk).
template <class Fn>
void handed_over(std::atomic<bool>& failed, Fn fn) {
  std::exception_ptr error;
#pragma omp critical(enf_handed_over)
  {
    try {
      fn();
    } catch (...) {
      error = std::current_exception();
    }
  }
  if (error) {
    failed = true;
    std::rethrow_exception(error);
  }
}

// Per-sample gradients summed bit for bit the same for any thread count: the
// B samples fall into min(B, 16) contiguous groups; each group is summed in
// sample order into a buffer of its own (P values, zeroed first) by whichever
// thread runs it, and the buffers are added to grad in group order.
// fn(b, thread, group_grad) adds sample b's gradient to group_grad. `buffers`
// is kept by the caller so repeated calls do not reallocate.
template <class Buffer, class G, class Fn>
void parallel_gradient_sum(int B, std::size_t P, int threads, std::vector<Buffer>& buffers, G* grad, Fn fn) {
  constexpr int kMaxGroups = 16;
  const int groups = std::min(B, kMaxGroups);
  if (int(buffers.size()) < groups) buffers.resize(groups);
  parallel_for(groups, threads, [&](int g, int thread) {
    auto& acc = buffers[g];
    acc.assign(P, G(0));
    const int lo = int(std::int64_t(B) * g / groups), hi = int(std::int64_t(B) * (g + 1) / groups);
    for (int b = lo; b < hi; ++b) fn(b, thread, acc.data());
  });
  for (int g = 0; g < groups; ++g)
    for (std::size_t i = 0; i < P; ++i) grad[i] += buffers[g][i];
}

}  // namespace enf
