// enf score and enf sample on a molecule checkpoint (QM9): the molecule half
// of the commands in model_commands.cpp, which dispatch here.
#include "tools/molecule_commands.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "datasets/molecule_io.hpp"
#include "datasets/molecule_metrics.hpp"
#include "engine/molecule_batch.hpp"

namespace enf::cli {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// "12/100 molecules, 3.1 s, ETA 22 s" on one stderr line, at most a few times a second.
class Progress {
 public:
  Progress(const char* what, int total) : what_(what), total_(total), start_(Clock::now()), last_(start_) {}
  void operator()(int done) {
    const auto now = Clock::now();
    if (done < total_ && std::chrono::duration<double>(now - last_).count() < 0.5) return;
    last_ = now;
    const double el = since(start_);
    std::fprintf(stderr, "\r%s %d/%d, %.1f s elapsed, ETA %.0f s   ", what_, done, total_, el,
                 done > 0 ? el / done * (total_ - done) : 0.0);
    if (done == total_) std::fputc('\n', stderr);
  }

 private:
  const char* what_;
  int total_;
  Clock::time_point start_, last_;
};

MoleculeModelConfig molecule_config(const Checkpoint& c) {
  if (!c.molecule) throw std::logic_error("not a molecule checkpoint");
  return *c.molecule;
}

}  // namespace

int score_molecules(const ParsedOptions& opt, const Checkpoint& c, const CnfOptions& cnf) {
  const std::string format = opt.choice("format", {"csv", "json"});
  const int draws = opt.integer("samples");
  if (draws < 1) throw UsageError("--samples must be at least 1");
  const int stride = opt.integer("stride"), limit = opt.integer("limit");
  if (stride < 1) throw UsageError("--stride must be at least 1");
  if (limit < 0) throw UsageError("--limit must be non-negative");
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
  std::vector<MoleculeInput> mols;
  for (const auto& m : set.molecules) mols.push_back(molecule_input(m));
  const int rows = int(mols.size());
  std::fprintf(stderr, "enf score: %d molecules from %s, %d dequantization draw%s each, trace %s, rtol %g\n", rows,
               opt.str("input").c_str(), draws, draws == 1 ? "" : "s", to_string(cnf.trace).c_str(),
               cnf.solver.rtol);
  MoleculeFlow<double> flow(c.field, molecule_config(c), cnf);
  MoleculeBatch<double> batch(flow, opt.integer("threads"));
  const auto t0 = Clock::now();
  Progress progress("scored", rows);
  const auto r = batch.score(c.params.values.data(), mols, draws, std::uint64_t(opt.integer("seed")), progress);
  const double seconds = since(t0);
  const long impossible = std::count_if(r.begin(), r.end(), [](const MoleculeScore& e) { return std::isinf(e.first.log_pN); });
  if (impossible > 0)
    std::fprintf(stderr,
                 "enf score: %ld molecule(s) have an atom count to which the model's p(N) gives probability 0 "
                 "(it comes from the training data); their log-likelihood is -inf\n",
                 impossible);
  double mean = 0, var = 0, atoms = 0;
  for (const auto& e : r) mean += e.log_p / rows;
  for (const auto& e : r) var += (e.log_p - mean) * (e.log_p - mean) / std::max(1, rows - 1);
  for (const auto& m : mols) atoms += m.atoms();
  const double se = std::sqrt(var / rows);
  if (format == "json") {
    nlohmann::json j{{"model", opt.str("model")},  {"input", opt.str("input")}, {"trace", to_string(cnf.trace)},
                     {"rtol", cnf.solver.rtol},    {"atol", cnf.solver.atol},   {"samples", draws},
                     {"skipped", set.skipped}};
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
    j["summary"] = {{"count", rows},           {"mean_log_likelihood", mean}, {"standard_error", se},
                    {"nll", -mean},            {"nll_per_atom", -mean * rows / atoms},
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
  std::fprintf(stderr, "NLL %.4f ± %.4f (standard error) over %d molecules in %.1f s (%.3f s per molecule)\n", -mean,
               se, rows, seconds, seconds / rows);
  return 0;
}

int sample_molecules(const ParsedOptions& opt, const Checkpoint& c, const CnfOptions& cnf) {
  const std::string out = opt.str("out");
  check_molecule_output(out);
  const int N = opt.integer("n"), K = opt.integer("atoms");
  const MoleculeModelConfig mol = molecule_config(c);
  const NodeCountDistribution counts(mol.node_counts);
  if (K != 0 && (K < 2 || K > counts.max_nodes()))
    throw UsageError("--atoms must be between 2 and " + std::to_string(counts.max_nodes()) + " (or 0: drawn from p(N))");
  const std::uint64_t seed = std::uint64_t(opt.integer("seed"));
  // Sizes first, from their own stream, so --n 10 is a prefix of --n 100.
  std::vector<int> atoms(N, K);
  if (K == 0) {
    Rng rng = Rng(seed).split(std::uint64_t(1) << 40);
    for (int& a : atoms) a = counts.sample(rng);
  }
  MoleculeFlow<double> flow(c.field, mol, cnf);
  MoleculeBatch<double> batch(flow, opt.integer("threads"));
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
  const auto quality = evaluate_molecules(mols);
  for (int b = 0; b < N; ++b) {
    Molecule& m = mols[b];
    const MoleculeQuality& q = quality[b];
    auto num = [](double v) {
      std::ostringstream s;
      s.precision(10);
      s << v;
      return s.str();
    };
    if (!scores.empty()) m.properties.emplace_back("log_likelihood", num(scores[b].log_p));
    m.properties.emplace_back("atom_stability", num(double(q.stable_atoms) / std::max(1, q.atoms)));
    m.properties.emplace_back("molecule_stable", q.stable ? "1" : "0");
    m.properties.emplace_back("valid", q.valid ? "1" : "0");
    if (!q.smiles.empty()) m.properties.emplace_back("smiles", q.smiles);
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

}  // namespace enf::cli
