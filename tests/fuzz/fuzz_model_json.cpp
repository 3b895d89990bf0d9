// libFuzzer target: the JSON files a model comes with — a checkpoint's
// model.json (beside valid weights) and a reference model's args.json
// (beside the oracle DW4 weights) — through load_checkpoint and
// import_reference. Sizes in them must be checked before anything is
// allocated (the RSS limit catches what is not).
#include <exception>
#include <filesystem>

#include "engine/checkpoint.hpp"
#include "fuzz_support.hpp"

namespace fs = std::filesystem;

namespace {
// A checkpoint and a reference directory whose JSON file the fuzzer replaces.
struct Dirs {
  fs::path checkpoint, reference;
  Dirs() {
    const fs::path base = enf::fuzz::scratch_dir();
    reference = base / "reference";
    fs::create_directories(reference);
    fs::copy_file("tests/fixtures/models/oracle_dw4_mild/flow.safetensors", reference / "flow.safetensors",
                  fs::copy_options::overwrite_existing);
    fs::copy_file("tests/fixtures/models/oracle_dw4_mild/args.json", reference / "args.json",
                  fs::copy_options::overwrite_existing);
    checkpoint = base / "checkpoint";
    enf::save_checkpoint(checkpoint.string(), enf::import_reference(reference.string()));
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const Dirs dirs;  // run from the repository root (tools/fuzz.sh)
  const std::string text = enf::fuzz::as_string(data, size);
  // The same bytes as a checkpoint's model.json and as a reference args.json:
  // one corpus (seeds of both kinds) exercises both readers.
  for (const auto& [dir, name] : {std::pair{dirs.checkpoint, "model.json"}, std::pair{dirs.reference, "args.json"}}) {
    { std::ofstream(dir / name, std::ios::binary | std::ios::trunc) << text; }
    try {
      if (std::string(name) == "model.json") (void)enf::load_checkpoint(dir.string());
      else (void)enf::import_reference(dir.string());
    } catch (const std::exception&) {
    }
  }
  return 0;
}
