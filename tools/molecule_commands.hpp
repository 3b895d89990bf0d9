// The molecule (QM9) halves of enf score and enf sample, called by
// model_commands.cpp when the checkpoint is a molecule model.
#pragma once

#include "engine/checkpoint.hpp"
#include "tools/options.hpp"

namespace enf::cli {

int score_molecules(const ParsedOptions& opt, const Checkpoint& c, const CnfOptions& cnf);
int sample_molecules(const ParsedOptions& opt, const Checkpoint& c, const CnfOptions& cnf);

}  // namespace enf::cli
