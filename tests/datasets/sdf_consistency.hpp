// An independent judge of enf's SDF output (issue 18): reads the text with
// Open Babel itself (not enf's reader) and checks that each record's bond
// block, formal charges and data fields describe one molecule:
//   - the bonds are EDM's distance-table bonds of the record's own
//     coordinates (distance_bonds), except that each 5-valent nitrogen's
//     clean-up (RDKit's, which validity applies) shows as an N+ whose bond to
//     an O− / N− is one order lower;
//   - `smiles` is the canonical SMILES (Open Babel, hydrogens deleted into
//     implicit counts, no stereo) of the bond block as read back;
//   - `fragments` counts the bond block's connected components;
//   - `molecule_stable` / `atom_stability` follow from the bond orders with
//     the clean-up undone (EDM's check_stability), `valid` from the bond block
//     and charges (RDKit's valence rule: N, O, F valence + charge, H and C
//     valence − |charge|);
//   - no atom has implicit hydrogens (every hydrogen is written as an atom).
// Shared by test_sdf_consistency (real and perturbed QM9 molecules) and the
// enf_sdf_check helper that test_cli_sdf runs on molecules sampled by enf.
#pragma once

#include <openbabel/atom.h>
#include <openbabel/bond.h>
#include <openbabel/generic.h>
#include <openbabel/mol.h>
#include <openbabel/obconversion.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "datasets/molecule_metrics.hpp"

namespace enf::test {

struct SdfConsistency {
  long records = 0, valid = 0, stable = 0, multi_fragment = 0, charged = 0;
  std::vector<std::string> problems;  // "record 3 ('x'): what", empty when consistent
};

inline std::string sdf_field(OpenBabel::OBMol& mol, const std::string& key, bool& present) {
  OpenBabel::OBGenericData* d = mol.GetData(key);
  present = d != nullptr;
  return present ? d->GetValue() : std::string();
}

inline SdfConsistency check_sdf_consistency(const std::string& sdf_text) {
  SdfConsistency out;
  OpenBabel::OBConversion read, can;
  read.SetInFormat("sdf");
  can.SetOutFormat("can");
  can.AddOption("n");  // no title
  can.AddOption("i");  // no stereo, no isotopes
  can.AddOption("h");  // the hydrogen atoms left are written (else a lone H vanishes)
  std::istringstream in(sdf_text);
  read.SetInStream(&in, false);
  OpenBabel::OBMol mol;
  for (long r = 1;; ++r) {
    mol.Clear();
    if (!read.Read(&mol)) break;
    ++out.records;
    const std::string where = "record " + std::to_string(r) + " ('" + mol.GetTitle() + "'): ";
    const auto problem = [&](const std::string& what) { out.problems.push_back(where + what); };
    const int n = int(mol.NumAtoms());
    Molecule m;
    std::vector<int> charge(static_cast<std::size_t>(n));
    for (int a = 0; a < n; ++a) {
      OpenBabel::OBAtom* atom = mol.GetAtom(a + 1);
      m.atomic_numbers.push_back(int(atom->GetAtomicNum()));
      m.positions.insert(m.positions.end(), {atom->GetX(), atom->GetY(), atom->GetZ()});
      charge[std::size_t(a)] = atom->GetFormalCharge();
      if (atom->GetImplicitHCount() > 0) problem("atom " + std::to_string(a + 1) + " has implicit hydrogens");
    }
    out.charged += std::any_of(charge.begin(), charge.end(), [](int c) { return c != 0; });
    // The bond block as read back, and with the clean-up undone.
    std::map<std::pair<int, int>, int> read_orders, undone;
    for (unsigned k = 0; k < mol.NumBonds(); ++k) {
      const OpenBabel::OBBond* b = mol.GetBond(int(k));
      const int i = int(b->GetBeginAtomIdx()) - 1, j = int(b->GetEndAtomIdx()) - 1;
      const std::pair<int, int> key{std::min(i, j), std::max(i, j)};
      read_orders[key] = int(b->GetBondOrder());
      const auto cleaned = [&](int p, int q) {
        return m.atomic_numbers[std::size_t(p)] == 7 && charge[std::size_t(p)] == 1 && charge[std::size_t(q)] == -1 &&
               (m.atomic_numbers[std::size_t(q)] == 8 || m.atomic_numbers[std::size_t(q)] == 7);
      };
      undone[key] = int(b->GetBondOrder()) + (cleaned(i, j) || cleaned(j, i) ? 1 : 0);
    }
    std::map<std::pair<int, int>, int> expected;
    for (const DistanceBond& b : distance_bonds(m)) expected[{b.i, b.j}] = b.order;
    if (undone != expected) {
      std::ostringstream diff;  // " 3-7: table 2, file 1", " extra 2-9"
      for (const auto& [key, order] : expected)
        if (!undone.count(key) || undone.at(key) != order)
          diff << ' ' << key.first + 1 << '-' << key.second + 1 << ": table " << order << ", file "
               << (undone.count(key) ? undone.at(key) : 0);
      for (const auto& [key, order] : undone)
        if (!expected.count(key)) diff << " extra " << key.first + 1 << '-' << key.second + 1;
      problem("bond block differs from distance_bonds:" + diff.str());
    }
    // Stability from the undone orders, validity from the bond block and charges.
    std::vector<int> sum_undone(std::size_t(n), 0), sum_read(std::size_t(n), 0);
    for (const auto& [key, order] : undone) sum_undone[std::size_t(key.first)] += order, sum_undone[std::size_t(key.second)] += order;
    for (const auto& [key, order] : read_orders) sum_read[std::size_t(key.first)] += order, sum_read[std::size_t(key.second)] += order;
    int stable_atoms = 0;
    bool valence_ok = n > 0;
    for (int a = 0; a < n; ++a) {
      const int z = m.atomic_numbers[std::size_t(a)], v = stable_valence(z), c = charge[std::size_t(a)];
      stable_atoms += sum_undone[std::size_t(a)] == v;
      valence_ok = valence_ok && sum_read[std::size_t(a)] <= (z >= 7 ? v + c : v - std::abs(c));
    }
    const bool stable = n > 0 && stable_atoms == n;
    // Fragments: connected components of the bond block.
    std::vector<int> parent(static_cast<std::size_t>(n));
    for (int a = 0; a < n; ++a) parent[std::size_t(a)] = a;
    std::function<int(int)> root = [&](int a) { return parent[std::size_t(a)] == a ? a : parent[std::size_t(a)] = root(parent[std::size_t(a)]); };
    int fragments = n;
    for (const auto& [key, order] : read_orders)
      if (root(key.first) != root(key.second)) parent[std::size_t(root(key.first))] = root(key.second), --fragments;

    bool has = false;
    const std::string valid_field = sdf_field(mol, "valid", has);
    if (!has) problem("no valid field");
    const std::string stable_field = sdf_field(mol, "molecule_stable", has);
    if (!has) problem("no molecule_stable field");
    const std::string atom_stability = sdf_field(mol, "atom_stability", has);
    if (!has || std::abs(std::atof(atom_stability.c_str()) - double(stable_atoms) / std::max(1, n)) > 1e-9)
      problem("atom_stability '" + atom_stability + "', recomputed " + std::to_string(stable_atoms) + "/" + std::to_string(n));
    if (stable_field != (stable ? "1" : "0")) problem("molecule_stable '" + stable_field + "', recomputed " + (stable ? "1" : "0"));
    if (valid_field != (valence_ok ? "1" : "0")) problem("valid '" + valid_field + "', recomputed " + (valence_ok ? "1" : "0"));
    const std::string fragments_field = sdf_field(mol, "fragments", has);
    if (fragments_field != std::to_string(fragments)) problem("fragments '" + fragments_field + "', bond block has " + std::to_string(fragments));
    out.valid += valid_field == "1";
    out.stable += stable_field == "1";
    out.multi_fragment += fragments > 1;

    const std::string smiles_field = sdf_field(mol, "smiles", has);
    // Hydrogens made implicit by hand: a hydrogen atom with one bond, to a
    // heavy atom, and no charge (Open Babel's DeleteHydrogens would also drop
    // a lone H atom, and the fragment with it).
    OpenBabel::OBMol heavy(mol);
    std::vector<OpenBabel::OBAtom*> implicit;
    for (unsigned a = 1; a <= heavy.NumAtoms(); ++a) {
      OpenBabel::OBAtom* h = heavy.GetAtom(int(a));
      if (h->GetAtomicNum() == 1 && h->GetExplicitDegree() == 1 && h->GetFormalCharge() == 0) implicit.push_back(h);
    }
    for (OpenBabel::OBAtom* h : implicit) {
      std::vector<OpenBabel::OBBond*>::iterator it;
      OpenBabel::OBAtom* nb = h->BeginNbrAtom(it);
      if (nb->GetAtomicNum() == 1) continue;
      nb->SetImplicitHCount(nb->GetImplicitHCount() + 1);
      heavy.DeleteAtom(h);
    }
    std::string smiles = can.WriteString(&heavy, true);
    if (smiles != smiles_field) problem("smiles '" + smiles_field + "', bond block's '" + smiles + "'");
    if (smiles_field.find("[H]") != std::string::npos && n > 0) {
      // [H] only where a hydrogen cannot be implicit (H2, a lone H, an H with two bonds).
      bool odd_h = false;
      for (int a = 0; a < n; ++a)
        if (m.atomic_numbers[std::size_t(a)] == 1 && sum_read[std::size_t(a)] != 1) odd_h = true;
      for (const auto& [key, order] : read_orders)
        if (m.atomic_numbers[std::size_t(key.first)] == 1 && m.atomic_numbers[std::size_t(key.second)] == 1) odd_h = true;
      if (!odd_h) problem("smiles '" + smiles_field + "' writes a hydrogen as [H] though every H has one bond");
    }
    if (std::count(smiles_field.begin(), smiles_field.end(), '.') + 1 != fragments)
      problem("smiles '" + smiles_field + "' has another number of fragments than " + std::to_string(fragments));
  }
  return out;
}

}  // namespace enf::test
