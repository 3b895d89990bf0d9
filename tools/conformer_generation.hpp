// What enf conformers and enf conformers eval share (issue 15): the conformer
// model, the molecules it takes, and how a molecule's conformers are drawn
// (its seeds, the sampling solver, the stereo reflection, the force-field
// polish), so that both
// commands draw the same conformers from the same options.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "datasets/force_field.hpp"
#include "datasets/molecule.hpp"
#include "engine/checkpoint.hpp"
#include "engine/conformer_flow.hpp"
#include "engine/conformer_support.hpp"
#include "tools/option_groups.hpp"
#include "tools/options.hpp"

namespace enf::cli {

// --model: a checkpoint directory or a shipped model's name; an error unless
// it is a conformer model.
Checkpoint load_conformer_model(const std::string& model);

// Molecule m's streams, Rng(seed).split(m): its prior draws, then the
// Hutchinson noise of its scores.
struct MoleculeSeeds {
  std::uint64_t sample = 0, noise = 0;
};
MoleculeSeeds molecule_seeds(std::uint64_t seed, std::size_t m);

// The positions in mols of the molecules a model with support s takes, in
// order. Another is an error naming it ("<noun> 3 'title': why (--skip-
// unsupported skips such molecules)"), or with skip one line on stderr
// ("enf <command>: skipped <noun> 3 'title': why") and counted in *skipped.
std::vector<std::size_t> supported_molecules(const std::vector<Molecule>& mols, const ConformerSupport& s, bool skip,
                                             const std::string& command, const std::string& noun, long* skipped);

// The --help sentence on the two solvers of a command that samples and scores.
extern const char kTwoSolversHelp[];

// The --polish of drawn conformers: one force field per thread, set up for
// molecule after molecule; the conformers of a molecule are minimised in
// parallel over the threads, each independently (the same result on any
// number of threads).
class Polisher {
 public:
  // threads: those of the sampling (ConformerFlow::threads()); command names
  // the program in the stderr line of a molecule whose set-up failed.
  Polisher(const Polish& options, int threads, std::string command);
  const Polish& options() const { return options_; }
  // The conformers x of mol, each minimised (unchanged with --polish none,
  // or when the force field has no parameters for mol: one line on stderr,
  // counted).
  void polish(const Molecule& mol, std::vector<std::vector<double>>& x);
  // "polish: mmff94, at most 200 conjugate-gradient steps, 12.3 ms per
  // conformer (40 conformers); 1 molecule left unpolished (no mmff94
  // parameters)", or "polish: none".
  std::string summary() const;

 private:
  Polish options_;
  int threads_;
  std::string command_;
  std::vector<std::optional<ForceField>> fields_;  // one per thread, made when first needed
  long conformers_ = 0, molecules_ = 0, failed_ = 0;
  double seconds_ = 0;
};

// The flow that draws conformers, its field in float32 or float64
// (--sample-precision); it owns that field and its copy of the parameters.
class ConformerSampler {
 public:
  ConformerSampler(const Checkpoint& c, const CnfOptions& sampling, int threads, bool single);
  ConformerSampler(const ConformerSampler&) = delete;
  ConformerSampler& operator=(const ConformerSampler&) = delete;
  int threads() const { return single() ? f_->flow.threads() : d_->flow.threads(); }
  bool single() const { return f_ != nullptr; }  // exactly one of f_, d_ is set
  // ConformerFlow::sample in the chosen precision.
  std::vector<std::vector<double>> sample(const ConformerCondition& cond, int K, std::uint64_t seed, long* nfe);

 private:
  template <class T>
  struct Typed {
    Parameters<T> params;
    VectorField<T> field;
    ConformerFlow<T> flow;
    Typed(const Checkpoint& c, const CnfOptions& o, int threads)
        : params(c.params.template cast<T>()), field(c.field, params.layout), flow(field, o, threads) {}
  };
  std::unique_ptr<Typed<float>> f_;
  std::unique_ptr<Typed<double>> d_;
};

// K conformers of molecule mol (condition cond) from the sampling stream
// `seed`: sampler.sample, then with keep_stereo each reflected to mol.stereo
// (free: log p(x | graph) is reflection-invariant), then polished by
// polisher (if not null) and with keep_stereo matched to mol.stereo again
// (the polish may settle a nearly flat centre the other way). Adds the field
// evaluations to *nfe and the conformers that end reflected to *reflected
// (either may be null).
std::vector<std::vector<double>> draw_conformers(ConformerSampler& sampler, const Molecule& mol,
                                                 const ConformerCondition& cond, int K, std::uint64_t seed,
                                                 bool keep_stereo, Polisher* polisher, long* nfe, long* reflected);

}  // namespace enf::cli
