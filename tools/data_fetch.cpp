// enf data fetch NAME: download a dataset from its official source (or a
// mirror), verify it, convert it to what enf reads, and keep it in the data
// directory, where every command then finds it by name.
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "datasets/checksum.hpp"
#include "datasets/download.hpp"
#include "datasets/qm9_raw.hpp"
#include "datasets/registry.hpp"
#include "tools/commands.hpp"
#include "tools/options.hpp"

namespace fs = std::filesystem;

namespace enf::cli {

namespace {

// clang-format off
const CommandSpec kFetchSpec{
    "data fetch",
    "Download a dataset from its official source, verify it, and store it in the data directory.",
    "NAME is one of 'enf data list': lj13 (the EFM training split, 15.6 MB), lj55 (the\n"
    "EFM splits, then lj55:efm-train, efm-val, efm-test; lj55:train/val/test are\n"
    "enf's own, shipped), qm9 (the full QM9 from figshare, processed into the\n"
    "EDM/cormorant train / valid / test splits), or dw4 (shipped with enf: nothing\n"
    "to fetch unless --force). Afterwards the parts are there by name: --data\n"
    "qm9:train, lj13:train.\n"
    "\n"
    "Each file is checked against the SHA-256 or the git blob id that 'enf data list'\n"
    "shows; a mismatch deletes it. The QM9 archive has no published checksum: it is\n"
    "checked by what it produces (133 885 molecules, 3054 excluded, and a test split\n"
    "identical to the one shipped with enf); the SHA-256 of what was downloaded is\n"
    "written to qm9/raw/SHA256SUMS in the data directory.\n"
    "\n"
    "Downloads go to FILE.part and are renamed when verified, so nothing half-written\n"
    "ever sits under the final name; an interrupted download resumes where it stopped\n"
    "(the next run continues the .part file). --from takes a mirror: a directory or a\n"
    "URL holding the files under their own names (dsgdb9nsd.xyz.tar.bz2,\n"
    "uncharacterized.txt, train_split_LJ13-1000.npy, ...).\n"
    "\nexamples:\n"
    "  enf data fetch qm9\n"
    "  enf data fetch lj13 --from /mnt/mirror/enf-data\n"
    "  ENF_DATA=/scratch/enf enf data fetch qm9 && enf train --system qm9 --data qm9:train --out runs/qm9",
    {
        {"from", "PATH_OR_URL", "", "a mirror: a directory or a base URL holding the files by name"},
        {"data-dir", "DIR", "", "where to store the data (default: ENF_DATA, else $XDG_DATA_HOME/enf, else ~/.local/share/enf)"},
        {"force", "", "", "download again even what is present (or shipped), and process again"},
        {"quiet", "", "", "no progress bar"},
    }};
// clang-format on

std::string basename_of(const std::string& path) { return fs::path(path).filename().string(); }

// Where to download f from: its official URL, or the mirror's file of the same name.
std::string source_url(const DataFile& f, const std::string& from) {
  if (from.empty()) return f.url;
  if (from.find("://") != std::string::npos)
    return from + (from.back() == '/' ? "" : "/") + basename_of(f.path);
  std::error_code ec;
  if (!fs::is_directory(from, ec)) throw UsageError("--from " + from + ": neither a directory nor a URL");
  return (fs::absolute(from) / basename_of(f.path)).string();
}

Checksum checksum_of(const DataFile& f) {
  if (!f.sha256.empty()) return Checksum::sha256(f.sha256);
  if (!f.git_blob_sha1.empty()) return Checksum::git_blob_sha1(f.git_blob_sha1);
  return {};
}

// Processes the QM9 archive into the EDM splits and checks the test split
// against the one enf ships; a failure removes the output and the archive
// (it is what failed), so the next fetch starts clean.
void process_qm9(const std::string& root, bool force) {
  const std::string raw = root + "/qm9/raw", out = root + "/qm9/edm_cormorant_npz";
  const std::string archive = raw + "/dsgdb9nsd.xyz.tar.bz2";
  // The excluded list ships with enf (or was fetched, verified by its SHA-256).
  const std::string excluded = find_data_file("qm9/raw/uncharacterized.txt");
  if (excluded.empty()) throw std::runtime_error("qm9/raw/uncharacterized.txt is missing from the shipped data");
  std::error_code ec;
  if (!force && fs::exists(out + "/train.npz", ec) && fs::exists(out + "/valid.npz", ec) &&
      fs::exists(out + "/test.npz", ec)) {
    std::fprintf(stderr, "enf data fetch: qm9 is already processed in %s (--force processes it again)\n", out.c_str());
    return;
  }
  const std::string shipped = shipped_dir().empty() ? "" : shipped_dir() + "/data/qm9/edm_cormorant_npz/test.npz";
  if (shipped.empty() || !fs::exists(shipped, ec))
    throw std::runtime_error("the shipped QM9 test split (to check the result against) is not found; is enf installed?");
  try {
    const Qm9Splits s = process_qm9_raw(archive, excluded, out);
    const Qm9TestCheck check = verify_against_shipped_test(out + "/test.npz", shipped);
    std::fprintf(stderr,
                 "enf data fetch: qm9 splits %zu / %zu / %zu molecules; the test split equals the shipped one "
                 "(%ld molecules, positions within %.1e A)\n",
                 s.train.size(), s.valid.size(), s.test.size(), check.molecules, check.max_position_diff);
  } catch (...) {
    fs::remove_all(out, ec);
    fs::remove(archive, ec);
    throw;
  }
  // What was downloaded, for anyone who wants to pin it (no checksum is published).
  const std::string sums = sha256_file(archive) + "  " + basename_of(archive) + "\n";
  std::ofstream(raw + "/SHA256SUMS") << sums;
  std::fprintf(stderr, "enf data fetch: SHA-256 of the QM9 downloads (in %s/SHA256SUMS):\n%s", raw.c_str(), sums.c_str());
}

}  // namespace

int run_data_fetch(const std::vector<std::string>& args) {
  if (args.empty() || args[0].rfind("-", 0) == 0) {
    ParsedOptions opt(kFetchSpec, args);  // rejects bad options first, recognises --help
    if (opt.help()) return std::fputs(usage(kFetchSpec).c_str(), stdout), 0;
    throw UsageError("missing the dataset: enf data fetch NAME (see 'enf data list')");
  }
  const ParsedOptions opt(kFetchSpec, {args.begin() + 1, args.end()});
  if (opt.help()) return std::fputs(usage(kFetchSpec).c_str(), stdout), 0;
  const Dataset* known = nullptr;
  try {
    known = &dataset(args[0]);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  const Dataset& d = *known;
  // --data-dir is the data directory for everything this run looks up.
  if (!opt.str("data-dir").empty()) ::setenv("ENF_DATA", opt.str("data-dir").c_str(), 1);
  const std::string root = data_dir();
  const bool force = opt.flag("force");
  DownloadOptions dl;
  dl.progress = !opt.flag("quiet");

  int fetched = 0, present = 0;
  for (const DataFile& f : d.files) {
    if (f.url.empty()) continue;  // made by processing, or generated by enf and shipped
    const std::string dest = root + "/" + f.path;
    const Checksum sum = checksum_of(f);
    std::error_code ec;
    if (f.shipped && !force) {
      ++present;
      continue;
    }
    if (!force && fs::exists(dest, ec) && (sum.kind == Checksum::Kind::None || sum.matches(dest))) {
      std::fprintf(stderr, "enf data fetch: %s is already here (%s)\n", f.path.c_str(), dest.c_str());
      ++present;
      continue;
    }
    const std::string url = source_url(f, opt.str("from"));
    std::fprintf(stderr, "enf data fetch: %s <- %s\n", f.path.c_str(), url.c_str());
    download_file(url, dest, sum, f.size, basename_of(f.path), dl);
    ++fetched;
  }
  if (d.processing == "qm9-raw") process_qm9(root, force || fetched > 0);
  if (fetched == 0 && d.processing.empty())
    std::fprintf(stderr, "enf data fetch: %s: nothing to download (%s)\n", d.name.c_str(),
                 present > 0 ? "shipped with enf or already fetched; --force downloads it again" : "no files");

  // Where each part now is (stdout: the result).
  for (const DataPart& p : d.parts) {
    const std::string path = find_data_file(p.file);
    std::printf("%s:%s\t%s\n", d.name.c_str(), p.name.c_str(), path.empty() ? "(missing)" : path.c_str());
  }
  return 0;
}

}  // namespace enf::cli
