// enf train on molecules (QM9): the reference's main_qm9.py setup (the flow of
// MoleculeFlow, trained with MoleculeTrainer) in the run directory of
// engine/training_run.hpp.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "datasets/molecule_io.hpp"
#include "engine/checkpoint.hpp"
#include "engine/data_split.hpp"
#include "engine/molecule_flow_matching.hpp"
#include "engine/molecule_trainer.hpp"
#include "engine/validation.hpp"
#include "tools/options.hpp"
#include "tools/option_groups.hpp"
#include "tools/mpi_world.hpp"
#include "tools/train_options.hpp"
#include "tools/training_molecules.hpp"

namespace enf::cli {

namespace {

namespace fs = std::filesystem;

bool is_molecules(const SystemInfo& s) { return s.kind == SystemKind::Molecules; }

// The shipped EDM test split (after `enf data fetch qm9`, --data qm9:train).
const std::string kDefaultData = "qm9:test";

const CommandSpec& train_molecules_spec() {
  static const CommandSpec spec = train_spec(
      "Train an E(n) equivariant flow on molecules (QM9) by maximum likelihood or flow matching.",
      "The model and defaults of the reference's main_qm9.py: the QM9 vector field (H = 64,\n"
      "L = 6), argmax-variational dequantization of atom types and charges (its EGNN: width\n"
      "64, 4 layers), data-initialised ActNorm, p(N) from the training molecules' atom counts\n"
      "(saved in the checkpoint), Hutchinson trace with Gaussian noise, dopri5 at rtol = atol\n"
      "= 1e-4, ODE regularization 1e-3, AdamW (AMSGrad, weight decay 1e-12, lr 2e-4 as\n"
      "main_qm9.py), adaptive gradient clipping of the flow's (field and ActNorm) gradient.\n"
      "A new model initialises ActNorm from its first batch, as the reference does.\n"
      "Data: any molecule file (.npz with num_atoms/charges/positions, .xyz, .sdf, ...;\n"
      "elements H, C, N, O, F, at most 29 atoms). The default is the EDM/cormorant QM9 test\n"
      "split, the only QM9 split shipped (13 083 molecules), so a model trained on it has no\n"
      "held-out QM9 test set of its own. --split first: training uses the first --n-data\n"
      "molecules of --data; validation the first --val-samples of --val-data or, without it,\n"
      "the last --val-samples of --data, never a training molecule (--n-data 0: all the\n"
      "others). --split tenth holds out every molecule whose 0-based position in --data is\n"
      "divisible by 10 (after --skip-unsupported), never trained on: training uses the first\n"
      "--n-data of the others (0: all), validation the first --val-samples of the held-out\n"
      "ones. The whole held-out tenth is what `enf score --input FILE --stride 10` scores.\n"
      "Validation: NLL (−log p(x, h, N), one dequantization draw per molecule) in float64,\n"
      "Hutchinson trace with Gaussian noise (fixed seed) at rtol = atol = 1e-5, over the\n"
      "molecules whose atom count occurs in the training data (p(N) > 0; the others are\n"
      "counted); metrics.jsonl also has nll_given_n, −log p(x, h | N) over all of them, which\n"
      "picks the best checkpoint when no atom count occurs in training (tiny runs).\n"
      "--objective flow-matching (issue 14) regresses the CNF's vector field on the path from\n"
      "the CNF's input ActNorm([x, v]) (positions and dequantized features) to a prior draw\n"
      "(centre-of-mass-free Gaussian positions, standard normal features: the prior of the\n"
      "likelihood), one molecule at a time, loss = mean over molecules of |f − u|² / (9 n).\n"
      "Its dequantization is uniform (--dequantization auto; the variational ones are trained\n"
      "through the likelihood and are refused), so `enf score` gives the same bound as for a\n"
      "maximum-likelihood model. ActNorm is initialised from the first batch, then fixed.\n"
      "--coupling minibatch-ot and equivariant-ot pair molecules of equal atom count within\n"
      "the batch (the Hungarian per atom count; equivariant OT also aligns each pair by\n"
      "permutation and rotation/reflection, the features moving with their atoms); a\n"
      "molecule alone with its atom count keeps its independent draw. Validation is the NLL.\n"
      "Run directory, --resume, --config and Ctrl-C as for particles ('enf train --help').\n"
      "\nexamples:\n  enf train --system qm9 --n-data 2000 --epochs 5 --out runs/qm9\n"
      "  enf train --system qm9 --objective flow-matching --split tenth --max-time 180 --out runs/qm9fm",
      {
          system_option("qm9", "molecules (particle systems: 'enf train --help')", is_molecules),
          {"data", "FILE", kDefaultData, "training molecules"},
          {"val-data", "FILE", "", "validation molecules (default: the end of --data)"},
          {"n-data", "N", "0", "training molecules: the first N of --data (0: all but the validation ones)", "0",
           "10000000"},
          {"val-samples", "N", "500", "validation molecules", "1", "100000"},
          {"split", "first|tenth", "first",
           "first: train on the start of --data; tenth: hold out every position divisible by 10"},
          {"skip-unsupported", "", "", "skip molecules with other elements or over 29 atoms (else: an error)"},
          {"dequantization", "auto|uniform|variational|argmax_variational", "auto",
           "dequantization of atom types and charges (auto: argmax_variational; uniform for flow matching)"},
          {"dequantizer-nf", "H", "64", "width of the dequantizer's EGNN", "1", "4096"},
          {"dequantizer-layers", "L", "4", "layers of the dequantizer's EGNN", "1", "100"},
          {"actnorm", "BOOL", "true", "ActNorm before the CNF, initialised from the first batch"},
      },
      {{"nf", "64"},
       {"layers", "6"},
       {"lr", "2e-4"},
       {"batch", "128"},
       {"epochs", "100"},
       {kTrace, "gaussian"},
       {"ode-regularization", "1e-3"},
       {"clip", "true"}});
  return spec;
}

std::vector<std::string> run_keys() {
  std::vector<std::string> k = {
      "system",         "data",           "val-data",           "n-data", "val-samples", "split", "skip-unsupported",
      "dequantization", "dequantizer-nf", "dequantizer-layers", "actnorm"};
  for (const auto& key : common_run_keys()) k.push_back(key);
  return k;
}

std::vector<MoleculeInput> inputs(const std::vector<Molecule>& mols) {
  std::vector<MoleculeInput> in;
  in.reserve(mols.size());
  for (const auto& m : mols) in.push_back(molecule_input(m));
  return in;
}

template <class T>
int train(const ParsedOptions& opt, const RunDirectory& run) {
  const Checkpoint* resume = run.resume.get();
  const MoleculeData data = load_training_molecules(opt);
  TrainingJob job = training_job(opt, int(data.train.size()), "molecules");
  const std::vector<MoleculeInput> train_in = inputs(data.train), val_in = inputs(data.val);

  FieldConfig field = qm9_field_config(opt.integer("nf"), opt.integer("layers"));
  field.attention = opt.boolean("attention");
  field.tanh = opt.boolean("tanh");
  field.condition_time = opt.boolean("condition-time");
  if (auto e = field.validate(); !e.empty()) throw UsageError(e);
  MoleculeModelConfig mol;
  const bool matching = job.objective == TrainingObjective::FlowMatching;
  const std::string deq = opt.choice("dequantization", {"auto", "uniform", "variational", "argmax_variational"});
  mol.dequantization = parse_dequantization(deq != "auto" ? deq : matching ? "uniform" : "argmax_variational");
  mol.actnorm = opt.boolean("actnorm");
  mol.dequantizer_hidden = opt.integer("dequantizer-nf");
  mol.dequantizer_layers = opt.integer("dequantizer-layers");
  for (long c : node_count_histogram(data.train)) mol.node_counts.push_back(double(c));
  if (auto e = mol.validate(); !e.empty()) throw UsageError(e);
  if (const std::string e = molecule_flow_matching_unsupported(mol); matching && !e.empty())
    throw UsageError("--objective flow-matching with --dequantization " + deq + ": " + e);
  const FlowMatchingOptions fm = training_flow_matching_options(opt);
  const CnfOptions cnf = training_cnf_options(opt);
  const AdamWOptions adam = training_adam_options(opt);
  const std::uint64_t seed = job.seed;

  Parameters<double> init = initial_molecule_parameters(field, mol, seed);
  if (resume) {
    if (!resume->molecule || resume->params.values.size() != init.values.size())
      throw UsageError("--resume: the saved model differs from the options' molecule model");
    const std::vector<double> w = training_weights(*resume);
    std::copy(w.begin(), w.end(), init.values.begin());
  }
  const Runtime rt = parse_runtime(opt);
  MoleculeTrainer<T> trainer(field, mol, cnf, adam, std::move(init), resume != nullptr, rt.threads,
                             opt.boolean("clip"));
  trainer.set_communicator(world());
  TrainingState state;
  if (resume) state = restore_training(*resume, trainer.optimizer(), trainer.clipper());

  job.description = "qm9, " + std::to_string(train_in.size()) + " training / " + std::to_string(val_in.size()) +
                    " validation molecules, " + std::to_string(trainer.params().values.size()) + " parameters, batch " +
                    std::to_string(job.batch) + ", " + std::to_string(job.epochs) + " epochs, " +
                    std::to_string(trainer.batch().threads()) + " threads" +
                    (matching ? ", flow matching (" + to_string(fm.coupling) + " coupling)" : "");
  job.optimizer = &trainer.optimizer();
  job.clipper = trainer.clipper();
  job.weights = &trainer.params();
  job.step = [&](const std::vector<int>& rows, std::uint64_t step_seed, nlohmann::json& line) -> StepReport {
    std::vector<MoleculeInput> batch;
    batch.reserve(rows.size());
    for (int r : rows) batch.push_back(train_in[r]);
    if (matching) {
      const MoleculeStepReport r = trainer.step_flow_matching(fm, batch, step_seed);
      line.update({{"flow_grad_norm", r.flow_grad_norm}});
      return r;
    }
    const MoleculeStepReport r = trainer.step(batch, step_seed);
    line.update({{"regularization", r.regularization},
                 {"flow_grad_norm", r.flow_grad_norm},
                 {"max_reconstruction_error", r.max_reconstruction_error}});
    return r;
  };
  job.validate = [&]() {
    const Validation v =
        molecule_validation(field, mol, trainer.params(), val_in, rt.threads, seed, job.stop_requested, world());
    if (v.interrupted || !world().is_root()) return v;
    const std::size_t excluded = v.extra["excluded"], counted = v.extra["molecules"];
    if (excluded > 0)
      std::fprintf(stderr, "  validation: %zu of %zu molecules left out of the NLL (p(N) = 0 for their atom count)\n",
                   excluded, excluded + counted);
    if (counted == 0)
      std::fprintf(stderr, "  validation: no atom count of the training data: NLL given N (−log p(x, h | N))\n");
    return v;
  };
  job.snapshot = [&]() {
    Checkpoint c;
    c.system = "qm9";
    c.field = field;
    c.molecule = mol;
    c.params = trainer.params();
    c.training = options_json(opt);
    c.data = {{"train", data.train_source},
              {"validation", data.val_source},
              {"train_molecules", train_in.size()},
              {"val_molecules", val_in.size()},
              {"skipped", data.skipped},
              {"node_counts_source", "the training molecules"}};
    return c;
  };
  return run_train_job(job, state, run);
}

}  // namespace

int run_train_molecules(const std::vector<std::string>& args) {
  const CommandSpec& spec = train_molecules_spec();
  ParsedOptions opt(spec, args);
  if (opt.help()) return std::fputs(usage(spec).c_str(), stdout), 0;
  const RunDirectory run = open_run(opt, run_keys());
  parse_system(opt, is_molecules);
  return parse_runtime(opt).single() ? train<float>(opt, run) : train<double>(opt, run);
}

}  // namespace enf::cli
