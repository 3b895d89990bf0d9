// Test support: a tiny QM9 flow (field H = 8, L = 2; dequantizer width 8, 2
// layers) on the first molecules of the shipped test split, with the
// training settings the molecule training tests share.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "datasets/molecule_io.hpp"
#include "engine/molecule_trainer.hpp"

namespace enf::test {

// The first `count` molecules of the shipped test split; their atom counts
// become mol's p(N).
inline std::vector<MoleculeInput> test_split_molecules(int count, MoleculeModelConfig& mol) {
  MoleculeReadOptions ro;
  ro.count = count;
  const MoleculeSet set = read_molecules("datasets/data/qm9/edm_cormorant_npz/test.npz", ro);
  std::vector<MoleculeInput> mols;
  for (const auto& m : set.molecules) mols.push_back(molecule_input(m));
  for (long c : node_count_histogram(set.molecules)) mol.node_counts.push_back(double(c));
  return mols;
}

// The tiny model of the brief: field H = 8, L = 2; dequantizer width 8, 2 layers.
struct TinyQm9 {
  FieldConfig field = qm9_field_config(8, 2);
  MoleculeModelConfig mol;
  CnfOptions cnf;
  AdamWOptions adam;
  std::vector<MoleculeInput> mols;

  explicit TinyQm9(int count) {
    mols = test_split_molecules(count, mol);
    mol.dequantizer_hidden = 8;
    mol.dequantizer_layers = 2;
    cnf.trace = TraceEstimator::Gaussian;
    cnf.ode_regularization = 1e-3;
    cnf.solver.rtol = cnf.solver.atol = 1e-4;
    cnf.adjoint_solver = cnf.solver;
    adam.lr = 5e-3;
  }
  template <class T>
  std::unique_ptr<MoleculeTrainer<T>> trainer(std::uint64_t seed, bool clip = true) const {
    return std::make_unique<MoleculeTrainer<T>>(field, mol, cnf, adam, initial_molecule_parameters(field, mol, seed),
                                                false, 1, clip);
  }
  std::vector<MoleculeInput> batch(int first, int size) const {
    std::vector<MoleculeInput> b;
    for (int k = 0; k < size; ++k) b.push_back(mols[(first + k) % mols.size()]);
    return b;
  }
};

}  // namespace enf::test
