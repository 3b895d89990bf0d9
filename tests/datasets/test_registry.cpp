// Datasets and models by name: NAME:PART resolves to the shipped files (or
// the data directory's, which win), with the part's rows; errors say what to
// fetch.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "datasets/checksum.hpp"
#include "datasets/molecule_io.hpp"
#include "datasets/npy.hpp"
#include "datasets/particles.hpp"
#include "datasets/registry.hpp"

using namespace enf;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {
// An empty data directory for the test (nothing fetched), restored after.
struct ScopedDataDir {
  fs::path dir;
  std::string old;
  bool had_old = false;
  ScopedDataDir() {
    dir = fs::temp_directory_path() / ("enf_registry_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    if (const char* e = std::getenv("ENF_DATA")) old = e, had_old = true;
    ::setenv("ENF_DATA", dir.c_str(), 1);
  }
  ~ScopedDataDir() {
    if (had_old) ::setenv("ENF_DATA", old.c_str(), 1);
    else ::unsetenv("ENF_DATA");
    fs::remove_all(dir);
  }
};
}  // namespace

TEST_CASE("dataset names resolve to the shipped files", "[registry]") {
  ScopedDataDir data;
  const ResolvedData t = resolve_data("dw4:test");
  CHECK(fs::equivalent(t.path, "datasets/data/efm_splits/test_split_DW4.npy"));
  CHECK(t.first == 0);
  CHECK(t.count == -1);
  CHECK(fs::equivalent(resolve_data("lj13:val").path, "datasets/data/efm_splits/val_split_LJ13-1000.npy"));
  // LJ55's default parts are enf's own generated splits; EFM's are efm-*.
  CHECK(fs::equivalent(resolve_data("lj55:train").path, "datasets/data/lj55/train.npy"));
  CHECK(fs::equivalent(resolve_data("lj55:val").path, "datasets/data/lj55/val.npy"));
  CHECK(fs::equivalent(resolve_data("lj55:test").path, "datasets/data/lj55/test.npy"));
  // QM9's EDM split says "valid", the particle splits "val": both spellings work.
  CHECK(fs::equivalent(resolve_data("qm9:test").path, "datasets/data/qm9/edm_cormorant_npz/test.npz"));
  const ResolvedData v = resolve_data("qm9-positional:valid");
  CHECK(v.first == 1313);
  CHECK(v.count == 250);
  // A path is a path, even with a colon in it.
  CHECK(resolve_data("runs/x:y.npy").path == "runs/x:y.npy");
  CHECK(resolve_data("unknown:test").path == "unknown:test");
  CHECK_FALSE(is_dataset_name("datasets/data/efm_splits/test_split_DW4.npy"));
  CHECK(is_dataset_name("dw4:test"));
}

TEST_CASE("unknown parts and unfetched data are errors that say what to do", "[registry]") {
  ScopedDataDir data;
  REQUIRE_THROWS_WITH(resolve_data("dw4:bogus"), Contains("dw4:train") && Contains("dw4:test"));
  REQUIRE_THROWS_WITH(resolve_data("qm9:train"), Contains("enf data fetch qm9"));
  REQUIRE_THROWS_WITH(resolve_data("lj13:train"), Contains("enf data fetch lj13"));
  REQUIRE_THROWS_WITH(resolve_data("lj55:efm-test"), Contains("enf data fetch lj55"));
  REQUIRE_THROWS_WITH(resolve_data("lj55:bogus"), Contains("lj55:train") && Contains("lj55:efm-train"));
  REQUIRE_THROWS_WITH(dataset("nope"), Contains("dw4") && Contains("qm9") && Contains("lj55"));
  REQUIRE_THROWS_WITH(read_molecules("qm9-positional:train"), Contains("positions only"));
}

TEST_CASE("the data directory (ENF_DATA) wins over the shipped copy", "[registry]") {
  ScopedDataDir data;
  fs::create_directories(data.dir / "efm_splits");
  const std::string mine = (data.dir / "efm_splits" / "test_split_DW4.npy").string();
  write_npy(mine, {3, 8}, std::vector<double>(24, 0.5));
  CHECK(resolve_data("dw4:test").path == mine);
  CHECK(load_structures("dw4:test", particle_system("dw4")).rows == 3);
  // A file fetched into the data directory makes its part available.
  write_npy((data.dir / "efm_splits" / "train_split_LJ13-1000.npy").string(), {2, 39}, std::vector<double>(78, 0.1));
  CHECK(load_structures("lj13:train", particle_system("lj13")).rows == 2);
}

TEST_CASE("a part's rows are the rows loaders see", "[registry]") {
  ScopedDataDir data;
  const ParticleSystem dw4 = particle_system("dw4");
  const Structures all = load_structures("datasets/data/efm_splits/test_split_DW4.npy", dw4, 5, 10);
  const Structures named = load_structures("dw4:test", dw4, 5, 10);
  REQUIRE(named.rows == 10);
  CHECK(named.x == all.x);

  // qm9-positional:val is the 250 molecules of 19 atoms after the first 1313.
  const ParticleSystem q = particle_system("qm9_positional");
  const Structures val = load_structures("qm9-positional:val", q);
  CHECK(val.rows == 250);
  const Structures direct = load_structures("datasets/data/qm9/edm_cormorant_npz/test.npz", q, 1313, 250);
  CHECK(val.x == direct.x);
  // Rows requested inside a part stay inside it.
  CHECK(load_structures("qm9-positional:val", q, 240, 100).rows == 10);
  REQUIRE_THROWS_WITH(load_structures("qm9-positional:val", q, 251, 1), Contains("out of range"));
  // The default splits come from the same names.
  const SplitSpec lj_train = shipped_split(particle_system("lj13"), "train");
  CHECK(lj_train.count == 9000);
  CHECK(fs::equivalent(lj_train.path, "datasets/data/efm_splits/val_split_LJ13-1000.npy"));
  // LJ55's default splits are its shipped parts, whole.
  for (const std::string split : {"train", "val", "test"}) {
    const SplitSpec s = shipped_split(particle_system("lj55"), split);
    CHECK(fs::equivalent(s.path, "datasets/data/lj55/" + split + ".npy"));
    CHECK(s.first == 0);
    CHECK(s.count == -1);
    CHECK(load_structures(s.path, particle_system("lj55"), s.first, s.count).rows == 1000);
  }

  CHECK(read_molecules("qm9:test").molecules.size() == 13083);
}

TEST_CASE("models by name", "[registry]") {
  const std::string dir = resolve_model("qm9-pretrained");
  CHECK(fs::exists(fs::path(dir) / "flow.safetensors"));
  CHECK(fs::exists(fs::path(dir) / "dequantizer.safetensors"));
  CHECK(resolve_model("some/dir") == "some/dir");
}

TEST_CASE("the registry's checksums are the shipped files' own", "[registry]") {
  ScopedDataDir data;
  int shipped = 0;
  for (const Dataset& d : datasets())
    for (const DataFile& f : d.files) {
      if (!f.shipped) continue;
      ++shipped;
      const std::string path = find_data_file(f.path);
      INFO(d.name << ": " << f.path);
      REQUIRE(fs::equivalent(path, "datasets/data/" + f.path));
      CHECK(sha256_file(path) == f.sha256);
      CHECK(static_cast<long long>(fs::file_size(path)) == f.size);
      if (!f.git_blob_sha1.empty()) CHECK(git_blob_sha1_file(path) == f.git_blob_sha1);
    }
  CHECK(shipped == 10);
  // Every part of every dataset names one of its files (or, for the derived
  // qm9-positional, a file of qm9).
  for (const Dataset& d : datasets())
    for (const DataPart& p : d.parts) {
      bool found = false;
      for (const Dataset& e : datasets())
        for (const DataFile& f : e.files) found = found || f.path == p.file;
      const bool made_by_processing = d.processing == "qm9-raw";
      CHECK((found || made_by_processing));
    }
}
