#include "engine/safetensors.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using enf::test::TempDir;
using enf::test::slurp;

namespace {

// Paths are relative to the repository root, which is the tests' working directory.
const std::string kDw4 = "tests/fixtures/models/oracle_dw4_mild/flow.safetensors";
const std::string kQm9Flow = "datasets/models/en_flows_qm9_pretrained/flow.safetensors";
const std::string kQm9Deq = "datasets/models/en_flows_qm9_pretrained/dequantizer.safetensors";



void dump(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A raw safetensors file: length prefix + header text + data, with no validation at all.
std::string raw_file(const std::string& header, const std::string& data, uint64_t header_len_override = 0) {
    const uint64_t n = header_len_override ? header_len_override : header.size();
    char len[8];
    std::memcpy(len, &n, 8);
    return std::string(len, 8) + header + data;
}

template <class T>
std::string bytes_of(std::initializer_list<T> values) {
    std::string out;
    for (T v : values) out.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return out;
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

void require_all_finite(const enf::SafeTensorFile& f) {
    for (const auto& [name, t] : f.tensors)
        for (double v : t.data) REQUIRE(std::isfinite(v));
}

}  // namespace

TEST_CASE("safetensors: reads the DW4 oracle flow", "[safetensors][real]") {
    const auto f = enf::read_safetensors(kDw4);
    REQUIRE(f.order.size() == 45);
    REQUIRE(f.tensors.size() == 45);
    CHECK(f.order[0] == "int_time");
    CHECK(f.order[1] == "inv_int_time");
    for (const auto& name : f.order) {
        const bool known = name == "int_time" || name == "inv_int_time" ||
                           name.rfind("odefunc.dynamics.egnn.", 0) == 0;
        CHECK(known);
        CHECK(f.tensors.at(name).dtype == "F32");
    }
    CHECK(f.tensors.at("int_time").shape == std::vector<int64_t>{2});
    CHECK(f.tensors.at("int_time").data == std::vector<double>{0.0, 1.0});
    CHECK(f.tensors.at("inv_int_time").data == std::vector<double>{1.0, 0.0});
    const auto& emb = f.tensors.at("odefunc.dynamics.egnn.embedding.weight");
    CHECK(emb.shape == std::vector<int64_t>{32, 1});
    CHECK(emb.data[0] == Approx(-0.08376661688089371));
    CHECK(f.metadata.at("format") == "pt");
    require_all_finite(f);
}

TEST_CASE("safetensors: reads the QM9 flow, whose header order differs from data order", "[safetensors][real]") {
    const auto f = enf::read_safetensors(kQm9Flow);
    REQUIRE(f.order.size() == 88);
    std::set<std::string> dtypes;
    for (const auto& [name, t] : f.tensors) dtypes.insert(t.dtype);
    CHECK(dtypes == std::set<std::string>{"F32", "I64"});
    // 'initialized' is 4th in the header but its bytes come first in the data region.
    CHECK(f.order[3] == "transformations.0.initialized");
    const auto& init = f.tensors.at("transformations.0.initialized");
    CHECK(init.dtype == "I64");
    CHECK(init.shape.empty());
    CHECK(init.data == std::vector<double>{1.0});
    const auto& x_log_s = f.tensors.at("transformations.0.x_log_s");
    CHECK(x_log_s.shape == std::vector<int64_t>{1, 1});
    CHECK(x_log_s.data[0] == Approx(0.8203667998313904));
    CHECK(f.tensors.at("transformations.1.int_time").data == std::vector<double>{0.0, 1.0});
    require_all_finite(f);
}

TEST_CASE("safetensors: reads the QM9 dequantizer", "[safetensors][real]") {
    const auto f = enf::read_safetensors(kQm9Deq);
    REQUIRE(f.order.size() == 48);
    for (const auto& [name, t] : f.tensors) CHECK(t.dtype == "F32");
    const auto& emb = f.tensors.at("net_fn.egnn.embedding.weight");
    CHECK(emb.shape == std::vector<int64_t>{64, 6});
    CHECK(emb.data[1] == Approx(-0.19890286028385162));
    require_all_finite(f);
}

TEST_CASE("safetensors: F32/F64/I32/I64 round trip is bit-exact", "[safetensors][roundtrip]") {
    TempDir tmp("enf_safetensors_test");
    const std::string path = tmp.file("roundtrip.safetensors");
    const double inf = std::numeric_limits<double>::infinity();
    const std::vector<double> f64 = {0.1, -0.0, 1e-310, inf, -inf, std::nan(""), 3.141592653589793, 1e300};
    std::vector<double> f32;  // only float-representable values can survive F32
    for (double v : f64) f32.push_back(static_cast<double>(static_cast<float>(v)));
    const std::vector<std::pair<std::string, enf::SafeTensor>> tensors = {
        {"b.f64", {"F64", {2, 4}, f64}},
        {"a.f32", {"F32", {4, 2}, f32}},
        {"scalar", {"I64", {}, {1.0}}},
        {"ints", {"I32", {3}, {-2147483648.0, 0.0, 2147483647.0}}},
        {"empty", {"F32", {0, 3}, {}}},
    };
    enf::write_safetensors(path, tensors, {{"format", "pt"}, {"note", "x"}});
    CHECK_FALSE(fs::exists(path + ".tmp"));

    const std::string bytes = slurp(path);
    uint64_t header_len;
    std::memcpy(&header_len, bytes.data(), 8);
    CHECK((8 + header_len) % 8 == 0);  // data region aligned

    const auto f = enf::read_safetensors(path);
    CHECK(f.order == std::vector<std::string>{"b.f64", "a.f32", "scalar", "ints", "empty"});
    CHECK(f.metadata == std::map<std::string, std::string>{{"format", "pt"}, {"note", "x"}});
    for (const auto& [name, t] : tensors) {
        const auto& r = f.tensors.at(name);
        CHECK(r.dtype == t.dtype);
        CHECK(r.shape == t.shape);
        REQUIRE(r.data.size() == t.data.size());
        for (std::size_t i = 0; i < t.data.size(); ++i) CHECK(same_bits(r.data[i], t.data[i]));
    }

    // Overwriting an existing file goes through the same tmp + rename path.
    enf::write_safetensors(path, {{"only", {"F64", {1}, {2.5}}}});
    CHECK(enf::read_safetensors(path).order == std::vector<std::string>{"only"});
}

TEST_CASE("safetensors: a real file survives read -> write -> read", "[safetensors][roundtrip][real]") {
    TempDir tmp("enf_safetensors_test");
    const auto orig = enf::read_safetensors(kQm9Flow);
    std::vector<std::pair<std::string, enf::SafeTensor>> tensors;
    for (const auto& name : orig.order) tensors.emplace_back(name, orig.tensors.at(name));
    const std::string path = tmp.file("copy.safetensors");
    enf::write_safetensors(path, tensors, orig.metadata);
    const auto copy = enf::read_safetensors(path);
    CHECK(copy.order == orig.order);
    CHECK(copy.metadata == orig.metadata);
    for (const auto& name : orig.order) {
        CHECK(copy.tensors.at(name).dtype == orig.tensors.at(name).dtype);
        CHECK(copy.tensors.at(name).shape == orig.tensors.at(name).shape);
        CHECK(copy.tensors.at(name).data == orig.tensors.at(name).data);
    }
}

TEST_CASE("safetensors: reads I32 and F16 written by hand", "[safetensors]") {
    TempDir tmp("enf_safetensors_test");
    const std::string path = tmp.file("dtypes.safetensors");
    // F16 bits: 1.0, -2.0, max normal 65504, smallest subnormal 2^-24, +inf.
    const std::string data = bytes_of<uint16_t>({0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00}) + std::string(2, '\0') +
                             bytes_of<int32_t>({-1, 7});
    dump(path, raw_file(R"({"h":{"dtype":"F16","shape":[5],"data_offsets":[0,10]},)"
                        R"("i":{"dtype":"I32","shape":[2],"data_offsets":[12,20]}})",
                        data));
    const auto f = enf::read_safetensors(path);
    CHECK(f.tensors.at("h").data ==
          std::vector<double>{1.0, -2.0, 65504.0, std::ldexp(1.0, -24), std::numeric_limits<double>::infinity()});
    CHECK(f.tensors.at("i").data == std::vector<double>{-1.0, 7.0});
    CHECK(f.metadata.empty());
}

TEST_CASE("safetensors: malformed files give errors naming the file and tensor", "[safetensors][errors]") {
    TempDir tmp("enf_safetensors_test");
    const std::string path = tmp.file("bad.safetensors");
    const std::string fname = "bad.safetensors";
    const std::string eight = bytes_of<float>({1.0f, 2.0f});
    auto write_and_read = [&](const std::string& bytes) {
        dump(path, bytes);
        enf::read_safetensors(path);
    };

    SECTION("missing file") {
        REQUIRE_THROWS_WITH(enf::read_safetensors(tmp.file("nope.safetensors")),
                            Contains("nope.safetensors") && Contains("no such file"));
    }
    SECTION("shorter than the length prefix") {
        REQUIRE_THROWS_WITH(write_and_read("abc"), Contains(fname) && Contains("too short"));
    }
    SECTION("header length beyond the file") {
        REQUIRE_THROWS_WITH(write_and_read(raw_file("{}", "", 1000)), Contains(fname) && Contains("header length"));
    }
    SECTION("bad JSON") {
        REQUIRE_THROWS_WITH(write_and_read(raw_file("{not json", "")), Contains(fname) && Contains("bad JSON"));
    }
    SECTION("missing key") {
        REQUIRE_THROWS_WITH(write_and_read(raw_file(R"({"w":{"dtype":"F32","shape":[2]}})", eight)),
                            Contains(fname) && Contains("'w'") && Contains("data_offsets"));
    }
    SECTION("offsets out of range") {
        REQUIRE_THROWS_WITH(
            write_and_read(raw_file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", eight)),
            Contains(fname) && Contains("'w'") && Contains("out of range"));
    }
    SECTION("negative offset") {
        REQUIRE_THROWS_WITH(
            write_and_read(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", eight)),
            Contains(fname) && Contains("'w'"));
    }
    SECTION("shape does not match offsets") {
        REQUIRE_THROWS_WITH(
            write_and_read(raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight)),
            Contains(fname) && Contains("'w'") && Contains("needs 12 bytes"));
    }
    SECTION("overflowing shape") {
        REQUIRE_THROWS_WITH(write_and_read(raw_file(
                                R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})", "")),
                            Contains(fname) && Contains("'w'") && Contains("too large"));
    }
    SECTION("unknown dtype") {
        REQUIRE_THROWS_WITH(
            write_and_read(raw_file(R"({"w":{"dtype":"Q8","shape":[8],"data_offsets":[0,8]}})", eight)),
            Contains(fname) && Contains("'w'") && Contains("Q8"));
    }
    // Issue 17: both were accepted and loaded numbers other than the writer meant.
    SECTION("tensors sharing bytes") {
        REQUIRE_THROWS_WITH(write_and_read(raw_file(
                                R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                eight)),
                            Contains(fname) && Contains("'a'") && Contains("'b'") && Contains("overlap"));
    }
    SECTION("a tensor named twice") {
        REQUIRE_THROWS_WITH(write_and_read(raw_file(
                                R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                eight)),
                            Contains(fname) && Contains("'w' twice"));
    }
    SECTION("a key named twice inside an entry") {
        REQUIRE_THROWS_WITH(write_and_read(raw_file(
                                R"({"w":{"dtype":"F32","shape":[2],"shape":[1],"data_offsets":[0,8]}})", eight)),
                            Contains(fname) && Contains("'shape' twice"));
    }
    SECTION("truncated real file") {
        const std::string real = slurp(kDw4);
        REQUIRE(real.size() == 94872);
        REQUIRE_THROWS_WITH(write_and_read(real.substr(0, real.size() / 2)),
                            Contains(fname) && Contains("out of range"));
    }
}

TEST_CASE("safetensors: writer rejects inconsistent input", "[safetensors][errors]") {
    TempDir tmp("enf_safetensors_test");
    const std::string path = tmp.file("out.safetensors");
    REQUIRE_THROWS_WITH(enf::write_safetensors(path, {{"w", {"F32", {2, 2}, {1, 2, 3}}}}),
                        Contains("out.safetensors") && Contains("'w'"));
    REQUIRE_THROWS_WITH(enf::write_safetensors(path, {{"w", {"F16", {1}, {1}}}}), Contains("F16"));
    REQUIRE_THROWS_WITH(enf::write_safetensors(path, {{"w", {"I64", {1}, {0.5}}}}), Contains("'w'"));
    REQUIRE_THROWS_WITH(enf::write_safetensors(path, {{"w", {"F32", {1}, {1}}}, {"w", {"F32", {1}, {1}}}}),
                        Contains("duplicate"));
    CHECK_FALSE(fs::exists(path));
    CHECK_FALSE(fs::exists(path + ".tmp"));
}
