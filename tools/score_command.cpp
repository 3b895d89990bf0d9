// enf score: the log-likelihood of every structure (particle models: DW4,
// LJ13, QM9-positional) or molecule (QM9 models) of a file under a flow.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datasets/molecule_io.hpp"
#include "datasets/particles.hpp"
#include "datasets/registry.hpp"
#include "datasets/systems.hpp"
#include "datasets/xyz.hpp"
#include "engine/checkpoint.hpp"
#include "engine/flow.hpp"
#include "engine/molecule_batch.hpp"
#include "engine/statistics.hpp"
#include "tools/commands.hpp"
#include "tools/model_io.hpp"
#include "tools/option_groups.hpp"
#include "tools/options.hpp"
#include "tools/progress.hpp"

namespace enf::cli {

namespace {

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
    with_groups(
        {
            {"model", "CKPT", "", "checkpoint directory (enf train or enf import)"},
            {"input", "FILE", "", "structures (.npy, .npz or .xyz)"},
            {"format", "csv|json", "csv", "output format on stdout"},
            {"samples", "S", "1", "molecules: dequantization draws per molecule", "1"},
            {"stride", "K", "1", "molecules: score every K-th record (a spread-out subset of a sorted file)", "1"},
            {"limit", "N", "0", "molecules: score the first N records (after --stride) only (0: all)", "0"},
            {"skip-unsupported", "", "", "molecules: skip (and count) molecules with other elements or too many atoms"},
        },
        {{solver_group(), {}, {{kRtol, "1e-7"}, {kAtol, "1e-7"}}},
         {runtime_group(), {}, {{kSeed, "0", "seed of the Hutchinson and dequantization noise"}}}})};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Structures [rows, n·D] from .npy ([rows, n·D] or [rows, n, D]) or .xyz.
// system: the model's (QM9-positional reads molecule files' 19-atom molecules).
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

template <class T>
std::vector<ForwardResult> score_as(const Checkpoint& c, const CnfOptions& o, const std::vector<double>& x, int rows,
                                    const Runtime& rt) {
  const Parameters<T> p = c.params.template cast<T>();
  VectorField<T> field(c.field, p.layout);
  Cnf<VectorField<T>> cnf(field, o);
  BatchFlow<VectorField<T>> flow(cnf, rt.threads);
  const int n = int(x.size() / rows / c.field.dim);
  return flow.log_likelihood(p.values.data(), x, rows, n, rt.seed);
}

int score_particles(const ParsedOptions& opt, const Checkpoint& c, const CnfOptions& o, const Runtime& rt,
                    const std::string& format) {
  for (const char* name : {"samples", "stride", "limit", "skip-unsupported"})
    if (opt.given(name)) throw UsageError(std::string("--") + name + " applies to molecule models only");
  int rows = 0;
  const std::vector<double> x = read_structures(opt.str("input"), c.system, particles_in(c), c.field.dim, rows);
  std::fprintf(stderr, "enf score: %d structures from %s\n", rows, opt.str("input").c_str());
  const auto t0 = Clock::now();
  const auto r = rt.single() ? score_as<float>(c, o, x, rows, rt) : score_as<double>(c, o, x, rows, rt);
  const double seconds = since(t0);
  std::vector<double> log_p;
  for (const auto& e : r) log_p.push_back(e.log_px);
  const MeanError m = mean_standard_error(log_p);
  if (format == "json") {
    nlohmann::json j{{"model", opt.str("model")}, {"input", opt.str("input")}};
    add_solver_json(j, o);
    j["results"] = nlohmann::json::array();
    for (int b = 0; b < rows; ++b)
      j["results"].push_back({{"index", b}, {"log_likelihood", r[b].log_px}, {"delta_logp", r[b].delta_logp},
                              {"log_pz", r[b].log_pz}, {"nfe", r[b].solve.stats.nfe}});
    j["summary"] = {{"count", rows}, {"mean_log_likelihood", m.mean}, {"standard_error", m.error}, {"nll", -m.mean},
                    {"seconds", seconds}};
    std::puts(j.dump(2).c_str());
  } else {
    std::printf("index,log_likelihood,delta_logp,log_pz,nfe\n");
    for (int b = 0; b < rows; ++b)
      std::printf("%d,%.12g,%.12g,%.12g,%ld\n", b, r[b].log_px, r[b].delta_logp, r[b].log_pz, r[b].solve.stats.nfe);
  }
  std::fprintf(stderr, "NLL %.4f ± %.4f (standard error) over %d structures in %.2f s\n", -m.mean, m.error, rows,
               seconds);
  return 0;
}

// The records of --input to score (after --stride and --limit).
MoleculeSet read_scored_molecules(const ParsedOptions& opt, const Checkpoint& c) {
  const int stride = opt.integer("stride"), limit = opt.integer("limit");
  MoleculeReadOptions ro;
  ro.skip_unsupported = opt.flag("skip-unsupported");
  ro.count = limit > 0 && stride == 1 ? limit : -1;
  ro.max_atoms = int(c.molecule->node_counts.size()) - 1;
  MoleculeSet set = read_molecules(opt.str("input"), ro);
  if (stride > 1 || limit > 0) {
    std::vector<Molecule> kept;
    for (std::size_t b = 0; b < set.molecules.size() && (limit == 0 || int(kept.size()) < limit); b += stride)
      kept.push_back(std::move(set.molecules[b]));
    set.molecules = std::move(kept);
  }
  if (set.skipped > 0) {
    std::fprintf(stderr, "enf score: skipped %ld molecules:\n", set.skipped);
    for (const auto& r : set.skip_reasons) std::fprintf(stderr, "  %s\n", r.c_str());
  }
  return set;
}

int score_molecules(const ParsedOptions& opt, const Checkpoint& c, const CnfOptions& cnf, const Runtime& rt,
                    const std::string& format) {
  const int draws = opt.integer("samples");
  const MoleculeSet set = read_scored_molecules(opt, c);
  std::vector<MoleculeInput> mols;
  for (const auto& m : set.molecules) mols.push_back(molecule_input(m));
  const int rows = int(mols.size());
  std::fprintf(stderr, "enf score: %d molecules from %s, %d dequantization draw%s each, trace %s, rtol %g\n", rows,
               opt.str("input").c_str(), draws, draws == 1 ? "" : "s", to_string(cnf.trace).c_str(),
               cnf.solver.rtol);
  MoleculeFlow<double> flow(c.field, *c.molecule, cnf);
  MoleculeBatch<double> batch(flow, rt.threads);
  const auto t0 = Clock::now();
  Progress progress("scored", rows);
  const auto r = batch.score(c.params.values.data(), mols, draws, rt.seed, progress);
  const double seconds = since(t0);
  const long impossible = std::count_if(r.begin(), r.end(), [](const MoleculeScore& e) { return std::isinf(e.first.log_pN); });
  if (impossible > 0)
    std::fprintf(stderr,
                 "enf score: %ld molecule(s) have an atom count to which the model's p(N) gives probability 0 "
                 "(it comes from the training data); their log-likelihood is -inf\n",
                 impossible);
  std::vector<double> log_p;
  double atoms = 0;
  for (const auto& e : r) log_p.push_back(e.log_p);
  for (const auto& m : mols) atoms += m.atoms();
  const MeanError m = mean_standard_error(log_p);
  if (format == "json") {
    nlohmann::json j{{"model", opt.str("model")}, {"input", opt.str("input")}, {"samples", draws}, {"skipped", set.skipped}};
    add_solver_json(j, cnf);
    j["results"] = nlohmann::json::array();
    for (int b = 0; b < rows; ++b) {
      const MoleculeLikelihood& L = r[b].first;
      j["results"].push_back({{"index", b},
                              {"name", set.molecules[b].name},
                              {"atoms", L.atoms},
                              {"log_likelihood", r[b].log_p},
                              {"log_likelihood_iw", r[b].log_p_iw},
                              {"nll", -r[b].log_p},
                              {"first_draw",
                               {{"log_pz_x", L.log_pz_x},
                                {"log_pz_h", L.log_pz_h},
                                {"delta_logp_ode", L.ode.delta_logp},
                                {"actnorm_logdet", L.actnorm_logdet},
                                {"log_q_v", L.dequantizer.log_q_v},
                                {"log_pN", L.log_pN}}},
                              {"nfe", r[b].nfe}});
    }
    j["summary"] = {{"count", rows},           {"mean_log_likelihood", m.mean}, {"standard_error", m.error},
                    {"nll", -m.mean},          {"nll_per_atom", -m.mean * rows / atoms},
                    {"seconds", seconds},      {"seconds_per_molecule", seconds / rows}};
    std::puts(j.dump(2).c_str());
  } else {
    std::printf("index,name,atoms,log_likelihood,log_likelihood_iw,log_pz_x,log_pz_h,delta_logp_ode,actnorm_logdet,"
                "log_q_v,log_pN,nfe\n");
    for (int b = 0; b < rows; ++b) {
      const MoleculeLikelihood& L = r[b].first;
      std::string name = set.molecules[b].name;
      std::replace(name.begin(), name.end(), ',', ';');
      std::printf("%d,%s,%d,%.12g,%.12g,%.12g,%.12g,%.12g,%.12g,%.12g,%.12g,%ld\n", b, name.c_str(), L.atoms,
                  r[b].log_p, r[b].log_p_iw, L.log_pz_x, L.log_pz_h, L.ode.delta_logp, L.actnorm_logdet,
                  L.dequantizer.log_q_v, L.log_pN, r[b].nfe);
    }
  }
  std::fprintf(stderr, "NLL %.4f ± %.4f (standard error) over %d molecules in %.1f s (%.3f s per molecule)\n", -m.mean,
               m.error, rows, seconds, seconds / rows);
  return 0;
}

}  // namespace

int run_score(const std::vector<std::string>& args) {
  ParsedOptions opt(kScore, args);
  if (opt.help()) return std::fputs(usage(kScore).c_str(), stdout), 0;
  if (opt.str("model").empty() || opt.str("input").empty()) throw UsageError("--model and --input are required");
  const std::string format = opt.choice("format", {"csv", "json"});
  const Runtime rt = parse_runtime(opt);
  const Checkpoint c = load_checkpoint(opt.str("model"));
  const CnfOptions o = parse_solver(opt);
  return c.molecule ? score_molecules(opt, c, o, rt, format) : score_particles(opt, c, o, rt, format);
}

}  // namespace enf::cli
