// Molecule quality metrics (datasets/molecule_metrics.hpp): EDM's bond orders
// at its table distances, stability and validity of hand-built molecules,
// near-perfect scores on real QM9 molecules, novelty, and invariance under
// rotations, reflections, translations and permutations of the atoms.
#include <openbabel/atom.h>
#include <openbabel/mol.h>
#include <openbabel/obconversion.h>
#include <openbabel/obiter.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <map>
#include <numbers>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "datasets/molecule_io.hpp"
#include "datasets/molecule_metrics.hpp"
#include "datasets/xyz.hpp"

using namespace enf;

namespace {

constexpr const char* kSdf = "datasets/data/qm9/qm9_first500.sdf";
constexpr const char* kXyz = "datasets/data/qm9/qm9_sample6000.xyz";
constexpr const char* kNpz = "datasets/data/qm9/edm_cormorant_npz/test.npz";
constexpr long kNpzRows = 2000;  // of 13083: keeps the sanitizer build quick

// Steps either side of a bond threshold, in Å (1e-4 pm): far above double
// rounding of 100·d, far below any distance that matters chemically.
constexpr double kThresholdStep = 1e-6;

// Floors for real QM9 molecules, a little under what was measured (Open Babel
// 3.1.1, Debian 12):
//                        atom stab.          molecule stab.    validity          uniqueness
//   qm9_first500.sdf     0.9903 (5912/5970)  0.964 (482/500)   0.968 (484/500)   1 (484/484)
//   qm9_sample6000.xyz   0.9937              0.9552 (5731)     0.9783 (5870)     1 (5870/5870)
//   test.npz, 2000 rows  0.9958              0.9715 (1943)     0.979 (1958)      1 (1958/1958)
//   test.npz, all 13083  0.9934              0.9522 (12457)    0.9774 (12787)    1   (enf metrics)
// EDM reports 99.0 / 95.2 / 97.7 / 100 % for QM9 itself with these tables. The
// first 500 QM9 molecules are small and rich in conjugated triple bonds
// (CC#CC#C), six-membered aromatic rings and zwitterions ([NH3+]CCC(=O)[O-]),
// whose bond orders the distance tables get wrong more often than in a random
// sample.
constexpr double kMinAtomStability = 0.985;
constexpr double kMinMoleculeStability = 0.95;
constexpr double kMinValidity = 0.96;
constexpr double kMinUniqueness = 0.99;

int atomic_number_of(const std::string& symbol) {
  static const std::map<std::string, int> z{{"H", 1}, {"C", 6}, {"N", 7}, {"O", 8}, {"F", 9}, {"S", 16}};
  const auto it = z.find(symbol);
  return it == z.end() ? 0 : it->second;
}

Molecule molecule(const std::string& name, const std::vector<std::pair<int, std::array<double, 3>>>& atoms) {
  Molecule m;
  m.name = name;
  for (const auto& [z, x] : atoms) {
    m.atomic_numbers.push_back(z);
    m.positions.insert(m.positions.end(), x.begin(), x.end());
  }
  return m;
}

Molecule methane() {
  const double h = 1.09 / std::sqrt(3.0);
  return molecule("methane", {{6, {0, 0, 0}}, {1, {h, h, h}}, {1, {h, -h, -h}}, {1, {-h, h, -h}}, {1, {-h, -h, h}}});
}

// C=C 1.33 Å, C–H 1.09 Å, 120° angles.
Molecule ethene() {
  const double s = 1.09 * std::sin(std::numbers::pi / 3), c = 0.665 + 1.09 * std::cos(std::numbers::pi / 3);
  return molecule("ethene", {{6, {0, 0, 0.665}}, {6, {0, 0, -0.665}}, {1, {s, 0, c}}, {1, {-s, 0, c}},
                             {1, {s, 0, -c}}, {1, {-s, 0, -c}}});
}

// C≡C 1.20 Å, C–H 1.06 Å, linear.
Molecule ethyne() {
  return molecule("ethyne", {{6, {0, 0, 0.6}}, {6, {0, 0, -0.6}}, {1, {0, 0, 1.66}}, {1, {0, 0, -1.66}}});
}

// O–H 0.96 Å, 104.5°.
Molecule water() {
  const double a = 104.5 / 2 * std::numbers::pi / 180;
  return molecule("water", {{8, {0, 0, 0}}, {1, {0.96 * std::sin(a), 0, 0.96 * std::cos(a)}},
                            {1, {-0.96 * std::sin(a), 0, 0.96 * std::cos(a)}}});
}

// H–C 1.07 Å, C≡N 1.16 Å.
Molecule hydrogen_cyanide() { return molecule("HCN", {{1, {0, 0, -1.07}}, {6, {0, 0, 0}}, {7, {0, 0, 1.16}}}); }

// A carbon with five hydrogens at 1.09 Å (trigonal bipyramid): valence 5.
Molecule pentavalent_carbon() {
  const double r = 1.09, s = std::sqrt(3.0) / 2;
  return molecule("CH5", {{6, {0, 0, 0}}, {1, {0, 0, r}}, {1, {0, 0, -r}}, {1, {r, 0, 0}}, {1, {-r / 2, r * s, 0}},
                          {1, {-r / 2, -r * s, 0}}});
}

// Methane without one hydrogen: C has valence 3.
Molecule methyl() {
  Molecule m = methane();
  m.name = "methyl";
  m.atomic_numbers.pop_back();
  m.positions.resize(12);
  return m;
}

// CH3–NO2: C–N 1.49 Å, N=O 1.22 Å, O–N–O 125°; the N has valence 5.
Molecule nitromethane() {
  const double a = 62.5 * std::numbers::pi / 180, b = 109.5 * std::numbers::pi / 180;
  const double cx = -1.49, hx = cx + 1.09 * std::cos(std::numbers::pi - b), hr = 1.09 * std::sin(b);
  std::vector<std::pair<int, std::array<double, 3>>> atoms{
      {7, {0, 0, 0}}, {6, {cx, 0, 0}}, {8, {1.22 * std::cos(a), 1.22 * std::sin(a), 0}},
      {8, {1.22 * std::cos(a), -1.22 * std::sin(a), 0}}};
  for (int k = 0; k < 3; ++k) {
    const double phi = 2 * std::numbers::pi * k / 3 + 0.5;
    atoms.push_back({1, {hx, hr * std::cos(phi), hr * std::sin(phi)}});
  }
  return molecule("nitromethane", atoms);
}

// The shipped SDF read with Open Babel directly (elements and coordinates only).
std::vector<Molecule> read_sdf(const std::string& path) {
  OpenBabel::OBConversion conv;
  REQUIRE(conv.SetInFormat("sdf"));
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<Molecule> out;
  OpenBabel::OBMol mol;
  for (bool more = conv.Read(&mol, &in); more; more = conv.Read(&mol)) {
    Molecule m;
    m.name = mol.GetTitle();
    FOR_ATOMS_OF_MOL(a, mol) {
      m.atomic_numbers.push_back(int(a->GetAtomicNum()));
      m.positions.insert(m.positions.end(), {a->GetX(), a->GetY(), a->GetZ()});
    }
    out.push_back(std::move(m));
    mol.Clear();
  }
  return out;
}

std::vector<Molecule> read_xyz_molecules(const std::string& path) {
  std::vector<Molecule> out;
  for (const XyzFrame& f : read_xyz(path)) {
    Molecule m;
    m.name = f.comment;
    for (const auto& s : f.symbols) m.atomic_numbers.push_back(atomic_number_of(s));
    m.positions = f.positions;
    out.push_back(std::move(m));
  }
  return out;
}

void report(const char* what, const QualitySummary& s) {
  WARN(what << ": atom stability " << s.atom_stability << " (" << s.stable_atoms << "/" << s.atoms
            << "), molecule stability " << s.molecule_stability << " (" << s.stable_molecules << "/" << s.molecules
            << "), validity " << s.validity << " (" << s.valid << "), uniqueness " << s.uniqueness << " ("
            << s.unique << ")");
}

}  // namespace

TEST_CASE("bond orders switch at EDM's table distances plus margins", "[metrics]") {
  struct Case {
    int z1, z2;
    double single, dbl, triple;  // thresholds in Å; 0 where the order does not exist
  };
  // bonds1 + 10 pm, bonds2 + 5 pm, bonds3 + 3 pm (qm9/bond_analyze.py).
  const std::vector<Case> cases{
      {6, 6, 1.64, 1.39, 1.23},  {6, 7, 1.57, 1.34, 1.19}, {6, 8, 1.53, 1.25, 1.16}, {7, 7, 1.55, 1.30, 1.13},
      {7, 8, 1.50, 1.26, 0},     {8, 8, 1.58, 1.26, 0},    {1, 1, 0.84, 0, 0},       {1, 6, 1.19, 0, 0},
      {1, 7, 1.11, 0, 0},        {1, 8, 1.06, 0, 0},       {1, 9, 1.02, 0, 0},       {6, 9, 1.45, 0, 0},
      {7, 9, 1.46, 0, 0},        {8, 9, 1.52, 0, 0},       {9, 9, 1.52, 0, 0},
  };
  for (const Case& c : cases) {
    for (const auto& [a, b] : {std::pair{c.z1, c.z2}, std::pair{c.z2, c.z1}}) {
      INFO("Z " << a << "–" << b);
      CHECK(distance_bond_order(a, b, c.single + kThresholdStep) == 0);
      CHECK(distance_bond_order(a, b, c.single - kThresholdStep) == 1);
      CHECK(distance_bond_order(a, b, c.single) == 0);  // strictly closer than the threshold
      if (c.dbl > 0) {
        CHECK(distance_bond_order(a, b, c.dbl + kThresholdStep) == 1);
        CHECK(distance_bond_order(a, b, c.dbl - kThresholdStep) == 2);
      } else {
        CHECK(distance_bond_order(a, b, 0.5) == 1);  // no shorter bond exists for the pair
      }
      if (c.triple > 0) {
        CHECK(distance_bond_order(a, b, c.triple + kThresholdStep) == 2);
        CHECK(distance_bond_order(a, b, c.triple - kThresholdStep) == 3);
      } else if (c.dbl > 0) {
        CHECK(distance_bond_order(a, b, 0.5) == 2);
      }
    }
  }
  CHECK(stable_valence(1) == 1);
  CHECK(stable_valence(6) == 4);
  CHECK(stable_valence(7) == 3);
  CHECK(stable_valence(8) == 2);
  CHECK(stable_valence(9) == 1);
  CHECK(stable_valence(16) == 0);
  CHECK_FALSE(metrics_support_element(17));
  CHECK_THROWS_AS(distance_bond_order(6, 16, 1.8), std::invalid_argument);
}

TEST_CASE("hand-built molecules: stable and valid, or not, for the right reason", "[metrics]") {
  for (const Molecule& m : {methane(), ethene(), ethyne(), water(), hydrogen_cyanide()}) {
    INFO(m.name);
    const MoleculeQuality q = evaluate_molecule(m);
    CHECK(q.atoms == m.atoms());
    CHECK(q.stable_atoms == m.atoms());
    CHECK(q.stable);
    CHECK(q.valid);
    CHECK(q.fragments == 1);
    CHECK(q.instability.empty());
    CHECK(q.invalidity.empty());
    CHECK_FALSE(q.smiles.empty());
  }
  CHECK(evaluate_molecule(methane()).smiles == "[H]C([H])([H])[H]");
  CHECK(evaluate_molecule(water()).smiles == "[H]O[H]");
  CHECK(evaluate_molecule(ethene()).smiles.find('=') != std::string::npos);
  CHECK(evaluate_molecule(ethyne()).smiles.find('#') != std::string::npos);
  CHECK(evaluate_molecule(hydrogen_cyanide()).smiles.find("C#N") != std::string::npos);

  const auto ethene_bonds = distance_bonds(ethene());
  REQUIRE(ethene_bonds.size() == 5);
  CHECK(ethene_bonds[0].i == 0);
  CHECK(ethene_bonds[0].j == 1);
  CHECK(ethene_bonds[0].order == 2);

  SECTION("a carbon with five bonds is neither stable nor valid") {
    const MoleculeQuality q = evaluate_molecule(pentavalent_carbon());
    CHECK(q.stable_atoms == 5);  // the hydrogens are fine
    CHECK_FALSE(q.stable);
    CHECK_FALSE(q.valid);
    CHECK(q.smiles.empty());
    CHECK(q.instability == "atom 1 (C) has bond orders summing to 5, valence 4");
    CHECK(q.invalidity == "atom 1 (C) has bond orders summing to 5, more than its valence 4");
  }
  SECTION("a carbon missing a hydrogen is unstable but valid (RDKit fills it implicitly)") {
    const MoleculeQuality q = evaluate_molecule(methyl());
    CHECK(q.stable_atoms == 3);
    CHECK_FALSE(q.stable);
    CHECK(q.valid);
    CHECK(q.smiles == "[H]C([H])[H]");  // differs from methane's: the hydrogen atoms are kept
  }
  SECTION("a nitro group is unstable (N valence 5) but valid after RDKit's charge separation") {
    const MoleculeQuality q = evaluate_molecule(nitromethane());
    CHECK(q.stable_atoms == q.atoms - 1);
    CHECK_FALSE(q.stable);
    CHECK(q.valid);
    CHECK(q.smiles.find("[N+]") != std::string::npos);
    CHECK(q.smiles.find("[O-]") != std::string::npos);
  }
  SECTION("two molecules far apart: valid, the SMILES is the larger one's") {
    Molecule both = ethene();
    const Molecule w = water();
    both.atomic_numbers.insert(both.atomic_numbers.end(), w.atomic_numbers.begin(), w.atomic_numbers.end());
    for (std::size_t k = 0; k < w.positions.size(); ++k) both.positions.push_back(w.positions[k] + (k % 3 == 0 ? 10 : 0));
    const MoleculeQuality q = evaluate_molecule(both);
    CHECK(q.stable);
    CHECK(q.valid);
    CHECK(q.fragments == 2);
    CHECK(q.smiles == evaluate_molecule(ethene()).smiles);
  }
  SECTION("unsupported elements and malformed molecules are errors") {
    Molecule m = water();
    m.atomic_numbers[0] = 16;
    CHECK_THROWS_AS(evaluate_molecule(m), std::invalid_argument);
    m = water();
    m.positions.pop_back();
    CHECK_THROWS_AS(evaluate_molecule(m), std::invalid_argument);
    const MoleculeQuality empty = evaluate_molecule(Molecule{});
    CHECK_FALSE(empty.stable);
    CHECK_FALSE(empty.valid);
  }
}

TEST_CASE("summary: fractions, uniqueness and novelty", "[metrics]") {
  const std::vector<Molecule> set{methane(), methane(), water(), pentavalent_carbon(), methyl()};
  const std::vector<MoleculeQuality> q = evaluate_molecules(set);
  const QualitySummary s = summarize_quality(q);
  CHECK(s.molecules == 5);
  CHECK(s.atoms == 5 + 5 + 3 + 6 + 4);
  CHECK(s.stable_atoms == 5 + 5 + 3 + 5 + 3);
  CHECK(s.stable_molecules == 3);
  CHECK(s.valid == 4);
  CHECK(s.unique == 3);  // methane twice, water, methyl
  CHECK(s.atom_stability == Approx(21.0 / 23.0));
  CHECK(s.molecule_stability == Approx(0.6));
  CHECK(s.validity == Approx(0.8));
  CHECK(s.uniqueness == Approx(0.75));
  CHECK_FALSE(s.has_reference);

  const QualitySummary self = summarize_quality(q, unique_valid_smiles(q));
  CHECK(self.has_reference);
  CHECK(self.novel == 0);
  CHECK(self.novelty == 0);
  const QualitySummary none = summarize_quality(q, {});
  CHECK(none.novelty == 1);
  const QualitySummary some = summarize_quality(q, unique_valid_smiles(evaluate_molecules({methane()})));
  CHECK(some.novel == 2);
  CHECK(some.novelty == Approx(2.0 / 3.0));

  const QualitySummary nothing = summarize_quality(evaluate_molecules({pentavalent_carbon()}), {});
  CHECK(nothing.validity == 0);
  CHECK(nothing.uniqueness == 0);
  CHECK(nothing.novelty == 0);
}

TEST_CASE("real QM9 molecules are nearly all stable, valid and unique", "[metrics][data]") {
  const std::vector<Molecule> sdf = read_sdf(kSdf);
  REQUIRE(sdf.size() == 500);
  const std::vector<MoleculeQuality> q = evaluate_molecules(sdf);
  const QualitySummary s = summarize_quality(q);
  report("qm9_first500.sdf", s);
  CHECK(s.atom_stability >= kMinAtomStability);
  CHECK(s.molecule_stability >= kMinMoleculeStability);
  CHECK(s.validity >= kMinValidity);
  CHECK(s.uniqueness >= kMinUniqueness);
  CHECK(summarize_quality(q, unique_valid_smiles(q)).novelty == 0);

  const std::vector<Molecule> xyz = read_xyz_molecules(kXyz);
  REQUIRE(xyz.size() == 6000);
  const std::vector<MoleculeQuality> r = evaluate_molecules(xyz);
  const QualitySummary t = summarize_quality(r);
  report("qm9_sample6000.xyz", t);
  CHECK(t.atom_stability >= kMinAtomStability);
  CHECK(t.molecule_stability >= kMinMoleculeStability);
  CHECK(t.validity >= kMinValidity);
  CHECK(t.uniqueness >= kMinUniqueness);
  CHECK(summarize_quality(r, unique_valid_smiles(r)).novelty == 0);
  // Novelty of one file against the other: high, not 0 (different QM9 subsets).
  const QualitySummary cross = summarize_quality(q, unique_valid_smiles(r));
  WARN("qm9_first500.sdf against qm9_sample6000.xyz: novelty " << cross.novelty << " (" << cross.novel << "/"
                                                              << cross.unique << ")");
  CHECK(cross.novelty > 0);
}

TEST_CASE("EDM's QM9 test split, read with read_molecules", "[metrics][data]") {
  MoleculeReadOptions o;
  o.count = kNpzRows;
  o.centre = false;
  const MoleculeSet set = read_molecules(kNpz, o);
  REQUIRE(long(set.molecules.size()) == kNpzRows);
  const QualitySummary s = summarize_quality(evaluate_molecules(set.molecules));
  report("test.npz, first rows", s);
  CHECK(s.atom_stability >= kMinAtomStability);
  CHECK(s.molecule_stability >= kMinMoleculeStability);
  CHECK(s.validity >= kMinValidity);
  CHECK(s.uniqueness >= kMinUniqueness);
}

TEST_CASE("metrics are invariant under rotation, reflection, translation and permutation", "[metrics][symmetry]") {
  std::vector<Molecule> sdf = read_sdf(kSdf);
  sdf.resize(200);
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  const std::vector<MoleculeQuality> before = evaluate_molecules(sdf);
  std::vector<Molecule> moved;
  for (const Molecule& m : sdf) {
    // A random orthogonal matrix (Gram–Schmidt of Gaussian columns; its
    // determinant is ±1, so half are reflections), a random shift and order.
    double Q[3][3];
    for (int c = 0; c < 3; ++c) {
      double v[3] = {normal(rng), normal(rng), normal(rng)};
      for (int p = 0; p < c; ++p) {
        const double d = v[0] * Q[0][p] + v[1] * Q[1][p] + v[2] * Q[2][p];
        for (int k = 0; k < 3; ++k) v[k] -= d * Q[k][p];
      }
      const double norm = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
      for (int k = 0; k < 3; ++k) Q[k][c] = v[k] / norm;
    }
    const double shift[3] = {5 * normal(rng), 5 * normal(rng), 5 * normal(rng)};
    std::vector<int> perm(m.atomic_numbers.size());
    for (std::size_t i = 0; i < perm.size(); ++i) perm[i] = int(i);
    std::shuffle(perm.begin(), perm.end(), rng);
    Molecule t;
    t.name = m.name;
    for (int src : perm) {
      t.atomic_numbers.push_back(m.atomic_numbers[src]);
      const double* x = &m.positions[3 * std::size_t(src)];
      for (int k = 0; k < 3; ++k) t.positions.push_back(Q[k][0] * x[0] + Q[k][1] * x[1] + Q[k][2] * x[2] + shift[k]);
    }
    moved.push_back(std::move(t));
  }
  const std::vector<MoleculeQuality> after = evaluate_molecules(moved);
  for (std::size_t i = 0; i < sdf.size(); ++i) {
    INFO(sdf[i].name);
    CHECK(after[i].stable_atoms == before[i].stable_atoms);
    CHECK(after[i].stable == before[i].stable);
    CHECK(after[i].valid == before[i].valid);
    CHECK(after[i].fragments == before[i].fragments);
    CHECK(after[i].smiles == before[i].smiles);
  }
}
