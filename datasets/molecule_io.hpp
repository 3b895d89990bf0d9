// Reading and writing molecules in the formats chemists and the QM9 sources
// use. The reader picks the format from the file:
//   .npz          the EDM/cormorant splits (num_atoms, charges, positions[, index])
//   .xyz          the original QM9 extended XYZ (dsgdb9nsd_*.xyz: line 2 starts
//                 with "gdb", Mulliken charges, "*^" exponents, trailing
//                 frequency/SMILES/InChI lines) or plain/extended multi-frame XYZ
//   anything else through Open Babel (SDF/MOL, MOL2, PDB, ...), by extension
// Errors are std::runtime_error naming the file, the record (1-based, and its
// title when it has one) and, for text formats, the line.
//
// Names: the record's title ("gdb 31" for original QM9 XYZ, the comment before
// any key=value for other XYZ, the SDF title), "test.npz row 3 (gdb 31)" for
// npz rows, else "<file name> record <n>". Properties: SDF data fields, XYZ
// comment key=value pairs (values may be "quoted"; ASE's Properties= column
// spec is checked, not kept), and for original QM9 XYZ the 15 scalars of
// line 2 (A B C mu alpha homo lumo gap r2 zpve U0 U H G Cv, "*^" written as
// "e") and smiles_/inchi_ gdb17 and b3lyp. SDF/MOL records are checked for
// truncation against their counts line before Open Babel parses them.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "datasets/molecule.hpp"

namespace enf {

struct MoleculeReadOptions {
  // Molecules with an element other than H, C, N, O, F (or more than
  // max_atoms atoms) are an error naming the record and atom, or, with
  // skip_unsupported, skipped and counted.
  bool skip_unsupported = false;
  int max_atoms = kQm9MaxAtoms;  // <= 0: no limit
  // The elements taken, atomic numbers among H, C, N, O, F (empty: all five),
  // e.g. those a conformer model was trained on.
  std::vector<int> elements;
  // Where max_atoms and elements come from, said with a refusal ("its
  // training data"; empty: nothing said).
  std::string limits_source;
  std::size_t max_skip_reasons = 5;  // skip_reasons kept (the first ones)
  long first = 0;   // records [first, first + count) of the file
  long count = -1;  // < 0: to the end
  bool centre = true;  // remove each molecule's mean position (unweighted, as the reference)
};

struct MoleculeSet {
  std::vector<Molecule> molecules;
  long skipped = 0;                        // with skip_unsupported
  std::vector<std::string> skip_reasons;   // the first max_skip_reasons, for the log
};

// A file with no molecules, or none left after skipping, is an error, as are
// non-finite coordinates (never skipped) and 2-D or missing coordinates (an
// MDL header saying 2D, or any record flat as a sheet with an atom of 4 or
// more bonded neighbours). Through Open Babel, records with implicit
// hydrogens (heavy atoms only; add them with `obabel -h`) or with formal
// charges that do not sum to zero (ions; a neutral charge-separated nitro
// group is kept) are unsupported: an error naming the record and atom, or
// skipped and counted with skip_unsupported. .xyz has no bonds: missing
// hydrogens cannot be seen there. Open Babel records keep the file's bonds
// and formal charges (Molecule::bonds_known).

MoleculeSet read_molecules(const std::string& path, const MoleculeReadOptions& opt = {});
// The .xyz reader of read_molecules on text already in memory (e.g. one member
// of an archive); name stands for the file in messages ("<archive>:<member>").
MoleculeSet parse_xyz_molecules(const std::string& text, const std::string& name, const MoleculeReadOptions& opt = {});

// Writes molecules by the extension of path: .xyz (multi-frame; the comment
// line holds the name and " key=value" properties, read back by read_molecules
// as long as the name has no '=') or, through Open Babel, .sdf (the
// molecule's bonds and formal charges when bonds_known, else bonds perceived
// from the geometry; no stereochemistry; properties as SDF data fields) and
// any other format Open Babel writes. Atomic: nothing is left half-written on failure.
void write_molecules(const std::string& path, const std::vector<Molecule>& molecules);
// Throws (as write_molecules would) unless molecules can be written to path's
// format: for commands to fail before long work, not after.
void check_molecule_output(const std::string& path);

// count[N] = number of molecules with N atoms, N = 0 .. max atoms.
std::vector<long> node_count_histogram(const std::vector<Molecule>& molecules);

}  // namespace enf
