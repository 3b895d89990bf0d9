// Independent work items over OpenMP threads. Exceptions cannot cross an
// OpenMP region: the first one is kept and rethrown (as std::runtime_error
// with its message) once every item has run.
#pragma once

#include <omp.h>

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

}  // namespace enf
