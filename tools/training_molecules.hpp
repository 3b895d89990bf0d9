// The molecules enf train reads for the QM9 models and the conformer model:
// --data, --val-data, --n-data, --val-samples, --split first|tenth and
// --skip-unsupported, as `enf train --system qm9 --help` describes them.
#pragma once

#include <string>
#include <vector>

#include "datasets/molecule.hpp"
#include "tools/options.hpp"

namespace enf::cli {

struct MoleculeData {
  std::vector<Molecule> train, val;
  std::string train_source, val_source;  // provenance, for the checkpoint
  long skipped = 0;
};

// UsageError for counts the data cannot meet.
MoleculeData load_training_molecules(const ParsedOptions& opt);

}  // namespace enf::cli
