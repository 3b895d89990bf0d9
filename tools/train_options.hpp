// The command-line half of enf train, shared by particle systems and
// molecules: the option table every variant has, the options as engine
// settings, the run directory from --out/--resume/--config, and the progress
// line and Ctrl-C handling around engine/training_run.hpp's loop.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/flow_matching.hpp"
#include "engine/optimizer.hpp"
#include "engine/training_run.hpp"
#include "tools/options.hpp"

namespace enf::cli {

// The table of an enf train variant: `specific` rows (system, data, model
// parts of its own), then the rows every variant has and the solver and
// runtime groups, with `defaults` replacing their defaults by name.
CommandSpec train_spec(std::string summary, std::string details, std::vector<OptionSpec> specific,
                       const std::map<std::string, std::string>& defaults);
// The options of the common rows that define a run (config.json holds them
// with the variant's own keys).
std::vector<std::string> common_run_keys();

// The common rows' solver and optimizer settings (UsageError when invalid),
// and every resolved option as JSON (a checkpoint's training configuration).
CnfOptions training_cnf_options(const ParsedOptions& opt);
FlowMatchingOptions training_flow_matching_options(const ParsedOptions& opt);
TrainingObjective training_objective(const ParsedOptions& opt);
// --epochs of a run bounded by --max-time alone: more than any budget reaches.
constexpr int kUnboundedEpochs = 1000000;
AdamWOptions training_adam_options(const ParsedOptions& opt);
nlohmann::json options_json(const ParsedOptions& opt);
// A job's schedule from the common rows (--batch, --epochs, --val-interval,
// --seed, --objective, --max-time, --ema) for `rows` training rows, called `what` in errors (UsageError when
// the batch exceeds the rows); the caller fills in the description, the
// callbacks, optimizer and clipper.
TrainingJob training_job(const ParsedOptions& opt, int rows, const std::string& what);

// The system a command line asks for, before it is parsed with the table of
// that system: --system, else the "system" of --resume DIR's config.json or
// of --config FILE, else "qm9" when --data is not a .npy file, else "dw4".
std::string train_system(const std::vector<std::string>& args);

// The run directory of parsed options: --resume DIR (its config.json
// supplies every option not on the command line; its last/ checkpoint is
// loaded), or a new run at --out (default runs/<system>) after applying
// --config FILE; a new run's config.json holds the run_keys.
RunDirectory open_run(ParsedOptions& opt, const std::vector<std::string>& run_keys);

// Runs the job with a progress line on stderr and Ctrl-C or SIGTERM saving
// the state; prints the run's summary; returns the exit code (128 + the
// signal after a stop: 130 after Ctrl-C, 143 after SIGTERM).
int run_train_job(TrainingJob& job, const TrainingState& state, const RunDirectory& run);

// enf train on molecules (tools/train_molecules.cpp).
int run_train_molecules(const std::vector<std::string>& args);
// enf train --system qm9-conformers (tools/train_conformers.cpp).
int run_train_conformers(const std::vector<std::string>& args);

}  // namespace enf::cli
