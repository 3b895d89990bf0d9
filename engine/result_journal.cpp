#include "engine/result_journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <stdexcept>

#include "datasets/file_io.hpp"

namespace enf {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("results journal '" + path + "': " + what);
}

// What differs between the job a journal was written for and this one, as
// "key: the file has A, this job B" clauses.
std::string differences(const nlohmann::json& file, const nlohmann::json& job) {
  std::string out;
  auto clause = [&](const std::string& key, const std::string& a, const std::string& b) {
    out += (out.empty() ? "" : "; ") + key + ": the file has " + a + ", this job " + b;
  };
  if (!file.is_object() || !job.is_object()) {
    clause("job", file.dump(), job.dump());
    return out;
  }
  for (const auto& [key, value] : job.items())
    if (!file.contains(key))
      clause(key, "none", value.dump());
    else if (file[key] != value)
      clause(key, file[key].dump(), value.dump());
  for (const auto& [key, value] : file.items())
    if (!job.contains(key)) clause(key, value.dump(), "none");
  return out;
}

void write_all(int fd, const std::string& bytes, const std::string& path) {
  std::size_t at = 0;
  while (at < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + at, bytes.size() - at);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail(path, std::string("cannot append: ") + std::strerror(errno));
    at += std::size_t(w);
  }
}

// The results of a journal file: every whole line checked against job; the
// length of its whole lines, and whether a torn last line follows them.
struct JournalFile {
  std::map<int, nlohmann::json> done;
  std::size_t whole = 0;
  bool torn = false;
};

JournalFile read_journal(const std::string& path, const nlohmann::json& job, int items) {
  JournalFile file;
  std::string bytes;
  if (std::filesystem::exists(path)) bytes = read_file_bytes(path, "results journal");
  // A last line without its newline was cut short while being written: drop it.
  file.whole = bytes.rfind('\n') == std::string::npos ? 0 : bytes.rfind('\n') + 1;
  file.torn = file.whole < bytes.size();
  bytes.resize(file.whole);
  std::size_t begin = 0;
  for (int number = 1; begin < bytes.size(); ++number) {
    const std::size_t end = bytes.find('\n', begin);
    const std::string line = bytes.substr(begin, end - begin);
    begin = end + 1;
    const std::string where = "line " + std::to_string(number);
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) fail(path, where + ": expected a JSON object");
    if (number == 1) {
      if (!j.contains("job")) fail(path, where + ": expected {\"job\": ...}, the description of its job");
      const std::string diff = differences(j["job"], job);
      if (!diff.empty())
        fail(path, "written for another job (" + diff + "); give another directory, or remove it to start again");
      continue;
    }
    if (!j.contains("index") || !j["index"].is_number_integer())
      fail(path, where + ": expected {\"index\": integer, ...}");
    const long i = j["index"].get<long>();
    if (i < 0 || i >= items)
      fail(path, where + ": index " + std::to_string(i) + " outside the job's 0 .. " + std::to_string(items - 1));
    if (!file.done.emplace(int(i), std::move(j)).second)
      fail(path, where + ": index " + std::to_string(i) + " appears twice");
  }
  return file;
}

// The journal's bytes: the job line, then every result by index.
std::string journal_bytes(const nlohmann::json& job, const std::map<int, nlohmann::json>& done) {
  std::string bytes = nlohmann::json{{"job", job}}.dump() + "\n";
  for (const auto& entry : done) bytes += entry.second.dump() + "\n";
  return bytes;
}

}  // namespace

ResultJournal::ResultJournal(std::string path, const nlohmann::json& job, int items)
    : path_(std::move(path)), job_(job), items_(items), last_sync_(std::chrono::steady_clock::now()) {
  JournalFile file = read_journal(path_, job_, items_);
  done_ = std::move(file.done);
  open_for_append(file.torn ? std::optional<std::size_t>(file.whole) : std::nullopt);
  if (file.whole == 0) {
    write_all(fd_, nlohmann::json{{"job", job_}}.dump() + "\n", path_);
    ::fsync(fd_);
    sync_directory(parent_directory(path_));
  }
}

void ResultJournal::open_for_append(std::optional<std::size_t> truncate_to) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(path_, std::string("cannot open for writing: ") + std::strerror(errno));
  if (truncate_to && ::ftruncate(fd_, off_t(*truncate_to)) != 0)
    fail(path_, std::string("cannot truncate: ") + std::strerror(errno));
  if (::lseek(fd_, 0, SEEK_END) < 0) fail(path_, std::string("cannot seek: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) fail(path_, std::string("cannot stat: ") + std::strerror(errno));
  device_ = st.st_dev;
  inode_ = st.st_ino;
}

bool ResultJournal::still_at_path() const {
  struct stat st {};
  return ::stat(path_.c_str(), &st) == 0 && st.st_dev == device_ && st.st_ino == inode_;
}

// The file at path_ is no longer the one this journal appends to: removed, or
// replaced (by git checkout or stash, an editor, a copy). Appending to the old
// handle would write results nowhere. Whatever results the new file holds are
// kept beside this job's, and the file is rewritten whole with all of them. A
// new file this job cannot read back (another job's, damaged) is left alone:
// this job's results go to a file beside it and the job stops, saying where.
void ResultJournal::rewrite_after_replacement() {
  std::size_t from_file = 0;
  try {
    JournalFile file = read_journal(path_, job_, items_);
    for (auto& [index, line] : file.done) from_file += done_.emplace(index, std::move(line)).second;
  } catch (const std::exception& e) {
    const std::string aside = path_ + ".recovered";
    write_file_atomically(aside, journal_bytes(job_, done_), "results journal");
    fail(path_, std::string("replaced while this job ran by a file it cannot merge with (") + e.what() +
                    "); this job's " + std::to_string(done_.size()) + " results are in '" + aside + "'");
  }
  ::close(fd_);
  fd_ = -1;
  write_file_atomically(path_, journal_bytes(job_, done_), "results journal");
  open_for_append(std::nullopt);
  std::cerr << "enf: results journal '" << path_ << "' was replaced or removed while this job ran; rewritten with all "
            << done_.size() << " results (" << from_file << " of them from the file that replaced it)\n";
}

ResultJournal::~ResultJournal() {
  if (fd_ >= 0) {
    ::fsync(fd_);
    ::close(fd_);
  }
}

std::vector<std::pair<int, int>> ResultJournal::missing_runs() const {
  std::vector<std::pair<int, int>> runs;
  for (int i = 0; i < items_;) {
    if (done_.count(i)) {
      ++i;
      continue;
    }
    int end = i;
    while (end < items_ && !done_.count(end)) ++end;
    runs.push_back({i, end});
    i = end;
  }
  return runs;
}

void ResultJournal::append(int index, nlohmann::json result) {
  if (index < 0 || index >= items_) fail(path_, "index " + std::to_string(index) + " outside the job");
  if (done_.count(index)) fail(path_, "index " + std::to_string(index) + " is already done");
  nlohmann::json line{{"index", index}};
  line.update(result);
  const std::string bytes = line.dump() + "\n";
  done_.emplace(index, std::move(line));
  // Checked before and after the write: a file replaced in between would hold
  // this line only in the old, unlinked file.
  if (!still_at_path()) return rewrite_after_replacement();
  write_all(fd_, bytes, path_);
  if (!still_at_path()) return rewrite_after_replacement();
  const auto now = std::chrono::steady_clock::now();
  if (now - last_sync_ > std::chrono::seconds(1)) {
    ::fsync(fd_);
    last_sync_ = now;
  }
}

}  // namespace enf
