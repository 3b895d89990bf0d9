// A long evaluation's results, one JSON line per finished item, so that a job
// stopped by Ctrl-C, SIGTERM, a crash or a power loss continues where it
// stopped instead of starting again (enf eval --work DIR: an LJ55 evaluation
// with the exact trace is hours of work).
//
// The file's first line is {"job": ...}, the description of the work (model,
// data, tolerances, seeds); every further line is {"index": i, ...}, item i's
// result, appended and flushed as the item finishes, in any order. Reopening
// reads the lines written before; a last line cut short by a crash (no
// newline) is dropped and the file truncated to the last whole line, so that
// item is computed again. A journal of another job is refused, naming what
// differs: its results would not be those of this job.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace enf {

class ResultJournal {
 public:
  // Opens path (created, with job as its first line, when it does not exist).
  // Throws on a file of another job, a malformed line (file:line, what was
  // expected) or an index outside [0, items).
  ResultJournal(std::string path, const nlohmann::json& job, int items);
  ~ResultJournal();
  ResultJournal(const ResultJournal&) = delete;
  ResultJournal& operator=(const ResultJournal&) = delete;

  const std::string& path() const { return path_; }
  // The results read or appended so far, by index.
  const std::map<int, nlohmann::json>& done() const { return done_; }
  // The indices in [0, items) not yet done, as runs [begin, end) in order.
  std::vector<std::pair<int, int>> missing_runs() const;

  // Appends item index's result (an object; "index" is added) and flushes it
  // to the file; the file is synced to disk at most once a second and on close.
  // A file removed or replaced while the job runs (git checkout, an editor) is
  // noticed at the next append and rewritten with every result, its own and
  // this job's, so nothing is written to a file no longer there.
  void append(int index, nlohmann::json result);

 private:
  void open_for_append(std::optional<std::size_t> truncate_to);
  bool still_at_path() const;
  void rewrite_after_replacement();

  std::string path_;
  nlohmann::json job_;
  int items_;
  int fd_ = -1;
  // The file fd_ appends to, to notice when path_ names another one.
  unsigned long device_ = 0, inode_ = 0;
  std::map<int, nlohmann::json> done_;
  std::chrono::steady_clock::time_point last_sync_;
};

}  // namespace enf
