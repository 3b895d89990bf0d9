// libFuzzer target: the training options file of `enf train --config FILE`
// (and a run's config.json, which --resume reads the same way) through the
// program's own parsing: open_run applies the file to enf train's option
// table, then every option is read as the training reads it. Values must be
// refused with a std::exception or accepted; an accepted file must also
// survive the round trip a run makes: its config.json (typed values), read
// back as a --config file, gives the same configuration (else: a trap, a
// finding — a run that could not be resumed as it was started).
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "tools/option_groups.hpp"
#include "tools/train_options.hpp"
#include "../support/train_table.hpp"

namespace {

using namespace enf::cli;


// Everything train reads from the options before its work.
void read_all(const ParsedOptions& opt) {
  (void)training_cnf_options(opt);
  (void)training_adam_options(opt);
  (void)training_job(opt, 1000, "structures");
  (void)parse_runtime(opt);
  (void)parse_system(opt, {});
  for (const char* b : {"attention", "tanh", "condition-time", "clip"}) (void)opt.boolean(b);
  for (const char* i : {"nf", "layers", "n-data", "val-samples"}) (void)opt.integer(i);
  (void)options_json(opt).dump();
}

nlohmann::json open_config(const std::string& path, const std::string& out) {
  (void)train_system({"--config", path});
  ParsedOptions opt(enf::test::particle_train_table(), {"--config", path, "--out", out});
  const enf::RunDirectory run = open_run(opt, enf::test::particle_run_keys());
  read_all(opt);
  return run.new_config;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string path = enf::fuzz::as_file("config.json", data, size);
  // A run directory that never exists: open_run only checks it.
  const std::string out = (enf::fuzz::scratch_dir() / "no_such_run").string();
  nlohmann::json saved;
  try {
    saved = open_config(path, out);
  } catch (const std::exception&) {
    return 0;  // refused with a message: the parser's job
  }
  const std::string again = (enf::fuzz::scratch_dir() / "saved_config.json").string();
  { std::ofstream(again, std::ios::binary | std::ios::trunc) << saved.dump(2) << "\n"; }
  try {
    if (open_config(again, out) != saved) __builtin_trap();  // config.json did not read back as written
  } catch (const std::exception&) {
    __builtin_trap();  // a config.json enf wrote that it refuses to read
  }
  return 0;
}
