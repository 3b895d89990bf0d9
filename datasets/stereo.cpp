#include "datasets/stereo.hpp"

#include <openbabel/atom.h>
#include <openbabel/graphsym.h>
#include <openbabel/mol.h>
#include <openbabel/stereo/stereo.h>
#include <openbabel/stereo/tetrahedral.h>

#include <set>
#include <stdexcept>
#include <string>

#include "datasets/molecule_io_detail.hpp"

namespace enf {

namespace {

using OpenBabel::OBStereo;

// The 0-based index of the atom with Open Babel id `id` (ids and indices
// differ once atoms have been deleted).
int index_of(OpenBabel::OBMol& mol, unsigned long id) {
  const OpenBabel::OBAtom* a = mol.GetAtomById(id);
  if (!a)
    throw std::runtime_error("molecule '" + std::string(mol.GetTitle()) + "': Open Babel's stereo refers to atom id " +
                             std::to_string(id) + ", which is not in the molecule");
  return int(a->GetIdx()) - 1;
}

// The ids of mol's atoms that can be tetrahedral stereocentres: a SMILES
// reader keeps an @ on any atom (C[C@@H](C)O), and Open Babel's
// FindStereogenicUnits (graph symmetry classes, including para centres)
// tells the ones where handedness means something.
std::set<unsigned long> stereogenic_atoms(OpenBabel::OBMol& mol) {
  std::vector<unsigned int> classes;
  OpenBabel::OBGraphSym(&mol).GetSymmetry(classes);
  std::set<unsigned long> ids;
  for (const OpenBabel::OBStereoUnit& u : OpenBabel::FindStereogenicUnits(&mol, classes))
    if (u.type == OBStereo::Tetrahedral) ids.insert(u.id);
  return ids;
}

// The neighbour to look from, leaving the other three as refs: an implicit
// hydrogen or lone pair (ImplicitRef: no atom, or one added after the stereo
// was read), else a hydrogen, else the stored `from`. The refs are then the
// heavy atoms where there are three: the handedness of a distorted centre
// (a sampled geometry) is read off the neighbours whose places the graph
// constrains most, and a centre's refs do not depend on how Open Babel
// happened to store it.
unsigned long view_from(OpenBabel::OBMol& mol, const OpenBabel::OBTetrahedralStereo::Config& c) {
  std::vector<unsigned long> all = {c.from};
  all.insert(all.end(), c.refs.begin(), c.refs.end());
  for (unsigned long id : all)
    if (id == OBStereo::ImplicitRef) return id;
  for (unsigned long id : all) {
    const OpenBabel::OBAtom* a = mol.GetAtomById(id);
    if (a && a->GetAtomicNum() == 1) return id;
  }
  return c.from;
}

}  // namespace

std::vector<TetrahedralCentre> specified_tetrahedral_centres(OpenBabel::OBMol& mol) {
  std::vector<TetrahedralCentre> out;
  OpenBabel::OBStereoFacade facade(&mol);  // perceives only if the reader did not
  std::set<unsigned long> stereogenic;
  bool stereogenic_known = false;
  for (OpenBabel::OBTetrahedralStereo* ts : facade.GetAllTetrahedralStereo()) {
    OpenBabel::OBTetrahedralStereo::Config c = ts->GetConfig();
    if (!c.specified || !ts->IsValid()) continue;
    if (!stereogenic_known) stereogenic = stereogenic_atoms(mol), stereogenic_known = true;
    if (!stereogenic.count(c.center)) continue;
    c = ts->GetConfig(view_from(mol, c), OBStereo::Clockwise, OBStereo::ViewFrom);
    if (c.refs.size() != 3) continue;
    TetrahedralCentre t;
    t.centre = index_of(mol, c.center);
    for (int k = 0; k < 3; ++k) t.refs[std::size_t(k)] = index_of(mol, c.refs[std::size_t(k)]);
    // r0, r1, r2 clockwise seen from the fourth neighbour (on the far side
    // of the centre from them): with it on +z, clockwise in the xy plane as
    // seen from +z is a positive triple product of the refs about c.
    t.sign = +1;
    out.push_back(t);
  }
  return out;
}

std::vector<TetrahedralCentre> tetrahedral_centres_from_geometry(const Molecule& m) {
  if (m.positions.size() != 3 * std::size_t(m.atoms()))
    throw std::invalid_argument("molecule '" + m.name + "': reading its stereocentres from the geometry: " +
                                std::to_string(m.positions.size()) + " coordinates for " + std::to_string(m.atoms()) +
                                " atoms (expected 3 per atom)");
  OpenBabel::OBMol mol = detail::to_obmol(m);
  // to_obmol marks stereo as perceived (none), for its writers: perceive it
  // here from the coordinates, forcing past that mark.
  mol.SetDimension(3);
  OpenBabel::StereoFrom3D(&mol, true);
  return specified_tetrahedral_centres(mol);
}

int signed_volume_sign(const TetrahedralCentre& t, const std::vector<double>& positions) {
  const int n = int(positions.size() / 3);
  const auto at = [&](int a) {
    if (a < 0 || a >= n)
      throw std::invalid_argument("stereocentre " + std::to_string(t.centre + 1) + ": atom " + std::to_string(a + 1) +
                                  " is not among the " + std::to_string(n) + " atoms of the geometry");
    return &positions[3 * std::size_t(a)];
  };
  const double* c = at(t.centre);
  double u[3][3];
  for (int k = 0; k < 3; ++k) {
    const double* r = at(t.refs[std::size_t(k)]);
    for (int d = 0; d < 3; ++d) u[k][d] = r[d] - c[d];
  }
  const double det = u[0][0] * (u[1][1] * u[2][2] - u[1][2] * u[2][1]) -
                     u[0][1] * (u[1][0] * u[2][2] - u[1][2] * u[2][0]) +
                     u[0][2] * (u[1][0] * u[2][1] - u[1][1] * u[2][0]);
  return (det > 0) - (det < 0);
}

bool stereo_kept(const std::vector<TetrahedralCentre>& centres, const std::vector<double>& positions) {
  for (const TetrahedralCentre& t : centres)
    if (signed_volume_sign(t, positions) != t.sign) return false;
  return true;
}

StereoMatch match_stereo(const std::vector<TetrahedralCentre>& centres, std::vector<double>& positions) {
  StereoMatch m;
  int disagree = 0;
  for (const TetrahedralCentre& t : centres) {
    if (signed_volume_sign(t, positions) == t.sign) ++m.agree;
    else ++disagree;
  }
  if (disagree <= m.agree) return m;
  // Through the centroid: the conformer stays where it was (the model's
  // samples are centred, so this is x -> -x for them).
  const std::size_t n = positions.size() / 3;
  double c[3] = {0, 0, 0};
  for (std::size_t a = 0; a < n; ++a)
    for (int d = 0; d < 3; ++d) c[d] += positions[3 * a + std::size_t(d)] / double(n);
  for (std::size_t a = 0; a < n; ++a)
    for (int d = 0; d < 3; ++d) positions[3 * a + std::size_t(d)] = 2 * c[d] - positions[3 * a + std::size_t(d)];
  m.reflected = true;
  m.agree = 0;
  for (const TetrahedralCentre& t : centres) m.agree += signed_volume_sign(t, positions) == t.sign;
  return m;
}

}  // namespace enf
