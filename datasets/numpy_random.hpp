// NumPy's legacy random permutation (np.random.seed(seed); np.random.permutation(n)),
// reproduced bit for bit: the QM9 splits of cormorant/EDM/E-NF are defined by it.
#pragma once

#include <cstdint>
#include <vector>

namespace enf {

// RandomState(seed).permutation(n): MT19937 seeded by init_genrand(seed) (as
// std::mt19937(seed)), then arange(n) shuffled by Fisher–Yates from the end,
// j = random_interval(i) drawn by masked rejection (random_interval in NumPy's
// distributions.c). n < 0 is an error; n = 0 gives an empty vector.
std::vector<int64_t> numpy_legacy_permutation(int64_t n, uint32_t seed);

}  // namespace enf
