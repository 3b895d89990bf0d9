// Issue 18: an SDF record enf writes describes one molecule throughout — its
// bond block and charges are EDM's distance-table bonds (after RDKit's
// nitrogen clean-up, as validity sees them), and its smiles, fragments,
// valid, molecule_stable and atom_stability fields follow from that bond
// block. Judged by Open Babel reading the file back (sdf_consistency.hpp) on
// real QM9 molecules and on perturbed ones (many unstable, invalid,
// fragmented); molecules sampled by the model are judged in test_cli_sdf.
#include <openbabel/oberror.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "datasets/molecule_io.hpp"
#include "datasets/molecule_metrics.hpp"
#include "datasets/sdf_consistency.hpp"
#include "support/temp_dir.hpp"

using namespace enf;
using enf::test::TempDir;
using enf::test::slurp;
namespace fs = std::filesystem;

namespace {

constexpr const char* kSdf = "datasets/data/qm9/qm9_first500.sdf";
constexpr const char* kOriginal = "datasets/data/qm9/original_xyz/";



std::string property(const Molecule& m, const std::string& key) {
  std::string found = "<absent>";
  int times = 0;
  for (const auto& [k, v] : m.properties)
    if (k == key) found = v, ++times;
  return times > 1 ? "<repeated>" : found;
}

MoleculeReadOptions raw() {
  MoleculeReadOptions o;
  o.centre = false;
  return o;
}

Molecule make(const std::string& name, std::vector<int> z, std::vector<double> x) {
  Molecule m;
  m.name = name;
  m.atomic_numbers = std::move(z);
  m.positions = std::move(x);
  return m;
}

// Nitromethane: C–N 1.49 Å, N=O 1.21 Å (double by the tables: < 121 + 5 pm),
// so N has bond orders 1 + 2 + 2 = 5 and validity's clean-up makes it
// C[N+](=O)[O-].
Molecule nitromethane() {
  return make("nitromethane", {6, 7, 8, 8, 1, 1, 1},
              {0, 0, 0, 1.49, 0, 0, 2.09, 1.05, 0, 2.09, -1.05, 0, -0.36, 1.03, 0, -0.36, -0.51, 0.89, -0.36, -0.51, -0.89});
}

// Writes molecules (annotated) as SDF, with Open Babel's error log watched,
// and judges the file.
test::SdfConsistency write_and_judge(std::vector<Molecule> ms, const TempDir& tmp, const std::string& name) {
  for (Molecule& m : ms) annotate_molecule(m);
  OpenBabel::obErrorLog.ClearLog();
  const std::string path = tmp.file(name);
  write_molecules(path, ms);
  // Open Babel's own complaints while writing (TetStereoToWedgeHash etc.).
  CHECK(OpenBabel::obErrorLog.GetMessagesOfLevel(OpenBabel::obError).empty());
  CHECK(OpenBabel::obErrorLog.GetMessagesOfLevel(OpenBabel::obWarning).empty());
  test::SdfConsistency judged = test::check_sdf_consistency(slurp(path));
  CHECK(judged.records == long(ms.size()));
  for (const std::string& p : judged.problems) FAIL_CHECK(p);
  return judged;
}

}  // namespace

TEST_CASE("annotate_molecule: one bond assignment for the bond block and every field", "[sdf][metrics]") {
  SECTION("methane: bonds, no charges, hydrogens implicit in smiles") {
    Molecule m = make("methane", {6, 1, 1, 1, 1},
                      {0, 0, 0, 0.629, 0.629, 0.629, -0.629, -0.629, 0.629, -0.629, 0.629, -0.629, 0.629, -0.629, -0.629});
    const MoleculeQuality q = annotate_molecule(m);
    CHECK(m.bonds_known);
    CHECK(m.bonds.size() == 4);
    CHECK(m.formal_charges == std::vector<int>(5, 0));
    CHECK(property(m, "smiles") == "C");
    CHECK(q.smiles == "[H]C([H])([H])[H]");  // EDM's identity keeps [H]: it is not the smiles field
    CHECK(property(m, "fragments") == "1");
    CHECK(property(m, "valid") == "1");
    CHECK(property(m, "molecule_stable") == "1");
    SECTION("annotating again replaces the fields instead of repeating them") {
      m.positions.resize(12);
      m.atomic_numbers.resize(4);  // CH3: one hydrogen short
      annotate_molecule(m);
      CHECK(property(m, "smiles") == "[CH3]");
      CHECK(property(m, "molecule_stable") == "0");
      CHECK(property(m, "valid") == "1");  // RDKit fills the valence implicitly
    }
  }
  SECTION("nitromethane: the clean-up's charges are written, and the smiles carries them") {
    Molecule m = nitromethane();
    const MoleculeQuality q = annotate_molecule(m);
    CHECK_FALSE(q.stable);  // N has bond orders summing to 5
    CHECK(q.valid);
    CHECK(m.formal_charges == std::vector<int>{0, 1, -1, 0, 0, 0, 0});
    CHECK(property(m, "smiles") == "[O-][N+](=O)C");
    // The distance tables said N=O twice; the bond block has one of them single.
    int doubles = 0;
    for (const Bond& b : m.bonds) doubles += b.order == 2;
    CHECK(doubles == 1);
  }
  SECTION("two molecules in one record: the whole dot-separated SMILES and the fragment count") {
    Molecule m = nitromethane();
    const Molecule water = make("water", {8, 1, 1}, {10, 0, 0, 10.96, 0, 0, 9.76, 0.93, 0});
    m.atomic_numbers.insert(m.atomic_numbers.end(), water.atomic_numbers.begin(), water.atomic_numbers.end());
    m.positions.insert(m.positions.end(), water.positions.begin(), water.positions.end());
    const MoleculeQuality q = annotate_molecule(m);
    CHECK(q.fragments == 2);
    CHECK(property(m, "fragments") == "2");
    CHECK(property(m, "smiles") == "[O-][N+](=O)C.O");
    CHECK(q.smiles == evaluate_molecule(nitromethane()).smiles);  // identity: the largest fragment
  }
  SECTION("an invalid molecule gets its smiles too") {
    // A carbon with five hydrogens around it at bonding distance.
    Molecule m = make("CH5", {6, 1, 1, 1, 1, 1},
                      {0, 0, 0, 1.09, 0, 0, -1.09, 0, 0, 0, 1.09, 0, 0, -1.09, 0, 0, 0, 1.09});
    const MoleculeQuality q = annotate_molecule(m);
    CHECK_FALSE(q.valid);
    CHECK(property(m, "valid") == "0");
    CHECK(property(m, "smiles") == q.record_smiles);
    CHECK_FALSE(q.record_smiles.empty());
  }
}

TEST_CASE("SDF written by enf, read back by Open Babel: real QM9 molecules", "[sdf][metrics][slow]") {
  TempDir tmp("enf_sdf_consistency_test");
  std::vector<Molecule> ms = read_molecules(kSdf, raw()).molecules;
  for (int id : {1, 2, 3, 5000, 5001, 5005, 100001, 100004}) {
    char name[64];
    std::snprintf(name, sizeof name, "%sdsgdb9nsd_%06d.xyz", kOriginal, id);
    ms.push_back(read_molecules(name, raw()).molecules[0]);
  }
  const test::SdfConsistency j = write_and_judge(ms, tmp, "qm9.sdf");
  CHECK(j.valid > 480);
}

TEST_CASE("SDF written by enf, read back by Open Babel: perturbed QM9 molecules", "[sdf][metrics]") {
  // Noise of 0.03–0.18 Å moves atoms across the tables' thresholds: unstable
  // and invalid molecules, missing and extra bonds, split molecules.
  TempDir tmp("enf_sdf_consistency_test");
  MoleculeReadOptions o = raw();
  o.count = 150;
  std::vector<Molecule> ms = read_molecules(kSdf, o).molecules;
  std::mt19937 rng(18);
  for (std::size_t k = 0; k < ms.size(); ++k) {
    std::normal_distribution<double> noise(0, 0.03 + 0.15 * double(k % 6) / 5);
    for (double& x : ms[k].positions) x += noise(rng);
    ms[k].bonds_known = false;  // the file's bonds are no longer the molecule's
    ms[k].bonds.clear();
    ms[k].properties.clear();
  }
  ms.push_back(nitromethane());
  Molecule split = nitromethane();  // and a lone hydrogen atom far away
  split.atomic_numbers.push_back(1);
  split.positions.insert(split.positions.end(), {9, 9, 9});
  ms.push_back(split);
  const test::SdfConsistency j = write_and_judge(ms, tmp, "noisy.sdf");
  CHECK(j.valid < j.records);
  CHECK(j.valid > 0);
  CHECK(j.stable < j.valid);
  CHECK(j.multi_fragment > 2);
  CHECK(j.charged > 0);
  INFO("valid " << j.valid << ", stable " << j.stable << ", multi-fragment " << j.multi_fragment << " of " << j.records);
  CHECK(j.records == 152);
}

TEST_CASE("molecules without bonds are written with Open Babel's perceived bonds, as before", "[sdf]") {
  TempDir tmp("enf_sdf_consistency_test");
  Molecule m = nitromethane();
  const std::string path = tmp.file("perceived.sdf");
  write_molecules(path, {m});
  const std::string text = slurp(path);
  CHECK(text.find("  7  6  0") != std::string::npos);  // 7 atoms, 6 bonds from ConnectTheDots
  const MoleculeSet back = read_molecules(path, raw());
  REQUIRE(back.molecules.size() == 1);
  CHECK(back.molecules[0].bonds_known);
  CHECK(back.molecules[0].bonds.size() == 6);
}
