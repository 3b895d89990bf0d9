// libFuzzer target: .npy bytes (parse_npy, floats and, on request, integers).
#include <exception>

#include "datasets/npy.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string bytes = enf::fuzz::as_string(data, size);
  for (bool integers : {false, true}) {
    try {
      (void)enf::parse_npy(bytes, "fuzz.npy", integers);
    } catch (const std::exception&) {
    }
  }
  return 0;
}
