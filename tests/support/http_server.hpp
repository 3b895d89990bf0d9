// A small HTTP/1.1 file server for download tests: 127.0.0.1 only, on an
// ephemeral port, bounded in requests and time, one connection at a time
// ("Connection: close"). GET and HEAD, "Range: bytes=N-" (206), 404, and two
// faults: cutting the first response short, and ignoring Range.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace enf::test {

struct HttpServerOptions {
  std::string root;            // files are served from here ("/a/b" -> root/a/b)
  long long cut_after = -1;    // >= 0: close the FIRST response after this many body bytes
  bool ignore_range = false;   // answer 200 with the whole file even when a Range is asked
  int max_requests = 50;       // stop after this many requests ...
  double timeout_s = 120;      // ... or this many seconds
};

struct HttpRequestRecord {
  std::string method, path, range;  // range: the Range header's value, "" if none
  int status = 0;                   // the status answered
};

class HttpServer {
 public:
  // Binds and listens at once, so port() is valid before serving starts.
  explicit HttpServer(HttpServerOptions opt);
  ~HttpServer();  // stops and joins the background thread
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path) const;  // "http://127.0.0.1:<port>" + path

  void start();  // serve() in a background thread
  void serve();  // serve in this thread until max_requests, timeout_s or stop()
  void stop();

  std::vector<HttpRequestRecord> requests() const;  // a copy, in arrival order
  bool log_to_stderr = false;                        // one line per request

 private:
  void handle(int conn);
  void record(HttpRequestRecord r);

  HttpServerOptions opt_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<HttpRequestRecord> requests_;
  bool cut_done_ = false;
};

}  // namespace enf::test
