// The program's option code (tools/): bounds shown by --help and enforced,
// the typed config.json of a run and the old all-string one read alike, the
// --config fuzzer's findings, and the interleaved benchmark timing.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "tools/bench_timing.hpp"
#include "tools/option_groups.hpp"
#include "tools/options.hpp"
#include "tools/train_options.hpp"
#include "support/train_table.hpp"

using namespace enf::cli;
namespace fs = std::filesystem;

namespace {


std::string temp_file(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / ("enf_test_cli_options_" + name);
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
  return p.string();
}

const std::string kNoRun = (fs::temp_directory_path() / "enf_test_cli_options_no_run").string();

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
  const std::string t = usage(enf::test::particle_train_table());
  for (const auto& o : enf::test::particle_train_table().options)
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

TEST_CASE("a new run's config.json types its values; the old all-string one reads the same", "[config]") {
  ParsedOptions typed(enf::test::particle_train_table(), {"--out", kNoRun, "--nf", "16", "--lr", "5e-4", "--clip", "yes", "--rtol", "1e-5"});
  const enf::RunDirectory run = open_run(typed, enf::test::particle_run_keys());
  const nlohmann::json& c = run.new_config;
  CHECK(c.at("nf") == 16);
  CHECK(c.at("nf").is_number_integer());
  CHECK(c.at("lr").is_number_float());
  CHECK(c.at("lr").get<double>() == 5e-4);
  CHECK(c.at("rtol").get<double>() == 1e-5);
  CHECK(c.at("clip") == true);
  CHECK(c.at("attention") == true);
  CHECK(c.at("seed") == 0);
  CHECK(c.at("system") == "dw4");
  CHECK(c.at("precision") == "float");
  CHECK(c.at("data") == "");  // a path stays a string
  // Read back (--config, as --resume reads config.json): the same options.
  ParsedOptions back(enf::test::particle_train_table(), {"--out", kNoRun, "--config", temp_file("typed.json", c.dump(2))});
  CHECK(open_run(back, enf::test::particle_run_keys()).new_config == c);
  CHECK(back.integer("nf") == 16);
  CHECK(back.real("lr") == 5e-4);
  CHECK(back.boolean("clip"));
  // A run directory written before the values were typed: every value a string.
  nlohmann::json old = nlohmann::json::object();
  for (const auto& [k, v] : c.items())
    old[k] = v.is_string() ? v.get<std::string>() : v.is_boolean() ? (v.get<bool>() ? "true" : "false") : v.dump();
  old["lr"] = "5e-4";
  ParsedOptions from_old(enf::test::particle_train_table(), {"--out", kNoRun, "--config", temp_file("old.json", old.dump(2))});
  CHECK(open_run(from_old, enf::test::particle_run_keys()).new_config == c);
}

TEST_CASE("--config: the fuzzer's findings are refused with a message", "[config][fuzz]") {
  for (const auto& e : fs::directory_iterator("tests/data/fuzz_regressions")) {
    if (e.path().filename().string().rfind("config_", 0) != 0) continue;
    INFO(e.path().string());
    ParsedOptions opt(enf::test::particle_train_table(), {"--out", kNoRun, "--config", e.path().string()});
    CHECK_THROWS_AS(open_run(opt, enf::test::particle_run_keys()), UsageError);
  }
  // Deeper than any regression file: arrays and objects are no option values.
  const std::string deep = "{\"nf\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  ParsedOptions opt(enf::test::particle_train_table(), {"--out", kNoRun, "--config", temp_file("deep.json", deep)});
  CHECK_THROWS_WITH(open_run(opt, enf::test::particle_run_keys()), Catch::Contains("nf: expected a number, string or boolean"));
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

TEST_CASE("the sampling group: rk4 in 5 steps by default, an adaptive method with the solver group's tolerances",
          "[options]") {
  const CommandSpec spec{"x", "s", "", with_groups({}, {{sampling_group()}, {solver_group(), {}, {{kRtol, "1e-5"}}}})};
  const auto parse = [&](const std::vector<std::string>& args) {
    const ParsedOptions opt(spec, args);
    const enf::CnfOptions scoring = parse_solver(opt);
    return std::pair{scoring, parse_sampling(opt, scoring)};
  };
  const auto [scoring, sampling] = parse({});
  CHECK(scoring.solver.method == enf::ode::Method::Dopri5);
  CHECK(sampling.solver.method == enf::ode::Method::RK4);
  CHECK(sampling.solver.fixed_step == 1.0 / 5);
  CHECK(describe_solver(sampling.solver) == "rk4 in 5 steps");
  CHECK(describe_solver(scoring.solver) == "dopri5 at rtol 1e-05, atol 1e-05");
  // The same trace and tolerances as the scoring: --sample-method dopri5 is the old single solver.
  const auto [s2, adaptive] = parse({"--sample-method", "dopri5", "--rtol", "1e-4", "--trace", "gaussian"});
  CHECK(adaptive.solver.method == enf::ode::Method::Dopri5);
  CHECK(adaptive.solver.rtol == 1e-4);
  CHECK(adaptive.solver.atol == s2.solver.atol);
  CHECK(adaptive.trace == s2.trace);
  CHECK(parse({"--sample-method", "euler", "--sample-steps", "7"}).second.solver.fixed_step == 1.0 / 7);
  CHECK_THROWS_WITH(parse({"--sample-method", "dopri5", "--sample-steps", "5"}),
                    Catch::Contains("--sample-steps applies to a fixed-step --sample-method"));
  CHECK_THROWS_WITH(parse({"--sample-method", "rk5"}), Catch::Contains("--sample-method"));
  CHECK_THROWS_WITH(parse({"--sample-steps", "0"}), Catch::Contains("must be at least 1"));
  // A command declares the rows once: rtol is the solver group's, not the sampling group's.
  for (const auto& row : sampling_group().rows) CHECK((row.name != kRtol && row.name != kAtol && row.name != kMethod));
}

TEST_CASE("--precision auto: float at rtol and atol of at least 1e-5, double below", "[options]") {
  enf::ode::SolverOptions s;
  s.rtol = s.atol = 1e-5;
  CHECK(resolve_precision("auto", s) == "float");
  s.rtol = 1e-4;
  CHECK(resolve_precision("auto", s) == "float");
  s.atol = 1e-7;  // either tolerance tighter than 1e-5: float32's rounding would show
  CHECK(resolve_precision("auto", s) == "double");
  s.atol = 1e-5;
  s.rtol = 9.99e-6;
  CHECK(resolve_precision("auto", s) == "double");
  // --rtol 1e-5 as parsed from the command line counts as 1e-5.
  s.rtol = std::stod("1e-5");
  CHECK(resolve_precision("auto", s) == "float");
  // An explicit choice is kept at any tolerance.
  s.rtol = s.atol = 1e-9;
  CHECK(resolve_precision("float", s) == "float");
  CHECK(resolve_precision("double", s) == "double");
}
