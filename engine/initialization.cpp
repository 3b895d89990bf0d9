#include "engine/initialization.hpp"

#include <cmath>
#include <string>

namespace enf {

template <class T>
void initialize_egnn(const EgnnConfig& cfg, Parameters<T>& params, Rng& rng) {
  auto fill = [&](const std::string& name, double bound) {
    for (T& v : params.tensor(cfg.prefix + name)) v = T(rng.uniform(-bound, bound));
  };
  // nn.Linear: kaiming_uniform(a = √5) on the weight gives bound 1/√fan_in; the bias uses the same bound.
  auto linear = [&](const std::string& name, bool bias = true) {
    const auto& info = params.layout.at(cfg.prefix + name + ".weight");
    const double bound = 1.0 / std::sqrt(double(info.shape[1]));
    fill(name + ".weight", bound);
    if (bias) fill(name + ".bias", bound);
  };
  linear("embedding");
  for (int l = 0; l < cfg.layers; ++l) {
    const std::string g = "gcl_" + std::to_string(l) + ".";
    linear(g + "edge_mlp.0");
    linear(g + "edge_mlp.2");
    linear(g + "node_mlp.0");
    linear(g + "node_mlp.2");
    linear(g + "coord_mlp.0");
    // xavier_uniform(gain = 0.001): bound = gain·√(6 / (fan_in + fan_out)).
    fill(g + "coord_mlp.2.weight", 0.001 * std::sqrt(6.0 / (cfg.hidden + 1)));
    if (cfg.attention) linear(g + "att_mlp.0");
  }
  linear("embedding_out");
}

template void initialize_egnn<float>(const EgnnConfig&, Parameters<float>&, Rng&);
template void initialize_egnn<double>(const EgnnConfig&, Parameters<double>&, Rng&);

}  // namespace enf
