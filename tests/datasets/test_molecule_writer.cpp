// MoleculeWriter (datasets/molecule_writer.hpp): records reach "<path>.part"
// one at a time, whole; commit() renames; an uncommitted writer keeps the
// finished records and removes an empty .part.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "datasets/molecule_io.hpp"
#include "datasets/molecule_metrics.hpp"
#include "datasets/molecule_writer.hpp"
#include "support/temp_dir.hpp"

using namespace enf;
using enf::test::TempDir;
namespace fs = std::filesystem;

namespace {


std::vector<Molecule> some_molecules(int count) {
  MoleculeReadOptions ro;
  ro.count = count;
  std::vector<Molecule> mols = read_molecules("datasets/data/qm9/qm9_first500.sdf", ro).molecules;
  for (Molecule& m : mols) annotate_molecule(m);
  return mols;
}

// The records of a .part file, read as the format it will be renamed to.
long records_in(const fs::path& part, const std::string& ext, const fs::path& dir) {
  const fs::path copy = dir / ("copy." + ext);
  fs::copy_file(part, copy, fs::copy_options::overwrite_existing);
  if (fs::file_size(copy) == 0) return 0;
  return long(read_molecules(copy.string()).molecules.size());
}

}  // namespace

TEST_CASE("Streamed formats hold whole records after every write, and commit renames", "[molecule_writer]") {
  TempDir dir("enf_writer");
  const std::vector<Molecule> mols = some_molecules(4);
  for (const std::string ext : {"sdf", "xyz", "mol2"}) {
    const fs::path out = dir.path / ("out." + ext);
    MoleculeWriter w(out.string());
    CHECK(w.streamed());
    CHECK(fs::exists(w.part_path()));
    CHECK_FALSE(fs::exists(out));
    for (std::size_t k = 0; k < mols.size(); ++k) {
      w.write(mols[k]);
      CHECK(records_in(w.part_path(), ext, dir.path) == long(k + 1));
    }
    const std::string part = w.part_path();
    w.commit();
    CHECK_FALSE(fs::exists(part));
    const auto back = read_molecules(out.string()).molecules;
    REQUIRE(back.size() == mols.size());
    for (std::size_t k = 0; k < mols.size(); ++k) CHECK(back[k].atomic_numbers == mols[k].atomic_numbers);
    CHECK_THROWS(w.write(mols[0]));  // closed
  }
}

TEST_CASE("An uncommitted writer keeps finished records and removes an empty .part", "[molecule_writer]") {
  TempDir dir("enf_writer");
  const std::vector<Molecule> mols = some_molecules(2);
  std::string kept, removed;
  {
    MoleculeWriter w((dir.path / "kept.sdf").string());
    w.write(mols[0]);
    w.write(mols[1]);
    kept = w.part_path();
  }
  {
    MoleculeWriter w((dir.path / "empty.sdf").string());
    removed = w.part_path();
  }
  CHECK(fs::exists(kept));
  CHECK(records_in(kept, "sdf", dir.path) == 2);
  CHECK_FALSE(fs::exists(removed));
  CHECK_FALSE(fs::exists(dir.path / "kept.sdf"));
}

TEST_CASE("Whole-document formats are written at commit", "[molecule_writer]") {
  TempDir dir("enf_writer");
  const std::vector<Molecule> mols = some_molecules(2);
  const fs::path out = dir.path / "pictures.svg";
  MoleculeWriter w(out.string());
  CHECK_FALSE(w.streamed());
  w.write(mols[0]);
  w.write(mols[1]);
  CHECK(fs::file_size(w.part_path()) == 0);
  w.commit();
  std::ifstream in(out);
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str().find("<svg") != std::string::npos);
}
