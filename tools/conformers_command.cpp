// enf conformers: K 3-D conformers of each given molecule from a conformer
// model (issue 15; engine/conformer_flow.hpp), each scored with its
// log p(x | graph), written as one multi-record SDF (or XYZ) that keeps the
// input's atoms, bonds and titles.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "datasets/conformer_io.hpp"
#include "datasets/file_io.hpp"
#include "datasets/molecular_graph.hpp"
#include "datasets/registry.hpp"
#include "datasets/stereo.hpp"
#include "engine/checkpoint.hpp"
#include "engine/conformer_flow.hpp"
#include "tools/commands.hpp"
#include "tools/conformer_generation.hpp"
#include "tools/option_groups.hpp"
#include "tools/options.hpp"
#include "tools/outputs.hpp"
#include "tools/progress.hpp"
#include "tools/stop_signal.hpp"

namespace enf::cli {

namespace {

namespace fs = std::filesystem;

const CommandSpec kConformers{
    "conformers",
    "Generate 3-D conformers of given molecules with a conformer model, each with its log-likelihood.",
    "A conformer model (enf train --system qm9-conformers) is a continuous normalizing flow over\n"
    "the atom positions of one molecule whose vector field is conditioned on the molecule's\n"
    "graph (elements, formal charges, bonds, 1-3 and 1-4 relations): it draws geometries of\n"
    "that molecule and gives the density log p(x | graph) of any geometry (nats).\n"
    "--input: a SMILES string ('CCO', optionally followed by a title), a .smi file (one SMILES\n"
    "and title a line), or a molecule file in any format Open Babel reads (.sdf, .mol2, .pdb,\n"
    "...; its bonds and charges are the graph, its coordinates give only the handedness of its\n"
    "stereocentres (--stereo)). Hydrogens are added; the atoms keep the input's order, the added\n"
    "hydrogens come after them. The molecules the model takes: those of its training data's\n"
    "elements and at most its largest training molecule's atoms (with hydrogens), recorded in\n"
    "the checkpoint by enf train (a model without the record, such as the shipped one: H, C,\n"
    "N, O, F and 2 to 29 atoms); another molecule is an error naming it, before any work, or\n"
    "with --skip-unsupported skipped (one line each on stderr) and counted.\n"
    "For each molecule, --n conformers are integrated from prior draws (t = 1 to 0); --dedup R\n"
    "drops a conformer whose heavy-atom RMSD (after superposition, over the molecule's\n"
    "symmetries) to one already kept is below R Å (after --polish: polished conformers\n"
    "converge, so more are dropped).\n" +
        std::string(kTwoSolversHelp) + "\n" + kPolishHelp +
        "\n"
    "Each kept conformer is then scored, log p(x | graph), by the other solver: --method\n"
    "(dopri5) to --rtol and --atol with --trace (exact), so the log-likelihood written with it\n"
    "is as accurate as before, whatever the sampler.\n"
    "--stereo keep (default): the model is invariant under reflections (its field is\n"
    "E(3)-equivariant, mirror images included), so it draws the handedness of stereocentres at\n"
    "random. The tetrahedral stereocentres the input specifies (SMILES @/@@, wedges, or a 3-D\n"
    "file's own geometry; unspecified ones are free) are kept by reflecting each sampled\n"
    "conformer through its centroid when more of its centres are inverted than not, before\n"
    "--dedup: log p(x | graph) is unchanged by the reflection. Centres whose relative\n"
    "configuration came out wrong cannot all be fixed so; the summary tells the share kept.\n"
    "--stereo any: no reflection. Double-bond (E/Z) stereo is not kept: the model's graph is\n"
    "the same for E and Z.\n"
    "Seeds: molecule m (its record in the input, skipped ones counted) draws from\n"
    "Rng(--seed).split(m), conformer k from that molecule's stream split by k, so a conformer\n"
    "does not depend on --threads or on the other molecules.\n"
    "--out: one multi-record .sdf (each record the input molecule with one conformer: same atom\n"
    "order, bonds, charges and title, and the data field enf_log_likelihood) or a multi-frame\n"
    ".xyz ('<title> enf_log_likelihood=<value>' comment lines; no bonds). It is written at the\n"
    "end, atomically. stderr: progress, then a summary (molecules, conformers written, dropped\n"
    "as duplicates, skipped, seconds per conformer, field evaluations per conformer of the\n"
    "sampling and of the scoring, the polish (ms per conformer, molecules left unpolished), the share of conformers whose bonds as Open\n"
    "Babel perceives them from the generated geometry are exactly the input's, and the share of\n"
    "the conformers of molecules with specified stereocentres that keep all of them).\n"
    "Ctrl-C or SIGTERM: no new molecule starts, the one in progress finishes, the finished\n"
    "molecules are written, exit 130 (SIGINT) or 143 (SIGTERM); a second signal exits at once,\n"
    "writing nothing.\n"
    "--model: by default qm9-conformers, the conformer model shipped with enf (trained on QM9:\n"
    "small organic molecules of H, C, N, O, F; 'enf data list' names its training run), or a\n"
    "model of your own (enf train --system qm9-conformers).\n"
    "Examples:\n"
    "  enf conformers --input 'CCO ethanol' --n 10 --out ethanol.sdf\n"
    "  enf conformers --input mols.sdf --n 20 --dedup 0.5 --out confs.sdf\n"
    "  enf conformers --model runs/conformers/best --input mols.smi --n 5 --out confs.xyz\n"
    "  enf conformers --input 'CCO ethanol' --sample-method dopri5 --out e.sdf    (sampled as before rk4)\n"
    "  enf score --model qm9-conformers --input confs.sdf    (log p(x | graph) of given geometries)\n"
    "  enf conformers eval --help    (MAT and COV of generated conformers against reference geometries)",
    with_groups(
        {
            {"model", "CKPT|NAME", kDefaultConformerModel,
             "conformer model: a checkpoint directory, or the name of a shipped one ('enf data list')"},
            {"input", "FILE|SMILES", "", "molecules: a SMILES string, a .smi file or any Open Babel molecule file"},
            {"n", "K", "10", "conformers per molecule", "1", "100000"},
            {"out", "FILE", "", "output: .sdf (multi-record) or .xyz (multi-frame)"},
            {"format", "sdf|xyz", "", "output format (default: from the --out extension)"},
            {"dedup", "RMSD", "0", "drop conformers within this heavy-atom RMSD (Å) of a kept one (0: keep all)", "0"},
            {"stereo", "keep|any", "keep",
             "keep: reflect each conformer to the input's tetrahedral stereo (free: log p is reflection-invariant)"},
            {"skip-unsupported", "", "", "skip (and count) molecules with elements or sizes the model has not seen"},
            force_option(),
        },
        {{sampling_group()},
         {solver_group(),
          {},
          {{kMethod, "dopri5", "ODE solver scoring each conformer (log p(x | graph)): dopri5, cash_karp, fehlberg78, rk4, euler"},
           {kRtol, "1e-5", "relative tolerance of the scoring (and of an adaptive --sample-method)"},
           {kAtol, "1e-5", "absolute tolerance of the scoring (and of an adaptive --sample-method)"},
           {kFixedSteps, "100", "fixed-step --method: N equal steps of the scoring"},
           {kTrace, "exact", "divergence for log p(x | graph)"}}},
         {polish_group()},
         {runtime_group(), {kThreads, kSeed}}})};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A temporary directory, removed with what it holds: write_conformer_sdf and
// _xyz write whole files, and the output is their concatenation.
class ScratchDirectory {
 public:
  ScratchDirectory() {
    std::string pattern = (fs::temp_directory_path() / "enf-conformers-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("cannot create a temporary directory in " + pattern);
    path_ = pattern;
  }
  ~ScratchDirectory() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// The kept conformers of a molecule: k in order, dropped when its heavy-atom
// RMSD to a kept one is below rmsd (0: all kept).
std::vector<std::vector<double>> deduplicate(const Molecule& m, std::vector<std::vector<double>> x, double rmsd) {
  if (rmsd <= 0) return x;
  std::vector<std::vector<double>> kept;
  Molecule ref = m;
  for (auto& xk : x) {
    bool duplicate = false;
    for (const auto& kj : kept) {
      ref.positions = kj;
      if (heavy_atom_rmsd(ref, xk, true) < rmsd) {
        duplicate = true;
        break;
      }
    }
    if (!duplicate) kept.push_back(std::move(xk));
  }
  return kept;
}

}  // namespace

int run_conformers(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "eval") return run_conformers_eval({args.begin() + 1, args.end()});
  ParsedOptions opt(kConformers, args);
  if (opt.help()) return std::fputs(usage(kConformers).c_str(), stdout), 0;
  const std::string model = resolve_model(opt.str("model")), input = opt.str("input"), out = opt.str("out");
  if (input.empty() || out.empty()) throw UsageError("--input and --out are required");
  std::string format = opt.str("format");
  if (format.empty()) {
    if (ends_with(out, ".sdf") || ends_with(out, ".sd")) format = "sdf";
    else if (ends_with(out, ".xyz")) format = "xyz";
    else throw UsageError("--out '" + out + "': give --format sdf or xyz (the extension is neither .sdf nor .xyz)");
  } else {
    format = opt.choice("format", {"sdf", "xyz"});
  }
  const int K = opt.integer("n");
  const double dedup = opt.real("dedup");
  const bool keep_stereo = opt.choice("stereo", {"keep", "any"}) == "keep";
  const Runtime rt = parse_runtime(opt);
  const CnfOptions cnf = parse_solver(opt), sampling = parse_sampling(opt, cnf);
  const bool sample_single = parse_sample_single(opt);
  const Polish polish = parse_polish(opt);
  check_output("out", out, {model, input}, opt.flag("force"), "output");

  const Checkpoint c = load_conformer_model(model);
  // Every molecule is read and checked before any work: an unsupported one
  // found after an hour of conformers would waste it.
  std::vector<Molecule> mols = read_conformer_inputs(input);
  long skipped = 0;
  const std::vector<std::size_t> todo =
      supported_molecules(mols, conformer_support(c), opt.flag("skip-unsupported"), "conformers", "molecule", &skipped);

  if (todo.empty()) throw std::runtime_error("no molecule of '" + input + "' is one the model takes");
  VectorField<double> field(c.field, c.params.layout);
  ConformerFlow<double> scorer(field, cnf, rt.threads);
  ConformerSampler sampler(c, sampling, rt.threads, sample_single);
  Polisher polisher(polish, sampler.threads(), "conformers");
  const ScratchDirectory scratch;
  const std::string part = scratch.file(format == "sdf" ? "molecule.sdf" : "molecule.xyz");
  const StopSignal stop(
      "\nenf conformers: stopping: no new molecule is started; the one in progress finishes and the finished ones "
      "are written (a second Ctrl-C exits at once, writing nothing)\n",
      "\nenf conformers: second signal: exiting at once; nothing written\n");
  std::fprintf(stderr,
               "enf conformers: %zu molecules x %d conformers on %d thread%s, sampled by %s (%s), scored by %s (float64) "
               "with the %s trace; polish: %s\n",
               todo.size(), K, scorer.threads(), scorer.threads() == 1 ? "" : "s",
               describe_solver(sampling.solver).c_str(), sample_single ? "float32" : "float64",
               describe_solver(cnf.solver).c_str(),
               to_string(cnf.trace).c_str(), polish.describe().c_str());
  std::string text;  // the output, molecule after molecule
  long written = 0, dropped = 0, connected = 0, sample_nfe = 0, score_nfe = 0;
  // Over the molecules with specified stereocentres: them, their conformers
  // written, those keeping every centre, those reflected to.
  long stereo_molecules = 0, stereo_conformers = 0, stereo_kept_count = 0, reflected = 0;
  int finished = 0, done = 0;
  Progress progress("conformers", int(todo.size()) * K);
  const auto t0 = Clock::now();
  for (std::size_t m : todo) {
    if (stop_requested()) break;
    const Molecule& mol = mols[m];
    const MolecularGraph graph = perceive_graph(mol);
    const ConformerCondition cond = conformer_condition(graph);
    const MoleculeSeeds seeds = molecule_seeds(rt.seed, m);
    std::vector<std::vector<double>> sampled =
        draw_conformers(sampler, mol, cond, K, seeds.sample, keep_stereo, &polisher, &sample_nfe, &reflected);
    std::vector<std::vector<double>> x = deduplicate(mol, std::move(sampled), dedup);
    dropped += K - long(x.size());
    done += K - int(x.size());
    progress(done);
    std::vector<double> log_p(x.size());
    const std::vector<const ConformerCondition*> conds(x.size(), &cond);
    // The molecule in progress is finished on a stop (its conformers are
    // kept), so stop is never asked here.
    scorer.log_likelihood_each(
        c.params.values.data(), conds, x, seeds.noise, [] { return false; },
        [&](int i, ForwardResult&& r) {
          log_p[i] = r.log_px;
          score_nfe += r.solve.stats.nfe;
          progress(++done);
        });
    for (const auto& xk : x) connected += connectivity_preserved(graph, xk);
    if (!mol.stereo.empty()) {
      ++stereo_molecules;
      stereo_conformers += long(x.size());
      for (const auto& xk : x) stereo_kept_count += stereo_kept(mol.stereo, xk);
    }
    if (format == "sdf")
      write_conformer_sdf(part, mol, x, log_p);
    else
      write_conformer_xyz(part, mol, x, log_p);
    text += read_file_bytes(part, "temporary");
    written += long(x.size());
    ++finished;
  }
  const double seconds = since(t0);
  const bool interrupted = stop_requested();
  if (finished == 0) {
    std::fprintf(stderr, "\nenf conformers: interrupted before any molecule was finished: %s not written\n",
                 out.c_str());
    return stop_exit_code();
  }
  write_file_atomically(out, text, "output");
  const long generated = long(finished) * K;
  char stereo_text[256];
  if (stereo_molecules == 0)
    std::snprintf(stereo_text, sizeof stereo_text, "no molecule has specified tetrahedral stereocentres");
  else
    std::snprintf(stereo_text, sizeof stereo_text,
                  "stereo kept in %.1f %% (%ld of the %ld conformers of the %ld molecules with specified tetrahedral "
                  "stereocentres; --stereo %s, %ld sampled conformers reflected)",
                  stereo_conformers > 0 ? 100.0 * double(stereo_kept_count) / double(stereo_conformers) : 0.0,
                  stereo_kept_count, stereo_conformers, stereo_molecules, keep_stereo ? "keep" : "any", reflected);
  std::fprintf(stderr,
               "%senf conformers: %d of %zu molecules, %ld conformers written to %s, %ld dropped as duplicates "
               "(--dedup %g Å), %ld molecules skipped; %.3f s per conformer (field evaluations per conformer: %.1f "
               "sampling, %.1f scoring); %s; bonds perceived from the geometry equal the input's in %.1f %% (%ld of %ld); %s\n",
               interrupted ? "\ninterrupted: " : "", finished, todo.size(), written,
               out.c_str(), dropped, dedup, skipped, generated > 0 ? seconds / double(generated) : 0.0,
               generated > 0 ? double(sample_nfe) / double(generated) : 0.0,
               written > 0 ? double(score_nfe) / double(written) : 0.0, polisher.summary().c_str(),
               written > 0 ? 100.0 * double(connected) / double(written) : 0.0, connected, written, stereo_text);
  return interrupted ? stop_exit_code() : 0;
}

}  // namespace enf::cli
