// The run directory of engine/training_run.hpp survives a kill at any step
// (issue 17): a run with a stand-in model (an AdamW step on a made-up
// gradient) is "killed" by an exception thrown from its step, resumed from
// its directory as enf train --resume does, and must end exactly as an
// uninterrupted run: the same last/ weights and the same metrics.jsonl.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "engine/training_run.hpp"
#include "support/fixtures.hpp"
#include "support/random_model.hpp"

using namespace enf;
using namespace enf::test;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("enf_test_training_run_" + std::to_string(::getpid())) / name;
  fs::remove_all(p);
  fs::create_directories(p.parent_path());
  return p;
}

struct Killed : std::runtime_error {
  Killed() : std::runtime_error("killed") {}
};

// 4 steps an epoch, 3 epochs, validation every epoch.
struct StandInRun {
  FieldConfig field = particle_field(2);
  Parameters<double> params = random_params(field, 7);
  AdamW adam{params.values.size(), AdamWOptions{}};
  long kill_at = -1;  // the step that never finishes

  explicit StandInRun(const Checkpoint* resume = nullptr) {
    if (resume) params.values = resume->params.values;
  }
  TrainingJob job() {
    TrainingJob j;
    j.rows = 40;
    j.batch = 10;
    j.epochs = 3;
    j.seed = 3;
    j.step = [this](const std::vector<int>& rows, std::uint64_t seed, nlohmann::json&) {
      if (adam.steps() + 1 == kill_at) throw Killed();
      std::vector<double> grad(params.values.size());
      for (std::size_t k = 0; k < grad.size(); ++k) grad[k] = std::sin(double(k) + rows[0] + double(seed % 101));
      adam.step(params.values, grad);
      StepReport r;
      r.nll = r.loss = params.values[0];
      return r;
    };
    j.validate = [this] {
      Validation v;
      v.nll = std::cos(params.values[1]);
      return v;
    };
    j.snapshot = [this] {
      Checkpoint c;
      c.field = field;
      c.params = params;
      return c;
    };
    j.optimizer = &adam;
    return j;
  }
};

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TrainingReporter quiet;

// Starts a new run in dir; returns false when it was killed.
bool start(const fs::path& dir, long kill_at) {
  StandInRun r;
  r.kill_at = kill_at;
  RunDirectory run;
  run.path = dir;
  run.new_config = {{"stand_in", true}};
  try {
    run_training(r.job(), TrainingState{}, run, quiet);
  } catch (const Killed&) {
    return false;
  }
  return true;
}

// Resumes the run in dir as enf train --resume does; false when killed.
bool resume(const fs::path& dir, long kill_at) {
  (void)read_run_config(dir);
  RunDirectory run;
  run.path = dir;
  run.resume = load_last_checkpoint(dir);
  StandInRun r(run.resume.get());
  r.kill_at = kill_at;
  const TrainingState state = run.resume ? restore_training(*run.resume, r.adam, nullptr) : TrainingState{};
  try {
    run_training(r.job(), state, run, quiet);
  } catch (const Killed&) {
    return false;
  }
  return true;
}

}  // namespace

TEST_CASE("a run killed in its first epoch has a last/ to resume from", "[training_run]") {
  const fs::path dir = scratch("first_epoch");
  CHECK_FALSE(start(dir, 3));
  REQUIRE(fs::exists(dir / "last"));
  CHECK(load_checkpoint((dir / "last").string()).extra["training_state"]["global_step"] == 1);
}

TEST_CASE("a run killed at any step and resumed ends exactly as an uninterrupted one", "[training_run]") {
  const fs::path ref = scratch("reference");
  REQUIRE(start(ref, -1));
  const std::string metrics = read(ref / "metrics.jsonl");
  CHECK(std::count(metrics.begin(), metrics.end(), '\n') == 15);  // 12 steps, 3 validations
  // Killed within the first step (nothing saved: resuming starts again), after
  // it, at an epoch's end, then again and again in one run.
  for (const std::vector<long>& kills :
       {std::vector<long>{1}, {2}, {4}, {5}, {9, 10, 12}, {2, 3, 5, 6, 7, 11}}) {
    const fs::path dir = scratch("killed");
    bool done = start(dir, kills[0]);
    for (std::size_t k = 1; k < kills.size(); ++k) done = resume(dir, kills[k]);
    if (!done) {
      std::ofstream(dir / "metrics.jsonl", std::ios::app) << "{\"type\": \"step\", \"st";  // a line the kill cut short
      REQUIRE(resume(dir, -1));
    }
    INFO("killed before steps " << nlohmann::json(kills).dump());
    CHECK(read(dir / "metrics.jsonl") == metrics);
    CHECK(load_checkpoint((dir / "last").string()).params.values ==
          load_checkpoint((ref / "last").string()).params.values);
    CHECK(load_checkpoint((dir / "best").string()).params.values ==
          load_checkpoint((ref / "best").string()).params.values);
  }
}

TEST_CASE("resuming repairs what a save killed between its renames left", "[training_run]") {
  const fs::path ref = scratch("reference2");
  REQUIRE(start(ref, -1));
  const fs::path dir = scratch("debris");
  CHECK_FALSE(start(dir, 6));  // last/ saved after epoch 1
  fs::rename(dir / "last", dir / "last.old-31337");
  fs::create_directories(dir / "last.tmp-31337");  // the new one, incomplete
  std::ofstream(dir / "last.tmp-31337" / "weights.safetensors") << "half";
  std::ofstream(dir / "config.json.tmp") << "{";
  CHECK_THROWS_AS(check_new_run_directory(dir), std::invalid_argument);  // it holds a run
  REQUIRE(resume(dir, -1));
  CHECK(load_checkpoint((dir / "last").string()).params.values ==
        load_checkpoint((ref / "last").string()).params.values);
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    CHECK((name == "config.json" || name == "metrics.jsonl" || name == "last" || name == "best"));
  }
}

TEST_CASE("a run directory another process trains is refused, not repaired", "[training_run]") {
  const fs::path dir = scratch("in_use");
  fs::create_directories(dir / "last.tmp-424242");  // the other process's save in progress
  std::ofstream(dir / "config.json") << "{}\n";
  // Another open file description stands for another process.
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
  CHECK_THROWS_WITH(load_last_checkpoint(dir), Catch::Contains("in use"));
  CHECK(fs::exists(dir / "last.tmp-424242"));
  ::close(fd);
  CHECK(load_last_checkpoint(dir) == nullptr);  // free again: repaired, nothing saved yet
  CHECK_FALSE(fs::exists(dir / "last.tmp-424242"));
}
