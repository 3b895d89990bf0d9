// What a training run does the same way for particle systems and molecules:
// the run directory (config.json, metrics.jsonl, best/ and last/
// checkpoints), exact resume (weights, AdamW moments, the gradient clipper's
// queue and the position in the epoch), validation every few epochs, and a
// clean stop when asked (state saved). The program (tools/) parses options,
// fills in a TrainingJob and shows progress through a TrainingReporter.
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
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/checkpoint.hpp"
#include "engine/optimizer.hpp"
#include "engine/trainer.hpp"

namespace enf {

// Where a run stands; saved in every checkpoint's extra.training_state.
struct TrainingState {
  int epoch = 0, batch_in_epoch = 0;
  long global_step = 0;
  double best_val = std::numeric_limits<double>::infinity();
  double seconds = 0;  // wall time of training so far, over every session (steps and validations)
  long validated_step = -1;  // the global step of the latest validation (-1: none)
};

// What a step minimises: the CNF's NLL (maximum likelihood) or the
// flow-matching regression loss (engine/flow_matching.hpp).
enum class TrainingObjective { MaximumLikelihood, FlowMatching };
std::string to_string(TrainingObjective o);
TrainingObjective parse_objective(const std::string& name);  // "maximum-likelihood", "flow-matching"

struct Validation {
  double nll = 0, standard_error = 0;
  nlohmann::json extra = nlohmann::json::object();  // more keys for the metrics line
  // A stop was asked during the validation: no result; the run saves the
  // state before it, so a resume validates this epoch again.
  bool interrupted = false;
};

struct TrainingJob {
  std::string description;  // what is trained, for the first log line
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
  TrainingObjective objective = TrainingObjective::MaximumLikelihood;
  // The weights the steps update. With ema_decay > 0 the loop keeps their
  // exponential average (WeightAverage) and swaps it in for validations and
  // checkpoints: a checkpoint's params are the average (what eval, score and
  // sample use), its state "training.weights" the weights training goes on from.
  Parameters<double>* weights = nullptr;
  double ema_decay = 0;
  // A time budget (seconds of training over all sessions; 0: none): the
  // step that reaches it is the last; the run then validates (unless the
  // epoch's validation just did), saves best/ and last/, and ends.
  double max_seconds = 0;
  // Asked after every step; true saves last/ and stops (the program's Ctrl-C).
  std::function<bool()> stop_requested = [] { return false; };
  // The ranks of the job (issue 16). Every rank runs the loop and every
  // step (the trainer shares each step's samples among them); rank 0 alone
  // writes the run directory. After every step the ranks agree: any rank's
  // stop stops all, and rank 0's clock is the run's (the time budget).
  // Each rank calls validate (which may share its work); rank 0's result counts.
  Communicator* comm = &single_process();
};

// Throws std::invalid_argument (naming `what`, e.g. "structures") when one
// batch exceeds the training rows.
void check_batch_fits(int batch, int rows, const std::string& what);

// The solver settings of validation: `trace`, rtol = atol = 1e-5 both ways.
CnfOptions validation_cnf_options(TraceEstimator trace);

// The order of the training rows in an epoch, and the noise seed of a step.
std::vector<int> epoch_order(int rows, std::uint64_t seed, int epoch);
std::uint64_t step_seed(std::uint64_t seed, long global_step);

// A run directory: an existing run being resumed (its last/ checkpoint) or a
// new one (its config.json, written only when training starts, so a run that
// fails while loading leaves nothing).
struct RunDirectory {
  std::filesystem::path path;
  std::unique_ptr<Checkpoint> resume;  // null for a new run (or one that saved no state yet)
  nlohmann::json new_config;           // null when resuming
};

// An existing run's config.json (the options it was started with);
// std::invalid_argument when `path` is not a run directory or its
// config.json is not JSON.
nlohmann::json read_run_config(const std::filesystem::path& path);
// One process trains a run at a time: a second one (a job started twice, a
// requeue while the first is still stopping) would take the first one's
// checkpoint in progress for a leftover and remove it. Locks the directory
// (flock) until the process exits; std::runtime_error when another holds it.
// load_last_checkpoint and run_training take the lock.
void lock_run_directory(const std::filesystem::path& path);
// Repairs what a killed run left in its directory: last/ and best/ from a
// checkpoint save cut short (recover_checkpoint), leftovers removed.
void repair_run_directory(const std::filesystem::path& path);
// The last/ checkpoint of a run directory, after repair_run_directory; null
// when the run was killed before its first step saved it (resuming then
// starts it again, which is what it would have done).
std::unique_ptr<Checkpoint> load_last_checkpoint(const std::filesystem::path& path);
// std::invalid_argument unless a new run can be written to `path` (not a
// file, not holding a run (last/, or what a killed save left of it), no file
// in the way of its parents).
void check_new_run_directory(const std::filesystem::path& path);
// A JSON file of option values (`kind` names it in errors); std::invalid_argument
// when it is not valid JSON.
nlohmann::json read_json_file(const std::string& path, const std::string& kind);

// Restores the optimizer (and the clipper, when the checkpoint has its state)
// from a checkpoint written by run_training; returns where the run stood.
TrainingState restore_training(const Checkpoint& c, AdamW& optimizer, GradientClipper* clipper);
// The weights training continues from: the checkpoint's params, or with a
// weight average its saved "training.weights" (the params are the average).
std::vector<double> training_weights(const Checkpoint& c);

// What run_training reports as it goes; the default does nothing.
struct TrainingProgress {
  int epoch = 0, epochs = 0;         // epoch: 0-based, the one running
  long global_step = 0, total_steps = 0, steps_this_session = 0;
  // Exponential average (0.95) of the batch NLL, or of the flow-matching loss.
  double running_loss = 0;
  TrainingObjective objective = TrainingObjective::MaximumLikelihood;
  double elapsed_seconds = 0;        // since this session started
  double run_seconds = 0;            // of training over every session
  double max_seconds = 0;            // the time budget (0: none)
};
class TrainingReporter {
 public:
  virtual ~TrainingReporter() = default;
  virtual void started(const TrainingJob&, const std::filesystem::path& /*run*/) {}
  virtual void stepped(const TrainingProgress&) {}
  virtual void epoch_ended(int /*epoch*/) {}
  virtual void validated(int /*epochs_done*/, const Validation&, bool /*best*/) {}
};

struct TrainingOutcome {
  bool stopped = false;  // stop_requested: last/ holds the state to resume from
  bool out_of_time = false;  // ended by the time budget (best/ and last/ saved)
  TrainingState state;
};

// Trains from `state` to the end of job.epochs (or job.max_seconds), writing metrics.jsonl,
// best/ and last/ in the run directory (created, with its config.json, for a
// new run). last/ is saved after the first step, every epoch and on a stop;
// resuming cuts metrics.jsonl back to `state`.
TrainingOutcome run_training(const TrainingJob& job, TrainingState state, const RunDirectory& run,
                             TrainingReporter& reporter);

}  // namespace enf
