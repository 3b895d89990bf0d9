// enf score: the log-likelihood of every structure (particle models: DW4,
// LJ13, QM9-positional) or molecule (QM9 models) of a file under a flow.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
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
#include "tools/stop_signal.hpp"

namespace enf::cli {

namespace {

const CommandSpec kScore{
    "score",
    "Log-likelihood in nats of every structure or molecule of a file under a flow.",
    "Particle models (DW4, LJ13): log p(x). Input: .npy ([rows, N*D] or [rows, N, D]), .npz\n"
    "(its array 'x' or its only array), multi-frame .xyz or a dataset name (dw4:test);\n"
    "the centre of mass is removed.\n"
    "Molecule models (QM9): log p(x, h, N) = log p(z) + Δlog p − log q(v|x,h) + log p(N), the\n"
    "dequantization lower bound, its noise averaged over --samples draws (log_likelihood_iw:\n"
    "the importance-weighted bound over the same draws). Input: the EDM .npz split, original\n"
    "QM9 or multi-frame .xyz, a dataset name (qm9:test), or any format Open Babel reads (.sdf,\n"
    ".mol, .mol2, .pdb, ...); atoms H, C, N, O, F. A molecule whose atom count has p(N) = 0\n"
    "is not integrated: its log_likelihood is -inf (null in json), its note says why, and it\n"
    "is left out of the summary, which counts it as excluded. The reference's published QM9\n"
    "NLL used --trace gaussian --rtol 1e-4 --atol 1e-4.\n"
    "Each structure is integrated alone (its own adaptive steps), so its score does not\n"
    "depend on the others in the file. Rows are printed (and flushed) as they finish, in\n"
    "input order: csv: a header, one row per structure, the summary on stderr; json: JSON\n"
    "lines, one object per structure (index, log_likelihood, the terms, nfe), then one\n"
    "{\"summary\": ...} line. Ctrl-C or SIGTERM: no new structures start, those in progress\n"
    "finish and are printed, then the summary of the rows printed; exit 130 or 143.",
    with_groups(
        {
            {"model", "CKPT", "", "checkpoint directory (enf train or enf import)"},
            {"input", "FILE", "", "structures (.npy, .npz, .xyz, dataset name) or molecules (also .sdf, any Open Babel format)"},
            {"format", "csv|json", "csv", "stdout: csv rows, or JSON lines (one per result, then the summary)"},
            {"samples", "S", "1", "molecules: dequantization draws per molecule", "1", "1000"},
            {"stride", "K", "1", "molecules: score every K-th record (a spread-out subset of a sorted file)", "1", "1000000"},
            {"limit", "N", "0", "molecules: score the first N records (after --stride) only (0: all)", "0", "10000000"},
            {"skip-unsupported", "", "", "molecules: skip (and count) molecules with other elements or too many atoms"},
        },
        {{solver_group(), {}, {{kRtol, "1e-7"}, {kAtol, "1e-7"}}},
         {runtime_group(), {}, {{kSeed, "0", "seed of the Hutchinson and dequantization noise"}}}})};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Rows arrive from the worker threads in any order (one thread at a time);
// row b is emitted once rows 0..b are, so the output is in input order.
template <class R>
class InOrder {
 public:
  explicit InOrder(std::function<void(int, R&)> emit) : emit_(std::move(emit)) {}
  void add(int b, R&& r) {
    pending_.emplace(b, std::move(r));
    while (!pending_.empty() && pending_.begin()->first == next_) {
      emit_(next_++, pending_.begin()->second);
      pending_.erase(pending_.begin());
    }
  }
  // After an interruption: rows finished after a gap (a row that never
  // started) are still printed, in order.
  void flush() {
    for (auto& [b, r] : pending_) emit_(b, r);
    pending_.clear();
  }

 private:
  std::function<void(int, R&)> emit_;
  std::map<int, R> pending_;
  int next_ = 0;
};

// JSON has no infinity: −inf (p(N) = 0) is written as null.
nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

void print_json_line(const nlohmann::json& j) {
  std::puts(j.dump().c_str());
  std::fflush(stdout);
}

StopSignal score_stop_signal() {
  return StopSignal(
      "\nenf score: stopping: no new rows are started; those in progress finish and are printed, then the summary "
      "(a second Ctrl-C exits at once; the rows printed so far stay)\n",
      "\nenf score: second signal: exiting at once\n");
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
int score_as(const Checkpoint& c, const CnfOptions& o, const std::vector<double>& x, int rows, const Runtime& rt,
             const std::function<void(int, ForwardResult&&)>& done) {
  const Parameters<T> p = c.params.template cast<T>();
  VectorField<T> field(c.field, p.layout);
  Cnf<VectorField<T>> cnf(field, o);
  BatchFlow<VectorField<T>> flow(cnf, rt.threads);
  const int n = int(x.size() / rows / c.field.dim);
  return flow.log_likelihood_each(p.values.data(), x, rows, n, rt.seed, stop_requested, done);
}

int score_particles(const ParsedOptions& opt, const Checkpoint& c, const CnfOptions& o, const Runtime& rt,
                    const std::string& format) {
  for (const char* name : {"samples", "stride", "limit", "skip-unsupported"})
    if (opt.given(name)) throw UsageError(std::string("--") + name + " applies to molecule models only");
  int rows = 0;
  const std::vector<double> x = read_structures(opt.str("input"), c.system, particles_in(c), c.field.dim, rows);
  std::fprintf(stderr, "enf score: %d structures from %s\n", rows, opt.str("input").c_str());
  const bool json = format == "json";
  if (!json) std::printf("index,log_likelihood,delta_logp,log_pz,nfe\n");
  std::fflush(stdout);
  std::vector<double> log_p;
  InOrder<ForwardResult> rows_out([&](int b, ForwardResult& r) {
    log_p.push_back(r.log_px);
    if (json)
      print_json_line({{"index", b}, {"log_likelihood", r.log_px}, {"delta_logp", r.delta_logp}, {"log_pz", r.log_pz},
                       {"nfe", r.solve.stats.nfe}});
    else {
      std::printf("%d,%.12g,%.12g,%.12g,%ld\n", b, r.log_px, r.delta_logp, r.log_pz, r.solve.stats.nfe);
      std::fflush(stdout);
    }
  });
  const StopSignal stop = score_stop_signal();
  const auto t0 = Clock::now();
  const auto add = [&](int b, ForwardResult&& r) { rows_out.add(b, std::move(r)); };
  rt.single() ? score_as<float>(c, o, x, rows, rt, add) : score_as<double>(c, o, x, rows, rt, add);
  rows_out.flush();
  const double seconds = since(t0);
  const int done = int(log_p.size());
  const MeanError m = done > 0 ? mean_standard_error(log_p) : MeanError{};
  if (json) {
    nlohmann::json j{{"model", opt.str("model")}, {"input", opt.str("input")}, {"count", done}, {"rows", rows},
                     {"interrupted", stop_requested()}, {"seconds", seconds}};
    add_solver_json(j, o);
    if (done > 0) j.update({{"mean_log_likelihood", m.mean}, {"standard_error", m.error}, {"nll", -m.mean}});
    print_json_line({{"summary", j}});
  }
  if (stop_requested()) std::fprintf(stderr, "\nenf score: interrupted: %d of %d structures scored\n", done, rows);
  if (done > 0)
    std::fprintf(stderr, "NLL %.4f ± %.4f (standard error) over %d structures in %.2f s\n", -m.mean, m.error, done,
                 seconds);
  return stop_requested() ? stop_exit_code() : 0;
}

// The records of --input to score (after --stride and --limit).
MoleculeSet read_scored_molecules(const ParsedOptions& opt, const Checkpoint& c) {
  const int stride = opt.integer("stride"), limit = opt.integer("limit");
  MoleculeReadOptions ro;
  ro.skip_unsupported = opt.flag("skip-unsupported");
  // Read no further than the last record kept: a record past it (e.g. one
  // larger than the model takes) is no concern of this score. Not when
  // skipping with a stride, which counts the records kept, not read.
  ro.count = limit > 0 && (stride == 1 || !ro.skip_unsupported) ? (limit - 1) * stride + 1 : -1;
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

constexpr char kImpossibleNote[] = "p(N) = 0 for this atom count: not integrated; excluded from the summary";

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
  const bool json = format == "json";
  if (!json)
    std::printf("index,name,atoms,log_likelihood,log_likelihood_iw,log_pz_x,log_pz_h,delta_logp_ode,actnorm_logdet,"
                "log_q_v,log_pN,nfe,note\n");
  std::fflush(stdout);
  std::vector<double> log_p;
  double atoms = 0;
  long excluded = 0;
  int done = 0;
  Progress progress("scored", rows);
  InOrder<MoleculeScore> rows_out([&](int b, MoleculeScore& r) {
    const MoleculeLikelihood& L = r.first;
    ++done;
    if (r.impossible_size) {
      ++excluded;
    } else {
      log_p.push_back(r.log_p);
      atoms += L.atoms;
    }
    if (json) {
      nlohmann::json j{{"index", b}, {"name", set.molecules[b].name}, {"atoms", L.atoms},
                       {"log_likelihood", finite_or_null(r.log_p)}, {"log_likelihood_iw", finite_or_null(r.log_p_iw)},
                       {"nll", finite_or_null(-r.log_p)}};
      if (r.impossible_size) {
        j["excluded"] = true;
        j["note"] = kImpossibleNote;
      } else {
        j["first_draw"] = {{"log_pz_x", L.log_pz_x},         {"log_pz_h", L.log_pz_h},
                           {"delta_logp_ode", L.ode.delta_logp}, {"actnorm_logdet", L.actnorm_logdet},
                           {"log_q_v", L.dequantizer.log_q_v},   {"log_pN", L.log_pN}};
      }
      j["nfe"] = r.nfe;
      print_json_line(j);
      return;
    }
    std::string name = set.molecules[b].name;
    std::replace(name.begin(), name.end(), ',', ';');
    if (r.impossible_size)
      std::printf("%d,%s,%d,-inf,-inf,,,,,,-inf,0,%s\n", b, name.c_str(), L.atoms, kImpossibleNote);
    else
      std::printf("%d,%s,%d,%.12g,%.12g,%.12g,%.12g,%.12g,%.12g,%.12g,%.12g,%ld,\n", b, name.c_str(), L.atoms, r.log_p,
                  r.log_p_iw, L.log_pz_x, L.log_pz_h, L.ode.delta_logp, L.actnorm_logdet, L.dequantizer.log_q_v,
                  L.log_pN, r.nfe);
    std::fflush(stdout);
  });
  const StopSignal stop = score_stop_signal();
  const auto t0 = Clock::now();
  batch.score_each(c.params.values.data(), mols, draws, rt.seed, stop_requested, [&](int b, MoleculeScore&& r) {
    rows_out.add(b, std::move(r));
    progress(done);
  });
  rows_out.flush();
  const double seconds = since(t0);
  const int scored = int(log_p.size());
  if (excluded > 0)
    std::fprintf(stderr,
                 "\nenf score: %ld molecule(s) have an atom count to which the model's p(N) gives probability 0 "
                 "(it comes from the training data): not integrated, log-likelihood -inf, excluded from the summary\n",
                 excluded);
  const MeanError m = scored > 0 ? mean_standard_error(log_p) : MeanError{};
  if (json) {
    nlohmann::json j{{"model", opt.str("model")}, {"input", opt.str("input")}, {"samples", draws},
                     {"skipped", set.skipped}, {"molecules", rows}, {"done", done}, {"count", scored},
                     {"excluded", excluded}, {"interrupted", stop_requested()}, {"seconds", seconds}};
    add_solver_json(j, cnf);
    if (scored > 0)
      j.update({{"mean_log_likelihood", m.mean}, {"standard_error", m.error}, {"nll", -m.mean},
                {"nll_per_atom", -m.mean * scored / atoms}, {"seconds_per_molecule", seconds / done}});
    print_json_line({{"summary", j}});
  }
  if (stop_requested()) std::fprintf(stderr, "\nenf score: interrupted: %d of %d molecules done\n", done, rows);
  const std::string excl = excluded > 0 ? " (" + std::to_string(excluded) + " excluded: p(N) = 0)" : "";
  if (scored > 0)
    std::fprintf(stderr, "NLL %.4f ± %.4f (standard error) over %d molecules%s in %.1f s (%.3f s per molecule)\n",
                 -m.mean, m.error, scored, excl.c_str(), seconds, seconds / std::max(done, 1));
  else
    std::fprintf(stderr, "NLL: no molecule scored%s\n", excl.c_str());
  return stop_requested() ? stop_exit_code() : 0;
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
