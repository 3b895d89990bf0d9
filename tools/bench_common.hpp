// What the bench commands (bench field, bench score, bench sample) share:
// the matrix-multiply peak they compare the field's rate with, the FLOPs of
// one field evaluation by what it computes, and the machine they ran on. The
// rates of the commands are comparable only if all count the same way.
#pragma once

#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "egnn/trace.hpp"
#include "egnn/vector_field.hpp"

namespace enf::cli {

// The matrix-multiply peak's work: one 384³ product per thread, all threads
// at once (each thread its own product: no synchronisation inside the
// product, so this is the rate the threads can reach on dense work).
template <class T>
class GemmPeak {
 public:
  explicit GemmPeak(int threads) : threads_(threads), A_(threads), B_(threads), C_(threads) {
    for (int i = 0; i < threads; ++i) {
      A_[i] = detail::Mat<T>::Random(N, N);
      B_[i] = detail::Mat<T>::Random(N, N);
      C_[i] = detail::Mat<T>::Zero(N, N);
    }
  }
  void operator()() {
#pragma omp parallel for num_threads(threads_) schedule(static, 1)
    for (int i = 0; i < threads_; ++i) C_[i].noalias() = A_[i] * B_[i];
  }
  double gflops(double seconds) const { return 2.0 * N * N * N * threads_ / seconds * 1e-9; }

 private:
  static constexpr int N = 384;
  int threads_;
  std::vector<detail::Mat<T>> A_, B_, C_;
};

// What one evaluation of the field computes: the velocity alone (sampling),
// the velocity with one tangent J·ε (the Hutchinson trace), or the exact
// trace's N·C unit directions.
enum class FieldWork { Velocity, Hutchinson, ExactTrace };

// FLOPs (2 per multiply-add of the layer shapes, VectorField::forward_madds)
// of one evaluation on n nodes. The exact trace runs as egnn/trace.hpp's
// exact_trace does: N·C directions in chunks of trace_chunk_size, each chunk
// one forward pass with the velocity and K tangents, the last chunk padded
// to K (its padding is computed, so it is counted).
template <class Field>
double evaluation_flops(const Field& field, int n, FieldWork work) {
  switch (work) {
    case FieldWork::Velocity:
      return 2 * field.forward_madds(n, 0);
    case FieldWork::Hutchinson:
      return 2 * field.forward_madds(n, 1);
    case FieldWork::ExactTrace:
      break;
  }
  const int dimz = n * field.channels(), K = trace_chunk_size(dimz);
  return 2 * double((dimz + K - 1) / K) * field.forward_madds(n, K);
}

// The CPU's model name (/proc/cpuinfo), for labelling a benchmark's figures
// with the machine they were measured on; "unknown CPU" where not readable.
inline std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      std::string name = line.substr(line.find(':') + 1);
      name.erase(0, name.find_first_not_of(" \t"));
      if (!name.empty()) return name;
    }
  return "unknown CPU";
}

// The 1-minute load average, or -1 where unknown: on a shared machine the
// figures mean little without it.
inline double load_average() {
  double l[1];
  return getloadavg(l, 1) == 1 ? l[0] : -1;
}

}  // namespace enf::cli
