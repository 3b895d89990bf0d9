// enf field: evaluate the vector field on the structures of a data file —
// velocity, exact divergence and a Hutchinson estimate per structure — with
// timings. The main job of tools/quickstart.sh until the flow lands.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "datasets/file_io.hpp"
#include "datasets/particles.hpp"
#include "datasets/systems.hpp"
#include "egnn/trace.hpp"
#include "egnn/vector_field.hpp"
#include "engine/cnf.hpp"
#include "engine/initialization.hpp"
#include "engine/safetensors.hpp"
#include "engine/sample_batch.hpp"
#include "tools/commands.hpp"
#include "tools/option_groups.hpp"
#include "tools/options.hpp"
#include "tools/outputs.hpp"

namespace enf::cli {

namespace {

const CommandSpec kSpec{
    "field",
    "Evaluate the EGNN vector field f(x, t) on every structure of a .npy file.",
    "The file holds one structure per row: [rows, N*D] or [rows, N, D] (DW4: N=4, D=2;\n"
    "LJ13: N=13, D=3). The centre of mass is removed on load. Weights are a fresh\n"
    "initialisation from --seed, or a reference safetensors file (--weights) whose\n"
    "tensors are named <prefix>egnn.* (e.g. a main_dw4_lj13.py model's flow.safetensors\n"
    "with --prefix odefunc.dynamics.). Prints a summary; --out writes per-structure\n"
    "CSV: index, |f|_max, exact divergence, Hutchinson estimate (Rademacher).\n"
    "--data takes a file or a dataset name (dw4:test, lj13:val; 'enf data list').\n"
    "\nexample:\n  enf field --system lj13 --data lj13:test --limit 100",
    with_groups({system_option("dw4", "particle system: sets N, D and the model size (H=32, L=3)", has_energy),
                 {"t", "T", "0.5", "time at which the field is evaluated"},
                 {"weights", "FILE", "", "reference weights (safetensors); empty: initialise from --seed"},
                 {"prefix", "STR", "odefunc.dynamics.", "tensor-name prefix inside --weights"},
                 {"out", "FILE.csv", "", "per-structure results"},
                 force_option()},
                {{data_group(), {}, {{kData, "", "structures (default: the system's test split, dw4:test or lj13:test)"}}},
                 {runtime_group(), {}, {{kSeed, "0", "seed of the initialisation and of the Hutchinson noise"}}}})};

template <class T>
int run(const ParsedOptions& opt) {
  const SystemInfo& sys = parse_system(opt, has_energy);
  const std::string system = sys.name;
  const int N = sys.n, D = sys.dim;
  const Runtime rt = parse_runtime(opt);
  const DataSelection sel = parse_data(opt);
  FieldConfig cfg;
  cfg.dim = D;
  cfg.hidden = 32;
  cfg.layers = 3;
  const ParameterLayout layout = field_layout(cfg);
  Parameters<T> params(layout);
  Rng rng(rt.seed);
  if (opt.str("weights").empty()) {
    initialize_egnn(cfg.egnn(), params, rng);
  } else {
    const std::string path = opt.str("weights"), prefix = opt.str("prefix");
    const SafeTensorFile file = read_safetensors(path);
    for (const auto& info : layout.tensors()) {
      auto it = file.tensors.find(prefix + info.name);
      if (it == file.tensors.end())
        throw std::runtime_error(path + ": no tensor '" + prefix + info.name + "' (check --prefix and --system)");
      if (it->second.data.size() != info.size)
        throw std::runtime_error(path + ": tensor '" + it->first + "' has " + std::to_string(it->second.data.size()) +
                                 " values, the model expects " + std::to_string(info.size));
      for (std::size_t i = 0; i < info.size; ++i) params.values[info.offset + i] = T(it->second.data[i]);
    }
  }

  const std::string data_path = sel.data.empty() ? sys.test.part : sel.data;
  if (!opt.str("out").empty())
    check_output("out", opt.str("out"), {data_path, opt.str("weights")}, opt.flag("force"), "per-structure CSV");
  const Structures data = load_structures(data_path, ParticleSystem{system, N, D}, 0, sel.limit);
  const int B = data.rows;
  std::vector<T> z(data.x.begin(), data.x.end()), eps(z.size()), f(z.size()), div(B), hutch(B);
  for (T& e : eps) e = T(rng.rademacher());

  // Structure by structure over the threads, as production evaluates the field.
  VectorField<T> field(cfg, layout);
  SampleBatch<typename Cnf<VectorField<T>>::Scratch> batch(rt.threads);
  const std::size_t S = std::size_t(N) * D;
  const T t = T(opt.real("t"));
  if (!std::isfinite(t)) throw std::invalid_argument("t is not finite");
  const T* p = params.values.data();
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  batch.for_each(B, [&](int b, auto& s) { field.forward(p, &z[b * S], N, t, nullptr, s.ws, &f[b * S], nullptr); });
  const auto t1 = Clock::now();
  batch.for_each(B, [&](int b, auto& s) { div[b] = exact_trace(field, p, &z[b * S], N, t, s.ws, s.trace, &f[b * S]); });
  const auto t2 = Clock::now();
  batch.for_each(B, [&](int b, auto& s) {
    s.V = Eigen::Map<const detail::Mat<T>>(&eps[b * S], 1, S);
    field.forward(p, &z[b * S], N, t, &s.V, s.ws, &f[b * S], &s.JV);
    hutch[b] = s.V.row(0).dot(s.JV.row(0));
  });
  const auto t3 = Clock::now();
  auto us = [B](auto a, auto b) { return std::chrono::duration<double, std::micro>(b - a).count() / B; };

  double fmax = 0, dmean = 0, hmean = 0, hvar = 0;
  for (T v : f) fmax = std::max(fmax, double(std::abs(v)));
  for (int b = 0; b < B; ++b) {
    dmean += div[b];
    hmean += hutch[b];
  }
  dmean /= B;
  hmean /= B;
  for (int b = 0; b < B; ++b) hvar += (hutch[b] - div[b]) * (hutch[b] - div[b]);
  std::printf("structures            %d (%s, N=%d, D=%d) from %s\n", B, system.c_str(), N, D, data_path.c_str());
  std::printf("weights               %s\n", opt.str("weights").empty() ? "fresh initialisation" : opt.str("weights").c_str());
  std::printf("max |f|               %.6g\n", fmax);
  std::printf("mean exact divergence %.6g\n", dmean);
  std::printf("mean Hutchinson       %.6g  (rms deviation from exact: %.3g)\n", hmean, std::sqrt(hvar / B));
  std::printf("time per structure    f %.2f us, f + exact divergence %.2f us, f + Hutchinson %.2f us (%d threads)\n",
              us(t0, t1), us(t1, t2), us(t2, t3), batch.threads());

  if (!opt.str("out").empty()) {
    const std::string path = opt.str("out");
    std::ostringstream os;
    os << "index,max_abs_f,div_exact,div_hutchinson\n";
    os.precision(17);
    for (int b = 0; b < B; ++b) {
      double m = 0;
      for (int k = 0; k < N * D; ++k) m = std::max(m, double(std::abs(f[std::size_t(b) * N * D + k])));
      os << b << ',' << m << ',' << double(div[b]) << ',' << double(hutch[b]) << '\n';
    }
    write_file_atomically(path, os.str(), "per-structure CSV");
    std::printf("per-structure results %s\n", path.c_str());
  }
  return 0;
}

}  // namespace

int run_field(const std::vector<std::string>& args) {
  ParsedOptions opt(kSpec, args);
  if (opt.help()) {
    std::fputs(usage(kSpec).c_str(), stdout);
    return 0;
  }
  return parse_runtime(opt).single() ? run<float>(opt) : run<double>(opt);
}

}  // namespace enf::cli
