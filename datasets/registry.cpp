#include "datasets/registry.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace fs = std::filesystem;

#ifndef ENF_SOURCE_DATASETS_DIR
#define ENF_SOURCE_DATASETS_DIR ""
#endif

namespace enf {

namespace {

// The EFM splits as committed in jarridrb/DEM (datasets/data/PROVENANCE.md).
// The SHA-256 is of the shipped copies; for the files too large for the
// repository (and not downloadable here) the repository's git blob id is what
// a download is checked against.
const std::string kDem = "https://raw.githubusercontent.com/jarridrb/DEM/26c930b8c0a37c53ce4586b781df04e22825635e/data/";

DataFile dem_file(const std::string& name, const std::string& sha256, const std::string& blob, long long size,
                  bool shipped) {
  return {"efm_splits/" + name, kDem + name, sha256, blob, size, shipped};
}

std::vector<Dataset> make_datasets() {
  const std::string efm = "EFM splits (Klein, Kraemer, Noe 2023) as committed in jarridrb/DEM";
  std::vector<Dataset> d;
  d.push_back({"dw4",
               "DW4: 4 particles in 2-D, double-well pair potential (the E-NF paper's DW4)",
               efm,
               "MIT",
               {dem_file("train_split_DW4.npy", "03e4cd085b52bf021cebc7f5f6d05aec0cdccff890a476b36595c2e343b1c58a",
                         "806e6d2e934ccbab201be6a909869a5a3385a95f", 3200128, true),
                dem_file("val_split_DW4.npy", "05683af2442aea8c358d35482a1c6877fc53796e46c9f5335fa92aa4f3670de6",
                         "b3cb410edfc545cec6d67ebffa5f66eaa5dc3984", 320128, true),
                dem_file("test_split_DW4.npy", "ef4466793b3502b2fe405aad22d3ae43b34827971594c5bab28684771d828244",
                         "ca8265e19574e4dd959578bb9262e6e9e48a6a21", 320128, true)},
               {{"train", "efm_splits/train_split_DW4.npy", 0, -1, "100 000 structures"},
                {"val", "efm_splits/val_split_DW4.npy", 0, -1, "10 000 structures"},
                {"test", "efm_splits/test_split_DW4.npy", 0, -1, "10 000 structures"}},
               ""});
  d.push_back({"lj13",
               "LJ13: 13 Lennard-Jones particles in 3-D with a harmonic centre term",
               efm,
               "MIT",
               {dem_file("train_split_LJ13-1000.npy", "", "df022a6e23730f22a35f5f98b0c6af25f57ef1b5", 15600128, false),
                dem_file("val_split_LJ13-1000.npy", "77a051cd50b16bec41e8fa056f6f77e21804d530a7461369f3a3ee985a576eb7",
                         "61fc6d7326188369f63ba0d096927d963dc5e70a", 1560128, true),
                dem_file("test_split_LJ13-1000.npy", "c5064a56282e96441f1ff2f1babb13c241a99cd1077aee3667951d06055a785b",
                         "ffbb78ae0b979694d9ef9a3918eb20779d81d1eb", 1560128, true)},
               {{"train", "efm_splits/train_split_LJ13-1000.npy", 0, -1,
                 "100 000 structures (fetched; enf train --system lj13 trains on val[0:9000] by default)"},
                {"val", "efm_splits/val_split_LJ13-1000.npy", 0, -1, "10 000 structures"},
                {"test", "efm_splits/test_split_LJ13-1000.npy", 0, -1, "10 000 structures"}},
               ""});
  d.push_back({"lj55",
               "LJ55: 55 Lennard-Jones particles in 3-D (EFM's LJ55 splits)",
               efm,
               "MIT",
               {dem_file("train_split_LJ55-1000-part1.npy", "", "5ebdd01738be2bb379fe0799739b35bde1be933b", -1, false),
                dem_file("val_split_LJ55-1000-part1.npy", "", "4027d537c98f9fcb70578f413e52fd199de056f3", -1, false),
                dem_file("test_split_LJ55-1000-part1.npy", "", "7870446ffa915782afab69b2ffc67e699c292cb0", -1, false)},
               {{"train", "efm_splits/train_split_LJ55-1000-part1.npy", 0, -1, "EFM training split (fetched)"},
                {"val", "efm_splits/val_split_LJ55-1000-part1.npy", 0, -1, "EFM validation split (fetched)"},
                {"test", "efm_splits/test_split_LJ55-1000-part1.npy", 0, -1, "EFM test split (fetched)"}},
               ""});
  const std::string figshare = "https://springernature.figshare.com/ndownloader/files/";
  d.push_back({"qm9",
               "QM9 molecules (H C N O F, up to 29 atoms) split as EDM/cormorant do: 100 000 / 17 748 / 13 083",
               "Ramakrishnan et al., Sci. Data 1, 140022 (2014), figshare collection 978904; EDM/cormorant processing",
               "CC0",
               {{"qm9/raw/dsgdb9nsd.xyz.tar.bz2", figshare + "3195389", "", "", -1, false},
                {"qm9/raw/uncharacterized.txt", figshare + "3195404",
                 "758869302722175260ba8a2b017ca7ae7c57d81593aaf018b17684431109f89d", "", 486755, true},
                {"qm9/edm_cormorant_npz/test.npz", "", "1349af310dfe81b01726b6193eae778a5e731f311ce1b06c3aadefc3a81f1fb0", "",
                 3491143, true}},
               {{"train", "qm9/edm_cormorant_npz/train.npz", 0, -1, "100 000 molecules (fetched)"},
                {"valid", "qm9/edm_cormorant_npz/valid.npz", 0, -1, "17 748 molecules (fetched)"},
                {"test", "qm9/edm_cormorant_npz/test.npz", 0, -1, "13 083 molecules"}},
               "qm9-raw"});
  // The E-NF paper's positions-only QM9 task: molecules of 19 atoms (n = 19,
  // D = 3). Only the test split ships, so its 1813 such molecules are split
  // 1313 / 250 / 250 in file order; with the full QM9 fetched, qm9:train
  // (and valid, test) can be given to --system qm9_positional directly.
  const std::string test_npz = "qm9/edm_cormorant_npz/test.npz";
  d.push_back({"qm9-positional",
               "QM9-positional: positions of the 19-atom molecules of the shipped QM9 test split",
               "derived from qm9:test (the EDM/cormorant test split)",
               "CC0",
               {},
               {{"train", test_npz, 0, 1313, "1313 molecules of 19 atoms"},
                {"val", test_npz, 1313, 250, "250 molecules of 19 atoms"},
                {"test", test_npz, 1563, 250, "250 molecules of 19 atoms"}},
               ""});
  return d;
}

bool is_dir(const std::string& p) {
  std::error_code ec;
  return !p.empty() && fs::is_directory(p, ec);
}

// Accepts "val" for "valid" and the reverse: QM9's EDM split says valid, the
// particle splits val.
const DataPart* find_part(const Dataset& d, const std::string& part) {
  for (const auto& p : d.parts)
    if (p.name == part) return &p;
  for (const auto& p : d.parts)
    if ((part == "val" && p.name == "valid") || (part == "valid" && p.name == "val")) return &p;
  return nullptr;
}

}  // namespace

const std::vector<Dataset>& datasets() {
  static const std::vector<Dataset> d = make_datasets();
  return d;
}

const Dataset& dataset(const std::string& name) {
  std::string names;
  for (const auto& d : datasets()) {
    if (d.name == name) return d;
    names += (names.empty() ? "" : ", ") + d.name;
  }
  throw std::invalid_argument("unknown dataset '" + name + "' (enf knows " + names + "; see 'enf data list')");
}

const std::vector<NamedModel>& named_models() {
  static const std::vector<NamedModel> m = {
      {"qm9-pretrained", "the official pretrained E-NF QM9 model (vgsatorras/en_flows), in the reference's format",
       "en_flows_qm9_pretrained"}};
  return m;
}

std::string shipped_dir() {
  static const std::string dir = [] {
    // Installed: <prefix>/bin/enf and <prefix>/share/enf.
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
      const fs::path share = exe.parent_path().parent_path() / "share" / "enf";
      if (is_dir((share / "data").string())) return share.string();
    }
    // A build tree: the source tree's datasets/ (its path is compiled in).
    const std::string source = ENF_SOURCE_DATASETS_DIR;
    if (is_dir(source + "/data")) return source;
    return std::string();
  }();
  return dir;
}

std::string data_dir() {
  if (const char* e = std::getenv("ENF_DATA"); e && *e) return e;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/enf";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.local/share/enf";
  return ".enf-data";
}

std::string find_data_file(const std::string& relative_path) {
  std::error_code ec;
  for (const std::string& root : {data_dir(), shipped_dir().empty() ? std::string() : shipped_dir() + "/data"}) {
    if (root.empty()) continue;
    const fs::path p = fs::path(root) / relative_path;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return "";
}

bool is_dataset_name(const std::string& spec) {
  const auto colon = spec.find(':');
  if (colon == std::string::npos || spec.find('/') != std::string::npos) return false;
  std::error_code ec;
  if (fs::exists(spec, ec)) return false;
  const std::string name = spec.substr(0, colon);
  for (const auto& d : datasets())
    if (d.name == name) return true;
  return false;
}

ResolvedData resolve_data(const std::string& spec) {
  if (!is_dataset_name(spec)) return {spec, 0, -1, spec};
  const auto colon = spec.find(':');
  const Dataset& d = dataset(spec.substr(0, colon));
  const std::string part = spec.substr(colon + 1);
  const DataPart* p = find_part(d, part);
  if (!p) {
    std::string parts;
    for (const auto& q : d.parts) parts += (parts.empty() ? "" : ", ") + d.name + ":" + q.name;
    throw std::runtime_error("dataset " + d.name + " has no part '" + part + "' (use " + parts + ")");
  }
  const std::string path = find_data_file(p->file);
  if (path.empty())
    throw std::runtime_error(spec + " is not here yet (" + p->file + " in neither " + data_dir() + " nor " +
                             (shipped_dir().empty() ? std::string("a shipped data directory") : shipped_dir() + "/data") +
                             "): run 'enf data fetch " + d.name + "'");
  return {path, p->first, p->count, spec};
}

std::string resolve_model(const std::string& name_or_path) {
  for (const auto& m : named_models())
    if (m.name == name_or_path) {
      std::error_code ec;
      if (fs::exists(name_or_path, ec)) return name_or_path;  // a directory of that name wins
      if (shipped_dir().empty())
        throw std::runtime_error("model " + m.name + ": enf's shipped models are not found (is enf installed?)");
      return shipped_dir() + "/models/" + m.path;
    }
  return name_or_path;
}

}  // namespace enf
