#include "support/fixtures.hpp"

#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>

#include "engine/safetensors.hpp"

namespace enf::test {

const nlohmann::json& fixture(const std::string& file) {
  static std::map<std::string, nlohmann::json> cache;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(file);
  if (it != cache.end()) return it->second;
  const std::string path = "tests/fixtures/" + file;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open fixture " + path + " (tests run from the repository root)");
  return cache[file] = nlohmann::json::parse(in);
}

static void flatten(const nlohmann::json& j, std::vector<double>& out) {
  if (j.is_array())
    for (const auto& e : j) flatten(e, out);
  else
    out.push_back(j.get<double>());
}

std::vector<double> flat(const nlohmann::json& j) {
  std::vector<double> out;
  flatten(j, out);
  return out;
}

FieldConfig particle_field(int dim) {
  FieldConfig c;
  c.dim = dim;
  c.features = 0;
  c.hidden = 32;
  c.layers = 3;
  c.attention = true;
  c.tanh = true;
  c.coords_range = 15.0;
  return c;
}

FieldConfig qm9_field() {
  FieldConfig c;
  c.dim = 3;
  c.features = 6;
  c.hidden = 64;
  c.layers = 6;
  c.attention = true;
  c.tanh = true;
  c.coords_range = 15.0;
  return c;
}

Parameters<double> params_from_json(const ParameterLayout& layout, const nlohmann::json& params) {
  Parameters<double> p(layout);
  for (const auto& info : layout.tensors()) {
    if (!params.contains(info.name)) throw std::runtime_error("fixture lacks parameter " + info.name);
    const auto& t = params.at(info.name);
    if (t.at("shape").get<std::vector<int>>() != info.shape)
      throw std::runtime_error("fixture parameter " + info.name + " has another shape");
    auto data = flat(t.at("data"));
    std::copy(data.begin(), data.end(), p.tensor(info.name).begin());
  }
  return p;
}

Parameters<double> params_from_safetensors(const ParameterLayout& layout, const std::string& path,
                                           const std::string& prefix) {
  const SafeTensorFile file = read_safetensors(path);
  Parameters<double> p(layout);
  for (const auto& info : layout.tensors()) {
    auto it = file.tensors.find(prefix + info.name);
    if (it == file.tensors.end()) throw std::runtime_error(path + " lacks " + prefix + info.name);
    if (it->second.data.size() != info.size) throw std::runtime_error(path + ": " + info.name + " has another size");
    std::copy(it->second.data.begin(), it->second.data.end(), p.tensor(info.name).begin());
  }
  return p;
}

Parameters<double> cnf_fixture_weights(const FieldConfig& cfg, const std::string& name) {
  return params_from_safetensors(field_layout(cfg), std::string(kCnfFixtureWeights) + "/" + name + ".safetensors",
                                 "odefunc.dynamics.");
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) throw std::runtime_error("max_abs_diff: sizes differ");
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

double max_abs(const std::vector<double>& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::abs(v));
  return m;
}

}  // namespace enf::test
