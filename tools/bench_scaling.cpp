// enf bench scaling: the curves of issue 13 — time per field evaluation and
// per sample against the number of atoms, time per sample against the batch
// size, and the memory of the two gradient methods against the number of
// solver steps — as tables, one JSON file and SVG plots.
//
// Memory is measured, not computed: the process's peak resident set (Linux's
// VmHWM) is reset before each gradient (/proc/self/clear_refs, after
// malloc_trim gives freed heap back) and read after it, so a curve shows what
// the gradient itself made resident. Where the kernel refuses the reset the
// memory columns are empty and the output says so.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "datasets/file_io.hpp"
#include "egnn/vector_field.hpp"
#include "engine/cnf.hpp"
#include "engine/flow.hpp"
#include "engine/initialization.hpp"
#include "tools/bench_common.hpp"
#include "tools/bench_step.hpp"
#include "tools/commands.hpp"
#include "tools/option_groups.hpp"
#include "tools/options.hpp"
#include "tools/outputs.hpp"
#include "tools/svg_plot.hpp"

namespace enf::cli {

namespace {

const CommandSpec kSpec{
    "bench scaling",
    "Scaling curves: time per evaluation and per sample vs atoms and vs batch; gradient memory vs steps.",
    "Three parts (--parts), each a table on stdout, rows in DIR/scaling.json and SVG plots in\n"
    "--out DIR (log-log axes):\n"
    "  atoms   particles in 3-D with N from --atoms, a randomly initialised model of the E-NF\n"
    "          configuration (H=32, L=3, attention, tanh): sampling (dopri5 1e-4, the lockstep\n"
    "          groups of enf sample) and a maximum-likelihood training step (Hutchinson,\n"
    "          adjoint, dopri5 1e-4 both ways) of random centred structures, each timed as\n"
    "          seconds per sample and milliseconds per field evaluation (wall time x threads\n"
    "          / NFE: one thread's time per evaluation). atoms_per_nfe.svg, atoms_per_sample.svg.\n"
    "  batch   DW4 (4 particles, 2-D) and LJ13 (13, 3-D), the same two tasks for each batch\n"
    "          size of --batches: seconds per sample. batch_per_sample.svg.\n"
    "  memory  one LJ13 training sample's gradient with rk4 in K equal steps for each K of\n"
    "          --steps, by the continuous adjoint and by backprop through the steps\n"
    "          (--gradient discrete, which records every step's state): the peak resident\n"
    "          memory the gradient added (Linux VmHWM, reset before each) and its seconds.\n"
    "          memory_vs_steps.svg.\n"
    "A random model is nearly flat, so dopri5 takes its fewest steps (about 14-20 NFE); the\n"
    "curves show how the cost of a step scales, not how many steps a trained model takes.\n"
    "Every timed point runs --repeat times (the median is kept), with the GEMM peak measured\n"
    "right before and after it, as bench step/score/sample do.",
    with_groups({{"parts", "LIST", "atoms,batch,memory", "comma-separated subset of atoms, batch, memory"},
                 {"atoms", "LIST", "4,13,19,29,55,100", "particle counts of the atoms part (2 .. 400 each)"},
                 {"batches", "LIST", "1,2,5,10,20,50,100,200,500,1000", "batch sizes of the batch part (1 .. 100000)"},
                 {"steps", "LIST", "10,30,100,300,1000,3000", "rk4 step counts of the memory part (1 .. 1000000)"},
                 {"repeat", "R", "3", "timed runs per point (the median is kept)", "1", "1000"},
                 {"out", "DIR", "bench_scaling", "directory of scaling.json and the SVG plots"},
                 {"format", "table|json", "table", "output format on stdout"}},
                {{runtime_group(), {}, {{kPrecision, "float", "scalar type of the field"}, {kSeed, "0", "seed"}}}})};

// A comma-separated list of integers in [lo, hi], for --option.
std::vector<int> int_list(const ParsedOptions& opt, const std::string& option, int lo, int hi) {
  std::vector<int> out;
  std::stringstream in(opt.str(option));
  for (std::string item; std::getline(in, item, ',');) {
    std::size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < lo || v > hi)
      throw UsageError("--" + option + ": '" + item + "' is not an integer in " + std::to_string(lo) + " .. " +
                       std::to_string(hi) + ", comma-separated)");
    out.push_back(v);
  }
  if (out.empty()) throw UsageError("--" + option + ": empty list");
  return out;
}

// A randomly initialised E-NF model of n particles in dim dimensions.
struct Model {
  int n, dim;
  FieldConfig field;
  Parameters<double> params;
};

Model random_model(int n, int dim, std::uint64_t seed) {
  const FieldConfig field = bench_field_config(dim);
  Parameters<double> p(field_layout(field));
  Rng rng(seed);
  initialize_egnn(field.egnn(), p, rng);
  return {n, dim, field, std::move(p)};
}

// B structures of n particles: Gaussian positions (BatchFlow centres them).
std::vector<double> random_structures(int B, int n, int dim, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<double> x(std::size_t(B) * n * dim);
  for (double& v : x) v = rng.normal();
  return x;
}

// One measured point of the atoms or batch part.
struct Point {
  std::string system, task;
  int atoms = 0, edges = 0, batch = 0, threads = 0;
  double seconds = 0, nfe_per_sample = 0, gflops = 0, peak_gflops = 0;
  double per_sample() const { return seconds / batch; }
  // One thread's wall time per evaluation: the threads evaluate in parallel.
  double ms_per_nfe() const { return seconds * threads / (nfe_per_sample * batch) * 1e3; }
};

struct Work {
  long nfe = 0;
  double flops = 0;
};

// Times task (returns its Work) `repeats` times, each bracketed by the GEMM
// peak (median_run); keeps the median run.
template <class T, class Task>
Point time_point(const std::string& system, const std::string& name, int n, int B, int repeats, int threads,
                 Task task) {
  const auto mid = median_run<T>(repeats, threads, task, [](int, const TimedRun<Work>&) {});
  Point p{system, name, n, n * (n - 1), B, threads, mid.seconds, double(mid.work.nfe) / B,
          mid.work.flops / mid.seconds * 1e-9, mid.peak_gflops};
  std::fprintf(stderr, "  %-5s %-26s N=%-3d B=%-4d %.4g s, %.4g s/sample, NFE %.1f/sample, %.1f GFLOP/s\n",
               system.c_str(), name.c_str(), n, B, p.seconds, p.per_sample(), p.nfe_per_sample, p.gflops);
  return p;
}

// Sampling, dopri5 1e-4, as enf sample draws (lockstep groups), B samples.
template <class T>
Point sampling_point(const std::string& system, const Model& m, int B, int repeats, const Runtime& rt) {
  const Parameters<T> p = m.params.template cast<T>();
  VectorField<T> field(m.field, p.layout);
  CnfOptions o = bench_cnf_options(GradientMode::Adjoint);
  Cnf<VectorField<T>> cnf(field, o);
  BatchFlow<VectorField<T>> flow(cnf, rt.threads);
  const double per_eval = evaluation_flops(field, m.n, FieldWork::Velocity);
  return time_point<T>(system, "sampling, dopri5 1e-4", m.n, B, repeats, flow.threads(), [&](int r) {
    Work w;
    flow.sample(p.values.data(), B, m.n, rt.seed + std::uint64_t(r), &w.nfe);
    w.flops = double(w.nfe) * per_eval;
    return w;
  });
}

// One maximum-likelihood training step's loss and gradient over B random structures.
template <class T>
Point training_point(const std::string& system, const Model& m, int B, int repeats, const Runtime& rt) {
  const Parameters<T> p = m.params.template cast<T>();
  VectorField<T> field(m.field, p.layout);
  Cnf<VectorField<T>> cnf(field, bench_cnf_options(GradientMode::Adjoint));
  BatchFlow<VectorField<T>> flow(cnf, rt.threads);
  const std::vector<double> x = random_structures(B, m.n, m.dim, rt.seed);
  std::vector<double> grad(p.values.size());
  return time_point<T>(system, "training step, adjoint", m.n, B, repeats, flow.threads(), [&](int r) {
    const BatchLoss l = flow.loss_and_gradient(p.values.data(), x, B, m.n, rt.seed + std::uint64_t(r), grad.data());
    return Work{l.nfe_forward + l.nfe_backward,
                training_step_flops(field, m.n, GradientMode::Adjoint, double(l.nfe_forward), double(l.nfe_backward))};
  });
}

// Samples per point of the atoms part: about the same work per point.
int sampling_batch(int n) { return std::clamp(20000 / (n * (n - 1)), 4, 200); }
int training_batch(int n) { return std::clamp(4000 / (n * (n - 1)), 2, 100); }

// ---- memory

// A field of /proc/self/status in kB, or -1.
long status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(line.find(':') + 1));
  return -1;
}

// An AddressSanitizer build keeps freed memory in its quarantine, so the
// resident set says nothing of what a gradient needs: not measured there.
#if defined(__SANITIZE_ADDRESS__)
constexpr const char* kUnmeasurable = "not measured: AddressSanitizer's quarantine holds freed memory";
#else
constexpr const char* kUnmeasurable = nullptr;
#endif

// Resets the peak resident set to the current one; false where the kernel
// refuses or the build makes the figure meaningless (kUnmeasurable).
bool reset_peak_rss() {
  if (kUnmeasurable) return false;
  malloc_trim(0);  // freed heap back to the kernel, so a later gradient cannot reuse a former one's pages
  std::ofstream c("/proc/self/clear_refs");
  c << "5";
  c.flush();
  return bool(c) && status_kb("VmHWM:") >= 0;
}

struct MemoryPoint {
  std::string gradient;
  int steps = 0;
  double seconds = 0;
  long nfe = 0;
  long peak_kib = -1;       // resident memory the gradient added at its peak; -1: not measurable
  double recorded_kib = 0;  // the states the discrete gradient records: steps x state x 8 bytes
};

// Each repeat is one gradient with a fresh scratch: what a gradient of this
// many steps needs, its workspaces and its record of the steps included.
template <class T>
MemoryPoint memory_point(const Model& m, GradientMode mode, int steps, int repeats, const Runtime& rt) {
  const Parameters<T> p = m.params.template cast<T>();
  VectorField<T> field(m.field, p.layout);
  CnfOptions o = bench_cnf_options(mode);
  o.solver.method = ode::Method::RK4;
  o.solver.fixed_step = 1.0 / steps;
  o.adjoint_solver = o.solver;
  Cnf<VectorField<T>> cnf(field, o);
  std::vector<double> x = random_structures(1, m.n, m.dim, rt.seed);
  remove_centre_of_mass(x, 1, m.n, m.dim, m.dim);
  const std::vector<double> eps = draw_noise(o, m.n * m.dim, rt.seed, 0);
  std::vector<double> grad(p.values.size());
  MemoryPoint out{mode == GradientMode::Adjoint ? "adjoint" : "discrete", steps};
  out.recorded_kib = mode == GradientMode::Discrete ? double(steps) * m.n * m.dim * 8 / 1024 : 0;
  std::vector<double> seconds;
  for (int r = 0; r < repeats; ++r) {
    typename Cnf<VectorField<T>>::Scratch s;
    const bool measurable = reset_peak_rss();
    const long before = status_kb("VmRSS:");
    const auto t0 = std::chrono::steady_clock::now();
    const AdjointResult g = cnf.gradient(p.values.data(), x, m.n, eps, 1.0, s, grad.data());
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (!g.forward.solve.ok()) throw std::runtime_error("bench scaling: the memory part's forward solve failed");
    out.nfe = g.forward.solve.stats.nfe + g.backward.stats.nfe;
    if (measurable) out.peak_kib = std::max(out.peak_kib, std::max(0L, status_kb("VmHWM:") - before));
  }
  out.seconds = bench_median(seconds);
  std::fprintf(stderr, "  memory %-8s rk4 %5d steps: %.3f s, NFE %ld, peak +%ld KiB\n", out.gradient.c_str(), steps,
               out.seconds, out.nfe, out.peak_kib);
  return out;
}

// ---- output

nlohmann::json to_json(const Point& p) {
  return {{"system", p.system},   {"task", p.task},
          {"atoms", p.atoms},     {"edges", p.edges},
          {"batch", p.batch},     {"threads", p.threads},
          {"seconds", p.seconds}, {"seconds_per_sample", p.per_sample()},
          {"nfe_per_sample", p.nfe_per_sample}, {"ms_per_nfe_per_thread", p.ms_per_nfe()},
          {"gflops", p.gflops},   {"peak_gflops", p.peak_gflops}};
}

void print_points(const std::string& title, const std::vector<Point>& points) {
  std::printf("\n%s\n\n", title.c_str());
  std::printf("| system | task | atoms | batch | seconds | s / sample | NFE / sample | ms / NFE (one thread) | GFLOP/s | "
              "%% of GEMM peak |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Point& p : points)
    std::printf("| %s | %s | %d | %d | %.4g | %.4g | %.1f | %.4g | %.1f | %s |\n", p.system.c_str(), p.task.c_str(),
                p.atoms, p.batch, p.seconds, p.per_sample(), p.nfe_per_sample, p.ms_per_nfe(), p.gflops,
                percent_of_peak(p.gflops / p.peak_gflops).c_str());
}

// One series per (system, task) of points, y = value(point), x = key(point).
template <class X, class Y>
std::vector<Series> series_of(const std::vector<Point>& points, X key, Y value) {
  std::vector<Series> out;
  for (const Point& p : points) {
    const std::string label = p.system + ": " + p.task;
    auto it = std::find_if(out.begin(), out.end(), [&](const Series& s) { return s.label == label; });
    if (it == out.end()) it = out.insert(out.end(), Series{label, {}, {}});
    it->x.push_back(key(p));
    it->values.push_back(value(p));
  }
  return out;
}

template <class T>
int run(const ParsedOptions& opt, const Runtime& rt) {
  std::vector<std::string> parts;
  {
    std::stringstream in(opt.str("parts"));
    for (std::string p; std::getline(in, p, ',');) {
      if (p != "atoms" && p != "batch" && p != "memory")
        throw UsageError("--parts: unknown part '" + p + "' (use atoms, batch and/or memory, comma-separated)");
      parts.push_back(p);
    }
  }
  const auto wants = [&](const char* part) { return std::find(parts.begin(), parts.end(), part) != parts.end(); };
  const std::vector<int> atoms = int_list(opt, "atoms", 2, 400), batches = int_list(opt, "batches", 1, 100000),
                         steps = int_list(opt, "steps", 1, 1000000);
  const int repeats = opt.integer("repeat");
  const std::string dir = opt.str("out");
  make_output_directory("--out", dir);
  const std::filesystem::path out(dir);
  const std::string precision = sizeof(T) == 4 ? "float" : "double";

  nlohmann::json j{{"command", "enf bench scaling " + opt.str("parts")},
                   {"cpu", cpu_model_name()},
                   {"date", utc_now()},
                   {"load_average_1min", load_average()},
                   {"precision", precision},
                   {"model", "randomly initialised E-NF configuration (H=32, L=3)"}};
  std::vector<Point> by_atoms, by_batch;
  if (wants("atoms")) {
    std::fprintf(stderr, "enf bench scaling: time against atoms\n");
    for (int n : atoms) {
      const Model m = random_model(n, 3, rt.seed);
      by_atoms.push_back(sampling_point<T>("3-D", m, sampling_batch(n), repeats, rt));
      by_atoms.push_back(training_point<T>("3-D", m, training_batch(n), repeats, rt));
    }
    for (const Point& p : by_atoms) j["atoms"].push_back(to_json(p));
    const auto N = [](const Point& p) { return double(p.atoms); };
    write_file_atomically((out / "atoms_per_nfe.svg").string(),
                          svg_lines("time per field evaluation vs atoms (" + precision + ")", "atoms N",
                                    "ms per evaluation, one thread",
                                    series_of(by_atoms, N, [](const Point& p) { return p.ms_per_nfe(); }),
                                    {true, true, true}),
                          "plot");
    write_file_atomically((out / "atoms_per_sample.svg").string(),
                          svg_lines("time per sample vs atoms (" + precision + ")", "atoms N", "seconds per sample",
                                    series_of(by_atoms, N, [](const Point& p) { return p.per_sample(); }),
                                    {true, true, true}),
                          "plot");
  }
  if (wants("batch")) {
    std::fprintf(stderr, "enf bench scaling: time against batch size\n");
    for (const auto& [name, n, dim] : {std::tuple<const char*, int, int>{"dw4", 4, 2}, {"lj13", 13, 3}}) {
      const Model m = random_model(n, dim, rt.seed);
      for (int B : batches) by_batch.push_back(sampling_point<T>(name, m, B, repeats, rt));
      for (int B : batches) by_batch.push_back(training_point<T>(name, m, B, repeats, rt));
    }
    for (const Point& p : by_batch) j["batch"].push_back(to_json(p));
    write_file_atomically((out / "batch_per_sample.svg").string(),
                          svg_lines("time per sample vs batch (" + precision + ")", "batch size", "seconds per sample",
                                    series_of(
                                        by_batch, [](const Point& p) { return double(p.batch); },
                                        [](const Point& p) { return p.per_sample(); }),
                                    {true, true, true}),
                          "plot");
  }
  std::vector<MemoryPoint> memory;
  if (wants("memory")) {
    std::fprintf(stderr, "enf bench scaling: gradient memory against steps (LJ13, rk4)\n");
    const Model m = random_model(13, 3, rt.seed);
    // Warm-up, not kept: the process's one-time allocations (thread pools, tables)
    // would otherwise count as the first point's.
    for (GradientMode mode : {GradientMode::Adjoint, GradientMode::Discrete}) memory_point<T>(m, mode, 4, 1, rt);
    for (GradientMode mode : {GradientMode::Adjoint, GradientMode::Discrete})
      for (int K : steps) memory.push_back(memory_point<T>(m, mode, K, repeats, rt));
    if (kUnmeasurable) j["memory_note"] = kUnmeasurable;
    const std::string state = std::to_string(m.n * m.dim);
    std::vector<Series> peak, recorded{{"discrete: states recorded (steps x " + state + " x 8 bytes)", {}, {}}};
    for (const MemoryPoint& p : memory) {
      j["memory"].push_back({{"gradient", p.gradient},
                             {"steps", p.steps},
                             {"nfe", p.nfe},
                             {"seconds", p.seconds},
                             {"peak_kib", p.peak_kib < 0 ? nlohmann::json() : nlohmann::json(p.peak_kib)},
                             {"recorded_kib", p.recorded_kib}});
      const std::string label = p.gradient + ": peak resident memory added";
      auto it = std::find_if(peak.begin(), peak.end(), [&](const Series& s) { return s.label == label; });
      if (it == peak.end()) it = peak.insert(peak.end(), Series{label, {}, {}});
      it->x.push_back(p.steps);
      // A log axis cannot show 0: a gradient that added nothing measurable is drawn at 1 KiB.
      it->values.push_back(p.peak_kib < 0 ? NAN : std::max(1.0, double(p.peak_kib)));
      if (p.gradient == "discrete") recorded[0].x.push_back(p.steps), recorded[0].values.push_back(p.recorded_kib);
    }
    peak.push_back(recorded[0]);
    write_file_atomically((out / "memory_vs_steps.svg").string(),
                          svg_lines("LJ13 gradient memory vs rk4 steps (" + precision + ")", "rk4 steps",
                                    "KiB", peak, {true, true, true}),
                          "plot");
  }
  write_file_atomically((out / "scaling.json").string(), j.dump(2) + "\n", "results");

  if (opt.str("format") == "json") {
    std::puts(j.dump(2).c_str());
    return 0;
  }
  std::printf("enf bench scaling: %s, %s, load average %.2f, %s, random E-NF models (H=32, L=3)\n",
              j["cpu"].get<std::string>().c_str(), j["date"].get<std::string>().c_str(), load_average(),
              precision.c_str());
  if (!by_atoms.empty()) print_points("Against atoms (particles in 3-D):", by_atoms);
  if (!by_batch.empty()) print_points("Against batch size:", by_batch);
  if (!memory.empty()) {
    std::printf("\nGradient memory against rk4 steps (LJ13, one sample):\n\n"
                "| gradient | steps | NFE | seconds | peak resident memory added (KiB) | states recorded (KiB) |\n"
                "|---|---:|---:|---:|---:|---:|\n");
    for (const MemoryPoint& p : memory)
      std::printf("| %s | %d | %ld | %.4g | %s | %.1f |\n", p.gradient.c_str(), p.steps, p.nfe, p.seconds,
                  p.peak_kib < 0 ? "not measurable here" : std::to_string(p.peak_kib).c_str(), p.recorded_kib);
  }
  std::printf("\nSeconds are the median of %d run(s). Plots and scaling.json in %s/.\n", repeats, dir.c_str());
  return 0;
}

}  // namespace

int run_bench_scaling(const std::vector<std::string>& args) {
  ParsedOptions opt(kSpec, args);
  if (opt.help()) {
    std::fputs(usage(kSpec).c_str(), stdout);
    return 0;
  }
  const Runtime rt = parse_runtime(opt);
  opt.choice("format", {"table", "json"});
  return rt.single() ? run<float>(opt, rt) : run<double>(opt, rt);
}

}  // namespace enf::cli
