// The molecules a conformer model takes (issue 15 follow-up). Its field's
// node one-hot knows H, C, N, O, F (kConditionElements) and nothing limits
// the atom count, but a model has learnt only the elements and sizes of its
// training data: enf train --system qm9-conformers records the largest
// training molecule (atoms, hydrogens included) and the elements seen in the
// checkpoint (Checkpoint::conformer_support), and enf conformers, enf
// conformers eval and enf score refuse other molecules (or skip and count
// them with --skip-unsupported). A checkpoint without the record (written
// before enf kept it, such as the shipped qm9-conformers) takes QM9's
// molecules: 2 to 29 atoms of H, C, N, O, F.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datasets/molecule.hpp"

namespace enf {

struct ConformerSupport {
  int max_atoms = kQm9MaxAtoms;                 // with hydrogens; at least 2 (one atom has no positions)
  std::vector<int> elements = {1, 6, 7, 8, 9};  // atomic numbers, ascending, among kConditionElements
  // Whether this is a model's record of its training data (else QM9's
  // limits, the default): messages say which.
  bool recorded = false;
  // "" when valid, else what is wrong.
  std::string validate() const;
  bool operator==(const ConformerSupport& o) const {
    return max_atoms == o.max_atoms && elements == o.elements && recorded == o.recorded;
  }
};

// The record of a training set: its largest molecule's atom count and the
// elements of its atoms (recorded = true). std::invalid_argument when empty
// or when an element has no channel of the node one-hot.
ConformerSupport conformer_support_of(const std::vector<Molecule>& training);

// {"max_atoms": 9, "elements": ["H", "C", "O"]} (symbols, ascending Z).
nlohmann::json to_json(const ConformerSupport& s);
// The record read back (recorded = true); std::runtime_error naming the key
// when a key is missing, of the wrong type, or invalid.
ConformerSupport conformer_support_from_json(const nlohmann::json& j);

// Why a model with support s cannot take m, in one line ("" when it can):
// "atom 4 is Cl; the model knows H, C, N, O, F only", "31 atoms with
// hydrogens; the model takes 2 to 29", and for a record "... (its training
// data)".
std::string unsupported_reason(const Molecule& m, const ConformerSupport& s);

// "H, C, N, O, F".
std::string element_list(const std::vector<int>& elements);

}  // namespace enf
