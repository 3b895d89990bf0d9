#include "tools/option_groups.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <thread>

#include "ode/solver.hpp"

namespace enf::cli {

namespace {

std::string trace_hint() {
  std::string h;
  for (TraceEstimator t : trace_estimators()) {
    if (!h.empty()) h += '|';  // (not "|" + string: GCC 12's false -Wrestrict, PR 105329)
    h += to_string(t);
  }
  return h;
}

// The solver rows. Their names are used through these rows (JSON keys, a
// run's config keys), so each is spelled once.
const OptionSpec& method_row() {
  static const OptionSpec r{kMethod, "NAME", "dopri5", "ODE solver: dopri5, cash_karp, fehlberg78, rk4, euler"};
  return r;
}
const OptionSpec& rtol_row() {
  static const OptionSpec r{kRtol, "R", "1e-5", "solver relative tolerance"};
  return r;
}
const OptionSpec& atol_row() {
  static const OptionSpec r{kAtol, "A", "1e-5", "solver absolute tolerance"};
  return r;
}
// Fixed-step solvers take a step count, not a tolerance: sampling a flow
// trained by flow matching (nearly straight paths) in a few rk4 steps.
const OptionSpec& fixed_steps_row() {
  static const OptionSpec r{kFixedSteps, "N", "100", "rk4/euler: N equal steps over t in [0, 1] (NFE 4N / N)", "1",
                            "1000000"};
  return r;
}
const OptionSpec& trace_row() {
  static const OptionSpec r{kTrace, trace_hint(), "exact", "divergence: exact, or Hutchinson with that noise"};
  return r;
}

// The sampling rows: their own method and step count; the tolerances of an
// adaptive sampling method are the solver group's rows, not declared twice.
const OptionSpec& sample_method_row() {
  static const OptionSpec r{kSampleMethod, "NAME", "rk4",
                            "ODE solver drawing the samples: rk4 or euler in --sample-steps equal steps, or dopri5, "
                            "cash_karp, fehlberg78 to --rtol/--atol"};
  return r;
}
const OptionSpec& sample_steps_row() {
  static const OptionSpec r{kSampleSteps, "N", "5", "fixed-step --sample-method: N equal steps (NFE 4N for rk4, N for euler)",
                            "1", "1000000"};
  return r;
}

// float by default: the drawn positions differ from a float64 field's by
// ~1e-6 Å (tested), far below the 0.1 Å that RMSD-based quality resolves
// (README, Results: conformers, float32 sampling).
const OptionSpec& sample_precision_row() {
  static const OptionSpec r{kSamplePrecision, "float|double", "float",
                            "scalar type of the field while drawing (the scoring's log p stays float64)"};
  return r;
}

std::vector<std::string> hint_choices(const std::string& hint) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t bar; (bar = hint.find('|', start)) != std::string::npos; start = bar + 1)
    out.push_back(hint.substr(start, bar - start));
  out.push_back(hint.substr(start));
  return out;
}

}  // namespace

const std::vector<TraceEstimator>& trace_estimators() {
  static const std::vector<TraceEstimator> t = {TraceEstimator::Exact, TraceEstimator::Rademacher,
                                                TraceEstimator::Gaussian};
  return t;
}

const OptionGroup& solver_group() {
  static const OptionGroup g{"solver", {method_row(), rtol_row(), atol_row(), fixed_steps_row(), trace_row()}};
  return g;
}

const OptionGroup& sampling_group() {
  static const OptionGroup g{"sampling", {sample_method_row(), sample_steps_row(), sample_precision_row()}};
  return g;
}

const char kPolishHelp[] =
    "--polish mmff94 (default): each drawn conformer is then locally minimised under the MMFF94\n"
    "force field (Open Babel's; by L-BFGS on its gradient, at most --polish-steps 200 iterations;\n"
    "--polish-method cg: Open Babel's conjugate gradients, enf's polish before), after the stereo\n"
    "reflection (and reflected again should the polish settle a nearly flat centre the other way),\n"
    "before --dedup and the scoring: the conformer written, and its log p(x | graph), are the\n"
    "polished geometry's. --polish uff uses UFF; --polish none leaves the model's geometries as\n"
    "drawn. A molecule the force field has no parameters for keeps its conformers as drawn (one\n"
    "line on stderr, counted in the summary).";

const OptionGroup& polish_group() {
  static const OptionGroup g{"polish",
                             {
                                 {kPolish, "mmff94|uff|none", "mmff94",
                                  "locally minimise each drawn conformer under this force field (none: as drawn)"},
                                 {kPolishSteps, "N", "200", "at most N iterations of --polish-method", "0",
                                  "100000"},
                                 {kPolishMethod, "lbfgs|cg", "lbfgs",
                                  "the minimiser: L-BFGS (libLBFGS), or Open Babel's conjugate gradients"},
                             }};
  return g;
}

std::string Polish::describe() const {
  if (!on) return "none";
  return to_string(field) + " by " + (minimiser == Minimiser::LBFGS ? "L-BFGS" : "conjugate gradients") +
         ", at most " + std::to_string(steps) + " iterations";
}

Polish parse_polish(const ParsedOptions& opt) {
  Polish p;
  const std::string name = opt.choice(kPolish, {"mmff94", "uff", "none"});
  p.steps = opt.integer(kPolishSteps);
  p.field = name == "uff" ? ForceFieldKind::UFF : ForceFieldKind::MMFF94;
  p.minimiser = opt.choice(kPolishMethod, {"lbfgs", "cg"}) == "cg" ? Minimiser::ConjugateGradients : Minimiser::LBFGS;
  p.on = name != "none" && p.steps > 0;
  return p;
}

const OptionGroup& runtime_group() {
  static const OptionGroup g{"runtime",
                             {
                                 // parse_runtime says why when the bound is passed.
                                 {kThreads, "N", "0", "threads (0: all cores)", "0", std::to_string(max_threads())},
                                 {kSeed, "S", "0", "seed"},
                                 {kPrecision, "float|double", "double", "scalar type of the field"},
                             }};
  return g;
}

const OptionGroup& data_group() {
  static const OptionGroup g{"data",
                             {
                                 {kData, "FILE|NAME", "", "structures (.npy, or a dataset name: dw4:test)"},
                                 {kLimit, "N", "0", "use only the first N structures (0: all)", "0"},
                             }};
  return g;
}

std::vector<OptionSpec> with_groups(std::vector<OptionSpec> own, const std::vector<GroupUse>& groups) {
  for (const GroupUse& use : groups) {
    auto in_group = [&](const std::string& name) {
      for (const auto& r : use.group.rows)
        if (r.name == name) return true;
      return false;
    };
    for (const auto& name : use.only)
      if (!in_group(name)) throw std::logic_error("option group " + use.group.name + " has no --" + name);
    for (const auto& o : use.overrides)
      if (!in_group(o.name)) throw std::logic_error("option group " + use.group.name + " has no --" + o.name);
    for (OptionSpec row : use.group.rows) {
      if (!use.only.empty() && std::find(use.only.begin(), use.only.end(), row.name) == use.only.end()) continue;
      for (const auto& o : use.overrides) {
        if (o.name != row.name) continue;
        row.default_value = o.default_value;
        if (!o.help.empty()) row.help = o.help;
        if (!o.value_hint.empty()) row.value_hint = o.value_hint;
      }
      own.push_back(std::move(row));
    }
  }
  return own;
}

CnfOptions parse_solver(const ParsedOptions& opt) {
  CnfOptions o;
  if (opt.has(trace_row().name)) {
    std::vector<std::string> names;
    for (TraceEstimator t : trace_estimators()) names.push_back(to_string(t));
    o.trace = parse_trace_estimator(opt.choice(trace_row().name, names));
  }
  if (opt.has(method_row().name)) o.solver.method = opt.parsed(method_row().name, ode::parse_method);
  if (opt.has(rtol_row().name)) o.solver.rtol = opt.real(rtol_row().name);
  if (opt.has(atol_row().name)) o.solver.atol = opt.real(atol_row().name);
  if (opt.has(fixed_steps_row().name)) o.solver.fixed_step = 1.0 / opt.integer(fixed_steps_row().name);
  o.adjoint_solver = o.solver;
  if (auto e = o.validate(); !e.empty()) throw UsageError(e);
  return o;
}

CnfOptions parse_sampling(const ParsedOptions& opt, const CnfOptions& solver) {
  CnfOptions o = solver;
  o.solver.method = opt.parsed(sample_method_row().name, ode::parse_method);
  if (ode::is_adaptive(o.solver.method)) {
    if (opt.given(sample_steps_row().name))
      throw UsageError(opt.label(sample_steps_row().name) + " applies to a fixed-step --sample-method (rk4, euler); " +
                       ode::to_string(o.solver.method) + " steps to --rtol and --atol");
  } else {
    o.solver.fixed_step = 1.0 / opt.integer(sample_steps_row().name);
  }
  o.adjoint_solver = o.solver;
  if (auto e = o.validate(); !e.empty()) throw UsageError(e);
  return o;
}

bool parse_sample_single(const ParsedOptions& opt) {
  return opt.choice(kSamplePrecision, {"float", "double"}) == "float";
}

std::string describe_solver(const ode::SolverOptions& s) {
  char buf[128];
  if (ode::is_adaptive(s.method))
    std::snprintf(buf, sizeof buf, "%s at rtol %g, atol %g", ode::to_string(s.method).c_str(), s.rtol, s.atol);
  else
    std::snprintf(buf, sizeof buf, "%s in %ld steps", ode::to_string(s.method).c_str(), std::lround(1.0 / s.fixed_step));
  return buf;
}

void add_solver_json(nlohmann::json& j, const CnfOptions& o) {
  j[trace_row().name] = to_string(o.trace);
  j[rtol_row().name] = o.solver.rtol;
  j[atol_row().name] = o.solver.atol;
}

std::vector<std::string> solver_option_names() {
  std::vector<std::string> names;
  for (const auto& r : solver_group().rows) names.push_back(r.name);
  return names;
}

int max_threads() {
  const unsigned cores = std::thread::hardware_concurrency();
  return 4 * int(cores == 0 ? 1 : cores);
}

Runtime parse_runtime(const ParsedOptions& opt) {
  Runtime r;
  if (opt.has(kThreads)) {
    r.threads = opt.integer(kThreads);
    // OpenMP and the per-thread workspaces crash long before INT_MAX threads
    // (libgomp fails at 32768, 100000 segfaulted): a bound, never a crash.
    if (r.threads > max_threads())
      throw UsageError(opt.label(kThreads) + " must be at most " + std::to_string(max_threads()) + " (4 x the " +
                       std::to_string(max_threads() / 4) + " cores of this machine), got " + std::to_string(r.threads));
  }
  if (opt.has(kSeed)) r.seed = std::uint64_t(opt.integer(kSeed));
  if (opt.has(kPrecision)) r.precision = opt.choice(kPrecision, hint_choices(opt.spec().option(kPrecision).value_hint));
  return r;
}

std::string resolve_precision(const std::string& precision, const ode::SolverOptions& solver) {
  if (precision != "auto") return precision;
  // The tolerance is compared with a relative slack: --rtol 1e-5 parses to
  // the double nearest 1e-5 and must count as 1e-5.
  const double floor = kAutoFloatTolerance * (1 - 1e-9);
  return solver.rtol >= floor && solver.atol >= floor ? "float" : "double";
}

DataSelection parse_data(const ParsedOptions& opt) {
  DataSelection d;
  if (opt.has(kData)) d.data = opt.str(kData);
  if (opt.has(kLimit) && opt.integer(kLimit) > 0) d.limit = opt.integer(kLimit);
  return d;
}

OptionSpec system_option(const std::string& default_value, const std::string& help,
                         const std::function<bool(const SystemInfo&)>& keep) {
  return {"system", system_names("|", keep), default_value, help};
}

const SystemInfo& parse_system(const ParsedOptions& opt, const std::function<bool(const SystemInfo&)>& keep) {
  std::vector<std::string> names;
  for (const auto& s : systems())
    if (!keep || keep(s)) names.push_back(s.name);
  return system_info(opt.choice("system", names));
}

}  // namespace enf::cli
