// enf conformers eval: generated conformers judged against reference
// geometries (issue 15; datasets/conformer_evaluation.hpp): MAT, median, COV
// and the share of conformers that keep the molecule's bonds, for enf's own
// conformer model or for any generator's SDF, on the same molecules.
#include <cmath>
#include <cstdio>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "datasets/conformer_evaluation.hpp"
#include "datasets/file_io.hpp"
#include "datasets/molecular_graph.hpp"
#include "datasets/molecule_io.hpp"
#include "datasets/registry.hpp"
#include "datasets/stereo.hpp"
#include "engine/checkpoint.hpp"
#include "engine/conformer_flow.hpp"
#include "engine/data_split.hpp"
#include "tools/commands.hpp"
#include "tools/conformer_generation.hpp"
#include "tools/option_groups.hpp"
#include "tools/options.hpp"
#include "tools/outputs.hpp"
#include "tools/progress.hpp"
#include "tools/stop_signal.hpp"

namespace enf::cli {

namespace {

const CommandSpec kConformersEval{
    "conformers eval",
    "Judge generated conformers against reference geometries: MAT, COV, bonds kept, time per conformer.",
    "For each reference molecule (one geometry each, e.g. QM9's DFT geometry) and the K conformers\n"
    "generated for it, the best RMSD is the smallest heavy-atom RMSD of a conformer to the reference\n"
    "after optimal superposition (Kabsch, proper rotations) and over the molecule's symmetries (the\n"
    "automorphisms Open Babel finds of the heavy-atom graph: two O of a carboxylate, the rings of a\n"
    "symmetric molecule, ...). Over the molecules:\n"
    "  MAT     mean best RMSD (Å); median: its median;\n"
    "  COV@d   share of the molecules whose best RMSD is below d Å (strictly: best < d);\n"
    "  bonds   share of all conformers whose bonds, as Open Babel perceives them from the geometry,\n"
    "          are exactly the reference's (atom pairs; orders not compared);\n"
    "  stereo  share of the conformers of references with tetrahedral stereocentres (as Open Babel\n"
    "          perceives them from the reference's geometry) that have every centre's handedness;\n"
    "          a mirror image is wrong (RMSD uses proper rotations only) and counts as not kept.\n"
    "A molecule with no conformer (a generator failed on it) is counted as missing: left out of\n"
    "MAT and the median, NOT covered in COV (whose denominator is every reference molecule).\n"
    "--reference: molecules with their geometries (.sdf or any molecule file enf reads, or a\n"
    "dataset name such as qm9:test); bonds: the file's, else perceived by Open Babel from the\n"
    "geometry. --held-out keeps the held-out tenth (positions divisible by 10: exactly the molecules\n"
    "`enf train --split tenth` never trains on), --limit N the first N of what is kept.\n"
    "Conformers, one of:\n"
    "  --model CKPT --n K   K conformers per molecule from a conformer model, drawn as enf\n"
    "                       conformers draws them: the same seeds (molecule m from\n"
    "                       Rng(--seed).split(m), m its position among the references), the\n"
    "                       same sampling solver and options (below); timed (not scored);\n"
    "                       --save writes them as SDF; --stereo keep (default) reflects each\n"
    "                       one to the reference's stereocentres as enf conformers does (the\n"
    "                       model is reflection-invariant: log p is unchanged), --stereo any\n"
    "                       leaves them as drawn; a reference the model does not take (an\n"
    "                       element or size its training data lacks, as enf conformers says)\n"
    "                       is an error, or with --skip-unsupported left out and counted;\n"
    "  --generated FILE     any generator's SDF, one record per conformer, titled as its reference\n"
    "                       molecule (atoms in the reference's order); a record whose title is no\n"
    "                       reference's, or whose atoms differ, is an error naming the record.\n"
    "                       --max-per-molecule K keeps each molecule's first K records.\n"
    "Sampling (--model). " +
        std::string(kTwoSolversHelp) +
        " They are not scored here (enf conformers scores\n"
        "them with a second solver, --method).\n"
        "Polish (--model), as enf conformers does (here no --dedup or scoring follow; the seconds per\n"
        "conformer include the polish):\n" + kPolishHelp + "\n"
    "--write-reference FILE writes the chosen references as SDF (bonds, titles, hydrogens), so that\n"
    "other generators get exactly the same molecules; alone, it is all the command does.\n"
    "stdout: a Markdown table (header and one row): method, molecules, missing, conformers per\n"
    "molecule, MAT, median, COV at each --thresholds, bonds kept, stereo kept, seconds per\n"
    "conformer (measured with --model, --seconds-per-conformer with --generated, else blank).\n"
    "--out: one CSV row per molecule. Ctrl-C or SIGTERM: the molecules finished so far are judged\n"
    "and reported, exit 130 or 143; a second signal exits at once.\n"
    "Examples:\n"
    "  enf conformers eval --reference qm9:test --held-out --limit 1000 --write-reference ref.sdf\n"
    "  enf conformers eval --reference ref.sdf --model qm9-conformers --n 10 --out enf.csv\n"
    "  obabel ref.sdf -O gen3d.sdf --gen3d\n"
    "  enf conformers eval --reference ref.sdf --generated gen3d.sdf --label 'obabel --gen3d'",
    with_groups(
        {
            {"reference", "FILE|NAME", "", "reference molecules with their geometries (qm9:test, .sdf, ...)"},
            {"held-out", "", "", "only the held-out tenth of --reference (positions divisible by 10)"},
            {"limit", "N", "0", "only the first N reference molecules (after --held-out; 0: all)", "0", "10000000"},
            {"model", "CKPT|NAME", "", "generate with this conformer model (a qm9-conformers checkpoint, or qm9-conformers: the shipped one)"},
            {"n", "K", "10", "conformers per molecule with --model", "1", "100000"},
            {"stereo", "keep|any", "keep",
             "with --model: reflect each conformer to the reference's tetrahedral stereo (as enf conformers)"},
            {"save", "FILE", "", "with --model: write the generated conformers as SDF"},
            {"skip-unsupported", "", "",
             "with --model: leave out (and count) references with elements or sizes the model has not seen"},
            {"generated", "FILE", "", "judge these conformers (SDF; titles name the reference molecules)"},
            {"max-per-molecule", "K", "0", "with --generated: each molecule's first K records only (0: all)", "0"},
            {"seconds-per-conformer", "S", "", "with --generated: the generator's time, shown in the table"},
            {"label", "NAME", "", "the table's method column (default: enf, or the --generated file)"},
            {"thresholds", "D,D,...", "0.5,0.25", "COV thresholds (Å)"},
            {"out", "FILE", "", "per-molecule CSV: title, atoms, heavy atoms, conformers, best RMSD, ..."},
            {"write-reference", "FILE", "", "write the chosen reference molecules as SDF"},
            force_option(),
        },
        {{sampling_group()},
         {solver_group(),
          {kRtol, kAtol},
          {{kRtol, "1e-5", "relative tolerance of an adaptive --sample-method"},
           {kAtol, "1e-5", "absolute tolerance of an adaptive --sample-method"}}},
         {polish_group()},
         {runtime_group(), {kThreads, kSeed}}})};

std::vector<double> parse_thresholds(const std::string& text) {
  std::vector<double> t;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || !(v > 0) || !std::isfinite(v))
      throw std::invalid_argument("'" + item + "' is no positive number of Å (expected e.g. 0.5,0.25)");
    t.push_back(v);
  }
  if (t.empty()) throw std::invalid_argument("expected at least one threshold (e.g. 0.5,0.25)");
  return t;
}

// The reference molecules: --reference, its held-out tenth with --held-out,
// the first --limit; each with its graph stored as bonds (bonds_known), so
// that the SDF --write-reference writes and every judge use the same bonds.
std::vector<Molecule> load_references(const ParsedOptions& opt) {
  const std::string spec = opt.str("reference");
  MoleculeSet all = read_molecules(spec);
  std::vector<Molecule> refs;
  if (opt.flag("held-out")) {
    // The same function as enf train --split tenth, on the same file order.
    for (int p : every_kth_held_out(int(all.molecules.size()), 10).held_out)
      refs.push_back(std::move(all.molecules[std::size_t(p)]));
  } else {
    refs = std::move(all.molecules);
  }
  const long limit = opt.integer("limit");
  if (limit > 0 && long(refs.size()) > limit) refs.resize(std::size_t(limit));
  if (refs.empty()) throw std::runtime_error("--reference '" + spec + "': no molecule selected");
  long warned = 0;
  std::string example;
  for (Molecule& m : refs) {
    if (m.bonds_known) continue;
    std::string warning;
    const MolecularGraph g = perceive_graph(m, &warning);
    if (!warning.empty() && warned++ == 0) example = m.name + ": " + warning;
    m.bonds = g.molecule_bonds();
    m.formal_charges = g.formal_charges();
    m.bonds_known = true;
  }
  // Each reference's stereo is that of its 3-D geometry (Open Babel's
  // perception, on the bonds just fixed).
  for (Molecule& m : refs) m.stereo = tetrahedral_centres_from_geometry(m);
  if (warned > 0)
    std::fprintf(stderr, "enf conformers eval: Open Babel warned while perceiving the bonds of %ld references (e.g. %s)\n",
                 warned, example.c_str());
  return refs;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string per_molecule_csv(const std::vector<MoleculeEvaluation>& results) {
  std::string text =
      "title,atoms,heavy_atoms,conformers,best_rmsd,best_conformer,connectivity_kept,stereo_centres,stereo_kept\n";
  char buf[128];
  for (const auto& r : results) {
    text += csv_field(r.name);
    std::snprintf(buf, sizeof buf, ",%d,%d,%d,", r.atoms, r.heavy_atoms, r.conformers);
    text += buf;
    // Missing: empty fields, not a number that could be averaged by mistake.
    if (!r.missing()) {
      std::snprintf(buf, sizeof buf, "%.6f,%d", r.best_rmsd, r.best_conformer + 1);
      text += buf;
    } else {
      text += ",";
    }
    std::snprintf(buf, sizeof buf, ",%d,%d,%d\n", r.connectivity_kept, r.stereo_centres, r.stereo_kept);
    text += buf;
  }
  return text;
}

std::string format(const char* fmt, double v) {
  if (std::isnan(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// The Markdown table: a header and one row.
std::string table(const std::string& label, const EvaluationSummary& s, const std::string& seconds) {
  std::string head = "| method | molecules | missing | conformers per molecule | MAT (Å) | median (Å) |";
  std::string rule = "|---|---:|---:|---:|---:|---:|";
  const long judged = s.molecules - s.missing;
  std::string row = "| " + label + " | " + std::to_string(s.molecules) + " | " + std::to_string(s.missing) + " | " +
                    format("%.1f", judged > 0 ? double(s.conformers) / double(judged) : NAN) + " | " +
                    format("%.3f", s.mat) + " | " + format("%.3f", s.median) + " |";
  for (const Coverage& c : s.coverage) {
    // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive,
    // GCC bug 105329) on a literal + a temporary string here.
    head += " COV@";
    head += format("%g", c.threshold);
    head += " Å |";
    rule += "---:|";
    row += " ";
    row += format("%.1f", 100.0 * c.share);
    row += " % |";
  }
  head += " bonds kept | stereo kept | s per conformer |\n";
  rule += "---:|---:|---:|\n";
  const std::string stereo = std::isnan(s.stereo_share()) ? "n/a" : format("%.1f", 100.0 * s.stereo_share()) + " %";
  row += " " + format("%.1f", 100.0 * s.connectivity_share()) + " % | " + stereo + " | " + seconds + " |\n";
  return head + rule + row;
}

// K conformers per reference from the model, as enf conformers draws them
// (reference k seeded by its position seed_index[k] among the references
// chosen, skipped ones counted). Returns the molecules finished (a prefix: a
// stop ends it early).
struct Generated {
  std::vector<std::vector<std::vector<double>>> conformers;  // per finished molecule
  double seconds = 0;
  long nfe = 0;
  std::string polish_summary;
};
Generated generate(const ParsedOptions& opt, const Checkpoint& c, const CnfOptions& sampling, const Polish& polish,
                   const std::vector<Molecule>& refs, const std::vector<std::size_t>& seed_index) {
  const int K = opt.integer("n");
  const Runtime rt = parse_runtime(opt);
  const bool keep_stereo = opt.choice("stereo", {"keep", "any"}) == "keep";
  ConformerSampler sampler(c, sampling, rt.threads, parse_sample_single(opt));
  std::fprintf(stderr,
               "enf conformers eval: generating %zu molecules x %d conformers on %d thread%s, sampled by %s (%s); "
               "polish: %s\n",
               refs.size(), K, sampler.threads(), sampler.threads() == 1 ? "" : "s",
               describe_solver(sampling.solver).c_str(), sampler.single() ? "float32" : "float64",
               polish.describe().c_str());
  Polisher polisher(polish, sampler.threads(), "conformers eval");
  Generated g;
  Progress progress("generated molecules", int(refs.size()));
  for (std::size_t m = 0; m < refs.size() && !stop_requested(); ++m) {
    const ConformerCondition cond = conformer_condition(perceive_graph(refs[m]));
    // enf conformers' streams: the prior draws of the molecule's stream (its
    // trace noise is not needed here).
    const MoleculeSeeds seeds = molecule_seeds(rt.seed, seed_index[m]);
    const auto t0 = Clock::now();
    g.conformers.push_back(draw_conformers(sampler, refs[m], cond, K, seeds.sample, keep_stereo, &polisher, &g.nfe, nullptr));
    g.seconds += since(t0);
    progress(int(m + 1));
  }
  g.polish_summary = polisher.summary();
  return g;
}

void save_ensemble(const std::string& path, const std::vector<Molecule>& refs,
                   const std::vector<std::vector<std::vector<double>>>& conformers) {
  std::vector<Molecule> out;
  for (std::size_t m = 0; m < conformers.size(); ++m)
    for (const auto& x : conformers[m]) {
      Molecule c = refs[m];
      c.properties.clear();  // they describe the reference's geometry, not this one
      c.positions = x;
      out.push_back(std::move(c));
    }
  write_molecules(path, out);
}

}  // namespace

int run_conformers_eval(const std::vector<std::string>& args) {
  ParsedOptions opt(kConformersEval, args);
  if (opt.help()) return std::fputs(usage(kConformersEval).c_str(), stdout), 0;
  const std::string reference = opt.str("reference"), model = opt.str("model"), generated = opt.str("generated");
  const std::string out = opt.str("out"), save = opt.str("save"), write_reference = opt.str("write-reference");
  if (reference.empty()) throw UsageError("--reference is required");
  if (!model.empty() && !generated.empty()) throw UsageError("give --model or --generated, not both");
  if (model.empty() && generated.empty() && write_reference.empty())
    throw UsageError("give --model CKPT or --generated FILE (conformers to judge), or --write-reference FILE");
  if (!save.empty() && model.empty()) throw UsageError("--save writes what --model generates: give --model");
  if (generated.empty() && (opt.given("max-per-molecule") || opt.given("seconds-per-conformer")))
    throw UsageError("--max-per-molecule and --seconds-per-conformer go with --generated");
  if (model.empty() && (opt.given("n") || opt.given("stereo") || opt.given(kSampleMethod) || opt.given(kSampleSteps) ||
                        opt.given(kSamplePrecision) ||
                        opt.given(kRtol) || opt.given(kAtol) || opt.given(kPolish) || opt.given(kPolishSteps) ||
                        opt.given(kPolishMethod)))
    throw UsageError("--n, --stereo, the sampling options and --polish go with --model (--generated conformers are "
                     "judged as they are)");
  const std::vector<double> thresholds = opt.parsed("thresholds", parse_thresholds);
  std::string seconds_text = opt.str("seconds-per-conformer");
  if (!seconds_text.empty())
    opt.parsed("seconds-per-conformer", [](const std::string& s) {
      std::size_t used = 0;
      double v = -1;
      try {
        v = std::stod(s, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != s.size() || !(v >= 0) || !std::isfinite(v))
        throw std::invalid_argument("'" + s + "' is no number of seconds >= 0");
      return v;
    });
  const bool force = opt.flag("force");
  const std::vector<std::string> inputs = {reference, model, generated};
  for (const auto& [name, path] : {std::pair<const char*, std::string>{"out", out}, {"save", save},
                                   {"write-reference", write_reference}})
    if (!path.empty()) check_output(name, path, inputs, force, "output");
  if (!save.empty()) check_molecule_output(save);
  if (!write_reference.empty()) check_molecule_output(write_reference);

  if (model.empty() && opt.given("skip-unsupported"))
    throw UsageError("--skip-unsupported goes with --model (the molecules a model has not seen)");
  // The options and the model first: a mistake in either is said before the
  // references are read.
  const CnfOptions sampling = parse_sampling(opt, parse_solver(opt));
  const Polish polish = parse_polish(opt);
  std::optional<Checkpoint> c;
  if (!model.empty()) c = load_conformer_model(model);
  std::vector<Molecule> refs = load_references(opt);
  std::fprintf(stderr, "enf conformers eval: %zu reference molecules from %s%s\n", refs.size(), reference.c_str(),
               opt.flag("held-out") ? " (held-out tenth)" : "");
  if (!write_reference.empty()) {
    write_molecules(write_reference, refs);
    std::fprintf(stderr, "enf conformers eval: wrote the references to %s\n", write_reference.c_str());
  }
  if (model.empty() && generated.empty()) return 0;
  // With --model, the references it takes (their positions seed them).
  std::vector<std::size_t> seed_index(refs.size());
  for (std::size_t m = 0; m < refs.size(); ++m) seed_index[m] = m;
  long skipped = 0;
  if (c) {
    seed_index = supported_molecules(refs, conformer_support(*c), opt.flag("skip-unsupported"), "conformers eval",
                                     "reference", &skipped);
    if (seed_index.empty()) throw std::runtime_error("no reference molecule is one the model takes");
    if (skipped > 0) {
      std::vector<Molecule> kept;
      for (std::size_t m : seed_index) kept.push_back(std::move(refs[m]));
      refs = std::move(kept);
      std::fprintf(stderr, "enf conformers eval: %ld references skipped, %zu judged\n", skipped, refs.size());
    }
  }

  const StopSignal stop(
      "\nenf conformers eval: stopping: no new molecule is started; the finished ones are judged and reported (a "
      "second Ctrl-C exits at once)\n",
      "\nenf conformers eval: second signal: exiting at once\n");
  std::vector<std::vector<std::vector<double>>> conformers;
  std::string label = opt.str("label");
  if (!model.empty()) {
    Generated g = generate(opt, *c, sampling, polish, refs, seed_index);
    conformers = std::move(g.conformers);
    long count = 0;
    for (const auto& c : conformers) count += long(c.size());
    if (seconds_text.empty() && count > 0) seconds_text = format("%.3g", g.seconds / double(count));
    std::fprintf(stderr, "enf conformers eval: %ld conformers in %.1f s (%s s per conformer, %.0f field evaluations "
                 "per conformer); %s\n", count, g.seconds, seconds_text.c_str(), count > 0 ? double(g.nfe) / double(count) : 0.0,
                 g.polish_summary.c_str());
    if (!save.empty() && !conformers.empty()) save_ensemble(save, refs, conformers);
    if (label.empty()) label = "enf";
  } else {
    MoleculeReadOptions ro;
    ro.max_atoms = 0;  // the reference's atom count is what is checked, with a message saying so
    const MoleculeSet set = read_molecules(generated, ro);
    long dropped = 0;
    conformers = group_conformers_by_title(refs, set.molecules, generated, opt.integer("max-per-molecule"), &dropped);
    std::fprintf(stderr, "enf conformers eval: %zu conformers read from %s", set.molecules.size(), generated.c_str());
    if (dropped > 0) std::fprintf(stderr, ", %ld past --max-per-molecule left out", dropped);
    std::fputc('\n', stderr);
    if (label.empty()) label = generated;
  }

  // A stop during generation keeps the molecules finished by then, and they
  // are judged (quick beside generating them); a stop during judging ends it.
  const bool stopped_before = stop_requested();
  std::vector<MoleculeEvaluation> results;
  Progress progress("judged molecules", int(conformers.size()));
  for (std::size_t m = 0; m < conformers.size() && (stopped_before || !stop_requested()); ++m) {
    results.push_back(evaluate_molecule(refs[m], conformers[m]));
    progress(int(m + 1));
  }
  const bool interrupted = stop_requested();
  if (interrupted && results.empty()) {
    std::fprintf(stderr, "\nenf conformers eval: interrupted before any molecule was judged: nothing reported\n");
    return stop_exit_code();
  }
  const EvaluationSummary s = summarize_evaluation(results, thresholds);
  if (!out.empty()) write_file_atomically(out, per_molecule_csv(results), "output");
  std::fputs(table(label, s, seconds_text).c_str(), stdout);
  std::fflush(stdout);
  const std::string skipped_text =
      skipped > 0 ? "; " + std::to_string(skipped) + " more skipped: the model does not take them" : "";
  std::fprintf(stderr, "%senf conformers eval: %zu of %zu molecules judged (%ld without a conformer%s), %ld conformers; "
               "MAT %s Å, median %s Å",
               interrupted ? "\ninterrupted: " : "", results.size(), refs.size(), s.missing, skipped_text.c_str(),
               s.conformers,
               format("%.3f", s.mat).c_str(), format("%.3f", s.median).c_str());
  for (const Coverage& c : s.coverage)
    std::fprintf(stderr, ", COV@%g %.1f %% (%ld)", c.threshold, 100.0 * c.share, c.covered);
  std::fprintf(stderr, "; bonds kept in %ld of %ld conformers; ", s.connectivity_kept, s.conformers);
  if (s.stereo_molecules == 0)
    std::fprintf(stderr, "no judged reference has tetrahedral stereocentres\n");
  else
    std::fprintf(stderr, "stereo kept in %ld of the %ld conformers of the %ld references with tetrahedral stereocentres\n",
                 s.stereo_kept, s.stereo_conformers, s.stereo_molecules);
  return interrupted ? stop_exit_code() : 0;
}

}  // namespace enf::cli
