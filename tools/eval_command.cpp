// enf eval: test NLL of a data file, the effective sample size of importance
// weights exp(−E(x) − log q(x)) over model samples, and SVG plots
// (interatomic distances and energies of samples vs data, training curve).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/checksum.hpp"
#include "datasets/energies.hpp"
#include "datasets/file_io.hpp"
#include "datasets/npy.hpp"
#include "datasets/particles.hpp"
#include "datasets/systems.hpp"
#include "engine/checkpoint.hpp"
#include "engine/flow.hpp"
#include "engine/result_journal.hpp"
#include "engine/statistics.hpp"
#include "tools/commands.hpp"
#include "tools/option_groups.hpp"
#include "tools/options.hpp"
#include "tools/outputs.hpp"
#include "tools/progress.hpp"
#include "tools/stop_signal.hpp"
#include "tools/svg_plot.hpp"

namespace enf::cli {

namespace {

namespace fs = std::filesystem;

const CommandSpec kEval{
    "eval",
    "Evaluate a DW4, LJ13 or LJ55 flow: test NLL, importance-sampling ESS, and plots.",
    "NLL: mean ± standard error of −log p(x) over --data (exact trace, --rtol/--atol).\n"
    "ESS: --samples structures drawn from the model with their log q(x); importance\n"
    "weights w = exp(−E(x) − log q(x)) against the target energy; Kish's ESS\n"
    "(Σw)²/Σw², reported as a percentage of the samples (JSON: ess.percent, and\n"
    "ess.fraction in [0, 1]).\n"
    "Plots (--plots DIR, SVG): distances.svg (interatomic distances, samples vs data),\n"
    "energies.svg (E of samples vs data), training.svg (from --run DIR's metrics.jsonl).\n"
    "Long evaluations (LJ55 with the exact trace: hours): --work DIR keeps every finished\n"
    "log-likelihood in DIR (nll.jsonl, samples.npy, log_q.jsonl) as it finishes; Ctrl-C or\n"
    "SIGTERM stops after the structures in progress, and the same command run again\n"
    "continues where it stopped (DIR is refused for another model, data or setting).\n"
    "\nexample:\n  enf eval --model runs/dw4/best --data dw4:test --plots plots",
    with_groups({
        {"model", "CKPT|NAME", "", kModelHelp},
        {"samples", "N", "1000", "model samples for the ESS and the plots", "2", "1000000"},
        {"lj-convention", "ordered|unordered", "ordered", "Lennard-Jones pair sum (LJ13, LJ55): i≠j (as the shipped data) or i<j"},
        {"plots", "DIR", "", "write SVG plots to DIR"},
        {"run", "DIR", "", "run directory whose training curve to plot"},
        {"format", "table|json", "table", "output format on stdout"},
        {"work", "DIR", "", "keep finished results in DIR and continue from them when run again"},
        force_option(),
    },
    // The NLL uses the exact trace and dopri5: only the tolerances are options.
    {{data_group(), {},
      {{kData, "", "test structures (.npy, or a dataset name: dw4:test)"},
       {kLimit, "1000", "use the first N structures of --data (0: all)"}}},
     {solver_group(), {kRtol, kAtol}},
     {runtime_group(), {kThreads, kSeed, kPrecision},
      {{kSeed, "0", "seed of the samples"},
       {kPrecision, "auto",
        "scalar type of the field; auto: float (about twice as fast) when --rtol and --atol are both at least "
        "1e-5, where float32's rounding stays below the solver's own error, double at tighter tolerances",
        "auto|float|double"}}}})};

// The training curve of a run directory's metrics.jsonl (steps and validations).
void read_training_curve(const fs::path& path, Series& train, Series& val) {
  std::istringstream in(read_file_bytes(path.string(), "run metrics"));
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw std::runtime_error(path.string() + ":" + std::to_string(number) + ": not a JSON metrics line");
    }
    if (!j.is_object() || !j.contains("step"))
      throw std::runtime_error(path.string() + ":" + std::to_string(number) + ": expected an object with step and nll");
    // (value() would throw a bare type_error for a "type" that is no string)
    const bool validation = j.contains("type") && j["type"].is_string() && j["type"] == "validation";
    // A flow-matching step has a regression loss and no NLL: not on this chart.
    if (!validation && !j.contains("nll") && j.contains("loss")) continue;
    if (!j.contains("nll"))
      throw std::runtime_error(path.string() + ":" + std::to_string(number) + ": expected an object with step and nll");
    Series& s = validation ? val : train;
    s.x.push_back(j["step"].is_number() ? j["step"].get<double>() : NAN);
    s.values.push_back(j["nll"].is_number() ? j["nll"].get<double>() : NAN);
  }
}

// The bytes of a vector of doubles (for a digest).
template <class Vector>
std::string_view bytes_of(const Vector& v) {
  return {reinterpret_cast<const char*>(v.data()), v.size() * sizeof(v[0])};
}

// log p of the B structures of x: those the journal (when given) holds are
// read from it, the others integrated (structure b with the noise of index b,
// whatever ran before) and appended as they finish. A stop request leaves the
// rest NaN.
template <class T>
std::vector<double> log_likelihoods(BatchFlow<VectorField<T>>& flow, const T* params,
                                    const std::vector<double>& x, int B, int n, std::uint64_t seed,
                                    ResultJournal* journal, const char* what) {
  std::vector<double> out(B, NAN);
  std::vector<std::pair<int, int>> runs{{0, B}};
  if (journal) {
    for (const auto& [i, row] : journal->done()) {
      if (!row.contains("log_likelihood") || !row["log_likelihood"].is_number())
        throw std::runtime_error("results journal '" + journal->path() + "': index " + std::to_string(i) +
                                 ": expected a number log_likelihood");
      out[i] = row["log_likelihood"].template get<double>();
    }
    runs = journal->missing_runs();
    if (!journal->done().empty())
      std::fprintf(stderr, "enf eval: %zu of %d %s results read from %s\n", journal->done().size(), B, what,
                   journal->path().c_str());
  }
  int done = B;
  for (const auto& [begin, end] : runs) done -= end - begin;
  Progress progress(what, B, done);  // a resumed job's rate counts this run's structures only
  const std::size_t S = x.size() / std::size_t(B);
  for (const auto& [begin, end] : runs) {
    if (stop_requested()) break;
    std::vector<double> part(x.begin() + std::ptrdiff_t(begin * S), x.begin() + std::ptrdiff_t(end * S));
    flow.log_likelihood_each(
        params, std::move(part), end - begin, n, seed, stop_requested,
        [&](int b, ForwardResult&& r) {
          out[begin + b] = r.log_px;
          if (journal)
            journal->append(begin + b, nlohmann::json{{"log_likelihood", r.log_px}, {"nfe", r.solve.stats.nfe}});
          progress(++done);
        },
        std::uint64_t(begin));
  }
  return out;
}

// N structures drawn from the model; with a work directory, drawn once and
// kept in its samples.npy (atomically), so a continued job scores the same ones.
template <class T>
std::vector<double> model_samples(BatchFlow<VectorField<T>>& flow, const T* params, int N,
                                  const ParticleSystem& sys, std::uint64_t seed, const std::string& work) {
  const std::string path = work.empty() ? "" : (fs::path(work) / "samples.npy").string();
  if (!path.empty() && fs::exists(path)) {
    // As written, bit for bit (load_structures would re-centre them).
    NpyArray a = read_npy(path);
    if (a.shape != std::vector<int64_t>{N, sys.n, sys.dim})
      throw std::runtime_error("'" + path + "': expected " + std::to_string(N) + " samples of " + std::to_string(sys.n) +
                               " particles in " + std::to_string(sys.dim) +
                               "-D, as this job draws (remove the work directory to start again)");
    std::fprintf(stderr, "enf eval: %d samples read from %s\n", N, path.c_str());
    return std::move(a.data);
  }
  std::fprintf(stderr, "enf eval: drawing %d samples...\n", N);
  std::vector<double> xs = flow.sample(params, N, sys.n, seed);
  if (!path.empty()) write_npy(path, {N, sys.n, sys.dim}, xs);
  return xs;
}

// After a stop: what was done, where it is kept, how to go on.
int stopped(const std::string& work, const ResultJournal* nll, const ResultJournal* q) {
  if (work.empty()) {
    std::fprintf(stderr, "enf eval: stopped; nothing kept (--work DIR keeps finished results)\n");
  } else {
    std::fprintf(stderr, "enf eval: stopped; kept in %s: %zu NLL results", work.c_str(), nll->done().size());
    if (q) std::fprintf(stderr, ", %zu log q results", q->done().size());
    std::fprintf(stderr, "; the same command continues from them\n");
  }
  return stop_exit_code();
}

// The flow's part of the evaluation, in the field's precision T: log p of the
// data, the model samples and their log q (empty log_q: stopped).
struct FlowResults {
  std::vector<double> log_p, xs, log_q;
  int exit_code = 0;  // after a stop
};

template <class T>
FlowResults evaluate_flow(const Checkpoint& c, const CnfOptions& o, int threads, const Structures& data,
                          const ParticleSystem& sys, int N, std::uint64_t seed, const std::string& work,
                          const nlohmann::json& job) {
  const Parameters<T> p = c.params.template cast<T>();
  VectorField<T> field(c.field, p.layout);
  Cnf<VectorField<T>> cnf(field, o);
  BatchFlow<VectorField<T>> flow(cnf, threads);
  std::unique_ptr<ResultJournal> nll_journal, q_journal;
  if (!work.empty())
    nll_journal = std::make_unique<ResultJournal>((fs::path(work) / "nll.jsonl").string(), job, data.rows);
  FlowResults r;
  std::fprintf(stderr, "enf eval: NLL of %d structures...\n", data.rows);
  r.log_p = log_likelihoods(flow, p.values.data(), data.x, data.rows, sys.n, seed, nll_journal.get(), "NLL");
  if (stop_requested()) return r.exit_code = stopped(work, nll_journal.get(), nullptr), r;
  r.xs = model_samples(flow, p.values.data(), N, sys, seed + 1, work);
  if (!work.empty()) q_journal = std::make_unique<ResultJournal>((fs::path(work) / "log_q.jsonl").string(), job, N);
  std::fprintf(stderr, "enf eval: log q of %d samples...\n", N);
  std::vector<double> log_q = log_likelihoods(flow, p.values.data(), r.xs, N, sys.n, seed + 2, q_journal.get(), "log q");
  if (stop_requested()) return r.exit_code = stopped(work, nll_journal.get(), q_journal.get()), r;
  r.log_q = std::move(log_q);
  return r;
}

}  // namespace

int run_eval(const std::vector<std::string>& args) {
  ParsedOptions opt(kEval, args);
  if (opt.help()) return std::fputs(usage(kEval).c_str(), stdout), 0;
  if (opt.str("model").empty() || opt.str("data").empty()) throw UsageError("--model and --data are required");
  // Everything that can be wrong with the options is found before the work.
  const bool json = opt.choice("format", {"table", "json"}) == "json";
  const std::string plots = opt.str("plots");
  if (!opt.str("run").empty() && plots.empty()) throw UsageError("--run draws the training curve: give --plots DIR too");
  if (!plots.empty() && fs::exists(plots) && !fs::is_directory(plots))
    throw UsageError("--plots " + plots + ": a file of that name exists; --plots takes a directory");
  if (!plots.empty()) {
    // The directory is made and its plot files checked now, not after the work.
    make_output_directory("plots", plots);
    std::vector<std::string> files = {"distances.svg", "energies.svg"};
    if (!opt.str("run").empty()) files.push_back("training.svg");
    for (const std::string& f : files)
      check_output("plots", (fs::path(plots) / f).string(), {opt.str("model"), opt.str("data"), opt.str("run")},
                   opt.flag("force"), "plot");
  }
  Series train{"training NLL (batch)", {}, {}}, val{"validation NLL", {}, {}};
  if (!opt.str("run").empty()) read_training_curve(fs::path(opt.str("run")) / "metrics.jsonl", train, val);
  const Checkpoint c = load_model(opt.str("model"));
  if (is_conformer_system(c.system))
    throw std::runtime_error("enf eval needs a DW4, LJ13 or LJ55 model; '" + opt.str("model") +
                             "' is a conformer model (qm9-conformers): use enf conformers (conformers of given "
                             "molecules) and enf score (log p(x | graph) of given geometries)");
  if (!has_target_energy(c.system))
    throw std::runtime_error("enf eval needs a DW4, LJ13 or LJ55 model (its ESS and plots use their energies); for this " +
                             c.system + " model use enf score (NLL)" +
                             (c.molecule ? ", enf sample and enf metrics (generated molecules)" : ""));
  const ParticleSystem sys = particle_system(c.system);
  const LJConvention lj = lj_convention(opt.choice("lj-convention", {"ordered", "unordered"}));
  const DataSelection sel = parse_data(opt);
  const Structures data = load_structures(sel.data, sys, 0, sel.limit);
  const int N = opt.integer("samples");
  Runtime rt = parse_runtime(opt);
  const std::uint64_t seed = rt.seed;

  const CnfOptions o = parse_solver(opt);
  const bool auto_precision = rt.precision == "auto";
  rt.precision = resolve_precision(rt.precision, o.solver);
  std::string why;  // how --precision auto chose, when it did
  if (auto_precision && rt.single())
    why = " (--precision auto at rtol and atol >= 1e-5; --precision double for float64)";
  else if (auto_precision)
    why = " (--precision auto at a tolerance below 1e-5)";
  std::fprintf(stderr, "enf eval: the field in %s%s\n", rt.single() ? "float32" : "float64", why.c_str());
  const std::string work = opt.str("work");
  // The job a work directory belongs to: its results are those of these
  // parameters, structures and settings (digests, so a moved file still matches).
  const nlohmann::json job{{"model_parameters_sha256", sha256_bytes(bytes_of(c.params.values))},
                           {"data_sha256", sha256_bytes(bytes_of(data.x))},
                           {"structures", data.rows},
                           {"samples", N},
                           {"seed", seed},
                           {"rtol", o.solver.rtol},
                           {"atol", o.solver.atol},
                           {"trace", "exact"},
                           {"precision", rt.precision}};
  if (!work.empty()) make_output_directory("work", work);
  const StopSignal stop(
      "\nenf eval: stopping: no new structures start; those in progress finish" +
          std::string(work.empty() ? " (nothing is kept without --work DIR)\n" : " and are kept in " + work + "\n"),
      "\nenf eval: second signal: exiting at once\n");
  const auto t0 = std::chrono::steady_clock::now();
  const FlowResults r = rt.single() ? evaluate_flow<float>(c, o, rt.threads, data, sys, N, seed, work, job)
                                    : evaluate_flow<double>(c, o, rt.threads, data, sys, N, seed, work, job);
  if (r.log_q.empty()) return r.exit_code;
  const std::vector<double>& xs = r.xs;
  std::vector<double> nlls;
  for (double v : r.log_p) nlls.push_back(-v);
  const MeanError nll = mean_standard_error(nlls);
  const std::vector<double> e_samples = energies(sys, xs, N, lj), e_data = energies(sys, data.x, data.rows, lj);
  const double ess = kish_ess_fraction(boltzmann_log_weights(e_samples, r.log_q));
  const MeanError es = mean_standard_error(e_samples), ed = mean_standard_error(e_data);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (!plots.empty()) {
    const fs::path dir = plots;
    const int D = sys.dim, n = sys.n;
    write_file_atomically((dir / "distances.svg").string(),
                          svg_histograms(sys.name + ": interatomic distances", "distance",
                                         {{"data", pair_distances(data.x, data.rows, n, D), {}},
                                          {"model samples", pair_distances(xs, N, n, D), {}}}),
                          "plot");
    write_file_atomically((dir / "energies.svg").string(),
                          svg_histograms(sys.name + ": energy", "E(x)", {{"data", e_data, {}}, {"model samples", e_samples, {}}}),
                          "plot");
    if (!opt.str("run").empty()) {
      write_file_atomically((dir / "training.svg").string(), svg_lines("training curve", "step", "NLL (nats)", {train, val}),
                            "plot");
    }
    std::fprintf(stderr, "plots in %s\n", dir.c_str());
  }

  if (json) {
    nlohmann::json j{{"model", opt.str("model")},
                     {"data", opt.str("data")},
                     {"nll", {{"mean", nll.mean}, {"standard_error", nll.error}, {"structures", data.rows}}},
                     {"ess", {{"percent", 100 * ess}, {"fraction", ess}, {"samples", N}}},
                     {"energy", {{"samples_mean", es.mean}, {"samples_error", es.error}, {"data_mean", ed.mean},
                                 {"data_error", ed.error}, {"lj_convention", to_string(lj)}}},
                     {"precision", rt.precision},
                     {"seconds", seconds}};
    if (!work.empty()) j["work"] = work;
    std::puts(j.dump(2).c_str());
  } else {
    std::printf("| %s | value |\n|---|---:|\n", sys.name.c_str());
    std::printf("| test NLL (%d structures) | %.4f ± %.4f |\n", data.rows, nll.mean, nll.error);
    // As the README reports it: a percentage, with its sign.
    std::printf("| ESS of exp(−E − log q) (%d samples) | %.2f %% |\n", N, 100 * ess);
    std::printf("| mean energy, samples | %.3f ± %.3f |\n| mean energy, data | %.3f ± %.3f |\n", es.mean, es.error,
                ed.mean, ed.error);
  }
  return 0;
}

}  // namespace enf::cli
