// enf train: maximum-likelihood training of a flow on DW4 or LJ13, with a run
// directory (config.json, metrics.jsonl, checkpoints best/ and last/), exact
// resume, and a clean stop on SIGINT.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "datasets/file_io.hpp"
#include "datasets/particles.hpp"
#include "engine/checkpoint.hpp"
#include "engine/initialization.hpp"
#include "engine/trainer.hpp"
#include "tools/commands.hpp"
#include "tools/options.hpp"

namespace enf::cli {

namespace {

namespace fs = std::filesystem;

const CommandSpec kTrain{
    "train",
    "Train an E(n) equivariant flow on DW4 or LJ13 by maximum likelihood.",
    "Writes a run directory: config.json (the resolved options), metrics.jsonl (one JSON\n"
    "line per step and per validation), best/ (the checkpoint with the lowest validation\n"
    "NLL) and last/ (the latest state, with the optimizer, saved after every epoch and on\n"
    "Ctrl-C). --resume DIR continues exactly where DIR stopped (options given on the\n"
    "command line override the saved ones, e.g. --epochs to train longer). --config FILE\n"
    "reads options from a JSON object with the same keys as the flags.\n"
    "Data: the shipped splits (DW4: train/val; LJ13: the first 9000 rows of the\n"
    "validation split for training, its last 1000 for validation) or --data/--val-data.\n"
    "Validation: NLL with the exact trace at rtol = atol = 1e-5 in float64.\n"
    "\nexample:\n  enf train --system dw4 --epochs 20 --n-data 1000 --out runs/dw4",
    {
        {"system", "dw4|lj13", "dw4", "particle system"},
        {"out", "DIR", "", "run directory (default runs/<system>)"},
        {"resume", "DIR", "", "continue the run in DIR"},
        {"config", "FILE", "", "JSON file with option values"},
        {"data", "FILE", "", "training structures (.npy); default: the shipped split"},
        {"val-data", "FILE", "", "validation structures (.npy); default: the shipped split"},
        {"n-data", "N", "1000", "training structures used (first N rows)"},
        {"val-samples", "N", "500", "validation structures used"},
        {"nf", "H", "32", "hidden width"},
        {"layers", "L", "3", "EGNN layers"},
        {"attention", "BOOL", "true", "attention on messages"},
        {"tanh", "BOOL", "true", "tanh-bounded coordinate updates"},
        {"condition-time", "BOOL", "true", "time as a node feature"},
        {"lr", "LR", "5e-4", "learning rate (AdamW, AMSGrad)"},
        {"weight-decay", "W", "1e-12", "AdamW weight decay"},
        {"batch", "B", "100", "batch size"},
        {"epochs", "E", "10", "epochs"},
        {"val-interval", "E", "1", "validate every E epochs"},
        {"trace", "exact|rademacher|gaussian", "rademacher", "divergence estimator for training"},
        {"method", "NAME", "dopri5", "ODE solver"},
        {"rtol", "R", "1e-4", "solver relative tolerance (training)"},
        {"atol", "A", "1e-4", "solver absolute tolerance (training)"},
        {"ode-regularization", "L", "0", "weight of the kinetic and Frobenius regularizers"},
        {"gradient", "adjoint|discrete", "adjoint", "gradient: continuous adjoint or backprop through the solver"},
        {"clip", "BOOL", "false", "adaptive gradient clipping (1.5 mean + 2 std of recent norms)"},
        {"precision", "float|double", "float", "scalar type of the field during training"},
        {"seed", "S", "0", "seed of initialisation, data order and noise"},
        {"threads", "N", "0", "threads (0: all cores)"},
    }};

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

// The options that define a run (everything but where it is and how it runs).
const std::vector<std::string> kRunKeys = {
    "system", "data", "val-data", "n-data", "val-samples", "nf", "layers", "attention", "tanh", "condition-time",
    "lr", "weight-decay", "batch", "epochs", "val-interval", "trace", "method", "rtol", "atol",
    "ode-regularization", "gradient", "clip", "precision", "seed"};

void apply_json_defaults(ParsedOptions& opt, const nlohmann::json& j, const std::string& from) {
  if (!j.is_object()) throw UsageError(from + ": expected a JSON object of option values");
  for (const auto& [key, value] : j.items()) {
    try {
      opt.set_default(key, value.is_string() ? value.get<std::string>() : value.dump());
    } catch (const UsageError&) {
      throw UsageError(from + ": unknown option '" + key + "'");
    }
  }
}

template <class T>
int train(const ParsedOptions& opt, const fs::path& run, const Checkpoint* resume) {
  const ParticleSystem sys = particle_system(opt.choice("system", {"dw4", "lj13"}));
  const int S = sys.n * sys.dim, B = opt.integer("batch"), epochs = opt.integer("epochs");
  const int val_interval = std::max(1, opt.integer("val-interval"));
  if (B < 1 || epochs < 1) throw UsageError("--batch and --epochs must be at least 1");
  auto load = [&](const std::string& flag, const std::string& split, long count) {
    if (!opt.str(flag).empty()) return load_structures(opt.str(flag), sys, 0, count);
    const SplitSpec sp = shipped_split(sys, split);
    return load_structures(sp.path, sys, sp.first, sp.count < 0 ? count : std::min<long>(sp.count, count));
  };
  const Structures train_data = load("data", "train", opt.integer("n-data"));
  const Structures val_data = load("val-data", "val", opt.integer("val-samples"));
  if (train_data.rows < B)
    throw UsageError("the batch (" + std::to_string(B) + ") is larger than the training data (" +
                     std::to_string(train_data.rows) + " structures)");

  FieldConfig field;
  field.dim = sys.dim;
  field.hidden = opt.integer("nf");
  field.layers = opt.integer("layers");
  field.attention = opt.boolean("attention");
  field.tanh = opt.boolean("tanh");
  field.condition_time = opt.boolean("condition-time");
  CnfOptions cnf;
  cnf.trace = parse_trace_estimator(opt.choice("trace", {"exact", "rademacher", "gaussian"}));
  cnf.gradient = parse_gradient_mode(opt.choice("gradient", {"adjoint", "discrete"}));
  cnf.ode_regularization = opt.real("ode-regularization");
  cnf.solver.method = ode::parse_method(opt.str("method"));
  cnf.solver.rtol = opt.real("rtol");
  cnf.solver.atol = opt.real("atol");
  cnf.adjoint_solver = cnf.solver;
  if (auto e = cnf.validate(); !e.empty()) throw UsageError(e);
  AdamWOptions adam;
  adam.lr = opt.real("lr");
  adam.weight_decay = opt.real("weight-decay");
  const std::uint64_t seed = std::uint64_t(opt.integer("seed"));

  Parameters<double> init(field_layout(field));
  Rng rng(seed);
  initialize_egnn(field.egnn(), init, rng);
  int start_epoch = 0, skip_batches = 0;
  long global_step = 0;
  double best_val = std::numeric_limits<double>::infinity();
  if (resume) {
    if (resume->params.layout.total_size() != init.layout.total_size())
      throw UsageError("--resume: the saved model's size differs from the options'");
    init.values = resume->params.values;
    const auto& st = resume->extra.at("training_state");
    start_epoch = st.at("epoch");
    skip_batches = st.at("batch_in_epoch");
    global_step = st.at("global_step");
    // JSON has no infinity: "no validation yet" is stored as null.
    if (st.contains("best_val_nll") && st["best_val_nll"].is_number()) best_val = st["best_val_nll"];
  }
  Trainer<T> trainer(field, cnf, adam, init, opt.integer("threads"), opt.boolean("clip"));
  if (resume) {
    std::vector<double> m, v, vmax;
    for (const auto& [name, values] : resume->state) {
      if (name == "adam.m") m = values;
      if (name == "adam.v") v = values;
      if (name == "adam.v_max") vmax = values;
    }
    trainer.optimizer().restore(resume->extra["training_state"].value("optimizer_steps", 0L), m, v, vmax);
  }

  auto checkpoint = [&](int epoch, int batch_in_epoch) {
    Checkpoint c;
    c.system = sys.name;
    c.field = field;
    c.params = trainer.params();
    nlohmann::json cfg;
    for (const auto& [k, v] : opt.values()) cfg[k] = v;
    c.training = cfg;
    c.data = {{"n_particles", sys.n}, {"train_rows", train_data.rows}, {"val_rows", val_data.rows}};
    c.extra["training_state"] = {{"epoch", epoch}, {"batch_in_epoch", batch_in_epoch}, {"global_step", global_step},
                                 {"best_val_nll", std::isfinite(best_val) ? nlohmann::json(best_val) : nlohmann::json()},
                                 {"optimizer_steps", trainer.optimizer().steps()}};
    c.state = {{"adam.m", trainer.optimizer().m()},
               {"adam.v", trainer.optimizer().v()},
               {"adam.v_max", trainer.optimizer().v_max()}};
    return c;
  };

  std::ofstream metrics(run / "metrics.jsonl", std::ios::app);
  if (!metrics) throw std::runtime_error("cannot write " + (run / "metrics.jsonl").string());
  CnfOptions val_opt;
  val_opt.trace = TraceEstimator::Exact;
  val_opt.solver.rtol = val_opt.solver.atol = 1e-5;
  val_opt.adjoint_solver = val_opt.solver;
  auto validate = [&]() {
    VectorField<double> f64(field, trainer.params().layout);
    Cnf<VectorField<double>> c64(f64, val_opt);
    BatchFlow<VectorField<double>> flow(c64, opt.integer("threads"));
    const auto r = flow.log_likelihood(trainer.params().values.data(), val_data.x, val_data.rows, sys.n, seed);
    double mean = 0, var = 0;
    for (const auto& e : r) mean -= e.log_px / val_data.rows;
    for (const auto& e : r) var += (-e.log_px - mean) * (-e.log_px - mean) / std::max(1, val_data.rows - 1);
    return std::make_pair(mean, std::sqrt(var / val_data.rows));
  };

  const int batches = train_data.rows / B;
  const long total_steps = long(epochs) * batches;
  const bool tty = ::isatty(STDERR_FILENO);
  const auto t_start = std::chrono::steady_clock::now();
  const long first_step = global_step;
  double running = 0;
  std::signal(SIGINT, on_sigint);
  std::fprintf(stderr, "enf train: %s, %d training / %d validation structures, batch %d, %d epochs, %d threads -> %s\n",
               sys.name.c_str(), train_data.rows, val_data.rows, B, epochs, trainer.flow().threads(), run.c_str());
  for (int epoch = start_epoch; epoch < epochs; ++epoch) {
    std::vector<int> order(train_data.rows);
    std::iota(order.begin(), order.end(), 0);
    Rng shuffle = Rng(seed).split(1000 + std::uint64_t(epoch));
    for (int i = train_data.rows - 1; i > 0; --i) std::swap(order[i], order[int(shuffle.uniform() * (i + 1))]);
    for (int b = (epoch == start_epoch ? skip_batches : 0); b < batches; ++b) {
      std::vector<double> x;
      x.reserve(std::size_t(B) * S);
      for (int k = 0; k < B; ++k) {
        const int r = order[b * B + k];
        x.insert(x.end(), train_data.x.begin() + std::size_t(r) * S, train_data.x.begin() + std::size_t(r + 1) * S);
      }
      const StepReport rep = trainer.step(x, B, sys.n, (seed << 32) ^ std::uint64_t(global_step));
      ++global_step;
      running = global_step - first_step == 1 ? rep.nll : 0.95 * running + 0.05 * rep.nll;
      metrics << nlohmann::json{{"type", "step"}, {"step", global_step}, {"epoch", epoch}, {"loss", rep.loss},
                                {"nll", rep.nll}, {"grad_norm", rep.grad_norm}, {"clipped", rep.clipped},
                                {"nfe_forward", rep.nfe_forward}, {"nfe_backward", rep.nfe_backward},
                                {"seconds", rep.seconds_total}}
                      .dump()
              << '\n'
              << std::flush;
      const long done = global_step - first_step, left = total_steps - global_step;
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
      if (tty || done % std::max(1L, total_steps / 20) == 0) {
        const int width = 24, filled = int(width * double(global_step) / total_steps);
        std::fprintf(stderr, "%sepoch %d/%d [%s%s] step %ld/%ld  NLL %.3f  %s elapsed, ETA %s%s", tty ? "\r" : "",
                     epoch + 1, epochs, std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                     global_step, total_steps, running, fmt_time(el).c_str(), fmt_time(el / done * left).c_str(),
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
    if ((epoch + 1) % val_interval == 0 || epoch + 1 == epochs) {
      const auto [nll, se] = validate();
      const bool best = nll < best_val;
      if (best) best_val = nll;
      metrics << nlohmann::json{{"type", "validation"}, {"step", global_step}, {"epoch", epoch + 1}, {"nll", nll},
                                {"standard_error", se}, {"best", best}}
                     .dump()
              << '\n'
              << std::flush;
      std::fprintf(stderr, "  validation after epoch %d: NLL %.4f ± %.4f%s\n", epoch + 1, nll, se,
                   best ? " (best so far)" : "");
      if (best) save_checkpoint((run / "best").string(), checkpoint(epoch + 1, 0));
    }
    save_checkpoint((run / "last").string(), checkpoint(epoch + 1, 0));
  }
  std::printf("run %s: %ld steps, best validation NLL %.4f\n  best checkpoint: %s\n  last checkpoint: %s\n  metrics: %s\n",
              run.c_str(), global_step, best_val, (run / "best").c_str(), (run / "last").c_str(),
              (run / "metrics.jsonl").c_str());
  return 0;
}

}  // namespace

int run_train(const std::vector<std::string>& args) {
  ParsedOptions opt(kTrain, args);
  if (opt.help()) return std::fputs(usage(kTrain).c_str(), stdout), 0;
  std::unique_ptr<Checkpoint> resume;
  fs::path run;
  if (!opt.str("resume").empty()) {
    run = opt.str("resume");
    const std::string cfg_path = (run / "config.json").string();
    apply_json_defaults(opt, nlohmann::json::parse(read_file_bytes(cfg_path, "run config")), cfg_path);
    resume = std::make_unique<Checkpoint>(load_checkpoint((run / "last").string()));
  } else {
    if (!opt.str("config").empty()) {
      const std::string path = opt.str("config");
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(read_file_bytes(path, "config"));
      } catch (const nlohmann::json::exception& e) {
        throw UsageError("config file '" + path + "': not valid JSON (" + e.what() + ")");
      }
      apply_json_defaults(opt, j, "config file '" + path + "'");
    }
    run = opt.str("out").empty() ? fs::path("runs") / opt.str("system") : fs::path(opt.str("out"));
    if (fs::exists(run / "last"))
      throw UsageError("run directory " + run.string() + " already holds a run; use --resume " + run.string() +
                       " to continue it, or another --out");
    fs::create_directories(run);
    nlohmann::json cfg;
    for (const auto& key : kRunKeys) cfg[key] = opt.str(key);
    write_file_atomically((run / "config.json").string(), cfg.dump(2) + "\n", "run config");
  }
  return opt.choice("precision", {"float", "double"}) == "float" ? train<float>(opt, run, resume.get())
                                                                  : train<double>(opt, run, resume.get());
}

}  // namespace enf::cli
