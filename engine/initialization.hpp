// Parameter initialisation as the reference does it: PyTorch's nn.Linear
// default (weight and bias uniform in ±1/sqrt(fan_in)) for every layer, and
// Xavier-uniform with gain 0.001 for the last coordinate layer (coord_mlp.2),
// so a new flow starts close to the identity. The random stream is enf's own
// (seeded), not PyTorch's.
#pragma once

#include <cstdint>

#include "egnn/egnn_network.hpp"
#include "engine/rng.hpp"

namespace enf {

template <class T>
void initialize_egnn(const EgnnConfig& cfg, Parameters<T>& params, Rng& rng);

}  // namespace enf
