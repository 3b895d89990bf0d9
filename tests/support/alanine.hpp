// L-alanine, N[C@@H](C)C(=O)O, as obabel --gen3d -h places it (Å): N, Cα,
// CH3, C, O, O, then the hydrogens in the order Open Babel adds them. One
// geometry for the stereo and force-field tests.
#pragma once

#include <vector>

namespace enf::test {

inline const std::vector<int> kAlanineZ = {7, 6, 6, 6, 8, 8, 1, 1, 1, 1, 1, 1, 1};
inline const std::vector<double> kLAlanine = {
    1.06890, 0.07631,  0.19466,  2.55254, 0.11423,  0.05785,  2.97811, -0.22501, -1.36129, 3.03972, 1.50912,
    0.48551, 4.08080,  2.04124,  0.14057, 2.15357,  2.08363,  1.34534, 0.75568,  -0.86383, -0.06445, 0.66808,
    0.67735, -0.53515, 2.98093,  -0.60573, 0.76344, 2.59020,  0.50034, -2.08480, 2.62532,  -1.22124, -1.64957,
    4.07035, -0.22177, -1.44759, 1.39635,  1.45104,  1.42055};

}  // namespace enf::test
