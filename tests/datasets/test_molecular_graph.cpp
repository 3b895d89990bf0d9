// The molecular graph of conformer generation: topological relations, node
// and edge condition features (count, order, contents), graph perception
// from QM9 geometry, conformer input (SMILES, .smi, SDF with hydrogens
// added) and output (SDF/XYZ with enf_log_likelihood), connectivity checks
// and heavy-atom RMSD with and without symmetry.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <set>
#include <string>
#include <utility>

#include "datasets/conformer_io.hpp"
#include "datasets/molecular_graph.hpp"
#include "datasets/molecule_io.hpp"
#include "support/qm9_sdf.hpp"
#include "support/temp_dir.hpp"

using namespace enf;
using enf::test::TempDir;
using Catch::Matchers::Contains;

namespace {

const std::string& kSdf = enf::test::kQm9Sdf;

// SDF stores coordinates with 4 decimals.
constexpr double kSdfCoordinate = 1e-4;
// write_molecules' XYZ keeps 10 significant digits of coordinates below 10 Å.
constexpr double kXyzCoordinate = 1e-8;
// Superposition of coordinates of a few Å in double (Jacobi eigenvector).
constexpr double kRmsdZero = 1e-9;

std::vector<Molecule> qm9(long first, long count) { return enf::test::qm9_sdf_records(first, count); }

std::set<std::pair<int, int>> pairs(const std::vector<Bond>& bonds) {
  std::set<std::pair<int, int>> s;
  for (const Bond& b : bonds) s.insert({std::min(b.i, b.j), std::max(b.i, b.j)});
  return s;
}

std::string property(const Molecule& m, const std::string& key) {
  for (const auto& [k, v] : m.properties)
    if (k == key) return v;
  return "<absent>";
}

// Proper rotation (by angles about z, then x) and translation of [n, 3].
std::vector<double> moved(const std::vector<double>& x, double a, double b, const double t[3]) {
  const double rz[3][3] = {{std::cos(a), -std::sin(a), 0}, {std::sin(a), std::cos(a), 0}, {0, 0, 1}};
  const double rx[3][3] = {{1, 0, 0}, {0, std::cos(b), -std::sin(b)}, {0, std::sin(b), std::cos(b)}};
  std::vector<double> y(x.size());
  for (std::size_t k = 0; k < x.size(); k += 3) {
    double p[3], q[3];
    for (int r = 0; r < 3; ++r) p[r] = rz[r][0] * x[k] + rz[r][1] * x[k + 1] + rz[r][2] * x[k + 2];
    for (int r = 0; r < 3; ++r) q[r] = rx[r][0] * p[0] + rx[r][1] * p[1] + rx[r][2] * p[2];
    for (int r = 0; r < 3; ++r) y[k + std::size_t(r)] = q[r] + t[r];
  }
  return y;
}

int count_z(const Molecule& m, int z) { return int(std::count(m.atomic_numbers.begin(), m.atomic_numbers.end(), z)); }

// The hydrogens bonded to atom a.
std::vector<int> hydrogens_of(const MolecularGraph& g, int a) {
  std::vector<int> h;
  for (int k = 0; k < g.atoms(); ++k)
    if (g.atomic_numbers()[std::size_t(k)] == 1 && g.bonded(a, k)) h.push_back(k);
  return h;
}

}  // namespace

TEST_CASE("SMILES CCO: 9 atoms, heavy atoms first, the right bonds", "[molecular_graph]") {
  const auto mols = read_conformer_inputs("CCO");
  REQUIRE(mols.size() == 1);
  const Molecule& m = mols[0];
  CHECK(m.name == "CCO");
  REQUIRE(m.atoms() == 9);
  CHECK(count_z(m, 6) == 2);
  CHECK(count_z(m, 8) == 1);
  CHECK(count_z(m, 1) == 6);
  CHECK(m.atomic_numbers[0] == 6);
  CHECK(m.atomic_numbers[1] == 6);
  CHECK(m.atomic_numbers[2] == 8);
  CHECK(m.bonds_known);
  REQUIRE(m.bonds.size() == 8);
  for (const Bond& b : m.bonds) CHECK(b.order == 1);
  const MolecularGraph g = perceive_graph(m);
  CHECK(g.bonded(0, 1));
  CHECK(g.bonded(1, 2));
  CHECK_FALSE(g.bonded(0, 2));
  CHECK(hydrogens_of(g, 0).size() == 3);
  CHECK(hydrogens_of(g, 1).size() == 2);
  CHECK(hydrogens_of(g, 2).size() == 1);
  for (int z : g.formal_charges()) CHECK(z == 0);

  // A title after the SMILES names the molecule.
  CHECK(read_conformer_inputs("CCO ethanol")[0].name == "ethanol");
}

TEST_CASE("Topological relations of ethanol, by hand", "[molecular_graph]") {
  const MolecularGraph g = perceive_graph(read_conformer_inputs("CCO")[0]);
  const int c1 = 0, c2 = 1, o = 2;
  const auto h1 = hydrogens_of(g, c1), h2 = hydrogens_of(g, c2), ho = hydrogens_of(g, o);
  REQUIRE(h1.size() == 3);
  REQUIRE(h2.size() == 2);
  REQUIRE(ho.size() == 1);
  CHECK(g.distance(c1, c1) == 0);
  CHECK(g.distance(c1, o) == 2);
  CHECK(g.one_three(c1, o));
  CHECK(g.one_three(o, c1));
  CHECK(g.one_three(h1[0], h1[1]));  // H-C-H
  CHECK(g.one_three(h1[0], c2));     // H-C-C
  CHECK(g.one_four(h1[0], o));       // H-C-C-O
  CHECK(g.one_four(h1[0], h2[0]));   // H-C-C-H
  CHECK(g.one_four(c1, ho[0]));      // C-C-O-H
  CHECK(g.distance(h1[2], ho[0]) == 4);
  CHECK_FALSE(g.one_four(h1[2], ho[0]));
  CHECK(g.bond(c2, c1) != nullptr);
  CHECK(g.bond(c1, o) == nullptr);

  // Fragments: no path.
  const MolecularGraph two("two fragments", {6, 6, 8}, {}, {{1, 0, 1, false}});
  CHECK(two.distance(0, 2) == MolecularGraph::kDisconnected);
  CHECK(two.bonds()[0] == GraphBond{0, 1, 1, false});
  CHECK_THROWS_WITH(MolecularGraph("bad", {6, 6}, {}, {{0, 2, 1, false}}), Contains("bad") && Contains("bond 1-3"));
  CHECK_THROWS_WITH(MolecularGraph("bad", {6, 6}, {}, {{0, 1, 1, false}, {1, 0, 2, false}}), Contains("twice"));
}

TEST_CASE("Condition features: count, edge order, contents", "[molecular_graph]") {
  const MolecularGraph g = perceive_graph(read_conformer_inputs("CCO")[0]);
  const int n = g.atoms(), ec = kEdgeConditionFeatures;
  const auto e = edge_condition_features(g);
  REQUIRE(e.size() == std::size_t(n * (n - 1) * ec));
  // Rows: receiver i outer, sender j != i inner.
  std::size_t row = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      if (j == i) continue;
      CHECK(edge_condition_row(n, i, j) == row);
      const double* f = &e[row * std::size_t(ec)];
      double hot = 0;
      for (int c = kEdgeNoBond; c <= kEdgeAromatic; ++c) hot += f[c];
      CHECK(hot == 1.0);
      const GraphBond* b = g.bond(i, j);
      CHECK(f[kEdgeNoBond] == (b ? 0.0 : 1.0));
      CHECK(f[kEdgeSingle] == (b && b->order == 1 ? 1.0 : 0.0));
      CHECK(f[kEdgeBonded] == (g.distance(i, j) == 1 ? 1.0 : 0.0));
      CHECK(f[kEdgeOneThree] == (g.distance(i, j) == 2 ? 1.0 : 0.0));
      CHECK(f[kEdgeOneFour] == (g.distance(i, j) == 3 ? 1.0 : 0.0));
      ++row;
    }
  // By hand: row 0 is (0, 1), C-C; row 1 is (0, 2), C..O 1-3; row n-1 is (1, 0).
  const std::vector<double> cc = {0, 1, 0, 0, 0, 1, 0, 0}, co = {1, 0, 0, 0, 0, 0, 1, 0};
  CHECK(std::vector<double>(e.begin(), e.begin() + ec) == cc);
  CHECK(std::vector<double>(e.begin() + ec, e.begin() + 2 * ec) == co);
  CHECK(std::vector<double>(e.begin() + (n - 1) * ec, e.begin() + n * ec) == cc);

  // Double, triple and aromatic bonds.
  const MolecularGraph acrylonitrile = perceive_graph(read_conformer_inputs("C=CC#N")[0]);
  const auto ea = edge_condition_features(acrylonitrile);
  const int na = acrylonitrile.atoms();
  CHECK(ea[edge_condition_row(na, 0, 1) * ec + kEdgeDouble] == 1.0);
  CHECK(ea[edge_condition_row(na, 3, 2) * ec + kEdgeTriple] == 1.0);
  CHECK(ea[edge_condition_row(na, 1, 2) * ec + kEdgeSingle] == 1.0);
  const MolecularGraph benzene = perceive_graph(read_conformer_inputs("c1ccccc1")[0]);
  int aromatic = 0;
  for (const GraphBond& b : benzene.bonds()) aromatic += b.aromatic;
  CHECK(aromatic == 6);
  CHECK(edge_condition_features(benzene)[edge_condition_row(12, 0, 1) * ec + kEdgeAromatic] == 1.0);

  const auto nf = node_condition_features(g);
  REQUIRE(nf.size() == std::size_t(n * kNodeConditionFeatures));
  CHECK(std::vector<double>(nf.begin(), nf.begin() + 6) == std::vector<double>{0, 1, 0, 0, 0, 0});       // C
  CHECK(std::vector<double>(nf.begin() + 12, nf.begin() + 18) == std::vector<double>{0, 0, 0, 1, 0, 0});  // O
  CHECK(std::vector<double>(nf.begin() + 18, nf.begin() + 24) == std::vector<double>{1, 0, 0, 0, 0, 0});  // H
  const auto nitro = node_condition_features(perceive_graph(read_conformer_inputs("C[N+](=O)[O-] nitromethane")[0]));
  CHECK(nitro[1 * kNodeConditionFeatures + 2] == 1.0);  // N
  CHECK(nitro[1 * kNodeConditionFeatures + 5] == 1.0);  // +1
  CHECK(nitro[3 * kNodeConditionFeatures + 5] == -1.0);
  CHECK_THROWS_WITH(node_condition_features(perceive_graph(read_conformer_inputs("CCl chloromethane")[0])),
                    Contains("chloromethane") && Contains("atom 2 (Cl)"));
}

TEST_CASE("A .smi file with titles; unparsable SMILES name the line", "[molecular_graph]") {
  TempDir dir("enf_graph");
  const auto path = dir.write("two.smi", "CCO ethanol\n# a comment\n\nc1ccccc1\tbenzene ring\nC#N\n");
  const auto mols = read_conformer_inputs(path);
  REQUIRE(mols.size() == 3);
  CHECK(mols[0].name == "ethanol");
  CHECK(mols[0].atoms() == 9);
  CHECK(mols[1].name == "benzene ring");
  CHECK(mols[1].atoms() == 12);
  CHECK(mols[2].name == "C#N");
  CHECK(mols[2].atoms() == 3);

  const auto bad = dir.write("bad.smi", "CCO ethanol\nC1CC broken\n");
  CHECK_THROWS_WITH(read_conformer_inputs(bad),
                    Contains("bad.smi") && Contains("line 2") && Contains("unparsable SMILES 'C1CC'"));
  CHECK_THROWS_WITH(read_conformer_inputs("CCX"), Contains("unparsable SMILES 'CCX'"));
  CHECK_THROWS_WITH(read_conformer_inputs("missing.sdf"), Contains("'missing.sdf' is no file"));
  CHECK_THROWS_WITH(read_conformer_inputs(dir.write("empty.smi", "# nothing\n")), Contains("no molecules"));
  CHECK_THROWS_WITH(read_conformer_inputs(dir.write("molecule", "CCO\n")), Contains("no extension"));
}

TEST_CASE("Molecule files: records kept, missing hydrogens appended", "[molecular_graph]") {
  // QM9's SDF has every hydrogen: nothing is added, nothing reordered.
  const auto file = qm9(0, 500);
  const auto inputs = read_conformer_inputs(kSdf);
  REQUIRE(inputs.size() == file.size());
  for (std::size_t k = 0; k < file.size(); ++k) {
    CHECK(inputs[k].atomic_numbers == file[k].atomic_numbers);
    CHECK(inputs[k].bonds == file[k].bonds);
    CHECK(inputs[k].name == file[k].name);
  }
  // A heavy-atom-only record of ethanol (C, O, C order): hydrogens after them.
  TempDir dir("enf_graph");
  const auto heavy = dir.write("heavy.sdf",
                               "ethanol heavy\n  hand\n\n  3  2  0  0  0  0  0  0  0  0999 V2000\n"
                               "    0.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0\n"
                               "    2.4000    0.8000    0.0000 O   0  0  0  0  0  0  0  0  0  0  0  0\n"
                               "    1.2000    0.0000    0.8000 C   0  0  0  0  0  0  0  0  0  0  0  0\n"
                               "  1  3  1  0  0  0  0\n  3  2  1  0  0  0  0\nM  END\n$$$$\n");
  const auto m = read_conformer_inputs(heavy);
  REQUIRE(m.size() == 1);
  CHECK(m[0].name == "ethanol heavy");
  REQUIRE(m[0].atoms() == 9);
  CHECK(std::vector<int>(m[0].atomic_numbers.begin(), m[0].atomic_numbers.begin() + 3) == std::vector<int>{6, 8, 6});
  CHECK(count_z(m[0], 1) == 6);
  CHECK(m[0].positions[3] == Approx(2.4));
  const MolecularGraph g = perceive_graph(m[0]);
  CHECK(g.bonded(0, 2));
  CHECK(g.bonded(1, 2));
  CHECK(hydrogens_of(g, 1).size() == 1);
}

TEST_CASE("Conformer SDF and XYZ round trips", "[molecular_graph]") {
  const Molecule source = qm9(14, 1)[0];  // gdb 15, C2OH6
  REQUIRE(source.bonds_known);
  const double t[3] = {1.5, -2.0, 0.25};
  std::vector<double> jiggled = source.positions;
  for (std::size_t k = 0; k < jiggled.size(); ++k) jiggled[k] += 0.03 * std::sin(double(k));
  const std::vector<std::vector<double>> conformers = {source.positions, moved(source.positions, 0.7, 1.9, t), jiggled};
  const std::vector<double> ll = {-12.5, 3.25e-3, 1.0 / 3.0};
  TempDir dir("enf_graph");
  MoleculeReadOptions raw;
  raw.centre = false;

  const std::string sdf = dir.file("out.sdf");
  write_conformer_sdf(sdf, source, conformers, ll);
  CHECK_FALSE(std::filesystem::exists(sdf + ".tmp"));
  const auto back = read_molecules(sdf, raw).molecules;
  REQUIRE(back.size() == 3);
  for (std::size_t k = 0; k < 3; ++k) {
    CHECK(back[k].name == source.name);
    CHECK(back[k].atomic_numbers == source.atomic_numbers);
    CHECK(back[k].bonds == source.bonds);
    CHECK(std::stod(property(back[k], kLogLikelihoodField)) == ll[k]);
    CHECK(back[k].properties.size() == 1);
    for (std::size_t c = 0; c < conformers[k].size(); ++c)
      CHECK(std::abs(back[k].positions[c] - conformers[k][c]) <= kSdfCoordinate);
  }

  const std::string xyz = dir.file("out.xyz");
  write_conformer_xyz(xyz, source, conformers, ll);
  const auto frames = read_molecules(xyz, raw).molecules;
  REQUIRE(frames.size() == 3);
  for (std::size_t k = 0; k < 3; ++k) {
    CHECK(frames[k].name == source.name);
    CHECK(frames[k].atomic_numbers == source.atomic_numbers);
    CHECK(std::stod(property(frames[k], kLogLikelihoodField)) == ll[k]);
    for (std::size_t c = 0; c < conformers[k].size(); ++c)
      CHECK(std::abs(frames[k].positions[c] - conformers[k][c]) <= kXyzCoordinate);
  }

  CHECK_THROWS_WITH(write_conformer_sdf(sdf, source, conformers, {1.0}), Contains("1 log-likelihoods for 3"));
  CHECK_THROWS_WITH(write_conformer_sdf(sdf, source, {{1.0, 2.0}}, {1.0}), Contains("conformer 1 has 2 coordinates"));
  CHECK_THROWS(write_conformer_sdf(dir.file("out.txt"), source, conformers, ll));
}

TEST_CASE("perceive_graph reproduces QM9 bonds from the geometry", "[molecular_graph]") {
  // The first 100 records: Open Babel's bond orders (Kekulé) agree with the file's too.
  for (const Molecule& m : qm9(0, 100)) {
    Molecule geometry_only = m;
    geometry_only.bonds_known = false;
    geometry_only.bonds.clear();
    const MolecularGraph g = perceive_graph(geometry_only);
    INFO(m.name);
    CHECK(pairs(g.molecule_bonds()) == pairs(m.bonds));
    CHECK(g.molecule_bonds() == m.bonds);
    CHECK(g.atomic_numbers() == m.atomic_numbers);
    // With the file's bonds, the graph is those bonds.
    CHECK(perceive_graph(m).molecule_bonds() == m.bonds);
  }
}

TEST_CASE("connectivity_preserved", "[molecular_graph]") {
  for (const Molecule& m : qm9(20, 5)) {
    const MolecularGraph g = perceive_graph(m);
    CHECK(connectivity_preserved(g, m.positions));
    const double t[3] = {3, 4, 5};
    CHECK(connectivity_preserved(g, moved(m.positions, 1.1, 2.3, t)));
    std::vector<double> far = m.positions;
    far[0] += 50.0;
    CHECK_FALSE(connectivity_preserved(g, far));
  }
}

TEST_CASE("heavy_atom_rmsd", "[molecular_graph]") {
  const Molecule m = qm9(54, 1)[0];  // gdb 55, C4OH10
  const double t[3] = {-7, 2, 11};
  const auto copy = moved(m.positions, 2.1, -0.8, t);
  CHECK(heavy_atom_rmsd(m, copy, false) <= kRmsdZero);
  CHECK(heavy_atom_rmsd(m, copy, true) <= kRmsdZero);
  // A mirror image is no rotation.
  std::vector<double> mirror = m.positions;
  for (std::size_t k = 0; k < mirror.size(); k += 3) mirror[k] = -mirror[k];
  CHECK(kabsch_rmsd(m.positions, mirror) > 0.1);

  // Hydrogens do not count.
  std::vector<double> h_moved = copy;
  for (int a = 0; a < m.atoms(); ++a)
    if (m.atomic_numbers[std::size_t(a)] == 1) h_moved[3 * std::size_t(a) + 2] += 0.7;
  CHECK(heavy_atom_rmsd(m, h_moved, false) <= kRmsdZero);

  // Heavy atoms stretched by s about their centroid: the best superposition
  // is no rotation, and RMSD = |s - 1| * (their radius of gyration).
  double centre[3] = {0, 0, 0}, heavy = 0;
  for (int a = 0; a < m.atoms(); ++a)
    if (m.atomic_numbers[std::size_t(a)] > 1) {
      heavy += 1;
      for (int d = 0; d < 3; ++d) centre[d] += m.positions[3 * std::size_t(a) + std::size_t(d)];
    }
  for (double& c : centre) c /= heavy;
  const double s = 1.1;
  std::vector<double> stretched = m.positions;
  double gyration = 0;
  for (int a = 0; a < m.atoms(); ++a)
    if (m.atomic_numbers[std::size_t(a)] > 1)
      for (int d = 0; d < 3; ++d) {
        const double r = m.positions[3 * std::size_t(a) + std::size_t(d)] - centre[d];
        stretched[3 * std::size_t(a) + std::size_t(d)] = centre[d] + s * r;
        gyration += r * r;
      }
  gyration = std::sqrt(gyration / heavy);
  CHECK(heavy_atom_rmsd(m, moved(stretched, 0.3, 0.4, t), false) == Approx(0.1 * gyration).epsilon(1e-9));

  // Two heavy atoms 1.5 Å apart pulled to 1.9 Å: each is 0.2 Å off.
  const Molecule pair{"pair", {6, 8}, {0, 0, 0, 1.5, 0, 0}, {}, true, {{0, 1, 1}}, {}, {}};
  CHECK(heavy_atom_rmsd(pair, {0, 0, 0, 0, 1.9, 0}, false) == Approx(0.2).epsilon(1e-12));
}

TEST_CASE("heavy_atom_rmsd with symmetry: isobutane's methyls swapped", "[molecular_graph]") {
  // gdb 21 and gdb 39 are the two C4H10: isobutane has a carbon with three carbon neighbours.
  const Molecule* iso = nullptr;
  const auto mols = qm9(0, 40);
  int centre = -1;
  std::vector<int> methyls;
  for (const Molecule& m : mols) {
    if (count_z(m, 6) != 4 || count_z(m, 1) != 10) continue;
    const MolecularGraph g = perceive_graph(m);
    for (int a = 0; a < m.atoms(); ++a) {
      std::vector<int> carbons;
      for (int b = 0; b < m.atoms(); ++b)
        if (m.atomic_numbers[std::size_t(b)] == 6 && g.bonded(a, b)) carbons.push_back(b);
      if (carbons.size() == 3) iso = &m, centre = a, methyls = carbons;
    }
  }
  REQUIRE(iso);
  INFO(iso->name << ", centre " << centre);
  std::vector<double> swapped = iso->positions;
  for (int d = 0; d < 3; ++d)
    std::swap(swapped[3 * std::size_t(methyls[0]) + std::size_t(d)], swapped[3 * std::size_t(methyls[1]) + std::size_t(d)]);
  const double t[3] = {0.5, 0.5, -3};
  swapped = moved(swapped, 1.0, 2.0, t);
  CHECK(heavy_atom_rmsd(*iso, swapped, false) > 0.3);
  CHECK(heavy_atom_rmsd(*iso, swapped, true) <= kRmsdZero);
}

TEST_CASE("Open Babel's perception warnings are returned, never printed", "[molecular_graph]") {
  // QM9 test.npz row 85 (gdb 915), 2H-pyran-2-imine: PerceiveBondOrders
  // fails to kekulize its ring (the aromaticity perception run by the first
  // IsAromatic() warns too, after the bonds are built).
  Molecule m;
  m.name = "gdb 915";
  m.atomic_numbers = {7, 6, 8, 6, 6, 6, 6, 1, 1, 1, 1, 1};
  m.positions = {-0.028162, 1.331886,  0.010130,  -0.033800, 0.062160,  0.003330,  1.175640,  -0.648414, -0.007666,
                 1.202067,  -1.997943, -0.015033, 0.095871,  -2.759863, -0.012498, -1.180795, -2.094031, -0.001289,
                 -1.238345, -0.745849, 0.006264,  0.926896,  1.690329,  0.006335,  2.218572,  -2.372547, -0.023118,
                 0.179779,  -3.837873, -0.018772, -2.091436, -2.683563, 0.001018,  -2.170706, -0.196565, 0.014798};
  m.bonds_known = false;
  // Open Babel prints to std::clog (std::cerr as a fallback): both captured.
  std::ostringstream printed;
  std::streambuf* const clog_buffer = std::clog.rdbuf(printed.rdbuf());
  std::streambuf* const cerr_buffer = std::cerr.rdbuf(printed.rdbuf());
  std::string warning;
  const MolecularGraph g = perceive_graph(m, &warning);
  const bool kept = connectivity_preserved(g, m.positions);
  const double rmsd = heavy_atom_rmsd(m, m.positions, true);
  std::clog.rdbuf(clog_buffer);
  std::cerr.rdbuf(cerr_buffer);
  CHECK(printed.str().empty());
  CHECK_THAT(warning, Contains("kekulize"));
  CHECK(g.bonds().size() == 12);
  CHECK(kept);
  CHECK(rmsd < kRmsdZero);
}
