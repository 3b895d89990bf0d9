// libFuzzer target: SDF/MOL input — enf's record checks (counts lines,
// truncation) and then Open Babel, as read_molecules runs them.
#include <exception>

#include "datasets/molecule_io.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string path = enf::fuzz::as_file("fuzz.sdf", data, size);
  try {
    (void)enf::read_molecules(path);
  } catch (const std::exception&) {
  }
  return 0;
}
