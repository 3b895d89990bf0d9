// libFuzzer target: .npz archives (the ZIP directory, stored and deflated
// members, CRC-32) and every member decoded.
#include <exception>

#include "datasets/npz.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string path = enf::fuzz::as_file("fuzz.npz", data, size);
  try {
    const enf::NpzFile f(path);
    for (const auto& name : f.names()) {
      try {
        (void)f.array(name, true);
      } catch (const std::exception&) {
      }
    }
  } catch (const std::exception&) {
  }
  return 0;
}
