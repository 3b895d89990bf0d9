// A small, portable random number generator: xoshiro256** seeded through
// splitmix64, with its own uniform and normal transforms, so a seed gives the
// same numbers on every platform and standard library (std::normal_distribution
// does not promise that).
#pragma once

#include <cstdint>

namespace enf {

class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0);

  std::uint64_t next_u64();
  double uniform();                       // [0, 1), 53 random bits
  double uniform(double lo, double hi);   // [lo, hi)
  double normal();                        // N(0, 1), Box–Muller
  double rademacher();                    // ±1 with probability ½ each
  // An independent stream for sample or thread `index` (same seed → same streams).
  Rng split(std::uint64_t index) const;

 private:
  std::uint64_t s_[4];
  std::uint64_t seed_;
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace enf
