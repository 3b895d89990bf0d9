#include "tools/train_loop.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <numeric>

#include "datasets/file_io.hpp"
#include "engine/rng.hpp"

namespace enf::cli {

namespace fs = std::filesystem;

namespace {

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_sigint(int) { g_interrupted = 1; }

std::string fmt_time(double s) {
  char b[32];
  if (s >= 3600)
    std::snprintf(b, sizeof b, "%dh%02dm", int(s / 3600), int(s / 60) % 60);
  else
    std::snprintf(b, sizeof b, "%dm%02ds", int(s / 60), int(s) % 60);
  return b;
}

void apply_json_defaults(ParsedOptions& opt, const nlohmann::json& j, const std::string& from) {
  if (!j.is_object()) throw UsageError(from + ": expected a JSON object of option values");
  for (const auto& [key, value] : j.items()) {
    try {
      opt.set_default(key, value.is_string() ? value.get<std::string>() : value.dump());
    } catch (const UsageError& e) {  // unknown key or bad value: name the file
      throw UsageError(from + ": " + e.what());
    }
  }
}

nlohmann::json read_json(const std::string& path, const std::string& kind) {
  try {
    return nlohmann::json::parse(read_file_bytes(path, kind));
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(kind + " file '" + path + "': not valid JSON (" + e.what() + ")");
  }
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

}  // namespace

CommandSpec train_spec(std::string summary, std::string details, std::vector<OptionSpec> specific,
                       const std::map<std::string, std::string>& defaults) {
  std::vector<OptionSpec> common = {
      {"out", "DIR", "", "run directory (default runs/<system>)"},
      {"resume", "DIR", "", "continue the run in DIR"},
      {"config", "FILE", "", "JSON file with option values"},
      {"nf", "H", "32", "hidden width", "1"},
      {"layers", "L", "3", "EGNN layers", "1"},
      {"attention", "BOOL", "true", "attention on messages"},
      {"tanh", "BOOL", "true", "tanh-bounded coordinate updates"},
      {"condition-time", "BOOL", "true", "time as a node feature"},
      {"lr", "LR", "5e-4", "learning rate (AdamW, AMSGrad)"},
      {"weight-decay", "W", "1e-12", "AdamW weight decay"},
      {"batch", "B", "100", "batch size", "1"},
      {"epochs", "E", "10", "epochs", "1"},
      {"val-interval", "E", "1", "validate every E epochs", "1"},
      {"trace", "exact|rademacher|gaussian", "rademacher", "divergence estimator for training"},
      {"method", "NAME", "dopri5", "ODE solver"},
      {"rtol", "R", "1e-4", "solver relative tolerance (training)"},
      {"atol", "A", "1e-4", "solver absolute tolerance (training)"},
      {"ode-regularization", "L", "0", "weight of the kinetic and Frobenius regularizers"},
      {"gradient", "adjoint|discrete", "adjoint", "gradient: continuous adjoint or backprop through the solver"},
      {"clip", "BOOL", "false", "adaptive gradient clipping (1.5 mean + 2 std of recent norms)"},
      {"precision", "float|double", "float", "scalar type of the field during training"},
      {"seed", "S", "0", "seed of initialisation, data order and noise"},
      {"threads", "N", "0", "threads (0: all cores)", "0"},
  };
  for (auto& o : common)
    if (auto it = defaults.find(o.name); it != defaults.end()) o.default_value = it->second;
  specific.insert(specific.end(), common.begin(), common.end());
  return CommandSpec{"train", std::move(summary), std::move(details), std::move(specific)};
}

const std::vector<std::string> kCommonRunKeys = {
    "nf",     "layers",       "attention", "tanh",   "condition-time", "lr",   "weight-decay",       "batch",
    "epochs", "val-interval", "trace",     "method", "rtol",           "atol", "ode-regularization", "gradient",
    "clip",   "precision",    "seed"};

CnfOptions training_cnf_options(const ParsedOptions& opt) {
  CnfOptions cnf;
  cnf.trace = parse_trace_estimator(opt.choice("trace", {"exact", "rademacher", "gaussian"}));
  cnf.gradient = parse_gradient_mode(opt.choice("gradient", {"adjoint", "discrete"}));
  cnf.ode_regularization = opt.real("ode-regularization");
  cnf.solver.method = opt.parsed("method", ode::parse_method);
  cnf.solver.rtol = opt.real("rtol");
  cnf.solver.atol = opt.real("atol");
  cnf.adjoint_solver = cnf.solver;
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

CnfOptions validation_cnf_options(TraceEstimator trace) {
  CnfOptions o;
  o.trace = trace;
  o.solver.rtol = o.solver.atol = 1e-5;
  o.adjoint_solver = o.solver;
  return o;
}

TrainingJob training_job(const ParsedOptions& opt, int rows, const std::string& what) {
  TrainingJob job;
  job.rows = rows;
  job.batch = opt.integer("batch");
  job.epochs = opt.integer("epochs");
  job.val_interval = opt.integer("val-interval");  // the option table holds these >= 1
  job.seed = std::uint64_t(opt.integer("seed"));
  if (rows < job.batch)
    throw UsageError("the batch (" + std::to_string(job.batch) + ") is larger than the training data (" +
                     std::to_string(rows) + " " + what + ")");
  return job;
}

nlohmann::json options_json(const ParsedOptions& opt) {
  nlohmann::json cfg = nlohmann::json::object();
  for (const auto& [k, v] : opt.values()) cfg[k] = v;
  return cfg;
}

std::vector<int> epoch_order(int rows, std::uint64_t seed, int epoch) {
  std::vector<int> order(rows);
  std::iota(order.begin(), order.end(), 0);
  Rng shuffle = Rng(seed).split(1000 + std::uint64_t(epoch));
  for (int i = rows - 1; i > 0; --i) std::swap(order[i], order[int(shuffle.uniform() * (i + 1))]);
  return order;
}

std::uint64_t step_seed(std::uint64_t seed, long global_step) { return (seed << 32) ^ std::uint64_t(global_step); }

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
    const std::string cfg_path = (r.path / "config.json").string();
    if (!fs::is_directory(r.path))
      throw UsageError("--resume " + r.path.string() + ": no such run directory");
    if (!fs::exists(cfg_path) || !fs::exists(r.path / "last"))
      throw UsageError("--resume " + r.path.string() +
                       ": not a run directory with a saved state (config.json and last/; a run saves last/ "
                       "after its first epoch or on Ctrl-C)");
    apply_json_defaults(opt, read_json(cfg_path, "run config"), cfg_path);
    r.resume = std::make_unique<Checkpoint>(load_checkpoint((r.path / "last").string()));
    return r;
  }
  if (!opt.str("config").empty()) {
    const std::string path = opt.str("config");
    apply_json_defaults(opt, read_json(path, "config"), "config file '" + path + "'");
  }
  r.path = opt.str("out").empty() ? fs::path("runs") / opt.str("system") : fs::path(opt.str("out"));
  std::error_code ec;
  if (fs::exists(r.path, ec) && !fs::is_directory(r.path, ec))
    throw UsageError("--out " + r.path.string() + ": a file of that name exists; a run is a directory");
  if (fs::exists(r.path / "last", ec))
    throw UsageError("run directory " + r.path.string() + " already holds a run; use --resume " + r.path.string() +
                     " to continue it, or another --out");
  for (fs::path p = r.path.parent_path(); !p.empty(); p = p.parent_path())
    if (fs::exists(p, ec)) {
      if (!fs::is_directory(p, ec))
        throw UsageError("--out " + r.path.string() + ": '" + p.string() + "' is a file, not a directory");
      break;
    }
  r.new_config = nlohmann::json::object();
  for (const auto& key : run_keys) {  // a flag not given has no value
    const auto it = opt.values().find(key);
    r.new_config[key] = it == opt.values().end() ? std::string() : it->second;
  }
  return r;
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

int run_training(const TrainingJob& job, TrainingState state, const RunDirectory& run_dir) {
  const fs::path& run = run_dir.path;
  if (!run_dir.new_config.is_null()) {
    std::error_code ec;
    fs::create_directories(run, ec);
    if (ec) throw std::runtime_error("run directory '" + run.string() + "': cannot create it: " + ec.message());
    write_file_atomically((run / "config.json").string(), run_dir.new_config.dump(2) + "\n", "run config");
  }
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
  const int batches = job.rows / job.batch;
  const long total_steps = long(job.epochs) * batches;
  const bool tty = ::isatty(STDERR_FILENO);
  const auto t_start = std::chrono::steady_clock::now();
  const long first_step = state.global_step;
  double running = 0;
  std::signal(SIGINT, on_sigint);
  std::fprintf(stderr, "enf train: %s -> %s\n", job.description.c_str(), run.c_str());
  const int start_epoch = state.epoch;
  for (int epoch = start_epoch; epoch < job.epochs; ++epoch) {
    const std::vector<int> order = epoch_order(job.rows, job.seed, epoch);
    for (int b = (epoch == start_epoch ? state.batch_in_epoch : 0); b < batches; ++b) {
      const std::vector<int> rows(order.begin() + std::size_t(b) * job.batch,
                                  order.begin() + std::size_t(b + 1) * job.batch);
      nlohmann::json line{{"type", "step"}, {"step", state.global_step + 1}, {"epoch", epoch}};
      const StepReport rep = job.step(rows, step_seed(job.seed, state.global_step), line);
      ++state.global_step;
      running = state.global_step - first_step == 1 ? rep.nll : 0.95 * running + 0.05 * rep.nll;
      line.update({{"loss", rep.loss},
                   {"nll", rep.nll},
                   {"grad_norm", rep.grad_norm},
                   {"clipped", rep.clipped},
                   {"nfe_forward", rep.nfe_forward},
                   {"nfe_backward", rep.nfe_backward},
                   {"seconds", rep.seconds_total}});
      metrics << line.dump() << '\n' << std::flush;
      const long done = state.global_step - first_step, left = total_steps - state.global_step;
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
      if (tty || done % std::max(1L, total_steps / 20) == 0) {
        const int width = 24, filled = int(width * double(state.global_step) / total_steps);
        std::fprintf(stderr, "%sepoch %d/%d [%s%s] step %ld/%ld  NLL %.3f  %s elapsed, ETA %s%s", tty ? "\r" : "",
                     epoch + 1, job.epochs, std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                     state.global_step, total_steps, running, fmt_time(el).c_str(), fmt_time(el / done * left).c_str(),
                     tty ? "   " : "\n");
      }
      if (g_interrupted) {
        save_checkpoint((run / "last").string(), checkpoint(epoch, b + 1));
        std::fprintf(stderr, "\ninterrupted: state saved to %s; continue with: enf train --resume %s\n",
                     (run / "last").c_str(), run.c_str());
        return 130;
      }
    }
    if (tty) std::fputc('\n', stderr);
    if ((epoch + 1) % job.val_interval == 0 || epoch + 1 == job.epochs) {
      const Validation v = job.validate();
      const bool best = v.nll < state.best_val;
      if (best) state.best_val = v.nll;
      nlohmann::json line{{"type", "validation"}, {"step", state.global_step},          {"epoch", epoch + 1},
                          {"nll", v.nll},         {"standard_error", v.standard_error}, {"best", best}};
      line.update(v.extra);
      metrics << line.dump() << '\n' << std::flush;
      std::fprintf(stderr, "  validation after epoch %d: NLL %.4f ± %.4f%s\n", epoch + 1, v.nll, v.standard_error,
                   best ? " (best so far)" : "");
      if (best) save_checkpoint((run / "best").string(), checkpoint(epoch + 1, 0));
    }
    save_checkpoint((run / "last").string(), checkpoint(epoch + 1, 0));
  }
  std::printf(
      "run %s: %ld steps, best validation NLL %.4f\n  best checkpoint: %s\n  last checkpoint: %s\n  metrics: %s\n",
      run.c_str(), state.global_step, state.best_val, (run / "best").c_str(), (run / "last").c_str(),
      (run / "metrics.jsonl").c_str());
  return 0;
}

}  // namespace enf::cli
