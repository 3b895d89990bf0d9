// What enf train does the same way for particle systems and molecules: the
// run directory (config.json, metrics.jsonl, best/ and last/ checkpoints),
// exact resume (weights, AdamW moments, the gradient clipper's queue and the
// position in the epoch), the progress line on stderr, validation every few
// epochs, and a clean stop on SIGINT (state saved, exit 130).
//
// A run is a TrainingJob: the data size and schedule, and callbacks for one
// step on given rows, a validation, and the model as a checkpoint. The loop
// owns the order of the rows (epoch_order) and every step's noise seed
// (step_seed), so a resumed run repeats exactly what an uninterrupted one does.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/checkpoint.hpp"
#include "engine/optimizer.hpp"
#include "engine/trainer.hpp"
#include "tools/options.hpp"

namespace enf::cli {

// Where a run stands; saved in every checkpoint's extra.training_state.
struct TrainingState {
  int epoch = 0, batch_in_epoch = 0;
  long global_step = 0;
  double best_val = std::numeric_limits<double>::infinity();
};

struct Validation {
  double nll = 0, standard_error = 0;
  nlohmann::json extra = nlohmann::json::object();  // more keys for the metrics line
};

struct TrainingJob {
  std::string description;  // the first log line, after "enf train: "
  int rows = 0;             // training rows; an epoch is rows / batch full batches
  int batch = 0, epochs = 0, val_interval = 1;
  std::uint64_t seed = 0;
  // One step on the training rows `rows` with the noise seed `seed`; may add
  // keys to the step's metrics line.
  std::function<StepReport(const std::vector<int>& rows, std::uint64_t seed, nlohmann::json& metrics)> step;
  std::function<Validation()> validate;
  // The model as a checkpoint (configuration, weights, data provenance); the
  // loop adds the training state and the optimizer's and clipper's state.
  std::function<Checkpoint()> snapshot;
  AdamW* optimizer = nullptr;
  GradientClipper* clipper = nullptr;  // null: no clipping
};

// The table of an enf train variant: `specific` rows (system, data, model
// parts of its own), then the rows every variant has, with `defaults`
// replacing their defaults by name.
CommandSpec train_spec(std::string summary, std::string details, std::vector<OptionSpec> specific,
                       const std::map<std::string, std::string>& defaults);
// The options of the common rows that define a run (config.json holds them
// with the variant's own keys).
extern const std::vector<std::string> kCommonRunKeys;

// The common rows' solver and optimizer settings (UsageError when invalid),
// and every resolved option as JSON (a checkpoint's training configuration).
CnfOptions training_cnf_options(const ParsedOptions& opt);
AdamWOptions training_adam_options(const ParsedOptions& opt);
nlohmann::json options_json(const ParsedOptions& opt);
// The solver settings of validation: `trace`, rtol = atol = 1e-5 both ways.
CnfOptions validation_cnf_options(TraceEstimator trace);
// A job's schedule from the common rows (--batch, --epochs, --val-interval,
// --seed) for `rows` training rows, called `what` in errors (UsageError when
// the batch exceeds the rows); the
// caller fills in the description, the callbacks, optimizer and clipper.
TrainingJob training_job(const ParsedOptions& opt, int rows, const std::string& what);

// The order of the training rows in an epoch, and the noise seed of a step.
std::vector<int> epoch_order(int rows, std::uint64_t seed, int epoch);
std::uint64_t step_seed(std::uint64_t seed, long global_step);

// The system a command line asks for, before it is parsed with the table of
// that system: --system, else the "system" of --resume DIR's config.json or
// of --config FILE, else "qm9" when --data is not a .npy file, else "dw4".
std::string train_system(const std::vector<std::string>& args);

// Resolves the run directory of parsed options: --resume DIR (its
// config.json supplies every option not on the command line; its last/
// checkpoint is loaded), or a new run at --out (default runs/<system>) after
// applying --config FILE, whose config.json (the run_keys) run_training writes.
struct RunDirectory {
  std::filesystem::path path;
  std::unique_ptr<Checkpoint> resume;  // null for a new run
  // A new run's config.json: the directory is created and this written only
  // when training starts, so a run that fails while loading leaves nothing.
  nlohmann::json new_config;
};
RunDirectory open_run(ParsedOptions& opt, const std::vector<std::string>& run_keys);

// Restores the optimizer (and the clipper, when the checkpoint has its state)
// from a checkpoint written by run_training; returns where the run stood.
TrainingState restore_training(const Checkpoint& c, AdamW& optimizer, GradientClipper* clipper);

// Trains from `state` to the end of job.epochs; returns the exit code (130
// after SIGINT).
int run_training(const TrainingJob& job, TrainingState state, const RunDirectory& run);

// enf train on molecules (tools/train_molecules.cpp).
int run_train_molecules(const std::vector<std::string>& args);

}  // namespace enf::cli
