// Issue 18: molecules a chemist has that the QM9 model cannot score are
// refused on reading (one line naming the file and record), not scored
// silently and wrongly: implicit hydrogens, ions (formal charges that do not
// sum to zero) and 2-D drawings, also in files that claim 3-D.
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "datasets/molecule_io.hpp"
#include "support/temp_dir.hpp"

using namespace enf;
using enf::test::TempDir;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {


struct Atom {
  const char* symbol;
  double x, y, z;
  int charge = 0;
};
struct BondLine {
  int i, j, order;  // 1-based
};

// One V2000 record; dim is the header's dimension code ("2D", "3D" or "").
std::string mol_record(const std::string& title, const std::string& dim, const std::vector<Atom>& atoms,
                       const std::vector<BondLine>& bonds) {
  std::string s = title + "\n  enftest 1206261430" + dim + "\n\n";
  char line[128];
  std::snprintf(line, sizeof line, "%3zu%3zu  0  0  0  0  0  0  0  0999 V2000\n", atoms.size(), bonds.size());
  s += line;
  for (const Atom& a : atoms) {
    const int code = a.charge == 0 ? 0 : 4 - a.charge;  // the atom block's charge code
    std::snprintf(line, sizeof line, "%10.4f%10.4f%10.4f %-3s 0%3d  0  0  0  0  0  0  0  0  0  0\n", a.x, a.y, a.z,
                  a.symbol, code);
    s += line;
  }
  for (const BondLine& b : bonds) {
    std::snprintf(line, sizeof line, "%3d%3d%3d  0\n", b.i, b.j, b.order);
    s += line;
  }
  return s + "M  END\n$$$$\n";
}

// Ethane, staggered, C–C along x: 3-D as it should be.
std::vector<Atom> ethane() {
  std::vector<Atom> a = {{"C", 0, 0, 0}, {"C", 1.53, 0, 0}};
  for (int k = 0; k < 3; ++k) {
    const double t = 2 * M_PI * k / 3;
    a.push_back({"H", -0.36, 1.03 * std::cos(t), 1.03 * std::sin(t)});
    a.push_back({"H", 1.89, 1.03 * std::cos(t + M_PI / 3), 1.03 * std::sin(t + M_PI / 3)});
  }
  return a;
}
const std::vector<BondLine> kEthaneBonds = {{1, 2, 1}, {1, 3, 1}, {2, 4, 1}, {1, 5, 1}, {2, 6, 1}, {1, 7, 1}, {2, 8, 1}};

// Benzene in the xy plane (every z exactly 0).
std::vector<Atom> benzene() {
  std::vector<Atom> a;
  for (int k = 0; k < 6; ++k) a.push_back({"C", 1.39 * std::cos(k * M_PI / 3), 1.39 * std::sin(k * M_PI / 3), 0});
  for (int k = 0; k < 6; ++k) a.push_back({"H", 2.48 * std::cos(k * M_PI / 3), 2.48 * std::sin(k * M_PI / 3), 0});
  return a;
}
std::vector<BondLine> benzene_bonds() {
  std::vector<BondLine> b;
  for (int k = 0; k < 6; ++k) b.push_back({k + 1, (k + 1) % 6 + 1, k % 2 ? 1 : 2});
  for (int k = 0; k < 6; ++k) b.push_back({k + 1, k + 7, 1});
  return b;
}

MoleculeReadOptions skipping() {
  MoleculeReadOptions o;
  o.skip_unsupported = true;
  return o;
}

}  // namespace

TEST_CASE("implicit hydrogens are refused, naming the record, the atom and the fix", "[molecule_io][guards]") {
  TempDir tmp("enf_molecule_guards_test");
  // Ethanol as chemists draw it: heavy atoms only.
  const std::string heavy = mol_record("ethanol", "3D", {{"C", 0, 0, 0}, {"C", 1.52, 0, 0}, {"O", 2.0, 1.35, 0.1}},
                                       {{1, 2, 1}, {2, 3, 1}});
  const std::string sdf = tmp.write("heavy.sdf", mol_record("ethane", "3D", ethane(), kEthaneBonds) + heavy);
  CHECK_THROWS_WITH(read_molecules(sdf), Contains("sdf file '" + sdf + "': record 2 ('ethanol')") &&
                                             Contains("atom 1 (C) has 3 implicit hydrogens") &&
                                             Contains("obabel -h"));
  const MoleculeSet kept = read_molecules(sdf, skipping());
  CHECK(kept.molecules.size() == 1);
  CHECK(kept.skipped == 1);

  SECTION("MOL2 and a PDB without hydrogens, whose bonds Open Babel perceives") {
    const std::string mol2 = tmp.write("heavy.mol2",
                                       "@<TRIPOS>MOLECULE\nethanol\n 3 2 0 0 0\nSMALL\nNO_CHARGES\n\n@<TRIPOS>ATOM\n"
                                       "      1 C1   0.0000  0.0000  0.0000 C.3  1 UNL1  0.0000\n"
                                       "      2 C2   1.5200  0.0000  0.0000 C.3  1 UNL1  0.0000\n"
                                       "      3 O1   2.0000  1.3500  0.1000 O.3  1 UNL1  0.0000\n"
                                       "@<TRIPOS>BOND\n     1     1     2    1\n     2     2     3    1\n");
    CHECK_THROWS_WITH(read_molecules(mol2), Contains("record 1 ('ethanol')") && Contains("implicit hydrogen"));
    const std::string pdb = tmp.write("heavy.pdb",
                                      "HETATM    1  C1  UNL     1       0.000   0.000   0.000  1.00  0.00           C\n"
                                      "HETATM    2  C2  UNL     1       1.520   0.000   0.000  1.00  0.00           C\n"
                                      "HETATM    3  O1  UNL     1       2.000   1.350   0.100  1.00  0.00           O\n"
                                      "END\n");
    CHECK_THROWS_WITH(read_molecules(pdb), Contains("implicit hydrogen"));
  }
  SECTION("an under-valent atom enf itself wrote (a sampled CH3) is not taken for implicit hydrogens") {
    // Written with explicit bonds: Open Babel marks the carbon's valence in the atom block.
    Molecule m;
    m.name = "methyl";
    m.atomic_numbers = {6, 1, 1, 1};
    m.positions = {0, 0, 0, 1.09, 0, 0, -0.545, 0.944, 0, -0.545, -0.944, 0.2};
    const std::string perceived = (tmp.path / "perceived.sdf").string();
    write_molecules(perceived, {m});  // bonds from Open Babel's perception, as files of other paths
    m.bonds_known = true;
    m.bonds = {{0, 1, 1}, {0, 2, 1}, {0, 3, 1}};
    const std::string path = (tmp.path / "methyl.sdf").string();
    write_molecules(path, {m});
    for (const std::string& file : {path, perceived}) {
      CAPTURE(file);
      const MoleculeSet back = read_molecules(file);
      REQUIRE(back.molecules.size() == 1);
      CHECK(back.molecules[0].atoms() == 4);
    }
  }
}

TEST_CASE("ions are refused; neutral charge-separated molecules are kept", "[molecule_io][guards]") {
  TempDir tmp("enf_molecule_guards_test");
  // Ammonium without a counter-ion: an ion (quaternary N+).
  const std::vector<Atom> ammonium = {{"N", 0, 0, 0, 1},          {"H", 0.59, 0.59, 0.59}, {"H", -0.59, -0.59, 0.59},
                                      {"H", -0.59, 0.59, -0.59}, {"H", 0.59, -0.59, -0.59}};
  const std::string ion = tmp.write("ion.sdf", mol_record("ammonium", "3D", ammonium, {{1, 2, 1}, {1, 3, 1}, {1, 4, 1}, {1, 5, 1}}));
  CHECK_THROWS_WITH(read_molecules(ion), Contains("record 1 ('ammonium'): atom 1 (N) has formal charge +1") &&
                                             Contains("the QM9 model knows neutral molecules only") &&
                                             Contains("--skip-unsupported"));
  // Nitromethane as chemists write it, [N+](=O)[O-]: neutral, kept.
  const std::vector<Atom> nitro = {{"C", 0, 0, 0},          {"N", 1.49, 0, 0, 1},     {"O", 2.09, 1.05, 0},
                                   {"O", 2.09, -1.05, 0, -1}, {"H", -0.36, 1.03, 0}, {"H", -0.36, -0.51, 0.89},
                                   {"H", -0.36, -0.51, -0.89}};
  const std::string both = tmp.write(
      "both.sdf", mol_record("nitromethane", "3D", nitro, {{1, 2, 1}, {2, 3, 2}, {2, 4, 1}, {1, 5, 1}, {1, 6, 1}, {1, 7, 1}}) +
                      mol_record("ammonium", "3D", ammonium, {{1, 2, 1}, {1, 3, 1}, {1, 4, 1}, {1, 5, 1}}));
  const MoleculeSet kept = read_molecules(both, skipping());
  REQUIRE(kept.molecules.size() == 1);
  CHECK(kept.molecules[0].name == "nitromethane");
  CHECK(kept.molecules[0].formal_charges == std::vector<int>{0, 1, 0, -1, 0, 0, 0});
  CHECK(kept.skipped == 1);
  CHECK_THAT(kept.skip_reasons.at(0), Contains("record 2 ('ammonium')"));
}

TEST_CASE("2-D drawings are refused, also in files that claim 3-D; flat molecules are not", "[molecule_io][guards]") {
  TempDir tmp("enf_molecule_guards_test");
  std::vector<Atom> flat = ethane();
  for (Atom& a : flat) a.z = 0;  // the drawing: every hydrogen pressed into the plane
  SECTION("an SDF whose header says 2D, or says nothing with every z = 0") {
    for (const std::string dim : {"2D", ""}) {
      const std::string path = tmp.write("d.sdf", mol_record("ethane", dim, flat, kEthaneBonds));
      CHECK_THROWS_WITH(read_molecules(path), Contains("record 1 ('ethane')") && Contains("2-D"));
    }
  }
  SECTION("an SDF that says 3D, and a MOL2, with a carbon of four neighbours in a plane") {
    const std::string sdf = tmp.write("flat3d.sdf", mol_record("ethane", "3D", flat, kEthaneBonds));
    CHECK_THROWS_WITH(read_molecules(sdf), Contains("record 1 ('ethane'): the record is flat") &&
                                               Contains("atom 1 (C) has 4 bonded neighbours") &&
                                               Contains("2-D drawing"));
    std::string mol2 = "@<TRIPOS>MOLECULE\nethane\n 8 7 0 0 0\nSMALL\nNO_CHARGES\n\n@<TRIPOS>ATOM\n";
    char line[128];
    for (std::size_t k = 0; k < flat.size(); ++k) {
      std::snprintf(line, sizeof line, "%7zu %-4s %9.4f %9.4f %9.4f %s 1 UNL1 0.0000\n", k + 1, flat[k].symbol,
                    flat[k].x, flat[k].y, flat[k].z, flat[k].symbol[0] == 'C' ? "C.3" : "H");
      mol2 += line;
    }
    mol2 += "@<TRIPOS>BOND\n";
    for (std::size_t k = 0; k < kEthaneBonds.size(); ++k) {
      std::snprintf(line, sizeof line, "%6zu %5d %5d 1\n", k + 1, kEthaneBonds[k].i, kEthaneBonds[k].j);
      mol2 += line;
    }
    CHECK_THROWS_WITH(read_molecules(tmp.write("flat.mol2", mol2)), Contains("the record is flat"));
  }
  SECTION("the real ethane, and benzene in the xy plane of a 3-D file, are read") {
    const std::string path = tmp.write("ok.sdf", mol_record("ethane", "3D", ethane(), kEthaneBonds) +
                                                     mol_record("benzene", "3D", benzene(), benzene_bonds()));
    const MoleculeSet ok = read_molecules(path);
    REQUIRE(ok.molecules.size() == 2);
    CHECK(ok.molecules[1].atoms() == 12);
  }
}
