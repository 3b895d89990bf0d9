// enf train --system qm9-conformers (issue 15): the conformer model of
// engine/conformer_flow.hpp trained by flow matching or maximum likelihood on
// QM9 geometries, each
// molecule conditioned on its graph, in the run directory of
// engine/training_run.hpp.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datasets/molecular_graph.hpp"
#include "engine/checkpoint.hpp"
#include "engine/conformer_trainer.hpp"
#include "engine/initialization.hpp"
#include "tools/mpi_world.hpp"
#include "tools/option_groups.hpp"
#include "tools/options.hpp"
#include "tools/train_options.hpp"
#include "tools/training_molecules.hpp"

namespace enf::cli {

namespace {

bool is_conformers(const SystemInfo& s) { return s.kind == SystemKind::Conformers; }

const CommandSpec& train_conformers_spec() {
  static const CommandSpec spec = train_spec(
      "Train the conformer model: 3-D positions of a given molecule, conditioned on its graph.",
      "The model of `enf conformers`: an EGNN vector field over the positions only, each layer\n"
      "also given the molecule's graph as fixed inputs — per atom its element (H, C, N, O, F)\n"
      "and formal charge, per atom pair the bond (none, single, double, triple, aromatic) and\n"
      "whether the two are bonded, 1-3 or 1-4 related — which is not flowed. Prior: isotropic\n"
      "Gaussian on the centre-of-mass-free positions, so log p(x | graph) is exact (enf score).\n"
      "Training: flow matching (--objective flow-matching, the default), each molecule's\n"
      "geometry paired with a prior draw of its own (independent coupling); or maximum\n"
      "likelihood (--objective maximum-likelihood): the mean −log p(x | graph) of the batch,\n"
      "Hutchinson trace (--trace), its gradient by the adjoint or through the solver's steps\n"
      "(--gradient), each molecule solved with its own adaptive steps (--rtol, --atol).\n"
      "Graphs: the data file's bonds where it has them, else perceived by Open\n"
      "Babel from the geometry. Data as for `enf train --system qm9` (--data, --split, ...);\n"
      "the default --split tenth never trains on the molecules at positions divisible by 10.\n"
      "Validation: mean −log p(x | graph) of the validation molecules (Gaussian Hutchinson,\n"
      "fixed seed, rtol = atol = 1e-5, float64).\n"
      "The checkpoint records the largest training molecule (atoms with hydrogens) and the\n"
      "elements of the training molecules: enf conformers, enf conformers eval and enf score\n"
      "refuse (or with --skip-unsupported skip) larger molecules and other elements.\n"
      "\nexample:\n  enf train --system qm9-conformers --max-time 60 --out runs/conformers",
      {
          system_option("qm9-conformers", "the conformer model", is_conformers),
          {"data", "FILE", "qm9:test", "training molecules (any molecule file; geometries and, if present, bonds)"},
          {"val-data", "FILE", "", "validation molecules (--split first only; default: the end of --data)"},
          {"n-data", "N", "0", "training molecules: the first N (0: all but the validation ones)", "0", "10000000"},
          {"val-samples", "N", "100", "validation molecules", "1", "100000"},
          {"split", "first|tenth", "tenth",
           "tenth: hold out every position divisible by 10; first: train on the start of --data"},
          {"skip-unsupported", "", "", "skip molecules with other elements or over 29 atoms (else: an error)"},
      },
      {{"nf", "64"},
       {"layers", "4"},
       {"lr", "5e-4"},
       {"batch", "64"},
       {"epochs", std::to_string(kUnboundedEpochs)},
       {"objective", "flow-matching"},
       {"coupling", "independent"},
       {kTrace, "gaussian"}});
  return spec;
}

std::vector<std::string> run_keys() {
  std::vector<std::string> k = {"system", "data", "val-data", "n-data", "val-samples", "split", "skip-unsupported"};
  for (const auto& key : common_run_keys()) k.push_back(key);
  return k;
}

// The conditioning and the geometry of each molecule.
struct ConformerData {
  std::vector<ConformerCondition> conditions;
  std::vector<std::vector<double>> positions;
};

// Open Babel's perception warnings are counted and summed up in one line.
ConformerData conformer_data(const std::vector<Molecule>& mols, const char* what) {
  ConformerData d;
  long warned = 0;
  std::string example;
  for (const Molecule& m : mols) {
    std::string warning;
    d.conditions.push_back(conformer_condition(perceive_graph(m, &warning)));
    d.positions.push_back(m.positions);
    if (!warning.empty() && warned++ == 0) example = m.name + ": " + warning;
  }
  if (warned > 0)
    std::fprintf(stderr,
                 "enf train: Open Babel warned while perceiving the bonds of %ld of the %zu %s molecules (their "
                 "bond orders are its best guess), e.g. %s\n",
                 warned, mols.size(), what, example.c_str());
  return d;
}

template <class T>
int train(const ParsedOptions& opt, const RunDirectory& run) {
  const Checkpoint* resume = run.resume.get();
  const MoleculeData data = load_training_molecules(opt);
  TrainingJob job = training_job(opt, int(data.train.size()), "molecules");
  std::fprintf(stderr, "enf train: graphs of %zu molecules...\n", data.train.size() + data.val.size());
  const ConformerData train_data = conformer_data(data.train, "training"),
                      val_data = conformer_data(data.val, "validation");

  FieldConfig field = conformer_field_config(opt.integer("nf"), opt.integer("layers"));
  field.attention = opt.boolean("attention");
  field.tanh = opt.boolean("tanh");
  field.condition_time = opt.boolean("condition-time");
  if (auto e = field.validate(); !e.empty()) throw UsageError(e);
  const bool matching = job.objective == TrainingObjective::FlowMatching;
  const CnfOptions cnf = training_cnf_options(opt);
  const FlowMatchingOptions fm = training_flow_matching_options(opt);
  if (matching && fm.coupling != Coupling::Independent)
    throw UsageError("--coupling " + to_string(fm.coupling) +
                     ": the conformer model pairs each molecule with a prior draw of its own (--coupling independent)");
  const AdamWOptions adam = training_adam_options(opt);
  const std::uint64_t seed = job.seed;
  // What the model will have seen: the molecules it trains on.
  const ConformerSupport support = conformer_support_of(data.train);

  Parameters<double> init(field_layout(field));
  Rng rng(seed);
  initialize_egnn(field.egnn(), init, rng);
  if (resume) {
    if (resume->system != "qm9-conformers" || resume->params.values.size() != init.values.size())
      throw UsageError("--resume: the saved model differs from the options' conformer model");
    const std::vector<double> w = training_weights(*resume);
    std::copy(w.begin(), w.end(), init.values.begin());
  }
  const Runtime rt = parse_runtime(opt);
  ConformerTrainer<T> trainer(field, cnf, adam, std::move(init), rt.threads, opt.boolean("clip"));
  trainer.set_communicator(world());
  TrainingState state;
  if (resume) state = restore_training(*resume, trainer.optimizer(), trainer.clipper());

  job.description = "qm9-conformers, " + std::to_string(data.train.size()) + " training / " +
                    std::to_string(data.val.size()) + " validation molecules (training: up to " +
                    std::to_string(support.max_atoms) + " atoms, " + element_list(support.elements) + "), " +
                    std::to_string(trainer.params().values.size()) + " parameters, batch " + std::to_string(job.batch) +
                    ", " + std::to_string(trainer.threads()) + (trainer.threads() == 1 ? " thread" : " threads") +
                    (matching ? ", flow matching" : ", maximum likelihood (" + to_string(cnf.gradient) + " gradient)");
  job.optimizer = &trainer.optimizer();
  job.clipper = trainer.clipper();
  job.weights = &trainer.params();
  job.step = [&](const std::vector<int>& rows, std::uint64_t step_seed, nlohmann::json&) -> StepReport {
    std::vector<const ConformerCondition*> conditions;
    std::vector<std::vector<double>> x;
    for (int r : rows) {
      conditions.push_back(&train_data.conditions[r]);
      x.push_back(train_data.positions[r]);
    }
    return matching ? trainer.step_flow_matching(fm, conditions, x, step_seed) : trainer.step(conditions, x, step_seed);
  };
  job.validate = [&]() {
    return conformer_validation(field, trainer.params(), val_data.conditions, val_data.positions, rt.threads, seed,
                                job.stop_requested);
  };
  job.snapshot = [&]() {
    Checkpoint c;
    c.system = "qm9-conformers";
    c.field = field;
    c.params = trainer.params();
    c.conformer_support = support;
    c.training = options_json(opt);
    c.data = {{"train", data.train_source},
              {"validation", data.val_source},
              {"train_molecules", data.train.size()},
              {"val_molecules", data.val.size()},
              {"skipped", data.skipped},
              {"graphs", "the data file's bonds where it has them, else Open Babel's perception from the geometry"}};
    return c;
  };
  return run_train_job(job, state, run);
}

}  // namespace

int run_train_conformers(const std::vector<std::string>& args) {
  const CommandSpec& spec = train_conformers_spec();
  ParsedOptions opt(spec, args);
  if (opt.help()) return std::fputs(usage(spec).c_str(), stdout), 0;
  const RunDirectory run = open_run(opt, run_keys());
  parse_system(opt, is_conformers);
  return parse_runtime(opt).single() ? train<float>(opt, run) : train<double>(opt, run);
}

}  // namespace enf::cli
