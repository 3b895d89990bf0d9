// The official QM9 download into the EDM/cormorant splits: NumPy's legacy
// permutation against NumPy and against the shipped EDM test split, the
// processing end to end on small archives built from the 20 shipped original
// files, the .npz writer, the verification, and errors that name the member.
#include <archive.h>
#include <archive_entry.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <sstream>

#include "datasets/file_io.hpp"
#include "datasets/molecule_io.hpp"
#include "datasets/npy.hpp"
#include "datasets/npz.hpp"
#include "datasets/numpy_random.hpp"
#include "datasets/qm9_raw.hpp"
#include "datasets/xyz.hpp"
#include "support/temp_dir.hpp"

using namespace enf;
using enf::test::TempDir;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// Paths are relative to the repository root, the tests' working directory.
const std::string kShippedTest = "datasets/data/qm9/edm_cormorant_npz/test.npz";
const std::string kOriginal = "datasets/data/qm9/original_xyz/";
const std::vector<int64_t> kIds = {1,    2,    3,    4,    5,    6,    7,      8,      9,      10,
                                   5000, 5001, 5002, 5003, 5004, 5005, 100001, 100002, 100003, 100004};
const char* const kProperties[] = {"A", "B", "C", "mu", "alpha", "homo", "lumo", "gap",
                                   "r2", "zpve", "U0", "U", "H", "G", "Cv"};

std::string member_name(int64_t id) {
  char name[32];
  std::snprintf(name, sizeof name, "dsgdb9nsd_%06lld.xyz", static_cast<long long>(id));
  return name;
}
std::string original_text(int64_t id) { return read_file_bytes(kOriginal + member_name(id), "xyz"); }


using Members = std::vector<std::pair<std::string, std::string>>;  // (name, contents)

Members shipped_members() {
  Members m;
  for (int64_t id : kIds) m.emplace_back(member_name(id), original_text(id));
  return m;
}

// A tar archive written with libarchive, compressed with `filter`
// (ARCHIVE_FILTER_NONE, _GZIP or _BZIP2): no tar or bzip2 program needed.
void write_tar(const std::string& path, const Members& members, int filter) {
  archive* a = archive_write_new();
  REQUIRE(archive_write_add_filter(a, filter) == ARCHIVE_OK);
  REQUIRE(archive_write_set_format_pax_restricted(a) == ARCHIVE_OK);
  REQUIRE(archive_write_open_filename(a, path.c_str()) == ARCHIVE_OK);
  for (const auto& [name, text] : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, la_int64_t(text.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
    REQUIRE(archive_write_data(a, text.data(), text.size()) == la_ssize_t(text.size()));
    archive_entry_free(e);
  }
  REQUIRE(archive_write_close(a) == ARCHIVE_OK);
  archive_write_free(a);
}

// In the layout of figshare's uncharacterized.txt: header lines, then rows
// whose first token is the gdb id, then a footer.
void write_excluded(const std::string& path, const std::vector<int64_t>& ids) {
  std::ofstream out(path);
  out << " Uncharacterized molecules of the test archive\n\n   Index   SMILES (GDB-17)   SMILES (B3LYP)\n";
  for (int64_t id : ids) out << "  " << id << "   C   C   0.1\n";
  out << "\n  end of list\n";
}

// The small archive's splits, computed with NumPy 1.24 as cormorant does:
// included = ids minus {3, 5002, 100004}; np.random.seed(0);
// perm = np.random.permutation(17); 10 train, int(0.25 * 17) = 4 test, 3 valid.
const std::vector<int64_t> kExcluded = {3, 5002, 100004};
const std::vector<int64_t> kTrain = {2, 4, 6, 8, 9, 10, 5000, 5001, 5005, 100001};
const std::vector<int64_t> kValid = {5, 5003, 100003};
const std::vector<int64_t> kTest = {1, 7, 5004, 100002};

Qm9RawOptions small_options(std::ostream* log = nullptr) {
  Qm9RawOptions o;
  o.molecules = 20;
  o.excluded = 3;
  o.train = 10;
  o.test_fraction = 0.25;
  o.contiguous_ids = false;
  o.log = log;
  return o;
}

std::vector<int64_t> as_ids(const NpyArray& a) { return {a.data.begin(), a.data.end()}; }

}  // namespace

TEST_CASE("numpy_legacy_permutation gives NumPy's permutations", "[qm9_raw]") {
  // Values from NumPy 1.24 (np.random.seed(s); np.random.permutation(n)).
  CHECK(numpy_legacy_permutation(10, 0) == std::vector<int64_t>{2, 8, 4, 9, 1, 6, 7, 3, 0, 5});
  CHECK(numpy_legacy_permutation(20, 7) ==
        std::vector<int64_t>{1, 17, 2, 5, 11, 0, 18, 6, 13, 19, 10, 14, 8, 16, 9, 12, 7, 3, 4, 15});
  CHECK(numpy_legacy_permutation(7, 4294967295u) == std::vector<int64_t>{1, 5, 0, 6, 4, 2, 3});
  const auto p1000 = numpy_legacy_permutation(1000, 123456789);
  CHECK(std::vector<int64_t>(p1000.begin(), p1000.begin() + 8) ==
        std::vector<int64_t>{947, 863, 731, 526, 692, 674, 230, 551});
  CHECK(numpy_legacy_permutation(1, 0) == std::vector<int64_t>{0});
  CHECK(numpy_legacy_permutation(0, 0).empty());
  CHECK_THROWS_WITH(numpy_legacy_permutation(-1, 0), Contains("negative"));

  // QM9's: np.random.seed(0); perm = np.random.permutation(130831).
  const auto p = numpy_legacy_permutation(130831, 0);
  REQUIRE(p.size() == 130831);
  CHECK(std::vector<int64_t>(p.begin(), p.begin() + 5) == std::vector<int64_t>{130195, 68784, 7957, 25911, 20168});
  CHECK(std::vector<int64_t>(p.begin() + 100000, p.begin() + 100005) ==
        std::vector<int64_t>{68751, 123554, 28669, 72737, 11612});
  CHECK(std::vector<int64_t>(p.end() - 5, p.end()) == std::vector<int64_t>{45891, 117952, 42613, 43567, 68268});
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t k = 0; k < sorted.size(); ++k) REQUIRE(sorted[k] == int64_t(k));
}

// Without uncharacterized.txt: included_idxs is increasing, so the k-th
// smallest permutation value of the test part maps to the k-th smallest test
// gdb id, and g − 1 − p (the excluded molecules before it) must lie in
// [0, 3054] and never decrease. The shipped rows are in ascending gdb id
// (cormorant reads a split's members in archive order), so row k pairs with
// the k-th smallest p.
TEST_CASE("the permutation reproduces the shipped EDM test split", "[qm9_raw]") {
  constexpr long kMols = 133885 - 3054, kTrain = 100000, kTestRows = long(0.1 * kMols);
  constexpr long kValidRows = kMols - kTrain - kTestRows;
  const NpzFile f(kShippedTest);
  const std::vector<int64_t> g = as_ids(f.array("index", true));
  REQUIRE(long(g.size()) == kTestRows);  // 13083
  REQUIRE(std::is_sorted(g.begin(), g.end()));
  const auto excluded_before = [&](uint32_t seed) {
    const auto perm = numpy_legacy_permutation(kMols, seed);
    std::vector<int64_t> p(perm.begin() + kTrain + kValidRows, perm.end());  // 117748 on
    std::sort(p.begin(), p.end());
    std::vector<int64_t> e(p.size());
    for (std::size_t k = 0; k < p.size(); ++k) e[k] = g[k] - 1 - p[k];
    return e;
  };
  const auto e = excluded_before(0);
  CHECK(*std::min_element(e.begin(), e.end()) >= 0);
  CHECK(*std::max_element(e.begin(), e.end()) <= 3054);
  CHECK(std::is_sorted(e.begin(), e.end()));
  // 3054 excluded, at most 3044 of them below the largest test id, and some
  // below every test id from 31 on (gdb 31 is the fourth row).
  CHECK(e.back() == 3044);
  // The check has power: another seed fails it at once.
  const auto other = excluded_before(1);
  CHECK_FALSE(std::is_sorted(other.begin(), other.end()));
}

// With the real excluded list (shipped: datasets/data/qm9/raw/uncharacterized.txt)
// the splits are exact: the test split is the shipped one, id for id.
TEST_CASE("cormorant's splits from the real excluded list give the shipped test split exactly", "[qm9_raw]") {
  const std::vector<int64_t> excluded = read_qm9_excluded("datasets/data/qm9/raw/uncharacterized.txt");
  REQUIRE(excluded.size() == 3054);
  std::vector<int64_t> ids(133885);
  std::iota(ids.begin(), ids.end(), 1);
  Qm9RawOptions quiet;
  quiet.log = nullptr;
  const Qm9Splits s = qm9_splits(ids, excluded, quiet);
  CHECK(s.train.size() == 100000);
  CHECK(s.valid.size() == 17748);
  const std::vector<int64_t> shipped = as_ids(NpzFile(kShippedTest).array("index", true));
  REQUIRE(s.test.size() == shipped.size());
  CHECK(s.test == shipped);
  // No excluded molecule lands in a split, and the splits are disjoint and complete.
  std::set<int64_t> all(s.train.begin(), s.train.end());
  all.insert(s.valid.begin(), s.valid.end());
  all.insert(s.test.begin(), s.test.end());
  CHECK(all.size() == 133885 - 3054);
  for (int64_t x : excluded) CHECK(all.count(x) == 0);
}

TEST_CASE("write_npz writes a stored .npz that NpzFile reads back", "[qm9_raw][npz]") {
  TempDir dir("enf_test_qm9_raw");
  const std::string path = dir.file("a.npz");
  const std::vector<int64_t> ints = {-3, 0, int64_t(1) << 40, 7};
  const std::vector<float> floats = {1.5f, -2.25f, 3.0e-7f, 4.0f, 5.0f, 6.0f};
  const std::vector<double> doubles = {0.1, -1e300};
  write_npz(path, {{"ints", npy_bytes({4}, ints, "ints")},
                   {"floats", npy_bytes({2, 3}, floats, "floats")},
                   {"doubles", npy_bytes({2}, doubles, false, "doubles")},
                   {"empty", npy_bytes({0, 3}, std::vector<float>{}, "empty")}});
  const NpzFile f(path);
  CHECK(f.names() == std::vector<std::string>{"ints", "floats", "doubles", "empty"});
  const NpyArray i = f.array("ints", true), x = f.array("floats"), d = f.array("doubles"), e = f.array("empty");
  CHECK(i.dtype == "<i8");
  CHECK(as_ids(i) == ints);
  CHECK(x.dtype == "<f4");
  CHECK(x.shape == std::vector<int64_t>{2, 3});
  CHECK(x.data == std::vector<double>(floats.begin(), floats.end()));
  CHECK(d.data == doubles);
  CHECK(e.shape == std::vector<int64_t>{0, 3});
  // Deterministic: the same arrays give the same bytes.
  write_npz(dir.file("b.npz"), {{"ints", npy_bytes({4}, ints, "ints")},
                                {"floats", npy_bytes({2, 3}, floats, "floats")},
                                {"doubles", npy_bytes({2}, doubles, false, "doubles")},
                                {"empty", npy_bytes({0, 3}, std::vector<float>{}, "empty")}});
  CHECK(read_file_bytes(path, "npz") == read_file_bytes(dir.file("b.npz"), "npz"));
  CHECK_THROWS_WITH(npy_bytes({3}, ints, "ints"), Contains("ints") && Contains("4"));
  CHECK(dir.listing() == std::set<std::string>{"a.npz", "b.npz"});
}

TEST_CASE("a small archive becomes splits equal to the original files", "[qm9_raw]") {
  TempDir dir("enf_test_qm9_raw");
  const std::string archive = dir.file("small.tar.bz2"), excluded = dir.file("excluded.txt");
  write_tar(archive, shipped_members(), ARCHIVE_FILTER_BZIP2);
  write_excluded(excluded, kExcluded);
  CHECK(read_qm9_excluded(excluded) == kExcluded);

  std::ostringstream log;
  const Qm9Splits s = process_qm9_raw(archive, excluded, dir.file("out"), small_options(&log));
  CHECK(s.train == kTrain);
  CHECK(s.valid == kValid);
  CHECK(s.test == kTest);
  CHECK_THAT(log.str(), Contains("train.npz: 10 molecules") && Contains("20 members read, 17 parsed"));
  CHECK(dir.listing() == std::set<std::string>{"small.tar.bz2", "excluded.txt", "out"});
  CHECK(fs::is_regular_file(dir.file("out/train.npz")));

  // The shipped EDM test split, by gdb id (gdb 5001 is its row 484).
  const NpzFile shipped(kShippedTest);
  const auto shipped_ids = as_ids(shipped.array("index", true));
  const NpyArray shipped_z = shipped.array("charges", true), shipped_x = shipped.array("positions");
  std::set<int64_t> all;
  int compared_with_shipped = 0;
  for (const auto& [split, ids] : {std::pair{"train", &kTrain}, std::pair{"valid", &kValid}, std::pair{"test", &kTest}}) {
    const std::string path = dir.file(std::string("out/") + split + ".npz");
    const NpzFile f(path);
    std::vector<std::string> names = {"num_atoms", "charges", "positions", "index"};
    names.insert(names.end(), std::begin(kProperties), std::end(kProperties));
    CHECK(f.names() == names);
    const auto m = int64_t(ids->size());
    const NpyArray num = f.array("num_atoms", true), z = f.array("charges", true), x = f.array("positions"),
                   index = f.array("index", true);
    CHECK(num.dtype == "<i8");
    CHECK(z.dtype == "<i8");
    CHECK(x.dtype == "<f4");
    CHECK(index.dtype == "<i8");
    REQUIRE(z.shape == std::vector<int64_t>{m, 29});
    REQUIRE(x.shape == std::vector<int64_t>{m, 29, 3});
    REQUIRE(as_ids(index) == *ids);
    for (std::size_t r = 0; r < ids->size(); ++r) {
      const int64_t id = (*ids)[r];
      CAPTURE(split, id);
      all.insert(id);
      MoleculeReadOptions raw;
      raw.centre = false;
      const Molecule want = read_molecules(kOriginal + member_name(id), raw).molecules.at(0);
      REQUIRE(num.data[r] == want.atoms());
      for (std::size_t a = 0; a < 29; ++a) {
        const bool atom = a < std::size_t(want.atoms());
        CHECK(z.data[r * 29 + a] == (atom ? want.atomic_numbers[a] : 0));
        for (std::size_t d = 0; d < 3; ++d)
          CHECK(x.data[3 * (r * 29 + a) + d] == (atom ? double(float(want.positions[3 * a + d])) : 0.0));
      }
      for (const char* p : kProperties) {
        const NpyArray v = f.array(p);
        CHECK(v.dtype == "<f8");
        const auto it = std::find_if(want.properties.begin(), want.properties.end(),
                                     [&](const auto& kv) { return kv.first == p; });
        REQUIRE(it != want.properties.end());
        double expected = 0;
        REQUIRE(parse_xyz_number(it->second, expected));
        CHECK(v.data[r] == expected);
      }
      // Rows also in the shipped EDM test split equal it (same float32 positions).
      const auto at = std::find(shipped_ids.begin(), shipped_ids.end(), id);
      if (at == shipped_ids.end()) continue;
      ++compared_with_shipped;
      const auto sr = std::size_t(at - shipped_ids.begin());
      for (std::size_t k = 0; k < 29; ++k) CHECK(z.data[r * 29 + k] == shipped_z.data[sr * 29 + k]);
      for (std::size_t k = 0; k < 29 * 3; ++k) CHECK(x.data[r * 87 + k] == shipped_x.data[sr * 87 + k]);
    }
  }
  CHECK(compared_with_shipped == 1);  // gdb 5001, the only one of the 20 in the shipped test split
  // Disjoint and complete: 17 distinct ids, none of them excluded.
  CHECK(all.size() == kTrain.size() + kValid.size() + kTest.size());
  for (int64_t e : kExcluded) CHECK(all.count(e) == 0);
  CHECK(all.size() + kExcluded.size() == kIds.size());

  // Literal values: gdb 1's carbon, not centred, and gdb 5005's "7.9254*^-6".
  const NpyArray test_x = NpzFile(dir.file("out/test.npz")).array("positions");
  CHECK(test_x.data[0] == double(float(-0.0126981359)));
  CHECK(test_x.data[1] == double(float(1.0858041578)));
  CHECK(test_x.data[2] == double(float(0.0080009958)));
  const NpyArray train_x = NpzFile(dir.file("out/train.npz")).array("positions");
  CHECK(train_x.data[(8 * 29 + 7) * 3 + 2] == double(float(7.9254e-6)));  // row 8 is gdb 5005, atom 8 its O

  // The molecule reader takes the result like the EDM files.
  const MoleculeSet read = read_molecules(dir.file("out/test.npz"));
  CHECK(read.molecules.size() == kTest.size());
  CHECK_THAT(read.molecules[2].name, Contains("gdb 5004"));

  // Running again replaces the previous result.
  process_qm9_raw(archive, excluded, dir.file("out"), small_options());
  CHECK(dir.listing() == std::set<std::string>{"small.tar.bz2", "excluded.txt", "out"});
}

TEST_CASE("plain and gzip tar archives give the same bytes as bzip2", "[qm9_raw]") {
  TempDir dir("enf_test_qm9_raw");
  const std::string excluded = dir.file("excluded.txt");
  write_excluded(excluded, kExcluded);
  // Member order does not matter: rows follow the gdb ids.
  Members reversed = shipped_members();
  std::reverse(reversed.begin(), reversed.end());
  std::map<std::string, std::string> test_bytes;
  for (const auto& [name, filter, members] :
       {std::tuple{"a.tar.bz2", ARCHIVE_FILTER_BZIP2, shipped_members()},
        std::tuple{"b.tar", ARCHIVE_FILTER_NONE, reversed}, std::tuple{"c.tar.gz", ARCHIVE_FILTER_GZIP, shipped_members()}}) {
    write_tar(dir.file(name), members, filter);
    process_qm9_raw(dir.file(name), excluded, dir.file(std::string("out_") + name), small_options());
    for (const char* split : {"train", "valid", "test"})
      test_bytes[split] += read_file_bytes(dir.file(std::string("out_") + name + "/" + split + ".npz"), "npz") + "|";
  }
  for (const auto& [split, bytes] : test_bytes) {
    const std::string one = bytes.substr(0, bytes.size() / 3);
    CHECK(bytes == one + one + one);
  }
}

TEST_CASE("the QM9 counts refuse a small archive, and errors name the member", "[qm9_raw]") {
  TempDir dir("enf_test_qm9_raw");
  const std::string archive = dir.file("small.tar.bz2"), excluded = dir.file("excluded.txt");
  write_tar(archive, shipped_members(), ARCHIVE_FILTER_BZIP2);
  write_excluded(excluded, kExcluded);
  const std::string out = dir.file("out");
  const std::set<std::string> inputs = {"small.tar.bz2", "excluded.txt"};
  const auto expect_failure = [&](const std::string& archive_path, const std::string& excluded_path,
                                  const Qm9RawOptions& opt, const auto& matcher) {
    CHECK_THROWS_WITH(process_qm9_raw(archive_path, excluded_path, out, opt), matcher);
    CHECK(!fs::exists(out));
  };

  // The production counts.
  expect_failure(archive, excluded, Qm9RawOptions{.log = nullptr},
                 Contains("excluded.txt") && Contains("holds 3 gdb ids; QM9's uncharacterized.txt has 3054"));
  Qm9RawOptions production = {};
  production.excluded = 3;
  production.log = nullptr;
  expect_failure(archive, excluded, production,
                 Contains("small.tar.bz2") && Contains("holds 20 molecules; the QM9 archive has 133885"));
  Qm9RawOptions contiguous = small_options();
  contiguous.contiguous_ids = true;
  expect_failure(archive, excluded, contiguous, Contains("run from 1 to 100004; the QM9 archive's run from 1 to 20"));
  CHECK(dir.listing() == inputs);

  // A malformed member: the error names the archive, the member and the line.
  Members bad = shipped_members();
  bad[4].second.replace(bad[4].second.find("\nC\t"), 3, "\nC\tx");  // gdb 5's carbon gets a bad x
  write_tar(dir.file("bad.tar.bz2"), bad, ARCHIVE_FILTER_BZIP2);
  expect_failure(dir.file("bad.tar.bz2"), excluded, small_options(),
                 Contains("bad.tar.bz2:dsgdb9nsd_000005.xyz") && Contains("line 3"));
  // A member whose line 2 names another molecule.
  bad = shipped_members();
  bad[5].second = original_text(7);
  write_tar(dir.file("bad.tar.bz2"), bad, ARCHIVE_FILTER_BZIP2);
  expect_failure(dir.file("bad.tar.bz2"), excluded, small_options(),
                 Contains("dsgdb9nsd_000006.xyz") && Contains("'gdb 7', expected 'gdb 6'"));
  // An excluded member is never parsed (cormorant never opens it).
  bad = shipped_members();
  bad[2].second = "not xyz";
  write_tar(dir.file("bad.tar.bz2"), bad, ARCHIVE_FILTER_BZIP2);
  CHECK_NOTHROW(process_qm9_raw(dir.file("bad.tar.bz2"), excluded, dir.file("ok"), small_options()));
  fs::remove_all(dir.file("ok"));
  // A member that is no QM9 file, and one twice.
  bad = shipped_members();
  bad.emplace_back("README", "hello");
  write_tar(dir.file("bad.tar.bz2"), bad, ARCHIVE_FILTER_BZIP2);
  expect_failure(dir.file("bad.tar.bz2"), excluded, small_options(), Contains("member 'README' is not a dsgdb9nsd"));
  bad = shipped_members();
  bad.emplace_back("copy/" + member_name(9), original_text(9));
  write_tar(dir.file("bad.tar.bz2"), bad, ARCHIVE_FILTER_BZIP2);
  expect_failure(dir.file("bad.tar.bz2"), excluded, small_options(), Contains("copy/dsgdb9nsd_000009.xyz' appears twice"));

  // Truncated archives (a cut download): bzip2 here is one block, so libarchive
  // fails on opening it; in a plain tar the error names the member it reached.
  const auto cut = [&](const std::string& from, const std::string& to) {
    const std::string whole = read_file_bytes(from, "tar");
    std::ofstream(to, std::ios::binary).write(whole.data(), std::streamsize(whole.size() / 2));
  };
  cut(archive, dir.file("cut.tar.bz2"));
  expect_failure(dir.file("cut.tar.bz2"), excluded, small_options(),
                 Contains("cut.tar.bz2") && Contains("truncated bzip2 input"));
  write_tar(dir.file("whole.tar"), shipped_members(), ARCHIVE_FILTER_NONE);
  cut(dir.file("whole.tar"), dir.file("cut.tar"));
  expect_failure(dir.file("cut.tar"), excluded, small_options(), Contains("cut.tar'") && Contains("member 'dsgdb9nsd_"));
  std::ofstream(dir.file("text.tar.bz2")) << "just some text, not an archive\n";
  expect_failure(dir.file("text.tar.bz2"), excluded, small_options(),
                 Contains("text.tar.bz2") && Contains("cannot open as a tar archive"));
  expect_failure(dir.file("missing.tar.bz2"), excluded, small_options(), Contains("missing.tar.bz2': no such file"));

  // Excluded lists: an id not in the archive, an id twice, a missing list.
  write_excluded(dir.file("ex2.txt"), {3, 5002, 77});
  expect_failure(archive, dir.file("ex2.txt"), small_options(),
                 Contains("small.tar.bz2") && Contains("ex2.txt") && Contains("excluded gdb id 77 is not in the archive"));
  write_excluded(dir.file("ex3.txt"), {3, 5002, 3});
  expect_failure(archive, dir.file("ex3.txt"), small_options(), Contains("ex3.txt': line 6: gdb id 3 is listed twice"));
  expect_failure(archive, dir.file("none.txt"), small_options(), Contains("none.txt"));

  // An output directory holding something else is refused before any work, and kept.
  fs::create_directories(out);
  std::ofstream(dir.file("out/notes.txt")) << "mine";
  CHECK_THROWS_WITH(process_qm9_raw(archive, excluded, out, small_options()),
                    Contains("holds 'notes.txt'") && Contains("give a new or empty directory"));
  CHECK(read_file_bytes(dir.file("out/notes.txt"), "txt") == "mine");
  fs::remove_all(out);

  // Nothing was left behind by any failure: no temporary directories.
  for (const auto& name : dir.listing()) CHECK(name.find(".tmp") == std::string::npos);
}

TEST_CASE("verify_against_shipped_test accepts the shipped split and names a difference", "[qm9_raw]") {
  TempDir dir("enf_test_qm9_raw");
  // The shipped split itself passes.
  const Qm9TestCheck same = verify_against_shipped_test(kShippedTest, kShippedTest);
  CHECK(same.molecules == 13083);
  CHECK(same.max_position_diff == 0);

  // A copy in enf's layout (float64 properties) passes; a changed one fails naming the row.
  const NpzFile s(kShippedTest);
  const auto rebuild = [&](const std::string& path, int64_t swap_row, double shift) {
    const NpyArray n = s.array("num_atoms", true), z = s.array("charges", true), x = s.array("positions"),
                   id = s.array("index", true);
    std::vector<int64_t> ids = as_ids(id), zs(z.data.begin(), z.data.end());
    if (swap_row >= 0) std::swap(ids[std::size_t(swap_row)], ids[std::size_t(swap_row) + 1]);
    std::vector<float> pos(x.data.begin(), x.data.end());
    pos[100 * 87 + 4] += float(shift);
    Members m = {{"num_atoms", npy_bytes(n.shape, as_ids(n), "n")},
                 {"charges", npy_bytes(z.shape, zs, "z")},
                 {"positions", npy_bytes(x.shape, pos, "x")},
                 {"index", npy_bytes(id.shape, ids, "i")}};
    for (const char* p : kProperties) m.emplace_back(p, npy_bytes(s.array(p).shape, s.array(p).data, false, p));
    write_npz(path, m);
  };
  rebuild(dir.file("copy.npz"), -1, 0);
  CHECK(verify_against_shipped_test(dir.file("copy.npz"), kShippedTest).molecules == 13083);
  rebuild(dir.file("moved.npz"), -1, 1e-4);
  CHECK_THROWS_WITH(verify_against_shipped_test(dir.file("moved.npz"), kShippedTest),
                    Contains("moved.npz") && Contains("row 100 (gdb ") && Contains("atom 2 y is"));
  rebuild(dir.file("swapped.npz"), 7, 0);
  CHECK_THROWS_WITH(verify_against_shipped_test(dir.file("swapped.npz"), kShippedTest),
                    Contains("row 7 is gdb") && Contains("the splits differ"));

  // A small archive's test split is not QM9's.
  const std::string archive = dir.file("small.tar"), excluded = dir.file("excluded.txt");
  write_tar(archive, shipped_members(), ARCHIVE_FILTER_NONE);
  write_excluded(excluded, kExcluded);
  process_qm9_raw(archive, excluded, dir.file("out"), small_options());
  CHECK_THROWS_WITH(verify_against_shipped_test(dir.file("out/test.npz"), kShippedTest),
                    Contains("4 molecules, the shipped split has 13083"));
}
