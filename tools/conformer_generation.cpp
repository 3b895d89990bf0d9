#include "tools/conformer_generation.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "datasets/molecular_graph.hpp"
#include "datasets/registry.hpp"
#include "datasets/stereo.hpp"
#include "datasets/systems.hpp"
#include "egnn/parallel.hpp"
#include "engine/rng.hpp"
#include "tools/progress.hpp"

namespace enf::cli {

const char kTwoSolversHelp[] =
    "Conformers are drawn (prior to data, no log-likelihood along the way) by --sample-method:\n"
    "rk4 in --sample-steps 5 equal steps by default (20 field evaluations; after the polish as\n"
    "close to the reference geometries as 10 steps or dopri5: README, Results: conformers);\n"
    "--sample-method dopri5 draws them as enf did before, to --rtol/--atol. The field runs in\n"
    "float32 while drawing (--sample-precision double: float64; the positions differ by ~1e-6 A),\n"
    "and in float64 while scoring.";

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

Polisher::Polisher(const Polish& options, int threads, std::string command)
    : options_(options), threads_(std::max(1, threads)), command_(std::move(command)), fields_(std::size_t(threads_)) {}

void Polisher::polish(const Molecule& mol, std::vector<std::vector<double>>& x) {
  if (!options_.on || x.empty()) return;
  const auto t0 = Clock::now();
  // The set-up molecule: mol's graph, the first conformer's geometry (the
  // same on any number of threads; the input's own may be all zeros).
  Molecule m = mol;
  if (!m.bonds_known) {
    const MolecularGraph g = perceive_graph(mol);
    m.bonds = g.molecule_bonds();
    m.formal_charges = g.formal_charges();
    m.bonds_known = true;
  }
  m.positions = x[0];
  const int T = std::min(threads_, int(x.size()));
  try {
    for (int t = 0; t < T; ++t) {
      if (!fields_[std::size_t(t)]) fields_[std::size_t(t)].emplace(options_.field);
      fields_[std::size_t(t)]->setup(m);
    }
  } catch (const ForceFieldSetupError& e) {
    ++failed_;
    std::fprintf(stderr, "enf %s: %s; its conformers are left unpolished\n", command_.c_str(), e.what());
    return;
  }
  parallel_for(int(x.size()), T, [&](int k, int t) {
    x[std::size_t(k)] = fields_[std::size_t(t)]->minimise(x[std::size_t(k)], options_.steps, nullptr, options_.minimiser);
  });
  seconds_ += since(t0);
  conformers_ += long(x.size());
  ++molecules_;
}

std::string Polisher::summary() const {
  if (!options_.on) return "polish: none";
  char buf[512];
  std::snprintf(buf, sizeof buf, "polish: %s, %.1f ms per conformer (%ld conformers of %ld molecules); %ld molecule%s "
                "left unpolished (no %s parameters)",
                options_.describe().c_str(), conformers_ > 0 ? 1e3 * seconds_ / double(conformers_) : 0.0, conformers_,
                molecules_, failed_, failed_ == 1 ? "" : "s", to_string(options_.field).c_str());
  return buf;
}

ConformerSampler::ConformerSampler(const Checkpoint& c, const CnfOptions& sampling, int threads, bool single) {
  if (single)
    f_ = std::make_unique<Typed<float>>(c, sampling, threads);
  else
    d_ = std::make_unique<Typed<double>>(c, sampling, threads);
}

std::vector<std::vector<double>> ConformerSampler::sample(const ConformerCondition& cond, int K, std::uint64_t seed,
                                                          long* nfe) {
  return single() ? f_->flow.sample(f_->params.values.data(), cond, K, seed, nfe)
                 : d_->flow.sample(d_->params.values.data(), cond, K, seed, nfe);
}

std::vector<std::vector<double>> draw_conformers(ConformerSampler& sampler, const Molecule& mol,
                                                 const ConformerCondition& cond, int K, std::uint64_t seed,
                                                 bool keep_stereo, Polisher* polisher, long* nfe, long* reflected) {
  std::vector<std::vector<double>> x = sampler.sample(cond, K, seed, nfe);
  std::vector<char> r(x.size(), 0);
  if (keep_stereo)
    for (std::size_t k = 0; k < x.size(); ++k) r[k] = match_stereo(mol.stereo, x[k]).reflected;
  // After the reflection: the force field keeps the configurations of
  // tetrahedral centres, but not always of a drawn one that is nearly flat,
  // which the polish may settle the other way; so they are matched again
  // (the polished geometry's handedness is the better defined).
  if (polisher && polisher->options().on) {
    polisher->polish(mol, x);
    if (keep_stereo)
      for (std::size_t k = 0; k < x.size(); ++k) r[k] ^= char(match_stereo(mol.stereo, x[k]).reflected);
  }
  if (reflected)
    for (char rk : r) *reflected += rk;
  return x;
}

}  // namespace enf::cli
