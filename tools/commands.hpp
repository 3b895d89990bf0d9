// Entry points of the enf subcommands. Each takes the arguments after its
// name, prints results on stdout and logs on stderr, and returns the exit code.
#pragma once

#include <string>
#include <vector>

namespace enf::cli {

// A row of the dispatcher's table (tools/main.cpp): "bench step" is a
// two-word command; the summary is its line in 'enf --help'.
struct Command {
  std::string name;
  std::string summary;
  int (*run)(const std::vector<std::string>& args);
};

int run_bench_field(const std::vector<std::string>& args);
int run_bench_step(const std::vector<std::string>& args);
// enf bench score and enf bench sample (tools/bench_score_sample.cpp).
int run_bench_score(const std::vector<std::string>& args);
int run_bench_sample(const std::vector<std::string>& args);
// enf bench scaling (tools/bench_scaling.cpp).
int run_bench_scaling(const std::vector<std::string>& args);
int run_import(const std::vector<std::string>& args);
int run_score(const std::vector<std::string>& args);
int run_sample(const std::vector<std::string>& args);
int run_conformers(const std::vector<std::string>& args);
int run_export(const std::vector<std::string>& args);
// enf conformers eval (tools/conformers_eval_command.cpp), dispatched by run_conformers.
int run_conformers_eval(const std::vector<std::string>& args);
int run_train(const std::vector<std::string>& args);
int run_eval(const std::vector<std::string>& args);
int run_data_generate(const std::vector<std::string>& args);
int run_field(const std::vector<std::string>& args);
int run_metrics(const std::vector<std::string>& args);
int run_data_list(const std::vector<std::string>& args);
int run_data_fetch(const std::vector<std::string>& args);
int run_check_gradients(const std::vector<std::string>& args);
// enf --version: version, git commit, compiler, build options, libraries.
int print_version();

}  // namespace enf::cli
