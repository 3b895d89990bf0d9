// Tetrahedral stereochemistry of conformers (issue 15). The conformer model's
// field is E(3)-equivariant including reflections, so p(x | graph) =
// p(-x | graph): it draws each conformer's handedness at random. A
// reflection about the centroid keeps log p(x | graph) and inverts every
// stereocentre at once, so a conformer is brought to the requested
// stereoisomer, at no cost in likelihood, by reflecting it when more of the
// requested centres disagree than agree (match_stereo). Centres whose
// relative configuration came out wrong cannot all be fixed this way;
// stereo_kept tells. Double-bond (E/Z) stereo is not handled.
#pragma once

#include <vector>

#include "datasets/molecule.hpp"

namespace OpenBabel {
class OBMol;
}

namespace enf {

// The specified tetrahedral stereocentres of mol as Open Babel has them
// (OBStereoFacade: from the SMILES @/@@, an MDL file's wedges or parities,
// or perceived from 3-D coordinates by the reader), each turned into the
// sign of the signed volume of three of its neighbours. Unspecified centres
// (a SMILES without @) are left out: they are not constrained. Call after
// AddHydrogens, so that indices are those of the completed molecule.
// std::runtime_error naming mol's title for a centre Open Babel describes
// with atoms that are not in mol.
std::vector<TetrahedralCentre> specified_tetrahedral_centres(OpenBabel::OBMol& mol);

// The stereogenic tetrahedral centres of a molecule with a 3-D geometry
// (e.g. a QM9 reference), as Open Babel's 3-D perception (StereoFrom3D,
// which uses graph symmetry classes) finds them, each with the sign its
// geometry has. Bonds: m's when bonds_known, else perceived from the geometry.
// std::invalid_argument naming m when it has not 3 coordinates per atom.
std::vector<TetrahedralCentre> tetrahedral_centres_from_geometry(const Molecule& m);

// The sign (+1, -1; 0 when flat) of det[r0 - c, r1 - c, r2 - c] in positions
// ([n, 3]). std::invalid_argument when an index is outside positions.
int signed_volume_sign(const TetrahedralCentre& t, const std::vector<double>& positions);

// Whether every centre has its requested sign in positions (true for none).
bool stereo_kept(const std::vector<TetrahedralCentre>& centres, const std::vector<double>& positions);

struct StereoMatch {
  bool reflected = false;  // positions were reflected through their centroid
  int agree = 0;           // centres with their requested sign afterwards
};
// Reflects positions through their centroid (x -> 2 c - x) when more centres
// disagree than agree; ties are left as they are (no reflection gains).
StereoMatch match_stereo(const std::vector<TetrahedralCentre>& centres, std::vector<double>& positions);

}  // namespace enf
