// "12/100 molecules, 3.1 s, ETA 22 s" on one stderr line, at most a few
// times a second: the progress of enf score and enf sample on molecules.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

namespace enf::cli {

using Clock = std::chrono::steady_clock;
inline double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

class Progress {
 public:
  // already: items done before this run (a resumed job's), counted in the
  // done/total but not in the rate the ETA extrapolates.
  Progress(const char* what, int total, int already = 0)
      : what_(what), total_(total), already_(already), start_(Clock::now()), last_(start_) {}
  void operator()(int done) {
    const auto now = Clock::now();
    if (done < total_ && std::chrono::duration<double>(now - last_).count() < 0.5) return;
    last_ = now;
    const double el = since(start_);
    width_ = std::fprintf(stderr, "\r%s %d/%d, %.1f s elapsed, ETA %.0f s   ", what_, done, total_, el,
                          done > already_ ? el / (done - already_) * (total_ - done) : 0.0);
    if (done == total_) std::fputc('\n', stderr);
  }

  // A line of its own (an estimate, a warning) over the progress line, which
  // the next update redraws below it.
  void note(const std::string& text) {
    std::fprintf(stderr, "\r%-*s\n", std::max(0, width_ - 1), text.c_str());
    width_ = 0;
  }

 private:
  const char* what_;
  int width_ = 0;
  int total_, already_;
  Clock::time_point start_, last_;
};

}  // namespace enf::cli
