// enf bench score and enf bench sample: the two inference tasks timed per
// particle system, with the FLOPs they perform (field evaluations × the FLOPs
// of one, tools/bench_common.hpp) and the rate that makes of the machine's
// matrix-multiply peak, measured in the same run (issue 13: benchmarks that
// name the limit, instead of ratios to figures from another CPU).
//
// The peak brackets every repeat (bench_common.hpp's BracketedPeak): each
// repeat's rate is taken against the median of its own bracket.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "datasets/molecule_io.hpp"
#include "datasets/particles.hpp"
#include "datasets/registry.hpp"
#include "datasets/systems.hpp"
#include "engine/checkpoint.hpp"
#include "engine/flow.hpp"
#include "engine/initialization.hpp"
#include "engine/molecule_batch.hpp"
#include "tools/bench_common.hpp"
#include "tools/bench_step.hpp"
#include "tools/bench_timing.hpp"
#include "tools/commands.hpp"
#include "tools/option_groups.hpp"
#include "tools/options.hpp"

namespace enf::cli {

namespace {

const char kCommon[] =
    "Per system (--system dw4, lj13, lj55, qm9 or all): seconds (the median of --repeat runs),\n"
    "structures/s, field evaluations (NFE) per structure, FLOP per structure (NFE × the\n"
    "FLOPs of one evaluation, counted from the layer shapes as bench field counts them),\n"
    "the achieved GFLOP/s and its percentage of the GEMM peak (a 384³ product per thread,\n"
    "measured right before and after every repeat: the same run, the same load).\n"
    "The model: --model CKPT (a checkpoint of enf train, import or export, of one system),\n"
    "or else, for particles, a randomly initialised model of the E-NF configuration (H=32,\n"
    "L=3, attention, tanh), and for QM9 the pretrained E-NF model (qm9-pretrained, imported\n"
    "as enf import does), as the output says. Timing follows the field's stiffness: a\n"
    "trained model takes more steps than a random one, so a trained model is the\n"
    "meaningful case. QM9's FLOPs count the ODE's field evaluations only: the score's\n"
    "dequantizer runs its own EGNN once per molecule, not counted (about one evaluation\n"
    "beside the ODE's NFE per molecule).";

// The options of both commands: what --structures counts, its default, and
// the solver rows and precision each times by default.
std::vector<OptionSpec> bench_options(const std::string& structures_meta, const std::string& structures_help,
                                      const std::string& structures_default, const GroupUse& solver,
                                      const std::string& precision) {
  return with_groups(
      {{"system", "dw4|lj13|lj55|qm9|all", "dw4", "system (all: each in turn)"},
       {"model", "CKPT", "", "trained checkpoint (default: random init; QM9: qm9-pretrained)"},
       {"structures", structures_meta, structures_default, structures_help, "1", "1000000"},
       {"repeat", "R", "3", "timed runs (the median is reported)", "1", "1000"},
       {"format", "table|json", "table", "output format on stdout"}},
      {solver, {runtime_group(), {}, {{kPrecision, precision, "scalar type of the field"}, {kSeed, "0", "seed"}}}});
}

const CommandSpec kScoreSpec{
    "bench score", "Time log p(x) of test structures (exact trace), with FLOP rates against the GEMM peak.",
    std::string("log p(x) of the first --structures test structures of the system's shipped test\n"
                "split, dopri5 at --rtol/--atol (1e-5: enf eval's default). Particles: exact trace\n"
                "(N·D tangent directions per evaluation, as enf eval); QM9 (qm9:test): one\n"
                "dequantization draw, Gaussian Hutchinson trace (one J·v per evaluation, as enf score\n"
                "--trace gaussian). The exact trace grows as N³: an LJ55 structure took 48 s on 2 shared\n"
                "cores with a random model (20 NFE; a trained one takes more), hence the small default.\n") +
        kCommon,
    bench_options("M", "test structures scored per repeat", "10", {solver_group(), {kRtol, kAtol}}, "double")};

const CommandSpec kSampleSpec{
    "bench sample", "Time drawing structures (dopri5 and fixed-step rk4), with FLOP rates against the GEMM peak.",
    std::string("--structures draws (QM9: atom counts from the model's p(N)) from the prior integrated\n"
                "from t = 1 to 0 without the trace: dopri5 at --rtol/--atol (1e-4, as enf bench step\n"
                "samples), then rk4 in --fixed-steps equal steps (4 evaluations a step); particles also\n"
                "dopri5 one sample at a time, the path enf sample's lockstep groups replaced (the samples\n"
                "of a group share each stage's field evaluation, each keeping its own steps; DW4: 32).\n") +
        kCommon,
    bench_options(
        "K", "draws per repeat", "1000",
        {solver_group(), {kRtol, kAtol, kFixedSteps}, {{kRtol, "1e-4"}, {kAtol, "1e-4"}, {kFixedSteps, "10"}}},
        "float")};

// A flow to time: the system, its field and weights, and what they are.
struct BenchModel {
  ParticleSystem sys;  // QM9: n = 0 (the atom count varies)
  FieldConfig field;
  Parameters<double> params;
  std::string description;
  std::optional<MoleculeModelConfig> molecule;  // QM9's dequantizer, ActNorm and p(N)
};

BenchModel model_of(Checkpoint c, const std::string& description) {
  const ParticleSystem sys = c.molecule ? ParticleSystem{"qm9", 0, 3} : particle_system(c.system);
  return {sys, c.field, std::move(c.params), description, c.molecule};
}

// The systems --system names, each with a randomly initialised model of the
// E-NF configuration (QM9: the pretrained model), or the one system of
// --model with its weights.
std::vector<BenchModel> bench_models(const ParsedOptions& opt, std::uint64_t seed) {
  const std::string system = opt.choice("system", {"dw4", "lj13", "lj55", "qm9", "all"});
  if (opt.given("model")) {
    const std::string path = opt.str("model");
    Checkpoint c = load_model(path);
    if (!c.molecule && !is_particle_system(c.system))
      throw UsageError("--model: '" + path +
                       "' is a model of no system bench score/sample know (dw4, lj13, lj55, qm9)");
    BenchModel m = model_of(std::move(c), "trained model " + path);
    if (opt.given("system") && system != m.sys.name)
      throw UsageError("--system " + system + " but the model is of " + m.sys.name);
    return {std::move(m)};
  }
  std::vector<BenchModel> out;
  for (const char* name : {"dw4", "lj13", "lj55", "qm9"}) {
    if (system != "all" && system != name) continue;
    if (std::string(name) == "qm9") {
      out.push_back(model_of(import_reference(resolve_model("qm9-pretrained")),
                             "the pretrained E-NF QM9 model (qm9-pretrained, imported)"));
      continue;
    }
    const ParticleSystem sys = particle_system(name);
    const FieldConfig field = bench_field_config(sys.dim);
    Parameters<double> p(field_layout(field));
    Rng rng(seed);
    initialize_egnn(field.egnn(), p, rng);
    out.push_back({sys, field, std::move(p), "randomly initialised (untrained) E-NF configuration", {}});
  }
  return out;
}

// One timed task on one system: the median repeat and the peak beside it.
struct BenchRow {
  std::string system, task, model, precision;
  int structures = 0, threads = 0, repeats = 0;
  double seconds = 0, nfe_per_structure = 0, flop_per_structure = 0, gflops = 0, peak_gflops = 0;
};

// What a task computed, summed over its structures.
struct Work {
  long nfe = 0;
  double flops = 0;
};

// Runs `task` (returns its Work) `repeats` times, each between two
// measurements of the peak; the row holds the repeat of median time and the
// median peak of its bracket.
template <class T, class Task>
BenchRow time_task(const std::string& task_name, const BenchModel& m, int structures, int repeats, int threads,
                   Task task) {
  const auto mid = median_run<T>(repeats, threads, task, [&](int r, const TimedRun<Work>& run) {
    std::fprintf(stderr, "  %-5s %-28s run %d/%d: %.3f s, NFE %.1f per structure, peak alongside %.1f GFLOP/s\n",
                 m.sys.name.c_str(), task_name.c_str(), r + 1, repeats, run.seconds, double(run.work.nfe) / structures,
                 run.peak_gflops);
  });
  BenchRow row;
  row.system = m.sys.name;
  row.task = task_name;
  row.model = m.description;
  row.precision = sizeof(T) == 4 ? "float" : "double";
  row.structures = structures;
  row.threads = threads;
  row.repeats = repeats;
  row.seconds = mid.seconds;
  row.nfe_per_structure = double(mid.work.nfe) / structures;
  row.flop_per_structure = mid.work.flops / structures;
  row.gflops = row.flop_per_structure * structures / mid.seconds * 1e-9;
  row.peak_gflops = mid.peak_gflops;
  return row;
}

// "log p(x), exact trace, 1e-05" or "sampling, rk4 10 steps": the row's task.
std::string task_name(const std::string& what, const CnfOptions& o) {
  char b[96];
  if (ode::is_adaptive(o.solver.method))
    std::snprintf(b, sizeof b, "%s, %s %g", what.c_str(), to_string(o.solver.method).c_str(), o.solver.rtol);
  else
    std::snprintf(b, sizeof b, "%s, %s %d steps", what.c_str(), to_string(o.solver.method).c_str(),
                  int(std::lround(1 / o.solver.fixed_step)));
  return b;
}

// log p(x) of the first `structures` test structures, exact trace: in
// lockstep groups as enf score and eval take them, or (alone) one by one.
// The FLOP count is the per-structure path's (the first layer's tangents on
// each direction's own edges) for both: the lockstep path's dense tangents
// do more arithmetic for the same result, so its rate is the useful one.
template <class T>
BenchRow particle_score_row(const BenchModel& m, const CnfOptions& o, int structures, int repeats, const Runtime& rt,
                            bool alone) {
  const SplitSpec split = shipped_split(m.sys, "test");
  const Structures test = load_structures(split.path, m.sys, split.first, structures);
  const Parameters<T> p = m.params.template cast<T>();
  VectorField<T> field(m.field, p.layout);
  Cnf<VectorField<T>> cnf(field, o);
  BatchFlow<VectorField<T>> flow(cnf, rt.threads);
  const double per_evaluation = evaluation_flops(field, m.sys.n, FieldWork::ExactTrace);
  const std::string what = alone ? "log p(x) one by one, exact trace" : "log p(x), exact trace";
  return time_task<T>(task_name(what, o), m, test.rows, repeats, flow.threads(), [&](int) {
    Work w;
    for (const auto& r : alone ? flow.log_likelihood_alone(p.values.data(), test.x, test.rows, m.sys.n, rt.seed)
                               : flow.log_likelihood(p.values.data(), test.x, test.rows, m.sys.n, rt.seed))
      w.nfe += r.solve.stats.nfe;
    w.flops = double(w.nfe) * per_evaluation;
    return w;
  });
}

// `structures` draws with the solver of `o`, velocity only: in lockstep
// groups as enf sample draws them, or (alone) one by one, the path it replaced.
template <class T>
BenchRow particle_sample_row(const BenchModel& m, const CnfOptions& o, int structures, int repeats, const Runtime& rt,
                             bool alone) {
  const Parameters<T> p = m.params.template cast<T>();
  VectorField<T> field(m.field, p.layout);
  Cnf<VectorField<T>> cnf(field, o);
  BatchFlow<VectorField<T>> flow(cnf, rt.threads);
  const double per_evaluation = evaluation_flops(field, m.sys.n, FieldWork::Velocity);
  const std::string what = alone ? "sampling one by one" : "sampling";
  return time_task<T>(task_name(what, o), m, structures, repeats, flow.threads(), [&](int r) {
    Work w;
    const std::uint64_t seed = rt.seed + std::uint64_t(r);
    if (alone)
      flow.sample_alone(p.values.data(), structures, m.sys.n, seed, &w.nfe);
    else
      flow.sample(p.values.data(), structures, m.sys.n, seed, &w.nfe);
    w.flops = double(w.nfe) * per_evaluation;
    return w;
  });
}

// log p(x, h, N) of the first `structures` molecules of qm9:test, one
// dequantization draw, Gaussian Hutchinson trace. A molecule's FLOPs follow
// its atom count: each adds its own NFE × one evaluation at its size.
template <class T>
BenchRow molecule_score_row(const BenchModel& m, const CnfOptions& o, int structures, int repeats, const Runtime& rt) {
  MoleculeReadOptions ro;
  ro.count = structures;
  std::vector<MoleculeInput> mols;
  for (const Molecule& mol : read_molecules("qm9:test", ro).molecules) mols.push_back(molecule_input(mol));
  const Parameters<T> p = m.params.template cast<T>();
  MoleculeFlow<T> flow(m.field, *m.molecule, o);
  MoleculeBatch<T> batch(flow, rt.threads);
  return time_task<T>(
      task_name("log p(x), Hutchinson (gaussian)", o), m, int(mols.size()), repeats, batch.threads(), [&](int) {
        Work w;
        const auto scores = batch.score(p.values.data(), mols, 1, rt.seed, [](int) {});
        for (std::size_t b = 0; b < scores.size(); ++b) {
          w.nfe += scores[b].nfe;
          w.flops +=
              double(scores[b].nfe) * evaluation_flops(flow.cnf().field(), mols[b].atoms(), FieldWork::Hutchinson);
        }
        return w;
      });
}

// `structures` molecules, their atom counts drawn from the model's p(N).
template <class T>
BenchRow molecule_sample_row(const BenchModel& m, const CnfOptions& o, int structures, int repeats, const Runtime& rt) {
  const Parameters<T> p = m.params.template cast<T>();
  MoleculeFlow<T> flow(m.field, *m.molecule, o);
  MoleculeBatch<T> batch(flow, rt.threads);
  Rng rng(rt.seed);
  std::vector<int> atoms(static_cast<std::size_t>(structures));
  for (int& a : atoms) a = flow.node_counts().sample(rng);
  return time_task<T>(task_name("sampling", o), m, structures, repeats, batch.threads(), [&](int r) {
    Work w;
    for (const auto& s : batch.sample(p.values.data(), atoms, rt.seed + std::uint64_t(r), [](int) {})) {
      w.nfe += s.solve.stats.nfe;
      w.flops +=
          double(s.solve.stats.nfe) * evaluation_flops(flow.cnf().field(), int(s.types.size()), FieldWork::Velocity);
    }
    return w;
  });
}

template <class T>
std::vector<BenchRow> score_rows(const BenchModel& m, const CnfOptions& o, int structures, int repeats,
                                 const Runtime& rt) {
  CnfOptions with_trace = o;
  with_trace.trace = m.molecule ? TraceEstimator::Gaussian : TraceEstimator::Exact;
  if (m.molecule) return {molecule_score_row<T>(m, with_trace, structures, repeats, rt)};
  // Particles: also one structure at a time, the path lockstep replaced.
  return {particle_score_row<T>(m, with_trace, structures, repeats, rt, false),
          particle_score_row<T>(m, with_trace, structures, repeats, rt, true)};
}

template <class T>
BenchRow sample_row(const BenchModel& m, const CnfOptions& o, int structures, int repeats, const Runtime& rt,
                    bool alone = false) {
  return m.molecule ? molecule_sample_row<T>(m, o, structures, repeats, rt)
                    : particle_sample_row<T>(m, o, structures, repeats, rt, alone);
}

void print_rows(const std::vector<BenchRow>& rows, const std::string& format, const std::string& command) {
  const std::string cpu = cpu_model_name(), date = utc_now();
  const double load = load_average();
  if (format == "json") {
    nlohmann::json j{{"command", command}, {"cpu", cpu}, {"date", date}, {"load_average_1min", load}};
    for (const auto& r : rows)
      j["results"].push_back({{"system", r.system},
                              {"task", r.task},
                              {"model", r.model},
                              {"precision", r.precision},
                              {"threads", r.threads},
                              {"structures", r.structures},
                              {"repeats", r.repeats},
                              {"seconds", r.seconds},
                              {"structures_per_second", r.structures / r.seconds},
                              {"nfe_per_structure", r.nfe_per_structure},
                              {"flop_per_structure", r.flop_per_structure},
                              {"gflops", r.gflops},
                              {"peak_gflops", r.peak_gflops},
                              {"fraction_of_peak", r.gflops / r.peak_gflops},
                              {"peak_disturbed", r.gflops > r.peak_gflops}});
    std::puts(j.dump(2).c_str());
    return;
  }
  std::printf("enf %s: %s, %s, load average %.2f\n\n", command.c_str(), cpu.c_str(), date.c_str(), load);
  std::printf(
      "| system | task | structures | seconds | structures/s | NFE / structure | MFLOP / structure | GFLOP/s "
      "| %% of GEMM peak | GEMM peak GFLOP/s | threads | precision |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
  for (const auto& r : rows)
    std::printf("| %s | %s | %d | %.4g | %.4g | %.1f | %.2f | %.2f | %s | %.1f | %d | %s |\n", r.system.c_str(),
                r.task.c_str(), r.structures, r.seconds, r.structures / r.seconds, r.nfe_per_structure,
                r.flop_per_structure * 1e-6, r.gflops, percent_of_peak(r.gflops / r.peak_gflops).c_str(), r.peak_gflops,
                r.threads, r.precision.c_str());
  // Each system's model (with --system all, particles are random, QM9 pretrained).
  std::printf("\n");
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (i == 0 || rows[i].system != rows[i - 1].system)
      std::printf("Model of %s: %s.\n", rows[i].system.c_str(), rows[i].model.c_str());
  if (!rows.empty()) std::printf("Seconds are the median of %d run(s).\n", rows[0].repeats);
}

// Parses the options both commands share and runs `row` (score_row or
// sample_row in the precision asked) for each model.
template <class Rows>
int run_bench_inference(const CommandSpec& spec, const std::vector<std::string>& args, Rows rows_of) {
  ParsedOptions opt(spec, args);
  if (opt.help()) {
    std::fputs(usage(spec).c_str(), stdout);
    return 0;
  }
  const Runtime rt = parse_runtime(opt);
  const std::string format = opt.choice("format", {"table", "json"});
  const CnfOptions o = parse_solver(opt);
  const int structures = opt.integer("structures"), repeats = opt.integer("repeat");
  std::vector<BenchRow> rows;
  for (const BenchModel& m : bench_models(opt, rt.seed)) {
    std::fprintf(stderr, "enf %s: %s, %s\n", spec.name.c_str(), m.sys.name.c_str(), m.description.c_str());
    for (BenchRow& r : rows_of(m, o, structures, repeats, rt)) rows.push_back(std::move(r));
  }
  print_rows(rows, format, spec.name);
  return 0;
}

}  // namespace

int run_bench_score(const std::vector<std::string>& args) {
  return run_bench_inference(kScoreSpec, args,
                             [](const BenchModel& m, const CnfOptions& o, int M, int R, const Runtime& rt) {
                               return rt.single() ? score_rows<float>(m, o, M, R, rt)
                                                  : score_rows<double>(m, o, M, R, rt);
                             });
}

int run_bench_sample(const std::vector<std::string>& args) {
  return run_bench_inference(
      kSampleSpec, args, [](const BenchModel& m, const CnfOptions& o, int K, int R, const Runtime& rt) {
        CnfOptions dopri5 = o, rk4 = o;
        dopri5.solver.method = ode::Method::Dopri5;
        rk4.solver.method = ode::Method::RK4;
        std::vector<BenchRow> rows;
        for (const CnfOptions& c : {dopri5, rk4})
          rows.push_back(rt.single() ? sample_row<float>(m, c, K, R, rt) : sample_row<double>(m, c, K, R, rt));
        // Particles: dopri5 also one sample at a time, the path lockstep replaced.
        if (!m.molecule)
          rows.push_back(rt.single() ? sample_row<float>(m, dopri5, K, R, rt, true)
                                     : sample_row<double>(m, dopri5, K, R, rt, true));
        return rows;
      });
}

}  // namespace enf::cli
