// The conformer evaluation of issue 15 (datasets/conformer_evaluation.hpp):
// best symmetric heavy-atom RMSD per molecule, MAT, median, COV on either
// side of known answers, missing molecules, and grouping a generator's
// records to their references by title.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "datasets/conformer_evaluation.hpp"
#include "datasets/molecular_graph.hpp"
#include "datasets/molecule_io.hpp"
#include "datasets/stereo.hpp"
#include "support/qm9_sdf.hpp"

using namespace enf;
using Catch::Matchers::Contains;

namespace {

const std::string& kSdf = enf::test::kQm9Sdf;
// Superposition of coordinates of a few Å in double (as test_molecular_graph).
constexpr double kRmsdZero = 1e-9;

std::vector<Molecule> qm9(long first, long count) { return enf::test::qm9_sdf_records(first, count); }

// Proper rotation (about z by a, then x by b) and translation t of [n, 3].
std::vector<double> moved(const std::vector<double>& x, double a, double b, const double t[3]) {
  std::vector<double> y(x.size());
  for (std::size_t k = 0; k < x.size(); k += 3) {
    const double p0 = std::cos(a) * x[k] - std::sin(a) * x[k + 1], p1 = std::sin(a) * x[k] + std::cos(a) * x[k + 1];
    const double p2 = x[k + 2];
    y[k] = p0 + t[0];
    y[k + 1] = std::cos(b) * p1 - std::sin(b) * p2 + t[1];
    y[k + 2] = std::sin(b) * p1 + std::cos(b) * p2 + t[2];
  }
  return y;
}

// A C-O pair 1.5 Å apart (a bond by Open Babel's radii, which bond C-O up to
// 0.76 + 0.66 + 0.45 = 1.87 Å).
Molecule pair(const std::string& name) { return Molecule{name, {6, 8}, {0, 0, 0, 1.5, 0, 0}, {}, true, {{0, 1, 1}}, {}, {}}; }

// The pair stretched to 1.5 + 2r Å along a tilted axis and moved: after the
// best superposition each atom is r off, so its heavy-atom RMSD is r.
std::vector<double> pair_at_rmsd(double r) {
  const double d = 1.5 + 2 * r, t[3] = {4, -2, 1};
  return moved({0, 0, 0, d, 0, 0}, 0.7, 1.3, t);
}

}  // namespace

TEST_CASE("A reference against itself and against rigid motions of itself", "[conformer_evaluation]") {
  std::vector<Molecule> refs = qm9(20, 4);
  std::vector<MoleculeEvaluation> results;
  for (const Molecule& m : refs) {
    const double t[3] = {-7, 2, 11};
    const MoleculeEvaluation e = evaluate_molecule(m, {m.positions, moved(m.positions, 2.1, -0.8, t)});
    INFO(m.name);
    CHECK(e.name == m.name);
    CHECK(e.conformers == 2);
    CHECK(e.best_rmsd <= kRmsdZero);
    CHECK(e.connectivity_kept == 2);
    // The moved copy alone: the superposition undoes the motion.
    CHECK(evaluate_molecule(m, {moved(m.positions, 2.1, -0.8, t)}).best_rmsd <= kRmsdZero);
    int heavy = 0;
    for (int z : m.atomic_numbers) heavy += z > 1;
    CHECK(e.heavy_atoms == heavy);
    CHECK(e.atoms == m.atoms());
    results.push_back(e);
  }
  const EvaluationSummary s = summarize_evaluation(results);
  CHECK(s.molecules == 4);
  CHECK(s.missing == 0);
  CHECK(s.conformers == 8);
  CHECK(s.mat <= kRmsdZero);
  CHECK(s.median <= kRmsdZero);
  REQUIRE(s.coverage.size() == 2);
  CHECK(s.coverage[0].threshold == 0.5);
  CHECK(s.coverage[1].threshold == 0.25);
  CHECK(s.coverage[0].covered == 4);
  CHECK(s.coverage[1].share == 1.0);
  CHECK(s.connectivity_share() == 1.0);
}

TEST_CASE("Symmetry: isobutane's methyls swapped are the same conformer", "[conformer_evaluation]") {
  // Isobutane (one of QM9's C4H10) has a carbon with three carbon neighbours.
  const auto mols = qm9(0, 40);
  const Molecule* iso = nullptr;
  std::vector<int> methyls;
  for (const Molecule& m : mols) {
    const MolecularGraph g = perceive_graph(m);
    for (int a = 0; a < m.atoms() && !iso; ++a) {
      std::vector<int> carbons;
      for (int b = 0; b < m.atoms(); ++b)
        if (m.atomic_numbers[std::size_t(b)] == 6 && g.bonded(a, b)) carbons.push_back(b);
      if (m.atoms() == 14 && carbons.size() == 3) iso = &m, methyls = carbons;
    }
  }
  REQUIRE(iso);
  INFO(iso->name);
  std::vector<double> swapped = iso->positions;
  for (std::size_t d = 0; d < 3; ++d)
    std::swap(swapped[3 * std::size_t(methyls[0]) + d], swapped[3 * std::size_t(methyls[1]) + d]);
  const double t[3] = {0.5, 0.5, -3};
  swapped = moved(swapped, 1.0, 2.0, t);
  CHECK(evaluate_molecule(*iso, {swapped}, true).best_rmsd <= kRmsdZero);
  const double plain = evaluate_molecule(*iso, {swapped}, false).best_rmsd;
  CHECK(plain > 0.3);
  // Without symmetry the RMSD is kabsch_rmsd over the heavy atoms, as it says.
  std::vector<double> a, b;
  for (int k = 0; k < iso->atoms(); ++k)
    if (iso->atomic_numbers[std::size_t(k)] > 1)
      for (std::size_t d = 0; d < 3; ++d) {
        a.push_back(iso->positions[3 * std::size_t(k) + d]);
        b.push_back(swapped[3 * std::size_t(k) + d]);
      }
  CHECK(plain == Approx(kabsch_rmsd(a, b)).epsilon(1e-12));
}

TEST_CASE("Known RMSDs: the best per molecule, MAT, median, COV on either side, a missing molecule",
          "[conformer_evaluation]") {
  // Best RMSDs 0.2, 0.4, (missing), 0.05.
  const std::vector<Molecule> refs = {pair("a"), pair("b"), pair("c"), pair("d")};
  const std::vector<std::vector<std::vector<double>>> conformers = {
      {pair_at_rmsd(0.5), pair_at_rmsd(0.2), pair_at_rmsd(0.3)},
      {pair_at_rmsd(0.4), pair_at_rmsd(0.6)},
      {},
      {pair_at_rmsd(0.05)}};
  std::vector<MoleculeEvaluation> results;
  for (std::size_t m = 0; m < refs.size(); ++m) results.push_back(evaluate_molecule(refs[m], conformers[m]));
  CHECK(results[0].best_rmsd == Approx(0.2).epsilon(1e-12));
  CHECK(results[0].best_conformer == 1);
  CHECK(results[1].best_rmsd == Approx(0.4).epsilon(1e-12));
  CHECK(results[1].best_conformer == 0);
  CHECK(results[2].missing());
  CHECK(results[2].best_conformer == -1);
  CHECK(results[3].best_rmsd == Approx(0.05).epsilon(1e-12));
  // Bonds: only the conformer at 1.6 Å is still a C-O bond (the others are 1.9 Å or longer).
  CHECK(results[0].connectivity_kept == 0);
  CHECK(results[3].connectivity_kept == 1);

  const EvaluationSummary s = summarize_evaluation(results, {0.19, 0.21, 0.39, 0.41, 0.5});
  CHECK(s.molecules == 4);
  CHECK(s.missing == 1);
  CHECK(s.conformers == 6);
  CHECK(s.connectivity_kept == 1);
  CHECK(s.connectivity_share() == Approx(1.0 / 6));
  // Missing molecules are out of MAT and the median...
  CHECK(s.mat == Approx((0.2 + 0.4 + 0.05) / 3).epsilon(1e-12));
  CHECK(s.median == Approx(0.2).epsilon(1e-12));
  // ... and not covered: the shares are over all 4 references.
  const std::vector<long> covered = {1, 2, 2, 3, 3};
  REQUIRE(s.coverage.size() == covered.size());
  for (std::size_t k = 0; k < covered.size(); ++k) {
    INFO("threshold " << s.coverage[k].threshold);
    CHECK(s.coverage[k].covered == covered[k]);
    CHECK(s.coverage[k].share == Approx(double(covered[k]) / 4));
  }
  // An even count of judged molecules: the median is the mean of the middle two.
  const EvaluationSummary even = summarize_evaluation({results[0], results[1]});
  CHECK(even.median == Approx(0.3).epsilon(1e-12));
  // The threshold is strict: best < δ (a best RMSD set to exactly 0.25).
  MoleculeEvaluation at = results[3];
  at.best_rmsd = 0.25;
  const EvaluationSummary edge = summarize_evaluation({at}, {0.25, std::nextafter(0.25, 1.0)});
  CHECK(edge.coverage[0].covered == 0);
  CHECK(edge.coverage[1].covered == 1);
}

TEST_CASE("Stereo kept: conformers with every reference centre's handedness, over molecules with centres",
          "[conformer_evaluation]") {
  // CHFClBr-like: a carbon with four different neighbours (N, O, F, H) at
  // the corners of a tetrahedron; its centre given by hand (the measure
  // reads reference.stereo, however it was found).
  const std::vector<double> x = {0, 0, 0, 1, 1, 1, 1, -1, -1, -1, 1, -1, -1, -1, 1};
  Molecule chiral{"chiral", {6, 7, 8, 9, 1}, x, {}, true, {{0, 1, 1}, {0, 2, 1}, {0, 3, 1}, {0, 4, 1}}, {}, {}};
  chiral.stereo = {{0, {1, 2, 3}, signed_volume_sign({0, {1, 2, 3}, 0}, x)}};
  REQUIRE(chiral.stereo[0].sign != 0);
  std::vector<double> mirrored = x;
  for (double& v : mirrored) v = -v;
  const double t[3] = {1, 2, 3};
  const MoleculeEvaluation e = evaluate_molecule(chiral, {x, mirrored, moved(x, 0.4, 1.1, t)});
  CHECK(e.stereo_centres == 1);
  CHECK(e.stereo_kept == 2);  // the rotated one kept, the mirror image not
  const MoleculeEvaluation none = evaluate_molecule(pair("pair"), {pair_at_rmsd(0.1)});
  CHECK(none.stereo_centres == 0);
  CHECK(none.stereo_kept == 1);
  const EvaluationSummary s = summarize_evaluation({e, none, evaluate_molecule(chiral, {})});
  CHECK(s.stereo_molecules == 1);  // the missing one judged nothing
  CHECK(s.stereo_conformers == 3);
  CHECK(s.stereo_kept == 2);
  CHECK(s.stereo_share() == Approx(2.0 / 3));
  CHECK(std::isnan(summarize_evaluation({none}).stereo_share()));
}

TEST_CASE("Nothing judged; bad sizes and thresholds", "[conformer_evaluation]") {
  const EvaluationSummary none = summarize_evaluation({evaluate_molecule(pair("a"), {})});
  CHECK(none.missing == 1);
  CHECK(std::isnan(none.mat));
  CHECK(std::isnan(none.median));
  CHECK(none.coverage[0].covered == 0);
  CHECK(none.coverage[0].share == 0.0);
  CHECK(std::isnan(none.connectivity_share()));
  CHECK_THROWS_WITH(evaluate_molecule(pair("a"), {pair_at_rmsd(0.1), {0, 0, 0}}),
                    Contains("molecule 'a': conformer 2 has 3 coordinates; expected 6"));
  CHECK_THROWS_WITH(summarize_evaluation({}, {0.5, 0}), Contains("expected a positive number"));
  // A diverged conformer (NaN) is never the best and does not hide the others.
  const double nan = std::nan("");
  const MoleculeEvaluation e = evaluate_molecule(pair("a"), {{nan, 0, 0, 1, 0, 0}, pair_at_rmsd(0.1)});
  CHECK(e.best_rmsd == Approx(0.1).epsilon(1e-12));
  CHECK(e.best_conformer == 1);
}

TEST_CASE("A generator's records grouped by title", "[conformer_evaluation]") {
  const std::vector<Molecule> refs = {pair("a"), pair("b"), pair("c")};
  auto record = [](const std::string& title, double r) {
    Molecule m = pair(title);
    m.positions = pair_at_rmsd(r);
    return m;
  };
  const std::vector<Molecule> records = {record("b", 0.1), record("a", 0.2), record("b", 0.3), record("b", 0.4)};
  long dropped = -1;
  const auto all = group_conformers_by_title(refs, records, "gen.sdf", 0, &dropped);
  REQUIRE(all.size() == 3);
  CHECK(all[0] == std::vector<std::vector<double>>{records[1].positions});
  CHECK(all[1] == std::vector<std::vector<double>>{records[0].positions, records[2].positions, records[3].positions});
  CHECK(all[2].empty());
  CHECK(dropped == 0);
  const auto two = group_conformers_by_title(refs, records, "gen.sdf", 2, &dropped);
  CHECK(two[1] == std::vector<std::vector<double>>{records[0].positions, records[2].positions});
  CHECK(dropped == 1);

  CHECK_THROWS_WITH(group_conformers_by_title(refs, {record("a", 0), record("z", 0)}, "gen.sdf"),
                    Contains("generated file 'gen.sdf': record 2 'z': its title is no reference molecule's"));
  Molecule three = record("c", 0);
  three.atomic_numbers.push_back(1);
  three.positions.insert(three.positions.end(), {0, 1, 0});
  CHECK_THROWS_WITH(group_conformers_by_title(refs, {three}, "gen.sdf"),
                    Contains("record 1 'c': 3 atoms; expected the reference's 2"));
  Molecule swapped = record("a", 0);
  std::swap(swapped.atomic_numbers[0], swapped.atomic_numbers[1]);
  CHECK_THROWS_WITH(group_conformers_by_title(refs, {swapped}, "gen.sdf"),
                    Contains("record 1 'a': atom 1 is O; expected C"));
  CHECK_THROWS_WITH(group_conformers_by_title({pair("a"), pair("b"), pair("a")}, {}, "gen.sdf"),
                    Contains("reference molecules 1 and 3 share the title 'a'"));
}
