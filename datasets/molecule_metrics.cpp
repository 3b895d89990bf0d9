// Molecule quality metrics of E-NF / EDM. Sources (github.com):
//   ehoogeboom/e3_diffusion_for_molecules  qm9/bond_analyze.py   bonds1/2/3, margins, get_bond_order
//                                          qm9/analyze.py        check_stability
//                                          qm9/rdkit_functions.py BasicMolecularMetrics, build_molecule
//   vgsatorras/en_flows                    qm9/analyze.py        the same tables for H, C, N, O, F
//   rdkit/rdkit                            Code/GraphMol/MolOps.cpp  cleanUp (nitrogenCleanup), sanitizeMol
//
// Differences from the reference code:
// - Distances are computed in double precision (EDM: float32 tensors), so a
//   pair within ~1e-5 pm of a threshold may get the other order.
// - Validity is RDKit's SanitizeMol decision re-implemented for molecules of
//   H, C, N, O, F with single/double/triple bonds, where only these steps can
//   fail or change anything: cleanUp's nitrogen rules (its phosphorus and
//   halogen rules need P, Cl, Br, I), the valence check (RDKit's default
//   valences H 1, C 4, N 3, O 2, F 1, shifted by formal charge: N+ 4, N− 2,
//   O− 1), and Kekulize, which is a no-op on bonds that are never aromatic
//   on input. In its place Open Babel must kekulize the aromatic form it
//   perceives (the form its SMILES carries); this can only reject more, and
//   rejected none of 19 583 real QM9 molecules (test.npz, qm9_sample6000.xyz,
//   qm9_first500.sdf). RDKit's remaining steps
//   (rings, radicals, aromaticity, conjugation, hybridisation, chirality,
//   hydrogen adjustment) do not fail on such input.
// - SMILES strings are Open Babel's canonical SMILES, not RDKit's: another
//   canonical order and aromaticity model. Identity (uniqueness, novelty) is
//   consistent within enf; never compare them with SMILES pickled by EDM.
//   Like EDM's they keep hydrogen atoms as [H] (so a molecule missing a
//   hydrogen atom, whose valence is filled implicitly, differs from the
//   complete one) and carry no stereochemistry (EDM builds molecules without
//   coordinates).
// - Novelty: EDM's QM9 reference list holds whole-molecule SMILES while its
//   generated identities are largest fragments; here both are largest
//   fragments, so a set has novelty 0 against itself.
// - An empty molecule is neither stable nor valid (EDM's check_stability
//   calls it stable; E-NF's validity rejects its empty SMILES).
// - E-NF (en_flows) computed validity and SMILES on the whole molecule; EDM,
//   followed here, on its largest fragment.
#include "datasets/molecule_metrics.hpp"

#include <openbabel/atom.h>
#include <openbabel/bond.h>
#include <openbabel/kekulize.h>
#include <openbabel/mol.h>
#include <openbabel/obconversion.h>
#include <openbabel/obiter.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace enf {

namespace {

// Type index: 0..4 for H, C, N, O, F (as kQm9AtomicNumbers), −1 otherwise.
int type_of(int z) {
  switch (z) {
    case 1: return 0;
    case 6: return 1;
    case 7: return 2;
    case 8: return 3;
    case 9: return 4;
    default: return -1;
  }
}

constexpr const char* kSymbol[5] = {"H", "C", "N", "O", "F"};
constexpr int kValence[5] = {1, 4, 3, 2, 1};  // allowed_bonds

// Typical bond lengths in pm (bond_analyze.py: bonds1, bonds2, bonds3), rows
// and columns H, C, N, O, F; 0 where the reference table has no entry.
constexpr int kSingle[5][5] = {{74, 109, 101, 96, 92},
                               {109, 154, 147, 143, 135},
                               {101, 147, 145, 140, 136},
                               {96, 143, 140, 148, 142},
                               {92, 135, 136, 142, 142}};
constexpr int kDouble[5][5] = {{0, 0, 0, 0, 0},
                               {0, 134, 129, 120, 0},
                               {0, 129, 125, 121, 0},
                               {0, 120, 121, 121, 0},
                               {0, 0, 0, 0, 0}};
constexpr int kTriple[5][5] = {{0, 0, 0, 0, 0},
                               {0, 120, 116, 113, 0},
                               {0, 116, 110, 0, 0},
                               {0, 113, 0, 0, 0},
                               {0, 0, 0, 0, 0}};
// margin1, margin2, margin3 in pm, "tuned to maximize the stability of the QM9 true samples".
constexpr double kMargin1 = 10, kMargin2 = 5, kMargin3 = 3;

int bond_order_of_types(int a, int b, double distance_angstrom) {
  const double d = 100 * distance_angstrom;  // pm
  if (!(d < kSingle[a][b] + kMargin1)) return 0;
  if (kDouble[a][b] == 0 || !(d < kDouble[a][b] + kMargin2)) return 1;
  if (kTriple[a][b] == 0 || !(d < kTriple[a][b] + kMargin3)) return 2;
  return 3;
}

std::string molecule_label(const Molecule& m) { return m.name.empty() ? std::string("molecule") : "molecule '" + m.name + "'"; }

std::vector<int> checked_types(const Molecule& m) {
  if (m.positions.size() != 3 * m.atomic_numbers.size())
    throw std::invalid_argument(molecule_label(m) + ": " + std::to_string(m.positions.size()) + " coordinates for " +
                                std::to_string(m.atoms()) + " atoms");
  std::vector<int> t(m.atomic_numbers.size());
  for (std::size_t i = 0; i < t.size(); ++i) {
    t[i] = type_of(m.atomic_numbers[i]);
    if (t[i] < 0)
      throw std::invalid_argument(molecule_label(m) + ": atom " + std::to_string(i + 1) + " has atomic number " +
                                  std::to_string(m.atomic_numbers[i]) + "; the metrics know H, C, N, O, F only");
  }
  return t;
}

std::vector<DistanceBond> bonds_of(const Molecule& m, const std::vector<int>& t) {
  std::vector<DistanceBond> bonds;
  const int n = m.atoms();
  const double* x = m.positions.data();
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      const double dx = x[3 * i] - x[3 * j], dy = x[3 * i + 1] - x[3 * j + 1], dz = x[3 * i + 2] - x[3 * j + 2];
      const int order = bond_order_of_types(t[i], t[j], std::sqrt(dx * dx + dy * dy + dz * dz));
      if (order > 0) bonds.push_back({i, j, order});
    }
  return bonds;
}

std::string atom_text(int i, int type) { return "atom " + std::to_string(i + 1) + " (" + kSymbol[type] + ")"; }

// Open Babel's canonical SMILES: no title, no stereo or isotopes, hydrogen
// atoms written as [H] (without "h" Open Babel drops them, also a lone H or
// one bridging two atoms); implicit hydrogen counts as the molecule has them.
class SmilesWriter {
 public:
  SmilesWriter() {
    if (!conv_.SetOutFormat("can"))
      throw std::runtime_error("Open Babel's canonical SMILES format 'can' is not available (check BABEL_LIBDIR)");
    conv_.AddOption("n");
    conv_.AddOption("i");
    conv_.AddOption("h");
  }
  std::string write(OpenBabel::OBMol& mol) { return conv_.WriteString(&mol, true); }

 private:
  OpenBabel::OBConversion conv_;
};

// The largest connected component (most atoms, hydrogens included; the first
// by lowest atom index on ties, as Python's max over RDKit's GetMolFrags), and
// the number of components.
std::vector<int> largest_fragment(int n, const std::vector<DistanceBond>& bonds, int& fragments) {
  std::vector<std::vector<int>> adj(n);
  for (const auto& b : bonds) {
    adj[b.i].push_back(b.j);
    adj[b.j].push_back(b.i);
  }
  std::vector<int> component(n, -1), best, stack;
  fragments = 0;
  for (int s = 0; s < n; ++s) {
    if (component[s] >= 0) continue;
    std::vector<int> members;
    component[s] = fragments;
    stack.assign(1, s);
    while (!stack.empty()) {
      const int a = stack.back();
      stack.pop_back();
      members.push_back(a);
      for (int b : adj[a])
        if (component[b] < 0) component[b] = fragments, stack.push_back(b);
    }
    ++fragments;
    if (members.size() > best.size()) best = std::move(members);
  }
  std::sort(best.begin(), best.end());
  return best;
}

// Bond-order sum of each atom.
std::vector<int> valences(int n, const std::vector<DistanceBond>& bonds) {
  std::vector<int> v(std::size_t(n), 0);
  for (const auto& b : bonds) v[b.i] += b.order, v[b.j] += b.order;
  return v;
}

// The bond assignment of validity: the distance bonds after RDKit's
// nitrogen clean-up, into q.bonds and q.formal_charges.
void clean_up(const Molecule& m, std::vector<DistanceBond> bonds, MoleculeQuality& q) {
  const int n = m.atoms();
  // Neighbours of each atom in ascending index order: the order in which
  // EDM's build_molecule adds the bonds, hence RDKit's neighbour order.
  std::vector<std::vector<int>> incident(n);  // bond indices
  for (std::size_t k = 0; k < bonds.size(); ++k) {
    incident[bonds[k].i].push_back(int(k));
    incident[bonds[k].j].push_back(int(k));
  }
  const auto valence = [&](int a) {
    int v = 0;
    for (int k : incident[a]) v += bonds[k].order;
    return v;
  };
  std::vector<int> charge(n, 0);
  // RDKit cleanUp, nitrogenCleanup: a neutral N of valence 5 gives its first
  // neutral doubly bonded O a single bond and a negative charge (N(=O)=O →
  // [N+](=O)[O-]), or else its first neutral triply bonded N a double bond
  // and a negative charge (N#N → [N+]=[N-]); the N becomes N+.
  for (int a = 0; a < n; ++a) {
    if (m.atomic_numbers[a] != 7 || charge[a] != 0 || valence(a) != 5) continue;
    for (int k : incident[a]) {
      DistanceBond& b = bonds[k];
      const int other = b.i == a ? b.j : b.i;
      if (charge[other] != 0) continue;
      const int z = m.atomic_numbers[other];
      if ((z == 8 && b.order == 2) || (z == 7 && b.order == 3)) {
        b.order -= 1;
        charge[a] = 1;
        charge[other] = -1;
        break;
      }
    }
  }
  q.bonds = std::move(bonds);
  q.formal_charges = std::move(charge);
}

// An Open Babel molecule of atoms `atoms` of m (ascending indices) with the
// bonds among them and formal charges; implicit hydrogens per atom as given
// (none when implicit_h is empty). No coordinates: no stereochemistry.
OpenBabel::OBMol to_graph(const Molecule& m, const std::vector<int>& atoms, const std::vector<DistanceBond>& bonds,
                          const std::vector<int>& charge, const std::vector<int>& implicit_h) {
  OpenBabel::OBMol mol;
  mol.BeginModify();
  std::vector<int> ob_index(std::size_t(m.atoms()), 0);  // 1-based Open Babel index of each kept atom
  for (int a : atoms) {
    OpenBabel::OBAtom* atom = mol.NewAtom();
    atom->SetAtomicNum(m.atomic_numbers[a]);
    atom->SetFormalCharge(charge[a]);
    atom->SetImplicitHCount(implicit_h.empty() ? 0u : unsigned(implicit_h[a]));
    ob_index[a] = int(atom->GetIdx());
  }
  for (const auto& b : bonds)
    if (ob_index[b.i] > 0 && ob_index[b.j] > 0) mol.AddBond(ob_index[b.i], ob_index[b.j], b.order);
  mol.EndModify();
  mol.SetDimension(0);  // no coordinates: no stereochemistry, as EDM's RDKit molecules
  return mol;
}

// The record's own SMILES (MoleculeQuality::record_smiles): the cleaned-up
// bonds and charges; a hydrogen atom with one bond, to a heavy atom, and no
// charge becomes an implicit hydrogen of that atom (so an atom missing a
// hydrogen is written [CH2] etc.), every other hydrogen atom stays [H] —
// a lone H is a fragment of its own, H2 is [H][H].
std::string record_smiles(const Molecule& m, const MoleculeQuality& q, SmilesWriter& writer) {
  const int n = m.atoms();
  std::vector<int> degree(std::size_t(n), 0), heavy_neighbour(std::size_t(n), -1), implicit_h(std::size_t(n), 0);
  for (const auto& b : q.bonds) {
    ++degree[b.i], ++degree[b.j];
    heavy_neighbour[b.i] = m.atomic_numbers[b.j] != 1 ? b.j : -1;
    heavy_neighbour[b.j] = m.atomic_numbers[b.i] != 1 ? b.i : -1;
  }
  std::vector<int> kept;
  for (int a = 0; a < n; ++a) {
    if (m.atomic_numbers[a] == 1 && degree[a] == 1 && heavy_neighbour[a] >= 0 && q.formal_charges[a] == 0)
      ++implicit_h[heavy_neighbour[a]];
    else
      kept.push_back(a);
  }
  OpenBabel::OBMol mol = to_graph(m, kept, q.bonds, q.formal_charges, implicit_h);
  return writer.write(mol);
}

// Validity (see the header) and, when valid, the SMILES of the largest
// fragment, on the clean-up's bonds and charges (q.bonds, q.formal_charges).
void check_validity(const Molecule& m, const std::vector<int>& t, SmilesWriter& writer, MoleculeQuality& q) {
  const int n = m.atoms();
  if (n == 0) {
    q.invalidity = "no atoms";
    return;
  }
  const std::vector<DistanceBond>& bonds = q.bonds;
  const std::vector<int>& charge = q.formal_charges;
  const std::vector<int> valence_of = valences(n, bonds);
  const auto valence = [&](int a) { return valence_of[std::size_t(a)]; };
  // RDKit's valence check: N, O, F take valence + charge (N+ 4, N− 2, O− 1),
  // H and C valence − |charge|.
  std::vector<int> max_valence(n);
  for (int a = 0; a < n; ++a) {
    const int z = m.atomic_numbers[a];
    max_valence[a] = kValence[t[a]] + (z >= 7 ? charge[a] : -std::abs(charge[a]));
    const int v = valence(a);
    if (v > max_valence[a]) {
      q.invalidity = atom_text(a, t[a]) + (charge[a] > 0 ? "+" : charge[a] < 0 ? "-" : "") +
                     " has bond orders summing to " + std::to_string(v) + ", more than its valence " +
                     std::to_string(max_valence[a]);
      return;
    }
  }
  const std::vector<int> atoms = largest_fragment(n, bonds, q.fragments);  // as EDM: after the clean-up

  // The largest fragment for Open Babel, missing valences filled with
  // implicit hydrogens as RDKit does.
  std::vector<int> implicit_h(static_cast<std::size_t>(n));
  for (int a = 0; a < n; ++a) implicit_h[std::size_t(a)] = max_valence[a] - valence(a);
  OpenBabel::OBMol mol = to_graph(m, atoms, bonds, charge, implicit_h);

  std::string smiles = writer.write(mol);
  if (smiles.empty()) {
    q.invalidity = "Open Babel wrote no SMILES";
    return;
  }
  // Open Babel perceived aromaticity to write the SMILES; reading that SMILES
  // back means kekulizing its aromatic bonds, which must succeed.
  bool aromatic = false;
  FOR_BONDS_OF_MOL(b, mol) {
    if (b->IsAromatic()) {
      b->SetBondOrder(1);
      aromatic = true;
    }
  }
  if (aromatic && !OpenBabel::OBKekulize(&mol)) {
    q.invalidity = "Open Babel cannot kekulize its aromatic form " + smiles;
    return;
  }
  q.valid = true;
  q.smiles = std::move(smiles);
}

MoleculeQuality evaluate_with(const Molecule& m, SmilesWriter& writer) {
  const std::vector<int> t = checked_types(m);
  const std::vector<DistanceBond> bonds = bonds_of(m, t);
  const int n = m.atoms();
  MoleculeQuality q;
  q.atoms = n;
  std::vector<int> sum(n, 0);
  for (const auto& b : bonds) {
    sum[b.i] += b.order;
    sum[b.j] += b.order;
  }
  for (int a = 0; a < n; ++a) {
    if (sum[a] == kValence[t[a]]) {
      ++q.stable_atoms;
    } else if (q.instability.empty()) {
      q.instability = atom_text(a, t[a]) + " has bond orders summing to " + std::to_string(sum[a]) + ", valence " +
                      std::to_string(kValence[t[a]]);
    }
  }
  q.stable = n > 0 && q.stable_atoms == n;
  if (n == 0) q.instability = "no atoms";
  clean_up(m, bonds, q);
  check_validity(m, t, writer, q);
  if (q.fragments == 0 && n > 0) largest_fragment(n, q.bonds, q.fragments);
  if (n > 0) q.record_smiles = record_smiles(m, q, writer);
  return q;
}

}  // namespace

bool metrics_support_element(int z) { return type_of(z) >= 0; }

int stable_valence(int z) { return type_of(z) >= 0 ? kValence[type_of(z)] : 0; }

int distance_bond_order(int z1, int z2, double distance_angstrom) {
  const int a = type_of(z1), b = type_of(z2);
  if (a < 0 || b < 0)
    throw std::invalid_argument("distance_bond_order: atomic numbers " + std::to_string(z1) + ", " +
                                std::to_string(z2) + "; the bond tables cover H, C, N, O, F only");
  return bond_order_of_types(a, b, distance_angstrom);
}

std::vector<DistanceBond> distance_bonds(const Molecule& m) { return bonds_of(m, checked_types(m)); }

MoleculeQuality evaluate_molecule(const Molecule& m) {
  SmilesWriter writer;
  return evaluate_with(m, writer);
}

std::vector<MoleculeQuality> evaluate_molecules(const std::vector<Molecule>& molecules) {
  SmilesWriter writer;
  std::vector<MoleculeQuality> out;
  out.reserve(molecules.size());
  for (const auto& m : molecules) out.push_back(evaluate_with(m, writer));
  return out;
}

std::set<std::string> unique_valid_smiles(const std::vector<MoleculeQuality>& results) {
  std::set<std::string> s;
  for (const auto& r : results)
    if (r.valid) s.insert(r.smiles);
  return s;
}

QualitySummary summarize_quality(const std::vector<MoleculeQuality>& results) {
  QualitySummary s;
  s.molecules = long(results.size());
  for (const auto& r : results) {
    s.atoms += r.atoms;
    s.stable_atoms += r.stable_atoms;
    s.stable_molecules += r.stable;
    s.valid += r.valid;
  }
  s.unique = long(unique_valid_smiles(results).size());
  s.atom_stability = s.atoms > 0 ? double(s.stable_atoms) / double(s.atoms) : 0.0;
  s.molecule_stability = s.molecules > 0 ? double(s.stable_molecules) / double(s.molecules) : 0.0;
  s.validity = s.molecules > 0 ? double(s.valid) / double(s.molecules) : 0.0;
  s.uniqueness = s.valid > 0 ? double(s.unique) / double(s.valid) : 0.0;
  return s;
}

QualitySummary summarize_quality(const std::vector<MoleculeQuality>& results, const std::set<std::string>& reference) {
  QualitySummary s = summarize_quality(results);
  s.has_reference = true;
  s.reference_smiles = long(reference.size());
  for (const auto& smiles : unique_valid_smiles(results)) s.novel += reference.count(smiles) == 0;
  s.novelty = s.unique > 0 ? double(s.novel) / double(s.unique) : 0.0;
  return s;
}

MoleculeQuality annotate_molecule(Molecule& m) {
  // An SDF atom line holds coordinates to 1e-4 Å; a pair within that of a
  // bond threshold would otherwise get another bond order from the file than
  // from the fields. Rounded here, the file and the fields see one geometry
  // (std::round(x·1e4)/1e4 is the double nearest the written decimal).
  for (double& x : m.positions) x = std::round(x * 1e4) / 1e4;
  const MoleculeQuality q = evaluate_molecule(m);
  m.bonds_known = true;
  m.bonds = q.bonds;
  m.formal_charges = q.formal_charges;
  // A field of the same name (e.g. from a file read earlier) is replaced: a
  // record must not carry two answers to one question.
  const auto set = [&m](const std::string& key, const std::string& value) {
    for (auto& [k, v] : m.properties)
      if (k == key) return void(v = value);
    m.properties.emplace_back(key, value);
  };
  std::ostringstream stability;
  stability.precision(10);
  stability << double(q.stable_atoms) / std::max(1, q.atoms);
  set("atom_stability", stability.str());
  set("molecule_stable", q.stable ? "1" : "0");
  set("valid", q.valid ? "1" : "0");
  set("fragments", std::to_string(q.fragments));
  set("smiles", q.record_smiles);
  return q;
}

}  // namespace enf
