// enf data list: every dataset and model enf knows by name, where it is, and
// where it comes from.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datasets/registry.hpp"
#include "tools/commands.hpp"
#include "tools/options.hpp"

namespace enf::cli {

namespace {

const CommandSpec kListSpec{
    "data list",
    "List the datasets and models enf knows by name, whether each is shipped or fetched, with its source and checksum.",
    "A dataset part is named NAME:PART wherever a command takes a data file:\n"
    "  enf score --model M --input dw4:test      enf train --system qm9 --data qm9:train\n"
    "Shipped files come with enf; the others are downloaded by 'enf data fetch NAME'\n"
    "into the data directory (ENF_DATA, else $XDG_DATA_HOME/enf, else\n"
    "~/.local/share/enf), where enf looks first. A checksum is the file's SHA-256,\n"
    "or, for files enf could not read when it was written, the git blob id the\n"
    "source repository lists; QM9's raw archive is checked by what it produces\n"
    "(the shipped test split must come out identical).",
    {
        {"format", "text|json", "text", "output format"},
    }};

std::string human_size(long long bytes) {
  if (bytes < 0) return "size unknown";
  char b[32];
  if (bytes >= 1000000) std::snprintf(b, sizeof b, "%.1f MB", double(bytes) / 1e6);
  else std::snprintf(b, sizeof b, "%.0f kB", double(bytes) / 1e3);
  return b;
}

// "shipped", "fetched" (in the data directory) or "not fetched".
std::string status(const DataFile& f) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(std::filesystem::path(data_dir()) / f.path, ec)) return "fetched";
  if (f.shipped && !find_data_file(f.path).empty()) return "shipped";
  return f.shipped ? "shipped (missing!)" : "not fetched";
}

std::string checksum(const DataFile& f) {
  if (!f.sha256.empty()) return "sha256 " + f.sha256;
  if (!f.git_blob_sha1.empty()) return "git blob " + f.git_blob_sha1;
  return "checked by the processed result";
}

}  // namespace

int run_data_list(const std::vector<std::string>& args) {
  ParsedOptions opt(kListSpec, args);
  if (opt.help()) {
    std::fputs(usage(kListSpec).c_str(), stdout);
    return 0;
  }
  const bool json = opt.choice("format", {"text", "json"}) == "json";
  nlohmann::json out = {{"data_dir", data_dir()}, {"shipped_dir", shipped_dir()}};
  std::string text = "data directory: " + data_dir() + "\nshipped with enf: " +
                     (shipped_dir().empty() ? std::string("(not found)") : shipped_dir()) + "\n";
  for (const Dataset& d : datasets()) {
    nlohmann::json jd = {{"name", d.name}, {"description", d.description}, {"source", d.source}, {"licence", d.licence}};
    text += "\n" + d.name + ": " + d.description + "\n  source: " + d.source + " (" + d.licence + ")\n";
    for (const DataPart& p : d.parts) {
      const std::string path = find_data_file(p.file);
      jd["parts"].push_back({{"name", d.name + ":" + p.name}, {"description", p.description}, {"path", path}});
      char line[256];
      std::snprintf(line, sizeof line, "  %-22s %s\n", (d.name + ":" + p.name).c_str(), p.description.c_str());
      text += line;
    }
    for (const DataFile& f : d.files) {
      const std::string st = status(f);
      jd["files"].push_back({{"path", f.path},
                             {"status", st},
                             {"url", f.url},
                             {"size", f.size},
                             {"sha256", f.sha256},
                             {"git_blob_sha1", f.git_blob_sha1},
                             {"made_by", f.made_by}});
      text += "    file " + f.path + "  [" + st + ", " + human_size(f.size) + "]\n      " +
              (!f.url.empty() ? f.url : !f.made_by.empty() ? f.made_by : "made by 'enf data fetch " + d.name + "'") + "\n      " +
              checksum(f) + "\n";
    }
    if (!d.processing.empty()) text += "    (fetch downloads the raw files and processes them into the splits)\n";
    out["datasets"].push_back(jd);
  }
  text += "\nmodels (enf checkpoints: --model NAME; the reference's format: enf import --reference NAME):\n";
  for (const NamedModel& m : named_models()) {
    const std::string dir = shipped_dir().empty() ? std::string() : shipped_dir() + "/models/" + m.path;
    const char* format = m.checkpoint ? "enf checkpoint" : "reference format";
    out["models"].push_back({{"name", m.name}, {"description", m.description}, {"path", dir}, {"format", format}});
    text += "  " + m.name + ": " + m.description + "\n    [shipped, " + format + "] " + dir + "\n";
  }
  if (json) std::printf("%s\n", out.dump(2).c_str());
  else std::fputs(text.c_str(), stdout);
  return 0;
}

}  // namespace enf::cli
