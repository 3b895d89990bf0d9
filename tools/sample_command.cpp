// enf sample: structures (particle models) or molecules (QM9 models) drawn
// from a flow, z from the prior integrated from t = 1 to 0.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "datasets/energies.hpp"
#include "datasets/file_io.hpp"
#include "datasets/molecule_io.hpp"
#include "datasets/molecule_metrics.hpp"
#include "datasets/npy.hpp"
#include "datasets/systems.hpp"
#include "datasets/xyz.hpp"
#include "engine/checkpoint.hpp"
#include "engine/flow.hpp"
#include "engine/molecule_batch.hpp"
#include "tools/commands.hpp"
#include "tools/model_io.hpp"
#include "tools/option_groups.hpp"
#include "tools/options.hpp"
#include "tools/outputs.hpp"
#include "tools/progress.hpp"

namespace enf::cli {

namespace {

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
    with_groups(
        {
            {"model", "CKPT", "", "checkpoint directory"},
            {"n", "N", "100", "number of samples", "1", "1000000"},
            {"out", "FILE", "", "output (.xyz or .npy)"},
            {"log-q", "", "", "also compute log q(x), E(x) and log w of every sample"},
            {"lj-convention", "ordered|unordered", "ordered", "LJ13 pair sum for E(x)"},
            {"atoms", "K", "0", "molecules: atoms per molecule (0: drawn from the model's p(N))"},
            {"no-score", "", "", "molecules: do not compute each molecule's log-likelihood"},
            force_option(),
        },
        {{solver_group(), {}, {{kTrace, "exact", "divergence used by --log-q"}}},
         {runtime_group(), {kThreads, kSeed}}})};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int sample_particles(const ParsedOptions& opt, const Checkpoint& c, const CnfOptions& o, const Runtime& rt) {
  const std::string out = opt.str("out");
  const int N = opt.integer("n");
  if (!ends_with(out, ".xyz") && !ends_with(out, ".npy")) throw UsageError("--out must end in .xyz or .npy");
  for (const char* name : {"atoms", "no-score"})
    if (opt.given(name)) throw UsageError(std::string("--") + name + " applies to molecule models only");
  const LJConvention lj = lj_convention(opt.choice("lj-convention", {"ordered", "unordered"}));
  const int n = particles_in(c), D = c.field.dim;
  VectorField<double> field(c.field, c.params.layout);
  Cnf<VectorField<double>> cnf(field, o);
  BatchFlow<VectorField<double>> flow(cnf, rt.threads);
  const auto t0 = Clock::now();
  const std::vector<double> x = flow.sample(c.params.values.data(), N, n, rt.seed);
  std::fprintf(stderr, "enf sample: %d samples in %.2f s\n", N, since(t0));
  std::vector<std::string> comments(N);
  if (opt.flag("log-q")) {
    const auto r = flow.log_likelihood(c.params.values.data(), x, N, n, rt.seed + 1);
    const bool known = has_target_energy(c.system);
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

std::string number(double v) {
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}

int sample_molecules(const ParsedOptions& opt, const Checkpoint& c, const CnfOptions& cnf, const Runtime& rt) {
  const std::string out = opt.str("out");
  check_molecule_output(out);
  const int N = opt.integer("n"), K = opt.integer("atoms");
  const MoleculeModelConfig& mol = *c.molecule;
  const NodeCountDistribution counts(mol.node_counts);
  if (K != 0 && (K < 2 || K > counts.max_nodes()))
    throw UsageError("--atoms must be between 2 and " + std::to_string(counts.max_nodes()) + " (or 0: drawn from p(N))");
  const std::uint64_t seed = rt.seed;
  // Sizes first, from their own stream, so --n 10 is a prefix of --n 100.
  std::vector<int> atoms(N, K);
  if (K == 0) {
    Rng rng = Rng(seed).split(std::uint64_t(1) << 40);
    for (int& a : atoms) a = counts.sample(rng);
  }
  MoleculeFlow<double> flow(c.field, mol, cnf);
  MoleculeBatch<double> batch(flow, rt.threads);
  const auto t0 = Clock::now();
  Progress progress("sampled", N);
  const auto samples = batch.sample(c.params.values.data(), atoms, seed, progress);
  const double sample_seconds = since(t0);
  std::vector<Molecule> mols(N);
  for (int b = 0; b < N; ++b) {
    Molecule& m = mols[b];
    m.name = "enf sample " + std::to_string(b);
    m.positions = samples[b].x;
    for (int t : samples[b].types) m.atomic_numbers.push_back(kQm9AtomicNumbers[t]);
    int agree = 0;
    for (int i = 0; i < atoms[b]; ++i) agree += samples[b].charges[i] == m.atomic_numbers[i];
    m.properties.emplace_back("integer_charge_agrees", std::to_string(agree) + "/" + std::to_string(atoms[b]));
  }
  // The log-likelihood of each generated molecule under the model (one
  // dequantization draw), and its quality.
  double score_seconds = 0;
  std::vector<MoleculeScore> scores;
  if (!opt.flag("no-score")) {
    std::vector<MoleculeInput> inputs;
    for (const auto& m : mols) inputs.push_back(molecule_input(m));
    const auto t1 = Clock::now();
    Progress scored("scored", N);
    scores = batch.score(c.params.values.data(), inputs, 1, seed + 1, scored);
    score_seconds = since(t1);
  }
  std::vector<MoleculeQuality> quality;
  for (int b = 0; b < N; ++b) {
    Molecule& m = mols[b];
    if (!scores.empty()) m.properties.emplace_back("log_likelihood", number(scores[b].log_p));
    quality.push_back(annotate_molecule(m));
  }
  write_molecules(out, mols);
  const QualitySummary s = summarize_quality(quality);
  std::printf("molecules,atom_stability,molecule_stability,validity,uniqueness,seconds_per_molecule_sampling,"
              "seconds_per_molecule_scoring\n");
  std::printf("%ld,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f\n", s.molecules, s.atom_stability, s.molecule_stability, s.validity,
              s.uniqueness, sample_seconds / N, score_seconds / N);
  std::fprintf(stderr, "wrote %d molecules to %s (atom stability %.1f %%, molecule stability %.1f %%, validity %.1f %%)\n",
               N, out.c_str(), 100 * s.atom_stability, 100 * s.molecule_stability, 100 * s.validity);
  return 0;
}

}  // namespace

int run_sample(const std::vector<std::string>& args) {
  ParsedOptions opt(kSample, args);
  if (opt.help()) return std::fputs(usage(kSample).c_str(), stdout), 0;
  if (opt.str("model").empty() || opt.str("out").empty()) throw UsageError("--model and --out are required");
  opt.integer("n");  // a bad --n is a usage error before the model is read
  const Runtime rt = parse_runtime(opt);
  // Before the model is read and the samples drawn (issue 17).
  check_output("out", opt.str("out"), {opt.str("model")}, opt.flag("force"), "output");
  const Checkpoint c = load_checkpoint(opt.str("model"));
  const CnfOptions o = parse_solver(opt);
  return c.molecule ? sample_molecules(opt, c, o, rt) : sample_particles(opt, c, o, rt);
}

}  // namespace enf::cli
