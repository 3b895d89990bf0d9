// Timing a kernel against the machine's matrix-multiply peak fairly (issue
// 18: "121 % of GEMM peak" on a loaded machine). A peak measured once before
// the kernels sees other conditions (another build starting or ending, the
// clock boosting or throttling) than the kernels timed seconds later; the
// ratio of the two is then meaningless. Here peak and kernel calls alternate
// within one measurement and each gets the median of its own calls, so a
// disturbance falls on both alike. A kernel still above the peak says the
// peak measurement was disturbed, and percent_of_peak says so.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace enf::cli {

// Median seconds per call of the kernel and of the peak's product.
struct InterleavedTimes {
  double kernel = 0, peak = 0;
  int kernel_calls = 0, peak_calls = 0;
};

// The median of v (the upper one of an even count); 0 for none.
inline double bench_median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// Alternates one call of `peak` with a block of `kernel` calls (as many as
// take about as long as one peak call, so both get similar shares of the
// time and the kernel's first call after the product, with the caches
// cleared by it, is not most of its samples), for at least `min_time`
// seconds and 5 rounds; one warm-up call of each sizes the workspaces.
template <class Kernel, class Peak>
InterleavedTimes time_interleaved(Kernel kernel, Peak peak, double min_time) {
  using Clock = std::chrono::steady_clock;
  auto timed = [](auto& fn) {
    const auto t0 = Clock::now();
    fn();
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  const double peak_once = timed(peak), kernel_once = std::max(timed(kernel), 1e-9);
  const int block = std::clamp(int(peak_once / kernel_once), 1, 1000);
  std::vector<double> k, p;
  const auto start = Clock::now();
  while (p.size() < 5 || std::chrono::duration<double>(Clock::now() - start).count() < min_time) {
    p.push_back(timed(peak));
    for (int i = 0; i < block; ++i) k.push_back(timed(kernel));
  }
  return {bench_median(k), bench_median(p), int(k.size()), int(p.size())};
}

// "87%", below 10 % two digits ("2.2%", "0.27%": a tiny step on a loaded
// machine is not "0%"), or above 100 % "121% (peak disturbed)": a field
// kernel does not outrun a large matrix product on the same threads, so such
// a ratio says the peak's measurement was slowed (a loaded machine), not the
// kernel fast.
inline std::string percent_of_peak(double fraction) {
  char b[64];
  const double p = 100 * fraction;
  std::snprintf(b, sizeof b, p > 100 ? "%.0f%% (peak disturbed)" : p >= 10 ? "%.0f%%" : "%.2g%%", p);
  return b;
}

}  // namespace enf::cli
