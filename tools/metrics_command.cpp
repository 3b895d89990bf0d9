// enf metrics: stability, validity, uniqueness and novelty of the molecules of
// a file, as E-NF / EDM report them for generated QM9 molecules.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "datasets/file_io.hpp"
#include "datasets/molecule_io.hpp"
#include "datasets/molecule_metrics.hpp"
#include "tools/commands.hpp"
#include "tools/options.hpp"
#include "tools/outputs.hpp"

namespace enf::cli {

namespace {

const CommandSpec kMetrics{
    "metrics",
    "Quality of the molecules of a file as E-NF and EDM measure it: stability, validity, uniqueness, novelty.",
    "Bonds come from interatomic distances alone (the input's own bonds, if any, are ignored):\n"
    "a pair is bonded when closer than a typical bond length + 10 pm, and the bond is double\n"
    "or triple when closer than the double (+5 pm) or triple (+3 pm) bond length of that pair\n"
    "(EDM's qm9/bond_analyze.py tables for H, C, N, O, F).\n"
    "\n"
    "  atom stability      fraction of atoms whose bond orders sum exactly to their valence\n"
    "                      (H 1, C 4, N 3, O 2, F 1)\n"
    "  molecule stability  fraction of molecules whose atoms are all stable\n"
    "  validity            fraction of molecules that RDKit's sanitization would accept (as EDM):\n"
    "                      no atom above its valence after charge-separating 5-valent N\n"
    "                      (nitro groups); missing valence is filled with implicit H, so a\n"
    "                      molecule can be valid without being stable. Checked with Open\n"
    "                      Babel, which must also kekulize its aromatic form.\n"
    "  uniqueness          distinct identities among the valid molecules / valid molecules; a\n"
    "                      molecule's identity is EDM's: the canonical SMILES (Open Babel) of\n"
    "                      its largest fragment, hydrogen atoms written as [H]\n"
    "  novelty             with --reference: fraction of those distinct SMILES not found among\n"
    "                      the reference file's valid molecules (e.g. the training set)\n"
    "\n"
    "Real QM9 molecules score about 99% atom and 95% molecule stability with these tables\n"
    "(EDM's 'data' row); a model's samples are judged against that.\n"
    "Inputs: .npz (EDM splits), .xyz (QM9 or multi-frame), .sdf and other Open Babel formats.\n"
    "--per-molecule writes one CSV row per molecule: index, name, atoms, stable_atoms, stable,\n"
    "valid, fragments, smiles (the whole molecule with those bonds, hydrogens implicit: the\n"
    "'smiles' field enf sample writes), identity (empty unless valid), and why it is\n"
    "unstable / invalid.\n"
    "\nexamples:\n"
    "  enf metrics --input qm9:test\n"
    "  enf metrics --input samples.xyz --reference qm9:test --format json",
    {
        {"input", "FILE", "", "molecules to judge"},
        {"reference", "FILE", "", "molecules whose SMILES are not novel (e.g. the training set)"},
        {"format", "text|json", "text", "output format on stdout"},
        {"per-molecule", "FILE.csv", "", "also write one CSV row per molecule of --input"},
        {"skip-unsupported", "", "", "skip molecules with elements other than H, C, N, O, F (default: error)"},
        force_option(),
    }};

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

MoleculeSet read_for_metrics(const std::string& path, bool skip_unsupported) {
  MoleculeReadOptions o;
  o.skip_unsupported = skip_unsupported;
  o.max_atoms = 1 << 20;  // the metrics need no size limit
  o.centre = false;       // irrelevant: every metric is translation invariant
  MoleculeSet set = read_molecules(path, o);
  if (set.skipped > 0) {
    std::fprintf(stderr, "enf metrics: %s: skipped %ld molecules with unsupported elements", path.c_str(), set.skipped);
    if (!set.skip_reasons.empty()) std::fprintf(stderr, " (e.g. %s)", set.skip_reasons.front().c_str());
    std::fputc('\n', stderr);
  }
  if (set.molecules.empty()) throw std::runtime_error("'" + path + "' holds no molecules to judge");
  return set;
}

}  // namespace

int run_metrics(const std::vector<std::string>& args) {
  ParsedOptions opt(kMetrics, args);
  if (opt.help()) return std::fputs(usage(kMetrics).c_str(), stdout), 0;
  const std::string input = opt.str("input"), reference = opt.str("reference");
  if (input.empty()) throw UsageError("--input is required");
  const std::string format = opt.choice("format", {"text", "json"});
  const bool skip = opt.flag("skip-unsupported");
  if (!opt.str("per-molecule").empty())
    check_output("per-molecule", opt.str("per-molecule"), {input, reference}, opt.flag("force"), "per-molecule CSV");
  const auto t0 = std::chrono::steady_clock::now();

  const MoleculeSet set = read_for_metrics(input, skip);
  std::fprintf(stderr, "enf metrics: %zu molecules from %s\n", set.molecules.size(), input.c_str());
  const std::vector<MoleculeQuality> results = evaluate_molecules(set.molecules);
  QualitySummary s;
  long reference_molecules = 0;
  if (!reference.empty()) {
    const MoleculeSet ref = read_for_metrics(reference, skip);
    reference_molecules = long(ref.molecules.size());
    std::fprintf(stderr, "enf metrics: %ld reference molecules from %s\n", reference_molecules, reference.c_str());
    s = summarize_quality(results, unique_valid_smiles(evaluate_molecules(ref.molecules)));
  } else {
    s = summarize_quality(results);
  }

  if (!opt.str("per-molecule").empty()) {
    std::ostringstream csv;
    csv << "index,name,atoms,stable_atoms,stable,valid,fragments,smiles,identity,instability,invalidity\n";
    for (std::size_t i = 0; i < results.size(); ++i) {
      const MoleculeQuality& r = results[i];
      csv << i << ',' << csv_field(set.molecules[i].name) << ',' << r.atoms << ',' << r.stable_atoms << ','
          << (r.stable ? 1 : 0) << ',' << (r.valid ? 1 : 0) << ',' << r.fragments << ',' << csv_field(r.record_smiles) << ','
          << csv_field(r.smiles) << ',' << csv_field(r.instability) << ',' << csv_field(r.invalidity) << '\n';
    }
    write_file_atomically(opt.str("per-molecule"), csv.str(), "per-molecule CSV");
    std::fprintf(stderr, "enf metrics: per-molecule results in %s\n", opt.str("per-molecule").c_str());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (format == "json") {
    nlohmann::json j{{"input", input},
                     {"molecules", s.molecules},
                     {"skipped", set.skipped},
                     {"atom_stability", s.atom_stability},
                     {"molecule_stability", s.molecule_stability},
                     {"validity", s.validity},
                     {"uniqueness", s.uniqueness},
                     {"counts",
                      {{"atoms", s.atoms},
                       {"stable_atoms", s.stable_atoms},
                       {"stable_molecules", s.stable_molecules},
                       {"valid", s.valid},
                       {"unique", s.unique}}},
                     {"seconds", seconds}};
    if (s.has_reference) {
      j["reference"] = reference;
      j["novelty"] = s.novelty;
      j["counts"]["novel"] = s.novel;
      j["counts"]["reference_molecules"] = reference_molecules;
      j["counts"]["reference_smiles"] = s.reference_smiles;
    }
    std::puts(j.dump(2).c_str());
  } else {
    std::printf("| %s | value | count |\n|---|---:|---:|\n", input.c_str());
    std::printf("| atom stability | %.4f | %ld / %ld atoms |\n", s.atom_stability, s.stable_atoms, s.atoms);
    std::printf("| molecule stability | %.4f | %ld / %ld molecules |\n", s.molecule_stability, s.stable_molecules,
                s.molecules);
    std::printf("| validity | %.4f | %ld / %ld molecules |\n", s.validity, s.valid, s.molecules);
    std::printf("| uniqueness | %.4f | %ld / %ld valid |\n", s.uniqueness, s.unique, s.valid);
    if (s.has_reference)
      std::printf("| novelty | %.4f | %ld / %ld unique (reference: %ld SMILES) |\n", s.novelty, s.novel, s.unique,
                  s.reference_smiles);
  }
  std::fprintf(stderr, "enf metrics: %.2f s\n", seconds);
  return 0;
}

}  // namespace enf::cli
