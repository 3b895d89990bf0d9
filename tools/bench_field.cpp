// enf bench field: time per evaluation of the vector field (1. velocity,
// 2. velocity + one tangent J·ε, 3. the adjoint's reverse pass), the FLOPs
// each performs (counted analytically from the layer shapes), the achieved
// rate, and the machine's matrix-multiply peak, measured interleaved with
// each operation (tools/bench_timing.hpp) so that the ratio is fair. A batch
// is evaluated as production evaluates it: sample by sample, over threads.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "egnn/trace.hpp"
#include "egnn/vector_field.hpp"
#include "engine/cnf.hpp"
#include "engine/initialization.hpp"
#include "engine/sample_batch.hpp"
#include "tools/bench_common.hpp"
#include "tools/bench_timing.hpp"
#include "tools/commands.hpp"
#include "tools/option_groups.hpp"
#include "tools/options.hpp"

namespace enf::cli {

namespace {

const CommandSpec kSpec{
    "bench field",
    "Time the EGNN vector field and its derivatives, with FLOP rates.",
    "Cases: DW4 (batch 100, 4 particles in 2-D, H=32, L=3), LJ13 (batch 100, 13 particles\n"
    "in 3-D, H=32, L=3), LJ55 (batch 100, 55 particles in 3-D, H=32, L=3), QM9 (batch 128\n"
    "molecules of 19-29 atoms, F=6, H=64, L=6), each batch run as training and scoring run\n"
    "it: sample by sample over the threads, each at its own size. Operations: 'f' the\n"
    "velocity; 'f+Jv' the velocity and one tangent (Hutchinson); 'vjp' the adjoint's\n"
    "vector-Jacobian product with its parameter gradient (forward with one tangent, then\n"
    "the reverse pass).\n"
    "Then the exact trace of one sample (its first; QM9: 19 atoms) on one thread, as a\n"
    "likelihood evaluation runs it: all N·C Jacobian diagonal entries by forward-mode\n"
    "tangents in chunks, beside one f of the same sample, and its cost per direction in\n"
    "units of that f (the ideal is about one J·v). FLOPs are counted\n"
    "analytically (2 per multiply-add of the layer shapes); 'peak' is a large\n"
    "matrix product run on every thread at once, measured alternately with each operation\n"
    "(medians of each), so that a loaded machine slows both alike; a rate above that peak\n"
    "is marked 'peak disturbed'.",
    with_groups({{"format", "table|json", "table", "output format on stdout"},
                 {"min-time", "SECONDS", "1.0", "minimum measuring time per operation", "0.01", "600"},
                 {"cases", "LIST", "dw4,lj13,lj55,qm9", "comma-separated subset of dw4, lj13, lj55, qm9"}},
                {{runtime_group(),
                  {},
                  {{kPrecision, "both", "scalar type of the numeric core", "float|double|both"},
                   {kSeed, "0", "seed of the random inputs and parameters"}}}})};

// The cases --cases may name.
const char* const kCaseNames[] = {"dw4", "lj13", "lj55", "qm9"};

bool known_case(const std::string& name) {
  for (const char* c : kCaseNames)
    if (name == c) return true;
  return false;
}

struct Case {
  std::string name;
  FieldConfig cfg;
  int batch;
  std::vector<int> sizes;  // nodes per sample
};

std::vector<Case> make_cases(const std::string& list, Rng& rng) {
  std::vector<Case> out;
  std::set<std::string> names;
  std::stringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    if (!known_case(name))
      throw UsageError("--cases: unknown case '" + name + "' (use dw4, lj13, lj55 and/or qm9, comma-separated)");
    names.insert(name);
  }
  auto want = [&](const std::string& n) { return names.count(n) != 0; };
  FieldConfig particle;
  particle.hidden = 32;
  particle.layers = 3;
  if (want("dw4")) {
    FieldConfig c = particle;
    c.dim = 2;
    out.push_back({"dw4", c, 100, std::vector<int>(100, 4)});
  }
  if (want("lj13")) {
    FieldConfig c = particle;
    c.dim = 3;
    out.push_back({"lj13", c, 100, std::vector<int>(100, 13)});
  }
  if (want("lj55")) {
    FieldConfig c = particle;
    c.dim = 3;
    out.push_back({"lj55", c, 100, std::vector<int>(100, 55)});
  }
  if (want("qm9")) {
    FieldConfig c;
    c.dim = 3;
    c.features = 6;
    c.hidden = 64;
    c.layers = 6;
    std::vector<int> sizes(128);
    for (int& s : sizes) s = 19 + int(rng.uniform() * 11);
    sizes[0] = 19;  // the exact-trace sample: QM9's typical size
    out.push_back({"qm9", c, 128, sizes});
  }
  if (out.empty()) throw UsageError("--cases selects nothing; use dw4, lj13, lj55 and/or qm9");
  return out;
}

struct Row {
  std::string case_name, precision, op;
  double ms, gflop, gflops, peak;
};

// The exact trace of one sample on one thread, and one f of it.
struct TraceRow {
  std::string case_name, precision;
  int nodes, directions, chunk;
  double f_ms, trace_ms, gflops, peak;
};

template <class T>
void bench_trace(const Case& c, double min_time, std::uint64_t seed, std::vector<TraceRow>& rows) {
  GemmPeak<T> peak(1);
  const ParameterLayout layout = field_layout(c.cfg);
  Parameters<T> params(layout);
  Rng rng(seed);
  initialize_egnn(c.cfg.egnn(), params, rng);
  VectorField<T> field(c.cfg, layout);
  const int n = c.sizes[0], C = c.cfg.channels(), dimz = n * C, K = trace_chunk_size(dimz, n);
  std::vector<T> z(dimz), f(dimz);
  for (int i = 0; i < n; ++i)
    for (int ch = 0; ch < C; ++ch) z[i * C + ch] = T(rng.normal() * (ch < c.cfg.dim ? 1.5 : 1.0));
  typename VectorField<T>::Workspace ws;
  TraceScratch<T> scratch;
  const T t = T(0.5);
  const T* p = params.values.data();
  const InterleavedTimes tf =
      time_interleaved([&] { field.forward(p, z.data(), n, t, nullptr, ws, f.data(), nullptr); }, peak, min_time);
  T sink = 0;
  const InterleavedTimes tt =
      time_interleaved([&] { sink += exact_trace(field, p, z.data(), n, t, ws, scratch, f.data()); }, peak, min_time);
  const double flops = evaluation_flops(field, n, FieldWork::ExactTrace);
  const char* prec = sizeof(T) == 4 ? "float" : "double";
  rows.push_back({c.name, prec, n, dimz, K, tf.kernel * 1e3, tt.kernel * 1e3, flops / tt.kernel * 1e-9,
                  peak.gflops(tt.peak)});
  std::fprintf(stderr, "  %-5s %-6s exact trace %9.3f ms (%d directions), f %.4f ms%s\n", c.name.c_str(), prec,
               tt.kernel * 1e3, dimz, tf.kernel * 1e3, std::isfinite(double(sink)) ? "" : " (non-finite trace)");
}

// The batch as production evaluates it: sample by sample over the threads
// (SampleBatch), each at its own size through VectorField, with one
// workspace per thread (Cnf::Scratch).
template <class T>
void bench_case(const Case& c, int threads, double min_time, std::uint64_t seed, std::vector<Row>& rows) {
  GemmPeak<T> peak(threads);
  const ParameterLayout layout = field_layout(c.cfg);
  Parameters<T> params(layout);
  Rng rng(seed);
  initialize_egnn(c.cfg.egnn(), params, rng);
  VectorField<T> field(c.cfg, layout);
  const int C = c.cfg.channels(), B = c.batch;
  // Sample b's state z, Hutchinson direction ε (one row) and adjoint cotangent a.
  std::vector<std::vector<T>> z(B), a(B);
  std::vector<detail::Mat<T>> eps(B);
  for (int b = 0; b < B; ++b) {
    const int n = c.sizes[b];
    z[b].resize(std::size_t(n) * C);
    a[b].resize(z[b].size());
    eps[b].resize(1, n * C);
    for (int i = 0; i < n * C; ++i) {
      z[b][i] = T(rng.normal() * (i % C < c.cfg.dim ? 1.5 : 1.0));
      eps[b](0, i) = T(rng.rademacher());
      a[b][i] = T(rng.normal());
    }
  }
  using Scratch = typename Cnf<VectorField<T>>::Scratch;
  SampleBatch<Scratch> batch(threads);
  std::vector<T> est(B);
  const T t = T(0.5);
  const T* p = params.values.data();
  const char* prec = sizeof(T) == 4 ? "float" : "double";
  // Each operation, one_sample(b, n, scratch) over the batch, timed
  // alternately with the peak's product; flops(n): one sample's.
  auto add = [&](const char* op, auto flops, auto one_sample) {
    double total = 0;
    for (int n : c.sizes) total += flops(n);
    const InterleavedTimes tk = time_interleaved([&] {
      batch.for_each(B, [&](int b, Scratch& s) {
        s.f.resize(z[b].size());
        one_sample(b, c.sizes[b], s);
      });
    }, peak, min_time);
    const double sec = tk.kernel, peak_gflops = peak.gflops(tk.peak);
    rows.push_back({c.name, prec, op, sec * 1e3, total * 1e-9, total / sec * 1e-9, peak_gflops});
    std::fprintf(stderr, "  %-5s %-6s %-5s %9.3f ms   (peak alongside: %.1f GFLOP/s)\n", c.name.c_str(), prec, op,
                 sec * 1e3, peak_gflops);
  };
  auto work = [&](FieldWork w) { return [&field, w](int n) { return evaluation_flops(field, n, w); }; };
  add("f", work(FieldWork::Velocity), [&](int b, int n, Scratch& s) {
    field.forward(p, z[b].data(), n, t, nullptr, s.ws, s.f.data(), nullptr);
  });
  add("f+Jv", work(FieldWork::Hutchinson), [&](int b, int n, Scratch& s) {
    field.forward(p, z[b].data(), n, t, &eps[b], s.ws, s.f.data(), &s.JV);
    est[b] = eps[b].row(0).dot(s.JV.row(0));
  });
  // The adjoint's VJP with the Hutchinson trace as Cnf::augmented_vjp runs it
  // (a_ℓ = 1): the parameter gradient into the thread's buffer, zeroed first.
  auto vjp_flops = [&](int n) {
    return evaluation_flops(field, n, FieldWork::Hutchinson) + 2 * field.reverse_madds(n, 1);
  };
  add("vjp", vjp_flops, [&](int b, int n, Scratch& s) {
    s.zbar.resize(z[b].size());
    s.grad.assign(field.parameter_count(), T(0));
    field.forward(p, z[b].data(), n, t, &eps[b], s.ws, s.f.data(), &s.JV);
    s.JVbar = eps[b];
    field.reverse(p, s.ws, a[b].data(), &s.JVbar, s.zbar.data(), s.grad.data());
  });
}

}  // namespace

int run_bench_field(const std::vector<std::string>& args) {
  ParsedOptions opt(kSpec, args);
  if (opt.help()) {
    std::fputs(usage(kSpec).c_str(), stdout);
    return 0;
  }
  const std::string format = opt.choice("format", {"table", "json"});
  const Runtime rt = parse_runtime(opt);
  const std::string precision = rt.precision;
  const int threads = batch_threads(rt.threads);
  const double min_time = opt.real("min-time");
  const std::uint64_t seed = rt.seed;
  Rng rng(seed);
  const auto cases = make_cases(opt.str("cases"), rng);

  std::vector<Row> rows;
  std::vector<TraceRow> traces;
  std::fprintf(stderr, "enf bench field: %d thread(s)\n", threads);
  for (const auto& c : cases) {
    if (precision != "double") bench_case<float>(c, threads, min_time, seed, rows);
    if (precision != "float") bench_case<double>(c, threads, min_time, seed, rows);
  }
  for (const auto& c : cases) {
    if (precision != "double") bench_trace<float>(c, min_time, seed, traces);
    if (precision != "float") bench_trace<double>(c, min_time, seed, traces);
  }
  // The peak over the run, per precision: the median of the rows' peaks.
  auto run_peak = [&](const char* prec) {
    std::vector<double> v;
    for (const auto& r : rows)
      if (r.precision == prec) v.push_back(r.peak);
    return bench_median(v);
  };
  const double peak32 = run_peak("float"), peak64 = run_peak("double");
  bool disturbed = false;
  for (const auto& r : rows) disturbed = disturbed || r.gflops > r.peak;

  if (format == "json") {
    nlohmann::json j;
    j["threads"] = threads;
    j["peak_gflops"] = {{"float", peak32}, {"double", peak64}};
    for (const auto& r : rows) {
      nlohmann::json e{{"case", r.case_name}, {"precision", r.precision}, {"op", r.op},
                       {"ms_per_batch", r.ms}, {"gflop", r.gflop}, {"gflops", r.gflops},
                       {"peak_gflops", r.peak}, {"fraction_of_peak", r.gflops / r.peak},
                       {"peak_disturbed", r.gflops > r.peak}};
      j["results"].push_back(e);
    }
    for (const auto& r : traces)
      j["exact_trace"].push_back({{"case", r.case_name}, {"precision", r.precision}, {"nodes", r.nodes},
                                  {"directions", r.directions}, {"chunk", r.chunk}, {"f_ms", r.f_ms},
                                  {"trace_ms", r.trace_ms}, {"trace_over_f", r.trace_ms / r.f_ms},
                                  {"per_direction_over_f", r.trace_ms / r.f_ms / r.directions},
                                  {"gflops", r.gflops}, {"peak_gflops_one_thread", r.peak},
                                  {"fraction_of_peak", r.gflops / r.peak}});
    std::puts(j.dump(2).c_str());
  } else {
    std::printf("| case | precision | op | ms / batch | GFLOP | GFLOP/s | %% of GEMM peak |\n");
    std::printf("|---|---|---|---:|---:|---:|---:|\n");
    for (const auto& r : rows) {
      std::printf("| %s | %s | %s | %.3f | %.4f | %.1f | %s |\n", r.case_name.c_str(), r.precision.c_str(),
                  r.op.c_str(), r.ms, r.gflop, r.gflops, percent_of_peak(r.gflops / r.peak).c_str());
    }
    if (disturbed)
      std::printf("\nA rate above 100%% of the GEMM peak means the peak, measured alongside that operation, was\n"
                  "slowed by other work on the machine: rerun on an idle machine for a meaningful ratio.\n");
    std::printf("\n| case | precision | nodes | directions N·C (chunk) | f, one sample (ms) | exact trace (ms) | "
                "trace / f | per direction / f | GFLOP/s | %% of 1-thread peak |\n");
    std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const auto& r : traces)
      std::printf("| %s | %s | %d | %d (%d) | %.4f | %.3f | %.0f | %.2f | %.1f | %s |\n", r.case_name.c_str(),
                  r.precision.c_str(), r.nodes, r.directions, r.chunk, r.f_ms, r.trace_ms, r.trace_ms / r.f_ms,
                  r.trace_ms / r.f_ms / r.directions, r.gflops, percent_of_peak(r.gflops / r.peak).c_str());
    std::printf("\nGEMM peak (%d threads, median over the operations, each measured alongside it): float %.1f "
                "GFLOP/s, double %.1f GFLOP/s; %s.\n",
                threads, peak32, peak64, cpu_model_name().c_str());
  }
  return 0;
}

}  // namespace enf::cli
