// The checkpoint: a directory with model.json (format name, version, model
// and training configuration, data statistics) and weights.safetensors
// (tensors named as the reference's state_dict, "egnn.*"). Saved atomically:
// written to "<dir>.tmp-<pid>", synced to disk, then swapped with <dir>, so a
// failure never leaves a half-written checkpoint. Unknown formats or versions
// are rejected.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "egnn/vector_field.hpp"
#include "engine/cnf.hpp"
#include "engine/conformer_support.hpp"
#include "engine/molecule_model.hpp"

namespace enf {

inline constexpr const char* kCheckpointFormat = "enf-checkpoint";
inline constexpr int kCheckpointVersion = 1;

struct Checkpoint {
  std::string system;             // "dw4", "lj13", or "" when not a known particle system
  FieldConfig field;
  // A molecule model (QM9): the field plus dequantizer, ActNorm and p(N);
  // params then has molecule_layout(field, *molecule).
  std::optional<MoleculeModelConfig> molecule;
  // A conformer model: the largest molecule and the elements of its training
  // data (engine/conformer_support.hpp), model.json's "conformer_support".
  // Absent in checkpoints written before enf recorded it: QM9's limits then
  // (conformer_support(c)). An optional key, so no new checkpoint version:
  // this enf reads checkpoints with and without it, and an older enf ignores
  // it and applies QM9's limits, as it does to every conformer model.
  std::optional<ConformerSupport> conformer_support;
  nlohmann::json training = nlohmann::json::object();  // the resolved training configuration
  nlohmann::json data = nlohmann::json::object();      // data statistics and provenance
  nlohmann::json extra = nlohmann::json::object();     // e.g. training state, import source
  Parameters<double> params;
  // Optional named arrays saved beside the weights (state.safetensors), e.g.
  // the optimizer's moments for an exact resume.
  std::vector<std::pair<std::string, std::vector<double>>> state;
};

nlohmann::json to_json(const FieldConfig& f);
// Missing keys take FieldConfig's defaults; wrong types throw naming the key.
FieldConfig field_config_from_json(const nlohmann::json& j);
nlohmann::json to_json(const MoleculeModelConfig& m);
MoleculeModelConfig molecule_config_from_json(const nlohmann::json& j);
// The molecules a conformer model takes: its record, else QM9's limits.
ConformerSupport conformer_support(const Checkpoint& c);
// The layout of a checkpoint's parameters.
ParameterLayout checkpoint_layout(const Checkpoint& c);

void save_checkpoint(const std::string& dir, const Checkpoint& ckpt);
// dir, or when dir is missing the checkpoint a crashed save left beside it
// (checkpoint_location).
Checkpoint load_checkpoint(const std::string& dir);
// Exactly dir.
Checkpoint load_checkpoint_at(const std::string& dir);
// What --model names: a shipped model by name (qm9-conformers,
// qm9-pretrained; datasets/registry.hpp) or a directory; a checkpoint
// (load_checkpoint), or a reference model's directory (args.json and
// flow.safetensors, no model.json), imported in memory (import_reference) so
// that the pretrained QM9 model samples and scores without an enf import.
Checkpoint load_model(const std::string& name_or_path);

// Crash safety (checkpoint_recovery.cpp). A save that was killed leaves
// "<dir>.tmp-<pid>" (the new checkpoint, complete once its model.json
// verifies) and, on file systems without an atomic directory swap, possibly
// "<dir>.old-<pid>" (the previous one) and no dir.
// The leftovers beside dir, complete or not.
std::vector<std::string> checkpoint_debris(const std::string& dir);
// What to load as dir: dir when it exists, else the newest complete leftover
// (highest training step, then latest model.json; a .tmp before an .old),
// else "".
std::string checkpoint_location(const std::string& dir);
// Repairs dir after a crash: when it is missing, the newest complete leftover
// becomes dir; then every leftover is removed. Returns whether dir exists.
// Only for a directory no other process is saving to.
bool recover_checkpoint(const std::string& dir);

// A model trained with the reference implementation: DIR/args.json (its
// command-line arguments) and DIR/flow.safetensors (its state_dict); for a
// QM9 model (args "dataset": "qm9") also DIR/dequantizer.safetensors, with
// the ActNorm of transformations.0 and the field of transformations.1.
Checkpoint import_reference(const std::string& dir);

}  // namespace enf
