// What the bench commands (bench field, bench score, bench sample, bench step) share:
// the matrix-multiply peak they compare the field's rate with, the FLOPs of
// one field evaluation by what it computes, and the machine they ran on. The
// rates of the commands are comparable only if all count the same way.
#pragma once

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "egnn/trace.hpp"
#include "egnn/vector_field.hpp"
#include "tools/bench_timing.hpp"

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

// A run of seconds (a likelihood, a batch of samples, a training step) is too
// long to alternate call by call with the peak's product as bench field does
// (bench_timing.hpp); the peak is measured right before and right after the
// run instead, 5 products each, and the run's rate is taken against the
// median of its own bracket, so that a load that comes and goes falls on both.
template <class T>
class BracketedPeak {
 public:
  explicit BracketedPeak(int threads) : peak_(threads) { peak_(); }  // warm-up: page in the matrices
  struct Timed {
    double seconds, peak_gflops;
  };
  // Times run() between the two halves of its bracket.
  template <class Run>
  Timed time(Run run) {
    std::vector<double> bracket = products();
    const auto t0 = Clock::now();
    run();
    const double seconds = since(t0);
    for (double s : products()) bracket.push_back(s);
    return {seconds, peak_.gflops(bench_median(bracket))};
  }

 private:
  using Clock = std::chrono::steady_clock;
  static double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
  std::vector<double> products() {
    std::vector<double> s;
    for (int k = 0; k < 5; ++k) {
      const auto t0 = Clock::now();
      peak_();
      s.push_back(since(t0));
    }
    return s;
  }
  GemmPeak<T> peak_;
};

// The median of `repeats` runs of task(r) (which returns what it computed, a
// W), each run between two halves of a GEMM-peak bracket: the run of median
// time (the upper median, as bench_median), the peak of its bracket and its
// work. on_run(r, run) is told of each run as it ends (progress on stderr).
template <class W>
struct TimedRun {
  double seconds = 0, peak_gflops = 0;
  W work{};
};
template <class T, class Task, class OnRun>
auto median_run(int repeats, int threads, Task task, OnRun on_run) {
  using W = decltype(task(0));
  BracketedPeak<T> peak(threads);
  std::vector<TimedRun<W>> runs;
  for (int r = 0; r < repeats; ++r) {
    W work{};
    const auto timed = peak.time([&] { work = task(r); });
    runs.push_back({timed.seconds, timed.peak_gflops, work});
    on_run(r, runs.back());
  }
  std::sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) { return a.seconds < b.seconds; });
  return runs[runs.size() / 2];
}

// What one evaluation of the field computes: the velocity alone (sampling),
// the velocity with one tangent J·ε (the Hutchinson trace), or the exact
// trace's N·C unit directions.
enum class FieldWork { Velocity, Hutchinson, ExactTrace };

// FLOPs (2 per multiply-add of the layer shapes, VectorField::forward_madds)
// of one evaluation on n nodes. The exact trace runs as egnn/trace.hpp's
// exact_trace does: N·C directions in chunks of trace_chunk_size, each chunk
// one forward pass with the velocity and K node-local tangents (layer 0 on
// each direction's 2(n − 1) edges), the last chunk padded to K (its padding
// is computed, so it is counted).
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
  const int dimz = n * field.channels(), K = trace_chunk_size(dimz, n);
  return 2 * double((dimz + K - 1) / K) * field.forward_madds_node_tangents(n, K);
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

// The date and time the figures were measured, for labelling them.
inline std::string utc_now() {
  char b[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(b, sizeof b, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return b;
}

// The 1-minute load average, or -1 where unknown: on a shared machine the
// figures mean little without it.
inline double load_average() {
  double l[1];
  return getloadavg(l, 1) == 1 ? l[0] : -1;
}

}  // namespace enf::cli
