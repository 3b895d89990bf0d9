#include "datasets/conformer_evaluation.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <unordered_map>

#include "datasets/molecular_graph.hpp"
#include "datasets/stereo.hpp"

namespace enf {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

double EvaluationSummary::connectivity_share() const {
  return conformers > 0 ? double(connectivity_kept) / double(conformers) : kNaN;
}

double EvaluationSummary::stereo_share() const {
  return stereo_conformers > 0 ? double(stereo_kept) / double(stereo_conformers) : kNaN;
}

MoleculeEvaluation evaluate_molecule(const Molecule& reference, const std::vector<std::vector<double>>& conformers,
                                     bool symmetry) {
  MoleculeEvaluation e;
  e.name = reference.name;
  e.atoms = reference.atoms();
  for (int z : reference.atomic_numbers) e.heavy_atoms += z > 1;
  e.stereo_centres = int(reference.stereo.size());
  const std::size_t size = std::size_t(reference.atoms()) * 3;
  for (std::size_t k = 0; k < conformers.size(); ++k)
    if (conformers[k].size() != size)
      throw std::invalid_argument("molecule '" + reference.name + "': conformer " + std::to_string(k + 1) + " has " +
                                  std::to_string(conformers[k].size()) + " coordinates; expected " +
                                  std::to_string(size) + " (" + std::to_string(reference.atoms()) + " atoms x 3)");
  if (conformers.empty()) return e;
  // The graph once per molecule (perception is the costly part of the check).
  const MolecularGraph graph = perceive_graph(reference);
  e.conformers = int(conformers.size());
  for (std::size_t k = 0; k < conformers.size(); ++k) {
    const double r = heavy_atom_rmsd(reference, conformers[k], symmetry);
    // A non-finite conformer (a diverged integration) has no RMSD; it is
    // judged, never the best, and its NaN cannot hide the others' minimum.
    if (std::isfinite(r) && (e.best_conformer < 0 || r < e.best_rmsd)) {
      e.best_rmsd = r;
      e.best_conformer = int(k);
    }
    e.connectivity_kept += connectivity_preserved(graph, conformers[k]);
    e.stereo_kept += stereo_kept(reference.stereo, conformers[k]);
  }
  if (e.best_conformer < 0) e.best_rmsd = std::numeric_limits<double>::infinity();  // none finite: covered by no δ
  return e;
}

EvaluationSummary summarize_evaluation(const std::vector<MoleculeEvaluation>& molecules,
                                       const std::vector<double>& thresholds) {
  for (double t : thresholds)
    if (!(t > 0) || !std::isfinite(t))
      throw std::invalid_argument("coverage threshold " + std::to_string(t) + ": expected a positive number of Å");
  EvaluationSummary s;
  s.molecules = long(molecules.size());
  std::vector<double> best;
  for (const auto& m : molecules) {
    s.conformers += m.conformers;
    s.connectivity_kept += m.connectivity_kept;
    if (m.stereo_centres > 0 && !m.missing()) {
      ++s.stereo_molecules;
      s.stereo_conformers += m.conformers;
      s.stereo_kept += m.stereo_kept;
    }
    if (m.missing()) ++s.missing;
    else best.push_back(m.best_rmsd);
  }
  s.mat = s.median = kNaN;
  if (!best.empty()) {
    double sum = 0;
    for (double b : best) sum += b;
    s.mat = sum / double(best.size());
    std::sort(best.begin(), best.end());
    const std::size_t h = best.size() / 2;
    s.median = best.size() % 2 ? best[h] : 0.5 * (best[h - 1] + best[h]);
  }
  for (double t : thresholds) {
    Coverage c;
    c.threshold = t;
    for (double b : best) c.covered += b < t;
    c.share = s.molecules > 0 ? double(c.covered) / double(s.molecules) : 0.0;
    s.coverage.push_back(c);
  }
  return s;
}

std::vector<std::vector<std::vector<double>>> group_conformers_by_title(const std::vector<Molecule>& references,
                                                                        const std::vector<Molecule>& records,
                                                                        const std::string& file,
                                                                        int max_per_molecule, long* dropped) {
  std::unordered_map<std::string, std::size_t> by_title;
  for (std::size_t r = 0; r < references.size(); ++r) {
    const auto [at, fresh] = by_title.emplace(references[r].name, r);
    if (!fresh)
      throw std::invalid_argument("reference molecules " + std::to_string(at->second + 1) + " and " +
                                  std::to_string(r + 1) + " share the title '" + references[r].name +
                                  "': generated conformers are matched by title and could not be told apart");
  }
  std::vector<std::vector<std::vector<double>>> grouped(references.size());
  long cut = 0;
  for (std::size_t k = 0; k < records.size(); ++k) {
    const Molecule& g = records[k];
    const std::string where = "generated file '" + file + "': record " + std::to_string(k + 1) + " '" + g.name + "': ";
    const auto it = by_title.find(g.name);
    if (it == by_title.end())
      throw std::runtime_error(where + "its title is no reference molecule's (each record's title must be the title "
                               "of the reference molecule it is a conformer of)");
    const Molecule& ref = references[it->second];
    if (g.atoms() != ref.atoms())
      throw std::runtime_error(where + std::to_string(g.atoms()) + " atoms; expected the reference's " +
                               std::to_string(ref.atoms()) + " (the same atoms in the same order, hydrogens included)");
    for (int a = 0; a < g.atoms(); ++a)
      if (g.atomic_numbers[std::size_t(a)] != ref.atomic_numbers[std::size_t(a)])
        throw std::runtime_error(where + "atom " + std::to_string(a + 1) + " is " +
                                 element_symbol(g.atomic_numbers[std::size_t(a)]) + "; expected " +
                                 element_symbol(ref.atomic_numbers[std::size_t(a)]) +
                                 " as in the reference (the same atoms in the same order)");
    auto& group = grouped[it->second];
    if (max_per_molecule > 0 && int(group.size()) >= max_per_molecule) {
      ++cut;
      continue;
    }
    group.push_back(g.positions);
  }
  if (dropped) *dropped = cut;
  return grouped;
}

}  // namespace enf
