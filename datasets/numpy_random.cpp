#include "datasets/numpy_random.hpp"

#include <random>
#include <stdexcept>
#include <string>
#include <utility>

namespace enf {

namespace {

// NumPy's random_interval(bitgen, max): a uniform integer in [0, max] from the
// smallest all-ones mask covering max, redrawing while the masked value
// exceeds max. 32-bit draws while max fits in 32 bits, else 64-bit draws of
// two outputs, the first as the high word (mt19937_next64; n > 2^32 only).
std::uint64_t random_interval(std::mt19937& mt, std::uint64_t max) {
  if (max == 0) return 0;
  std::uint64_t mask = max;
  for (int shift : {1, 2, 4, 8, 16, 32}) mask |= mask >> shift;
  std::uint64_t value;
  if (max <= 0xffffffffu) {
    do value = std::uint64_t(mt()) & mask;
    while (value > max);
  } else {
    do {
      const std::uint64_t high = mt();
      value = ((high << 32) | std::uint64_t(mt())) & mask;
    } while (value > max);
  }
  return value;
}

}  // namespace

std::vector<int64_t> numpy_legacy_permutation(int64_t n, uint32_t seed) {
  if (n < 0) throw std::runtime_error("numpy_legacy_permutation: n = " + std::to_string(n) + " is negative");
  // std::mt19937's seeding is MT19937's init_genrand, which NumPy's legacy
  // seed(int) uses (not init_by_array); its outputs are genrand_int32's.
  std::mt19937 mt(seed);
  std::vector<int64_t> a(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) a[std::size_t(i)] = i;
  for (int64_t i = n - 1; i >= 1; --i) {
    const auto j = random_interval(mt, std::uint64_t(i));
    std::swap(a[std::size_t(i)], a[std::size_t(j)]);
  }
  return a;
}

}  // namespace enf
