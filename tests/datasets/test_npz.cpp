// .npz archives: the deflate-compressed EDM/cormorant QM9 split, and errors.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "datasets/npy.hpp"
#include "datasets/npz.hpp"
#include "support/fixtures.hpp"

using namespace enf;

TEST_CASE("the compressed QM9 test split reads member by member", "[npz]") {
  const NpzFile f("datasets/data/qm9/edm_cormorant_npz/test.npz");
  CHECK(f.contains("positions"));
  CHECK(f.contains("charges"));
  CHECK(f.contains("num_atoms"));
  const NpyArray pos = f.array("positions");
  REQUIRE(pos.shape == std::vector<int64_t>{13083, 29, 3});
  CHECK(pos.dtype == "<f4");
  // Row 3 is the first molecule of the QM9 fixtures (gdb 31, 9 atoms), whose
  // positions they record as stored in test.npz.
  const auto& mol = test::fixture("egnn_qm9.json")["molecules"][0];
  REQUIRE(mol["test_npz_index"] == 3);
  const auto expected = test::flat(mol["positions_angstrom_float32"]);
  const std::vector<double> row3(pos.data.begin() + 3 * 29 * 3, pos.data.begin() + 3 * 29 * 3 + expected.size());
  CHECK(row3 == expected);
  // Integer members are refused by the float reader with a clear message.
  CHECK_THROWS_WITH(f.array("charges"), Catch::Contains("charges") && Catch::Contains("<i8"));
  CHECK_THROWS_WITH(f.array("nope"), Catch::Contains("no member 'nope'") && Catch::Contains("positions"));
}

TEST_CASE("broken archives give errors naming the file", "[npz]") {
  const auto dir = std::filesystem::temp_directory_path() / ("enf_test_npz_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string bad = (dir / "bad.npz").string();
  std::ofstream(bad) << "this is not a zip archive at all, just text that is long enough";
  CHECK_THROWS_WITH(NpzFile(bad), Catch::Contains("bad.npz") && Catch::Contains("not a ZIP archive"));
  std::ofstream(bad) << "x";
  CHECK_THROWS_WITH(NpzFile(bad), Catch::Contains("too short"));
  CHECK_THROWS_WITH(NpzFile((dir / "missing.npz").string()), Catch::Contains("missing.npz"));
  std::filesystem::remove_all(dir);
}

namespace {
// An archive written by write_npz (stored members), as bytes to corrupt.
std::string small_archive(const std::filesystem::path& dir) {
  const std::string path = (dir / "small.npz").string();
  write_npz(path, {{"x", npy_bytes({2, 3}, std::vector<double>{1, 2, 3, 4, 5, 6}, false, "x")},
                   {"y", npy_bytes({1}, std::vector<double>{7}, false, "y")}});
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void put32(std::string& b, std::size_t at, std::uint32_t v) {
  for (int k = 0; k < 4; ++k) b[at + k] = char((v >> (8 * k)) & 0xff);
}
std::size_t central(const std::string& b, int entry) {  // offset of the entry's central directory record
  std::size_t at = b.rfind(std::string("PK\x01\x02", 4));
  for (int e = 1; e > entry; --e) at = b.rfind(std::string("PK\x01\x02", 4), at - 1);
  return at;
}
std::string write(const std::filesystem::path& dir, const std::string& bytes) {
  const std::string path = (dir / "mutant.npz").string();
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}
}  // namespace

// Issue 17: sizes and flags read from the directory are checked before any
// allocation, and every member's CRC-32 is verified.
TEST_CASE("corrupt and hostile archives are refused before decoding", "[npz]") {
  const auto dir = std::filesystem::temp_directory_path() / ("enf_test_npz_h_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string good = small_archive(dir);
  REQUIRE(NpzFile(write(dir, good)).array("x").data == std::vector<double>{1, 2, 3, 4, 5, 6});

  SECTION("a flipped data byte: CRC-32 mismatch naming the member") {
    std::string b = good;
    const std::size_t data = b.find("\x93NUMPY") + 130;  // inside x's numbers
    b[data] ^= 0x40;
    const NpzFile f(write(dir, b));  // the directory is intact
    CHECK_THROWS_WITH(f.array("x"), Catch::Contains("member 'x'") && Catch::Contains("CRC-32"));
    CHECK(f.array("y").data == std::vector<double>{7});  // the other member is fine
  }
  SECTION("the encryption flag") {
    std::string b = good;
    b[central(b, 0) + 8] |= 1;
    CHECK_THROWS_WITH(NpzFile(write(dir, b)), Catch::Contains("encrypted"));
  }
  SECTION("a stored member whose sizes disagree") {
    std::string b = good;
    put32(b, central(b, 0) + 24, 4000000000u);
    CHECK_THROWS_WITH(NpzFile(write(dir, b)), Catch::Contains("member 'x.npy'") && Catch::Contains("4000000000"));
  }
  SECTION("a deflated member claiming 4 GB from a few bytes: refused, nothing allocated") {
    std::string b = good;
    b[central(b, 0) + 10] = 8;  // method: deflate
    put32(b, central(b, 0) + 24, 0xfffffff0u);
    CHECK_THROWS_WITH(NpzFile(write(dir, b)), Catch::Contains("more than deflate can produce"));
  }
  SECTION("two members of the same name") {
    std::string b = good;
    const std::size_t second = central(b, 1);
    b[second + 46] = 'x';  // "y.npy" -> "x.npy" in the directory
    CHECK_THROWS_WITH(NpzFile(write(dir, b)), Catch::Contains("appears twice"));
  }
  std::filesystem::remove_all(dir);
}

// Found by tools/fuzz.sh: a local-header offset near 2^32 wrapped around in
// 32-bit arithmetic and the reader read far outside the file.
TEST_CASE("fuzzer finding: a local header offset that wraps is refused", "[npz]") {
  CHECK_THROWS_AS(NpzFile("tests/data/fuzz_regressions/npz_local_header_offset_wraps.npz"), std::runtime_error);
}
