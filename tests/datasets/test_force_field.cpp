// The force-field polish of conformers (datasets/force_field.hpp): the
// gradient is the energy's (central differences); MMFF94 and UFF, by L-BFGS
// or conjugate gradients, lower the energy of a distorted geometry and keep
// its atom order, elements and bonds; the result does not depend on where the
// geometry is, how it is turned or mirrored; a molecule without parameters is
// an error to catch.
#include <omp.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <utility>
#include <stdexcept>
#include <string>
#include <vector>

#include "datasets/force_field.hpp"
#include "datasets/molecular_graph.hpp"
#include "datasets/molecule.hpp"
#include "support/alanine.hpp"

using namespace enf;

namespace {

using test::kAlanineZ;  // L-alanine (tests/support/alanine.hpp)
using test::kLAlanine;

// m with its bonds and charges as perceived from its geometry.
Molecule with_bonds(Molecule m) {
  const MolecularGraph g = perceive_graph(m);
  m.bonds = g.molecule_bonds();
  m.formal_charges = g.formal_charges();
  m.bonds_known = true;
  return m;
}

// L-alanine with its bonds and charges.
Molecule alanine() {
  Molecule m;
  m.name = "L-alanine";
  m.atomic_numbers = kAlanineZ;
  m.positions = kLAlanine;
  return with_bonds(m);
}

// x with every coordinate moved by up to ±0.12 Å (a fixed pattern): a
// geometry a model could have drawn, bonds still recognisable.
std::vector<double> distorted(std::vector<double> x) {
  for (std::size_t i = 0; i < x.size(); ++i) x[i] += 0.12 * std::sin(1.7 * double(i) + 0.3);
  return x;
}

// R x + t for a fixed proper rotation R (about the axis (1, 2, 2)/3 by 1 rad).
std::vector<double> moved(const std::vector<double>& x) {
  const double ux = 1.0 / 3, uy = 2.0 / 3, uz = 2.0 / 3, c = std::cos(1.0), s = std::sin(1.0), C = 1 - c;
  const double R[3][3] = {{c + ux * ux * C, ux * uy * C - uz * s, ux * uz * C + uy * s},
                          {uy * ux * C + uz * s, c + uy * uy * C, uy * uz * C - ux * s},
                          {uz * ux * C - uy * s, uz * uy * C + ux * s, c + uz * uz * C}};
  const double t[3] = {3.5, -1.25, 7.0};
  std::vector<double> y(x.size());
  for (std::size_t a = 0; a < x.size() / 3; ++a)
    for (int i = 0; i < 3; ++i)
      y[3 * a + std::size_t(i)] =
          R[i][0] * x[3 * a] + R[i][1] * x[3 * a + 1] + R[i][2] * x[3 * a + 2] + t[i];
  return y;
}

// Ethanol (Open Babel's gen3d): no tricoordinate centre, so no out-of-plane term.
Molecule ethanol() {
  Molecule m;
  m.name = "ethanol";
  m.atomic_numbers = {6, 6, 8, 1, 1, 1, 1, 1, 1};
  m.positions = {1.06624, 0.06579,  0.04853,  2.58053, 0.06455,  0.05567,  3.06221, -0.84312, 1.03557,
                 0.68144, 0.75382,  -0.70933, 0.67425, 0.36383,  1.02649,  0.68076, -0.93835, -0.15676,
                 2.97195, 1.06201,  0.27797,  2.96752, -0.24852, -0.91841, 2.72264, -0.55066, 1.89851};
  return with_bonds(m);
}

// The largest |central difference − gradient| and the largest |central
// difference| over the coordinates of x. h = 1e-5 Å: the truncation error is
// ~h² times the third derivative (≲ 1e3 kcal/mol/Å³ at bonded distances), the
// rounding ~1e-16 |E| / h: both below 1e-4 kcal/mol/Å.
std::pair<double, double> gradient_error(ForceField& ff, const std::vector<double>& x) {
  std::vector<double> g;
  const double e = ff.energy_gradient(x, g);
  CHECK(e == Approx(ff.energy(x)).margin(1e-9));
  REQUIRE(g.size() == x.size());
  const double h = 1e-5;
  double worst = 0, largest = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    std::vector<double> xp = x, xm = x;
    xp[i] += h;
    xm[i] -= h;
    const double fd = (ff.energy(xp) - ff.energy(xm)) / (2 * h);
    worst = std::max(worst, std::abs(fd - g[i]));
    largest = std::max(largest, std::abs(fd));
  }
  return {worst, largest};
}

}  // namespace

TEST_CASE("force field: the gradient is the energy's, against central differences", "[force_field]") {
  for (ForceFieldKind kind : {ForceFieldKind::MMFF94, ForceFieldKind::UFF}) {
    INFO(to_string(kind));
    {
      // Bonds, angles, stretch-bends, torsions, van der Waals: exact.
      ForceField ff(ethanol(), kind);
      const auto [worst, largest] = gradient_error(ff, distorted(ethanol().positions));
      INFO("ethanol: largest |dE/dx| " << largest << ", largest difference " << worst << " kcal/mol/Å");
      CHECK(largest > 1.0);
      CHECK(worst < 1e-3);
    }
    {
      // With out-of-plane terms (alanine's carboxyl carbon): Open Babel 3.1.1's
      // out-of-plane derivative is 0.7–0.9 times the term's central
      // difference, in both force fields (measured term by term; every other
      // term agrees to 1e-4), so the whole gradient agrees only to a few
      // per cent of its largest component; it keeps the direction, which is
      // what the minimiser needs (its line search reads energies).
      ForceField ff(alanine(), kind);
      const auto [worst, largest] = gradient_error(ff, distorted(kLAlanine));
      INFO("alanine: largest |dE/dx| " << largest << ", largest difference " << worst << " kcal/mol/Å");
      CHECK(largest > 1.0);
      CHECK(worst < 0.05 * largest);
    }
  }
}

TEST_CASE("force field: the polish lowers the energy and keeps atom order, elements and bonds", "[force_field]") {
  const Molecule m = alanine();
  const MolecularGraph g = perceive_graph(m);
  const std::vector<double> x0 = distorted(kLAlanine);
  REQUIRE(connectivity_preserved(g, x0));
  for (ForceFieldKind kind : {ForceFieldKind::MMFF94, ForceFieldKind::UFF})
  for (Minimiser how : {Minimiser::LBFGS, Minimiser::ConjugateGradients}) {
    INFO(to_string(kind) << ", " << to_string(how));
    ForceField ff(m, kind);
    REQUIRE(ff.ready());
    CHECK(ff.atoms() == m.atoms());
    const double e0 = ff.energy(x0);
    double e1 = 0;
    const std::vector<double> x1 = ff.minimise(x0, 200, &e1, how);
    REQUIRE(x1.size() == x0.size());
    CHECK(e1 < e0 - 1.0);  // kcal/mol: a distorted geometry relaxes
    CHECK(ff.energy(x1) == Approx(e1).margin(1e-9));
    // Fewer steps, less relaxed; 0 steps, unchanged.
    double e_few = 0;
    ff.minimise(x0, 5, &e_few, how);
    CHECK(e_few < e0);
    CHECK(e_few >= e1 - 1e-9);
    CHECK(ff.minimise(x0, 0, nullptr, how) == x0);
    // Open Babel's OpenMP loops ran on this thread alone; its setting is back.
    const int threads = omp_get_max_threads();
    ff.minimise(x0, 3, nullptr, how);
    CHECK(omp_get_max_threads() == threads);
    // Atom order and bonds: the polished geometry's perceived bonds are the
    // molecule's; each atom moved by less than a bond length.
    CHECK(connectivity_preserved(g, x1));
    for (std::size_t a = 0; a < x0.size() / 3; ++a) {
      const double dx = x1[3 * a] - x0[3 * a], dy = x1[3 * a + 1] - x0[3 * a + 1], dz = x1[3 * a + 2] - x0[3 * a + 2];
      CHECK(std::sqrt(dx * dx + dy * dy + dz * dz) < 1.0);  // (UFF turns a methyl group)
    }
    // The same force field polishes another geometry as if fresh: the
    // result depends on the geometry, not on what it polished before.
    ForceField fresh(m, kind);
    CHECK(fresh.minimise(x0, 200, nullptr, how) == x1);
  }
}

TEST_CASE("force field: L-BFGS reaches a minimum at least as low as conjugate gradients, near it", "[force_field]") {
  // Both minimise the same energy from the same start: L-BFGS, converged,
  // ends where the gradient vanishes, at least as low as 200 conjugate-
  // gradient steps (which stop on the energy change alone) and in the same
  // basin: the two geometries within 0.1 Å RMSD (same frame; they differ
  // mostly where the energy is flattest, a methyl or hydroxyl rotor).
  const Molecule m = alanine();
  ForceField ff(m, ForceFieldKind::MMFF94);
  const std::vector<double> x0 = distorted(kLAlanine);
  double e_lbfgs = 0, e_cg = 0;
  const std::vector<double> a = ff.minimise(x0, 1000, &e_lbfgs, Minimiser::LBFGS);
  const std::vector<double> b = ff.minimise(x0, 200, &e_cg, Minimiser::ConjugateGradients);
  INFO("L-BFGS " << e_lbfgs << ", CG " << e_cg << " kcal/mol");
  CHECK(e_lbfgs <= e_cg + 1e-3);
  std::vector<double> g;
  ff.energy_gradient(a, g);
  double gmax = 0;
  for (double v : g) gmax = std::max(gmax, std::abs(v));
  INFO("largest |dE/dx| at the L-BFGS minimum " << gmax);
  CHECK(gmax < 0.05);
  double sq = 0;
  for (std::size_t i = 0; i < a.size(); ++i) sq += (a[i] - b[i]) * (a[i] - b[i]);
  const double rmsd = std::sqrt(sq / double(a.size() / 3));
  INFO("RMSD between the two minima " << rmsd << " Å");
  CHECK(rmsd < 0.1);
}

TEST_CASE("force field: translating, rotating or mirroring the input moves the polished geometry alike", "[force_field]") {
  const Molecule m = alanine();
  ForceField ff(m, ForceFieldKind::MMFF94);
  const std::vector<double> x0 = distorted(kLAlanine);
  CHECK(ff.energy(moved(x0)) == Approx(ff.energy(x0)).margin(1e-8));
  for (Minimiser how : {Minimiser::LBFGS, Minimiser::ConjugateGradients}) {
  INFO(to_string(how));
  double e = 0, e_moved = 0;
  const std::vector<double> x1 = ff.minimise(x0, 200, &e, how);
  const std::vector<double> y1 = ff.minimise(moved(x0), 200, &e_moved, how);
  CHECK(e_moved == Approx(e).margin(1e-6));
  const std::vector<double> expected = moved(x1);
  double worst = 0;
  for (std::size_t i = 0; i < y1.size(); ++i) worst = std::max(worst, std::abs(y1[i] - expected[i]));
  INFO("largest coordinate difference " << worst << " Å");
  CHECK(worst < 1e-9);
  // A mirror image (x -> -x) polishes to the mirror image.
  std::vector<double> mirrored = x0;
  for (double& v : mirrored) v = -v;
  double e_mirrored = 0;
  const std::vector<double> z1 = ff.minimise(mirrored, 200, &e_mirrored, how);
  CHECK(e_mirrored == Approx(e).margin(1e-6));
  worst = 0;
  for (std::size_t i = 0; i < z1.size(); ++i) worst = std::max(worst, std::abs(z1[i] + x1[i]));
  INFO("mirror image: largest coordinate difference " << worst << " Å");
  CHECK(worst < 1e-9);
  // The polish keeps the centroid.
  for (std::size_t k = 0; k < 3; ++k) {
    double c0 = 0, c1 = 0;
    for (std::size_t a = 0; a < x0.size() / 3; ++a) c0 += x0[3 * a + k], c1 += x1[3 * a + k];
    CHECK(c1 == Approx(c0).margin(1e-9));
  }
  }
}

TEST_CASE("force field: set up again for another molecule; a molecule without parameters is an error", "[force_field]") {
  ForceField ff(ForceFieldKind::MMFF94);
  CHECK_FALSE(ff.ready());
  CHECK_THROWS_AS(ff.minimise(kLAlanine, 10), std::logic_error);
  ff.setup(alanine());
  CHECK(ff.ready());
  CHECK_THROWS_AS(ff.minimise({0.0, 1.0}, 10), std::invalid_argument);
  CHECK_THROWS_AS(ff.minimise(kLAlanine, -1), std::invalid_argument);
  Molecule no_bonds = alanine();
  no_bonds.bonds_known = false;
  CHECK_THROWS_AS(ff.setup(no_bonds), std::invalid_argument);
  // Difluorine (F-F): MMFF94 has no bond parameters for it.
  Molecule f2;
  f2.name = "difluorine";
  f2.atomic_numbers = {9, 9};
  f2.positions = {0, 0, 0, 1.42, 0, 0};
  f2.bonds = {{0, 1, 1}};
  f2.bonds_known = true;
  try {
    ff.setup(f2);
    FAIL("MMFF94 set up for F2");
  } catch (const ForceFieldSetupError& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).rfind("mmff94 has no parameters for 'difluorine'", 0) == 0);
  }
  CHECK_FALSE(ff.ready());
  // Set up again for a molecule it has parameters for, it works as before.
  ff.setup(alanine());
  double e = 0;
  ff.minimise(distorted(kLAlanine), 50, &e);
  CHECK(std::isfinite(e));
}
