#include "engine/conformer_support.hpp"

#include <algorithm>
#include <stdexcept>

#include "datasets/molecular_graph.hpp"

namespace enf {

namespace {
bool has_channel(int z) {
  return std::find(kConditionElements.begin(), kConditionElements.end(), z) != kConditionElements.end();
}
}  // namespace

std::string ConformerSupport::validate() const {
  if (max_atoms < 2) return "max_atoms must be at least 2, got " + std::to_string(max_atoms);
  if (elements.empty()) return "no elements";
  for (std::size_t k = 0; k < elements.size(); ++k) {
    if (!has_channel(elements[k]))
      return "element " + (elements[k] >= 1 && elements[k] <= 118 ? element_symbol(elements[k])
                                                                   : "Z = " + std::to_string(elements[k])) +
             " has no channel in the model's conditioning (H, C, N, O, F)";
    if (k > 0 && elements[k] <= elements[k - 1]) return "elements must be distinct, in ascending atomic number";
  }
  return {};
}

std::string element_list(const std::vector<int>& elements) {
  std::string s;
  for (int z : elements) {
    if (!s.empty()) s += ", ";
    s += element_symbol(z);
  }
  return s;
}

ConformerSupport conformer_support_of(const std::vector<Molecule>& training) {
  if (training.empty()) throw std::invalid_argument("conformer support: no training molecules");
  ConformerSupport s;
  s.recorded = true;
  s.max_atoms = 0;
  s.elements.clear();
  for (const Molecule& m : training) {
    s.max_atoms = std::max(s.max_atoms, m.atoms());
    for (int z : m.atomic_numbers)
      if (std::find(s.elements.begin(), s.elements.end(), z) == s.elements.end()) s.elements.push_back(z);
  }
  std::sort(s.elements.begin(), s.elements.end());
  if (auto e = s.validate(); !e.empty()) throw std::invalid_argument("conformer support of the training data: " + e);
  return s;
}

nlohmann::json to_json(const ConformerSupport& s) {
  nlohmann::json elements = nlohmann::json::array();
  for (int z : s.elements) elements.push_back(element_symbol(z));
  return {{"max_atoms", s.max_atoms}, {"elements", elements}};
}

ConformerSupport conformer_support_from_json(const nlohmann::json& j) {
  const std::string where = "conformer_support: ";
  if (!j.is_object()) throw std::runtime_error(where + "expected an object, got " + std::string(j.type_name()));
  if (!j.contains("max_atoms") || !j["max_atoms"].is_number_integer())
    throw std::runtime_error(where + "'max_atoms' must be an integer" +
                             (j.contains("max_atoms") ? ", got " + j["max_atoms"].dump() : " (missing)"));
  if (!j.contains("elements") || !j["elements"].is_array())
    throw std::runtime_error(where + "'elements' must be an array of element symbols" +
                             (j.contains("elements") ? ", got " + j["elements"].dump() : " (missing)"));
  ConformerSupport s;
  s.recorded = true;
  s.max_atoms = j["max_atoms"].get<int>();
  s.elements.clear();
  for (const auto& e : j["elements"]) {
    const int z = e.is_string() ? atomic_number(e.get<std::string>()) : 0;
    if (z == 0) throw std::runtime_error(where + "'elements': " + e.dump() + " is no element symbol");
    s.elements.push_back(z);
  }
  if (auto e = s.validate(); !e.empty()) throw std::runtime_error(where + e);
  return s;
}

std::string unsupported_reason(const Molecule& m, const ConformerSupport& s) {
  const std::string source = s.recorded ? " (its training data)" : "";
  for (int i = 0; i < m.atoms(); ++i) {
    const int z = m.atomic_numbers[std::size_t(i)];
    if (std::find(s.elements.begin(), s.elements.end(), z) == s.elements.end())
      return "atom " + std::to_string(i + 1) + " is " + element_symbol(z) + "; the model knows " +
             element_list(s.elements) + " only" + source;
  }
  if (m.atoms() < 2 || m.atoms() > s.max_atoms)
    return std::to_string(m.atoms()) + " atoms with hydrogens; the model takes 2 to " + std::to_string(s.max_atoms) +
           (s.recorded ? " (its largest training molecule has " + std::to_string(s.max_atoms) + ")" : "");
  return {};
}

}  // namespace enf
