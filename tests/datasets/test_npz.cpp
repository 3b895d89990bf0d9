// .npz archives: the deflate-compressed EDM/cormorant QM9 split, and errors.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

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
