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
  double ema = 0, max_seconds = 0;
  bool kill_validation = false;

  explicit StandInRun(const Checkpoint* resume = nullptr) {
    if (resume) {
      const std::vector<double> w = training_weights(*resume);
      std::copy(w.begin(), w.end(), params.values.begin());
    }
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
    j.weights = &params;
    j.ema_decay = ema;
    j.max_seconds = max_seconds;
    j.validate = [this] {
      if (kill_validation) throw Killed();
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

// How a run is set up beyond its kill: weight average, time budget.
struct Setup {
  double ema = 0, max_seconds = 0;
  bool kill_validation = false;
  void apply(StandInRun& r) const {
    r.ema = ema;
    r.max_seconds = max_seconds;
    r.kill_validation = kill_validation;
  }
};

// Starts a new run in dir; returns false when it was killed.
bool start(const fs::path& dir, long kill_at, const Setup& setup = {}) {
  StandInRun r;
  r.kill_at = kill_at;
  setup.apply(r);
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
bool resume(const fs::path& dir, long kill_at, const Setup& setup = {}) {
  (void)read_run_config(dir);
  RunDirectory run;
  run.path = dir;
  run.resume = load_last_checkpoint(dir);
  StandInRun r(run.resume.get());
  r.kill_at = kill_at;
  setup.apply(r);
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

TEST_CASE("with a weight average, checkpoints hold the average and a killed run resumes exactly", "[training_run]") {
  const Setup ema{0.9};
  const fs::path ref = scratch("ema_reference");
  REQUIRE(start(ref, -1, ema));
  const Checkpoint last = load_checkpoint((ref / "last").string());
  // The average differs from the weights training goes on from; those are
  // the weights of a run without averaging (the stand-in's steps do not
  // depend on the average).
  REQUIRE(training_weights(last).size() == last.params.values.size());
  CHECK(training_weights(last) != std::vector<double>(last.params.values.begin(), last.params.values.end()));
  const fs::path plain = scratch("ema_plain");
  REQUIRE(start(plain, -1));
  CHECK(training_weights(last) == training_weights(load_checkpoint((plain / "last").string())));
  for (const std::vector<long>& kills : {std::vector<long>{2}, {5}, {9, 10, 12}, {3, 4, 7}}) {
    const fs::path dir = scratch("ema_killed");
    bool done = start(dir, kills[0], ema);
    for (std::size_t k = 1; k < kills.size(); ++k) done = resume(dir, kills[k], ema);
    if (!done) REQUIRE(resume(dir, -1, ema));
    INFO("killed before steps " << nlohmann::json(kills).dump());
    CHECK(read(dir / "metrics.jsonl") == read(ref / "metrics.jsonl"));
    for (const char* name : {"last", "best"}) {
      const Checkpoint a = load_checkpoint((dir / name).string()), b = load_checkpoint((ref / name).string());
      CHECK(a.params.values == b.params.values);
      CHECK(training_weights(a) == training_weights(b));
    }
  }
}

TEST_CASE("the weight average warms up from a copy of the weights", "[training_run]") {
  WeightAverage avg(0.99, {5.0, -1.0});
  avg.update(std::vector<double>{1.0, 2.0});
  CHECK(avg.values() == std::vector<double>{1.0, 2.0});  // decay 0 at the first update
  avg.update(std::vector<double>{12.0, 13.0});
  // Second update: decay min(0.99, 1/11).
  CHECK(avg.values()[0] == Approx(1.0 / 11 * 1.0 + 10.0 / 11 * 12.0));
  for (int k = 0; k < 5000; ++k) avg.update(std::vector<double>{0.0, 0.0});
  CHECK(std::abs(avg.values()[0]) < 1e-12);
  CHECK(avg.updates() == 5002);
  CHECK_THROWS(WeightAverage(1.0, {}));
  CHECK_THROWS(avg.update(std::vector<double>{1.0}));
}

TEST_CASE("a time budget ends the run validated and saved; a larger budget continues it exactly", "[training_run]") {
  const fs::path ref = scratch("budget_reference");
  REQUIRE(start(ref, -1));
  // A budget the first step exceeds: one step, then a validation within
  // epoch 0, best/ and last/ at (epoch 0, batch 1).
  const Setup tiny{0, 1e-12};
  const fs::path dir = scratch("budget");
  REQUIRE(start(dir, -1, tiny));
  const Checkpoint last = load_checkpoint((dir / "last").string());
  CHECK(last.extra["training_state"]["global_step"] == 1);
  CHECK(last.extra["training_state"]["batch_in_epoch"] == 1);
  CHECK(last.extra["training_state"]["validated_step"] == 1);
  CHECK(fs::exists(dir / "best"));
  const std::string after_budget = read(dir / "metrics.jsonl");
  CHECK(after_budget.find("\"time_budget\":true") != std::string::npos);
  CHECK(std::count(after_budget.begin(), after_budget.end(), '\n') == 2);  // one step, one validation
  // Resumed with the same budget: nothing to do, nothing written.
  REQUIRE(resume(dir, -1, tiny));
  CHECK(read(dir / "metrics.jsonl") == after_budget);
  // With room to go on, it ends as the run without a budget (its extra
  // validation line aside).
  REQUIRE(resume(dir, -1, Setup{0, 1e9}));
  CHECK(load_checkpoint((dir / "last").string()).params.values ==
        load_checkpoint((ref / "last").string()).params.values);
  std::string metrics = read(dir / "metrics.jsonl");
  const std::size_t second_line = metrics.find('\n') + 1;
  metrics.erase(second_line, metrics.find('\n', second_line) + 1 - second_line);
  CHECK(metrics == read(ref / "metrics.jsonl"));
}

TEST_CASE("a validation at the time budget that is stopped is done on resume", "[training_run]") {
  const fs::path dir = scratch("budget_killed");
  CHECK_FALSE(start(dir, -1, Setup{0, 1e-12, true}));  // last/ from the first step, no validation
  CHECK(load_checkpoint((dir / "last").string()).extra["training_state"]["validated_step"] == -1);
  REQUIRE(resume(dir, -1, Setup{0, 1e-12}));
  const Checkpoint last = load_checkpoint((dir / "last").string());
  CHECK(last.extra["training_state"]["global_step"] == 1);
  CHECK(last.extra["training_state"]["validated_step"] == 1);
  CHECK(fs::exists(dir / "best"));
}
