// libFuzzer target: XYZ text — multi-frame and extended XYZ, and the original
// QM9 dsgdb9nsd_*.xyz format ("gdb" line 2, "*^" exponents) — through the
// molecule reader, and the particle reader of plain XYZ frames.
#include <exception>

#include "datasets/molecule_io.hpp"
#include "datasets/xyz.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text = enf::fuzz::as_string(data, size);
  try {
    (void)enf::parse_xyz_molecules(text, "fuzz.xyz");
  } catch (const std::exception&) {
  }
  try {
    (void)enf::read_xyz(enf::fuzz::as_file("fuzz.xyz", data, size));
  } catch (const std::exception&) {
  }
  return 0;
}
