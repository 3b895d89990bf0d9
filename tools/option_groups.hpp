// The option groups of the enf commands, each declared once with its
// defaults and parsed into a typed value with its validation:
//   solver   --method --rtol --atol --trace      -> CnfOptions
//   sampling --sample-method --sample-steps      -> CnfOptions (the solver group's tolerances)
//   runtime  --threads --seed --precision        -> Runtime
//   data     --data --limit                      -> DataSelection
//   polish   --polish --polish-steps             -> Polish
// A command lists the groups it uses (all of a group's rows or some of
// them) and, where its documented default or help differs from the group's,
// overrides it by name in its own table: one place per command.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datasets/force_field.hpp"
#include "datasets/systems.hpp"
#include "engine/cnf.hpp"
#include "ode/solver.hpp"
#include "tools/options.hpp"

namespace enf::cli {

// The names of the group rows, spelled once: commands override rows and
// write output keys through these.
inline constexpr char kMethod[] = "method", kRtol[] = "rtol", kAtol[] = "atol", kTrace[] = "trace";
inline constexpr char kFixedSteps[] = "fixed-steps";
inline constexpr char kSampleMethod[] = "sample-method", kSampleSteps[] = "sample-steps",
                      kSamplePrecision[] = "sample-precision";
inline constexpr char kThreads[] = "threads", kSeed[] = "seed", kPrecision[] = "precision";
inline constexpr char kData[] = "data", kLimit[] = "limit";
inline constexpr char kPolish[] = "polish", kPolishSteps[] = "polish-steps", kPolishMethod[] = "polish-method";
// --model's help where any model kind is taken (engine/checkpoint.hpp load_model).
inline constexpr char kModelHelp[] =
    "checkpoint directory (enf train, import, export), a reference model's directory (args.json + "
    "flow.safetensors, imported on the fly), or a shipped model's name (qm9-pretrained, qm9-conformers)";

struct OptionGroup {
  std::string name;
  std::vector<OptionSpec> rows;
};
const OptionGroup& solver_group();
// The solves that draw samples (prior to data) when a command also scores
// them with the solver group (enf conformers, enf conformers eval): a
// fixed-step method by default (rk4 in 10 steps), since the log-likelihood
// is not computed along them and a sample's error at 10 steps is below
// what matters (README: Results: conformers).
const OptionGroup& sampling_group();
const OptionGroup& runtime_group();
const OptionGroup& data_group();
// The local minimisation of each drawn conformer under a force field (enf
// conformers, enf conformers eval --model): MMFF94, 200 steps by default
// (README: Results: conformers of a given molecule).
const OptionGroup& polish_group();

// A row's default, help or value hint as one command documents it (empty:
// the group's).
struct OptionOverride {
  std::string name, default_value, help = {}, value_hint = {};
};

// A group as a command uses it: `only` these rows (empty: all), `overrides`
// applied. An override or row naming nothing in the group is a programming
// error (std::logic_error when the table is built).
struct GroupUse {
  const OptionGroup& group;
  std::vector<std::string> only = {};
  std::vector<OptionOverride> overrides = {};
};

// `own` rows, then the rows of every group used, in order.
std::vector<OptionSpec> with_groups(std::vector<OptionSpec> own, const std::vector<GroupUse>& groups);

// The trace estimators the command line offers, in the order it lists them
// (names: to_string in engine/cnf.hpp).
const std::vector<TraceEstimator>& trace_estimators();

// The solver group as parsed: the rows the command has, CnfOptions' defaults
// for the others; the same settings forward and adjoint. UsageError when
// invalid (unknown method, trace; tolerances CnfOptions refuses).
CnfOptions parse_solver(const ParsedOptions& opt);
// The sampling group as parsed: `solver` (parse_solver's) with the method
// --sample-method, and --sample-steps equal steps for a fixed-step method
// or the solver group's --rtol/--atol for an adaptive one (so that
// --sample-method dopri5 samples exactly as the solver group would).
// UsageError for an unknown method, or --sample-steps with an adaptive one.
CnfOptions parse_sampling(const ParsedOptions& opt, const CnfOptions& solver);
// --sample-precision: true for float (the default), false for double.
bool parse_sample_single(const ParsedOptions& opt);
// "rk4 in 10 steps", "dopri5 at rtol 1e-05, atol 1e-05": for summaries.
std::string describe_solver(const ode::SolverOptions& s);
// trace, rtol and atol as keys of an output document.
void add_solver_json(nlohmann::json& j, const CnfOptions& o);
// The names of the solver rows (a run's config.json holds them).
std::vector<std::string> solver_option_names();

struct Runtime {
  int threads = 0;         // 0: all cores
  std::uint64_t seed = 0;
  std::string precision;   // one of the row's value hint ("float", "double", ...); empty without the row
  bool single() const { return precision == "float"; }
};
// The most --threads a command accepts: 4 x the cores of the machine.
int max_threads();
// UsageError when --threads is above max_threads().
Runtime parse_runtime(const ParsedOptions& opt);
// --precision auto resolved for an adaptive solve: float where float32's
// rounding stays below the solver's own error (rtol and atol both at least
// kAutoFloatTolerance), double at tighter tolerances. Measured on DW4 and LJ13
// (README "float32 or float64"): at 1e-5 the error of a float32 solve against
// a 1e-7 float64 reference equals float64's, at 1e-7 float32 adds up to 11×
// the tolerance's scale. Any other value is returned as it is.
inline constexpr double kAutoFloatTolerance = 1e-5;
std::string resolve_precision(const std::string& precision, const ode::SolverOptions& solver);

struct DataSelection {
  std::string data;  // file or dataset name; empty: the command's default
  long limit = -1;   // rows to use from the start; -1: all (--limit 0)
};
DataSelection parse_data(const ParsedOptions& opt);

struct Polish {
  bool on = false;  // --polish none, or --polish-steps 0: off
  ForceFieldKind field = ForceFieldKind::MMFF94;
  Minimiser minimiser = Minimiser::LBFGS;
  int steps = 0;
  // "mmff94 by L-BFGS, at most 200 iterations" or "none": for summaries.
  std::string describe() const;
};
// The --help sentence on --polish.
extern const char kPolishHelp[];
Polish parse_polish(const ParsedOptions& opt);

// A --system row listing the systems `keep` accepts (from datasets/systems.hpp).
OptionSpec system_option(const std::string& default_value, const std::string& help,
                         const std::function<bool(const SystemInfo&)>& keep);
// The system --system names, checked against the systems `keep` accepts
// (UsageError listing them).
const SystemInfo& parse_system(const ParsedOptions& opt, const std::function<bool(const SystemInfo&)>& keep);

}  // namespace enf::cli
