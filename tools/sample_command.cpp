// enf sample: structures (particle models) or molecules (QM9 models) drawn
// from a flow, z from the prior integrated from t = 1 to 0.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "datasets/energies.hpp"
#include "datasets/file_io.hpp"
#include "datasets/molecule_io.hpp"
#include "datasets/molecule_metrics.hpp"
#include "datasets/molecule_writer.hpp"
#include "datasets/npy.hpp"
#include "datasets/systems.hpp"
#include "datasets/xyz.hpp"
#include "engine/checkpoint.hpp"
#include "engine/flow.hpp"
#include "engine/molecule_batch.hpp"
#include "engine/statistics.hpp"
#include "tools/commands.hpp"
#include "tools/model_io.hpp"
#include "tools/mpi_world.hpp"
#include "tools/option_groups.hpp"
#include "tools/options.hpp"
#include "tools/outputs.hpp"
#include "tools/progress.hpp"
#include "tools/sharded_rounds.hpp"
#include "tools/stop_signal.hpp"

namespace enf::cli {

namespace {

const CommandSpec kSample{
    "sample",
    "Draw structures or molecules from a flow: z from the prior, integrated from t = 1 to 0.",
    "Molecule models (QM9): the atom count from the model's p(N) (or --atoms), then positions\n"
    "and features; atom types by argmax, charges by floor. --out: .sdf (bonds perceived by\n"
    "Open Babel), .xyz, or any format Open Babel writes (.mol2, .smi, .pdb, .cml, .svg, ...),\n"
    "each record with its log_likelihood (one dequantization draw, Hutchinson's Gaussian\n"
    "trace unless --trace is given; skip with --no-score), atom_stability, molecule_stable,\n"
    "valid and smiles; prints the set's stability and validity. Each molecule is appended\n"
    "to <out>.part as soon as it and those before it are done (.sdf, .sd, .mol2, .smi, .can,\n"
    ".xyz; other formats, e.g. .svg, .mol, .pdb, are written at the end), renamed to --out when\n"
    "finished. Ctrl-C or SIGTERM: no new molecules start, those in progress finish, every\n"
    "finished one is written to --out, exit 130 (SIGINT) or 143 (SIGTERM); a second signal\n"
    "exits at once, leaving the finished molecules in <out>.part.\n"
    "Particle models: --out .xyz (multi-frame; particles as 'Ar', 2-D systems with z = 0) or\n"
    ".npy [N, n*D]. --log-q adds each sample's log q(x) (a forward solve with the exact\n"
    "trace), its energy E(x) and log importance weight log w = −E(x) − log q(x) to the XYZ\n"
    "comment lines; the per-sample CSV goes to stdout when it is a file or pipe, and a\n"
    "terminal gets a summary (mean log q, mean log w, ESS) instead (LJ13: --lj-convention).\n"
    "mpirun -np K enf sample ... (a build with ENF_MPI): the samples are shared among the K\n"
    "ranks (molecules in rounds), rank 0 writes --out: the same bytes as one process's. A stop\n"
    "on any rank stops the job after its current round.",
    with_groups(
        {
            {"model", "CKPT|NAME", "", kModelHelp},
            {"n", "N", "100", "number of samples", "1", "1000000"},
            {"out", "FILE", "", "output: molecules .sdf, .xyz or an Open Babel format; particles .xyz or .npy"},
            {"log-q", "", "", "also compute log q(x), E(x) and log w of every sample"},
            {"lj-convention", "ordered|unordered", "ordered", "Lennard-Jones pair sum for E(x) (LJ13, LJ55)"},
            {"atoms", "K", "0", "molecules: atoms per molecule (0: drawn from the model's p(N))"},
            {"no-score", "", "", "molecules: do not compute each molecule's log-likelihood"},
            force_option(),
        },
        {{solver_group(), {}, {{kTrace, "exact", "divergence: particles' --log-q (exact); molecules: gaussian unless given"}}},
         {runtime_group(), {kThreads, kSeed, kPrecision},
          {{kPrecision, "auto",
            "scalar type of the field; auto: float (about twice as fast) for particle models when --rtol and --atol "
            "are both at least 1e-5, where float32 samples were measured as close to a 1e-7 float64 solve as "
            "float64's; double for molecule models (not measured against a reference) and tighter tolerances",
            "auto|float|double"}}}})};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

template <class T>
int sample_particles(const ParsedOptions& opt, const Checkpoint& c, const CnfOptions& o, const Runtime& rt) {
  const std::string out = opt.str("out");
  const int N = opt.integer("n");
  if (!ends_with(out, ".xyz") && !ends_with(out, ".npy")) throw UsageError("--out must end in .xyz or .npy");
  for (const char* name : {"atoms", "no-score"})
    if (opt.given(name)) throw UsageError(std::string("--") + name + " applies to molecule models only");
  const LJConvention lj = lj_convention(opt.choice("lj-convention", {"ordered", "unordered"}));
  const int n = particles_in(c), D = c.field.dim;
  VectorField<T> field(c.field, c.params.layout);
  const Parameters<T> p = c.params.template cast<T>();
  Cnf<VectorField<T>> cnf(field, o);
  BatchFlow<VectorField<T>> flow(cnf, rt.threads);
  // Each rank draws its share (sample b as one process's sample b); rank 0
  // gathers them in order and writes. Shares are whole lockstep groups, so
  // that every sample is solved beside the same others as in one process.
  Communicator& comm = world();
  const bool root = comm.is_root();
  const Shard mine = my_shard_of_groups(comm, N, lockstep_group(n));
  const auto t0 = Clock::now();
  std::vector<double> mine_x;  // this rank's samples
  long nfe = 0;
  std::vector<double> x;
  for (const std::string& part : on_every_rank(comm, [&] {
         long mine_nfe = 0;
         if (mine.size() > 0)
           mine_x = flow.sample(p.values.data(), mine.size(), n, rt.seed, &mine_nfe, std::uint64_t(mine.begin));
         std::string bytes;
         put_bytes(bytes, &mine_nfe, 1);
         put_bytes(bytes, mine_x.data(), mine_x.size());
         return bytes;
       })) {
    ByteReader in(part);
    long part_nfe = 0;
    in.get(&part_nfe, 1);
    nfe += part_nfe;
    const std::size_t at = x.size(), values = (part.size() - sizeof part_nfe) / sizeof(double);
    x.resize(at + values);
    in.get(x.data() + at, values);
  }
  if (root)
    std::fprintf(stderr, "enf sample: %d samples in %.2f s, %.1f field evaluations per sample (%s)\n", N, since(t0),
                 double(nfe) / N, ode::to_string(o.solver.method).c_str());
  std::vector<std::string> comments(N);
  // log q(x) of each rank's share: as one process's log_likelihood (noise of sample b from seed + 1).
  std::vector<double> lq;
  if (opt.flag("log-q"))
    for (const std::string& part : on_every_rank(comm, [&] {
           std::vector<double> mine_lq(mine.size());
           if (mine.size() > 0)
             flow.log_likelihood_each(
                 p.values.data(), mine_x, mine.size(), n, rt.seed + 1, [] { return false; },
                 [&](int b, ForwardResult&& r) { mine_lq[b] = r.log_px; }, std::uint64_t(mine.begin));
           std::string bytes;
           put_bytes(bytes, mine_lq.data(), mine_lq.size());
           return bytes;
         })) {
      const std::size_t at = lq.size();
      lq.resize(at + part.size() / sizeof(double));
      ByteReader(part).get(lq.data() + at, part.size() / sizeof(double));
    }
  if (!root) return 0;
  if (opt.flag("log-q")) {
    const bool known = has_target_energy(c.system);
    const std::vector<double> E = known ? energies(particle_system(c.system), x, N, lj) : std::vector<double>(N, NAN);
    // A thousand rows scroll the terminal away: the CSV is for files and
    // pipes; a terminal gets the summary and where the values are. Under
    // mpirun rank 0's stdout is mpirun's pseudo-terminal whatever mpirun's
    // own stdout is: several ranks print the CSV (a job's output is a file).
    const bool to_terminal = comm.size() == 1 && ::isatty(STDOUT_FILENO);
    if (!to_terminal) std::printf(known ? "index,log_q,energy,log_w\n" : "index,log_q\n");
    std::vector<double> log_q(N), log_w;
    for (int b = 0; b < N; ++b) {
      log_q[b] = lq[b];
      if (known) log_w.push_back(-E[b] - lq[b]);
      std::ostringstream cs;
      cs.precision(12);
      cs << "log_q=" << lq[b];
      if (known) cs << " energy=" << E[b] << " log_w=" << log_w.back();
      comments[b] = cs.str();
      if (to_terminal) continue;
      if (known)
        std::printf("%d,%.12g,%.12g,%.12g\n", b, lq[b], E[b], log_w.back());
      else
        std::printf("%d,%.12g\n", b, lq[b]);
    }
    if (to_terminal) {
      const auto mean = [](const std::vector<double>& v) {
        double m = 0;
        for (double e : v) m += e / double(v.size());
        return m;
      };
      std::printf("mean log q(x) %.4f over %d samples\n", mean(log_q), N);
      if (known) {
        const double ess = kish_ess_fraction(log_w) * N;
        std::printf("mean log w %.4f, effective sample size %.1f of %d (%.1f %%)\n", mean(log_w), ess, N, 100 * ess / N);
      }
      std::printf("per-sample values: %s (redirect stdout for the CSV)\n",
                  ends_with(out, ".xyz") ? ("the comment lines of " + out).c_str() : "not in .npy");
    }
  }
  if (ends_with(out, ".xyz"))
    write_xyz(out, frames_from_structures(x, N, n, D, comments));
  else
    write_npy(out, {N, std::int64_t(n) * D}, x, false);
  std::fprintf(stderr, "wrote %s\n", out.c_str());
  return 0;
}

std::string number(double v) {
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}

// Molecule b of a sample, as written: positions, elements, and how many
// integer charges agree with the argmax types.
Molecule to_molecule(int b, const MoleculeSample& s) {
  Molecule m;
  m.name = "enf sample " + std::to_string(b);
  m.positions = s.x;
  for (int t : s.types) m.atomic_numbers.push_back(kQm9AtomicNumbers[t]);
  int agree = 0;
  for (int i = 0; i < m.atoms(); ++i) agree += s.charges[i] == m.atomic_numbers[i];
  m.properties.emplace_back("integer_charge_agrees", std::to_string(agree) + "/" + std::to_string(m.atoms()));
  return m;
}

std::string estimate(double seconds, int finished, int N) {
  char text[160];
  std::snprintf(text, sizeof text, "enf sample: about %.0f s for %d molecules (%.1f s per molecule so far)",
                seconds / finished * N, N, seconds / finished);
  return text;
}

// A sampled molecule (and its score) as it travels between ranks.
std::string encode_sample(const MoleculeSample& s, const MoleculeScore* r) {
  std::string bytes;
  const std::int32_t n = std::int32_t(s.types.size());
  put_bytes(bytes, &n, 1);
  put_bytes(bytes, s.x.data(), s.x.size());
  put_bytes(bytes, s.types.data(), s.types.size());
  put_bytes(bytes, s.charges.data(), s.charges.size());
  const char scored = r ? 1 : 0;
  const double log_p = r ? r->log_p : 0.0;
  put_bytes(bytes, &scored, 1);
  put_bytes(bytes, &log_p, 1);
  return bytes;
}

// Molecule b as written: the sample and, when scored, its log_likelihood.
Molecule decode_sample(int b, const std::string& bytes) {
  ByteReader in(bytes);
  std::int32_t n = 0;
  in.get(&n, 1);
  MoleculeSample s;
  s.x.resize(std::size_t(n) * 3);
  s.types.resize(n);
  s.charges.resize(n);
  in.get(s.x.data(), s.x.size());
  in.get(s.types.data(), s.types.size());
  in.get(s.charges.data(), s.charges.size());
  char scored = 0;
  double log_p = 0;
  in.get(&scored, 1);
  in.get(&log_p, 1);
  Molecule m = to_molecule(b, s);
  if (scored) m.properties.emplace_back("log_likelihood", number(log_p));
  return m;
}

// Each molecule is sampled, scored (one dequantization draw), annotated and
// appended to the output as soon as it and every molecule before it are
// done, so the file is in index order whatever the threads, and an
// interrupted run keeps every finished molecule (issue 18). Over the ranks
// of a job, in rounds (sharded_rounds.hpp): rank 0 writes.
template <class T>
int sample_molecules(const ParsedOptions& opt, const Checkpoint& c, CnfOptions cnf, const Runtime& rt) {
  const std::string out = opt.str("out");
  Communicator& comm = world();
  on_every_rank(comm, [&] {  // a format no rank can write is said once
    check_molecule_output(out);
    return std::string();
  });
  const int N = opt.integer("n"), K = opt.integer("atoms");
  const MoleculeModelConfig& mol = *c.molecule;
  const NodeCountDistribution counts(mol.node_counts);
  if (K != 0 && (K < 2 || K > counts.max_nodes()))
    throw UsageError("--atoms must be between 2 and " + std::to_string(counts.max_nodes()) + " (or 0: drawn from p(N))");
  const bool score = !opt.flag("no-score");
  // The exact trace costs one Jacobian row per state value (75-150 s a
  // molecule): molecules are scored with Hutchinson's estimator unless asked.
  if (!opt.given(kTrace)) cnf.trace = TraceEstimator::Gaussian;
  const std::uint64_t seed = rt.seed;
  // Sizes first, from their own stream, so --n 10 is a prefix of --n 100.
  std::vector<int> atoms(N, K);
  if (K == 0) {
    Rng rng = Rng(seed).split(std::uint64_t(1) << 40);
    for (int& a : atoms) a = counts.sample(rng);
  }
  MoleculeFlow<T> flow(c.field, mol, cnf);
  MoleculeBatch<T> batch(flow, rt.threads);
  const Parameters<T> p = c.params.template cast<T>();
  const bool root = comm.is_root();
  std::optional<MoleculeWriter> writer;  // rank 0's
  on_every_rank(comm, [&] {
    if (!root) return std::string();
    // A .part file left by a run stopped at once (a second Ctrl-C) holds that
    // run's molecules: not silently truncated by this one.
    if (std::error_code ec; std::filesystem::exists(out + ".part", ec) && !opt.flag("force"))
      throw UsageError("'" + out + ".part' exists: the molecules of an interrupted enf sample (rename it to keep them, "
                       "or give --force to replace it)");
    writer.emplace(out);
    return std::string();
  });
  const std::string who =
      comm.size() > 1 ? " (rank " + std::to_string(comm.rank()) + " of " + std::to_string(comm.size()) + ")" : "";
  const StopSignal stop =
      !root ? StopSignal("\nenf sample" + who + ": stopping: the job stops after its current round; rank 0 writes the "
                         "finished molecules (a second signal ends this rank at once, and the job)\n",
                         "\nenf sample" + who + ": second signal: exiting at once\n")
            : StopSignal("\nenf sample: stopping: no new molecules are started" +
                             std::string(comm.size() > 1 ? " after the current round" : "") +
                             "; those in progress are finished and written (a second Ctrl-C exits at once" +
                             (writer->streamed() ? ", leaving the finished molecules in " + writer->part_path() + ")\n"
                                                 : "; ." + out.substr(out.rfind('.') + 1) +
                                                       " is written at the end, so nothing is kept)\n"),
                         "\nenf sample: second signal: exiting at once" +
                             (writer->streamed() ? "; the finished molecules are in " + writer->part_path() + "\n"
                                                 : "\n"));
  // Announced once the handlers are in place: a signal from now on is caught.
  if (root)
    std::fprintf(stderr, "enf sample: %d molecules on %d threads%s, %s; %s\n", N, batch.threads(),
                 comm.size() > 1 ? (" x " + std::to_string(comm.size()) + " ranks").c_str() : "",
                 score ? ("scored with the " + to_string(cnf.trace) + " trace").c_str() : "not scored (--no-score)",
                 writer->streamed() ? ("each appended to " + writer->part_path() + " when done").c_str()
                                    : ("written to " + out + " at the end").c_str());
  const auto t0 = Clock::now();
  Progress progress("molecules", N);
  std::vector<MoleculeQuality> quality;
  // A molecule's cost grows with its edges: atoms² (the shares of a round).
  std::vector<double> cost;
  for (int a : atoms) cost.push_back(double(a) * a);
  ShardedRounds rounds(comm, N, batch.threads(), cost);
  // The time estimate once every thread has finished its first molecule (one
  // process), or after the first round (several ranks).
  const int first_batch = std::min(N, comm.size() > 1 ? rounds.items_per_round() : batch.threads());
  int finished = 0;
  try {
    rounds.run(
        [&](int begin, int end, const ShardedRounds::Put& put) {
          const std::vector<int> part(atoms.begin() + begin, atoms.begin() + end);
          batch.sample_each(
              p.values.data(), part, seed, score ? 1 : 0, seed + 1, stop_requested,
              [&](int b, MoleculeSample&& s, MoleculeScore* r) { put(begin + b, encode_sample(s, r)); },
              std::uint64_t(begin));
        },
        [&](int b, const std::string& bytes) {
          Molecule m = decode_sample(b, bytes);
          quality.push_back(annotate_molecule(m));
          writer->write(m);
          if (++finished == first_batch && N > first_batch) progress.note(estimate(since(t0), finished, N));
          progress(finished);
        });
    // A molecule started just before the stop can finish after one that was
    // never started: the finished ones after such a gap are kept too, in order.
    rounds.flush();
    // Stopped before the first molecule: no empty output (the writer's
    // destructor removes the empty .part file).
    if (root && (writer->written() > 0 || !rounds.interrupted())) writer->commit();
  } catch (const std::exception&) {
    // A failed molecule (a solve that did not converge) ends the run, as
    // before streaming; the molecules finished after it are kept as well.
    try {
      rounds.flush();
    } catch (const std::exception&) {  // the first error is the one to report
    }
    if (root && writer->streamed() && writer->written() > 0)
      std::fprintf(stderr, "\nenf sample: %ld finished molecules are kept in %s\n", writer->written(),
                   writer->part_path().c_str());
    throw;
  }
  if (!root) return rounds.exit_code();
  const double seconds = since(t0);
  const long written = writer->written();
  if (written > 0) {
    const QualitySummary s = summarize_quality(quality);
    std::printf("molecules,atom_stability,molecule_stability,validity,uniqueness,seconds_per_molecule\n");
    std::printf("%ld,%.4f,%.4f,%.4f,%.4f,%.4f\n", s.molecules, s.atom_stability, s.molecule_stability, s.validity,
                s.uniqueness, seconds / double(written));
    std::fprintf(stderr,
                 "%swrote %ld of %d molecules to %s (atom stability %.1f %%, molecule stability %.1f %%, validity "
                 "%.1f %%)\n",
                 rounds.interrupted() ? "\nenf sample: interrupted: " : "", written, N, out.c_str(),
                 100 * s.atom_stability, 100 * s.molecule_stability, 100 * s.validity);
  } else {
    std::fprintf(stderr, "\nenf sample: interrupted before any molecule was finished: %s not written\n", out.c_str());
  }
  return rounds.exit_code();
}

}  // namespace

int run_sample(const std::vector<std::string>& args) {
  ParsedOptions opt(kSample, args);
  if (opt.help()) return std::fputs(usage(kSample).c_str(), stdout), 0;
  if (opt.str("model").empty() || opt.str("out").empty()) throw UsageError("--model and --out are required");
  opt.integer("n");  // a bad --n is a usage error before the model is read
  Runtime rt = parse_runtime(opt);
  Communicator& comm = world();
  // Before the model is read and the samples drawn (issue 17); by rank 0,
  // which writes it (a refusal is every rank's).
  on_every_rank(comm, [&] {
    if (comm.is_root()) check_output("out", opt.str("out"), {opt.str("model")}, opt.flag("force"), "output");
    return std::string();
  });
  Checkpoint c;
  on_every_rank(comm, [&] {  // a model every rank fails to read is said once
    c = load_model(opt.str("model"));
    return std::string();
  });
  // A conformer model draws geometries of a given molecule, not molecules.
  if (is_conformer_system(c.system))
    throw std::runtime_error("'" + opt.str("model") + "' is a conformer model (qm9-conformers): it generates conformers "
                             "of given molecules; use enf conformers --model " + opt.str("model") +
                             " --input SMILES|FILE --out FILE (and enf score for log p(x | graph))");
  const CnfOptions o = parse_solver(opt);
  const bool auto_precision = rt.precision == "auto";
  rt.precision = auto_precision && c.molecule ? "double" : resolve_precision(rt.precision, o.solver);
  if (auto_precision && comm.is_root()) {
    std::string why = "--precision auto";  // how it chose
    if (c.molecule)
      why += ": molecule models in float64";
    else if (rt.single())
      why += " at rtol and atol >= 1e-5";
    std::fprintf(stderr, "enf sample: the field in %s (%s)\n", rt.single() ? "float32" : "float64", why.c_str());
  }
  if (rt.single()) return c.molecule ? sample_molecules<float>(opt, c, o, rt) : sample_particles<float>(opt, c, o, rt);
  return c.molecule ? sample_molecules<double>(opt, c, o, rt) : sample_particles<double>(opt, c, o, rt);
}

}  // namespace enf::cli
