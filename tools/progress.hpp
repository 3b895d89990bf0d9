// "12/100 molecules, 3.1 s, ETA 22 s" on one stderr line, at most a few
// times a second: the progress of enf score and enf sample on molecules.
#pragma once

#include <chrono>
#include <cstdio>

namespace enf::cli {

using Clock = std::chrono::steady_clock;
inline double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

class Progress {
 public:
  Progress(const char* what, int total) : what_(what), total_(total), start_(Clock::now()), last_(start_) {}
  void operator()(int done) {
    const auto now = Clock::now();
    if (done < total_ && std::chrono::duration<double>(now - last_).count() < 0.5) return;
    last_ = now;
    const double el = since(start_);
    std::fprintf(stderr, "\r%s %d/%d, %.1f s elapsed, ETA %.0f s   ", what_, done, total_, el,
                 done > 0 ? el / done * (total_ - done) : 0.0);
    if (done == total_) std::fputc('\n', stderr);
  }

 private:
  const char* what_;
  int total_;
  Clock::time_point start_, last_;
};

}  // namespace enf::cli
