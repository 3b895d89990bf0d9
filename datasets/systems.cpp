#include "datasets/systems.hpp"

#include <stdexcept>

namespace enf {

namespace {

std::vector<SystemInfo> make_systems() {
  std::vector<SystemInfo> s;
  s.push_back({"dw4", SystemKind::Particles, 4, 2, SystemEnergy::DoubleWell, false,
               {"dw4:train"}, {"dw4:val"}, {"dw4:test"},
               "DW4: 4 particles in 2-D, double-well pair potential", 20000, 400});
  // LJ13's training split is not shipped: train on the validation split's
  // first 9000 rows and validate on its last 1000.
  s.push_back({"lj13", SystemKind::Particles, 13, 3, SystemEnergy::LennardJones, false,
               {"lj13:val", 0, 9000}, {"lj13:val", 9000, 1000}, {"lj13:test"},
               "LJ13: 13 Lennard-Jones particles in 3-D", 200000, 5000});
  // LJ55 samples by single-particle moves: a step is a sweep of 55 moves
  // (engine/mcmc.hpp). Its splits are enf's own (enf data generate, see
  // datasets/data/PROVENANCE.md); EFM's are lj55:efm-train etc. once fetched.
  s.push_back({"lj55", SystemKind::Particles, 55, 3, SystemEnergy::LennardJones, false,
               {"lj55:train"}, {"lj55:val"}, {"lj55:test"},
               "LJ55: 55 Lennard-Jones particles in 3-D", 10000, 400, true});
  s.push_back({"qm9_positional", SystemKind::Particles, 19, 3, SystemEnergy::None, true,
               {"qm9-positional:train"}, {"qm9-positional:val"}, {"qm9-positional:test"},
               "QM9-positional: positions of 19-atom QM9 molecules"});
  s.push_back({"qm9", SystemKind::Molecules, 0, 3, SystemEnergy::None, false,
               {"qm9:train"}, {"qm9:valid"}, {"qm9:test"},
               "QM9 molecules: positions, atom types and charges"});
  s.push_back({"qm9-conformers", SystemKind::Conformers, 0, 3, SystemEnergy::None, false,
               {"qm9:train"}, {"qm9:valid"}, {"qm9:test"},
               "QM9 conformers: positions of a given molecule, conditioned on its graph"});
  return s;
}

}  // namespace

const std::vector<SystemInfo>& systems() {
  static const std::vector<SystemInfo> s = make_systems();
  return s;
}

const SystemInfo* find_system(const std::string& name) {
  for (const auto& s : systems())
    if (s.name == name) return &s;
  return nullptr;
}

const SystemInfo& system_info(const std::string& name) {
  if (const SystemInfo* s = find_system(name)) return *s;
  throw std::invalid_argument("unknown system '" + name + "' (" + system_names("or") + ")");
}

std::string system_names(const std::string& conjunction, const std::function<bool(const SystemInfo&)>& keep) {
  std::vector<std::string> names;
  for (const auto& s : systems())
    if (!keep || keep(s)) names.push_back(s.name);
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += conjunction == "|" ? "|" : (i + 1 == names.size() ? " " + conjunction + " " : ", ");
    out += names[i];
  }
  return out;
}

bool is_particle_system(const std::string& name) {
  const SystemInfo* s = find_system(name);
  return s && is_particles(*s);
}

bool is_molecule_system(const std::string& name) {
  const SystemInfo* s = find_system(name);
  return s && s->kind == SystemKind::Molecules;
}

bool is_conformer_system(const std::string& name) {
  const SystemInfo* s = find_system(name);
  return s && s->kind == SystemKind::Conformers;
}

bool has_target_energy(const std::string& name) {
  const SystemInfo* s = find_system(name);
  return s && has_energy(*s);
}

}  // namespace enf
