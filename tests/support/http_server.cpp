#include "support/http_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace enf::test {

namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("test HTTP server: " + what + ": " + std::strerror(errno));
}

bool send_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    // MSG_NOSIGNAL: a client that hangs up must not kill the test with SIGPIPE.
    const ssize_t k = ::send(fd, data, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    data += k;
    n -= static_cast<std::size_t>(k);
  }
  return true;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 416: return "Range Not Satisfiable";
    default: return "Error";
  }
}

// "bytes=N-" or "bytes=N-M" -> [first, last]; false if it is neither.
bool parse_range(const std::string& value, long long size, long long& first, long long& last) {
  long long a = 0, b = -1;
  char dash = 0;
  int used = 0;
  if (std::sscanf(value.c_str(), " bytes=%lld%c%n", &a, &dash, &used) != 2 || dash != '-' || a < 0) return false;
  if (value[std::size_t(used)] != '\0' && std::sscanf(value.c_str() + used, "%lld", &b) != 1) return false;
  first = a;
  last = b >= 0 ? std::min(b, size - 1) : size - 1;
  return true;
}

}  // namespace

HttpServer::HttpServer(HttpServerOptions opt) : opt_(std::move(opt)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) fail("socket");
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // never reachable from outside this machine
  addr.sin_port = 0;                              // an ephemeral port: tests may run in parallel
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 8) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listen_fd_);
    fail("cannot listen on 127.0.0.1");
  }
  port_ = ntohs(addr.sin_port);
}

HttpServer::~HttpServer() {
  stop();
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

std::string HttpServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void HttpServer::start() {
  thread_ = std::thread([this] { serve(); });
}

void HttpServer::stop() { stop_ = true; }

std::vector<HttpRequestRecord> HttpServer::requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_;
}

void HttpServer::record(HttpRequestRecord r) {
  if (log_to_stderr)
    std::fprintf(stderr, "http server: %s %s%s -> %d\n", r.method.c_str(), r.path.c_str(),
                 r.range.empty() ? "" : (" (Range: " + r.range + ")").c_str(), r.status);
  std::lock_guard<std::mutex> lock(mutex_);
  requests_.push_back(std::move(r));
}

void HttpServer::serve() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(opt_.timeout_s);
  int served = 0;
  // Polling with a short timeout keeps stop() and the deadline responsive.
  while (!stop_ && served < opt_.max_requests && std::chrono::steady_clock::now() < deadline) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    const timeval tv{5, 0};  // a silent or stuck client cannot hold the server
    ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    handle(conn);
    ::shutdown(conn, SHUT_RDWR);
    ::close(conn);
    ++served;
  }
  // Closed at once so a client after the last request is refused, not left waiting.
  ::close(listen_fd_);
  listen_fd_ = -1;
}

void HttpServer::handle(int conn) {
  std::string req;
  char buf[4096];
  while (req.find("\r\n\r\n") == std::string::npos) {
    if (req.size() > 16384) return;
    const ssize_t n = ::recv(conn, buf, sizeof buf, 0);
    if (n <= 0) return;  // closed, or the receive timeout
    req.append(buf, std::size_t(n));
  }
  HttpRequestRecord r;
  const std::size_t eol = req.find("\r\n");
  const std::string first = req.substr(0, eol);
  const std::size_t sp1 = first.find(' '), sp2 = first.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) {
    r.status = 400;
  } else {
    r.method = first.substr(0, sp1);
    r.path = first.substr(sp1 + 1, sp2 - sp1 - 1);
  }
  for (std::size_t pos = eol + 2; pos < req.size();) {
    const std::size_t end = req.find("\r\n", pos);
    const std::string line = req.substr(pos, end - pos);
    if (lower(line.substr(0, 6)) == "range:") r.range = line.substr(line.find_first_not_of(' ', 6));
    pos = end + 2;
    if (line.empty()) break;
  }

  const std::string path = r.path.substr(0, r.path.find('?'));
  const fs::path file = fs::path(opt_.root) / fs::path(path).relative_path();
  std::error_code ec;
  long long first_byte = 0, last_byte = -1, size = 0;
  std::string extra;
  if (r.status == 0 && r.method != "GET" && r.method != "HEAD") r.status = 405;
  if (r.status == 0 && (path.empty() || path[0] != '/' || path.find("..") != std::string::npos ||
                        !fs::is_regular_file(file, ec)))
    r.status = 404;
  if (r.status == 0) {
    size = static_cast<long long>(fs::file_size(file, ec));
    last_byte = size - 1;
    r.status = 200;
    if (!r.range.empty() && !opt_.ignore_range && parse_range(r.range, size, first_byte, last_byte)) {
      if (first_byte >= size) {
        r.status = 416;
        extra = "Content-Range: bytes */" + std::to_string(size) + "\r\n";
      } else {
        r.status = 206;
        extra = "Content-Range: bytes " + std::to_string(first_byte) + "-" + std::to_string(last_byte) + "/" +
                std::to_string(size) + "\r\n";
      }
    }
  }
  const bool has_body = r.status == 200 || r.status == 206;
  const std::string body = has_body ? "" : std::to_string(r.status) + " " + reason(r.status) + "\n";
  const long long length = has_body ? last_byte - first_byte + 1 : static_cast<long long>(body.size());
  const std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) + "\r\n" +
                           "Content-Length: " + std::to_string(length) + "\r\n" +
                           "Content-Type: " + (has_body ? "application/octet-stream" : "text/plain") + "\r\n" +
                           "Accept-Ranges: bytes\r\nConnection: close\r\n" + extra + "\r\n";
  const bool head_only = r.method == "HEAD";
  // The cut applies to the first response that carries a file's body.
  long long limit = length;
  if (has_body && !head_only && opt_.cut_after >= 0 && !cut_done_) {
    cut_done_ = true;
    limit = std::min(length, opt_.cut_after);
  }
  // Recorded before the body goes out: a client that has the data sees the record.
  record(r);
  if (!send_all(conn, head.data(), head.size()) || head_only) return;
  if (!has_body) {
    send_all(conn, body.data(), body.size());
    return;
  }
  std::ifstream in(file, std::ios::binary);
  in.seekg(first_byte);
  std::vector<char> chunk(64 * 1024);
  for (long long left = limit; left > 0 && in;) {
    in.read(chunk.data(), static_cast<std::streamsize>(std::min<long long>(left, chunk.size())));
    const std::size_t n = static_cast<std::size_t>(in.gcount());
    if (n == 0 || !send_all(conn, chunk.data(), n)) return;
    left -= static_cast<long long>(n);
  }
}

}  // namespace enf::test
