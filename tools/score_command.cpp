// enf score: the log-likelihood of every structure (particle models: DW4,
// LJ13, QM9-positional) or molecule (QM9 models) of a file under a flow.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datasets/molecular_graph.hpp"
#include "datasets/molecule_io.hpp"
#include "datasets/particles.hpp"
#include "datasets/registry.hpp"
#include "datasets/systems.hpp"
#include "datasets/xyz.hpp"
#include "engine/checkpoint.hpp"
#include "engine/conformer_flow.hpp"
#include "engine/flow.hpp"
#include "engine/molecule_batch.hpp"
#include "engine/statistics.hpp"
#include "tools/commands.hpp"
#include "tools/model_io.hpp"
#include "tools/option_groups.hpp"
#include "tools/options.hpp"
#include "tools/mpi_world.hpp"
#include "tools/progress.hpp"
#include "tools/sharded_rounds.hpp"
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
    "Conformer models (qm9-conformers, enf conformers): log p(x | graph) of each record's\n"
    "geometry given its graph: the file's bonds and charges (.sdf, .mol2, ...), else bonds\n"
    "perceived by Open Babel from the geometry (.xyz, .npz); the molecule inputs above, with\n"
    "--stride, --limit and --skip-unsupported (the elements and at most the atoms of the model's\n"
    "largest training molecule, as the checkpoint records them; without the record H, C, N, O,\n"
    "F and at most 29 atoms).\n"
    "Each structure is integrated with its own adaptive steps, so its score does not depend\n"
    "on the others in the file. (Particles are solved in lockstep groups of neighbouring\n"
    "rows, each stage one stacked evaluation: a score equals the structure's alone to\n"
    "rounding, and the same file gives the same bits for any thread or rank count.)\n"
    "Rows are printed (and flushed) as they finish, in input order: csv: a header, one row\n"
    "per structure, the summary on stderr; json: JSON lines, one object per structure\n"
    "(index, log_likelihood, the terms, nfe), then one {\"summary\": ...} line. Ctrl-C or\n"
    "SIGTERM: no new structures start, those in progress finish and are printed, then the\n"
    "summary of the rows printed; exit 130 or 143.\n"
    "mpirun -np K enf score ... (a build with ENF_MPI): the structures are shared among the\n"
    "K ranks in rounds, rank 0 prints; the rows are those of one process, byte for byte (the\n"
    "summary's seconds aside). A stop on any rank stops the job after its current round.",
    with_groups(
        {
            {"model", "CKPT|NAME", "", kModelHelp},
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

// JSON has no infinity: −inf (p(N) = 0) is written as null.
nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

void print_json_line(const nlohmann::json& j) {
  std::puts(j.dump().c_str());
  std::fflush(stdout);
}

StopSignal score_stop_signal(Communicator& comm) {
  if (comm.size() == 1)
    return StopSignal(
        "\nenf score: stopping: no new rows are started; those in progress finish and are printed, then the summary "
        "(a second Ctrl-C exits at once; the rows printed so far stay)\n",
        "\nenf score: second signal: exiting at once\n");
  const std::string who = "\nenf score (rank " + std::to_string(comm.rank()) + " of " + std::to_string(comm.size()) + "): ";
  return StopSignal(who + "stopping: the job stops after its current round; the rows finished are printed, then the "
                          "summary (a second signal ends this rank at once, and the job)\n",
                    who + "second signal: exiting at once\n");
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

// A structure's row (particle and conformer models), as it travels between ranks.
struct ScoreRow {
  double log_px, delta_logp, log_pz;
  long nfe;
};

// The structures of the job, in rounds over its ranks (sharded_rounds.hpp).
template <class T>
void score_as(const Checkpoint& c, const CnfOptions& o, const std::vector<double>& x, int rows, const Runtime& rt,
              std::optional<ShardedRounds>& rounds, const ShardedRounds::Emit& emit) {
  const Parameters<T> p = c.params.template cast<T>();
  VectorField<T> field(c.field, p.layout);
  Cnf<VectorField<T>> cnf(field, o);
  BatchFlow<VectorField<T>> flow(cnf, rt.threads);
  const int n = int(x.size() / rows / c.field.dim);
  rounds.emplace(world(), rows, flow.threads(), std::vector<double>{}, flow.likelihood_group(n));
  const std::size_t S = x.size() / std::size_t(rows);
  rounds->run(
      [&](int begin, int end, const ShardedRounds::Put& put) {
        std::vector<double> part(x.begin() + std::ptrdiff_t(begin * S), x.begin() + std::ptrdiff_t(end * S));
        flow.log_likelihood_each(
            p.values.data(), std::move(part), end - begin, n, rt.seed, stop_requested,
            [&](int b, ForwardResult&& r) {
              put(begin + b, to_bytes(ScoreRow{r.log_px, r.delta_logp, r.log_pz, r.solve.stats.nfe}));
            },
            std::uint64_t(begin));
      },
      emit);
}

int score_particles(const ParsedOptions& opt, const Checkpoint& c, const CnfOptions& o, const Runtime& rt,
                    const std::string& format) {
  for (const char* name : {"samples", "stride", "limit", "skip-unsupported"})
    if (opt.given(name)) throw UsageError(std::string("--") + name + " applies to molecule models only");
  Communicator& comm = world();
  const bool root = comm.is_root();
  int rows = 0;
  std::vector<double> x;
  on_every_rank(comm, [&] {
    x = read_structures(opt.str("input"), c.system, particles_in(c), c.field.dim, rows);
    return std::string();
  });
  if (root) std::fprintf(stderr, "enf score: %d structures from %s\n", rows, opt.str("input").c_str());
  const bool json = format == "json";
  if (root && !json) std::printf("index,log_likelihood,delta_logp,log_pz,nfe\n");
  std::fflush(stdout);
  std::vector<double> log_p;
  const auto emit = [&](int b, const std::string& bytes) {
    const ScoreRow r = from_bytes<ScoreRow>(bytes);
    log_p.push_back(r.log_px);
    if (json)
      print_json_line({{"index", b}, {"log_likelihood", r.log_px}, {"delta_logp", r.delta_logp}, {"log_pz", r.log_pz},
                       {"nfe", r.nfe}});
    else {
      std::printf("%d,%.12g,%.12g,%.12g,%ld\n", b, r.log_px, r.delta_logp, r.log_pz, r.nfe);
      std::fflush(stdout);
    }
  };
  const StopSignal stop = score_stop_signal(comm);
  const auto t0 = Clock::now();
  std::optional<ShardedRounds> rounds;
  rt.single() ? score_as<float>(c, o, x, rows, rt, rounds, emit) : score_as<double>(c, o, x, rows, rt, rounds, emit);
  rounds->flush();
  if (!root) return rounds->exit_code();
  const double seconds = since(t0);
  const int done = int(log_p.size());
  const MeanError m = done > 0 ? mean_standard_error(log_p) : MeanError{};
  if (json) {
    nlohmann::json j{{"model", opt.str("model")}, {"input", opt.str("input")}, {"count", done}, {"rows", rows},
                     {"interrupted", rounds->interrupted()}, {"seconds", seconds}};
    add_solver_json(j, o);
    if (done > 0) j.update({{"mean_log_likelihood", m.mean}, {"standard_error", m.error}, {"nll", -m.mean}});
    print_json_line({{"summary", j}});
  }
  if (rounds->interrupted()) std::fprintf(stderr, "\nenf score: interrupted: %d of %d structures scored\n", done, rows);
  if (done > 0)
    std::fprintf(stderr, "NLL %.4f ± %.4f (standard error) over %d structures in %.2f s\n", -m.mean, m.error, done,
                 seconds);
  return rounds->exit_code();
}

// The records of --input to score (after --stride and --limit).
// (Rank 0 says which were skipped.)
MoleculeSet read_scored_molecules(const ParsedOptions& opt, const Checkpoint& c, bool say) {
  const int stride = opt.integer("stride"), limit = opt.integer("limit");
  MoleculeReadOptions ro;
  ro.skip_unsupported = opt.flag("skip-unsupported");
  // Read no further than the last record kept: a record past it (e.g. one
  // larger than the model takes) is no concern of this score. Not when
  // skipping with a stride, which counts the records kept, not read.
  ro.count = limit > 0 && (stride == 1 || !ro.skip_unsupported) ? (limit - 1) * stride + 1 : -1;
  ro.max_atoms = c.molecule ? int(c.molecule->node_counts.size()) - 1 : kQm9MaxAtoms;
  // A conformer model has no p(N): the largest molecule and the elements of
  // its training data where the checkpoint records them, else QM9's.
  if (is_conformer_system(c.system)) {
    const ConformerSupport s = conformer_support(c);
    ro.max_atoms = s.max_atoms;
    ro.elements = s.elements;
    if (s.recorded) ro.limits_source = "its training data";
    ro.max_skip_reasons = std::size_t(-1);  // one line per molecule skipped, as enf conformers says them
  }
  MoleculeSet set = read_molecules(opt.str("input"), ro);
  if (stride > 1 || limit > 0) {
    std::vector<Molecule> kept;
    for (std::size_t b = 0; b < set.molecules.size() && (limit == 0 || int(kept.size()) < limit); b += stride)
      kept.push_back(std::move(set.molecules[b]));
    set.molecules = std::move(kept);
  }
  if (say && set.skipped > 0) {
    std::fprintf(stderr, "enf score: skipped %ld molecules:\n", set.skipped);
    for (const auto& r : set.skip_reasons) std::fprintf(stderr, "  %s\n", r.c_str());
  }
  return set;
}

constexpr char kImpossibleNote[] = "p(N) = 0 for this atom count: not integrated; excluded from the summary";

// A molecule's row, as it travels between ranks.
struct MoleculeRow {
  double log_p, log_p_iw, log_pz_x, log_pz_h, delta_logp_ode, actnorm_logdet, log_q_v, log_pN;
  long nfe;
  int atoms;
  bool impossible_size;
};

template <class T>
int score_molecules(const ParsedOptions& opt, const Checkpoint& c, const CnfOptions& cnf, const Runtime& rt,
                    const std::string& format) {
  const int draws = opt.integer("samples");
  Communicator& comm = world();
  const bool root = comm.is_root();
  MoleculeSet set;
  std::vector<MoleculeInput> mols;
  on_every_rank(comm, [&] {
    set = read_scored_molecules(opt, c, root);
    for (const auto& m : set.molecules) mols.push_back(molecule_input(m));
    return std::string();
  });
  const int rows = int(mols.size());
  if (root)
    std::fprintf(stderr, "enf score: %d molecules from %s, %d dequantization draw%s each, trace %s, rtol %g\n", rows,
                 opt.str("input").c_str(), draws, draws == 1 ? "" : "s", to_string(cnf.trace).c_str(),
                 cnf.solver.rtol);
  MoleculeFlow<T> flow(c.field, *c.molecule, cnf);
  MoleculeBatch<T> batch(flow, rt.threads);
  const Parameters<T> p = c.params.template cast<T>();
  const bool json = format == "json";
  if (root && !json)
    std::printf("index,name,atoms,log_likelihood,log_likelihood_iw,log_pz_x,log_pz_h,delta_logp_ode,actnorm_logdet,"
                "log_q_v,log_pN,nfe,note\n");
  std::fflush(stdout);
  std::vector<double> log_p;
  double atoms = 0;
  long excluded = 0;
  int done = 0;
  Progress progress("scored", rows);
  const auto emit = [&](int b, const std::string& bytes) {
    const MoleculeRow r = from_bytes<MoleculeRow>(bytes);
    ++done;
    if (r.impossible_size) {
      ++excluded;
    } else {
      log_p.push_back(r.log_p);
      atoms += r.atoms;
    }
    if (json) {
      nlohmann::json j{{"index", b}, {"name", set.molecules[b].name}, {"atoms", r.atoms},
                       {"log_likelihood", finite_or_null(r.log_p)}, {"log_likelihood_iw", finite_or_null(r.log_p_iw)},
                       {"nll", finite_or_null(-r.log_p)}};
      if (r.impossible_size) {
        j["excluded"] = true;
        j["note"] = kImpossibleNote;
      } else {
        j["first_draw"] = {{"log_pz_x", r.log_pz_x},         {"log_pz_h", r.log_pz_h},
                           {"delta_logp_ode", r.delta_logp_ode}, {"actnorm_logdet", r.actnorm_logdet},
                           {"log_q_v", r.log_q_v},           {"log_pN", r.log_pN}};
      }
      j["nfe"] = r.nfe;
      print_json_line(j);
    } else {
      std::string name = set.molecules[b].name;
      std::replace(name.begin(), name.end(), ',', ';');
      if (r.impossible_size)
        std::printf("%d,%s,%d,-inf,-inf,,,,,,-inf,0,%s\n", b, name.c_str(), r.atoms, kImpossibleNote);
      else
        std::printf("%d,%s,%d,%.12g,%.12g,%.12g,%.12g,%.12g,%.12g,%.12g,%.12g,%ld,\n", b, name.c_str(), r.atoms,
                    r.log_p, r.log_p_iw, r.log_pz_x, r.log_pz_h, r.delta_logp_ode, r.actnorm_logdet, r.log_q_v,
                    r.log_pN, r.nfe);
      std::fflush(stdout);
    }
    progress(done);
  };
  const StopSignal stop = score_stop_signal(comm);
  const auto t0 = Clock::now();
  // A molecule's cost grows with its edges: atoms² (the shares of a round).
  std::vector<double> cost;
  for (const MoleculeInput& m : mols) cost.push_back(double(m.atoms()) * m.atoms());
  ShardedRounds rounds(comm, rows, batch.threads(), cost);
  rounds.run(
      [&](int begin, int end, const ShardedRounds::Put& put) {
        const std::vector<MoleculeInput> part(mols.begin() + begin, mols.begin() + end);
        batch.score_each(
            p.values.data(), part, draws, rt.seed, stop_requested,
            [&](int b, MoleculeScore&& r) {
              const MoleculeLikelihood& L = r.first;
              put(begin + b, to_bytes(MoleculeRow{r.log_p, r.log_p_iw, L.log_pz_x, L.log_pz_h, L.ode.delta_logp,
                                                  L.actnorm_logdet, L.dequantizer.log_q_v, L.log_pN, r.nfe, L.atoms,
                                                  r.impossible_size}));
            },
            std::uint64_t(begin));
      },
      emit);
  rounds.flush();
  if (!root) return rounds.exit_code();
  const double seconds = since(t0);
  const int scored = int(log_p.size());
  if (excluded > 0)
    std::fprintf(stderr,
                 "\nenf score: %ld molecule(s) have an atom count to which the model's p(N) gives probability 0 "
                 "(it comes from the training data): not integrated, log-likelihood -inf, excluded from the summary\n",
                 excluded);
  const MeanError m = scored > 0 ? mean_standard_error(log_p) : MeanError{};
  const bool interrupted = rounds.interrupted();
  if (json) {
    nlohmann::json j{{"model", opt.str("model")}, {"input", opt.str("input")}, {"samples", draws},
                     {"skipped", set.skipped}, {"molecules", rows}, {"done", done}, {"count", scored},
                     {"excluded", excluded}, {"interrupted", interrupted}, {"seconds", seconds}};
    add_solver_json(j, cnf);
    if (scored > 0)
      j.update({{"mean_log_likelihood", m.mean}, {"standard_error", m.error}, {"nll", -m.mean},
                {"nll_per_atom", -m.mean * scored / atoms}, {"seconds_per_molecule", seconds / done}});
    print_json_line({{"summary", j}});
  }
  if (interrupted) std::fprintf(stderr, "\nenf score: interrupted: %d of %d molecules done\n", done, rows);
  const std::string excl = excluded > 0 ? " (" + std::to_string(excluded) + " excluded: p(N) = 0)" : "";
  if (scored > 0)
    std::fprintf(stderr, "NLL %.4f ± %.4f (standard error) over %d molecules%s in %.1f s (%.3f s per molecule)\n",
                 -m.mean, m.error, scored, excl.c_str(), seconds, seconds / std::max(done, 1));
  else
    std::fprintf(stderr, "NLL: no molecule scored%s\n", excl.c_str());
  return rounds.exit_code();
}

// A conformer's row, as it travels between ranks.
// Molecules of a job under a conformer model, in rounds over its ranks.
template <class T>
void score_conformers_as(const Checkpoint& c, const CnfOptions& o, const std::vector<ConformerCondition>& conds,
                         const std::vector<std::vector<double>>& x, const Runtime& rt, Communicator& comm,
                         std::optional<ShardedRounds>& rounds, const ShardedRounds::Emit& emit) {
  const Parameters<T> p = c.params.template cast<T>();
  VectorField<T> field(c.field, p.layout);
  ConformerFlow<T> flow(field, o, rt.threads);
  // A molecule's cost grows with its edges: atoms² (the shares of a round).
  std::vector<double> cost;
  for (const ConformerCondition& m : conds) cost.push_back(double(m.n) * m.n);
  rounds.emplace(comm, int(x.size()), flow.threads(), cost);
  rounds->run(
      [&](int begin, int end, const ShardedRounds::Put& put) {
        std::vector<const ConformerCondition*> part_c;
        for (int b = begin; b < end; ++b) part_c.push_back(&conds[b]);
        const std::vector<std::vector<double>> part_x(x.begin() + begin, x.begin() + end);
        flow.log_likelihood_each(
            p.values.data(), part_c, part_x, rt.seed, stop_requested,
            [&](int b, ForwardResult&& r) {
              put(begin + b, to_bytes(ScoreRow{r.log_px, r.delta_logp, r.log_pz, r.solve.stats.nfe}));
            },
            std::uint64_t(begin));
      },
      emit);
}

// A conformer model (qm9-conformers): each record's graph is perceived (its
// own bonds when the file has them, else Open Babel's from the geometry)
// and its geometry scored, log p(x | graph).
int score_conformers(const ParsedOptions& opt, const Checkpoint& c, const CnfOptions& o, const Runtime& rt,
                     const std::string& format) {
  if (opt.given("samples")) throw UsageError("--samples applies to QM9 molecule models (a conformer model has no dequantization)");
  Communicator& comm = world();
  const bool root = comm.is_root();
  MoleculeSet set;
  std::vector<ConformerCondition> conds;
  std::vector<std::vector<double>> x;
  on_every_rank(comm, [&] {
    set = read_scored_molecules(opt, c, root);
    for (const Molecule& m : set.molecules) {
      conds.push_back(conformer_condition(perceive_graph(m)));
      x.push_back(m.positions);
    }
    return std::string();
  });
  const int rows = int(x.size());
  if (root)
    std::fprintf(stderr, "enf score: %d molecules from %s under a conformer model: log p(x | graph), trace %s, rtol %g\n",
                 rows, opt.str("input").c_str(), to_string(o.trace).c_str(), o.solver.rtol);
  const bool json = format == "json";
  if (root && !json) std::printf("index,name,atoms,log_likelihood,delta_logp,log_pz,nfe\n");
  std::fflush(stdout);
  std::vector<double> log_p;
  double atoms = 0;
  Progress progress("scored", rows);
  const auto emit = [&](int b, const std::string& bytes) {
    const ScoreRow r = from_bytes<ScoreRow>(bytes);
    log_p.push_back(r.log_px);
    atoms += conds[b].n;
    if (json) {
      print_json_line({{"index", b}, {"name", set.molecules[b].name}, {"atoms", conds[b].n},
                       {"log_likelihood", r.log_px}, {"delta_logp", r.delta_logp}, {"log_pz", r.log_pz},
                       {"nfe", r.nfe}});
    } else {
      std::string name = set.molecules[b].name;
      std::replace(name.begin(), name.end(), ',', ';');
      std::printf("%d,%s,%d,%.12g,%.12g,%.12g,%ld\n", b, name.c_str(), conds[b].n, r.log_px, r.delta_logp, r.log_pz,
                  r.nfe);
      std::fflush(stdout);
    }
    progress(int(log_p.size()));
  };
  const StopSignal stop = score_stop_signal(comm);
  const auto t0 = Clock::now();
  std::optional<ShardedRounds> rounds;
  rt.single() ? score_conformers_as<float>(c, o, conds, x, rt, comm, rounds, emit)
              : score_conformers_as<double>(c, o, conds, x, rt, comm, rounds, emit);
  rounds->flush();
  if (!root) return rounds->exit_code();
  const double seconds = since(t0);
  const int done = int(log_p.size());
  const MeanError m = done > 0 ? mean_standard_error(log_p) : MeanError{};
  if (json) {
    nlohmann::json j{{"model", opt.str("model")}, {"input", opt.str("input")}, {"skipped", set.skipped},
                     {"molecules", rows}, {"count", done}, {"interrupted", rounds->interrupted()},
                     {"seconds", seconds}};
    add_solver_json(j, o);
    if (done > 0)
      j.update({{"mean_log_likelihood", m.mean}, {"standard_error", m.error}, {"nll", -m.mean},
                {"nll_per_atom", -m.mean * done / atoms}, {"seconds_per_molecule", seconds / done}});
    print_json_line({{"summary", j}});
  }
  if (rounds->interrupted()) std::fprintf(stderr, "\nenf score: interrupted: %d of %d molecules scored\n", done, rows);
  if (done > 0)
    std::fprintf(stderr, "NLL %.4f ± %.4f (standard error) of x given the graph over %d molecules in %.1f s (%.3f s per molecule)\n",
                 -m.mean, m.error, done, seconds, seconds / done);
  return rounds->exit_code();
}

}  // namespace

int run_score(const std::vector<std::string>& args) {
  ParsedOptions opt(kScore, args);
  if (opt.help()) return std::fputs(usage(kScore).c_str(), stdout), 0;
  if (opt.str("model").empty() || opt.str("input").empty()) throw UsageError("--model and --input are required");
  const std::string format = opt.choice("format", {"csv", "json"});
  const Runtime rt = parse_runtime(opt);
  Checkpoint c;
  on_every_rank(world(), [&] {  // a model every rank fails to read is said once
    c = load_model(opt.str("model"));  // a shipped model by name too
    return std::string();
  });
  const CnfOptions o = parse_solver(opt);
  if (is_conformer_system(c.system)) return score_conformers(opt, c, o, rt, format);
  if (!c.molecule) return score_particles(opt, c, o, rt, format);
  return rt.single() ? score_molecules<float>(opt, c, o, rt, format) : score_molecules<double>(opt, c, o, rt, format);
}

}  // namespace enf::cli
