// Test support: records of the shipped QM9 SDF (datasets/data/qm9), as
// written (not centred), for tests of graphs, conformers and their judging.
#pragma once

#include <string>
#include <vector>

#include "datasets/molecule_io.hpp"

namespace enf::test {

inline const std::string kQm9Sdf = "datasets/data/qm9/qm9_first500.sdf";

// Records [first, first + count) of kQm9Sdf.
inline std::vector<Molecule> qm9_sdf_records(long first, long count) {
  MoleculeReadOptions o;
  o.centre = false;
  o.first = first;
  o.count = count;
  return read_molecules(kQm9Sdf, o).molecules;
}

}  // namespace enf::test
