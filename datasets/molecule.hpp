// One molecule representation for everything QM9: element per atom (atomic
// number Z), positions in Ångström, and the record's name and properties.
// The flow's atom types are H, C, N, O, F (channel order of the reference's
// one-hot); its integer feature is Z itself ("charges" in the reference).
#pragma once

#include <array>
#include <string>
#include <utility>
#include <vector>

namespace enf {

// A bond between atoms i and j (0-based, i < j) of bond order 1, 2 or 3.
struct Bond {
  int i = 0, j = 0;
  int order = 0;
  bool operator==(const Bond& o) const { return i == o.i && j == o.j && order == o.order; }
};

// A tetrahedral stereocentre as a requested configuration: atom `centre`,
// three of its neighbours `refs` (0-based indices in the molecule's atom
// order), and `sign` (+1 or -1), the sign of det[r0 - c, r1 - c, r2 - c] of
// their positions in the requested stereoisomer (datasets/stereo.hpp).
struct TetrahedralCentre {
  int centre = 0;
  std::array<int, 3> refs{};
  int sign = 0;
  bool operator==(const TetrahedralCentre& o) const {
    return centre == o.centre && refs == o.refs && sign == o.sign;
  }
};

struct Molecule {
  std::string name;                 // record title or "<file>:<record>", for messages
  std::vector<int> atomic_numbers;  // Z per atom
  std::vector<double> positions;    // [atoms, 3], Å
  // Per-record properties written to / read from SDF data fields (key, value).
  std::vector<std::pair<std::string, std::string>> properties;
  // The molecule's bonds and formal charges (one per atom), when known: set by
  // annotate_molecule (EDM's distance-table bonds) and by the Open Babel
  // reader (the file's bonds). Writers use them as they are; with
  // bonds_known false (e.g. .npz, .xyz) they perceive bonds from the geometry.
  // Every hydrogen is an atom: there are no implicit hydrogens.
  bool bonds_known = false;
  std::vector<Bond> bonds;
  std::vector<int> formal_charges;  // empty: all 0
  // The tetrahedral stereocentres the input specified (SMILES @/@@, wedges,
  // or a 3-D geometry's own handedness), set by read_conformer_inputs; empty
  // when none or not known. The conformer model is reflection-invariant and
  // cannot keep them itself: enf conformers reflects its samples to match
  // (datasets/stereo.hpp).
  std::vector<TetrahedralCentre> stereo;

  int atoms() const { return int(atomic_numbers.size()); }
};

// The flow's atom types: index 0..4 for H, C, N, O, F.
inline constexpr std::array<int, 5> kQm9AtomicNumbers = {1, 6, 7, 8, 9};
inline constexpr int kQm9MaxAtoms = 29;
// Coordinates beyond this (Å for molecules, reduced units for particles) are
// no structure anyone meant: refused on reading, not scored as NLL 1e58.
inline constexpr double kMaxCoordinate = 1e6;
// Type index of Z among H, C, N, O, F, or −1.
int qm9_type_index(int z);
// Element symbol of Z (1..118); "Z<z>" when unknown.
std::string element_symbol(int z);
// Atomic number of a symbol (case-insensitive: "C", "cl", "CL"); 0 when unknown.
int atomic_number(const std::string& symbol);

}  // namespace enf
