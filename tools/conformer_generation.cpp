#include "tools/conformer_generation.hpp"

#include <cstdio>
#include <stdexcept>

#include "datasets/registry.hpp"
#include "datasets/stereo.hpp"
#include "datasets/systems.hpp"
#include "engine/rng.hpp"

namespace enf::cli {

const char kTwoSolversHelp[] =
    "Conformers are drawn (prior to data, no log-likelihood along the way) by --sample-method:\n"
    "rk4 in --sample-steps 10 equal steps by default (40 field evaluations; as close to the\n"
    "reference geometries as dopri5, several times faster: README, Results: conformers);\n"
    "--sample-method dopri5 draws them as enf did before, to --rtol/--atol.";

Checkpoint load_conformer_model(const std::string& model) {
  Checkpoint c = load_checkpoint(resolve_model(model));  // a shipped model by name too
  if (!is_conformer_system(c.system))
    throw std::runtime_error("'" + model + "' is a " + (c.system.empty() ? "particle" : c.system) +
                             " model, not a conformer model (enf train --system qm9-conformers makes one)");
  return c;
}

MoleculeSeeds molecule_seeds(std::uint64_t seed, std::size_t m) {
  Rng rng = Rng(seed).split(std::uint64_t(m));
  MoleculeSeeds s;
  s.sample = rng.next_u64();
  s.noise = rng.next_u64();
  return s;
}

std::vector<std::size_t> supported_molecules(const std::vector<Molecule>& mols, const ConformerSupport& s, bool skip,
                                             const std::string& command, const std::string& noun, long* skipped) {
  std::vector<std::size_t> kept;
  for (std::size_t m = 0; m < mols.size(); ++m) {
    const std::string why = unsupported_reason(mols[m], s);
    if (why.empty()) {
      kept.push_back(m);
      continue;
    }
    const std::string what = noun + " " + std::to_string(m + 1) + " '" + mols[m].name + "': " + why;
    if (!skip) throw std::runtime_error(what + " (--skip-unsupported skips such molecules)");
    std::fprintf(stderr, "enf %s: skipped %s\n", command.c_str(), what.c_str());
    if (skipped) ++*skipped;
  }
  return kept;
}

std::vector<std::vector<double>> draw_conformers(ConformerFlow<double>& flow, const Checkpoint& c, const Molecule& mol,
                                                 const ConformerCondition& cond, int K, std::uint64_t seed,
                                                 bool keep_stereo, long* nfe, long* reflected) {
  std::vector<std::vector<double>> x = flow.sample(c.params.values.data(), cond, K, seed, nfe);
  if (keep_stereo)
    for (auto& xk : x) {
      const bool r = match_stereo(mol.stereo, xk).reflected;
      if (reflected) *reflected += r;
    }
  return x;
}

}  // namespace enf::cli
