// Tetrahedral stereo (datasets/stereo.hpp): the sign a stereocentre requires,
// from SMILES @/@@, from a 3-D geometry and from an SDF written from one;
// match_stereo's reflection, which is free because log p(x | graph) is
// reflection-invariant (checked here on a chiral molecule's mirror image).
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "datasets/conformer_io.hpp"
#include "datasets/molecular_graph.hpp"
#include "datasets/molecule_io.hpp"
#include "datasets/stereo.hpp"
#include "engine/conformer_flow.hpp"
#include "support/alanine.hpp"
#include "support/random_model.hpp"
#include "support/temp_dir.hpp"

using namespace enf;

namespace {

using test::kAlanineZ;  // L-alanine (tests/support/alanine.hpp)
using test::kLAlanine;

// (2R,3R)-butane-2,3-diol, C[C@@H](O)[C@@H](O)C by obabel --gen3d -h:
// C, C2, O, C3, O, C, then hydrogens; atom 11 (0-based) is C3's hydrogen.
const std::vector<int> kButanediolZ = {6, 6, 8, 6, 8, 6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
const std::vector<double> kButanediol = {
    0.99318, 0.03577,  -0.06712, 2.51646, 0.04898,  -0.00674, 2.96932, 1.02344,  -0.95320, 3.09660,
    0.40546, 1.37670,  2.66015,  1.71783, 1.75490,  2.74228,  -0.59338, 2.46933, 0.66004,  -0.18876,
    -1.08669, 0.57403, 1.01621,  0.18262, 0.56485,  -0.71375, 0.60347,  2.90016, -0.92480, -0.32950,
    2.92257, 1.88472,  -0.49233, 4.18717, 0.46826,  1.29020,  1.74633,  1.65124, 2.08228,  1.66589,
    -0.61769, 2.66236, 3.21742,  -0.30452, 3.41262, 3.07720,  -1.60236, 2.20623};

Molecule molecule(const std::string& name, const std::vector<int>& z, const std::vector<double>& x) {
  Molecule m;
  m.name = name;
  m.atomic_numbers = z;
  m.positions = x;
  return m;
}

// x -> -x: the mirror image through the origin.
std::vector<double> mirror(std::vector<double> x) {
  for (double& v : x) v = -v;
  return x;
}

// The same centre with its refs sorted, the sign following the permutation
// (a swap of two refs flips the signed volume), so that centres described
// with different ref orders compare.
TetrahedralCentre canonical(TetrahedralCentre t) {
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j + 1 < 3 - i; ++j)
      if (t.refs[std::size_t(j)] > t.refs[std::size_t(j + 1)]) {
        std::swap(t.refs[std::size_t(j)], t.refs[std::size_t(j + 1)]);
        t.sign = -t.sign;
      }
  return t;
}

std::vector<TetrahedralCentre> from_smiles(const std::string& smiles) {
  const std::vector<Molecule> m = read_conformer_inputs(smiles);
  REQUIRE(m.size() == 1);
  return m[0].stereo;
}

}  // namespace

TEST_CASE("stereo: SMILES @ and @@ require opposite signs at the same centre; unspecified centres are free",
          "[stereo]") {
  const auto l = from_smiles("N[C@@H](C)C(=O)O L-alanine"), d = from_smiles("N[C@H](C)C(=O)O D-alanine");
  REQUIRE(l.size() == 1);
  REQUIRE(d.size() == 1);
  CHECK(l[0].centre == 1);
  CHECK(d[0].centre == 1);
  CHECK(l[0].sign != 0);
  const TetrahedralCentre cl = canonical(l[0]), cd = canonical(d[0]);
  CHECK(cl.refs == cd.refs);
  // Seen from the hydrogen: the refs are the heavy neighbours N, CH3, C.
  CHECK(cl.refs == std::array<int, 3>{0, 2, 3});
  CHECK(cl.sign == -cd.sign);
  CHECK(from_smiles("NC(C)C(=O)O").empty());
}

TEST_CASE("stereo: the SMILES's sign is the one its 3-D geometry has; a mirror image has the other", "[stereo]") {
  const std::vector<Molecule> l = read_conformer_inputs("N[C@@H](C)C(=O)O");
  REQUIRE(l[0].atomic_numbers == kAlanineZ);  // the same atom order as the geometry
  CHECK(stereo_kept(l[0].stereo, kLAlanine));
  CHECK_FALSE(stereo_kept(l[0].stereo, mirror(kLAlanine)));
  CHECK_FALSE(stereo_kept(from_smiles("N[C@H](C)C(=O)O"), kLAlanine));
  CHECK(stereo_kept(from_smiles("N[C@H](C)C(=O)O"), mirror(kLAlanine)));
}

TEST_CASE("stereo: a 3-D geometry's centres carry its own sign, its mirror image's the opposite", "[stereo]") {
  const auto own = tetrahedral_centres_from_geometry(molecule("L-alanine", kAlanineZ, kLAlanine));
  const auto mirrored = tetrahedral_centres_from_geometry(molecule("D-alanine", kAlanineZ, mirror(kLAlanine)));
  REQUIRE(own.size() == 1);
  REQUIRE(mirrored.size() == 1);
  CHECK(own[0].centre == 1);
  CHECK(mirrored[0].centre == 1);
  CHECK(canonical(own[0]).refs == std::array<int, 3>{0, 2, 3});
  CHECK(canonical(own[0]).sign == -canonical(mirrored[0]).sign);
  CHECK(stereo_kept(own, kLAlanine));
  CHECK_FALSE(stereo_kept(own, mirror(kLAlanine)));
  CHECK(stereo_kept(mirrored, mirror(kLAlanine)));
  CHECK_FALSE(stereo_kept(mirrored, kLAlanine));
}

TEST_CASE("stereo: an SDF written from a 3-D geometry reads back with the geometry's own stereo", "[stereo]") {
  const test::TempDir dir("enf_test_stereo");
  for (const auto& x : {kLAlanine, mirror(kLAlanine)}) {
    const std::string path = dir.file("alanine.sdf");
    write_molecules(path, {molecule("alanine", kAlanineZ, x)});
    const std::vector<Molecule> read = read_conformer_inputs(path);
    REQUIRE(read.size() == 1);
    REQUIRE(read[0].stereo.size() == 1);
    CHECK(read[0].stereo[0].centre == 1);
    CHECK(stereo_kept(read[0].stereo, x));
    CHECK_FALSE(stereo_kept(read[0].stereo, mirror(x)));
  }
}

TEST_CASE("stereo: a 2-D drawing's wedge bonds give the requested sign", "[stereo]") {
  // L-alanine as obabel --gen2d draws it: the Cα–CH3 bond hashed (bond
  // stereo 6); the atom parity field is 0, so the wedge alone says it.
  const auto molfile = [](const char* stereo) {
    return std::string("L-alanine\n 2-D drawing\n\n"
                       "  6  5  0  0  1  0  0  0  0  0999 V2000\n"
                       "    1.7321    1.0000    0.0000 N   0  0  0  0  0  0  0  0  0  0  0  0\n"
                       "    0.8660    1.5000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0\n"
                       "    0.8660    2.5000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0\n"
                       "    0.0000    1.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0\n"
                       "   -0.8660    1.5000    0.0000 O   0  0  0  0  0  0  0  0  0  0  0  0\n"
                       "    0.0000    0.0000    0.0000 O   0  0  0  0  0  0  0  0  0  0  0  0\n"
                       "  1  2  1  0  0  0  0\n"
                       "  2  3  1  ") +
           stereo +
           "  0  0  0\n"
           "  2  4  1  0  0  0  0\n"
           "  4  5  2  0  0  0  0\n"
           "  4  6  1  0  0  0  0\n"
           "M  END\n$$$$\n";
  };
  const test::TempDir dir("enf_test_stereo");
  const std::vector<Molecule> hashed = read_conformer_inputs(dir.write("hashed.sdf", molfile("6")));
  REQUIRE(hashed[0].atomic_numbers == kAlanineZ);
  REQUIRE(hashed[0].stereo.size() == 1);
  CHECK(stereo_kept(hashed[0].stereo, kLAlanine));
  const std::vector<Molecule> wedged = read_conformer_inputs(dir.write("wedged.sdf", molfile("1")));
  REQUIRE(wedged[0].stereo.size() == 1);
  CHECK(stereo_kept(wedged[0].stereo, mirror(kLAlanine)));  // the wedge up: D
  CHECK(read_conformer_inputs(dir.write("plain.sdf", molfile("0")))[0].stereo.empty());  // no wedge: unspecified
}

TEST_CASE("stereo: match_stereo reflects a mirror image back, and leaves a right one alone", "[stereo]") {
  const auto centres = from_smiles("N[C@@H](C)C(=O)O");
  std::vector<double> x = mirror(kLAlanine);
  for (double& v : x) v += 3.0;  // off the origin: the reflection is through the centroid
  const std::vector<double> before = x;
  const StereoMatch m = match_stereo(centres, x);
  CHECK(m.reflected);
  CHECK(m.agree == 1);
  CHECK(stereo_kept(centres, x));
  // Through the centroid: the centroid stays, each atom goes to 2c - x.
  double c[3] = {0, 0, 0};
  for (std::size_t a = 0; a < 13; ++a)
    for (int d = 0; d < 3; ++d) c[d] += before[3 * a + std::size_t(d)] / 13;
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(x[i] == Approx(2 * c[i % 3] - before[i]).margin(1e-12));

  std::vector<double> right = kLAlanine;
  const StereoMatch r = match_stereo(centres, right);
  CHECK_FALSE(r.reflected);
  CHECK(r.agree == 1);
  CHECK(right == kLAlanine);
}

TEST_CASE("stereo: no centres in ethanol, a CH2 or a carbon with two equal substituents", "[stereo]") {
  CHECK(from_smiles("CCO").empty());
  CHECK(from_smiles("C[C@@H](C)O").empty());  // an @ on a carbon with two methyls specifies nothing
  const std::vector<Molecule> ethanol = read_conformer_inputs("CCO");
  const std::vector<double> x = {0.96219, 0.02601, 0.08282, 2.47648, 0.03321, 0.08358, 2.95816, 1.07069, 0.92483,
                                 0.57739, -0.77547, -0.55387, 0.57019, 0.98224, -0.27892, 0.57671, -0.11279, 1.09828,
                                 2.86790, 0.18941, -0.92634, 2.86347, -0.91816, 0.46005, 2.61858, 1.91253, 0.57623};
  CHECK(tetrahedral_centres_from_geometry(molecule("ethanol", ethanol[0].atomic_numbers, x)).empty());
  const std::vector<double> isopropanol = {
      0.93240, 0.06634,  0.04803,  2.45301, 0.04506,  0.06985,  2.93485, 1.31949,  0.48531,  2.98842,
      -1.02440, 1.00925, 0.57103,  0.85460, -0.62104, 0.52738,  0.28722, 1.04189,  0.52715,  -0.89216,
      -0.28986, 2.83101, -0.13413, -0.94210, 2.60308,  1.48638, 1.38432, 2.66019,  -0.84428, 2.03904,
      4.08358, -1.00889, 1.02109,  2.65614,  -2.02163, 0.70548};
  // C C O C and 8 H: 12 atoms, 36 coordinates.
  const std::vector<int> isopropanol_z = {6, 6, 8, 6, 1, 1, 1, 1, 1, 1, 1, 1};
  CHECK(tetrahedral_centres_from_geometry(molecule("isopropanol", isopropanol_z, isopropanol)).empty());
  // A coordinate count that is not 3 per atom is an error, not a read past the end.
  std::vector<int> one_atom_too_many = isopropanol_z;
  one_atom_too_many.push_back(1);
  CHECK_THROWS_AS(tetrahedral_centres_from_geometry(molecule("isopropanol", one_atom_too_many, isopropanol)),
                  std::invalid_argument);
}

TEST_CASE("stereo: two centres with the wrong relative configuration cannot be fixed by a reflection",
          "[stereo]") {
  const auto centres = tetrahedral_centres_from_geometry(molecule("(R,R)", kButanediolZ, kButanediol));
  REQUIRE(centres.size() == 2);
  CHECK(stereo_kept(centres, kButanediol));
  // The whole mirror image, (S,S): one reflection restores both.
  std::vector<double> ss = mirror(kButanediol);
  const StereoMatch back = match_stereo(centres, ss);
  CHECK(back.reflected);
  CHECK(back.agree == 2);
  CHECK(stereo_kept(centres, ss));
  // C3's O (atom 4) and H (atom 11) swapped: C3 inverted, C2 not — the meso
  // relative configuration. One agrees, one disagrees whichever way it is
  // reflected: left as it is, and reported not kept.
  std::vector<double> meso = kButanediol;
  for (int d = 0; d < 3; ++d) std::swap(meso[3 * 4 + std::size_t(d)], meso[3 * 11 + std::size_t(d)]);
  for (const auto& start : {meso, mirror(meso)}) {
    std::vector<double> x = start;
    const StereoMatch m = match_stereo(centres, x);
    CHECK_FALSE(m.reflected);
    CHECK(m.agree == 1);
    CHECK_FALSE(stereo_kept(centres, x));
  }
}

TEST_CASE("stereo: the reflection is free: log p(x | graph) of a chiral molecule equals that of its mirror image",
          "[stereo][conformer]") {
  // A small random conditional model; exact trace, solver tolerance 1e-9:
  // the two integrations agree to 1e-7 nats (as in test_conformer_flow).
  const FieldConfig cfg = conformer_field_config(16, 2);
  const Parameters<double> p = test::random_params(cfg, 5, 0.1);
  VectorField<double> field(cfg, p.layout);
  CnfOptions o;
  o.trace = TraceEstimator::Exact;
  o.solver.rtol = o.solver.atol = 1e-9;
  ConformerFlow<double> flow(field, o, 1);
  const Molecule l = read_conformer_inputs("N[C@@H](C)C(=O)O")[0];
  const ConformerCondition c = conformer_condition(perceive_graph(l));
  std::vector<double> x = mirror(kLAlanine);
  REQUIRE(match_stereo(l.stereo, x).reflected);
  std::vector<double> log_p(2, NAN);
  flow.log_likelihood_each(
      p.values.data(), {&c, &c}, {mirror(kLAlanine), x}, 0, [] { return false; },
      [&](int i, ForwardResult&& r) { log_p[std::size_t(i)] = r.log_px; });
  REQUIRE(std::isfinite(log_p[0]));
  CHECK(log_p[1] == Approx(log_p[0]).epsilon(0).margin(1e-7));
}
