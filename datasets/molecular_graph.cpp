#include "datasets/molecular_graph.hpp"

#include <openbabel/atom.h>
#include <openbabel/bitvec.h>
#include <openbabel/bond.h>
#include <openbabel/graphsym.h>
#include <openbabel/isomorphism.h>
#include <openbabel/mol.h>
#include <openbabel/oberror.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <set>
#include <stdexcept>
#include <utility>

#include "datasets/molecule_io_detail.hpp"

namespace enf {

namespace {

[[noreturn]] void invalid(const std::string& name, const std::string& what) {
  throw std::invalid_argument("molecule '" + name + "': " + what);
}

std::string atom_label(const std::vector<int>& z, int a) {
  return "atom " + std::to_string(a + 1) + " (" + element_symbol(z[std::size_t(a)]) + ")";
}

// The bonds Open Babel holds for mol (orders 1..3, aromatic flags), i < j.
std::vector<GraphBond> obmol_bonds(OpenBabel::OBMol& mol, const std::string& name) {
  std::vector<GraphBond> bonds;
  for (unsigned k = 0; k < mol.NumBonds(); ++k) {
    OpenBabel::OBBond* b = mol.GetBond(int(k));
    const int i = int(b->GetBeginAtomIdx()) - 1, j = int(b->GetEndAtomIdx()) - 1;
    int order = int(b->GetBondOrder());
    const bool aromatic = b->IsAromatic() || order == 5;
    if (order == 5) order = 1;  // not kekulized: an aromatic bond, counted as single in Molecule::bonds
    if (order < 1 || order > 3)
      invalid(name, "Open Babel reports bond " + std::to_string(i + 1) + "-" + std::to_string(j + 1) + " of order " +
                        std::to_string(order));
    bonds.push_back({std::min(i, j), std::max(i, j), order, aromatic});
  }
  return bonds;
}

void check_positions(const std::string& name, int atoms, const std::vector<double>& positions, const char* what) {
  if (positions.size() != 3 * std::size_t(atoms))
    invalid(name, std::string(what) + ": " + std::to_string(positions.size()) + " coordinates for " +
                      std::to_string(atoms) + " atoms");
}

}  // namespace

// ---- MolecularGraph

MolecularGraph::MolecularGraph(std::string name, std::vector<int> atomic_numbers, std::vector<int> formal_charges,
                               std::vector<GraphBond> bonds)
    : name_(std::move(name)), atomic_numbers_(std::move(atomic_numbers)), formal_charges_(std::move(formal_charges)) {
  const int n = atoms();
  if (formal_charges_.empty()) formal_charges_.assign(std::size_t(n), 0);
  if (int(formal_charges_.size()) != n)
    invalid(name_, std::to_string(formal_charges_.size()) + " formal charges for " + std::to_string(n) + " atoms");
  bond_index_.assign(std::size_t(n) * std::size_t(n), -1);
  for (GraphBond& b : bonds) {
    const std::string which = "bond " + std::to_string(b.i + 1) + "-" + std::to_string(b.j + 1);
    if (b.i < 0 || b.j < 0 || b.i >= n || b.j >= n)
      invalid(name_, which + " is not a bond of its " + std::to_string(n) + " atoms");
    if (b.i == b.j) invalid(name_, which + " bonds an atom to itself");
    if (b.order < 1 || b.order > 3) invalid(name_, which + " has order " + std::to_string(b.order) + " (not 1, 2, 3)");
    if (b.i > b.j) std::swap(b.i, b.j);
  }
  std::sort(bonds.begin(), bonds.end(),
            [](const GraphBond& a, const GraphBond& b) { return a.i != b.i ? a.i < b.i : a.j < b.j; });
  bonds_ = std::move(bonds);
  std::vector<std::vector<int>> neighbours(static_cast<std::size_t>(n));
  for (std::size_t k = 0; k < bonds_.size(); ++k) {
    const GraphBond& b = bonds_[k];
    if (bond_index_[index(b.i, b.j)] >= 0)
      invalid(name_, "bond " + std::to_string(b.i + 1) + "-" + std::to_string(b.j + 1) + " is given twice");
    bond_index_[index(b.i, b.j)] = bond_index_[index(b.j, b.i)] = int(k);
    neighbours[std::size_t(b.i)].push_back(b.j);
    neighbours[std::size_t(b.j)].push_back(b.i);
  }
  // Breadth-first search from every atom.
  distance_.assign(std::size_t(n) * std::size_t(n), kDisconnected);
  std::deque<int> queue;
  for (int s = 0; s < n; ++s) {
    distance_[index(s, s)] = 0;
    queue.assign(1, s);
    while (!queue.empty()) {
      const int a = queue.front();
      queue.pop_front();
      for (int b : neighbours[std::size_t(a)])
        if (distance_[index(s, b)] == kDisconnected) {
          distance_[index(s, b)] = distance_[index(s, a)] + 1;
          queue.push_back(b);
        }
    }
  }
}

std::size_t MolecularGraph::index(int i, int j) const {
  const int n = atoms();
  if (i < 0 || j < 0 || i >= n || j >= n)
    throw std::out_of_range("molecule '" + name_ + "': atom pair (" + std::to_string(i) + ", " + std::to_string(j) +
                            ") outside its " + std::to_string(n) + " atoms");
  return std::size_t(i) * std::size_t(n) + std::size_t(j);
}

const GraphBond* MolecularGraph::bond(int i, int j) const {
  const int k = bond_index_[index(i, j)];
  return k < 0 ? nullptr : &bonds_[std::size_t(k)];
}

std::vector<Bond> MolecularGraph::molecule_bonds() const {
  std::vector<Bond> out;
  out.reserve(bonds_.size());
  for (const GraphBond& b : bonds_) out.push_back({b.i, b.j, b.order});
  return out;
}

MolecularGraph perceive_graph(const Molecule& m, std::string* warning) {
  Molecule copy = m;
  copy.properties.clear();
  if (m.bonds_known) {
    // The geometry plays no part: a molecule without one (SMILES) is fine.
    if (copy.positions.size() != 3 * std::size_t(m.atoms())) copy.positions.assign(3 * std::size_t(m.atoms()), 0.0);
  } else {
    check_positions(m.name, m.atoms(), m.positions, "perceiving bonds from the geometry");
    for (double c : m.positions)
      if (!std::isfinite(c)) invalid(m.name, "perceiving bonds from the geometry: a non-finite coordinate");
  }
  // Perception's warnings are kept in the log, not printed (see the header),
  // including those of the aromaticity perception the first IsAromatic() in
  // obmol_bonds runs.
  const detail::QuietOpenBabel quiet;
  OpenBabel::OBMol mol = detail::to_obmol(copy);
  std::vector<GraphBond> bonds = obmol_bonds(mol, m.name);
  std::vector<int> charges;
  for (int a = 0; a < m.atoms(); ++a) charges.push_back(mol.GetAtom(a + 1)->GetFormalCharge());
  if (warning) {
    warning->clear();
    for (const std::string& message : OpenBabel::obErrorLog.GetMessagesOfLevel(OpenBabel::obWarning)) {
      const std::size_t at = message.find("\n  ");  // the message's text, after its banner lines
      *warning = at == std::string::npos ? message : message.substr(at + 3);
      while (!warning->empty() && (warning->back() == '\n' || warning->back() == ' ')) warning->pop_back();
    }
  }
  return MolecularGraph(m.name, m.atomic_numbers, std::move(charges), std::move(bonds));
}

// ---- condition features

std::vector<double> node_condition_features(const MolecularGraph& g) {
  const int n = g.atoms();
  std::vector<double> f(std::size_t(n) * kNodeConditionFeatures, 0.0);
  for (int a = 0; a < n; ++a) {
    const int z = g.atomic_numbers()[std::size_t(a)];
    const auto it = std::find(kConditionElements.begin(), kConditionElements.end(), z);
    if (it == kConditionElements.end())
      invalid(g.name(), atom_label(g.atomic_numbers(), a) +
                            " is an element the condition features do not know (they know H, C, N, O, F)");
    double* row = &f[std::size_t(a) * kNodeConditionFeatures];
    row[it - kConditionElements.begin()] = 1.0;
    row[kNodeConditionFeatures - 1] = double(g.formal_charges()[std::size_t(a)]);
  }
  return f;
}

std::vector<double> edge_condition_features(const MolecularGraph& g) {
  const int n = g.atoms();
  if (n < 2) return {};
  std::vector<double> f(std::size_t(n) * std::size_t(n - 1) * kEdgeConditionFeatures, 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      if (j == i) continue;
      double* row = &f[edge_condition_row(n, i, j) * kEdgeConditionFeatures];
      const GraphBond* b = g.bond(i, j);
      row[!b ? kEdgeNoBond : b->aromatic ? kEdgeAromatic : b->order] = 1.0;  // kEdgeSingle..kEdgeTriple = 1..3
      const int d = g.distance(i, j);
      if (d == 1) row[kEdgeBonded] = 1.0;
      if (d == 2) row[kEdgeOneThree] = 1.0;
      if (d == 3) row[kEdgeOneFour] = 1.0;
    }
  return f;
}

// ---- judging generated conformers

bool connectivity_preserved(const MolecularGraph& g, const std::vector<double>& positions) {
  check_positions(g.name(), g.atoms(), positions, "connectivity_preserved");
  for (double c : positions)
    if (!std::isfinite(c)) return false;
  Molecule m;
  m.name = g.name();
  m.atomic_numbers = g.atomic_numbers();
  m.positions = positions;
  m.bonds_known = false;
  const detail::QuietOpenBabel quiet;
  OpenBabel::OBMol mol = detail::to_obmol(m);
  std::set<std::pair<int, int>> perceived, expected;
  for (unsigned k = 0; k < mol.NumBonds(); ++k) {
    const OpenBabel::OBBond* b = mol.GetBond(int(k));
    const int i = int(b->GetBeginAtomIdx()) - 1, j = int(b->GetEndAtomIdx()) - 1;
    perceived.insert({std::min(i, j), std::max(i, j)});
  }
  for (const GraphBond& b : g.bonds()) expected.insert({b.i, b.j});
  return perceived == expected;
}

namespace {

// Eigenvector of the largest eigenvalue of a symmetric 4x4 matrix (cyclic Jacobi).
std::array<double, 4> top_eigenvector(std::array<std::array<double, 4>, 4> a) {
  std::array<std::array<double, 4>, 4> v{};
  for (int i = 0; i < 4; ++i) v[i][i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, scale = 0;
    for (int p = 0; p < 4; ++p)
      for (int q = 0; q < 4; ++q) (p == q ? scale : off) += a[p][q] * a[p][q];
    if (off <= 1e-30 * std::max(scale, 1e-300)) break;
    for (int p = 0; p < 3; ++p)
      for (int q = p + 1; q < 4; ++q) {
        if (a[p][q] == 0.0) continue;
        const double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < 4; ++k) {  // A <- A J
          const double akp = a[k][p], akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (int k = 0; k < 4; ++k) {  // A <- J^T A
          const double apk = a[p][k], aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (int k = 0; k < 4; ++k) {  // V <- V J
          const double vkp = v[k][p], vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
  }
  int best = 0;
  for (int i = 1; i < 4; ++i)
    if (a[i][i] > a[best][best]) best = i;
  return {v[0][best], v[1][best], v[2][best], v[3][best]};
}

// kabsch_rmsd over the atom pairs (a[pa[k]], b[pb[k]]).
double superposed_rmsd(const std::vector<double>& a, const std::vector<double>& b, const std::vector<int>& pa,
                       const std::vector<int>& pb) {
  const std::size_t n = pa.size();
  if (n == 0) return 0.0;
  double ca[3] = {0, 0, 0}, cb[3] = {0, 0, 0};
  for (std::size_t k = 0; k < n; ++k)
    for (int d = 0; d < 3; ++d) {
      ca[d] += a[3 * std::size_t(pa[k]) + std::size_t(d)] / double(n);
      cb[d] += b[3 * std::size_t(pb[k]) + std::size_t(d)] / double(n);
    }
  // S[x][y] = sum_k b_x a_y (centred): R b is then as close to a as can be.
  double s[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
  for (std::size_t k = 0; k < n; ++k)
    for (int x = 0; x < 3; ++x)
      for (int y = 0; y < 3; ++y)
        s[x][y] += (b[3 * std::size_t(pb[k]) + std::size_t(x)] - cb[x]) * (a[3 * std::size_t(pa[k]) + std::size_t(y)] - ca[y]);
  // Horn (1987): the unit quaternion of the best proper rotation is the top eigenvector of N.
  const double xx = s[0][0], xy = s[0][1], xz = s[0][2], yx = s[1][0], yy = s[1][1], yz = s[1][2], zx = s[2][0],
               zy = s[2][1], zz = s[2][2];
  const std::array<std::array<double, 4>, 4> nm = {{{xx + yy + zz, yz - zy, zx - xz, xy - yx},
                                                    {yz - zy, xx - yy - zz, xy + yx, zx + xz},
                                                    {zx - xz, xy + yx, -xx + yy - zz, yz + zy},
                                                    {xy - yx, zx + xz, yz + zy, -xx - yy + zz}}};
  const auto q = top_eigenvector(nm);
  const double q0 = q[0], qx = q[1], qy = q[2], qz = q[3];
  const double r[3][3] = {{q0 * q0 + qx * qx - qy * qy - qz * qz, 2 * (qx * qy - q0 * qz), 2 * (qx * qz + q0 * qy)},
                          {2 * (qy * qx + q0 * qz), q0 * q0 - qx * qx + qy * qy - qz * qz, 2 * (qy * qz - q0 * qx)},
                          {2 * (qz * qx - q0 * qy), 2 * (qz * qy + q0 * qx), q0 * q0 - qx * qx - qy * qy + qz * qz}};
  double sum = 0;
  for (std::size_t k = 0; k < n; ++k) {
    double bc[3];
    for (int d = 0; d < 3; ++d) bc[d] = b[3 * std::size_t(pb[k]) + std::size_t(d)] - cb[d];
    for (int x = 0; x < 3; ++x) {
      const double rb = r[x][0] * bc[0] + r[x][1] * bc[1] + r[x][2] * bc[2];
      const double diff = a[3 * std::size_t(pa[k]) + std::size_t(x)] - ca[x] - rb;
      sum += diff * diff;
    }
  }
  return std::sqrt(sum / double(n));
}

// Collects automorphisms until kMaxAutomorphisms.
struct CollectAutomorphisms : OpenBabel::OBIsomorphismMapper::Functor {
  std::vector<OpenBabel::OBIsomorphismMapper::Mapping> found;
  bool operator()(OpenBabel::OBIsomorphismMapper::Mapping& map) override {
    found.push_back(map);
    return found.size() >= kMaxAutomorphisms;
  }
};

}  // namespace

double kabsch_rmsd(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.size() % 3 != 0)
    throw std::invalid_argument("kabsch_rmsd: " + std::to_string(a.size()) + " and " + std::to_string(b.size()) +
                                " coordinates (two [n, 3] arrays of the same n)");
  std::vector<int> all(a.size() / 3);
  for (std::size_t k = 0; k < all.size(); ++k) all[k] = int(k);
  return superposed_rmsd(a, b, all, all);
}

double heavy_atom_rmsd(const Molecule& a, const std::vector<double>& positions_b, bool symmetry) {
  const int n = a.atoms();
  check_positions(a.name, n, a.positions, "heavy_atom_rmsd (reference)");
  check_positions(a.name, n, positions_b, "heavy_atom_rmsd (compared positions)");
  std::vector<int> heavy;
  for (int k = 0; k < n; ++k)
    if (a.atomic_numbers[std::size_t(k)] > 1) heavy.push_back(k);
  if (heavy.empty())
    for (int k = 0; k < n; ++k) heavy.push_back(k);
  double best = superposed_rmsd(a.positions, positions_b, heavy, heavy);
  if (!symmetry || heavy.size() < 2) return best;

  const MolecularGraph g = perceive_graph(a);
  Molecule copy = a;
  copy.properties.clear();
  copy.bonds_known = true;
  copy.bonds = g.molecule_bonds();
  copy.formal_charges = g.formal_charges();
  const detail::QuietOpenBabel quiet;
  OpenBabel::OBMol mol = detail::to_obmol(copy);
  OpenBabel::OBBitVec mask;
  for (int k : heavy) mask.SetBitOn(unsigned(k + 1));
  std::vector<unsigned int> classes;
  OpenBabel::OBGraphSym(&mol, &mask).GetSymmetry(classes);
  CollectAutomorphisms collect;
  OpenBabel::FindAutomorphisms(collect, &mol, classes, mask);

  // Open Babel's invariants are its own: a mapping is used only when it keeps
  // each heavy atom's element, formal charge and number of hydrogens.
  std::vector<int> hydrogens(std::size_t(n), 0);
  for (const GraphBond& b : g.bonds()) {
    if (a.atomic_numbers[std::size_t(b.j)] == 1) ++hydrogens[std::size_t(b.i)];
    if (a.atomic_numbers[std::size_t(b.i)] == 1) ++hydrogens[std::size_t(b.j)];
  }
  const auto same = [&](int p, int q) {
    return a.atomic_numbers[std::size_t(p)] == a.atomic_numbers[std::size_t(q)] &&
           g.formal_charges()[std::size_t(p)] == g.formal_charges()[std::size_t(q)] &&
           hydrogens[std::size_t(p)] == hydrogens[std::size_t(q)];
  };
  std::vector<int> image(static_cast<std::size_t>(n));
  for (const auto& map : collect.found) {
    if (map.size() != heavy.size()) continue;
    std::fill(image.begin(), image.end(), -1);
    bool ok = true;
    for (const auto& [from, to] : map) {
      if (from >= unsigned(n) || to >= unsigned(n) || !same(int(from), int(to))) {
        ok = false;
        break;
      }
      image[from] = int(to);
    }
    std::vector<int> pb;
    for (int k : heavy) {
      if (!ok || image[std::size_t(k)] < 0) {
        ok = false;
        break;
      }
      pb.push_back(image[std::size_t(k)]);
    }
    if (ok) best = std::min(best, superposed_rmsd(a.positions, positions_b, heavy, pb));
  }
  return best;
}

}  // namespace enf
