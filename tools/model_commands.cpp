// enf import, enf score, enf sample: the commands that work on a checkpoint.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "datasets/energies.hpp"
#include "datasets/file_io.hpp"
#include "datasets/npy.hpp"
#include "datasets/particles.hpp"
#include "datasets/registry.hpp"
#include "datasets/xyz.hpp"
#include "engine/checkpoint.hpp"
#include "engine/flow.hpp"
#include "tools/commands.hpp"
#include "tools/molecule_commands.hpp"
#include "tools/options.hpp"

namespace enf::cli {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Structures [rows, n·D] from .npy ([rows, n·D] or [rows, n, D]) or .xyz.
// system: the model's ("qm9_positional" reads molecule files' 19-atom molecules).
std::vector<double> read_structures(const std::string& path, const std::string& system, int n, int dim, int& rows) {
  std::vector<double> x;
  if (ends_with(path, ".xyz")) {
    x = structures_from_xyz(read_xyz(path), n, dim, path);
  } else if (ends_with(path, ".npy") || ends_with(path, ".npz") || is_dataset_name(path)) {
    x = load_structures(path, ParticleSystem{system, n, dim}).x;
  } else {
    throw std::runtime_error("'" + path + "': unknown input format (use .npy, .npz, .xyz or a dataset name such as dw4:test)");
  }
  rows = int(x.size() / (std::size_t(n) * dim));
  if (rows == 0) throw std::runtime_error("'" + path + "': no structures");
  return x;
}

CnfOptions solve_options(const ParsedOptions& opt) {
  CnfOptions o;
  o.trace = parse_trace_estimator(opt.choice("trace", {"exact", "rademacher", "gaussian"}));
  o.solver.method = opt.parsed("method", ode::parse_method);
  o.solver.rtol = opt.real("rtol");
  o.solver.atol = opt.real("atol");
  o.adjoint_solver = o.solver;
  if (auto e = o.validate(); !e.empty()) throw UsageError(e);
  return o;
}

const CommandSpec kImport{
    "import",
    "Import a model trained with the reference PyTorch implementation into an enf checkpoint.",
    "DIR holds flow.safetensors (the reference's state_dict, tensor names as PyTorch writes\n"
    "them) and args.json (its command-line arguments). Supported: the egnn_dynamics flows\n"
    "of main_dw4_lj13.py (DW4, LJ13) and of main_qm9.py (QM9: ActNorm + FFJORD in\n"
    "flow.safetensors, the dequantizer's network in DIR/dequantizer.safetensors; p(N) is\n"
    "the reference's 100 000-molecule QM9 histogram).\n"
    "DIR may also be the name of a model shipped with enf: qm9-pretrained, the official\n"
    "pretrained E-NF QM9 model ('enf data list').\n"
    "\nexamples:\n  enf import --reference qm9-pretrained --out models/qm9\n"
    "  enf import --reference path/to/en_flows/outputs/dw4_run --out models/dw4",
    {
        {"reference", "DIR|NAME", "", "directory with flow.safetensors and args.json, or qm9-pretrained"},
        {"out", "CKPT", "", "checkpoint directory to write"},
    }};

const CommandSpec kScore{
    "score",
    "Log-likelihood in nats of every structure or molecule of a file under a flow.",
    "Particle models (DW4, LJ13): log p(x). Input: .npy ([rows, N*D] or [rows, N, D]), .npz\n"
    "(its array 'x' or its only array) or multi-frame .xyz; the centre of mass is removed.\n"
    "Molecule models (QM9): log p(x, h, N) = log p(z) + Δlog p − log q(v|x,h) + log p(N), the\n"
    "dequantization lower bound, its noise averaged over --samples draws (log_likelihood_iw:\n"
    "the importance-weighted bound over the same draws). Input: the EDM .npz split, QM9 or\n"
    "multi-frame .xyz, or any format Open Babel reads (.sdf, .mol2, .pdb, ...); atoms H, C,\n"
    "N, O, F. The reference's published QM9 NLL used --trace gaussian --rtol 1e-4 --atol 1e-4.\n"
    "Each structure is integrated alone (its own adaptive steps), so its score does not\n"
    "depend on the others in the file. csv: one row per structure; json: one document with\n"
    "'results' (index, log_likelihood, the terms, nfe) and 'summary'.",
    {
        {"model", "CKPT", "", "checkpoint directory (enf train or enf import)"},
        {"input", "FILE", "", "structures (.npy, .npz or .xyz)"},
        {"trace", "exact|rademacher|gaussian", "exact", "divergence: exact, or Hutchinson with that noise"},
        {"method", "NAME", "dopri5", "ODE solver: dopri5, cash_karp, fehlberg78, rk4, euler"},
        {"rtol", "R", "1e-7", "relative tolerance"},
        {"atol", "A", "1e-7", "absolute tolerance"},
        {"format", "csv|json", "csv", "output format on stdout"},
        {"precision", "double|float", "double", "scalar type of the field"},
        {"threads", "N", "0", "threads (0: all cores)", "0"},
        {"seed", "S", "0", "seed of the Hutchinson and dequantization noise"},
        {"samples", "S", "1", "molecules: dequantization draws per molecule", "1"},
        {"stride", "K", "1", "molecules: score every K-th record (a spread-out subset of a sorted file)", "1"},
        {"limit", "N", "0", "molecules: score the first N records (after --stride) only (0: all)", "0"},
        {"skip-unsupported", "", "", "molecules: skip (and count) molecules with other elements or too many atoms"},
    }};

const CommandSpec kSample{
    "sample",
    "Draw structures or molecules from a flow: z from the prior, integrated from t = 1 to 0.",
    "Molecule models (QM9): the atom count from the model's p(N) (or --atoms), then positions\n"
    "and features; atom types by argmax, charges by floor. Writes .sdf (bonds perceived by\n"
    "Open Babel), .xyz or any format Open Babel writes, each record with its log_likelihood\n"
    "(one dequantization draw, --trace; skip with --no-score), atom_stability,\n"
    "molecule_stable, valid and smiles; prints the set's stability and validity.\n"
    "Particle models: writes multi-frame .xyz (particles as 'Ar', 2-D systems with z = 0) or .npy [N, n*D].\n"
    "--log-q adds each sample's log q(x) (a forward solve with the exact trace), its\n"
    "energy E(x) and log importance weight log w = −E(x) − log q(x) to the XYZ comment\n"
    "lines and prints them as CSV on stdout (LJ13: --lj-convention).",
    {
        {"model", "CKPT", "", "checkpoint directory"},
        {"n", "N", "100", "number of samples", "1"},
        {"seed", "S", "0", "seed"},
        {"out", "FILE", "", "output (.xyz or .npy)"},
        {"method", "NAME", "dopri5", "ODE solver"},
        {"rtol", "R", "1e-5", "relative tolerance"},
        {"atol", "A", "1e-5", "absolute tolerance"},
        {"trace", "exact|rademacher|gaussian", "exact", "divergence used by --log-q"},
        {"log-q", "", "", "also compute log q(x), E(x) and log w of every sample"},
        {"lj-convention", "ordered|unordered", "ordered", "LJ13 pair sum for E(x)"},
        {"atoms", "K", "0", "molecules: atoms per molecule (0: drawn from the model's p(N))"},
        {"no-score", "", "", "molecules: do not compute each molecule's log-likelihood"},
        {"threads", "N", "0", "threads (0: all cores)", "0"},
    }};

template <class T>
std::vector<ForwardResult> score_as(const Checkpoint& c, const CnfOptions& o, const std::vector<double>& x, int rows,
                                    int threads, std::uint64_t seed) {
  const Parameters<T> p = c.params.template cast<T>();
  VectorField<T> field(c.field, p.layout);
  Cnf<VectorField<T>> cnf(field, o);
  BatchFlow<VectorField<T>> flow(cnf, threads);
  const int n = int(x.size() / rows / c.field.dim);
  return flow.log_likelihood(p.values.data(), x, rows, n, seed);
}

int particles_in(const Checkpoint& c) {
  if (c.system == "dw4" || c.system == "lj13" || c.system == "qm9_positional") return particle_system(c.system).n;
  if (c.data.contains("n_particles") && c.data["n_particles"].get<int>() > 1) return c.data["n_particles"].get<int>();
  throw std::runtime_error("the checkpoint does not say how many particles its structures have");
}

}  // namespace

int run_import(const std::vector<std::string>& args) {
  ParsedOptions opt(kImport, args);
  if (opt.help()) return std::fputs(usage(kImport).c_str(), stdout), 0;
  if (opt.str("reference").empty() || opt.str("out").empty()) throw UsageError("--reference and --out are required");
  const Checkpoint c = import_reference(resolve_model(opt.str("reference")));
  save_checkpoint(opt.str("out"), c);
  std::printf("imported %s (%s, H=%d, L=%d, %zu parameters) to %s\n", opt.str("reference").c_str(),
              c.system.empty() ? (c.molecule ? "molecules" : "particles") : c.system.c_str(), c.field.hidden, c.field.layers, c.params.values.size(),
              opt.str("out").c_str());
  return 0;
}

int run_score(const std::vector<std::string>& args) {
  ParsedOptions opt(kScore, args);
  if (opt.help()) return std::fputs(usage(kScore).c_str(), stdout), 0;
  if (opt.str("model").empty() || opt.str("input").empty()) throw UsageError("--model and --input are required");
  const std::string format = opt.choice("format", {"csv", "json"});
  const bool single = opt.choice("precision", {"double", "float"}) == "float";
  const Checkpoint c = load_checkpoint(opt.str("model"));
  const CnfOptions o = solve_options(opt);
  if (c.molecule) return score_molecules(opt, c, o);
  for (const char* name : {"samples", "stride", "limit", "skip-unsupported"})
    if (opt.given(name)) throw UsageError(std::string("--") + name + " applies to molecule models only");
  int rows = 0;
  const std::vector<double> x = read_structures(opt.str("input"), c.system, particles_in(c), c.field.dim, rows);
  std::fprintf(stderr, "enf score: %d structures from %s\n", rows, opt.str("input").c_str());
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = single ? score_as<float>(c, o, x, rows, opt.integer("threads"), std::uint64_t(opt.integer("seed")))
                        : score_as<double>(c, o, x, rows, opt.integer("threads"), std::uint64_t(opt.integer("seed")));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double mean = 0, var = 0;
  for (const auto& e : r) mean += e.log_px / rows;
  for (const auto& e : r) var += (e.log_px - mean) * (e.log_px - mean) / std::max(1, rows - 1);
  const double se = std::sqrt(var / rows);
  if (format == "json") {
    nlohmann::json j{{"model", opt.str("model")}, {"input", opt.str("input")}, {"trace", opt.str("trace")},
                     {"rtol", o.solver.rtol}, {"atol", o.solver.atol}};
    j["results"] = nlohmann::json::array();
    for (int b = 0; b < rows; ++b)
      j["results"].push_back({{"index", b}, {"log_likelihood", r[b].log_px}, {"delta_logp", r[b].delta_logp},
                              {"log_pz", r[b].log_pz}, {"nfe", r[b].solve.stats.nfe}});
    j["summary"] = {{"count", rows}, {"mean_log_likelihood", mean}, {"standard_error", se}, {"nll", -mean},
                    {"seconds", seconds}};
    std::puts(j.dump(2).c_str());
  } else {
    std::printf("index,log_likelihood,delta_logp,log_pz,nfe\n");
    for (int b = 0; b < rows; ++b)
      std::printf("%d,%.12g,%.12g,%.12g,%ld\n", b, r[b].log_px, r[b].delta_logp, r[b].log_pz, r[b].solve.stats.nfe);
  }
  std::fprintf(stderr, "NLL %.4f ± %.4f (standard error) over %d structures in %.2f s\n", -mean, se, rows, seconds);
  return 0;
}

int run_sample(const std::vector<std::string>& args) {
  ParsedOptions opt(kSample, args);
  if (opt.help()) return std::fputs(usage(kSample).c_str(), stdout), 0;
  const std::string out = opt.str("out");
  if (opt.str("model").empty() || out.empty()) throw UsageError("--model and --out are required");
  const int N = opt.integer("n");
  const Checkpoint c = load_checkpoint(opt.str("model"));
  const CnfOptions o = solve_options(opt);
  if (c.molecule) return sample_molecules(opt, c, o);
  if (!ends_with(out, ".xyz") && !ends_with(out, ".npy")) throw UsageError("--out must end in .xyz or .npy");
  for (const char* name : {"atoms", "no-score"})
    if (opt.given(name)) throw UsageError(std::string("--") + name + " applies to molecule models only");
  const LJConvention lj = lj_convention(opt.choice("lj-convention", {"ordered", "unordered"}));
  check_writable(out, "output");
  const int n = particles_in(c), D = c.field.dim;
  VectorField<double> field(c.field, c.params.layout);
  Cnf<VectorField<double>> cnf(field, o);
  BatchFlow<VectorField<double>> flow(cnf, opt.integer("threads"));
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<double> x = flow.sample(c.params.values.data(), N, n, std::uint64_t(opt.integer("seed")));
  std::fprintf(stderr, "enf sample: %d samples in %.2f s\n", N,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  std::vector<std::string> comments(N);
  if (opt.flag("log-q")) {
    const auto r = flow.log_likelihood(c.params.values.data(), x, N, n, std::uint64_t(opt.integer("seed")) + 1);
    const bool known = c.system == "dw4" || c.system == "lj13";
    const std::vector<double> E = known ? energies(particle_system(c.system), x, N, lj) : std::vector<double>(N, NAN);
    std::printf(known ? "index,log_q,energy,log_w\n" : "index,log_q\n");
    for (int b = 0; b < N; ++b) {
      std::ostringstream cs;
      cs.precision(12);
      cs << "log_q=" << r[b].log_px;
      if (known) cs << " energy=" << E[b] << " log_w=" << -E[b] - r[b].log_px;
      comments[b] = cs.str();
      if (known)
        std::printf("%d,%.12g,%.12g,%.12g\n", b, r[b].log_px, E[b], -E[b] - r[b].log_px);
      else
        std::printf("%d,%.12g\n", b, r[b].log_px);
    }
  }
  if (ends_with(out, ".xyz"))
    write_xyz(out, frames_from_structures(x, N, n, D, comments));
  else
    write_npy(out, {N, std::int64_t(n) * D}, x, false);
  std::fprintf(stderr, "wrote %s\n", out.c_str());
  return 0;
}

}  // namespace enf::cli
