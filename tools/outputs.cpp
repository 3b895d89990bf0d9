#include "tools/outputs.hpp"

#include <filesystem>
#include <system_error>

#include "datasets/file_io.hpp"
#include "datasets/registry.hpp"

namespace enf::cli {

namespace fs = std::filesystem;

namespace {

// Absolute, with the existing part's symbolic links resolved and "." / ".."
// removed: "x.npy", "./x.npy" and "/cwd/sub/../x.npy" compare equal.
fs::path normalized(const std::string& p) {
  std::error_code ec;
  fs::path n = fs::weakly_canonical(fs::absolute(p, ec), ec);
  if (ec) n = fs::absolute(p, ec);
  return n.lexically_normal();
}

// Whether `inner` lies inside the directory `dir` (both normalized).
bool inside(const fs::path& inner, const fs::path& dir) {
  const auto rel = inner.lexically_relative(dir);
  return !rel.empty() && *rel.begin() != "..";
}

// The files an input names: itself, and the file or directory a dataset or
// model name (dw4:test, qm9-pretrained) resolves to, which is as precious.
std::vector<std::string> named_files(const std::string& in) {
  std::vector<std::string> files = {in};
  try {
    if (is_dataset_name(in)) files.push_back(resolve_data(in).path);
    if (const std::string model = resolve_model(in); model != in) files.push_back(model);
  } catch (const std::exception&) {  // not fetched or unknown: the command says so when it reads it
  }
  return files;
}

}  // namespace

void make_output_directory(const std::string& option, const std::string& dir) {
  std::error_code ec;
  if (dir.empty() || fs::is_directory(dir, ec)) return;
  // create_directories fails with "File exists" when a part is a file: say which.
  for (fs::path p = fs::path(dir); !p.empty() && p != p.root_path(); p = p.parent_path())
    if (fs::exists(p, ec) && !fs::is_directory(p, ec))
      throw std::runtime_error("--" + option + " '" + dir + "': '" + p.string() + "' is a file, not a directory");
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("--" + option + " '" + dir + "': cannot create the directory: " + ec.message());
}

void make_parent_directories(const std::string& option, const std::string& path) {
  make_output_directory(option, fs::path(path).parent_path().string());
}

void check_checkpoint_output(const std::string& out, const std::string& input_option, const std::string& input,
                             bool force) {
  if (same_path(out, input))
    throw UsageError("--out '" + out + "' is the --" + input_option + " directory; refusing to overwrite it");
  if (fs::exists(fs::path(out) / "model.json") && !force)
    throw UsageError("--out '" + out + "' holds a checkpoint; give --force to replace it");
  make_parent_directories("out", out);
}

OptionSpec force_option() { return {"force", "", "", "overwrite output files that exist"}; }

bool same_path(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) {
    const bool eq = fs::equivalent(a, b, ec);
    if (!ec) return eq;
  }
  return normalized(a) == normalized(b);
}

void check_output(const std::string& option, const std::string& path, const std::vector<std::string>& inputs,
                  bool force, const std::string& kind) {
  std::error_code ec;
  const bool exists = fs::exists(path, ec);
  for (const std::string& named : inputs) {
    if (named.empty()) continue;
    for (const std::string& in : named_files(named)) {
      if (same_path(path, in))
        throw UsageError("--" + option + " '" + path + "' is also an input; refusing to overwrite it");
      if (exists && fs::is_directory(in, ec) && inside(normalized(path), normalized(in)))
        throw UsageError("--" + option + " '" + path + "' is a file of the input '" + in + "'; refusing to overwrite it");
    }
  }
  if (exists && !force) throw UsageError("--" + option + " '" + path + "' exists; give --force to overwrite it");
  make_parent_directories(option, path);
  check_writable(path, kind);
}

}  // namespace enf::cli
