// Input and output of conformer generation (issue 15): the molecules to make
// conformers for, and the conformers made, each record the input molecule
// (atoms, bonds, charges, title) with one generated geometry.
#pragma once

#include <string>
#include <vector>

#include "datasets/molecule.hpp"

namespace enf {

// The SDF data field (and XYZ comment key) holding a conformer's log-likelihood.
inline constexpr const char* kLogLikelihoodField = "enf_log_likelihood";

// The molecules named by spec, each with bonds_known, its formal charges and
// every hydrogen an atom:
//   - a .smi/.smiles file: one SMILES per line, optionally followed by
//     whitespace and a title; blank lines and lines starting with '#' are
//     skipped;
//   - any other existing file: every record, in a format Open Babel reads,
//     chosen by extension (.sdf, .mol2, .pdb, ...);
//   - otherwise spec itself is a SMILES (optionally followed by whitespace
//     and a title).
// Missing hydrogens are added (Open Babel's AddHydrogens): the input's atoms
// keep their order and the added hydrogens come after them. Positions are
// the file's (added hydrogens placed by Open Babel), all 0 for SMILES. Names:
// the record's title, else "<file name> record <n>"; for SMILES the title,
// else the SMILES itself. Errors (std::runtime_error) name the file and the
// record or line, and what was expected, e.g. "smi file 'in.smi': line 3:
// unparsable SMILES 'C1CC' (Open Babel: ...)".
std::vector<Molecule> read_conformer_inputs(const std::string& spec);

// One multi-record SDF (path ending in .sdf or .sd): record k is
// graph_source (same atom order, bonds, formal charges and title; its bonds
// perceived from its own geometry when not bonds_known) with the
// coordinates conformers[k] ([n, 3], Å) and the data field
// enf_log_likelihood = log_likelihoods[k] (shortest text that reads back to
// the same double). graph_source's own data fields are not copied (they
// describe its geometry, not these). Atomic (write_file_atomically).
// std::invalid_argument for no conformers, a count of log-likelihoods that
// is not the count of conformers, a conformer of the wrong size or with a
// non-finite coordinate.
void write_conformer_sdf(const std::string& path, const Molecule& graph_source,
                         const std::vector<std::vector<double>>& conformers, const std::vector<double>& log_likelihoods);
// The same conformers as multi-frame XYZ (path ending in .xyz), each
// frame's comment line "<title> enf_log_likelihood=<value>", as read_molecules
// reads it back when the title holds no '='. XYZ has no bonds.
void write_conformer_xyz(const std::string& path, const Molecule& graph_source,
                         const std::vector<std::vector<double>>& conformers, const std::vector<double>& log_likelihoods);

}  // namespace enf
