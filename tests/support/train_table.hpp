// Test support: enf train's particle option table, rebuilt from the same
// parts as tools/train_command.cpp (the common rows are the ones a --config
// file fills), and the keys a run's config.json holds. Shared by
// tests/tools/test_cli_options.cpp and the --config fuzz target.
#pragma once

#include <string>
#include <vector>

#include "tools/option_groups.hpp"
#include "tools/train_options.hpp"

namespace enf::test {

inline const cli::CommandSpec& particle_train_table() {
  static const cli::CommandSpec s = cli::train_spec(
      "test", "", {cli::system_option("dw4", "", {}), {"data", "FILE", "", ""}, {"val-data", "FILE", "", ""},
                   {"n-data", "N", "1000", "", "1", "10000000"}, {"val-samples", "N", "500", "", "1", "100000"}},
      {});
  return s;
}

inline std::vector<std::string> particle_run_keys() {
  std::vector<std::string> k = {"system", "data", "val-data", "n-data", "val-samples"};
  for (const auto& key : cli::common_run_keys()) k.push_back(key);
  return k;
}

}  // namespace enf::test
