#include "datasets/npy.hpp"
#include "datasets/particles.hpp"
#include "support/temp_dir.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using enf::test::TempDir;

namespace {

// Paths are relative to the repository root, which is the tests' working directory.
const std::string kSplits = "datasets/data/efm_splits/";


void dump(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A hand-made .npy: magic, version, little-endian header length (2 bytes for 1.0, else 4),
// the dict text padded like numpy does, then the data bytes.
std::string make_npy(std::string dict, const std::string& data, int major = 1) {
    const std::size_t preamble = major == 1 ? 10 : 12;
    dict.append((64 - (preamble + dict.size() + 1) % 64) % 64, ' ');
    dict += '\n';
    std::string out = "\x93NUMPY";
    out += static_cast<char>(major);
    out += '\0';
    for (std::size_t k = 0; k < preamble - 8; ++k) out += static_cast<char>((dict.size() >> (8 * k)) & 0xff);
    return out + dict + data;
}

template <class T>
std::string bytes_of(const std::vector<T>& values) {
    return {reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)};
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

}  // namespace

TEST_CASE("npy: reads the DW4 test split", "[npy][real]") {
    const auto a = enf::read_npy(kSplits + "test_split_DW4.npy");
    CHECK(a.dtype == "<f4");
    REQUIRE(a.shape == std::vector<int64_t>{10000, 8});
    REQUIRE(a.data.size() == 80000);
    CHECK(a.data[0] == Approx(1.7999157905578613));
    CHECK(a.data[1] == Approx(-6.577087879180908));
    // The mean DW4 energy (a=0.9, b=-4, d0=4, pairs i<j) documented in PROVENANCE.md checks
    // that rows/columns are laid out as expected, not just that bytes were read.
    double mean = 0;
    for (std::size_t r = 0; r < 10000; ++r) {
        const double* x = &a.data[r * 8];
        for (int i = 0; i < 4; ++i)
            for (int j = i + 1; j < 4; ++j) {
                const double d = std::hypot(x[2 * i] - x[2 * j], x[2 * i + 1] - x[2 * j + 1]) - 4.0;
                mean += (0.9 * d * d * d * d - 4.0 * d * d) / 10000.0;
            }
    }
    CHECK(mean == Approx(-22.4504).margin(1e-3));
}

TEST_CASE("npy: reads the LJ13 test split (centre of mass is zero)", "[npy][real]") {
    const auto a = enf::read_npy(kSplits + "test_split_LJ13-1000.npy");
    CHECK(a.dtype == "<f4");
    REQUIRE(a.shape == std::vector<int64_t>{10000, 39});
    for (std::size_t r = 0; r < 10000; ++r)
        for (int d = 0; d < 3; ++d) {
            double com = 0;
            for (int i = 0; i < 13; ++i) com += a.data[r * 39 + 3 * i + d] / 13.0;
            REQUIRE(std::abs(com) < 1e-5);
        }
}

TEST_CASE("npy: real integer array is rejected with its dtype", "[npy][real][errors]") {
    REQUIRE_THROWS_WITH(enf::read_npy("tests/data/idx_LJ13_first1000.npy"),
                        Contains("idx_LJ13_first1000.npy") && Contains("'<i8'"));
}

TEST_CASE("npy: write -> read round trip is bit-exact", "[npy][roundtrip]") {
    TempDir tmp("enf_npy_test");
    const double inf = std::numeric_limits<double>::infinity();
    const std::vector<double> f64 = {0.1, -0.0, 1e-310, inf, -inf, std::nan(""), 3.141592653589793, 1e300,
                                     -7.25, 42.0, 1e-5, 2.0 / 3.0};
    std::vector<double> f32;  // only float-representable values can survive <f4
    for (double v : f64) f32.push_back(static_cast<double>(static_cast<float>(v)));

    for (const bool float32 : {false, true}) {
        const auto& values = float32 ? f32 : f64;
        for (const auto& shape : std::vector<std::vector<int64_t>>{{12}, {3, 4}, {2, 3, 2}}) {
            const std::string path = tmp.file("rt.npy");
            enf::write_npy(path, shape, values, float32);
            CHECK_FALSE(fs::exists(path + ".tmp"));
            CHECK((fs::file_size(path) - values.size() * (float32 ? 4 : 8)) % 64 == 0);  // data 64-byte aligned
            const auto a = enf::read_npy(path);
            CHECK(a.dtype == (float32 ? "<f4" : "<f8"));
            CHECK(a.shape == shape);
            REQUIRE(a.data.size() == values.size());
            for (std::size_t i = 0; i < values.size(); ++i) CHECK(same_bits(a.data[i], values[i]));
        }
    }
    SECTION("0-d and empty arrays") {
        const std::string path = tmp.file("small.npy");
        enf::write_npy(path, {}, {5.5});
        auto a = enf::read_npy(path);
        CHECK(a.shape.empty());
        CHECK(a.data == std::vector<double>{5.5});
        enf::write_npy(path, {0, 5}, {});
        a = enf::read_npy(path);
        CHECK(a.shape == std::vector<int64_t>{0, 5});
        CHECK(a.data.empty());
    }
}

TEST_CASE("npy: Fortran-order arrays are converted to C order", "[npy][fortran]") {
    TempDir tmp("enf_npy_test");
    SECTION("2-d transpose") {
        // C-order matrix [[0,1,2],[3,4,5]] stored column by column.
        const std::string path = tmp.file("f2.npy");
        dump(path, make_npy("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
                            bytes_of<double>({0, 3, 1, 4, 2, 5})));
        const auto a = enf::read_npy(path);
        CHECK(a.shape == std::vector<int64_t>{2, 3});
        CHECK(a.data == std::vector<double>{0, 1, 2, 3, 4, 5});
    }
    SECTION("3-d, float32") {
        // Element (i,j,k) = 100i + 10j + k; column-major puts i fastest.
        std::vector<float> stored;
        for (int k = 0; k < 4; ++k)
            for (int j = 0; j < 3; ++j)
                for (int i = 0; i < 2; ++i) stored.push_back(static_cast<float>(100 * i + 10 * j + k));
        const std::string path = tmp.file("f3.npy");
        dump(path, make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3, 4), }", bytes_of(stored)));
        const auto a = enf::read_npy(path);
        REQUIRE(a.shape == std::vector<int64_t>{2, 3, 4});
        std::size_t n = 0;
        for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 3; ++j)
                for (int k = 0; k < 4; ++k) CHECK(a.data[n++] == 100 * i + 10 * j + k);
    }
}

TEST_CASE("npy: format versions 2.0 and 3.0, and parsing from memory", "[npy]") {
    const std::string data = bytes_of<double>({1.5, -2.5});
    for (int major : {1, 2, 3}) {
        // Different key order and double quotes are legal Python too.
        const auto a = enf::parse_npy(
            make_npy("{\"shape\": (2,), \"fortran_order\": False, \"descr\": \"<f8\"}", data, major), "mem");
        CHECK(a.shape == std::vector<int64_t>{2});
        CHECK(a.data == std::vector<double>{1.5, -2.5});
    }
}

TEST_CASE("npy: malformed or unsupported files give errors naming the file", "[npy][errors]") {
    TempDir tmp("enf_npy_test");
    const std::string path = tmp.file("bad.npy");
    const std::string four = bytes_of<double>({1, 2, 3, 4});
    auto write_and_read = [&](const std::string& bytes) {
        dump(path, bytes);
        enf::read_npy(path);
    };
    auto header = [](const char* descr, const char* shape) {
        return std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    };

    SECTION("missing file") {
        REQUIRE_THROWS_WITH(enf::read_npy(tmp.file("nope.npy")), Contains("nope.npy") && Contains("no such file"));
    }
    SECTION("a directory") {
        fs::create_directories(tmp.file("dir.npy"));
        REQUIRE_THROWS_WITH(enf::read_npy(tmp.file("dir.npy")), Contains("dir.npy") && Contains("is a directory"));
    }
    SECTION("truncated preamble") {
        REQUIRE_THROWS_WITH(write_and_read("\x93NUM"), Contains("bad.npy") && Contains("too short"));
    }
    SECTION("bad magic") {
        REQUIRE_THROWS_WITH(write_and_read("PK\x03\x04 this is a zip file"), Contains("bad.npy") && Contains("magic"));
    }
    SECTION("unsupported version") {
        REQUIRE_THROWS_WITH(write_and_read(make_npy(header("<f8", "(4,)"), four, 9)),
                            Contains("bad.npy") && Contains("version 9"));
    }
    SECTION("header length beyond the file") {
        std::string bytes = make_npy(header("<f8", "(4,)"), "");
        bytes[8] = '\xff';
        bytes[9] = '\x7f';
        REQUIRE_THROWS_WITH(write_and_read(bytes), Contains("bad.npy") && Contains("header length"));
    }
    SECTION("truncated data") {
        const std::string bytes = make_npy(header("<f8", "(4,)"), four);
        REQUIRE_THROWS_WITH(write_and_read(bytes.substr(0, bytes.size() - 3)),
                            Contains("bad.npy") && Contains("size mismatch") && Contains("needs 32 bytes, file has 29"));
    }
    SECTION("overflowing shape") {
        REQUIRE_THROWS_WITH(write_and_read(make_npy(header("<f8", "(4611686018427387904, 8)"), four)),
                            Contains("bad.npy") && Contains("size mismatch"));
    }
    SECTION("integer dtype") {
        REQUIRE_THROWS_WITH(write_and_read(make_npy(header("<i8", "(4,)"), four)),
                            Contains("bad.npy") && Contains("'<i8'"));
    }
    SECTION("big-endian dtype") {
        REQUIRE_THROWS_WITH(write_and_read(make_npy(header(">f8", "(4,)"), four)),
                            Contains("bad.npy") && Contains("'>f8'"));
    }
    SECTION("structured dtype") {
        REQUIRE_THROWS_WITH(
            write_and_read(make_npy("{'descr': [('x', '<f8')], 'fortran_order': False, 'shape': (4,), }", four)),
            Contains("bad.npy") && Contains("malformed header"));
    }
    SECTION("missing shape") {
        REQUIRE_THROWS_WITH(write_and_read(make_npy("{'descr': '<f8', 'fortran_order': False}", four)),
                            Contains("bad.npy") && Contains("'shape'"));
    }
    SECTION("writer: data does not match shape") {
        REQUIRE_THROWS_WITH(enf::write_npy(path, {2, 3}, {1, 2, 3}), Contains("bad.npy") && Contains("(2, 3)"));
        CHECK_FALSE(fs::exists(path));
    }
}

TEST_CASE("structures: shape, emptiness and finiteness are checked against the system", "[npy][structures]") {
    TempDir tmp("enf_npy_test");
    const enf::ParticleSystem dw4 = enf::particle_system("dw4");
    auto save = [&](const std::string& name, std::vector<std::int64_t> shape, std::vector<double> v) {
        enf::write_npy(tmp.file(name), shape, v);
        return tmp.file(name);
    };
    std::vector<double> two(16);
    for (std::size_t k = 0; k < two.size(); ++k) two[k] = double(k % 7) - 3;
    // [rows, N, D] and [rows, N·D] hold the same structures.
    const auto nested = enf::load_structures(save("nested.npy", {2, 4, 2}, two), dw4);
    const auto flat = enf::load_structures(save("flat.npy", {2, 8}, two), dw4);
    CHECK(nested.rows == 2);
    CHECK(nested.x == flat.x);
    // The same count of numbers with the axes swapped is not a DW4 array.
    CHECK_THROWS_WITH(enf::load_structures(save("swapped.npy", {2, 2, 4}, two), dw4),
                      Contains("swapped.npy") && Contains("(2, 2, 4)") && Contains("(rows, 4, 2)"));
    CHECK_THROWS_WITH(enf::load_structures(save("flat1d.npy", {16}, two), dw4), Contains("(rows, 8)"));
    CHECK_THROWS_WITH(enf::load_structures(save("empty.npy", {0, 8}, {}), dw4),
                      Contains("empty.npy") && Contains("no structures"));
    CHECK_THROWS_WITH(enf::load_structures(tmp.file("flat.npy"), dw4, 0, 0), Contains("no structures"));
    std::vector<double> bad = two;
    bad[8 + 5] = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH(enf::load_structures(save("nan.npy", {2, 8}, bad), dw4),
                      Contains("nan.npy") && Contains("row 1") && Contains("particle 2") && Contains("not finite"));
    // Only the rows asked for are checked.
    CHECK(enf::load_structures(tmp.file("nan.npy"), dw4, 0, 1).rows == 1);
    // Issue 17: absurd coordinates were scored silently.
    bad[8 + 5] = 1e30;
    CHECK_THROWS_WITH(enf::load_structures(save("far.npy", {2, 8}, bad), dw4),
                      Contains("far.npy") && Contains("row 1") && Contains("beyond 1e6"));
}

// Issue 17: a FIFO as input hung the reader forever.
TEST_CASE("npy: a pipe is refused at once, not read", "[npy][errors]") {
  const std::string fifo = (std::filesystem::temp_directory_path() / ("enf_fifo_" + std::to_string(::getpid()) + ".npy")).string();
  std::filesystem::remove(fifo);
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  REQUIRE_THROWS_WITH(enf::read_npy(fifo), Contains("not a regular file"));
  std::filesystem::remove(fifo);
}
