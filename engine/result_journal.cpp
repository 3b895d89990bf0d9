#include "engine/result_journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
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

}  // namespace

ResultJournal::ResultJournal(std::string path, const nlohmann::json& job, int items)
    : path_(std::move(path)), items_(items), last_sync_(std::chrono::steady_clock::now()) {
  std::string bytes;
  if (std::filesystem::exists(path_)) bytes = read_file_bytes(path_, "results journal");
  // A last line without its newline was cut short while being written: drop it.
  const std::size_t whole = bytes.rfind('\n') == std::string::npos ? 0 : bytes.rfind('\n') + 1;
  const bool torn = whole < bytes.size();
  bytes.resize(whole);
  std::size_t begin = 0;
  for (int number = 1; begin < bytes.size(); ++number) {
    const std::size_t end = bytes.find('\n', begin);
    const std::string line = bytes.substr(begin, end - begin);
    begin = end + 1;
    const std::string where = "line " + std::to_string(number);
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) fail(path_, where + ": expected a JSON object");
    if (number == 1) {
      if (!j.contains("job")) fail(path_, where + ": expected {\"job\": ...}, the description of its job");
      const std::string diff = differences(j["job"], job);
      if (!diff.empty())
        fail(path_, "written for another job (" + diff + "); give another directory, or remove it to start again");
      continue;
    }
    if (!j.contains("index") || !j["index"].is_number_integer())
      fail(path_, where + ": expected {\"index\": integer, ...}");
    const long i = j["index"].get<long>();
    if (i < 0 || i >= items_)
      fail(path_, where + ": index " + std::to_string(i) + " outside the job's 0 .. " + std::to_string(items_ - 1));
    if (!done_.emplace(int(i), std::move(j)).second)
      fail(path_, where + ": index " + std::to_string(i) + " appears twice");
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(path_, std::string("cannot open for writing: ") + std::strerror(errno));
  if (torn && ::ftruncate(fd_, off_t(whole)) != 0) fail(path_, std::string("cannot truncate: ") + std::strerror(errno));
  if (::lseek(fd_, 0, SEEK_END) < 0) fail(path_, std::string("cannot seek: ") + std::strerror(errno));
  if (whole == 0) {
    write_all(fd_, nlohmann::json{{"job", job}}.dump() + "\n", path_);
    ::fsync(fd_);
    sync_directory(parent_directory(path_));
  }
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
  write_all(fd_, line.dump() + "\n", path_);
  done_.emplace(index, std::move(line));
  const auto now = std::chrono::steady_clock::now();
  if (now - last_sync_ > std::chrono::seconds(1)) {
    ::fsync(fd_);
    last_sync_ = now;
  }
}

}  // namespace enf
