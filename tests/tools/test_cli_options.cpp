// The program's tools code that needs no command: the interleaved benchmark
// timing of bench field.
#include <catch2/catch.hpp>
#include <string>

#include "tools/bench_timing.hpp"

using namespace enf::cli;

TEST_CASE("benchmark: the peak is timed alternately with the kernel", "[bench]") {
  std::string order;
  const InterleavedTimes t = time_interleaved([&] { order += 'k'; }, [&] { order += 'P'; }, 0.0);
  CHECK(t.peak_calls >= 5);
  CHECK(t.kernel_calls >= t.peak_calls);
  // After the warm-up (one of each), every peak call is followed by kernel calls:
  // never all the peaks first and the kernels later.
  REQUIRE(order.size() > 2);
  const std::string timed = order.substr(2);
  CHECK(timed.front() == 'P');
  CHECK(timed.find("PP") == std::string::npos);
  CHECK(timed.back() == 'k');
  CHECK(percent_of_peak(0.873) == "87%");
  CHECK(percent_of_peak(1.21) == "121% (peak disturbed)");
  CHECK(bench_median({3, 1, 2}) == 2);
}
