// The program's option code (tools/): bounds shown by --help and enforced,
// and the interleaved benchmark timing.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tools/bench_timing.hpp"
#include "tools/option_groups.hpp"
#include "tools/options.hpp"
#include "tools/train_options.hpp"

using namespace enf::cli;

namespace {

const CommandSpec& train_table() {
  static const CommandSpec s = train_spec(
      "test", "", {system_option("dw4", "", {}), {"data", "FILE", "", ""}, {"val-data", "FILE", "", ""},
                   {"n-data", "N", "1000", "", "1", "10000000"}, {"val-samples", "N", "500", "", "1", "100000"}},
      {});
  return s;
}

}  // namespace

TEST_CASE("--help shows every option's bounds", "[options]") {
  const CommandSpec spec{"x", "s", "", {{"n", "N", "10", "count", "1", "1000000"}, {"k", "K", "2", "at least one", "1"},
                                        {"m", "M", "2", "a cap", "", "5"}, {"f", "", "", "a flag"}}};
  const std::string u = usage(spec);
  CHECK_THAT(u, Catch::Contains("count (1 .. 1000000) [default: 10]"));
  CHECK_THAT(u, Catch::Contains("at least one (at least 1) [default: 2]"));
  CHECK_THAT(u, Catch::Contains("a cap (at most 5) [default: 2]"));
  CHECK_THAT(u, Catch::Contains("a flag\n"));
  // And every bounded row of enf train says so (issue 17: --n-data, --val-samples...).
  const std::string t = usage(train_table());
  for (const auto& o : train_table().options)
    if (!o.min.empty() && !o.max.empty()) CHECK_THAT(t, Catch::Contains("(" + o.min + " .. " + o.max + ")"));
  CHECK_THAT(t, Catch::Contains("(1 .. 10000000)"));
}

TEST_CASE("bounds: an absurd count is a usage error; a word default is no number", "[options]") {
  const CommandSpec spec{"x", "s", "", {{"burn-in", "B", "auto", "", "0", "10000000"}}};
  CHECK_NOTHROW(ParsedOptions(spec, {}));
  CHECK_NOTHROW(ParsedOptions(spec, {"--burn-in", "10000000"}));
  CHECK_THROWS_WITH(ParsedOptions(spec, {"--burn-in", "2000000000"}), Catch::Contains("must be at most 10000000"));
  CHECK_THROWS_WITH(ParsedOptions(spec, {"--burn-in", "fast"}), Catch::Contains("expects a number"));
}

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
