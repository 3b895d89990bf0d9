// Test support: the reference fixtures in tests/fixtures and named tolerances.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "egnn/vector_field.hpp"

namespace enf::test {

// Tolerances, with where they come from (tests/fixtures/README.md §6).
namespace tol {
// float64 port vs float64 reference: the issue asks 1e-10 relative; the
// fixtures measured ≤ 9e-15 between independent float64 runs.
inline constexpr double kFloat64Relative = 1e-10;
// a float32 port vs the float64 reference: 1e-4 (measured float32 error ≤ 3.3e-5).
inline constexpr double kFloat32 = 1e-4;
}  // namespace tol

// Parsed once per process; path relative to the repository root.
const nlohmann::json& fixture(const std::string& file);

// A nested JSON array flattened in row-major order.
std::vector<double> flat(const nlohmann::json& j);

// The field configuration of the DW4/LJ13 fixtures (§2a) and of the QM9 model (§2b).
FieldConfig particle_field(int dim);
FieldConfig qm9_field();

// Parameters from a fixture's {name: {shape, data}} block; every tensor of the
// layout must be present with its shape.
Parameters<double> params_from_json(const ParameterLayout& layout, const nlohmann::json& params);
// Parameters from a safetensors file, names with `prefix` stripped.
Parameters<double> params_from_safetensors(const ParameterLayout& layout, const std::string& path,
                                           const std::string& prefix);

// The weights the CNF fixtures' "mild" and "perturbed" blocks were solved with
// (the oracle recipe built in float64; tools/fixtures/cnf_fixture_weights.py):
// kCnfFixtureWeights/NAME.safetensors in the reference's state_dict names.
inline constexpr const char* kCnfFixtureWeights = "tests/data/cnf_fixture_weights";
Parameters<double> cnf_fixture_weights(const FieldConfig& cfg, const std::string& name);

// max |a − b|
double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b);
double max_abs(const std::vector<double>& a);

}  // namespace enf::test
