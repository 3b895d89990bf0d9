#include "tools/train_options.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "datasets/file_io.hpp"
#include "datasets/registry.hpp"
#include "tools/mpi_world.hpp"
#include "tools/option_groups.hpp"

namespace enf::cli {

namespace fs = std::filesystem;

namespace {

// The signal that asked to stop: SIGINT (Ctrl-C) or SIGTERM (what Slurm,
// systemd and container runtimes send before they kill).
volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_stop_signal(int sig) {
  g_interrupted = sig;
  note_stop_signal();
}

std::string fmt_time(double s) {
  char b[32];
  if (s >= 3600)
    std::snprintf(b, sizeof b, "%dh%02dm", int(s / 3600), int(s / 60) % 60);
  else
    std::snprintf(b, sizeof b, "%dm%02ds", int(s / 60), int(s) % 60);
  return b;
}

// The engine's refusals of what the command line asked for are usage errors.
template <class F>
auto as_usage_error(F f) {
  try {
    return f();
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
}

void apply_json_defaults(ParsedOptions& opt, const nlohmann::json& j, const std::string& from) {
  if (!j.is_object()) throw UsageError(from + ": expected a JSON object of option values");
  // Errors about these values, now or when they are used, name the file.
  // Values are strings (as run directories before numbers were typed kept
  // them), numbers or booleans; an array or object is no option value (and
  // printing a deeply nested one recursed until the stack overflowed: a
  // fuzzer finding, tests/data/fuzz_regressions/config_*).
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string() && !value.is_number() && !value.is_boolean())
      throw UsageError(from + ": " + key + ": expected a number, string or boolean, got " +
                       (value.is_null() ? "null" : value.is_array() ? "an array" : "an object"));
    opt.set_default(key, value.is_string() ? value.get<std::string>() : value.dump(), from);
  }
}

// An option's value as it is saved (config.json, a checkpoint's training
// options): flags and BOOL options as booleans, numbers as numbers, the rest
// (names, paths, choices) as strings. apply_json_defaults reads each back to
// the same string the command line would give (numbers print exactly: 5e-4
// as 0.0005, the same double).
nlohmann::json typed_value(const OptionSpec& o, const std::string& value) {
  if (o.value_hint.empty()) return value == "1";
  if (o.value_hint == "BOOL") {
    for (const char* t : {"true", "yes", "on", "1"})
      if (value == t) return true;
    for (const char* f : {"false", "no", "off", "0"})
      if (value == f) return false;
    return value;  // not a boolean: kept as given, refused where it is used
  }
  // A path is a string even when it reads as a number (a file called "10").
  for (const char* path_hint : {"FILE", "DIR", "PATH", "CKPT"})
    if (o.value_hint.find(path_hint) != std::string::npos) return value;
  const nlohmann::json n = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  const bool exact = n.is_number_integer() || (n.is_number_float() && std::isfinite(n.get<double>()));
  // Only a plain number: " 1" or "1 " would not read back as the same text.
  return exact && !value.empty() && value.find_first_of(" \t\r\n") == std::string::npos ? n : nlohmann::json(value);
}

// The counters restore_training reads, checked here so that a damaged
// last/model.json is named with what was expected (nlohmann's type_error
// names neither the file nor the key).
void check_training_state(const Checkpoint& c, const std::string& file) {
  if (!c.extra.contains("training_state")) return;  // restore_training says so
  const nlohmann::json& st = c.extra.at("training_state");
  if (!st.is_object()) throw std::runtime_error("checkpoint file '" + file + "': 'training_state' must be an object");
  for (const char* key : {"epoch", "batch_in_epoch", "global_step"})
    if (!st.contains(key) || !st.at(key).is_number_integer())
      throw std::runtime_error("checkpoint file '" + file + "': training_state." + key + " must be an integer");
  if (st.contains("optimizer_steps") && !st.at("optimizer_steps").is_number_integer())
    throw std::runtime_error("checkpoint file '" + file + "': training_state.optimizer_steps must be an integer");
}

// The value of --name in args ("--name V" or "--name=V"), or "".
std::string raw_option(const std::vector<std::string>& args, const std::string& name) {
  std::string v;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--" + name && i + 1 < args.size()) v = args[i + 1];
    if (args[i].rfind("--" + name + "=", 0) == 0) v = args[i].substr(name.size() + 3);
  }
  return v;
}

// The "system" of a JSON file of options, or "" (a broken file is reported
// by the parse that follows, not here).
std::string system_in(const fs::path& path) {
  try {
    const auto j = nlohmann::json::parse(read_file_bytes(path.string(), "config"));
    if (j.is_object() && j.contains("system") && j["system"].is_string()) return j["system"];
  } catch (const std::exception&) {
  }
  return {};
}

// The progress bar with the running NLL (or flow-matching loss) and ETA: on a
// terminal redrawn in place every step, else about twenty lines per session.
// With a time budget the bar and the ETA follow whichever ends first.
class StderrReporter : public TrainingReporter {
 public:
  void started(const TrainingJob& job, const fs::path& run) override {
    std::fprintf(stderr, "enf train: %s -> %s\n", job.description.c_str(), run.c_str());
  }
  void stepped(const TrainingProgress& p) override {
    const double el = p.elapsed_seconds;
    const long left = p.total_steps - p.global_step;
    double eta = el / p.steps_this_session * left, done = double(p.global_step) / p.total_steps;
    if (p.max_seconds > 0) {
      eta = std::min(eta, std::max(0.0, p.max_seconds - p.run_seconds));
      done = std::max(done, std::min(1.0, p.run_seconds / p.max_seconds));
    }
    const int twentieth = int(done * 20);
    if (!tty_ && twentieth <= last_twentieth_ && p.steps_this_session > 1) return;
    last_twentieth_ = twentieth;
    const int width = 24, filled = int(width * done);
    // A run bounded by time alone (--max-time without --epochs) has no epoch count to show.
    const std::string epochs = p.epochs >= kUnboundedEpochs ? "" : "/" + std::to_string(p.epochs);
    const std::string steps = p.epochs >= kUnboundedEpochs ? "" : "/" + std::to_string(p.total_steps);
    const char* what = p.objective == TrainingObjective::FlowMatching ? "FM loss" : "NLL";
    std::fprintf(stderr, "%sepoch %d%s [%s%s] step %ld%s  %s %.3f  %s elapsed, ETA %s%s", tty_ ? "\r" : "",
                 p.epoch + 1, epochs.c_str(), std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                 p.global_step, steps.c_str(), what, p.running_loss, fmt_time(el).c_str(), fmt_time(eta).c_str(),
                 tty_ ? "   " : "\n");
  }
  void epoch_ended(int) override {
    if (tty_) std::fputc('\n', stderr);
  }
  void validated(int epochs_done, const Validation& v, bool best) override {
    std::fprintf(stderr, "  validation after epoch %d: NLL %.4f ± %.4f%s\n", epochs_done, v.nll, v.standard_error,
                 best ? " (best so far)" : "");
  }

 private:
  bool tty_ = ::isatty(STDERR_FILENO);
  int last_twentieth_ = -1;
};

}  // namespace

CommandSpec train_spec(std::string summary, std::string details, std::vector<OptionSpec> specific,
                       const std::map<std::string, std::string>& defaults) {
  std::vector<OptionSpec> common = {
      {"out", "DIR", "", "run directory (default runs/<system>)"},
      {"resume", "DIR", "", "continue the run in DIR"},
      {"config", "FILE", "", "JSON file with option values"},
      {"nf", "H", "32", "hidden width", "1", "4096"},
      {"layers", "L", "3", "EGNN layers", "1", "100"},
      {"attention", "BOOL", "true", "attention on messages"},
      {"tanh", "BOOL", "true", "tanh-bounded coordinate updates"},
      {"condition-time", "BOOL", "true", "time as a node feature"},
      {"lr", "LR", "5e-4", "learning rate (AdamW, AMSGrad)"},
      {"weight-decay", "W", "1e-12", "AdamW weight decay"},
      {"batch", "B", "100", "batch size", "1", "100000"},
      {"epochs", "E", "10", "epochs (with --max-time and no --epochs: no limit)", "1", "1000000"},
      {"max-time", "MINUTES", "0",
       "time budget: training (over every session) stops after it, validated and saved; 0: none", "0", "10000000"},
      {"val-interval", "E", "auto",
       "validate every E epochs (auto: 1; flow matching: every ~5000 steps); the last epoch always", "1", "1000000"},
      {"objective", "maximum-likelihood|flow-matching", "maximum-likelihood",
       "what a step minimises: the NLL through the ODE, or the flow-matching regression (no ODE solve)"},
      {"coupling", "independent|minibatch-ot|equivariant-ot", "independent",
       "flow matching: how data and prior draws are paired in a batch"},
      {"time-sampling", "uniform|logit-normal", "uniform", "flow matching: distribution of t"},
      {"sigma-min", "S", "0.01", "flow matching: noise around the straight path", "0", "10"},
      {"ema", "DECAY", "auto",
       "average of the weights validated and saved (auto: 0.999 for flow matching, 0 (off) otherwise)", "0",
       "0.999999"},
      {"ode-regularization", "L", "0", "weight of the kinetic and Frobenius regularizers"},
      {"gradient", "adjoint|discrete", "adjoint", "gradient: continuous adjoint or backprop through the solver"},
      {"clip", "BOOL", "false", "adaptive gradient clipping (1.5 mean + 2 std of recent norms)"},
  };
  // Training's own defaults of the solver and runtime groups.
  std::vector<OptionOverride> solver = {
      {kTrace, "rademacher", "divergence estimator for training"},
      {kRtol, "1e-4", "solver relative tolerance (training)"},
      {kAtol, "1e-4", "solver absolute tolerance (training)"},
  };
  std::vector<OptionOverride> runtime = {
      {kPrecision, "float", "scalar type of the field during training"},
      {kSeed, "0", "seed of initialisation, data order and noise"},
  };
  for (auto* group : {&solver, &runtime})
    for (auto& o : *group)
      if (auto it = defaults.find(o.name); it != defaults.end()) o.default_value = it->second;
  for (const auto& [name, value] : defaults) {
    bool found = false;
    for (auto& o : common)
      if (o.name == name) o.default_value = value, found = true;
    for (const auto* group : {&solver, &runtime})
      for (const auto& o : *group) found = found || o.name == name;
    if (!found) throw std::logic_error("train_spec: no option --" + name + " to give a default");
  }
  specific.insert(specific.end(), common.begin(), common.end());
  // Several processes: the same paragraph for particles and molecules, before the examples.
  const std::string ranks =
      "Several processes (enf built with ENF_MPI=ON): mpirun -np K enf train ... (or srun)\n"
      "shares every batch among K ranks (each --threads threads; 0: its share of the node's\n"
      "cores) and takes the same steps, bit for bit, as one process with the same options:\n"
      "a run resumes on any K.\n"
      "Rank 0 writes the run directory (on a file system every rank sees); a stop of any\n"
      "rank stops all; a rank that dies ends the job, the last checkpoint intact.\n";
  const std::size_t examples = details.find("\nexamples:");
  if (examples == std::string::npos) details += "\n" + ranks.substr(0, ranks.size() - 1);
  else details.insert(examples, ranks);
  return CommandSpec{"train", std::move(summary), std::move(details),
                     with_groups(std::move(specific), {{solver_group(), {}, solver}, {runtime_group(), {}, runtime}})};
}

std::vector<std::string> common_run_keys() {
  std::vector<std::string> k = {"nf",           "layers",    "attention",     "tanh",      "condition-time",
                                "lr",           "weight-decay", "batch",      "epochs",    "max-time",
                                "val-interval", "objective", "coupling",      "time-sampling", "sigma-min",
                                "ema",          "ode-regularization", "gradient", "clip"};
  for (const auto& name : solver_option_names()) k.push_back(name);
  k.push_back(kPrecision);
  k.push_back(kSeed);
  return k;
}

CnfOptions training_cnf_options(const ParsedOptions& opt) {
  CnfOptions cnf = parse_solver(opt);
  cnf.gradient = parse_gradient_mode(opt.choice("gradient", {"adjoint", "discrete"}));
  cnf.ode_regularization = opt.real("ode-regularization");
  if (auto e = cnf.validate(); !e.empty()) throw UsageError(e);
  return cnf;
}

AdamWOptions training_adam_options(const ParsedOptions& opt) {
  AdamWOptions adam;
  adam.lr = opt.real("lr");
  adam.weight_decay = opt.real("weight-decay");
  if (auto e = adam.validate(); !e.empty()) throw UsageError(e);
  return adam;
}

FlowMatchingOptions training_flow_matching_options(const ParsedOptions& opt) {
  FlowMatchingOptions fm;
  fm.coupling = opt.parsed("coupling", parse_coupling);
  fm.time = opt.parsed("time-sampling", parse_time_sampling);
  fm.sigma_min = opt.real("sigma-min");
  if (auto e = fm.validate(); !e.empty()) throw UsageError(e);
  return fm;
}

TrainingObjective training_objective(const ParsedOptions& opt) { return opt.parsed("objective", parse_objective); }

TrainingJob training_job(const ParsedOptions& opt, int rows, const std::string& what) {
  TrainingJob job;
  job.rows = rows;
  job.batch = opt.integer("batch");
  job.epochs = opt.integer("epochs");
  job.seed = parse_runtime(opt).seed;
  job.objective = training_objective(opt);
  job.max_seconds = 60 * opt.real("max-time");
  as_usage_error([&] { return check_batch_fits(job.batch, rows, what), 0; });
  const bool matching = job.objective == TrainingObjective::FlowMatching;
  // Flow-matching steps are cheap (one evaluation per sample, DW4 ~10 ms,
  // LJ13 ~40 ms for a batch of 100) and an exact-trace validation is not
  // (LJ13: ~0.15 s a structure): every epoch of a small data set would cost
  // more than the training, so validate every ~5000 steps.
  const int batches = rows / job.batch;
  job.val_interval = opt.str("val-interval") != "auto" ? opt.integer("val-interval")
                     : matching                        ? std::max(1, (5000 + batches - 1) / batches)
                                                       : 1;
  job.ema_decay = opt.str("ema") != "auto" ? opt.real("ema") : matching ? 0.999 : 0.0;
  return job;
}

nlohmann::json options_json(const ParsedOptions& opt) {
  nlohmann::json cfg = nlohmann::json::object();
  for (const auto& [k, v] : opt.values()) cfg[k] = typed_value(opt.spec().option(k), v);
  return cfg;
}

std::string train_system(const std::vector<std::string>& args) {
  std::string s = raw_option(args, "system");
  if (s.empty() && !raw_option(args, "resume").empty())
    s = system_in(fs::path(raw_option(args, "resume")) / "config.json");
  if (s.empty() && !raw_option(args, "config").empty()) s = system_in(raw_option(args, "config"));
  const std::string data = raw_option(args, "data");
  if (s.empty() && !data.empty() && fs::path(data).extension() != ".npy") s = "qm9";
  return s.empty() ? "dw4" : s;
}

RunDirectory open_run(ParsedOptions& opt, const std::vector<std::string>& run_keys) {
  RunDirectory r;
  if (!opt.str("resume").empty()) {
    r.path = opt.str("resume");
    const nlohmann::json cfg = as_usage_error([&] { return read_run_config(r.path); });
    apply_json_defaults(opt, cfg, "run config file '" + (r.path / "config.json").string() + "'");
    // Rank 0 locks and repairs the run directory, then the others read
    // last/ (a file system every rank sees, as on a cluster).
    Communicator& comm = world();
    if (comm.is_root()) r.resume = load_last_checkpoint(r.path);
    if (comm.size() > 1) {
      comm.any(false);  // every rank waits until rank 0 has repaired the directory
      if (!comm.is_root() && fs::exists(r.path / "last")) r.resume = std::make_unique<Checkpoint>(load_checkpoint((r.path / "last").string()));
    }
    check_training_state(*r.resume, (r.path / "last" / "model.json").string());
    return r;
  }
  if (!opt.str("config").empty()) {
    const std::string path = opt.str("config");
    apply_json_defaults(opt, as_usage_error([&] { return read_json_file(path, "config"); }),
                        "config file '" + path + "'");
  }
  // A time budget without --epochs bounds the run by time alone.
  if (opt.real("max-time") > 0 && !opt.given("epochs") && opt.label("epochs") == "--epochs")
    opt.set_default("epochs", std::to_string(kUnboundedEpochs));
  r.path = opt.str("out").empty() ? fs::path("runs") / opt.str("system") : fs::path(opt.str("out"));
  as_usage_error([&] { return check_new_run_directory(r.path), 0; });
  r.new_config = nlohmann::json::object();
  for (const auto& key : run_keys) {  // a flag not given has no value
    const auto it = opt.values().find(key);
    std::string value = it == opt.values().end() ? std::string() : it->second;
    // Data files are saved as absolute paths so that --resume works from any
    // directory; dataset names (qm9:train) stay names.
    std::error_code ec;
    if ((key == "data" || key == "val-data") && !value.empty() && !is_dataset_name(value) && fs::exists(value, ec))
      value = fs::absolute(value).lexically_normal().string();
    r.new_config[key] = typed_value(opt.spec().option(key), value);
  }
  return r;
}

int run_train_job(TrainingJob& job, const TrainingState& state, const RunDirectory& run) {
  job.stop_requested = [] { return g_interrupted != 0; };
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  // One rank reports (rank 0), the others train silently beside it.
  Communicator& comm = world();
  job.comm = &comm;
  if (comm.size() > 1) job.description += ", " + std::to_string(comm.size()) + " ranks (MPI)";
  StderrReporter stderr_reporter;
  TrainingReporter silent;
  const TrainingOutcome out = run_training(job, state, run, comm.is_root() ? stderr_reporter : silent);
  if (!comm.is_root()) return out.stopped ? 128 + int(g_interrupted ? g_interrupted : SIGTERM) : 0;
  const fs::path& dir = run.path;
  if (out.stopped) {
    std::fprintf(stderr, "\ninterrupted: state saved to %s; continue with: enf train --resume %s\n",
                 (dir / "last").c_str(), dir.c_str());
    // The shell's code for the signal, 130 for Ctrl-C (another rank's signal: SIGTERM's).
    return 128 + int(g_interrupted ? g_interrupted : SIGTERM);
  }
  if (out.out_of_time)
    std::fprintf(stderr, "time budget of %s used (%ld steps); a larger --max-time on --resume continues\n",
                 fmt_time(job.max_seconds).c_str(), out.state.global_step);
  std::printf(
      "run %s: %ld steps, best validation NLL %.4f\n  best checkpoint: %s\n  last checkpoint: %s\n  metrics: %s\n",
      dir.c_str(), out.state.global_step, out.state.best_val, (dir / "best").c_str(), (dir / "last").c_str(),
      (dir / "metrics.jsonl").c_str());
  return 0;
}

}  // namespace enf::cli
