// The download layer of `enf data fetch`: checksums, and download_file against
// a local HTTP server (tests/support/http_server) that can cut a transfer short
// or ignore Range requests. Everything runs on 127.0.0.1 in a temporary directory.
#include "datasets/checksum.hpp"
#include "datasets/download.hpp"
#include "support/http_server.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <fstream>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using enf::test::TempDir;
using enf::Checksum;
using enf::test::HttpServer;
using enf::test::HttpServerOptions;

extern char** environ;

namespace {

// Paths are relative to the repository root, which is the tests' working directory.
const std::string kDw4Test = "datasets/data/efm_splits/test_split_DW4.npy";
const std::string kDw4Sha256 = "ef4466793b3502b2fe405aad22d3ae43b34827971594c5bab28684771d828244";
const std::string kDw4GitBlob = "ca8265e19574e4dd959578bb9262e6e9e48a6a21";  // jarridrb/DEM


// Deterministic bytes (splitmix64): 3 MB is long enough to interrupt at 1 MB.
std::string pseudo_random_bytes(std::size_t n, std::uint64_t seed) {
    std::string out(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        std::uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        out[i] = static_cast<char>((z ^ (z >> 31)) & 0xff);
    }
    return out;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

enf::DownloadOptions quiet(int retries = 0) {
    enf::DownloadOptions o;
    o.progress = false;
    o.retries = retries;
    return o;
}

// A served directory with one 3 MB file, and where downloads go.
struct Site {
    TempDir tmp{"enf_fetch_test"};
    fs::path root = tmp.path / "www", out = tmp.path / "out";
    std::string data = pseudo_random_bytes(3'000'000, 42);
    Checksum sha = Checksum::sha256(enf::sha256_bytes(data));
    Site() {
        fs::create_directories(root);
        write_bytes(root / "data.bin", data);
    }
    std::string dest() const { return (out / "data.bin").string(); }
    std::string part() const { return dest() + ".part"; }
    HttpServerOptions options() const {
        HttpServerOptions o;
        o.root = root.string();
        o.max_requests = 10;
        o.timeout_s = 30;
        return o;
    }
};

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    FAIL("expected a std::runtime_error");
    return {};
}

}  // namespace

TEST_CASE("checksums: known vectors", "[checksum]") {
    CHECK(enf::sha256_bytes("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(enf::sha256_bytes("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    // `printf 'hello world\n' | git hash-object --stdin`, and git's empty blob.
    CHECK(enf::git_blob_sha1_bytes("hello world\n") == "3b18e512dba79e4c8300dd08aeb37f8e728b8dad");
    CHECK(enf::git_blob_sha1_bytes("") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");

    TempDir tmp("enf_fetch_test");
    write_bytes(tmp.path / "hello.txt", "hello world\n");
    CHECK(enf::git_blob_sha1_file((tmp.path / "hello.txt").string()) == "3b18e512dba79e4c8300dd08aeb37f8e728b8dad");
    write_bytes(tmp.path / "empty", "");
    CHECK(enf::sha256_file((tmp.path / "empty").string()) == enf::sha256_bytes(""));

    // Files stream in 1 MiB chunks: a file spanning several gives the one-shot digest.
    const std::string big = pseudo_random_bytes(3'000'000, 7);
    write_bytes(tmp.path / "big", big);
    CHECK(enf::sha256_file((tmp.path / "big").string()) == enf::sha256_bytes(big));
    CHECK(enf::git_blob_sha1_file((tmp.path / "big").string()) == enf::git_blob_sha1_bytes(big));

    CHECK_THROWS_WITH(enf::sha256_file((tmp.path / "missing").string()),
                      Contains("missing") && Contains("no such file"));
    CHECK_THROWS_WITH(enf::git_blob_sha1_file((tmp.path / "missing").string()), Contains("no such file"));
}

TEST_CASE("checksums: the shipped DW4 test split", "[checksum]") {
    CHECK(enf::sha256_file(kDw4Test) == kDw4Sha256);
    CHECK(enf::git_blob_sha1_file(kDw4Test) == kDw4GitBlob);

    const Checksum sha = Checksum::sha256(kDw4Sha256);
    CHECK(sha.matches(kDw4Test));
    CHECK(sha.describe() == "sha256 " + kDw4Sha256);
    const Checksum blob = Checksum::git_blob_sha1(kDw4GitBlob);
    CHECK(blob.matches(kDw4Test));
    CHECK(blob.digest_of(kDw4Test) == kDw4GitBlob);
    CHECK(blob.describe() == "git-blob-sha1 " + kDw4GitBlob);
    // Upper-case hex is the same digest; another file's digest is not.
    std::string upper = kDw4Sha256;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    CHECK(Checksum::sha256(upper).matches(kDw4Test));
    CHECK_FALSE(Checksum::sha256(enf::sha256_bytes("abc")).matches(kDw4Test));
    CHECK(Checksum{}.matches(kDw4Test));
    CHECK(Checksum{}.describe() == "none");

    CHECK_THROWS_WITH(Checksum::sha256("ef44"), Contains("SHA-256") && Contains("64 hexadecimal digits"));
    CHECK_THROWS_WITH(Checksum::git_blob_sha1(kDw4Sha256), Contains("40 hexadecimal digits"));
}

TEST_CASE("download over HTTP: verified, renamed, no part file left", "[download]") {
    Site site;
    HttpServer server(site.options());
    server.start();
    // Into a directory that does not exist yet, with the progress lines on.
    const std::string dest = (site.out / "sub" / "data.bin").string();
    enf::DownloadOptions opt;
    opt.retries = 0;
    enf::download_file(server.url("/data.bin"), dest, site.sha, long(site.data.size()), "data.bin", opt);
    CHECK(read_bytes(dest) == site.data);
    CHECK_FALSE(fs::exists(dest + ".part"));
    const auto reqs = server.requests();
    REQUIRE(reqs.size() == 1);
    CHECK(reqs[0].method == "GET");
    CHECK(reqs[0].path == "/data.bin");
    CHECK(reqs[0].range.empty());
    CHECK(reqs[0].status == 200);

    // A git blob id verifies as well as a SHA-256; a wrong one is a mismatch.
    const Checksum blob = Checksum::git_blob_sha1(enf::git_blob_sha1_bytes(site.data));
    enf::download_file(server.url("/data.bin"), site.dest(), blob, -1, "data.bin", quiet());
    CHECK(read_bytes(site.dest()) == site.data);
    fs::remove(site.dest());
    const Checksum wrong = Checksum::git_blob_sha1(enf::git_blob_sha1_bytes("other"));
    const std::string err = error_of([&] {
        enf::download_file(server.url("/data.bin"), site.dest(), wrong, -1, "data.bin", quiet());
    });
    CHECK_THAT(err, Contains("checksum") && Contains("git-blob-sha1 " + wrong.hex) && Contains(blob.hex));
    CHECK_FALSE(fs::exists(site.dest()));
    CHECK_FALSE(fs::exists(site.part()));
}

TEST_CASE("download from file:// URLs and plain paths", "[download]") {
    Site site;
    enf::download_file("file://" + (site.root / "data.bin").string(), site.dest(), site.sha, -1, "data", quiet());
    CHECK(read_bytes(site.dest()) == site.data);
    CHECK_FALSE(fs::exists(site.part()));

    // A plain path, with characters a URL must escape.
    const fs::path odd = site.root / "a b%20#c.bin";
    write_bytes(odd, "odd name\n");
    const std::string dest2 = (site.out / "odd.bin").string();
    enf::download_file(odd.string(), dest2, Checksum::sha256(enf::sha256_bytes("odd name\n")), 9, "odd", quiet());
    CHECK(read_bytes(dest2) == "odd name\n");

    // A relative path (from the repository root), verified by its upstream git blob id.
    const std::string dest3 = (site.out / "test_split_DW4.npy").string();
    enf::download_file(kDw4Test, dest3, Checksum::git_blob_sha1(kDw4GitBlob), -1, "DW4 test", quiet());
    CHECK(enf::sha256_file(dest3) == kDw4Sha256);

    const std::string missing = (site.root / "missing.bin").string();
    const std::string err = error_of([&] { enf::download_file(missing, site.dest() + "2", site.sha, -1, "x", quiet()); });
    CHECK_THAT(err, Contains("cannot download " + missing));
    CHECK_FALSE(fs::exists(site.dest() + "2.part"));
}

TEST_CASE("download: a corrupted file or a wrong size keeps nothing", "[download]") {
    Site site;
    std::string corrupted = site.data;
    corrupted[1'234'567] ^= 1;
    write_bytes(site.root / "corrupted.bin", corrupted);
    HttpServer server(site.options());
    server.start();

    const std::string url = server.url("/corrupted.bin");
    const std::string err = error_of([&] {
        enf::download_file(url, site.dest(), site.sha, long(site.data.size()), "corrupted", quiet());
    });
    CHECK_THAT(err, Contains(url) && Contains("checksum") && Contains("sha256 " + site.sha.hex) &&
                        Contains(enf::sha256_bytes(corrupted)));
    CHECK(err.find('\n') == std::string::npos);
    CHECK_FALSE(fs::exists(site.dest()));
    CHECK_FALSE(fs::exists(site.part()));

    const std::string err2 = error_of([&] {
        enf::download_file(server.url("/data.bin"), site.dest(), site.sha, long(site.data.size()) + 1, "x", quiet());
    });
    CHECK_THAT(err2, Contains("expected 3000001 bytes, got 3000000"));
    CHECK_FALSE(fs::exists(site.dest()));
    CHECK_FALSE(fs::exists(site.part()));
}

TEST_CASE("download: an interrupted transfer resumes with a Range request", "[download]") {
    Site site;
    HttpServerOptions o = site.options();
    o.cut_after = 1'000'000;
    HttpServer server(o);
    server.start();
    const std::string url = server.url("/data.bin");
    const long size = long(site.data.size());

    const std::string err = error_of([&] { enf::download_file(url, site.dest(), site.sha, size, "data", quiet(0)); });
    CHECK_THAT(err, Contains("cannot download " + url) && Contains("run again to resume"));
    CHECK_FALSE(fs::exists(site.dest()));
    REQUIRE(fs::exists(site.part()));
    const std::string part = read_bytes(site.part());
    CHECK(part.size() > 0);
    CHECK(part.size() <= 1'000'000);
    CHECK(part == site.data.substr(0, part.size()));

    enf::download_file(url, site.dest(), site.sha, size, "data", quiet(0));
    CHECK(read_bytes(site.dest()) == site.data);
    CHECK_FALSE(fs::exists(site.part()));
    const auto reqs = server.requests();
    REQUIRE(reqs.size() == 2);
    CHECK(reqs[1].range == "bytes=" + std::to_string(part.size()) + "-");
    CHECK(reqs[1].status == 206);
}

TEST_CASE("download: with retries one call survives a cut by resuming", "[download]") {
    Site site;
    HttpServerOptions o = site.options();
    o.cut_after = 1'000'000;
    HttpServer server(o);
    server.start();
    enf::download_file(server.url("/data.bin"), site.dest(), site.sha, long(site.data.size()), "data", quiet(1));
    CHECK(read_bytes(site.dest()) == site.data);
    CHECK_FALSE(fs::exists(site.part()));
    const auto reqs = server.requests();
    REQUIRE(reqs.size() == 2);
    CHECK(reqs[0].range.empty());
    CHECK_THAT(reqs[1].range, Contains("bytes="));
    CHECK(reqs[1].range != "bytes=0-");
}

TEST_CASE("download: a server that ignores Range restarts the part file cleanly", "[download]") {
    Site site;
    HttpServerOptions o = site.options();
    o.cut_after = 1'000'000;
    o.ignore_range = true;
    HttpServer server(o);
    server.start();
    const std::string url = server.url("/data.bin");
    CHECK_THROWS(enf::download_file(url, site.dest(), site.sha, -1, "data", quiet(0)));
    const auto kept = fs::file_size(site.part());
    REQUIRE(kept > 0);

    enf::download_file(url, site.dest(), site.sha, -1, "data", quiet(0));
    CHECK(read_bytes(site.dest()) == site.data);
    CHECK_FALSE(fs::exists(site.part()));
    const auto reqs = server.requests();
    REQUIRE(reqs.size() == 3);
    CHECK(reqs[1].range == "bytes=" + std::to_string(kept) + "-");
    CHECK(reqs[1].status == 200);  // the range was ignored ...
    CHECK(reqs[2].range.empty());  // ... so the file came again from zero
}

TEST_CASE("download: a part file longer than the file (416) restarts", "[download]") {
    Site site;
    HttpServer server(site.options());
    server.start();
    fs::create_directories(site.out);
    write_bytes(site.part(), site.data + "stale tail");
    enf::download_file(server.url("/data.bin"), site.dest(), site.sha, -1, "data", quiet(0));
    CHECK(read_bytes(site.dest()) == site.data);
    const auto reqs = server.requests();
    REQUIRE(reqs.size() == 2);
    CHECK(reqs[0].status == 416);
    CHECK(reqs[1].range.empty());
}

TEST_CASE("download: HTTP 404 and a refused connection are one-line errors", "[download]") {
    Site site;
    HttpServer server(site.options());
    server.start();
    const std::string url = server.url("/missing.bin");
    const std::string err = error_of([&] { enf::download_file(url, site.dest(), site.sha, -1, "x", quiet(2)); });
    CHECK_THAT(err, Contains("cannot download " + url) && Contains("HTTP 404 Not Found"));
    CHECK_FALSE(fs::exists(site.out));  // not even the directory
    CHECK(server.requests().size() == 1);  // a 404 is not retried

    // A port that is bound but not listening refuses connections, and stays ours.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    const std::string refused = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/data.bin";
    const std::string err2 = error_of([&] { enf::download_file(refused, site.dest(), site.sha, -1, "x", quiet(2)); });
    ::close(fd);
    CHECK_THAT(err2, Contains("cannot download " + refused + ": ") && Contains("offline?"));
    CHECK(err2.find('\n') == std::string::npos);
    CHECK_FALSE(fs::exists(site.out));
}

TEST_CASE("the server program: port file, cut, bounded exit", "[download]") {
    Site site;
    const std::string port_file = (site.tmp.path / "port").string();
    const std::string exe = ENF_TEST_HTTP_SERVER;
    std::vector<std::string> args = {exe, "--root", site.root.string(), "--port-file", port_file,
                                     "--cut-after", "1000000", "--max-requests", "2", "--timeout-s", "20"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    REQUIRE(posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv.data(), environ) == 0);
    int port = 0;
    for (int i = 0; i < 200 && port == 0; ++i) {
        std::ifstream in(port_file);
        if (!(in >> port)) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    std::string err;
    if (port > 0) {
        const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/data.bin";
        try {
            enf::download_file(url, site.dest(), site.sha, long(site.data.size()), "data", quiet(1));
        } catch (const std::exception& e) {
            err = e.what();
        }
    }
    // It stops by itself after its two requests; a hung one is ended here.
    int status = -1;
    for (int i = 0; i < 200 && ::waitpid(pid, &status, WNOHANG) == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    if (status == -1) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        FAIL("the server program did not exit after --max-requests");
    }
    REQUIRE(port > 0);
    CHECK(err.empty());
    CHECK(read_bytes(site.dest()) == site.data);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}
