#include "engine/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include "datasets/checksum.hpp"
#include "datasets/file_io.hpp"
#include "datasets/particles.hpp"
#include "datasets/registry.hpp"
#include "datasets/systems.hpp"
#include "engine/safetensors.hpp"

namespace enf {

namespace fs = std::filesystem;

nlohmann::json to_json(const FieldConfig& f) {
  nlohmann::json j = {{"dim", f.dim},
                      {"features", f.features},
                      {"hidden", f.hidden},
                      {"layers", f.layers},
                      {"attention", f.attention},
                      {"tanh", f.tanh},
                      {"coords_range", f.coords_range},
                      {"aggregation", f.aggregation == Aggregation::Sum ? "sum" : "mean"},
                      {"condition_time", f.condition_time}};
  // Written only for a conditional field, so an unconditional model's JSON
  // stays exactly what it was; absent keys read back as 0.
  if (f.node_condition > 0) j["node_condition"] = f.node_condition;
  if (f.edge_condition > 0) j["edge_condition"] = f.edge_condition;
  return j;
}

FieldConfig field_config_from_json(const nlohmann::json& j) {
  FieldConfig f;
  // Integers must be JSON integers: nlohmann would truncate 32.5 to 32.
  auto get = [&](const char* key, auto& out) {
    if (!j.contains(key)) return;
    using T = std::decay_t<decltype(out)>;
    if constexpr (std::is_same_v<T, int>)
      if (!j.at(key).is_number_integer())
        throw std::runtime_error(std::string("model field config: '") + key + "' must be an integer, got " +
                                 j.at(key).dump());
    try {
      j.at(key).get_to(out);
    } catch (const nlohmann::json::exception&) {
      throw std::runtime_error(std::string("model field config: '") + key + "' has the wrong type");
    }
  };
  get("dim", f.dim);
  get("features", f.features);
  get("hidden", f.hidden);
  get("layers", f.layers);
  get("attention", f.attention);
  get("tanh", f.tanh);
  get("coords_range", f.coords_range);
  get("condition_time", f.condition_time);
  get("node_condition", f.node_condition);
  get("edge_condition", f.edge_condition);
  std::string agg = "sum";
  get("aggregation", agg);
  if (agg != "sum" && agg != "mean") throw std::runtime_error("model field config: aggregation must be sum or mean");
  f.aggregation = agg == "sum" ? Aggregation::Sum : Aggregation::Mean;
  if (auto err = f.validate(); !err.empty()) throw std::runtime_error("model field config: " + err);
  return f;
}

nlohmann::json to_json(const MoleculeModelConfig& m) {
  return {{"dequantization", to_string(m.dequantization)},
          {"actnorm", m.actnorm},
          {"dequantizer_hidden", m.dequantizer_hidden},
          {"dequantizer_layers", m.dequantizer_layers},
          {"node_counts", m.node_counts}};
}

MoleculeModelConfig molecule_config_from_json(const nlohmann::json& j) {
  MoleculeModelConfig m;
  if (!j.is_object()) throw std::runtime_error("model molecule config: expected an object, got " + std::string(j.type_name()));
  // Each key's type is checked first, so the message names it and what was
  // expected (nlohmann's own names neither).
  auto check = [&](const char* key, bool ok, const char* expected) {
    if (j.contains(key) && !ok)
      throw std::runtime_error(std::string("model molecule config: '") + key + "' must be " + expected + ", got " +
                               j.at(key).dump());
  };
  auto at = [&](const char* key) -> const nlohmann::json& { return j.contains(key) ? j.at(key) : j; };
  check("dequantization", at("dequantization").is_string(), "a string");
  check("actnorm", at("actnorm").is_boolean(), "true or false");
  check("dequantizer_hidden", at("dequantizer_hidden").is_number_integer(), "an integer");
  check("dequantizer_layers", at("dequantizer_layers").is_number_integer(), "an integer");
  const nlohmann::json& counts = at("node_counts");
  check("node_counts", counts.is_array() && std::all_of(counts.begin(), counts.end(), [](const auto& v) { return v.is_number(); }),
        "an array of numbers");
  if (!j.contains("node_counts")) throw std::runtime_error("model molecule config: 'node_counts' is missing");
  try {
    m.dequantization = parse_dequantization(j.value("dequantization", to_string(m.dequantization)));
    m.actnorm = j.value("actnorm", m.actnorm);
    m.dequantizer_hidden = j.value("dequantizer_hidden", m.dequantizer_hidden);
    m.dequantizer_layers = j.value("dequantizer_layers", m.dequantizer_layers);
    m.node_counts = j.at("node_counts").get<std::vector<double>>();
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(std::string("model molecule config: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("model molecule config: ") + e.what());
  }
  if (auto err = m.validate(); !err.empty()) throw std::runtime_error("model molecule config: " + err);
  return m;
}

ConformerSupport conformer_support(const Checkpoint& c) { return c.conformer_support.value_or(ConformerSupport{}); }

ParameterLayout checkpoint_layout(const Checkpoint& c) {
  return c.molecule ? molecule_layout(c.field, *c.molecule) : field_layout(c.field);
}

namespace {
// save_checkpoint replaces only what is a checkpoint: a path holding anything
// else (a file, a directory with other files) is the user's and is refused.
void check_replaceable(const fs::path& target) {
  std::error_code ec;
  if (!fs::exists(target, ec)) {
    const fs::path parent = target.parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec))
      throw std::runtime_error("checkpoint '" + target.string() + "': directory '" + parent.string() +
                               "' does not exist");
    return;
  }
  if (!fs::is_directory(target, ec))
    throw std::runtime_error("checkpoint '" + target.string() + "': a file of that name exists; not replacing it");
  for (const auto& e : fs::directory_iterator(target, ec)) {
    const std::string name = e.path().filename().string();
    if (name != "model.json" && name != "weights.safetensors" && name != "state.safetensors")
      throw std::runtime_error("checkpoint '" + target.string() + "': the directory exists and holds '" + name +
                               "', which is not part of a checkpoint; not replacing it");
  }
}

// Puts the complete checkpoint `tmp` in place of `target`. Where the file
// system can swap two directories atomically (Linux renameat2), target is a
// complete checkpoint at every instant; elsewhere two renames leave, if the
// process dies between them, no target but "<target>.old-<pid>" and the
// complete tmp, which load_checkpoint and recover_checkpoint find.
void replace_checkpoint(const fs::path& tmp, const fs::path& target) {
  const std::string parent = parent_directory(target.string());
  std::error_code ec;
  fs::path previous;  // where the replaced checkpoint is, to be removed once the new one is durable
  if (!fs::exists(target)) {
    fs::rename(tmp, target);
  } else if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
    previous = tmp;
  } else {
    previous = target.string() + ".old-" + std::to_string(::getpid());
    fs::remove_all(previous, ec);
    fs::rename(target, previous);
    fs::rename(tmp, target);
  }
  sync_directory(parent);
  if (!previous.empty()) fs::remove_all(previous, ec);
}
}  // namespace

void save_checkpoint(const std::string& dir, const Checkpoint& c) {
  const fs::path target(dir);
  check_replaceable(target);
  const fs::path tmp = target.string() + ".tmp-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp);
  nlohmann::json model{{"format", kCheckpointFormat},
                       {"version", kCheckpointVersion},
                       {"system", c.system},
                       {"field", to_json(c.field)},
                       {"molecule", c.molecule ? to_json(*c.molecule) : nlohmann::json(nullptr)},
                       {"training", c.training},
                       {"data", c.data},
                       {"extra", c.extra}};
  // Only when recorded: every other checkpoint's model.json stays as it was.
  if (c.conformer_support) model["conformer_support"] = to_json(*c.conformer_support);
  std::vector<std::pair<std::string, SafeTensor>> tensors;
  for (const auto& info : c.params.layout.tensors()) {
    SafeTensor t;
    t.dtype = "F64";
    t.shape.assign(info.shape.begin(), info.shape.end());
    t.data.assign(c.params.values.begin() + info.offset, c.params.values.begin() + info.offset + info.size);
    tensors.emplace_back(info.name, std::move(t));
  }
  write_safetensors((tmp / "weights.safetensors").string(), tensors, {{"format", kCheckpointFormat}});
  if (!c.state.empty()) {
    std::vector<std::pair<std::string, SafeTensor>> st;
    for (const auto& [name, values] : c.state)
      st.emplace_back(name, SafeTensor{"F64", {std::int64_t(values.size())}, values});
    write_safetensors((tmp / "state.safetensors").string(), st, {{"format", kCheckpointFormat}});
  }
  // model.json, written last, carries the SHA-256 of every other file: a
  // corrupted or altered checkpoint is an error on load, never a changed model.
  for (const char* f : {"weights.safetensors", "state.safetensors"})
    if (fs::exists(tmp / f)) model["files"][f] = {{"sha256", sha256_file((tmp / f).string())}};
  for (const char* f : {"weights.safetensors", "state.safetensors"})
    if (fs::exists(tmp / f)) sync_file((tmp / f).string());
  // Also syncs the directory: the new checkpoint is on disk before it replaces the old.
  write_file_atomically((tmp / "model.json").string(), model.dump(2) + "\n", "checkpoint");
  replace_checkpoint(tmp, target);
}

namespace {
// The system a checkpoint names must agree with its field (and particle count).
void check_system(const Checkpoint& c) {
  if (c.conformer_support && !is_conformer_system(c.system))
    throw std::runtime_error("'conformer_support' in a model of system '" + c.system +
                             "' (only conformer models have it)");
  if (c.system.empty()) return;
  const SystemInfo* info = find_system(c.system);
  if (!info) throw std::runtime_error("unknown system '" + c.system + "' (" + system_names("or") + ")");
  if (info->kind == SystemKind::Molecules) {
    if (!c.molecule) throw std::runtime_error("system '" + c.system + "' without a 'molecule' section");
    return;
  }
  if (info->kind == SystemKind::Conformers) {
    if (c.molecule || c.field.dim != 3 || c.field.features != 0 || !c.field.conditional())
      throw std::runtime_error("system '" + c.system +
                               "' is a 3-D positions-only field conditioned on the molecular graph, which this "
                               "checkpoint's field is not");
    return;
  }
  const ParticleSystem sys = particle_system(c.system);
  if (c.field.dim != sys.dim || c.field.features != 0)
    throw std::runtime_error("system '" + c.system + "' has " + std::to_string(sys.dim) +
                             "-D positions and no features, but the field has dim " + std::to_string(c.field.dim) +
                             " and " + std::to_string(c.field.features) + " features");
  if (c.data.contains("n_particles") && c.data["n_particles"] != sys.n)
    throw std::runtime_error("system '" + c.system + "' has " + std::to_string(sys.n) + " particles, data.n_particles says " +
                             c.data["n_particles"].dump());
}
}  // namespace

namespace {
// A weight tensor into the model's slot: floating point, and exactly the shape
// the model has (an element count that happens to agree is not enough).
void copy_weight(Parameters<double>& params, const TensorInfo& info, const SafeTensor& t, const std::string& where,
                 const std::string& expects) {
  const auto shape_text = [](const auto& shape) {
    std::string s = "[";
    for (std::size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
    return s + "]";
  };
  if (t.dtype != "F32" && t.dtype != "F64" && t.dtype != "F16")
    throw std::runtime_error(where + ": tensor '" + info.name + "' is " + t.dtype + "; weights are floating point");
  const bool same = t.shape.size() == info.shape.size() &&
                    std::equal(t.shape.begin(), t.shape.end(), info.shape.begin(),
                               [](std::int64_t a, int b) { return a == std::int64_t(b); });
  if (!same)
    throw std::runtime_error(where + ": tensor '" + info.name + "' has shape " + shape_text(t.shape) + ", " + expects +
                             " implies " + shape_text(info.shape));
  std::copy(t.data.begin(), t.data.end(), params.values.begin() + info.offset);
}
}  // namespace

namespace {
// The files model.json lists must have the SHA-256 it records (checkpoints
// written before enf recorded them list none and are read as they are).
void verify_checkpoint_files(const fs::path& dir, const nlohmann::json& model, const std::string& mj) {
  if (!model.contains("files")) return;
  if (!model["files"].is_object()) throw std::runtime_error("checkpoint file '" + mj + "': 'files' is not an object");
  for (const auto& [name, entry] : model["files"].items()) {
    const fs::path f = dir / name;
    if (name.find('/') != std::string::npos || !entry.is_object() || !entry.contains("sha256") ||
        !entry["sha256"].is_string())
      throw std::runtime_error("checkpoint file '" + mj + "': bad 'files' entry '" + name + "'");
    if (!fs::exists(f))
      throw std::runtime_error("checkpoint file '" + f.string() + "': missing (model.json lists it)");
    if (sha256_file(f.string()) != entry["sha256"].get<std::string>())
      throw std::runtime_error("checkpoint file '" + f.string() +
                               "': its SHA-256 does not match model.json (the file is corrupt or was changed)");
  }
}
}  // namespace

namespace {
// Throws unless model.json's `key` is absent or of `type` (`expected` in words).
void expect_type(const nlohmann::json& model, const char* key, nlohmann::json::value_t type, const char* expected,
                 const std::string& mj) {
  if (!model.contains(key)) return;
  const nlohmann::json& v = model.at(key);
  // An unsigned integer is an integer too.
  const bool ok = type == nlohmann::json::value_t::number_integer ? v.is_number_integer() : v.type() == type;
  if (!ok)
    throw std::runtime_error("checkpoint file '" + mj + "': '" + key + "' must be " + expected + ", got " +
                             v.type_name());
}
}  // namespace

Checkpoint load_checkpoint(const std::string& dir) {
  // A save that died between its renames left the checkpoint beside dir.
  if (std::error_code ec; !fs::exists(dir, ec))
    if (const std::string found = checkpoint_location(dir); !found.empty()) return load_checkpoint_at(found);
  return load_checkpoint_at(dir);
}

Checkpoint load_model(const std::string& name_or_path) {
  const fs::path p(resolve_model(name_or_path));
  std::error_code ec;
  if (!fs::exists(p / "model.json", ec) && fs::exists(p / "args.json", ec) && fs::exists(p / "flow.safetensors", ec))
    return import_reference(p.string());
  return load_checkpoint(p.string());
}

Checkpoint load_checkpoint_at(const std::string& dir) {
  const fs::path p(dir);
  if (!fs::exists(p)) throw std::runtime_error("checkpoint '" + dir + "': no such directory");
  if (!fs::is_directory(p))
    throw std::runtime_error("checkpoint '" + dir + "': not a directory (a checkpoint is a directory with model.json)");
  const std::string mj = (p / "model.json").string();
  nlohmann::json model;
  try {
    model = nlohmann::json::parse(read_file_bytes(mj, "checkpoint"));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("checkpoint file '" + mj + "': not valid JSON (" + e.what() + ")");
  }
  // Types before values: nlohmann's value() would throw a message naming
  // neither the file nor the key.
  if (!model.is_object()) throw std::runtime_error("checkpoint file '" + mj + "': expected a JSON object");
  expect_type(model, "format", nlohmann::json::value_t::string, "a string", mj);
  expect_type(model, "version", nlohmann::json::value_t::number_integer, "an integer", mj);
  expect_type(model, "system", nlohmann::json::value_t::string, "a string", mj);
  for (const char* key : {"training", "data", "extra"}) expect_type(model, key, nlohmann::json::value_t::object, "an object", mj);
  if (model.value("format", "") != kCheckpointFormat)
    throw std::runtime_error("checkpoint file '" + mj + "': format is '" + model.value("format", "(none)") +
                             "', expected '" + kCheckpointFormat + "'");
  const int version = model.value("version", -1);
  if (version != kCheckpointVersion)
    throw std::runtime_error("checkpoint file '" + mj + "': version " + std::to_string(version) +
                             " is not supported by this enf (it reads version " +
                             std::to_string(kCheckpointVersion) + ")");
  verify_checkpoint_files(p, model, mj);
  Checkpoint c;
  try {
    if (!model.contains("field") || !model["field"].is_object())
      throw std::runtime_error("no 'field' object (the model's configuration)");
    c.system = model.value("system", "");
    c.field = field_config_from_json(model["field"]);
    c.training = model.value("training", nlohmann::json::object());
    c.data = model.value("data", nlohmann::json::object());
    c.extra = model.value("extra", nlohmann::json::object());
    if (model.contains("molecule") && !model["molecule"].is_null())
      c.molecule = molecule_config_from_json(model["molecule"]);
    if (model.contains("conformer_support")) c.conformer_support = conformer_support_from_json(model["conformer_support"]);
    check_system(c);
  } catch (const std::exception& e) {  // wrong types, bad values: name the file
    throw std::runtime_error("checkpoint file '" + mj + "': " + e.what());
  }
  c.params = Parameters<double>(checkpoint_layout(c));
  const std::string wpath = (p / "weights.safetensors").string();
  const SafeTensorFile w = read_safetensors(wpath);
  for (const auto& info : c.params.layout.tensors()) {
    auto it = w.tensors.find(info.name);
    if (it == w.tensors.end()) throw std::runtime_error("checkpoint file '" + wpath + "': no tensor '" + info.name + "'");
    copy_weight(c.params, info, it->second, "checkpoint file '" + wpath + "'", "the model");
  }
  if (fs::exists(p / "state.safetensors")) {
    const SafeTensorFile st = read_safetensors((p / "state.safetensors").string());
    for (const auto& name : st.order) c.state.emplace_back(name, st.tensors.at(name).data);
  }
  return c;
}

namespace {

// Copies every tensor of params whose enf name `rename` maps to a name in the
// reference file (an empty mapped name: not from this file).
template <class Rename>
void copy_reference_tensors(Parameters<double>& params, const std::string& path, Rename rename) {
  const SafeTensorFile w = read_safetensors(path);
  for (const auto& info : params.layout.tensors()) {
    const std::string name = rename(info.name);
    if (name.empty()) continue;
    auto it = w.tensors.find(name);
    if (it == w.tensors.end())
      throw std::runtime_error("reference weights '" + path + "': no tensor '" + name +
                               "' (does args.json match the weights?)");
    copy_weight(params, info, it->second, "reference weights '" + path + "'", "args.json");
  }
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// A reference argument of an exact JSON type. main_*.py pickle every argparse
// value, so the ones that fix the model's shape are required; the others
// default to the reference's argparse defaults (named at each call).
template <class T>
T reference_arg(const nlohmann::json& args, const char* key, const std::string& apath, std::optional<T> fallback) {
  if (!args.contains(key)) {
    if (fallback) return *fallback;
    throw std::runtime_error("reference arguments file '" + apath + "': '" + key + "' is missing");
  }
  const nlohmann::json& v = args.at(key);
  bool ok = false;
  if constexpr (std::is_same_v<T, int>) ok = v.is_number_integer();
  else if constexpr (std::is_same_v<T, bool>) ok = v.is_boolean();
  else if constexpr (std::is_same_v<T, double>) ok = v.is_number();
  else ok = v.is_string();
  if (!ok) throw std::runtime_error("reference arguments file '" + apath + "': '" + key + "' has the wrong type (" + v.dump() + ")");
  return v.get<T>();
}
// main_qm9.py's flow: [ActNorm (transformations.0), FFJORD (transformations.1)]
// or the FFJORD alone, and the dequantizer's network in its own file.
Checkpoint import_qm9(const fs::path& p, const nlohmann::json& args) {
  Checkpoint c;
  c.system = "qm9";
  const std::string apath = (p / "args.json").string();
  c.field = qm9_field_config(reference_arg<int>(args, "nf", apath, std::nullopt),
                             reference_arg<int>(args, "n_layers", apath, std::nullopt));
  c.field.attention = reference_arg<bool>(args, "attention", apath, true);
  c.field.tanh = reference_arg<bool>(args, "tanh", apath, true);
  c.field.condition_time = reference_arg<bool>(args, "condition_time", apath, true);
  if (auto err = c.field.validate(); !err.empty()) throw std::runtime_error("reference arguments: " + err);
  MoleculeModelConfig m;
  m.dequantization =
      parse_dequantization(reference_arg<std::string>(args, "dequantization", apath, "argmax_variational"));
  m.actnorm = reference_arg<bool>(args, "actnorm", apath, true);
  m.node_counts = qm9_reference_node_counts();
  c.molecule = m;
  c.training = {{"trace", reference_arg<std::string>(args, "trace", apath, "hutch") == "exact" ? "exact" : "gaussian"},
                {"ode_regularization", reference_arg<double>(args, "ode_regularization", apath, 0.0)},
                {"lr", reference_arg<double>(args, "lr", apath, 5e-4)},
                {"batch_size", reference_arg<int>(args, "batch_size", apath, 128)},
                {"clip_grad", reference_arg<bool>(args, "clip_grad", apath, true)}};
  c.data = {{"node_counts_source", "qm9/analyze.py of the reference (100 000 molecules)"}};
  c.params = Parameters<double>(checkpoint_layout(c));
  const std::string flow = (p / "flow.safetensors").string();
  const std::string cnf_prefix = m.actnorm ? "transformations.1.odefunc.dynamics." : "transformations.0.odefunc.dynamics.";
  copy_reference_tensors(c.params, flow, [&](const std::string& name) -> std::string {
    if (starts_with(name, "egnn.")) return cnf_prefix + name;
    if (starts_with(name, "actnorm.")) return "transformations.0." + name.substr(8);
    return {};
  });
  if (m.actnorm) {
    const SafeTensorFile w = read_safetensors(flow);
    auto it = w.tensors.find("transformations.0.initialized");
    if (it == w.tensors.end() || it->second.data.size() != 1 || it->second.data[0] != 1)
      throw std::runtime_error("reference weights '" + flow +
                               "': transformations.0.initialized is not 1 (the reference would re-initialise "
                               "its ActNorm from the first batch it sees; enf will not guess)");
  }
  if (m.has_network()) {
    const std::string deq = (p / "dequantizer.safetensors").string();
    copy_reference_tensors(c.params, deq, [&](const std::string& name) -> std::string {
      const std::string prefix = "dequantizer.egnn.";
      return starts_with(name, prefix) ? "net_fn.egnn." + name.substr(prefix.size()) : std::string();
    });
  }
  c.extra = {{"imported_from", p.string()}, {"reference_args", args}};
  return c;
}

}  // namespace

Checkpoint import_reference(const std::string& dir) {
  const fs::path p(dir);
  const std::string apath = (p / "args.json").string(), wpath = (p / "flow.safetensors").string();
  nlohmann::json args;
  try {
    args = nlohmann::json::parse(read_file_bytes(apath, "reference arguments"));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("reference arguments file '" + apath + "': not valid JSON (" + e.what() + ")");
  }
  if (!args.is_object())
    throw std::runtime_error("reference arguments file '" + apath + "': expected a JSON object of arguments");
  const std::string model = reference_arg<std::string>(args, "model", apath, "");
  if (model != "egnn_dynamics")
    throw std::runtime_error("reference arguments file '" + apath + "': model '" + model +
                             "' is not supported (enf imports egnn_dynamics flows of main_dw4_lj13.py and main_qm9.py)");
  if (is_molecule_system(reference_arg<std::string>(args, "dataset", apath, ""))) return import_qm9(p, args);
  Checkpoint c;
  // main_dw4_lj13.py's --data names the system: one of its benchmarks (those
  // with a target energy); anything else is refused, never guessed.
  const std::string data = reference_arg<std::string>(args, "data", apath, std::nullopt);
  const SystemInfo* found = find_system(data);
  if (!found || !has_energy(*found))
    throw std::runtime_error("reference arguments file '" + apath + "': data '" + data +
                             "' is not a system enf imports (" + system_names("or", has_energy) +
                             "; QM9 models have \"dataset\": \"qm9\")");
  const SystemInfo& sys = *found;
  c.system = sys.name;
  c.field.dim = reference_arg<int>(args, "n_dims", apath, sys.dim);
  c.field.features = 0;
  c.field.hidden = reference_arg<int>(args, "nf", apath, std::nullopt);
  c.field.layers = reference_arg<int>(args, "n_layers", apath, std::nullopt);
  c.field.attention = reference_arg<bool>(args, "attention", apath, true);
  c.field.tanh = reference_arg<bool>(args, "tanh", apath, true);
  c.field.condition_time = reference_arg<bool>(args, "condition_time", apath, true);
  c.field.aggregation = reference_arg<std::string>(args, "x_aggregation", apath, "sum") == "mean" ? Aggregation::Mean : Aggregation::Sum;
  if (auto err = c.field.validate(); !err.empty()) throw std::runtime_error("reference arguments: " + err);
  c.training = {{"trace", reference_arg<std::string>(args, "trace", apath, "hutch") == "exact" ? "exact"
                          : reference_arg<std::string>(args, "hutch_noise", apath, "gaussian") == "bernoulli" ? "rademacher" : "gaussian"},
                {"ode_regularization", reference_arg<double>(args, "ode_regularization", apath, 0.0)},
                {"lr", reference_arg<double>(args, "lr", apath, 5e-4)},
                {"weight_decay", reference_arg<double>(args, "weight_decay", apath, 1e-12)},
                {"batch_size", reference_arg<int>(args, "batch_size", apath, 100)}};
  c.data = {{"n_particles", reference_arg<int>(args, "n_particles", apath, sys.n)}};
  c.extra = {{"imported_from", dir}, {"reference_args", args}};
  try {
    check_system(c);
  } catch (const std::exception& e) {
    throw std::runtime_error("reference args.json in '" + dir + "': " + e.what());
  }
  c.params = Parameters<double>(field_layout(c.field));
  copy_reference_tensors(c.params, wpath, [](const std::string& name) { return "odefunc.dynamics." + name; });
  return c;
}

}  // namespace enf
