// Quality of molecules as E-NF (Satorras et al., 2021) and EDM (Hoogeboom et
// al., 2022) measure it on QM9, for generated and for real molecules:
//
//   std::vector<MoleculeQuality> q = evaluate_molecules(molecules);
//   QualitySummary s = summarize_quality(q);                    // no novelty
//   QualitySummary n = summarize_quality(q, unique_valid_smiles(evaluate_molecules(train)));
//
// 1. Bonds from distances (qm9/bond_analyze.py, get_bond_order): a pair of
//    atoms at d Å = 100·d pm is bonded with order
//      3 if d < bonds3 + 3 pm, else 2 if d < bonds2 + 5 pm, else 1 if d < bonds1 + 10 pm,
//    each shorter threshold only when the pair has that table entry.
// 2. Stability (qm9/analyze.py, check_stability): an atom is stable when the
//    sum of the orders of its bonds equals its valence (H 1, C 4, N 3, O 2,
//    F 1); a molecule is stable when all its atoms are.
//    atom stability = stable atoms / all atoms, molecule stability = stable / all.
// 3. Validity (qm9/rdkit_functions.py, with Open Babel in place of RDKit): the
//    molecule with those bonds passes RDKit's SanitizeMol as EDM calls it —
//    after RDKit's clean-up of 5-valent nitrogen (N(=O)=O → [N+](=O)[O-],
//    N#N → [N+]=[N-]) no atom exceeds its valence (N+ 4, O− 1, N− 2; a missing
//    valence is filled with implicit hydrogens, as RDKit does), and Open Babel
//    can kekulize its own aromatic form of the molecule. Its identity is the
//    Open Babel canonical SMILES (stereo-free, hydrogen atoms written as
//    [H] as RDKit writes explicit hydrogens) of the largest fragment.
//    (The smiles field annotate_molecule writes is another string: the whole
//    molecule, hydrogens implicit — MoleculeQuality::record_smiles.)
//    validity = valid / all.
// 4. Uniqueness = distinct SMILES among the valid / valid; novelty = distinct
//    SMILES not among a reference set's / distinct SMILES.
// Every metric is invariant under rotations, reflections, translations and
// permutations of the atoms. Differences from the reference code are listed
// in molecule_metrics.cpp.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "datasets/molecule.hpp"

namespace enf {

// Bond order 0 (no bond), 1, 2 or 3 between elements z1 and z2 (atomic
// numbers) at distance_angstrom, as EDM's get_bond_order.
// std::invalid_argument unless both elements are H, C, N, O or F.
int distance_bond_order(int z1, int z2, double distance_angstrom);

// Valence an atom must have to be stable: H 1, C 4, N 3, O 2, F 1; 0 for
// elements the metrics do not know.
int stable_valence(int z);

// Whether the metrics know element z (H, C, N, O, F).
bool metrics_support_element(int z);

// A bond of the distance tables: atom indices i < j, order 1, 2 or 3.
using DistanceBond = Bond;

// Every bonded pair of m (order > 0), i < j, in (i, j) order.
// std::invalid_argument naming the molecule and atom for unsupported elements.
std::vector<DistanceBond> distance_bonds(const Molecule& m);

struct MoleculeQuality {
  int atoms = 0;
  int stable_atoms = 0;   // atoms whose bond orders sum to their valence
  bool stable = false;    // every atom stable (an empty molecule is not)
  bool valid = false;
  int fragments = 0;      // connected components of the bond graph
  // EDM's identity of a valid molecule (uniqueness, novelty): canonical
  // SMILES of the largest fragment with hydrogen atoms as [H]; empty unless valid.
  std::string smiles;
  // The bond assignment validity uses, for every molecule: the distance
  // bonds after RDKit's nitrogen clean-up (a 5-valent N's double bond to O
  // becomes single with N+ and O−, a triple bond to N double with N+ and N−;
  // bonds i < j in (i, j) order), and the formal charge per atom it leaves.
  // Undoing the clean-up (order + 1 for each bond between an N+ and an O− or
  // N−) gives distance_bonds exactly.
  std::vector<DistanceBond> bonds;
  std::vector<int> formal_charges;
  // Canonical SMILES of the whole molecule with those bonds and charges
  // (every fragment, '.'-separated), hydrogens implicit as chemists write
  // them ([H] only where a hydrogen cannot be implicit: H2, a lone or
  // charged H, an H with two bonds), no stereochemistry; for every molecule,
  // valid or not, stable or not. Empty for a molecule without atoms.
  std::string record_smiles;
  // Why the molecule is unstable / invalid, for the first offending atom
  // (e.g. "atom 3 (C) has bond orders summing to 5, valence 4"); empty when
  // it is stable / valid.
  std::string instability;
  std::string invalidity;
};

// std::invalid_argument naming the molecule and atom for elements other than
// H, C, N, O, F or positions of the wrong size; std::runtime_error when Open
// Babel's canonical SMILES writer is not available.
MoleculeQuality evaluate_molecule(const Molecule& m);
std::vector<MoleculeQuality> evaluate_molecules(const std::vector<Molecule>& molecules);

// Rounds m's positions to 1e-4 Å (the SDF's precision), evaluates m and
// records the result on it, so that a written record
// describes one molecule throughout: its bonds and formal charges become the
// quality's bonds / formal_charges (bonds_known; the SDF bond block), and its
// data fields atom_stability, molecule_stable, valid, fragments and smiles
// (record_smiles, written for every molecule with atoms) are set, replacing
// fields of those names. Returns the quality (the per-molecule step of enf sample).
MoleculeQuality annotate_molecule(Molecule& m);

// Distinct SMILES of the valid molecules (a reference set for novelty).
std::set<std::string> unique_valid_smiles(const std::vector<MoleculeQuality>& results);

struct QualitySummary {
  long molecules = 0;
  long atoms = 0;
  long stable_atoms = 0;
  long stable_molecules = 0;
  long valid = 0;
  long unique = 0;                 // distinct SMILES among the valid
  double atom_stability = 0;       // stable_atoms / atoms
  double molecule_stability = 0;   // stable_molecules / molecules
  double validity = 0;             // valid / molecules
  double uniqueness = 0;           // unique / valid; 0 when nothing is valid (as EDM)
  bool has_reference = false;      // the novelty fields below are set
  long reference_smiles = 0;       // distinct SMILES of the reference set
  long novel = 0;                  // unique SMILES not in the reference set
  double novelty = 0;              // novel / unique; 0 when nothing is valid (as EDM)
};

QualitySummary summarize_quality(const std::vector<MoleculeQuality>& results);
QualitySummary summarize_quality(const std::vector<MoleculeQuality>& results, const std::set<std::string>& reference);

}  // namespace enf
