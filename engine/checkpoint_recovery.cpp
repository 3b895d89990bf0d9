// Finding and repairing what a killed save_checkpoint left behind (see
// checkpoint.hpp): a run killed at any instant must resume, and its
// leftovers must not pile up.
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include "datasets/file_io.hpp"
#include "engine/checkpoint.hpp"

namespace enf {

namespace fs = std::filesystem;

namespace {

bool is_pid(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

// How new a complete leftover is; the training step decides (model.json
// times can tie within a clock tick), then the time, then a .tmp (written
// after the .old of the same save) wins.
using Age = std::tuple<long, fs::file_time_type, bool>;

// "run/last/" names run/last too.
fs::path normal(const std::string& dir) {
  const fs::path p(dir);
  return p.has_filename() ? p : p.parent_path();
}

}  // namespace

std::vector<std::string> checkpoint_debris(const std::string& dir) {
  const fs::path target = normal(dir);
  const std::string base = target.filename().string();
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(parent_directory(target.string()), ec)) {
    const std::string name = e.path().filename().string();
    for (const std::string tag : {".tmp-", ".old-"})
      if (name.rfind(base + tag, 0) == 0 && is_pid(name.substr(base.size() + tag.size())))
        found.push_back((target.parent_path() / name).string());
  }
  return found;
}

std::string checkpoint_location(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) return dir;
  std::string best;
  Age best_age;
  for (const std::string& d : checkpoint_debris(dir)) {
    Age age;
    try {  // complete = loads, every file matching the SHA-256 model.json records
      const Checkpoint c = load_checkpoint_at(d);
      const auto& st = c.extra.value("training_state", nlohmann::json::object());
      age = {st.value("global_step", -1L), fs::last_write_time(fs::path(d) / "model.json"),
             fs::path(d).filename().string().rfind(normal(dir).filename().string() + ".tmp-", 0) == 0};
    } catch (const std::exception&) {
      continue;
    }
    if (best.empty() || age > best_age) best = d, best_age = age;
  }
  return best;
}

bool recover_checkpoint(const std::string& dir) {
  const std::string found = checkpoint_location(dir);
  std::error_code ec;
  const fs::path target = normal(dir);
  if (!found.empty() && found != dir) {
    fs::rename(found, target);
    sync_directory(parent_directory(target.string()));
  }
  for (const std::string& d : checkpoint_debris(dir)) fs::remove_all(d, ec);
  return fs::exists(dir, ec);
}

}  // namespace enf
