// The systems enf knows, in one table: the particle benchmarks (DW4, LJ13,
// QM9-positional) with their size, target energy and default splits, and the
// QM9 molecules. particle_system(), checkpoint validation, MCMC, the energies
// and the command line all look systems up here instead of comparing names,
// so a new system is one row (plus its energy or loader, if it has one).
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace enf {

// Conformers: the positions of a given molecule, conditioned on its graph
// (issue 15; engine/conformer_flow.hpp).
enum class SystemKind { Particles, Molecules, Conformers };

// The target energy of a particle system (MCMC, importance weights).
enum class SystemEnergy { None, DoubleWell, LennardJones };

// A default split: rows [first, first + count) of a dataset part of the
// registry (datasets/registry.hpp); count < 0: the part as registered.
struct SplitRange {
  std::string part;  // e.g. "dw4:train"
  long first = 0, count = -1;
};

struct SystemInfo {
  std::string name;  // as on the command line and in checkpoints: "dw4"
  SystemKind kind = SystemKind::Particles;
  int n = 0, dim = 3;  // particles and dimension (molecules: n = 0, the atom count varies)
  SystemEnergy energy = SystemEnergy::None;
  // Particles read from molecule files: the positions of the molecules of n atoms.
  bool positions_of_molecules = false;
  SplitRange train, val, test;  // what enf train and --data NAME:split use by default
  std::string description;
  // MCMC of the target energy (enf data generate): burn-in and thinning in
  // steps per chain, about 50 and twice the energy's integrated autocorrelation time.
  int mcmc_burn_in = 0, mcmc_thin = 0;
  // Whether MCMC moves one particle at a time (a step is then a sweep over
  // the n particles) rather than all at once: in many dimensions the
  // all-particle step must shrink as 1/√(n·D) to be accepted.
  bool mcmc_single_particle = false;
};

// Every system, in the order the command line lists them.
const std::vector<SystemInfo>& systems();
// The system called `name`, or null.
const SystemInfo* find_system(const std::string& name);
// The system called `name`; std::invalid_argument naming the valid ones
// (those of `kind` when given as "particle system").
const SystemInfo& system_info(const std::string& name);
// The names of the systems `keep` accepts (all when empty): "dw4, lj13 or
// qm9" (conjunction "or"), or "dw4|lj13|qm9" (conjunction "|" joins all).
std::string system_names(const std::string& conjunction,
                         const std::function<bool(const SystemInfo&)>& keep = {});
// Common filters.
inline bool is_particles(const SystemInfo& s) { return s.kind == SystemKind::Particles; }
inline bool has_energy(const SystemInfo& s) { return s.energy != SystemEnergy::None; }
// Whether `name` is a system of that kind / with a target energy.
bool is_particle_system(const std::string& name);
bool is_molecule_system(const std::string& name);
bool is_conformer_system(const std::string& name);
bool has_target_energy(const std::string& name);

}  // namespace enf
