#include "engine/checkpoint.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "datasets/file_io.hpp"
#include "datasets/particles.hpp"
#include "datasets/systems.hpp"
#include "engine/safetensors.hpp"

namespace enf {

namespace fs = std::filesystem;

nlohmann::json to_json(const FieldConfig& f) {
  return {{"dim", f.dim},
          {"features", f.features},
          {"hidden", f.hidden},
          {"layers", f.layers},
          {"attention", f.attention},
          {"tanh", f.tanh},
          {"coords_range", f.coords_range},
          {"aggregation", f.aggregation == Aggregation::Sum ? "sum" : "mean"},
          {"condition_time", f.condition_time}};
}

FieldConfig field_config_from_json(const nlohmann::json& j) {
  FieldConfig f;
  auto get = [&](const char* key, auto& out) {
    if (!j.contains(key)) return;
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
  write_file_atomically((tmp / "model.json").string(), model.dump(2) + "\n", "checkpoint");
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
  // Replace the old checkpoint only once the new one is complete.
  if (fs::exists(target)) {
    const fs::path old = target.string() + ".old-" + std::to_string(::getpid());
    fs::rename(target, old);
    fs::rename(tmp, target);
    fs::remove_all(old, ec);
  } else {
    fs::rename(tmp, target);
  }
}

namespace {
// The system a checkpoint names must agree with its field (and particle count).
void check_system(const Checkpoint& c) {
  if (c.system.empty()) return;
  const SystemInfo* info = find_system(c.system);
  if (!info) throw std::runtime_error("unknown system '" + c.system + "' (" + system_names("or") + ")");
  if (info->kind == SystemKind::Molecules) {
    if (!c.molecule) throw std::runtime_error("system '" + c.system + "' without a 'molecule' section");
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

Checkpoint load_checkpoint(const std::string& dir) {
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
  if (model.value("format", "") != kCheckpointFormat)
    throw std::runtime_error("checkpoint file '" + mj + "': format is '" + model.value("format", "(none)") +
                             "', expected '" + kCheckpointFormat + "'");
  const int version = model.value("version", -1);
  if (version != kCheckpointVersion)
    throw std::runtime_error("checkpoint file '" + mj + "': version " + std::to_string(version) +
                             " is not supported by this enf (it reads version " +
                             std::to_string(kCheckpointVersion) + ")");
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
    if (it->second.data.size() != info.size)
      throw std::runtime_error("checkpoint file '" + wpath + "': tensor '" + info.name + "' has " +
                               std::to_string(it->second.data.size()) + " values, the model expects " +
                               std::to_string(info.size));
    std::copy(it->second.data.begin(), it->second.data.end(), c.params.values.begin() + info.offset);
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
    if (it->second.data.size() != info.size)
      throw std::runtime_error("reference weights '" + path + "': tensor '" + name + "' has " +
                               std::to_string(it->second.data.size()) + " values, args.json implies " +
                               std::to_string(info.size));
    std::copy(it->second.data.begin(), it->second.data.end(), params.values.begin() + info.offset);
  }
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// main_qm9.py's flow: [ActNorm (transformations.0), FFJORD (transformations.1)]
// or the FFJORD alone, and the dequantizer's network in its own file.
Checkpoint import_qm9(const fs::path& p, const nlohmann::json& args) {
  Checkpoint c;
  c.system = "qm9";
  c.field = qm9_field_config(args.value("nf", 64), args.value("n_layers", 6));
  c.field.attention = args.value("attention", true);
  c.field.tanh = args.value("tanh", true);
  c.field.condition_time = args.value("condition_time", true);
  if (auto err = c.field.validate(); !err.empty()) throw std::runtime_error("reference arguments: " + err);
  MoleculeModelConfig m;
  m.dequantization = parse_dequantization(args.value("dequantization", "argmax_variational"));
  m.actnorm = args.value("actnorm", true);
  m.node_counts = qm9_reference_node_counts();
  c.molecule = m;
  c.training = {{"trace", args.value("trace", "hutch") == "exact" ? "exact" : "gaussian"},
                {"ode_regularization", args.value("ode_regularization", 0.0)},
                {"lr", args.value("lr", 5e-4)},
                {"batch_size", args.value("batch_size", 128)},
                {"clip_grad", args.value("clip_grad", true)}};
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
  const std::string model = args.value("model", "");
  if (model != "egnn_dynamics")
    throw std::runtime_error("reference arguments file '" + apath + "': model '" + model +
                             "' is not supported (enf imports egnn_dynamics flows of main_dw4_lj13.py and main_qm9.py)");
  if (is_molecule_system(args.value("dataset", ""))) return import_qm9(p, args);
  Checkpoint c;
  // main_dw4_lj13.py's --data names the system when it is one of its
  // benchmarks (those with a target energy); else the system is unknown.
  const SystemInfo* sys = find_system(args.value("data", ""));
  c.system = sys && has_energy(*sys) ? sys->name : "";
  c.field.dim = args.value("n_dims", sys && has_energy(*sys) ? sys->dim : 3);
  c.field.features = 0;
  c.field.hidden = args.value("nf", 32);
  c.field.layers = args.value("n_layers", 3);
  c.field.attention = args.value("attention", true);
  c.field.tanh = args.value("tanh", true);
  c.field.condition_time = args.value("condition_time", true);
  c.field.aggregation = args.value("x_aggregation", "sum") == "mean" ? Aggregation::Mean : Aggregation::Sum;
  if (auto err = c.field.validate(); !err.empty()) throw std::runtime_error("reference arguments: " + err);
  c.training = {{"trace", args.value("trace", "hutch") == "exact" ? "exact"
                          : args.value("hutch_noise", "gaussian") == "bernoulli" ? "rademacher" : "gaussian"},
                {"ode_regularization", args.value("ode_regularization", 0.0)},
                {"lr", args.value("lr", 5e-4)},
                {"weight_decay", args.value("weight_decay", 1e-12)},
                {"batch_size", args.value("batch_size", 100)}};
  c.data = {{"n_particles", args.value("n_particles", c.system.empty() ? 0 : particle_system(c.system).n)}};
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
