// enf train: maximum-likelihood training of a flow on a particle system
// (molecules: train_molecules.cpp); the loop, run directory and resume are
// engine/training_run.hpp's, the options and progress train_options.hpp's.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datasets/particles.hpp"
#include "datasets/systems.hpp"
#include "engine/checkpoint.hpp"
#include "engine/initialization.hpp"
#include "engine/trainer.hpp"
#include "engine/validation.hpp"
#include "tools/commands.hpp"
#include "tools/options.hpp"
#include "tools/option_groups.hpp"
#include "tools/mpi_world.hpp"
#include "tools/train_options.hpp"

namespace enf::cli {

namespace {

namespace fs = std::filesystem;

const CommandSpec& train_particles_spec() {
  static const CommandSpec spec =
      train_spec("Train an E(n) equivariant flow on DW4, LJ13 or LJ55 (or QM9 molecules) by maximum likelihood or flow matching.",
                 "Writes a run directory: config.json (the resolved options), metrics.jsonl (one JSON\n"
                 "line per step and per validation), best/ (the checkpoint with the lowest validation\n"
                 "NLL) and last/ (the latest state, with the optimizer, saved after the first step,\n"
                 "every epoch and on Ctrl-C or SIGTERM). --resume DIR continues exactly where DIR\n"
                 "stopped, also after a kill (options given on the command line override the saved\n"
                 "ones, e.g. --epochs to train longer). --config FILE reads options from a JSON object\n"
                 "with the same keys as the flags.\n"
                 "Data: the shipped splits (DW4: train/val; LJ13: the first 9000 rows of the\n"
                 "validation split for training, its last 1000 for validation; LJ55: enf's own MCMC\n"
                 "splits (enf data generate lj55), train/val; qm9_positional, the\n"
                 "E-NF paper's positions-only QM9 task: the 1813 molecules of 19 atoms of the shipped\n"
                 "EDM split, 1313 for training and the next 250 for validation) or --data/--val-data\n"
                 "(.npy; for qm9_positional also a molecule file, of which the 19-atom molecules are used).\n"
                 "Validation: NLL with the exact trace (--val-trace) at rtol = atol = 1e-5 in float64.\n"
                 "Flow matching (--objective flow-matching): the same vector field regressed onto the\n"
                 "straight path x_t = (1-t) x + t z + sigma_min e from a data structure x (t = 0) to a\n"
                 "prior draw z (t = 1), target z - x: one field evaluation and one reverse pass per\n"
                 "structure and step, no ODE solve. --coupling pairs data and prior draws: independent,\n"
                 "minibatch-ot (exact assignment over the batch) or equivariant-ot (each pair first\n"
                 "aligned by the best permutation and rotation/reflection, then assigned). The weights'\n"
                 "average (--ema) is validated and saved. The result is a CNF like any other: enf eval,\n"
                 "score and sample use it unchanged (sampling: e.g. --method rk4 --fixed-steps 10).\n"
                 "--max-time MINUTES bounds the run by time (either objective; all sessions count).\n"
                 "Molecules (QM9), with their own options and defaults: 'enf train --system qm9 --help'.\n"
                 "\nexamples:\n  enf train --system dw4 --epochs 20 --n-data 1000 --out runs/dw4\n"
                 "  enf train --system dw4 --objective flow-matching --n-data 1000 --max-time 2 --out runs/dw4_fm",
                 {
                     system_option("dw4", "particle system (qm9: molecules, see above)", {}),
                     {"data", "FILE", "", "training structures (.npy); default: the shipped split"},
                     {"val-data", "FILE", "", "validation structures (.npy); default: the shipped split"},
                     // The shipped splits hold at most 100 000 structures; a --data
                     // file is read only up to N rows, so larger N only cost memory.
                     {"n-data", "N", "1000", "training structures used (first N rows)", "1", "10000000"},
                     {"val-samples", "N", "500", "validation structures used", "1", "100000"},
                     // The exact trace costs n·D tangent directions per step:
                     // LJ55's 165 make a validation structure ~100x a Hutchinson one.
                     {"val-trace", "exact|rademacher|gaussian", "exact",
                      "validation divergence: exact, or Hutchinson (LJ55: ~100x cheaper)"},
                 },
                 {});
  return spec;
}

// The options that define a run (everything but where it is and how it runs).
std::vector<std::string> run_keys() {
  std::vector<std::string> k = {"system", "data", "val-data", "n-data", "val-samples", "val-trace"};
  for (const auto& key : common_run_keys()) k.push_back(key);
  return k;
}

template <class T>
int train(const ParsedOptions& opt, const RunDirectory& run) {
  const Checkpoint* resume = run.resume.get();
  const ParticleSystem sys = particle_system(parse_system(opt, {}).name);
  const int S = sys.n * sys.dim;
  auto load = [&](const std::string& flag, const std::string& split, long count) {
    if (!opt.str(flag).empty()) return load_structures(opt.str(flag), sys, 0, count);
    const SplitSpec sp = shipped_split(sys, split);
    return load_structures(sp.path, sys, sp.first, sp.count < 0 ? count : std::min<long>(sp.count, count));
  };
  const Structures train_data = load("data", "train", opt.integer("n-data"));
  const Structures val_data = load("val-data", "val", opt.integer("val-samples"));
  for (const auto& [flag, got] : {std::pair<std::string, int>{"n-data", train_data.rows}, {"val-samples", val_data.rows}})
    if (opt.integer(flag) > got)
      std::fprintf(stderr, "enf train: --%s %d: the data hold only %d structures; using %d\n", flag.c_str(),
                   opt.integer(flag), got, got);
  TrainingJob job = training_job(opt, train_data.rows, "structures");

  FieldConfig field;
  field.dim = sys.dim;
  field.hidden = opt.integer("nf");
  field.layers = opt.integer("layers");
  field.attention = opt.boolean("attention");
  field.tanh = opt.boolean("tanh");
  field.condition_time = opt.boolean("condition-time");
  const CnfOptions cnf = training_cnf_options(opt);
  const AdamWOptions adam = training_adam_options(opt);
  const std::uint64_t seed = job.seed;

  Parameters<double> init(field_layout(field));
  Rng rng(seed);
  initialize_egnn(field.egnn(), init, rng);
  if (resume) {
    if (resume->params.layout.total_size() != init.layout.total_size())
      throw UsageError("--resume: the saved model's size differs from the options'");
    const std::vector<double> w = training_weights(*resume);
    std::copy(w.begin(), w.end(), init.values.begin());
  }
  const Runtime rt = parse_runtime(opt);
  const TraceEstimator val_trace = opt.parsed("val-trace", parse_trace_estimator);
  Trainer<T> trainer(field, cnf, adam, init, rt.threads, opt.boolean("clip"));
  trainer.set_communicator(world());
  TrainingState state;
  if (resume) state = restore_training(*resume, trainer.optimizer(), trainer.clipper());

  const FlowMatchingOptions fm = training_flow_matching_options(opt);
  const std::string objective =
      job.objective == TrainingObjective::FlowMatching ? " (flow matching, " + to_string(fm.coupling) + " coupling)" : "";
  job.description = sys.name + objective + ", " + std::to_string(train_data.rows) + " training / " + std::to_string(val_data.rows) +
                    " validation structures, batch " + std::to_string(job.batch) + ", " + std::to_string(job.epochs) +
                    " epochs, " + std::to_string(trainer.flow().threads()) + " threads";
  job.optimizer = &trainer.optimizer();
  job.clipper = trainer.clipper();
  job.weights = &trainer.params();
  job.step = [&](const std::vector<int>& rows, std::uint64_t step_seed, nlohmann::json&) {
    std::vector<double> x;
    x.reserve(rows.size() * S);
    for (int r : rows)
      x.insert(x.end(), train_data.x.begin() + std::size_t(r) * S, train_data.x.begin() + std::size_t(r + 1) * S);
    if (job.objective == TrainingObjective::FlowMatching)
      return trainer.step_flow_matching(fm, x, int(rows.size()), sys.n, step_seed);
    return trainer.step(x, int(rows.size()), sys.n, step_seed);
  };
  job.validate = [&]() {
    return particle_validation(field, trainer.params(), val_data.x, val_data.rows, sys.n, rt.threads, seed,
                               job.stop_requested, val_trace, world());
  };
  job.snapshot = [&]() {
    Checkpoint c;
    c.system = sys.name;
    c.field = field;
    c.params = trainer.params();
    c.training = options_json(opt);
    c.data = {{"n_particles", sys.n}, {"train_rows", train_data.rows}, {"val_rows", val_data.rows}};
    return c;
  };
  return run_train_job(job, state, run);
}

}  // namespace

int run_train(const std::vector<std::string>& args) {
  const std::string system = train_system(args);
  if (is_molecule_system(system)) return run_train_molecules(args);
  if (is_conformer_system(system)) return run_train_conformers(args);
  const CommandSpec& spec = train_particles_spec();
  ParsedOptions opt(spec, args);
  if (opt.help()) return std::fputs(usage(spec).c_str(), stdout), 0;
  const RunDirectory run = open_run(opt, run_keys());
  return parse_runtime(opt).single() ? train<float>(opt, run) : train<double>(opt, run);
}

}  // namespace enf::cli
