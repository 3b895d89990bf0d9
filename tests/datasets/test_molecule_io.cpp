// Molecule readers and writers: every QM9 source shipped in datasets/data/qm9
// (EDM npz, original and multi-frame XYZ, SDF), round trips through SDF and
// XYZ, centring, the node-count histogram, and errors that name the record.
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "datasets/molecule_io.hpp"
#include "datasets/particles.hpp"
#include "datasets/npy.hpp"
#include "datasets/npz.hpp"
#include "support/fixtures.hpp"
#include "support/temp_dir.hpp"

using namespace enf;
using enf::test::TempDir;
using enf::test::slurp;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

const std::string kQm9 = "datasets/data/qm9/";
const std::string kNpz = kQm9 + "edm_cormorant_npz/test.npz";
const std::string kSdf = kQm9 + "qm9_first500.sdf";
const std::string kOriginal = kQm9 + "original_xyz/";

// Tolerances.
// SDF stores coordinates with 4 decimals (rounding error ≤ 5e-5).
constexpr double kSdfCoordinate = 1e-4;
// PROVENANCE.md: the original XYZ of gdb 5001 agrees with the npz (float32) to |dx| < 2e-7.
constexpr double kOriginalVsNpz = 2e-7;
// write_xyz keeps 10 significant digits; QM9 coordinates are below 10 Å.
constexpr double kXyzRoundTrip = 1e-8;
// A mean of ≤ 29 coordinates of a few Å, subtracted in double.
constexpr double kCentred = 1e-12;

const std::vector<int> kOriginalIds = {1,    2,    3,    4,    5,    6,    7,      8,      9,      10,
                                       5000, 5001, 5002, 5003, 5004, 5005, 100001, 100002, 100003, 100004};

std::string original_path(int id) {
  char name[32];
  std::snprintf(name, sizeof name, "dsgdb9nsd_%06d.xyz", id);
  return kOriginal + name;
}

MoleculeReadOptions raw() {
  MoleculeReadOptions o;
  o.centre = false;
  return o;
}



std::string property(const Molecule& m, const std::string& key) {
  for (const auto& [k, v] : m.properties)
    if (k == key) return v;
  return "<absent>";
}

// Byte offset just after the n-th "$$$$\n" of an SDF text (n ≥ 1).
std::size_t after_record(const std::string& sdf, int n) {
  std::size_t at = 0;
  for (int k = 0; k < n; ++k) at = sdf.find("$$$$\n", at) + 5;
  return at;
}

long count_of(const std::string& text, const std::string& what) {
  long n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A hand-made .npy (format 1.0) with the given header dict and data bytes.
std::string make_npy(std::string dict, const std::string& data) {
  dict.append((64 - (10 + dict.size() + 1) % 64) % 64, ' ');
  dict += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\0';
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>(dict.size() >> 8);
  return out + dict + data;
}

template <class T>
std::string bytes_of(const std::vector<T>& values) {
  return {reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)};
}

}  // namespace

// ---- the shipped files -------------------------------------------------------------

TEST_CASE("the EDM npz split reads 13083 molecules; row 3 matches the fixture exactly", "[molecule_io][npz]") {
  const MoleculeSet all = read_molecules(kNpz, raw());
  REQUIRE(all.molecules.size() == 13083);
  CHECK(all.skipped == 0);
  const auto& fx = test::fixture("egnn_qm9.json")["molecules"][0];
  REQUIRE(fx["test_npz_index"] == 3);
  const Molecule& m = all.molecules[3];
  CHECK(m.name == "test.npz row 3 (gdb 31)");
  CHECK(m.atomic_numbers == fx["atomic_numbers"].get<std::vector<int>>());
  CHECK(m.positions == test::flat(fx["positions_angstrom_float32"]));  // float32 → double, exactly
  CHECK(m.atoms() == 9);

  SECTION("first/count select rows") {
    MoleculeReadOptions o = raw();
    o.first = 3;
    o.count = 2;
    const MoleculeSet two = read_molecules(kNpz, o);
    REQUIRE(two.molecules.size() == 2);
    CHECK(two.molecules[0].positions == m.positions);
    CHECK(two.molecules[1].name == all.molecules[4].name);
    o.first = 13082;
    o.count = 10;
    CHECK(read_molecules(kNpz, o).molecules.size() == 1);
    o.first = 13083;
    CHECK_THROWS_WITH(read_molecules(kNpz, o), Contains("test.npz") && Contains("the file has 13083"));
  }
  SECTION("histogram of atom counts") {
    const auto h = node_count_histogram(all.molecules);
    REQUIRE(h.size() <= std::size_t(kQm9MaxAtoms) + 1);
    long total = 0;
    for (long c : h) total += c;
    CHECK(total == 13083);
    CHECK(h[9] > 0);
    CHECK(h.back() > 0);
  }
}

TEST_CASE("integer npy arrays are read only on request", "[molecule_io][npy]") {
  const NpzFile f(kNpz);
  CHECK_THROWS_WITH(f.array("charges"), Contains("charges") && Contains("<i8"));  // default unchanged
  const NpyArray charges = f.array("charges", true);
  CHECK(charges.dtype == "<i8");
  REQUIRE(charges.shape == std::vector<int64_t>{13083, 29});
  const auto& fx = test::fixture("egnn_qm9.json")["molecules"][0];
  const auto z = fx["atomic_numbers"].get<std::vector<int>>();
  for (std::size_t a = 0; a < 29; ++a) CHECK(charges.data[3 * 29 + a] == (a < z.size() ? z[a] : 0));
  const NpyArray num = f.array("num_atoms", true);
  CHECK(num.data[3] == 9);
  CHECK(f.array("positions", true).dtype == "<f4");  // floats unaffected

  TempDir tmp("enf_molecule_io_test");
  const auto roundtrip = [&](const std::string& descr, const std::string& data) {
    const std::string path =
        tmp.write("i.npy", make_npy("{'descr': '" + descr + "', 'fortran_order': False, 'shape': (3,), }", data));
    return read_npy(path, true);
  };
  CHECK(roundtrip("|u1", bytes_of<std::uint8_t>({0, 7, 255})).data == std::vector<double>{0, 7, 255});
  CHECK(roundtrip("|i1", bytes_of<std::int8_t>({-128, 0, 127})).data == std::vector<double>{-128, 0, 127});
  CHECK(roundtrip("<i2", bytes_of<std::int16_t>({-32768, 1, 32767})).data == std::vector<double>{-32768, 1, 32767});
  CHECK(roundtrip("<u2", bytes_of<std::uint16_t>({0, 1, 65535})).data == std::vector<double>{0, 1, 65535});
  CHECK(roundtrip("<i4", bytes_of<std::int32_t>({-5, 0, 2147483647})).data == std::vector<double>{-5, 0, 2147483647});
  CHECK(roundtrip("<u4", bytes_of<std::uint32_t>({0, 1, 4294967295u})).data == std::vector<double>{0, 1, 4294967295.0});
  const std::int64_t two53 = std::int64_t(1) << 53;
  CHECK(roundtrip("<i8", bytes_of<std::int64_t>({-two53, 0, two53})).data ==
        std::vector<double>{-9007199254740992.0, 0, 9007199254740992.0});
  CHECK(roundtrip("|b1", bytes_of<std::uint8_t>({1, 0, 1})).data == std::vector<double>{1, 0, 1});
  const NpyArray u8 = roundtrip("<u8", bytes_of<std::uint64_t>({0, 1, 2}));
  CHECK(u8.dtype == "<u8");
  CHECK_THROWS_WITH(roundtrip("<i8", bytes_of<std::int64_t>({0, two53 + 1, 0})),
                    Contains("2^53") && Contains("element 1"));
  CHECK_THROWS_WITH(roundtrip("<u8", bytes_of<std::uint64_t>({~std::uint64_t(0), 0, 0})), Contains("2^53"));
  CHECK_THROWS_WITH(roundtrip(">i8", bytes_of<std::int64_t>({0, 0, 0})), Contains("'>i8'"));
  const std::string path = tmp.write(
      "d.npy", make_npy("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }", bytes_of<std::int32_t>({1})));
  CHECK_THROWS_WITH(read_npy(path), Contains("d.npy") && Contains("'<i4'"));
}

TEST_CASE("all 20 original QM9 XYZ files read, including the *^ exponent", "[molecule_io][xyz]") {
  const NpzFile npz(kNpz);
  const NpyArray index = npz.array("index", true);
  std::map<long, long> row_of_gdb;
  for (std::size_t r = 0; r < index.data.size(); ++r) row_of_gdb[long(index.data[r])] = long(r);
  const MoleculeSet split = read_molecules(kNpz, raw());
  int compared = 0;
  for (int id : kOriginalIds) {
    CAPTURE(id);
    const std::string path = original_path(id);
    const MoleculeSet s = read_molecules(path, raw());
    REQUIRE(s.molecules.size() == 1);
    const Molecule& m = s.molecules[0];
    CHECK(m.name == "gdb " + std::to_string(id));
    long n = 0;
    std::ifstream(path) >> n;
    CHECK(m.atoms() == n);
    CHECK(property(m, "U0") != "<absent>");
    CHECK(property(m, "smiles_b3lyp") != "<absent>");
    if (auto it = row_of_gdb.find(id); it != row_of_gdb.end()) {
      const Molecule& e = split.molecules[std::size_t(it->second)];
      CHECK(e.atomic_numbers == m.atomic_numbers);
      CHECK(test::max_abs_diff(e.positions, m.positions) < kOriginalVsNpz);
      ++compared;
    }
  }
  CHECK(row_of_gdb.count(5001) == 1);  // PROVENANCE: gdb 5001 was verified against the npz
  CHECK(compared >= 1);

  const Molecule m = read_molecules(original_path(5005), raw()).molecules[0];
  CHECK(m.atoms() == 13);
  CHECK(m.atomic_numbers[7] == 8);
  CHECK(m.positions[3 * 7 + 2] == 7.9254e-6);  // "7.9254*^-6"
  CHECK(property(m, "gap") == "0.1766");
  CHECK(property(read_molecules(original_path(1), raw()).molecules[0], "smiles_gdb17") == "C");
}

TEST_CASE("multi-frame and extended XYZ files", "[molecule_io][xyz]") {
  const MoleculeSet sample = read_molecules(kQm9 + "qm9_sample6000.xyz");
  REQUIRE(sample.molecules.size() == 6000);
  CHECK(sample.molecules[0].name == "chemiscope-mace-off-qm9 structure 0");
  CHECK(sample.molecules[0].atoms() == 18);
  CHECK(sample.molecules[0].atomic_numbers[0] == 8);

  const MoleculeSet ext = read_molecules(kQm9 + "chemiscope/explore_qm9.xyz", raw());
  REQUIRE(ext.molecules.size() == 5);
  const Molecule& methane = ext.molecules[0];
  CHECK(methane.atomic_numbers == std::vector<int>{6, 1, 1, 1, 1});
  CHECK(methane.positions[1] == 1.08580416);  // the partial-charge column is ignored
  CHECK(property(methane, "smiles") == "C");
  CHECK(property(methane, "pbc") == "F F F");
  CHECK(property(methane, "Properties") == "<absent>");
  CHECK(methane.name == "explore_qm9.xyz record 1");
  CHECK(ext.molecules[1].atomic_numbers == std::vector<int>{7, 1, 1, 1});
  // The same molecule as the original gdb 1, to the 8 decimals of this file.
  const Molecule gdb1 = read_molecules(original_path(1), raw()).molecules[0];
  CHECK(test::max_abs_diff(methane.positions, gdb1.positions) < 1e-8);

  MoleculeReadOptions o;
  o.first = 5998;
  const MoleculeSet tail = read_molecules(kQm9 + "qm9_sample6000.xyz", o);
  REQUIRE(tail.molecules.size() == 2);
  CHECK(tail.molecules[1].name == sample.molecules[5999].name);
}

TEST_CASE("the QM9 SDF reads 500 molecules with explicit hydrogens", "[molecule_io][sdf]") {
  const MoleculeSet s = read_molecules(kSdf, raw());
  REQUIRE(s.molecules.size() == 500);
  const Molecule& methane = s.molecules[0];
  CHECK(methane.name == "qm9 gdb 1");
  CHECK(methane.atomic_numbers == std::vector<int>{6, 1, 1, 1, 1});
  CHECK(methane.properties.empty());  // Open Babel's own annotations are not data fields
  CHECK(s.molecules[499].name == "qm9 gdb 500");
  const Molecule gdb1 = read_molecules(original_path(1), raw()).molecules[0];
  CHECK(test::max_abs_diff(methane.positions, gdb1.positions) < kSdfCoordinate);
  for (const auto& m : s.molecules)
    for (int z : m.atomic_numbers) REQUIRE(qm9_type_index(z) >= 0);

  MoleculeReadOptions o = raw();
  o.first = 2;
  o.count = 3;
  const MoleculeSet part = read_molecules(kSdf, o);
  REQUIRE(part.molecules.size() == 3);
  CHECK(part.molecules[0].name == "qm9 gdb 3");
  CHECK(part.molecules[0].positions == s.molecules[2].positions);
}

// ---- centring, histogram, elements -------------------------------------------------

TEST_CASE("centring removes the unweighted mean position", "[molecule_io]") {
  const Molecule raw_m = read_molecules(original_path(5005), raw()).molecules[0];
  const Molecule c = read_molecules(original_path(5005)).molecules[0];
  double mean[3] = {0, 0, 0}, after[3] = {0, 0, 0};
  for (int i = 0; i < raw_m.atoms(); ++i)
    for (int d = 0; d < 3; ++d) {
      mean[d] += raw_m.positions[std::size_t(3 * i + d)] / raw_m.atoms();
      after[d] += c.positions[std::size_t(3 * i + d)] / c.atoms();
    }
  for (int d = 0; d < 3; ++d) {
    CHECK(std::abs(after[d]) < kCentred);
    CHECK(std::abs(mean[d]) > 0.01);  // the file is not centred, so centring did something
  }
  for (int i = 0; i < c.atoms(); ++i)
    for (int d = 0; d < 3; ++d)
      CHECK(c.positions[std::size_t(3 * i + d)] ==
            Approx(raw_m.positions[std::size_t(3 * i + d)] - mean[d]).margin(kCentred));
}

TEST_CASE("node-count histogram", "[molecule_io]") {
  std::vector<Molecule> ms(4);
  ms[0].atomic_numbers = {6, 1, 1, 1, 1};
  ms[1].atomic_numbers = {8, 1, 1};
  ms[2].atomic_numbers = {8, 1, 1};
  CHECK(node_count_histogram(ms) == std::vector<long>{1, 0, 0, 2, 0, 1});
  CHECK(node_count_histogram({}) == std::vector<long>{0});
}

TEST_CASE("element symbols and atomic numbers", "[molecule_io]") {
  CHECK(element_symbol(1) == "H");
  CHECK(element_symbol(17) == "Cl");
  CHECK(element_symbol(118) == "Og");
  CHECK(element_symbol(0) == "Z0");
  CHECK(element_symbol(119) == "Z119");
  for (int z = 1; z <= 118; ++z) REQUIRE(atomic_number(element_symbol(z)) == z);
  CHECK(atomic_number("cl") == 17);
  CHECK(atomic_number("CL") == 17);
  CHECK(atomic_number("c") == 6);
  CHECK(atomic_number("Xx") == 0);
  CHECK(atomic_number("") == 0);
  CHECK(qm9_type_index(1) == 0);
  CHECK(qm9_type_index(9) == 4);
  CHECK(qm9_type_index(17) == -1);
}

// ---- writing -------------------------------------------------------------------------

TEST_CASE("SDF round trip: elements, positions, properties and perceived bonds", "[molecule_io][sdf]") {
  TempDir tmp("enf_molecule_io_test");
  MoleculeReadOptions o = raw();
  o.count = 5;
  std::vector<Molecule> ms = read_molecules(kSdf, o).molecules;
  ms.push_back(read_molecules(original_path(5005), raw()).molecules[0]);  // properties from the original XYZ
  ms[0].properties = {{"U0", "-40.47893"}, {"note", "two words"}};
  const std::string path = tmp.file("out.sdf");
  write_molecules(path, ms);
  CHECK_FALSE(fs::exists(path + ".tmp"));
  const std::string text = slurp(path);
  CHECK(count_of(text, "M  END") == long(ms.size()));
  CHECK(count_of(text, "$$$$") == long(ms.size()));
  CHECK(text.rfind("qm9 gdb 1\n", 0) == 0);
  // Methane: 5 atoms and 4 C–H bonds perceived from the geometry.
  std::istringstream lines(text);
  std::string line;
  for (int k = 0; k < 4; ++k) std::getline(lines, line);
  CHECK(line.substr(0, 6) == "  5  4");
  CHECK(text.find(">  <note>\ntwo words\n") != std::string::npos);

  const MoleculeSet back = read_molecules(path, raw());
  REQUIRE(back.molecules.size() == ms.size());
  for (std::size_t k = 0; k < ms.size(); ++k) {
    CAPTURE(k);
    CHECK(back.molecules[k].name == ms[k].name);
    CHECK(back.molecules[k].atomic_numbers == ms[k].atomic_numbers);
    CHECK(test::max_abs_diff(back.molecules[k].positions, ms[k].positions) < kSdfCoordinate);
    CHECK(back.molecules[k].properties == ms[k].properties);
  }
  CHECK(property(back.molecules.back(), "inchi_b3lyp") == "InChI=1S/C4H5N3O/c5-3-1-6-2-7-4(3)8/h1-2H,5H2,(H,6,7,8)");

  SECTION("other Open Babel formats by extension") {
    const std::string mol2 = tmp.file("out.mol2");
    write_molecules(mol2, ms);
    const MoleculeSet m2 = read_molecules(mol2, raw());
    REQUIRE(m2.molecules.size() == ms.size());
    CHECK(m2.molecules[5].atomic_numbers == ms[5].atomic_numbers);
    CHECK(test::max_abs_diff(m2.molecules[5].positions, ms[5].positions) < kSdfCoordinate);
    CHECK(m2.molecules[0].name == "qm9 gdb 1");
    CHECK_THROWS_WITH(write_molecules(tmp.file("out.unknownformat"), ms), Contains("no writer"));
    CHECK_THROWS_WITH(write_molecules(tmp.file("out.npz"), ms), Contains("not supported"));
  }
}

TEST_CASE("XYZ round trip keeps names and properties", "[molecule_io][xyz]") {
  TempDir tmp("enf_molecule_io_test");
  std::vector<Molecule> ms = {read_molecules(original_path(5005), raw()).molecules[0], read_molecules(kNpz,
                                                                                                      [] {
                                                                                                        auto o = raw();
                                                                                                        o.first = 3;
                                                                                                        o.count = 1;
                                                                                                        return o;
                                                                                                      }())
                                                                                           .molecules[0]};
  ms[1].properties = {{"quoted", "say \"hi\" \\ there"}, {"empty", ""}, {"key with space", "x"}};
  const std::string path = tmp.file("out.xyz");
  write_molecules(path, ms);
  const MoleculeSet back = read_molecules(path, raw());
  REQUIRE(back.molecules.size() == 2);
  CHECK(back.molecules[0].name == "gdb 5005");
  CHECK(back.molecules[0].properties == ms[0].properties);
  CHECK(back.molecules[1].name == "test.npz row 3 (gdb 31)");
  CHECK(property(back.molecules[1], "quoted") == "say \"hi\" \\ there");
  CHECK(property(back.molecules[1], "empty").empty());
  CHECK(property(back.molecules[1], "key_with_space") == "x");
  for (std::size_t k = 0; k < 2; ++k) {
    CHECK(back.molecules[k].atomic_numbers == ms[k].atomic_numbers);
    CHECK(test::max_abs_diff(back.molecules[k].positions, ms[k].positions) < kXyzRoundTrip);
  }
}

// ---- bad input ---------------------------------------------------------------------

TEST_CASE("unsupported molecules are errors naming the record, or skipped and counted", "[molecule_io][errors]") {
  TempDir tmp("enf_molecule_io_test");
  const std::string xyz = tmp.write("cl.xyz",
                                    "3\nwater\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n"
                                    "4\nchloromethane-ish\nC 0 0 0\nH 1.09 0 0\nCl -0.6 1.6 0\nH 0 0 1.09\n"
                                    "2\nx\nO 0 0 0\nH 0.96 0 0\n");
  CHECK_THROWS_WITH(read_molecules(xyz), Contains("cl.xyz") && Contains("record 2 ('chloromethane-ish')") &&
                                             Contains("line 10") && Contains("atom 3 is Cl") &&
                                             Contains("enf models H, C, N, O, F") && Contains("--skip-unsupported"));
  MoleculeReadOptions skip;
  skip.skip_unsupported = true;
  const MoleculeSet s = read_molecules(xyz, skip);
  CHECK(s.molecules.size() == 2);
  CHECK(s.skipped == 1);
  REQUIRE(s.skip_reasons.size() == 1);
  CHECK_THAT(s.skip_reasons[0], Contains("record 2") && Contains("atom 3 is Cl"));

  SECTION("an unknown symbol") {
    const std::string bad = tmp.write("xx.xyz", "1\nodd\nXx 0 0 0\n");
    CHECK_THROWS_WITH(read_molecules(bad), Contains("record 1 ('odd')") && Contains("'Xx'"));
    const std::string two = tmp.write("xx2.xyz", "1\nodd\nXx 0 0 0\n1\nok\nC 0 0 0\n");
    CHECK(read_molecules(two, skip).skipped == 1);
  }
  SECTION("an SDF record with chlorine") {
    const std::string sdf = slurp(kSdf).substr(0, after_record(slurp(kSdf), 3));
    std::string cl = sdf;
    const auto at = cl.find(" O   0");  // record 3 is water
    REQUIRE(at != std::string::npos);
    cl.replace(at, 6, " Cl  0");
    const std::string path = tmp.write("cl.sdf", cl);
    CHECK_THROWS_WITH(read_molecules(path), Contains("cl.sdf") && Contains("record 3 ('qm9 gdb 3')") &&
                                                Contains("atom 1 is Cl") && Contains("--skip-unsupported"));
    const MoleculeSet k = read_molecules(path, skip);
    CHECK(k.molecules.size() == 2);
    CHECK(k.skipped == 1);
  }
  SECTION("too many atoms") {
    MoleculeReadOptions o;
    o.max_atoms = 4;
    o.count = 3;  // CH4 (5 atoms), NH3, H2O
    CHECK_THROWS_WITH(read_molecules(kSdf, o),
                      Contains("record 1 ('qm9 gdb 1')") && Contains("5 atoms") && Contains("--skip-unsupported"));
    o.skip_unsupported = true;
    const MoleculeSet k = read_molecules(kSdf, o);
    CHECK(k.molecules.size() == 2);
    CHECK(k.skipped == 1);
    o.count = 1;
    CHECK_THROWS_WITH(read_molecules(kSdf, o), Contains("no molecules left") && Contains("5 atoms"));
  }
  SECTION("only the first few reasons are kept") {
    std::string many;
    for (int k = 0; k < 8; ++k) many += "1\nsalt " + std::to_string(k) + "\nNa 0 0 0\n";
    many += "1\nfine\nC 0 0 0\n";
    const MoleculeSet k = read_molecules(tmp.write("many.xyz", many), skip);
    CHECK(k.skipped == 8);
    CHECK(k.skip_reasons.size() == 5);
    CHECK(k.molecules.size() == 1);
  }
}

TEST_CASE("empty, missing and broken files give clear errors", "[molecule_io][errors]") {
  TempDir tmp("enf_molecule_io_test");
  for (const char* name : {"empty.xyz", "empty.sdf", "empty.mol2"}) {
    const std::string path = tmp.write(name, "");
    CHECK_THROWS_WITH(read_molecules(path), Contains("file '" + path + "': no molecules"));
  }
  CHECK_THROWS_WITH(read_molecules(tmp.write("blank.sdf", "\n\n  \n")), Contains("no molecules"));
  const std::string missing = tmp.file("missing.sdf");
  CHECK_THROWS_WITH(read_molecules(missing), Contains("'" + missing + "'") && Contains("no such file"));
  CHECK_THROWS_WITH(read_molecules(tmp.write("x.unknownformat", "1\n")), Contains("unknown format"));
  CHECK_THROWS_WITH(read_molecules(tmp.write("noext", "1\n")), Contains("no extension"));

  SECTION("non-finite coordinates") {
    const std::string path = tmp.write("nan.xyz", "1\nok\nC 0 0 0\n2\nbroken\nC 0 0 0\nH nan 0 0\n");
    CHECK_THROWS_WITH(read_molecules(path), Contains("record 2 ('broken')") && Contains("line 7") &&
                                                Contains("atom 2 has a non-finite coordinate"));
    // Issue 17: 1e30 was scored silently (NLL 7.5e58).
    const std::string far = tmp.write("far.xyz", "2\nfar\nC 0 0 0\nH 1e30 0 0\n");
    CHECK_THROWS_WITH(read_molecules(far), Contains("record 1 ('far')") && Contains("atom 2 has a coordinate beyond 1e6"));
  }
  SECTION("malformed XYZ") {
    const std::string path = tmp.write("bad.xyz", "2\nc\nC 0 0 0\nH 1 x 0\n");
    // (tests/cli/cli_test.sh matches "bad.xyz', line 4: expected 'symbol x y z'")
    CHECK_THROWS_WITH(read_molecules(path),
                      Contains("bad.xyz', line 4: expected 'symbol x y z'") && Contains("frame 1, atom 2"));
  }
  SECTION("an SDF cut in the middle of the third record") {
    const std::string sdf = slurp(kSdf);
    const std::size_t two = after_record(sdf, 2), three = after_record(sdf, 3);
    for (std::size_t cut : {two + 60, two + (three - two) / 2, two + 140}) {
      CAPTURE(sdf.substr(two, cut - two));
      const std::string path = tmp.write("cut.sdf", sdf.substr(0, cut));
      CHECK_THROWS_WITH(read_molecules(path),
                        Contains("cut.sdf") && Contains("record 3 ('qm9 gdb 3')") && Contains("truncated"));
      MoleculeReadOptions first_two;
      first_two.count = 2;
      CHECK(read_molecules(path, first_two).molecules.size() == 2);  // the complete records still read
    }
    const std::string no_end = sdf.substr(0, three - 5);  // record 3 without its "$$$$"
    CHECK_THROWS_WITH(read_molecules(tmp.write("noend.sdf", no_end)),
                      Contains("record 3 ('qm9 gdb 3')") && Contains("'$$$$'"));
    const std::string no_m_end = sdf.substr(0, three - 12);  // without "M  END" and "$$$$"
    REQUIRE(no_m_end.substr(no_m_end.size() - 8) == "0  0  0\n");
    CHECK_THROWS_WITH(read_molecules(tmp.write("nomend.sdf", no_m_end)),
                      Contains("record 3 ('qm9 gdb 3')") && Contains("'M  END'"));
    // V3000: the record must reach "M  END".
    const std::string v3000 =
        "qm9 gdb 1\n OpenBabel11252601093D\n\n  0  0  0     0  0            999 V3000\n"
        "M  V30 BEGIN CTAB\nM  V30 COUNTS 5 4 0 0 0\nM  V30 BEGIN ATOM\n"
        "M  V30 1 C -0.0127 1.0858 0.008 0\nM  V30 2 H 0.0022 -0.006 0.002 0\nM  V30 3 H 1.0117 1.4638 0.0003 0\n"
        "M  V30 4 H -0.5408 1.4475 -0.8766 0\nM  V30 5 H -0.5238 1.4379 0.9064 0\nM  V30 END ATOM\n"
        "M  V30 BEGIN BOND\nM  V30 1 1 1 5\nM  V30 2 1 2 1\nM  V30 3 1 3 1\nM  V30 4 1 4 1\nM  V30 END BOND\n"
        "M  V30 END CTAB\nM  END\n$$$$\n";
    const MoleculeSet v3 = read_molecules(tmp.write("v3000.sdf", v3000), raw());
    REQUIRE(v3.molecules.size() == 1);
    CHECK(v3.molecules[0].atomic_numbers == std::vector<int>{6, 1, 1, 1, 1});
    CHECK(v3.molecules[0].positions[1] == 1.0858);
    CHECK_THROWS_WITH(read_molecules(tmp.write("v3cut.sdf", v3000.substr(0, v3000.find("M  V30 END ATOM")))),
                      Contains("record 1 ('qm9 gdb 1')") && Contains("truncated"));
    // Issue 17: a counts line of 2e9 atoms made Open Babel allocate gigabytes;
    // it must agree with the atom block before Open Babel sees the record.
    std::string huge = v3000;
    huge.replace(huge.find("COUNTS 5 4"), 10, "COUNTS 2000000000 4");
    CHECK_THROWS_WITH(read_molecules(tmp.write("v3huge.sdf", huge)),
                      Contains("record 1 ('qm9 gdb 1')") && Contains("announces 2000000000 atoms") &&
                          Contains("holds 5"));
    // A .mol file may leave out the "$$$$" of its single record.
    const std::string mol = sdf.substr(0, after_record(sdf, 1) - 5);
    CHECK(read_molecules(tmp.write("one.mol", mol)).molecules.size() == 1);
  }
}

TEST_CASE("QM9-positional: the positions of the 19-atom molecules, in three disjoint shipped splits", "[molecule][qm9_positional]") {
  const ParticleSystem sys = particle_system("qm9_positional");
  CHECK(sys.n == 19);
  CHECK(sys.dim == 3);
  const SplitSpec train = shipped_split(sys, "train"), val = shipped_split(sys, "val"), test = shipped_split(sys, "test");
  CHECK(train.first + train.count == val.first);
  CHECK(val.first + val.count == test.first);
  const Structures all = load_structures(train.path, sys);
  CHECK(all.rows == 1813);
  CHECK(test.first + test.count == all.rows);
  // Row 112 of test.npz (gdb 1194, the fixtures' molecule 1) has 19 atoms:
  // its positions, centred, are the row after the 19-atom molecules before it.
  const auto& m = test::fixture("egnn_qm9.json")["molecules"][1];
  REQUIRE(m["num_atoms"] == 19);
  MoleculeReadOptions first112;
  first112.count = 112;
  int before = 0;
  for (const auto& mol : read_molecules(train.path, first112).molecules) before += mol.atoms() == 19;
  const std::vector<double> raw = test::flat(m["positions_angstrom_float32"]);
  for (int d = 0; d < 3; ++d) {
    double mean = 0;
    for (int i = 0; i < 19; ++i) mean += raw[i * 3 + d] / 19;
    for (int i = 0; i < 19; ++i) CHECK(all.x[(before * 19 + i) * 3 + d] == Approx(raw[i * 3 + d] - mean).margin(1e-12));
  }
  const Structures v = load_structures(val.path, sys, val.first, val.count);
  CHECK(v.rows == 250);
  CHECK(std::equal(v.x.begin(), v.x.begin() + 57, all.x.begin() + std::ptrdiff_t(val.first) * 57));
}
