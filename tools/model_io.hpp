// What enf score and enf sample read off a particle checkpoint.
#pragma once

#include <stdexcept>

#include "datasets/particles.hpp"
#include "datasets/systems.hpp"
#include "engine/checkpoint.hpp"

namespace enf::cli {

// Particles per structure: the system's, or the checkpoint's data.n_particles
// for an imported model of no known system.
inline int particles_in(const Checkpoint& c) {
  if (is_particle_system(c.system)) return particle_system(c.system).n;
  if (c.data.contains("n_particles") && c.data["n_particles"].get<int>() > 1) return c.data["n_particles"].get<int>();
  throw std::runtime_error("the checkpoint does not say how many particles its structures have");
}

}  // namespace enf::cli
