// What enf conformers and enf conformers eval share (issue 15): the conformer
// model, the molecules it takes, and how a molecule's conformers are drawn
// (its seeds, the sampling solver, the stereo reflection), so that both
// commands draw the same conformers from the same options.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datasets/molecule.hpp"
#include "engine/checkpoint.hpp"
#include "engine/conformer_flow.hpp"
#include "engine/conformer_support.hpp"
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

// K conformers of molecule mol (condition cond) from the sampling stream
// `seed`: flow.sample, then with keep_stereo each reflected to mol.stereo
// (free: log p(x | graph) is reflection-invariant). Adds the field
// evaluations to *nfe and the reflected conformers to *reflected (either may
// be null).
std::vector<std::vector<double>> draw_conformers(ConformerFlow<double>& flow, const Checkpoint& c, const Molecule& mol,
                                                 const ConformerCondition& cond, int K, std::uint64_t seed,
                                                 bool keep_stereo, long* nfe, long* reflected);

}  // namespace enf::cli
