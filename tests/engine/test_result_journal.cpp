// The results journal of long evaluations (engine/result_journal.hpp): what
// is appended is read back, a torn last line is dropped and rewritten, and a
// journal of another job or a damaged one is refused with file and line, and
// a file replaced or removed under a running job loses nothing.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/result_journal.hpp"

using Catch::Matchers::Contains;
using enf::ResultJournal;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("enf_journal_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void append_raw(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::app);
  out << bytes;
}

const nlohmann::json kJob{{"rtol", 1e-5}, {"data_sha256", "abc"}, {"structures", 5}};

}  // namespace

TEST_CASE("journal: results appended are read back by a new journal, in any order") {
  TempDir dir;
  const std::string path = (dir.path / "r.jsonl").string();
  {
    ResultJournal j(path, kJob, 5);
    CHECK(j.done().empty());
    CHECK(j.missing_runs() == std::vector<std::pair<int, int>>{{0, 5}});
    j.append(3, {{"log_likelihood", -1.25}});
    j.append(0, {{"log_likelihood", 0.1 + 0.2}});  // a value whose decimal form needs 17 digits
    CHECK_THROWS_WITH(j.append(3, {{"log_likelihood", 0.0}}), Contains("index 3 is already done"));
    CHECK_THROWS_WITH(j.append(5, {{"log_likelihood", 0.0}}), Contains("outside the job"));
  }
  ResultJournal j(path, kJob, 5);
  REQUIRE(j.done().size() == 2);
  CHECK(j.done().at(3)["log_likelihood"].get<double>() == -1.25);
  CHECK(j.done().at(0)["log_likelihood"].get<double>() == 0.1 + 0.2);  // bit for bit
  CHECK(j.missing_runs() == std::vector<std::pair<int, int>>{{1, 3}, {4, 5}});
}

TEST_CASE("journal: a line cut short by a crash is dropped and the file truncated to the whole lines") {
  TempDir dir;
  const fs::path path = dir.path / "r.jsonl";
  { ResultJournal(path.string(), kJob, 5).append(1, {{"log_likelihood", 2.0}}); }
  const std::string whole = slurp(path);
  append_raw(path, "{\"index\": 2, \"log_lik");
  {
    ResultJournal j(path.string(), kJob, 5);
    CHECK(j.done().size() == 1);
    CHECK(slurp(path) == whole);
    j.append(2, {{"log_likelihood", 3.0}});
  }
  ResultJournal j(path.string(), kJob, 5);
  CHECK(j.done().size() == 2);
  CHECK(j.done().at(2)["log_likelihood"].get<double>() == 3.0);
}

TEST_CASE("journal: an empty file (a crash before the first line) starts the job") {
  TempDir dir;
  const fs::path path = dir.path / "r.jsonl";
  append_raw(path, "");
  { ResultJournal(path.string(), kJob, 5).append(4, {{"log_likelihood", 1.0}}); }
  CHECK(ResultJournal(path.string(), kJob, 5).done().size() == 1);
}

TEST_CASE("journal: another job's file is refused, naming every difference") {
  TempDir dir;
  const std::string path = (dir.path / "r.jsonl").string();
  { ResultJournal(path, kJob, 5).append(0, {{"log_likelihood", 1.0}}); }
  nlohmann::json other = kJob;
  other["rtol"] = 1e-7;
  other.erase("structures");
  other["seed"] = 3;
  try {
    ResultJournal(path, other, 5);
    FAIL("another job's journal was accepted");
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Contains(path));
    CHECK_THAT(what, Contains("rtol: the file has 1e-05, this job 1e-07"));
    CHECK_THAT(what, Contains("seed: the file has none, this job 3"));
    CHECK_THAT(what, Contains("structures: the file has 5, this job none"));
  }
  // Nothing was changed by the refusal.
  CHECK(ResultJournal(path, kJob, 5).done().size() == 1);
}

TEST_CASE("journal: damaged files are refused with the line and what was expected") {
  TempDir dir;
  const fs::path path = dir.path / "r.jsonl";
  const std::string head = nlohmann::json{{"job", kJob}}.dump() + "\n";
  struct Case {
    std::string body, message;
  };
  const Case cases[] = {
      {"{\"index\": 0}\n", "line 1: expected {\"job\": ...}"},
      {head + "not json\n", "line 2: expected a JSON object"},
      {head + "{\"log_likelihood\": 1}\n", "line 2: expected {\"index\": integer, ...}"},
      {head + "{\"index\": 1.5}\n", "line 2: expected {\"index\": integer, ...}"},
      {head + "{\"index\": 9}\n", "line 2: index 9 outside the job's 0 .. 4"},
      {head + "{\"index\": 1}\n{\"index\": 1}\n", "line 3: index 1 appears twice"},
  };
  for (const Case& c : cases) {
    fs::remove(path);
    append_raw(path, c.body);
    CAPTURE(c.body);
    CHECK_THROWS_WITH(ResultJournal(path.string(), kJob, 5), Contains(c.message));
  }
}

// An evaluation appended for an hour to a file that git stash had replaced:
// its results went to the old, unlinked file and were lost. The journal now
// notices the replacement at its next append and keeps every result.
TEST_CASE("journal: a file replaced while the job runs (git checkout, stash) keeps every result") {
  TempDir dir;
  const fs::path path = dir.path / "r.jsonl";
  ResultJournal j(path.string(), kJob, 5);
  j.append(0, {{"log_likelihood", 1.0}});
  const std::string committed = slurp(path);  // the version git would put back
  j.append(1, {{"log_likelihood", 2.0}});
  // As git does: a new file renamed over the path, the open one unlinked.
  const fs::path fresh = dir.path / "fresh";
  append_raw(fresh, committed + nlohmann::json{{"index", 4}, {"log_likelihood", 5.0}}.dump() + "\n");
  fs::rename(fresh, path);
  j.append(2, {{"log_likelihood", 3.0}});
  CHECK(j.done().size() == 4);  // 0, 1, 2 of this job's and 4 from the new file
  j.append(3, {{"log_likelihood", 4.0}});
  ResultJournal again(path.string(), kJob, 5);
  REQUIRE(again.done().size() == 5);
  for (int i = 0; i < 5; ++i) CHECK(again.done().at(i)["log_likelihood"].get<double>() == i + 1.0);
}

TEST_CASE("journal: a file removed while the job runs is written again with every result") {
  TempDir dir;
  const fs::path path = dir.path / "r.jsonl";
  {
    ResultJournal j(path.string(), kJob, 5);
    j.append(0, {{"log_likelihood", 1.0}});
    fs::remove(path);
    j.append(1, {{"log_likelihood", 2.0}});
  }
  ResultJournal again(path.string(), kJob, 5);
  CHECK(again.done().size() == 2);
}

TEST_CASE("journal: replaced by another job's file, the job stops and puts its results beside it") {
  TempDir dir;
  const fs::path path = dir.path / "r.jsonl";
  ResultJournal j(path.string(), kJob, 5);
  j.append(0, {{"log_likelihood", 1.0}});
  nlohmann::json other = kJob;
  other["rtol"] = 1e-7;
  const fs::path fresh = dir.path / "fresh";
  append_raw(fresh, nlohmann::json{{"job", other}}.dump() + "\n");
  fs::rename(fresh, path);
  CHECK_THROWS_WITH(j.append(1, {{"log_likelihood", 2.0}}),
                    Contains("replaced while this job ran") && Contains("r.jsonl.recovered"));
  // The other job's file is untouched, and this job's results are all aside.
  CHECK_THROWS_WITH(ResultJournal(path.string(), kJob, 5), Contains("written for another job"));
  CHECK(ResultJournal((path.string() + ".recovered"), kJob, 5).done().size() == 2);
}
