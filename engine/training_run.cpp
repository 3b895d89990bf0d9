#include "engine/training_run.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <fstream>
#include <mutex>
#include <numeric>
#include <set>
#include <sstream>
#include <stdexcept>

#include "datasets/file_io.hpp"
#include "engine/rng.hpp"

namespace enf {

namespace fs = std::filesystem;

void check_batch_fits(int batch, int rows, const std::string& what) {
  if (rows < batch)
    throw std::invalid_argument("the batch (" + std::to_string(batch) + ") is larger than the training data (" +
                                std::to_string(rows) + " " + what + ")");
}

CnfOptions validation_cnf_options(TraceEstimator trace) {
  CnfOptions o;
  o.trace = trace;
  o.solver.rtol = o.solver.atol = 1e-5;
  o.adjoint_solver = o.solver;
  return o;
}

std::vector<int> epoch_order(int rows, std::uint64_t seed, int epoch) {
  std::vector<int> order(rows);
  std::iota(order.begin(), order.end(), 0);
  Rng shuffle = Rng(seed).split(1000 + std::uint64_t(epoch));
  for (int i = rows - 1; i > 0; --i) std::swap(order[i], order[int(shuffle.uniform() * (i + 1))]);
  return order;
}

std::uint64_t step_seed(std::uint64_t seed, long global_step) { return (seed << 32) ^ std::uint64_t(global_step); }

nlohmann::json read_json_file(const std::string& path, const std::string& kind) {
  try {
    return nlohmann::json::parse(read_file_bytes(path, kind));
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(kind + " file '" + path + "': not valid JSON (" + e.what() + ")");
  }
}

nlohmann::json read_run_config(const fs::path& path) {
  const std::string cfg_path = (path / "config.json").string();
  if (!fs::is_directory(path)) throw std::invalid_argument("--resume " + path.string() + ": no such run directory");
  if (!fs::exists(cfg_path))
    throw std::invalid_argument("--resume " + path.string() +
                                ": not a run directory (it has no config.json; a run writes it when it starts)");
  return read_json_file(cfg_path, "run config");
}

void lock_run_directory(const fs::path& path) {
  static std::mutex mutex;
  static std::set<std::string> held;  // by this process (a run resumed within it)
  std::error_code ec;
  const std::string key = fs::canonical(path, ec).string();
  if (ec) return;
  const std::lock_guard<std::mutex> lock(mutex);
  if (held.count(key)) return;
  const int fd = ::open(key.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK)
      throw std::runtime_error("run directory " + path.string() +
                               " is in use by another enf train (a run is trained by one process at a time)");
    return;  // a file system without locks: nothing to enforce it with
  }
  held.insert(key);  // the descriptor stays open: the lock lasts until the process exits or is killed
}

void repair_run_directory(const fs::path& path) {
  for (const char* name : {"last", "best"}) recover_checkpoint((path / name).string());
  // write_file_atomically's temporary files of a write that was killed.
  std::error_code ec;
  for (const char* name : {"config.json.tmp", "metrics.jsonl.tmp"}) fs::remove(path / name, ec);
}

std::unique_ptr<Checkpoint> load_last_checkpoint(const fs::path& path) {
  lock_run_directory(path);
  repair_run_directory(path);
  if (std::error_code ec; !fs::exists(path / "last", ec)) return nullptr;
  return std::make_unique<Checkpoint>(load_checkpoint((path / "last").string()));
}

void check_new_run_directory(const fs::path& path) {
  std::error_code ec;
  if (fs::exists(path, ec) && !fs::is_directory(path, ec))
    throw std::invalid_argument("--out " + path.string() + ": a file of that name exists; a run is a directory");
  if (!checkpoint_location((path / "last").string()).empty())
    throw std::invalid_argument("run directory " + path.string() + " already holds a run; use --resume " +
                                path.string() + " to continue it, or another --out");
  for (fs::path p = path.parent_path(); !p.empty(); p = p.parent_path())
    if (fs::exists(p, ec)) {
      if (!fs::is_directory(p, ec))
        throw std::invalid_argument("--out " + path.string() + ": '" + p.string() + "' is a file, not a directory");
      break;
    }
}

namespace {
// A resumed run rewrites what came after its saved state: the lines of steps
// (and validations) that state does not include are cut, as is a line the
// kill cut short, so metrics.jsonl reads as if the run had never stopped.
void cut_metrics(const fs::path& file, const TrainingState& s) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return;
  std::istringstream in(read_file_bytes(file.string(), "metrics"));
  std::string kept, line;
  while (std::getline(in, line)) {
    try {
      const nlohmann::json j = nlohmann::json::parse(line);
      if (!j.is_object()) continue;
      // A validation ends its epoch: a state saved within that epoch (its
      // last step, then Ctrl-C) has not validated yet.
      if (j.value("step", 0L) > s.global_step || (j.value("type", "") == "validation" && j.value("epoch", 0) > s.epoch))
        continue;
    } catch (const nlohmann::json::exception&) {
      continue;
    }
    kept += line + '\n';
  }
  write_file_atomically(file.string(), kept, "metrics");
}
}  // namespace

TrainingState restore_training(const Checkpoint& c, AdamW& optimizer, GradientClipper* clipper) {
  if (!c.extra.contains("training_state"))
    throw std::runtime_error("--resume: the last/ checkpoint holds no training state");
  const auto& st = c.extra.at("training_state");
  TrainingState s;
  s.epoch = st.at("epoch");
  s.batch_in_epoch = st.at("batch_in_epoch");
  s.global_step = st.at("global_step");
  // JSON has no infinity: "no validation yet" is stored as null.
  if (st.contains("best_val_nll") && st["best_val_nll"].is_number()) s.best_val = st["best_val_nll"];
  std::vector<double> m, v, vmax;
  for (const auto& [name, values] : c.state) {
    if (name == "adam.m") m = values;
    if (name == "adam.v") v = values;
    if (name == "adam.v_max") vmax = values;
    if (name == "clipper.history" && clipper) clipper->restore(values);
  }
  optimizer.restore(st.value("optimizer_steps", 0L), m, v, vmax);
  return s;
}

TrainingOutcome run_training(const TrainingJob& job, TrainingState state, const RunDirectory& run_dir,
                             TrainingReporter& reporter) {
  const fs::path& run = run_dir.path;
  if (!run_dir.new_config.is_null()) {
    std::error_code ec;
    fs::create_directories(run, ec);
    if (ec) throw std::runtime_error("run directory '" + run.string() + "': cannot create it: " + ec.message());
    lock_run_directory(run);
    write_file_atomically((run / "config.json").string(), run_dir.new_config.dump(2) + "\n", "run config");
  }
  lock_run_directory(run);
  repair_run_directory(run);
  cut_metrics(run / "metrics.jsonl", state);
  auto checkpoint = [&](int epoch, int batch_in_epoch) {
    Checkpoint c = job.snapshot();
    c.extra["training_state"] = {
        {"epoch", epoch},
        {"batch_in_epoch", batch_in_epoch},
        {"global_step", state.global_step},
        {"best_val_nll", std::isfinite(state.best_val) ? nlohmann::json(state.best_val) : nlohmann::json()},
        {"optimizer_steps", job.optimizer->steps()}};
    c.state = {{"adam.m", job.optimizer->m()}, {"adam.v", job.optimizer->v()}, {"adam.v_max", job.optimizer->v_max()}};
    if (job.clipper) c.state.emplace_back("clipper.history", job.clipper->history());
    return c;
  };

  std::ofstream metrics(run / "metrics.jsonl", std::ios::app);
  if (!metrics) throw std::runtime_error("cannot write " + (run / "metrics.jsonl").string());
  // The metrics reach the disk before a checkpoint that includes them: after
  // a power loss, resuming cuts lines but could not restore lost ones.
  auto save = [&](const char* name, const Checkpoint& c) {
    metrics.flush();
    sync_file((run / "metrics.jsonl").string());
    save_checkpoint((run / name).string(), c);
  };
  const int batches = job.rows / job.batch;
  TrainingProgress p;
  p.epochs = job.epochs;
  p.total_steps = long(job.epochs) * batches;
  const auto t_start = std::chrono::steady_clock::now();
  const long first_step = state.global_step;
  reporter.started(job, run);
  const int start_epoch = state.epoch;
  for (int epoch = start_epoch; epoch < job.epochs; ++epoch) {
    const std::vector<int> order = epoch_order(job.rows, job.seed, epoch);
    for (int b = (epoch == start_epoch ? state.batch_in_epoch : 0); b < batches; ++b) {
      const std::vector<int> rows(order.begin() + std::size_t(b) * job.batch,
                                  order.begin() + std::size_t(b + 1) * job.batch);
      nlohmann::json line{{"type", "step"}, {"step", state.global_step + 1}, {"epoch", epoch}};
      const StepReport rep = job.step(rows, step_seed(job.seed, state.global_step), line);
      ++state.global_step;
      p.running_nll = state.global_step - first_step == 1 ? rep.nll : 0.95 * p.running_nll + 0.05 * rep.nll;
      line.update({{"loss", rep.loss},
                   {"nll", rep.nll},
                   {"grad_norm", rep.grad_norm},
                   {"clipped", rep.clipped},
                   {"nfe_forward", rep.nfe_forward},
                   {"nfe_backward", rep.nfe_backward},
                   {"seconds", rep.seconds_total}});
      metrics << line.dump() << '\n' << std::flush;
      p.epoch = epoch;
      p.global_step = state.global_step;
      p.steps_this_session = state.global_step - first_step;
      p.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
      reporter.stepped(p);
      // The first step saves too, so a run killed within its first epoch
      // resumes (before it, resuming starts the run again).
      const bool stop = job.stop_requested();
      if (stop || state.global_step == 1) save("last", checkpoint(epoch, b + 1));
      if (stop) return {true, state};
    }
    reporter.epoch_ended(epoch);
    if ((epoch + 1) % job.val_interval == 0 || epoch + 1 == job.epochs) {
      const Validation v = job.validate();
      if (v.interrupted) {
        // Saved as at the end of the epoch's steps, before its validation
        // (as a stop after the last step): the resume validates it.
        save("last", checkpoint(epoch, batches));
        return {true, state};
      }
      const bool best = v.nll < state.best_val;
      if (best) state.best_val = v.nll;
      nlohmann::json line{{"type", "validation"}, {"step", state.global_step},          {"epoch", epoch + 1},
                          {"nll", v.nll},         {"standard_error", v.standard_error}, {"best", best}};
      line.update(v.extra);
      metrics << line.dump() << '\n' << std::flush;
      reporter.validated(epoch + 1, v, best);
      if (best) save("best", checkpoint(epoch + 1, 0));
    }
    save("last", checkpoint(epoch + 1, 0));
  }
  return {false, state};
}

}  // namespace enf
