// The datasets and models enf knows by name, and where it finds them.
//
// Two places hold data:
//   - the shipped directory: what comes with enf (the source tree's datasets/,
//     or <prefix>/share/enf once installed), holding data/ and models/;
//   - the data directory: what `enf data fetch` downloads (ENF_DATA, else
//     $XDG_DATA_HOME/enf, else ~/.local/share/enf).
// A file is looked up in the data directory first (so ENF_DATA overrides the
// shipped copy), then in the shipped directory, by the same relative path.
//
// Names: "NAME:PART" (dw4:test, qm9:train, qm9-positional:val) wherever a
// command takes a data file; a plain path is used as it is.
#pragma once

#include <string>
#include <vector>

namespace enf {

// One file of a dataset, as its source publishes it.
struct DataFile {
  std::string path;  // relative to the data root: "efm_splits/test_split_DW4.npy"
  std::string url;   // the official source
  // What verifies a download: the SHA-256 where this file could be read when
  // enf was written, else the git blob id the source repository lists for it;
  // none for archives verified by what they produce (QM9, see qm9_raw.hpp).
  std::string sha256, git_blob_sha1;
  long long size = -1;   // bytes, -1 when not known
  bool shipped = false;  // comes with enf
  // For a file without a URL: how it was made ("" for files `enf data
  // fetch` makes by processing a download).
  std::string made_by = {};
};

// A named part ("train", "val", "test") of a dataset: rows [first,
// first + count) of one file (count < 0: to the end). For qm9-positional the
// rows count the 19-atom molecules of the file.
struct DataPart {
  std::string name;
  std::string file;  // a DataFile::path of the same dataset
  long first = 0, count = -1;
  std::string description;
};

struct Dataset {
  std::string name, description, source, licence;
  std::vector<DataFile> files;  // what `enf data fetch` downloads (or finds shipped)
  std::vector<DataPart> parts;
  // What fetch does after downloading: "" (the files are what enf reads) or
  // "qm9-raw" (the QM9 archive is processed into the EDM splits).
  std::string processing;
};

const std::vector<Dataset>& datasets();
// Throws std::invalid_argument naming the known datasets.
const Dataset& dataset(const std::string& name);

// Models shipped with enf, by name ("qm9-pretrained").
struct NamedModel {
  std::string name, description, path;  // path relative to the shipped models/ directory
  // An enf checkpoint every command loads by its name (else the reference's
  // format, which enf import converts).
  bool checkpoint = false;
};
// The conformer model `enf conformers` uses when no --model is given.
inline constexpr const char* kDefaultConformerModel = "qm9-conformers";
const std::vector<NamedModel>& named_models();

// Where the shipped data and models are: <dir>/data and <dir>/models. The
// directory beside the running executable (<prefix>/bin/enf ->
// <prefix>/share/enf) when enf is installed, else the source tree's datasets/.
std::string shipped_dir();
// Where fetched data go and are looked for first: ENF_DATA, else
// $XDG_DATA_HOME/enf, else $HOME/.local/share/enf.
std::string data_dir();

// The file at a data-root-relative path: the data directory's copy, else the
// shipped one, else "" (not present).
std::string find_data_file(const std::string& relative_path);

// A dataset name with its part, resolved to a file and rows.
struct ResolvedData {
  std::string path;
  long first = 0, count = -1;
  std::string label;  // "dw4:test" for messages
};
// True when spec has the form NAME:PART with a known dataset NAME and is not
// an existing file.
bool is_dataset_name(const std::string& spec);
// Resolves NAME:PART (std::runtime_error when the part is unknown, or not
// fetched: the message says the `enf data fetch` command); any other spec is
// returned as a path with all rows.
ResolvedData resolve_data(const std::string& spec);
// A shipped model's directory by name, or the argument itself when it is not
// a model name.
std::string resolve_model(const std::string& name_or_path);

}  // namespace enf
