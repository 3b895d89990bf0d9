// Judging generated conformers against reference geometries (issue 15): for
// each reference molecule (one geometry, e.g. QM9's DFT one) and the
// conformers a generator made of it (same atoms, same order), the best
// (smallest) symmetric heavy-atom RMSD and how many kept the molecule's
// bonds and how many kept its tetrahedral stereo; over all molecules the
// standard conformer-generation measures:
//   MAT   mean over molecules of the best RMSD (Å);
//   COV@δ share of molecules whose best RMSD is below δ (strictly: < δ).
// Missing molecules (no conformer at all, e.g. a generator that failed on
// them) have no RMSD: they are left out of MAT and the median, and counted
// as NOT covered in COV, so a generator gains no coverage by failing on hard
// molecules; their count is reported beside the measures.
//
// Everything here is serial: the RMSD's automorphisms and the connectivity
// check go through Open Babel's perception, whose typers and error log are
// global state that is not safe to share between threads. Results therefore
// do not depend on any thread count.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "datasets/molecule.hpp"

namespace enf {

// The per-molecule result.
struct MoleculeEvaluation {
  std::string name;
  int atoms = 0, heavy_atoms = 0;
  int conformers = 0;       // generated conformers judged; 0: missing
  double best_rmsd = -1;    // min over the conformers of heavy_atom_rmsd (Å); -1 when missing
  int best_conformer = -1;  // its index among the molecule's conformers; -1 when missing
  int connectivity_kept = 0;  // conformers whose perceived bonds are the reference's (connectivity_preserved)
  int stereo_centres = 0;     // the reference's tetrahedral stereocentres (reference.stereo)
  int stereo_kept = 0;        // conformers with every one of them kept (stereo_kept); all when there are none
  bool missing() const { return conformers == 0; }
};

struct Coverage {
  double threshold = 0;  // δ, Å
  long covered = 0;      // molecules with best RMSD < δ
  double share = 0;      // covered / all reference molecules (missing ones count as not covered); 0 when none
};

struct EvaluationSummary {
  long molecules = 0;  // reference molecules
  long missing = 0;    // of them without any conformer
  long conformers = 0;
  long connectivity_kept = 0;
  // Over the molecules with stereocentres (a mirror image counts as wrong:
  // RMSD uses proper rotations only): them, their conformers, and those
  // conformers with every centre kept.
  long stereo_molecules = 0, stereo_conformers = 0, stereo_kept = 0;
  // Over the molecules with at least one conformer; NaN when there is none.
  double mat = 0, median = 0;
  std::vector<Coverage> coverage;  // one per threshold, in the order given
  double connectivity_share() const;  // connectivity_kept / conformers; NaN when no conformer
  double stereo_share() const;        // stereo_kept / stereo_conformers; NaN when none
};

// The default thresholds δ of COV (Å).
inline const std::vector<double> kDefaultCoverageThresholds = {0.5, 0.25};

// reference's geometry against each of conformers ([n, 3] each, reference's
// atom order). symmetry: the RMSD's minimum over the automorphisms of the
// heavy-atom graph (heavy_atom_rmsd). The graph (for connectivity) is
// reference's bonds when bonds_known, else perceived from its geometry.
// Stereo: the centres of reference.stereo (set them, e.g. with
// tetrahedral_centres_from_geometry, for the measure to mean anything).
// std::invalid_argument naming the molecule and the conformer (1-based) for a
// conformer of the wrong size.
MoleculeEvaluation evaluate_molecule(const Molecule& reference, const std::vector<std::vector<double>>& conformers,
                                     bool symmetry = true);

// MAT, median, COV at each threshold (> 0; std::invalid_argument otherwise)
// and the counts over per-molecule results.
EvaluationSummary summarize_evaluation(const std::vector<MoleculeEvaluation>& molecules,
                                       const std::vector<double>& thresholds = kDefaultCoverageThresholds);

// Conformers read from a file of any generator, each record one conformer
// whose title is its molecule's: grouped by title to the references (same
// order as references; a reference without any record gets none). At most
// max_per_molecule per molecule, the first ones in file order (<= 0: all);
// the dropped ones are counted in *dropped when given. std::runtime_error
// naming `file`, the record (1-based) and what was expected for a title that
// is no reference's, or a record whose atom count or elements (in order) are
// not its reference's; std::invalid_argument naming both records when two
// references share a title (records could not be told apart).
std::vector<std::vector<std::vector<double>>> group_conformers_by_title(const std::vector<Molecule>& references,
                                                                        const std::vector<Molecule>& records,
                                                                        const std::string& file,
                                                                        int max_per_molecule = 0,
                                                                        long* dropped = nullptr);

}  // namespace enf
