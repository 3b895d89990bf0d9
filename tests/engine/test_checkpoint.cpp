// Checkpoints (round trip, version and format checks, atomic replacement) and
// the import of models trained with the reference implementation.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <filesystem>
#include <fstream>

#include "engine/checkpoint.hpp"
#include "engine/conformer_flow.hpp"
#include "engine/flow.hpp"
#include "engine/safetensors.hpp"
#include "support/fixtures.hpp"
#include "support/random_model.hpp"

using namespace enf;
using namespace enf::test;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("enf_test_checkpoint_" + std::to_string(::getpid())) / name;
  fs::remove_all(p);
  fs::create_directories(p.parent_path());
  return p;
}

}  // namespace

TEST_CASE("a checkpoint round-trips bit for bit", "[checkpoint]") {
  Checkpoint c;
  c.system = "lj13";
  c.field = particle_field(3);
  c.field.hidden = 8;
  c.field.aggregation = Aggregation::Mean;
  c.params = random_params(c.field, 80);
  c.training = {{"lr", 1e-3}, {"batch_size", 64}};
  c.data = {{"rows", 9000}};
  const fs::path dir = scratch("roundtrip");
  save_checkpoint(dir.string(), c);
  const Checkpoint d = load_checkpoint(dir.string());
  CHECK(d.system == "lj13");
  CHECK(to_json(d.field) == to_json(c.field));
  CHECK(d.training == c.training);
  CHECK(d.data == c.data);
  CHECK(d.params.values == c.params.values);
  // Saving again over it replaces it whole.
  c.params.values[0] += 1;
  save_checkpoint(dir.string(), c);
  CHECK(load_checkpoint(dir.string()).params.values[0] == c.params.values[0]);
  for (const auto& e : fs::directory_iterator(dir.parent_path()))
    CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
}

TEST_CASE("saving never replaces what is not a checkpoint", "[checkpoint]") {
  Checkpoint c;
  c.field = particle_field(2);
  c.params = random_params(c.field, 82);
  const fs::path file = scratch("a_file");
  std::ofstream(file) << "user data\n";
  CHECK_THROWS_WITH(save_checkpoint(file.string(), c), Catch::Contains("a file of that name exists"));
  CHECK(fs::is_regular_file(file));
  const fs::path dir = scratch("a_directory");
  fs::create_directories(dir);
  std::ofstream(dir / "notes.txt") << "user data\n";
  CHECK_THROWS_WITH(save_checkpoint(dir.string(), c), Catch::Contains("notes.txt"));
  CHECK(fs::is_regular_file(dir / "notes.txt"));
  CHECK_FALSE(fs::exists(dir / "model.json"));
  CHECK_THROWS_WITH(save_checkpoint((dir / "no" / "ckpt").string(), c), Catch::Contains("does not exist"));
  // An empty directory is taken.
  const fs::path empty = scratch("empty");
  fs::create_directories(empty);
  save_checkpoint(empty.string(), c);
  CHECK(load_checkpoint(empty.string()).params.values == c.params.values);
}

TEST_CASE("unknown checkpoint versions and formats are rejected with a clear message", "[checkpoint]") {
  Checkpoint c;
  c.field = particle_field(2);
  c.params = random_params(c.field, 81);
  const fs::path dir = scratch("versions");
  save_checkpoint(dir.string(), c);
  auto edit = [&](const std::string& key, const nlohmann::json& value) {
    const fs::path mj = dir / "model.json";
    std::ifstream in(mj);
    nlohmann::json j = nlohmann::json::parse(in);
    j[key] = value;
    std::ofstream(mj) << j.dump();
  };
  edit("version", 99);
  CHECK_THROWS_WITH(load_checkpoint(dir.string()), Catch::Contains("version 99") && Catch::Contains("model.json"));
  edit("version", kCheckpointVersion);
  edit("format", "something-else");
  CHECK_THROWS_WITH(load_checkpoint(dir.string()), Catch::Contains("something-else"));
  CHECK_THROWS_WITH(load_checkpoint((dir / "missing").string()), Catch::Contains("no such directory"));
  CHECK_THROWS_WITH(load_checkpoint((dir / "model.json").string()), Catch::Contains("not a directory"));
  edit("format", kCheckpointFormat);
  REQUIRE_NOTHROW(load_checkpoint(dir.string()));
  // A configuration that contradicts itself is an error naming model.json.
  const auto field = to_json(c.field);
  edit("system", "xyz");
  CHECK_THROWS_WITH(load_checkpoint(dir.string()), Catch::Contains("model.json") && Catch::Contains("unknown system"));
  edit("system", "lj13");  // a 2-D field
  CHECK_THROWS_WITH(load_checkpoint(dir.string()), Catch::Contains("model.json") && Catch::Contains("dim 2"));
  edit("system", "dw4");
  edit("data", {{"n_particles", 13}});
  CHECK_THROWS_WITH(load_checkpoint(dir.string()), Catch::Contains("n_particles"));
  edit("data", {{"n_particles", 4}});
  REQUIRE_NOTHROW(load_checkpoint(dir.string()));
  auto bad_field = field;
  bad_field["hidden"] = "abc";
  edit("field", bad_field);
  CHECK_THROWS_WITH(load_checkpoint(dir.string()), Catch::Contains("model.json") && Catch::Contains("'hidden'"));
  edit("field", nullptr);
  CHECK_THROWS_WITH(load_checkpoint(dir.string()), Catch::Contains("model.json") && Catch::Contains("'field'"));
}

// Issue 17: a weight tensor with the right element count but another shape,
// or an integer dtype, loaded and changed the model silently.
TEST_CASE("weights must have the model's exact shape and a floating-point type", "[checkpoint]") {
  Checkpoint c;
  c.system = "dw4";
  c.field = particle_field(2);
  c.params = random_params(c.field, 82);
  const fs::path dir = scratch("weights");
  save_checkpoint(dir.string(), c);
  const std::string wpath = (dir / "weights.safetensors").string();
  const SafeTensorFile w = read_safetensors(wpath);
  const std::string name = "egnn.gcl_0.edge_mlp.2.weight";  // [H, H]
  // Without the SHA-256 record (as checkpoints from before it), so that the
  // rewritten files reach the shape and dtype checks.
  const auto strip_checksums = [&] {
    std::ifstream in(dir / "model.json");
    nlohmann::json j = nlohmann::json::parse(in);
    j.erase("files");
    std::ofstream(dir / "model.json") << j.dump();
  };
  strip_checksums();
  REQUIRE(w.tensors.at(name).shape.size() == 2);
  auto rewrite = [&](auto change) {
    std::vector<std::pair<std::string, SafeTensor>> tensors;
    for (const auto& n : w.order) {
      SafeTensor t = w.tensors.at(n);
      if (n == name) change(t);
      tensors.emplace_back(n, t);
    }
    write_safetensors(wpath, tensors, w.metadata);
  };
  rewrite([](SafeTensor& t) { t.shape = {t.shape[1] * t.shape[0]}; });  // same count, flattened
  CHECK_THROWS_WITH(load_checkpoint(dir.string()),
                    Catch::Contains("weights.safetensors") && Catch::Contains(name) && Catch::Contains("shape"));
  rewrite([](SafeTensor& t) {
    t.dtype = "I64";
    for (double& v : t.data) v = std::round(v);
  });
  CHECK_THROWS_WITH(load_checkpoint(dir.string()), Catch::Contains(name) && Catch::Contains("I64"));
  rewrite([](SafeTensor&) {});
  CHECK_NOTHROW(load_checkpoint(dir.string()));
}

// Issue 17: bit-flipped weights loaded and scored differently with exit 0.
TEST_CASE("a corrupted checkpoint file is an error naming it", "[checkpoint]") {
  Checkpoint c;
  c.system = "dw4";
  c.field = particle_field(2);
  c.params = random_params(c.field, 83);
  c.state = {{"adam.step", {3.0}}};
  const fs::path dir = scratch("integrity");
  save_checkpoint(dir.string(), c);
  for (const char* file : {"weights.safetensors", "state.safetensors"}) {
    const fs::path f = dir / file;
    std::string bytes;
    {
      std::ifstream in(f, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    const std::string original = bytes;
    bytes[bytes.size() - 3] ^= 0x01;  // one bit of the last number
    std::ofstream(f, std::ios::binary) << bytes;
    CHECK_THROWS_WITH(load_checkpoint(dir.string()), Catch::Contains(file) && Catch::Contains("SHA-256"));
    std::ofstream(f, std::ios::binary) << original;
    CHECK_NOTHROW(load_checkpoint(dir.string()));
  }
  fs::remove(dir / "state.safetensors");
  CHECK_THROWS_WITH(load_checkpoint(dir.string()), Catch::Contains("state.safetensors") && Catch::Contains("missing"));
}

TEST_CASE("importing a reference model keeps its weights and configuration", "[checkpoint][import]") {
  const Checkpoint c = import_reference("tests/fixtures/models/oracle_dw4_mild");
  CHECK(c.system == "dw4");
  CHECK(c.field.dim == 2);
  CHECK(c.field.hidden == 32);
  CHECK(c.field.layers == 3);
  CHECK(c.field.attention);
  CHECK(c.field.tanh);
  CHECK(c.training["trace"] == "rademacher");
  const auto direct = params_from_safetensors(c.params.layout, "tests/fixtures/models/oracle_dw4_mild/flow.safetensors",
                                              "odefunc.dynamics.");
  CHECK(c.params.values == direct.values);
  // A model the importer does not know, and a QM9 model without its dequantizer.
  const fs::path other = scratch("unknown-model");
  fs::create_directories(other);
  std::ofstream(other / "args.json") << R"({"model": "gnn_dynamics", "dataset": "qm9"})";
  CHECK_THROWS_WITH(import_reference(other.string()), Catch::Contains("args.json") && Catch::Contains("gnn_dynamics"));
  const fs::path partial = scratch("qm9-without-dequantizer");
  fs::create_directories(partial);
  fs::copy_file("datasets/models/en_flows_qm9_pretrained/args.json", partial / "args.json");
  fs::copy_file("datasets/models/en_flows_qm9_pretrained/flow.safetensors", partial / "flow.safetensors");
  CHECK_THROWS_WITH(import_reference(partial.string()), Catch::Contains("dequantizer.safetensors"));
}

TEST_CASE("an imported reference model reproduces the reference log-likelihoods", "[checkpoint][import][fixtures]") {
  // A reference directory as the reference writes it (args.json and the
  // state_dict as flow.safetensors), holding the weights the fixtures' mild
  // blocks were solved with (tests/data/cnf_fixture_weights: the shipped
  // oracle_*_mild recipe built in float64), imported, saved, loaded and scored.
  for (const std::string system : {"dw4", "lj13"}) {
    SECTION(system) {
      const auto& fx = fixture("cnf_" + system + ".json");
      const int n = fx["n_particles"];
      const fs::path ref = scratch("reference_" + system);
      fs::create_directories(ref);
      fs::copy_file("tests/fixtures/models/oracle_" + system + "_mild/args.json", ref / "args.json");
      fs::copy_file(fs::path(kCnfFixtureWeights) / "mild.safetensors", ref / "flow.safetensors");
      const fs::path ckpt = scratch("imported_" + system);
      save_checkpoint(ckpt.string(), import_reference(ref.string()));
      const Checkpoint c = load_checkpoint(ckpt.string());
      CHECK(c.system == system);

      VectorField<double> field(c.field, c.params.layout);
      CnfOptions o;
      o.solver.rtol = o.solver.atol = 1e-10;
      o.adjoint_solver = o.solver;
      Cnf<VectorField<double>> cnf(field, o);
      BatchFlow<VectorField<double>> flow(cnf);
      const auto r = flow.log_likelihood(c.params.values.data(), flat(fx["x"]), 4, n, 0);
      const auto& per = fx["mild_weights"]["1e-10"]["per_sample"];
      for (int b = 0; b < 4; ++b) {
        INFO("sample " << b);
        // README §6: any correct dopri5 at 1e-10 is within 1e-8 of log p.
        CHECK(std::abs(r[b].log_px - flat(per[b]["log_px"])[0]) <= 1e-8);
      }
    }
  }
}

// Issue 17: sizes and systems from model.json / args.json are checked before
// anything is allocated, integers must be integers, and nothing is guessed.
TEST_CASE("model sizes and reference arguments are validated, never guessed", "[checkpoint][import]") {
  const fs::path ref = scratch("reference_args");
  fs::create_directories(ref);
  fs::copy_file("tests/fixtures/models/oracle_dw4_mild/flow.safetensors", ref / "flow.safetensors");
  std::ifstream in("tests/fixtures/models/oracle_dw4_mild/args.json");
  const nlohmann::json good = nlohmann::json::parse(in);
  const auto import_with = [&](const std::function<void(nlohmann::json&)>& change) {
    nlohmann::json a = good;
    change(a);
    std::ofstream(ref / "args.json") << a.dump();
    return import_reference(ref.string());
  };
  CHECK_NOTHROW(import_with([](nlohmann::json&) {}));
  CHECK_THROWS_WITH(import_with([](nlohmann::json& a) { a.erase("data"); }), Catch::Contains("'data' is missing"));
  CHECK_THROWS_WITH(import_with([](nlohmann::json& a) { a["data"] = "foo"; }), Catch::Contains("data 'foo'"));
  CHECK_THROWS_WITH(import_with([](nlohmann::json& a) { a.erase("nf"); }), Catch::Contains("'nf' is missing"));
  CHECK_THROWS_WITH(import_with([](nlohmann::json& a) { a["nf"] = 32.5; }), Catch::Contains("'nf' has the wrong type"));
  CHECK_THROWS_WITH(import_with([](nlohmann::json& a) { a["n_layers"] = 1000000000; }), Catch::Contains("1 to 64"));
  CHECK_THROWS_WITH(import_with([](nlohmann::json& a) { a["n_particles"] = 13; }), Catch::Contains("n_particles"));
  // Absent optional arguments take the reference's argparse defaults.
  CHECK(import_with([](nlohmann::json& a) { a.erase("n_particles"); }).data["n_particles"] == 4);

  Checkpoint c;
  c.system = "dw4";
  c.field = particle_field(2);
  c.params = random_params(c.field, 84);
  const fs::path dir = scratch("sizes");
  save_checkpoint(dir.string(), c);
  const auto load_with = [&](const char* key, const nlohmann::json& value) {
    std::ifstream mi(dir / "model.json");
    nlohmann::json j = nlohmann::json::parse(mi);
    const nlohmann::json saved = j;
    j["field"][key] = value;
    std::ofstream(dir / "model.json") << j.dump();
    std::string error;
    try {
      load_checkpoint(dir.string());
    } catch (const std::exception& e) {
      error = e.what();
    }
    std::ofstream(dir / "model.json") << saved.dump();
    return error;
  };
  CHECK_THAT(load_with("hidden", 32.5), Catch::Contains("'hidden' must be an integer"));
  CHECK_THAT(load_with("layers", 1000000000), Catch::Contains("1 to 64"));
  CHECK_THAT(load_with("hidden", 1 << 20), Catch::Contains("1 to 4096"));
  CHECK(load_with("hidden", c.field.hidden).empty());
}

namespace {
// A checkpoint of `seed`'s weights at training step `step`, saved at `where`.
Checkpoint saved_at(const fs::path& where, std::uint64_t seed, long step) {
  Checkpoint c;
  c.field = particle_field(2);
  c.params = random_params(c.field, seed);
  c.extra = {{"training_state", {{"global_step", step}}}};
  save_checkpoint(where.string(), c);
  return c;
}
std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}
}  // namespace

// The states a save killed at any instant leaves (issue 17), built directly.
TEST_CASE("a save killed between its two renames leaves a checkpoint that loads and is recovered", "[checkpoint]") {
  const fs::path dir = scratch("killed") / "last";
  fs::create_directories(dir.parent_path());
  const Checkpoint a = saved_at(dir.string() + ".old-4242", 90, 5);  // the previous last/, renamed away
  const Checkpoint b = saved_at(dir.string() + ".tmp-4242", 91, 7);  // the new one, complete
  CHECK(checkpoint_debris(dir.string()).size() == 2);
  CHECK(checkpoint_location(dir.string()) == dir.string() + ".tmp-4242");
  CHECK(load_checkpoint(dir.string()).params.values == b.params.values);  // read only: nothing moved
  CHECK(names_in(dir.parent_path()) == std::vector<std::string>{"last.old-4242", "last.tmp-4242"});
  CHECK(recover_checkpoint(dir.string()));
  CHECK(names_in(dir.parent_path()) == std::vector<std::string>{"last"});
  CHECK(load_checkpoint_at(dir.string()).params.values == b.params.values);
}

TEST_CASE("an incomplete new checkpoint is never taken; the previous one is", "[checkpoint]") {
  const fs::path dir = scratch("killed_early") / "last";
  fs::create_directories(dir.parent_path());
  const Checkpoint a = saved_at(dir.string() + ".old-17", 92, 5);
  saved_at(dir.string() + ".tmp-17", 93, 7);
  fs::remove(dir.string() + ".tmp-17/model.json");  // killed before model.json
  CHECK(load_checkpoint(dir.string()).params.values == a.params.values);
  // A newer one whose weights do not match model.json's SHA-256 is not complete either.
  saved_at(dir.string() + ".tmp-18", 94, 9);
  std::ofstream(dir.string() + ".tmp-18/weights.safetensors", std::ios::app) << "x";
  CHECK(checkpoint_location(dir.string()) == dir.string() + ".old-17");
  CHECK(recover_checkpoint(dir.string()));
  CHECK(names_in(dir.parent_path()) == std::vector<std::string>{"last"});
  CHECK(load_checkpoint(dir.string()).params.values == a.params.values);
  // Nothing complete: nothing to recover, the leftovers go.
  const fs::path none = scratch("nothing") / "last";
  fs::create_directories(none.string() + ".tmp-3");
  CHECK(checkpoint_location(none.string()).empty());
  CHECK_THROWS_WITH(load_checkpoint(none.string()), Catch::Contains("no such directory"));
  CHECK_FALSE(recover_checkpoint(none.string()));
  CHECK(names_in(none.parent_path()).empty());
}

TEST_CASE("an existing checkpoint wins over leftovers beside it, which are removed", "[checkpoint]") {
  const fs::path dir = scratch("leftovers") / "best";
  fs::create_directories(dir.parent_path());
  const Checkpoint a = saved_at(dir, 95, 5);
  saved_at(dir.string() + ".tmp-5", 96, 7);  // killed before it was swapped in
  saved_at(dir.string() + ".old-6", 97, 3);
  fs::create_directories(dir.string() + ".tmp-x");  // not a leftover of a save: not touched
  CHECK(checkpoint_location(dir.string()) == dir.string());
  CHECK(load_checkpoint(dir.string()).params.values == a.params.values);
  CHECK(recover_checkpoint(dir.string()));
  CHECK(names_in(dir.parent_path()) == std::vector<std::string>{"best", "best.tmp-x"});
  CHECK(load_checkpoint(dir.string()).params.values == a.params.values);
}

TEST_CASE("saving over a checkpoint leaves no leftovers", "[checkpoint]") {
  const fs::path dir = scratch("replace") / "last";
  fs::create_directories(dir.parent_path());
  saved_at(dir, 98, 1);
  const Checkpoint b = saved_at(dir, 99, 2);
  CHECK(names_in(dir.parent_path()) == std::vector<std::string>{"last"});
  CHECK(names_in(dir) == std::vector<std::string>{"model.json", "weights.safetensors"});
  CHECK(load_checkpoint(dir.string()).params.values == b.params.values);
}

// Issue 15 follow-up: a conformer model records the largest molecule and the
// elements of its training data; a checkpoint without the record (the
// shipped model, older runs) loads with QM9's limits.
TEST_CASE("a conformer checkpoint round-trips the molecules its model takes; without them, QM9's", "[checkpoint]") {
  Checkpoint c;
  c.system = "qm9-conformers";
  c.field = conformer_field_config(8, 2);
  c.params = random_params(c.field, 83);
  // A molecule of these elements (its positions play no part).
  const auto molecule = [](const std::string& name, const std::vector<int>& z) {
    Molecule m;
    m.name = name;
    m.atomic_numbers = z;
    m.positions.assign(3 * z.size(), 0.0);
    return m;
  };
  const Molecule water = molecule("water", {8, 1, 1}), methanol = molecule("methanol", {6, 8, 1, 1, 1, 1});
  c.conformer_support = conformer_support_of({water, methanol});
  CHECK(c.conformer_support->max_atoms == 6);
  CHECK(c.conformer_support->elements == std::vector<int>{1, 6, 8});
  const fs::path dir = scratch("conformer_support");
  save_checkpoint(dir.string(), c);
  const Checkpoint d = load_checkpoint(dir.string());
  REQUIRE(d.conformer_support);
  CHECK(*d.conformer_support == *c.conformer_support);
  CHECK(conformer_support(d).recorded);
  CHECK(d.params.values == c.params.values);
  const auto model_json = [&] {
    std::ifstream in(dir / "model.json");
    return nlohmann::json::parse(in);
  };
  CHECK(model_json()["conformer_support"] == nlohmann::json{{"max_atoms", 6}, {"elements", {"H", "C", "O"}}});
  // What it takes: 2 to 6 atoms of H, C, O; one line says why not.
  const Molecule ethanol = molecule("ethanol", {6, 6, 8, 1, 1, 1, 1, 1, 1});
  const Molecule fluoromethane = molecule("fluoromethane", {6, 9, 1, 1, 1});
  CHECK(unsupported_reason(methanol, *d.conformer_support).empty());
  CHECK(unsupported_reason(ethanol, *d.conformer_support) ==
        "9 atoms with hydrogens; the model takes 2 to 6 (its largest training molecule has 6)");
  CHECK(unsupported_reason(fluoromethane, *d.conformer_support) ==
        "atom 2 is F; the model knows H, C, O only (its training data)");
  // Saved without the record (as checkpoints before it): QM9's limits.
  c.conformer_support.reset();
  save_checkpoint(dir.string(), c);
  CHECK_FALSE(model_json().contains("conformer_support"));
  const Checkpoint old = load_checkpoint(dir.string());
  CHECK_FALSE(old.conformer_support);
  CHECK(conformer_support(old) == ConformerSupport{});
  CHECK(conformer_support(old).max_atoms == 29);
  CHECK(conformer_support(old).elements == std::vector<int>{1, 6, 7, 8, 9});
  CHECK(unsupported_reason(ethanol, conformer_support(old)).empty());
  CHECK(unsupported_reason(molecule("CCl4", {6, 17, 17, 17, 17}), conformer_support(old)) ==
        "atom 2 is Cl; the model knows H, C, N, O, F only");
  // A bad record is an error naming model.json and the key.
  const auto edit = [&](const nlohmann::json& value) {
    nlohmann::json j = model_json();
    j["conformer_support"] = value;
    std::ofstream(dir / "model.json") << j.dump();
  };
  edit({{"max_atoms", 1}, {"elements", {"C"}}});
  CHECK_THROWS_WITH(load_checkpoint(dir.string()), Catch::Contains("model.json") && Catch::Contains("max_atoms"));
  edit({{"max_atoms", 5}, {"elements", {"C", "Cl"}}});
  CHECK_THROWS_WITH(load_checkpoint(dir.string()), Catch::Contains("Cl") && Catch::Contains("conditioning"));
  edit({{"max_atoms", 5}, {"elements", {"C", "Xx"}}});
  CHECK_THROWS_WITH(load_checkpoint(dir.string()), Catch::Contains("\"Xx\" is no element symbol"));
  edit({{"max_atoms", "5"}, {"elements", {"C"}}});
  CHECK_THROWS_WITH(load_checkpoint(dir.string()), Catch::Contains("'max_atoms' must be an integer"));
  edit({{"max_atoms", 5}});
  CHECK_THROWS_WITH(load_checkpoint(dir.string()), Catch::Contains("'elements'"));
  edit({{"max_atoms", 5}, {"elements", {"C", "H"}}});  // not in ascending atomic number
  CHECK_THROWS_WITH(load_checkpoint(dir.string()), Catch::Contains("ascending"));
  // Only a conformer model has one.
  Checkpoint p;
  p.system = "dw4";
  p.field = particle_field(2);
  p.params = random_params(p.field, 84);
  p.conformer_support = ConformerSupport{};
  const fs::path pdir = scratch("particle_support");
  save_checkpoint(pdir.string(), p);
  CHECK_THROWS_WITH(load_checkpoint(pdir.string()), Catch::Contains("only conformer models"));
}

TEST_CASE("the shipped conformer model has no record: QM9's limits", "[checkpoint]") {
  const Checkpoint c = load_checkpoint("datasets/models/qm9_conformers");
  CHECK(c.system == "qm9-conformers");
  CHECK_FALSE(c.conformer_support);
  CHECK(conformer_support(c) == ConformerSupport{});
}
