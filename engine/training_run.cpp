#include "engine/training_run.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
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

std::string to_string(TrainingObjective o) {
  return o == TrainingObjective::FlowMatching ? "flow-matching" : "maximum-likelihood";
}

TrainingObjective parse_objective(const std::string& name) {
  if (name == "maximum-likelihood") return TrainingObjective::MaximumLikelihood;
  if (name == "flow-matching") return TrainingObjective::FlowMatching;
  throw std::invalid_argument("unknown objective '" + name + "' (maximum-likelihood or flow-matching)");
}

namespace {
const std::vector<double>* saved_state(const Checkpoint& c, const std::string& name) {
  for (const auto& [key, values] : c.state)
    if (key == name) return &values;
  return nullptr;
}
}  // namespace

std::vector<double> training_weights(const Checkpoint& c) {
  if (const auto* w = saved_state(c, "training.weights")) {
    if (w->size() != c.params.values.size())
      throw std::runtime_error("checkpoint: training.weights has " + std::to_string(w->size()) +
                               " values, the model " + std::to_string(c.params.values.size()));
    return *w;
  }
  return {c.params.values.begin(), c.params.values.end()};
}

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
  if (st.contains("seconds") && st["seconds"].is_number()) s.seconds = st["seconds"];
  if (st.contains("validated_step") && st["validated_step"].is_number_integer()) s.validated_step = st["validated_step"];
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

namespace {

// The weight average of a run (null without one), restored from the
// checkpoint being resumed: its params are the average when it saved one.
std::unique_ptr<WeightAverage> weight_average(const TrainingJob& job, const RunDirectory& run) {
  if (!(job.ema_decay > 0)) return nullptr;
  if (!job.weights) throw std::logic_error("run_training: a weight average needs job.weights");
  const auto& w = job.weights->values;
  auto ema = std::make_unique<WeightAverage>(job.ema_decay, std::vector<double>(w.begin(), w.end()));
  if (run.resume && saved_state(*run.resume, "training.weights")) {
    const auto& p = run.resume->params.values;
    const nlohmann::json& st = run.resume->extra.at("training_state");
    ema->restore(st.value("ema_updates", 0L), std::vector<double>(p.begin(), p.end()));
  }
  return ema;
}

}  // namespace

namespace {

// Rank 0's validation on every rank, interrupted when any rank's was.
Validation agree(Communicator& comm, Validation v) {
  if (comm.size() == 1) return v;
  const bool interrupted = comm.any(v.interrupted);
  std::string bytes;
  if (comm.is_root())
    bytes = nlohmann::json{{"nll", v.nll}, {"se", v.standard_error}, {"extra", v.extra}}.dump();
  comm.broadcast(bytes, 0);
  const nlohmann::json j = nlohmann::json::parse(bytes);
  v.nll = j.at("nll");
  v.standard_error = j.at("se");
  v.extra = j.at("extra");
  v.interrupted = interrupted;
  return v;
}

// After a step: whether any rank was asked to stop, and rank 0's clock.
bool agree_after_step(Communicator& comm, bool stop, double& seconds) {
  if (comm.size() == 1) return stop;
  std::string mine(1, stop ? '1' : '0');
  put_bytes(mine, &seconds, 1);
  const std::vector<std::string> all = comm.allgather(mine);
  bool any = false;
  for (const std::string& m : all) any = any || m[0] == '1';
  std::memcpy(&seconds, all[0].data() + 1, sizeof seconds);
  return any;
}

// A step's line gains the ranks' computing time and how long each waited
// for the slowest (when the job has more than one).
void add_rank_times(nlohmann::json& line, const ShardTiming& t) {
  if (t.busy.size() < 2) return;
  const double slowest = *std::max_element(t.busy.begin(), t.busy.end());
  std::vector<double> idle;
  for (double b : t.busy) idle.push_back(slowest - b);
  line["rank_busy"] = t.busy;
  line["rank_idle"] = idle;
}

}  // namespace

TrainingOutcome run_training(const TrainingJob& job, TrainingState state, const RunDirectory& run_dir,
                             TrainingReporter& reporter) {
  const fs::path& run = run_dir.path;
  Communicator& comm = *job.comm;
  const bool root = comm.is_root();
  if (root && !run_dir.new_config.is_null()) {
    std::error_code ec;
    fs::create_directories(run, ec);
    if (ec) throw std::runtime_error("run directory '" + run.string() + "': cannot create it: " + ec.message());
    lock_run_directory(run);
    write_file_atomically((run / "config.json").string(), run_dir.new_config.dump(2) + "\n", "run config");
  }
  if (root) {
    lock_run_directory(run);
    repair_run_directory(run);
    cut_metrics(run / "metrics.jsonl", state);
  }
  // Rank 0's weights on every rank: they start equal by construction (the
  // seed, the same checkpoint), and a rank that got different ones (another
  // build of a library, a file changed between reads) must not train apart.
  if (comm.size() > 1 && job.weights) {
    auto& w = job.weights->values;
    std::string bytes;
    put_bytes(bytes, w.data(), w.size());
    comm.broadcast(bytes, 0);
    if (bytes.size() != w.size() * sizeof(double))  // this rank alone: the job is ended (MPI_Abort)
      throw std::runtime_error("this rank's model differs in size from rank 0's");
    ByteReader(bytes).get(w.data(), w.size());
  }
  const std::unique_ptr<WeightAverage> ema = weight_average(job, run_dir);
  // Validations and checkpoints see the averaged weights, swapped in for the call.
  auto averaged = [&](auto f) {
    if (!ema) return f();
    auto& w = job.weights->values;
    const std::vector<double> raw(w.begin(), w.end());
    std::copy(ema->values().begin(), ema->values().end(), w.begin());
    struct Restore {
      decltype(w)& target;
      const std::vector<double>& raw;
      ~Restore() { std::copy(raw.begin(), raw.end(), target.begin()); }
    } restore{w, raw};
    return f();
  };
  auto checkpoint = [&](int epoch, int batch_in_epoch) {
    Checkpoint c = averaged(job.snapshot);
    c.extra["training_state"] = {
        {"epoch", epoch},
        {"batch_in_epoch", batch_in_epoch},
        {"global_step", state.global_step},
        {"best_val_nll", std::isfinite(state.best_val) ? nlohmann::json(state.best_val) : nlohmann::json()},
        {"optimizer_steps", job.optimizer->steps()},
        {"seconds", state.seconds},
        {"validated_step", state.validated_step}};
    c.state = {{"adam.m", job.optimizer->m()}, {"adam.v", job.optimizer->v()}, {"adam.v_max", job.optimizer->v_max()}};
    if (job.clipper) c.state.emplace_back("clipper.history", job.clipper->history());
    if (ema) {
      c.extra["training_state"]["ema_updates"] = ema->updates();
      c.state.emplace_back("training.weights",
                           std::vector<double>(job.weights->values.begin(), job.weights->values.end()));
    }
    return c;
  };

  // Rank 0 writes; the other ranks' stream goes nowhere.
  std::ofstream metrics;
  if (root) {
    metrics.open(run / "metrics.jsonl", std::ios::app);
    if (!metrics) throw std::runtime_error("cannot write " + (run / "metrics.jsonl").string());
  }
  // The metrics reach the disk before a checkpoint that includes them: after
  // a power loss, resuming cuts lines but could not restore lost ones.
  auto save = [&](const char* name, const Checkpoint& c) {
    if (!root) return;
    metrics.flush();
    sync_file((run / "metrics.jsonl").string());
    save_checkpoint((run / name).string(), c);
  };
  const int batches = job.rows / job.batch;
  TrainingProgress p;
  p.epochs = job.epochs;
  p.total_steps = long(job.epochs) * batches;
  p.objective = job.objective;
  p.max_seconds = job.max_seconds;
  const auto t_start = std::chrono::steady_clock::now();
  const double seconds_before = state.seconds;
  auto clock = [&] {
    p.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    state.seconds = p.run_seconds = seconds_before + p.elapsed_seconds;
  };
  const bool budget = job.max_seconds > 0;
  auto out_of_time = [&] { return budget && state.seconds >= job.max_seconds; };
  const long first_step = state.global_step;
  reporter.started(job, run);
  // A validation after `epochs_done` epochs (and `batch_in_epoch` batches of
  // the next), false when a stop interrupted it (nothing written).
  auto validate = [&](int epochs_done, int batch_in_epoch, bool at_budget) {
    const Validation v = agree(comm, averaged(job.validate));
    clock();
    state.seconds = comm.broadcast_value(state.seconds);
    if (v.interrupted) return false;
    const bool best = v.nll < state.best_val;
    if (best) state.best_val = v.nll;
    state.validated_step = state.global_step;
    nlohmann::json line{{"type", "validation"}, {"step", state.global_step},          {"epoch", epochs_done},
                        {"nll", v.nll},         {"standard_error", v.standard_error}, {"best", best}};
    if (at_budget) line["time_budget"] = true;
    line.update(v.extra);
    if (root) metrics << line.dump() << '\n' << std::flush;
    reporter.validated(epochs_done, v, best);
    if (best) save("best", checkpoint(epochs_done, batch_in_epoch));
    return true;
  };
  if (out_of_time()) {
    // A resume of a run that used its budget: it only validates what a stop
    // interrupted before (a larger --max-time continues training).
    if (state.validated_step != state.global_step) {
      const bool epoch_done = state.batch_in_epoch == batches;
      const int e = epoch_done ? state.epoch + 1 : state.epoch, b = epoch_done ? 0 : state.batch_in_epoch;
      if (!validate(e, b, true)) return {true, false, state};
      save("last", checkpoint(e, b));
    }
    return {false, true, state};
  }
  const int start_epoch = state.epoch;
  for (int epoch = start_epoch; epoch < job.epochs; ++epoch) {
    const std::vector<int> order = epoch_order(job.rows, job.seed, epoch);
    for (int b = (epoch == start_epoch ? state.batch_in_epoch : 0); b < batches; ++b) {
      const std::vector<int> rows(order.begin() + std::size_t(b) * job.batch,
                                  order.begin() + std::size_t(b + 1) * job.batch);
      nlohmann::json line{{"type", "step"}, {"step", state.global_step + 1}, {"epoch", epoch}};
      const StepReport rep = job.step(rows, step_seed(job.seed, state.global_step), line);
      if (ema) ema->update(job.weights->values);
      ++state.global_step;
      const double loss = job.objective == TrainingObjective::FlowMatching ? rep.loss : rep.nll;
      p.running_loss = state.global_step - first_step == 1 ? loss : 0.95 * p.running_loss + 0.05 * loss;
      line.update({{"loss", rep.loss}, {"grad_norm", rep.grad_norm}, {"clipped", rep.clipped}});
      if (job.objective == TrainingObjective::MaximumLikelihood) line["nll"] = rep.nll;
      line.update({{"nfe_forward", rep.nfe_forward}, {"nfe_backward", rep.nfe_backward}, {"seconds", rep.seconds_total}});
      add_rank_times(line, rep.shards);
      if (root) metrics << line.dump() << '\n' << std::flush;
      clock();
      const bool stop = agree_after_step(comm, job.stop_requested(), state.seconds);
      p.epoch = epoch;
      p.global_step = state.global_step;
      p.steps_this_session = state.global_step - first_step;
      reporter.stepped(p);
      // The first step saves too, so a run killed within its first epoch
      // resumes (before it, resuming starts the run again).
      if (stop || state.global_step == 1) save("last", checkpoint(epoch, b + 1));
      if (stop) return {true, false, state};
      if (out_of_time() && b + 1 < batches) {
        // The budget ends within the epoch: validate this state, save, end.
        reporter.epoch_ended(epoch);
        if (!validate(epoch, b + 1, true)) {
          save("last", checkpoint(epoch, b + 1));
          return {true, false, state};
        }
        save("last", checkpoint(epoch, b + 1));
        return {false, true, state};
      }
    }
    reporter.epoch_ended(epoch);
    // Decided once, before the validation (which takes time of its own): a
    // run the budget ends has its last validation marked time_budget.
    const bool over = out_of_time();
    const bool last_epoch = epoch + 1 == job.epochs || over;
    if ((epoch + 1) % job.val_interval == 0 || last_epoch) {
      // Saved as at the end of the epoch's steps, before its validation (as
      // a stop after the last step): the resume validates it.
      if (!validate(epoch + 1, 0, over)) {
        save("last", checkpoint(epoch, batches));
        return {true, false, state};
      }
    }
    save("last", checkpoint(epoch + 1, 0));
    if (over) return {false, true, state};
  }
  return {false, false, state};
}

}  // namespace enf
