// libFuzzer target: safetensors files (header JSON, offsets, dtypes, shapes).
#include <exception>

#include "engine/safetensors.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string path = enf::fuzz::as_file("fuzz.safetensors", data, size);
  try {
    (void)enf::read_safetensors(path);
  } catch (const std::exception&) {
  }
  return 0;
}
