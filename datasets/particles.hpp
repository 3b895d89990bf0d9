// The particle benchmarks of the E-NF paper and their shipped data splits.
// Structures are flattened node-major, [rows, n·D], centre of mass removed.
#pragma once

#include <string>
#include <vector>

#include "datasets/npy.hpp"

namespace enf {

struct ParticleSystem {
  std::string name;  // "dw4" or "lj13"
  int n = 0, dim = 0;
};

// Throws std::invalid_argument naming the valid systems.
ParticleSystem particle_system(const std::string& name);

struct Structures {
  std::vector<double> x;  // [rows, n·D]
  int rows = 0;
};

// Rows [first, first + count) (count < 0: to the end) of a dataset part
// (dw4:test, see registry.hpp) or of a .npy holding
// [rows, n·D] or [rows, n, D] numbers, or of a .npz's array "x" (or its only
// array); errors name the file and the shape found. For qm9_positional also a
// molecule file (EDM .npz, XYZ, SDF, ...): the positions of its 19-atom molecules.
Structures load_structures(const std::string& path, const ParticleSystem& sys, long first = 0, long count = -1);

// Throws (naming path) unless `a` is [rows, n·D] or [rows, n, D] for `sys`,
// has rows, and rows [first, first + count) are all finite.
void check_structure_rows(const NpyArray& a, const std::string& path, const ParticleSystem& sys, long first,
                          long count);

// The default splits of a system, from the shipped data (datasets/registry.hpp,
// datasets/data/PROVENANCE.md): dw4:train/val/test; LJ13 ships no training
// split, so its training set is the first 9000 rows of lj13:val and its
// validation set the last 1000 (after `enf data fetch lj13`, --data lj13:train
// is the EFM training split); QM9-positional (the E-NF paper's positions-only
// QM9 task: molecules of 19 atoms, n = 19, D = 3) is qm9-positional:train/val/
// test, the shipped EDM test split's 1813 molecules of 19 atoms split 1313 /
// 250 / 250 in file order.
struct SplitSpec {
  std::string path;
  long first = 0, count = -1;
};
SplitSpec shipped_split(const ParticleSystem& sys, const std::string& split);

}  // namespace enf
