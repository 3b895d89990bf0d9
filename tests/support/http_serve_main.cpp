// enf_test_http_server: the test HTTP server as a program, for shell tests.
//   enf_test_http_server --root DIR --port-file FILE [--cut-after BYTES]
//                        [--ignore-range] [--max-requests N] [--timeout-s S]
// Listens on 127.0.0.1 (an ephemeral port, written to FILE once it listens),
// logs one line per request on stderr, and exits by itself after N requests
// (default 50) or S seconds (default 120).
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "support/http_server.hpp"

namespace {

constexpr const char* kUsage =
    "usage: enf_test_http_server --root DIR --port-file FILE [--cut-after BYTES] [--ignore-range]\n"
    "                            [--max-requests N] [--timeout-s S]\n";

// The port file appears complete or not at all: a script polling for it
// never reads a half-written number.
void write_port_file(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << '\n';
    if (!out) throw std::runtime_error("port file '" + path + "': cannot write '" + tmp + "'");
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    enf::test::HttpServerOptions opt;
    std::string port_file;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
        return argv[++i];
      };
      if (a == "--root") opt.root = value();
      else if (a == "--port-file") port_file = value();
      else if (a == "--cut-after") opt.cut_after = std::stoll(value());
      else if (a == "--ignore-range") opt.ignore_range = true;
      else if (a == "--max-requests") opt.max_requests = std::stoi(value());
      else if (a == "--timeout-s") opt.timeout_s = std::stod(value());
      else if (a == "-h" || a == "--help") { std::fputs(kUsage, stdout); return 0; }
      else throw std::runtime_error("unknown option '" + a + "'");
    }
    if (opt.root.empty() || port_file.empty()) throw std::runtime_error("--root and --port-file are required");
    if (!std::filesystem::is_directory(opt.root)) throw std::runtime_error("--root '" + opt.root + "' is not a directory");
    enf::test::HttpServer server(opt);
    server.log_to_stderr = true;
    write_port_file(port_file, server.port());
    std::fprintf(stderr, "http server: serving '%s' on 127.0.0.1:%d (at most %d requests, %.0f s)\n",
                 opt.root.c_str(), server.port(), opt.max_requests, opt.timeout_s);
    server.serve();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "enf_test_http_server: %s\n%s", e.what(), kUsage);
    return 2;
  }
}
