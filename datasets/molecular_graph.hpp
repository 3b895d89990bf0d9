// The molecular graph a flow over atom positions is conditioned on (issue 15,
// conformer generation): elements, formal charges, bonds, and the
// topological relations between every pair of atoms; the graph's node and
// edge condition features; and the measures that judge a generated
// conformer against it (connectivity kept, heavy-atom RMSD).
//
// Bond convention: order is the Kekulé order 1, 2 or 3, as Open Babel 3
// stores bonds (it kekulizes aromatic input; enf never stores order 5), and
// `aromatic` is Open Babel's aromaticity perception for the bond (a benzene
// bond is order 1 or 2 and aromatic). Edge features use the aromatic flag
// in place of the order (see EdgeFeature).
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "datasets/molecule.hpp"

namespace enf {

struct GraphBond {
  int i = 0, j = 0;  // 0-based, i < j
  int order = 0;     // 1, 2 or 3 (Kekulé)
  bool aromatic = false;
  bool operator==(const GraphBond& o) const {
    return i == o.i && j == o.j && order == o.order && aromatic == o.aromatic;
  }
};

class MolecularGraph {
 public:
  // Topological distance of atoms in different fragments (no path).
  static constexpr int kDisconnected = -1;

  MolecularGraph() = default;
  // Bonds in any order and orientation (stored as i < j, sorted by (i, j));
  // formal_charges empty means all 0. Throws std::invalid_argument naming the
  // molecule for a bond outside the atoms, a bond of an atom to itself, a
  // bond given twice, an order other than 1, 2, 3, or a charge count that is
  // not the atom count.
  MolecularGraph(std::string name, std::vector<int> atomic_numbers, std::vector<int> formal_charges,
                 std::vector<GraphBond> bonds);

  const std::string& name() const { return name_; }
  int atoms() const { return int(atomic_numbers_.size()); }
  const std::vector<int>& atomic_numbers() const { return atomic_numbers_; }
  const std::vector<int>& formal_charges() const { return formal_charges_; }
  const std::vector<GraphBond>& bonds() const { return bonds_; }

  // Number of bonds on a shortest path from i to j (BFS over the bonds): 0
  // for i == j, kDisconnected when there is none.
  int distance(int i, int j) const { return distance_[index(i, j)]; }
  bool bonded(int i, int j) const { return distance(i, j) == 1; }
  bool one_three(int i, int j) const { return distance(i, j) == 2; }  // shortest path of 2 bonds
  bool one_four(int i, int j) const { return distance(i, j) == 3; }   // shortest path of 3 bonds
  // The bond between i and j (either order), or nullptr.
  const GraphBond* bond(int i, int j) const;
  // The bonds as the Molecule struct holds them (orders, no aromatic flag).
  std::vector<Bond> molecule_bonds() const;

 private:
  std::size_t index(int i, int j) const;

  std::string name_;
  std::vector<int> atomic_numbers_, formal_charges_;
  std::vector<GraphBond> bonds_;
  std::vector<int> distance_;    // [n, n]
  std::vector<int> bond_index_;  // [n, n]: index into bonds_, or -1
};

// The molecule's graph, atom order kept: its own bonds and formal charges
// when bonds_known, else bonds perceived by Open Babel from the 3-D geometry
// (ConnectTheDots, then PerceiveBondOrders, which may also set formal
// charges). Aromatic flags are Open Babel's perception in both cases.
// Open Babel's warnings while perceiving (e.g. "Failed to kekulize aromatic
// bonds in OBMol::PerceiveBondOrders": its orders are then a best guess) are
// not printed; with `warning` given, its last one is returned there ("" when
// none), so a caller reading thousands of molecules can count them.
MolecularGraph perceive_graph(const Molecule& m, std::string* warning = nullptr);

// ---- condition features

// Elements with a node one-hot channel, in channel order: H, C, N, O, F.
inline constexpr std::array<int, 5> kConditionElements = {1, 6, 7, 8, 9};
// Node features, [n, kNodeConditionFeatures] row-major, per atom: one-hot of
// its element among kConditionElements (channels 0..4), then its formal
// charge as a number (channel 5).
inline constexpr int kNodeConditionFeatures = int(kConditionElements.size()) + 1;
// Edge features, one row per ordered pair (i, j), i != j: channels 0..4 are a
// one-hot of the bond between i and j (none, single, double, triple,
// aromatic; an aromatic bond is "aromatic" whatever its Kekulé order), then
// three flags of the topological distance d(i, j): bonded (d = 1), 1-3
// (d = 2) and 1-4 (d = 3). Pairs farther apart (d >= 4, or in different
// fragments) have only "none" set.
enum EdgeFeature : int {
  kEdgeNoBond = 0,
  kEdgeSingle = 1,
  kEdgeDouble = 2,
  kEdgeTriple = 3,
  kEdgeAromatic = 4,
  kEdgeBonded = 5,
  kEdgeOneThree = 6,
  kEdgeOneFour = 7,
};
inline constexpr int kEdgeConditionFeatures = 8;

// [n, kNodeConditionFeatures]. Throws std::invalid_argument naming the
// molecule, the atom (1-based) and its element when an element is not in
// kConditionElements.
std::vector<double> node_condition_features(const MolecularGraph& g);

// [n (n - 1), kEdgeConditionFeatures], rows in this order: for i in 0..n-1
// (the receiver), for j in 0..n-1 with j != i (the sender). Row of (i, j):
// edge_condition_row(n, i, j).
std::vector<double> edge_condition_features(const MolecularGraph& g);
inline std::size_t edge_condition_row(int n, int i, int j) {
  return std::size_t(i) * std::size_t(n - 1) + std::size_t(j < i ? j : j - 1);
}

// ---- judging generated conformers

// Whether the bonds Open Babel perceives from positions ([n, 3], Å;
// ConnectTheDots + PerceiveBondOrders) are exactly g's bonds, as unordered
// atom pairs (bond orders are not compared).
bool connectivity_preserved(const MolecularGraph& g, const std::vector<double>& positions);

// RMSD of a and b ([n, 3] each) after the optimal superposition of b onto a:
// centroids matched and the best proper rotation (Kabsch, by Horn's
// quaternion method; no reflections).
double kabsch_rmsd(const std::vector<double>& a, const std::vector<double>& b);

// At most this many graph automorphisms of the heavy atoms are tried by
// heavy_atom_rmsd (QM9-sized molecules have a few dozen at most; a molecule
// with more is scored over the first kMaxAutomorphisms Open Babel finds).
inline constexpr std::size_t kMaxAutomorphisms = 10000;

// Heavy-atom (Z > 1) RMSD between a's positions and positions_b (the same
// atoms in the same order, [n, 3]) after optimal superposition (kabsch_rmsd).
// With symmetry, the minimum over the automorphisms of a's heavy-atom graph
// (perceive_graph(a); Open Babel's FindAutomorphisms, mappings that keep
// element, formal charge and hydrogen count; at most kMaxAutomorphisms).
// A molecule with no heavy atoms is scored on all its atoms.
double heavy_atom_rmsd(const Molecule& a, const std::vector<double>& positions_b, bool symmetry);

}  // namespace enf
