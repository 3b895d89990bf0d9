// Independent work items over OpenMP threads. Exceptions cannot cross an
// OpenMP region: the first one is kept and rethrown (as std::runtime_error
// with its message) once every item has run.
#pragma once

#include <omp.h>

#include <atomic>
#include <exception>
#include <stdexcept>
#include <string>

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

}  // namespace enf
