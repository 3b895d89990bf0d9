#include "datasets/download.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>

#include "datasets/file_io.hpp"

#ifndef ENF_VERSION
#define ENF_VERSION "unknown"
#endif

namespace enf {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

void init_curl_once() {
  // curl_global_init is not thread-safe; a function-local static runs it once.
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) throw std::runtime_error(std::string("libcurl cannot initialise: ") + curl_easy_strerror(rc));
}

std::string megabytes(long long bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", double(bytes) / 1e6);
  return buf;
}

std::string duration(double seconds) {
  const long long s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

// The progress line on stderr. A terminal gets one line redrawn with '\r'
// (at most 5 times a second, so a fast transfer is not slowed by drawing);
// a log file gets one line per 10% (per 10 MB when the size is unknown).
class Progress {
 public:
  Progress(std::string name, bool enabled)
      : name_(std::move(name)), enabled_(enabled), tty_(enabled && ::isatty(STDERR_FILENO) == 1) {}

  // A transfer starts at `offset` bytes; the rate counts only its own bytes.
  void start(long long offset) {
    start_time_ = Clock::now();
    start_bytes_ = offset;
    last_step_ = -1;
  }

  void update(long long done, long long total) {
    if (!enabled_) return;
    const auto now = Clock::now();
    if (tty_) {
      if (drawn_ && now - last_draw_ < std::chrono::milliseconds(200)) return;
      last_draw_ = now;
      draw(line(done, total, now), false);
    } else {
      const long long step = total > 0 ? done * 10 / total : done / 10'000'000;
      if (step <= last_step_) return;
      last_step_ = step;
      draw(line(done, total, now), true);
    }
    last_done_ = done;
  }

  // The final line of a completed download (unless a log line just said it).
  void complete(long long bytes) {
    if (!enabled_ || (!tty_ && bytes == last_done_)) return;
    draw(line(bytes, bytes, Clock::now()), true);
    drawn_ = false;
    last_done_ = bytes;
  }

  // A notice on its own line; a redrawn progress line is ended first.
  void note(const std::string& text) {
    end_line();
    if (enabled_) std::fprintf(stderr, "%s: %s\n", name_.c_str(), text.c_str());
  }

  // Ends a redrawn line, so that what follows (an error) starts on its own.
  void end_line() {
    if (tty_ && drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  std::string line(long long done, long long total, Clock::time_point now) const {
    const double elapsed = std::chrono::duration<double>(now - start_time_).count();
    const double rate = elapsed > 1e-3 ? double(done - start_bytes_) / elapsed : 0.0;
    char buf[160];
    if (total > 0) {
      const std::string eta = rate > 0 && done < total ? "  ETA " + duration(double(total - done) / rate) : "";
      std::snprintf(buf, sizeof buf, "%s: %.1f / %s  %3d%%  %.1f MB/s%s", name_.c_str(), double(done) / 1e6,
                    megabytes(total).c_str(), int(100 * std::min(done, total) / total), rate / 1e6, eta.c_str());
    } else {
      std::snprintf(buf, sizeof buf, "%s: %s  %.1f MB/s", name_.c_str(), megabytes(done).c_str(), rate / 1e6);
    }
    return buf;
  }

  void draw(const std::string& text, bool end_line) {
    if (tty_) {
      // Pad so a shorter line fully covers the previous one.
      width_ = std::max(width_, text.size());
      std::fprintf(stderr, "\r%-*s", int(width_), text.c_str());
      drawn_ = true;
      if (end_line) std::fputc('\n', stderr);
    } else {
      std::fprintf(stderr, "%s\n", text.c_str());
    }
    std::fflush(stderr);
  }

  std::string name_;
  bool enabled_, tty_;
  Clock::time_point start_time_ = Clock::now(), last_draw_;
  long long start_bytes_ = 0, last_step_ = -1, last_done_ = -1;
  bool drawn_ = false;
  std::size_t width_ = 0;
};

// The state one transfer shares with libcurl's callbacks.
struct Transfer {
  std::string part;
  long long offset = 0;       // bytes already in the part file, resumed from
  long long expected_size = -1;
  Progress* progress = nullptr;
  int fd = -1;                // the part file, opened at the first body byte
  std::string write_error;    // why writing the part file failed
  std::string status_line;    // the last HTTP status line, e.g. "HTTP/1.1 404 Not Found"
};

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view h(data, size * count);
  if (h.substr(0, 5) == "HTTP/") {
    while (!h.empty() && (h.back() == '\r' || h.back() == '\n')) h.remove_suffix(1);
    t->status_line = h;
  }
  return size * count;
}

// Creating the directory and the part file only when data arrives means an
// HTTP error or a refused connection leaves nothing behind.
bool open_part(Transfer& t) {
  std::error_code ec;
  const fs::path parent = fs::path(t.part).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (ec) {
    t.write_error = "cannot create directory '" + parent.string() + "': " + ec.message();
    return false;
  }
  t.fd = ::open(t.part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (t.offset > 0 ? O_APPEND : O_TRUNC), 0644);
  if (t.fd < 0) t.write_error = "cannot open '" + t.part + "' for writing: " + std::strerror(errno);
  return t.fd >= 0;
}

std::size_t on_write(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (t->fd < 0 && !open_part(*t)) return 0;  // libcurl aborts with CURLE_WRITE_ERROR
  std::size_t left = size * count;
  while (left > 0) {
    const ssize_t n = ::write(t->fd, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      t->write_error = "cannot write '" + t->part + "': " + std::strerror(errno);
      return 0;  // libcurl aborts with CURLE_WRITE_ERROR
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
  return size * count;
}

int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  // libcurl counts only this request: the part file's bytes come on top.
  if (dlnow == 0) return 0;  // nothing to show before the first bytes arrive
  const long long total = dltotal > 0 ? t->offset + dltotal : t->expected_size;
  t->progress->update(t->offset + dlnow, total);
  return 0;
}

struct Attempt {
  CURLcode code = CURLE_OK;
  long http_status = 0;
  bool connected = false;
  std::string message;  // one line: why the transfer failed
};

std::string failure_message(CURLcode code, long status, const Transfer& t, const char* errbuf) {
  if (!t.write_error.empty()) return t.write_error;
  if (code == CURLE_HTTP_RETURNED_ERROR) {
    // "HTTP/1.1 404 Not Found" -> "HTTP 404 Not Found" (HTTP/2 has no reason phrase).
    const std::size_t sp = t.status_line.find(' ');
    return sp != std::string::npos ? "HTTP " + t.status_line.substr(sp + 1) : "HTTP " + std::to_string(status);
  }
  std::string msg = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code);
  msg.erase(std::remove(msg.begin(), msg.end(), '\n'), msg.end());
  return msg;
}

// One request for url, appending to the part file from `offset`.
Attempt transfer(const std::string& url, Transfer& t, const DownloadOptions& opt) {
  std::unique_ptr<CURL, void (*)(CURL*)> handle(curl_easy_init(), curl_easy_cleanup);
  if (!handle) throw std::runtime_error("cannot download " + url + ": libcurl cannot create a transfer");
  CURL* c = handle.get();
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "enf/" ENF_VERSION);
  // Only what a dataset URL needs; a redirect may not switch to file://.
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);  // figshare and GitHub redirect to their storage
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);  // an error page is never saved as data
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);     // no SIGALRM for timeouts: safe in threaded programs
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, opt.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, opt.low_speed_time_s);
  curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(t.offset));
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);

  t.progress->start(t.offset);
  Attempt a;
  a.code = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.http_status);
  curl_off_t connect_us = 0;
  curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connect_us);
  a.connected = connect_us > 0;
  if (t.fd >= 0) ::close(t.fd);
  t.fd = -1;
  if (a.code != CURLE_OK) a.message = failure_message(a.code, a.http_status, t, errbuf);
  return a;
}

// Failures that another try may get past: the connection broke mid-way, the
// server had a temporary problem, or a connected transfer stalled.
bool transient(const Attempt& a) {
  switch (a.code) {
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    case CURLE_OPERATION_TIMEDOUT:
      return a.connected;  // a connect timeout means unreachable: fail fast
    case CURLE_HTTP_RETURNED_ERROR:
      return a.http_status >= 500 || a.http_status == 408 || a.http_status == 429;
    default:
      return false;
  }
}

// The server cannot continue the part file: it ignored the Range (libcurl
// refuses a 200 when resuming), the range is past its end (416), or a
// file:// source is shorter than the part.
bool resume_refused(const Attempt& a) {
  return a.code == CURLE_RANGE_ERROR || a.code == CURLE_BAD_DOWNLOAD_RESUME ||
         (a.code == CURLE_HTTP_RETURNED_ERROR && a.http_status == 416);
}

bool unreachable(CURLcode code) {
  return code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_RESOLVE_PROXY ||
         code == CURLE_COULDNT_CONNECT || code == CURLE_OPERATION_TIMEDOUT;
}

long long file_size_or_zero(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<long long>(size);
}

// A plain path becomes a file:// URL of its absolute path, percent-encoded.
std::string as_url(const std::string& source) {
  if (source.find("://") != std::string::npos) return source;
  std::error_code ec;
  const std::string path = fs::absolute(source, ec).lexically_normal().string();
  std::string url = "file://";
  for (const unsigned char ch : path) {
    if (std::isalnum(ch) || ch == '/' || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      url += char(ch);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", ch);
      url += buf;
    }
  }
  return url;
}

// libcurl reads a local directory as an empty file: it is refused by name.
bool is_local_directory(const std::string& url) {
  if (url.rfind("file://", 0) != 0) return false;
  std::unique_ptr<CURLU, void (*)(CURLU*)> u(curl_url(), curl_url_cleanup);
  char* path = nullptr;
  bool dir = false;
  if (u && curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
      curl_url_get(u.get(), CURLUPART_PATH, &path, CURLU_URLDECODE) == CURLUE_OK) {
    std::error_code ec;
    dir = fs::is_directory(path, ec);
  }
  curl_free(path);
  return dir;
}

}  // namespace

void download_file(const std::string& url, const std::string& dest, const Checksum& expected,
                   long long expected_size, const std::string& display_name, const DownloadOptions& opt) {
  const std::string where = "cannot download " + url;
  if (url.empty()) throw std::runtime_error("cannot download: the URL is empty");
  std::error_code ec;
  if (fs::is_directory(dest, ec)) throw std::runtime_error(where + " to '" + dest + "': is a directory; give a file name");
  init_curl_once();

  const std::string source = as_url(url);
  if (is_local_directory(source)) throw std::runtime_error(where + ": is a directory, not a file");
  Progress progress(display_name, opt.progress);
  Transfer t;
  t.part = dest + ".part";
  t.expected_size = expected_size;
  t.progress = &progress;
  bool restarted = false;
  for (int attempt = 0;;) {
    t.offset = file_size_or_zero(t.part);
    if (expected_size >= 0 && t.offset > expected_size) t.offset = 0;  // not a prefix of the file: start again
    // A part file of the full size was interrupted after its transfer: verify it.
    if (expected_size > 0 && t.offset == expected_size) break;
    if (t.offset > 0) progress.note("resuming at " + megabytes(t.offset) + " from '" + t.part + "'");
    const Attempt a = transfer(source, t, opt);
    if (a.code == CURLE_OK) break;
    if (t.offset > 0 && !restarted && resume_refused(a)) {
      progress.note("the server cannot resume (" + a.message + "); starting again from zero");
      fs::remove(t.part, ec);
      restarted = true;
      continue;
    }
    if (attempt < opt.retries && transient(a)) {
      ++attempt;
      progress.note(a.message + "; retrying (" + std::to_string(attempt) + " of " + std::to_string(opt.retries) + ")");
      std::this_thread::sleep_for(std::chrono::seconds(std::min(attempt, 10)));
      continue;
    }
    progress.end_line();
    std::string msg = where + ": " + a.message;
    if (unreachable(a.code) && source.rfind("file://", 0) != 0)
      msg += " (offline? use --from PATH_OR_URL to fetch from a mirror)";
    const long long kept = file_size_or_zero(t.part);
    if (kept > 0) msg += "; " + megabytes(kept) + " kept in '" + t.part + "': run again to resume";
    throw std::runtime_error(msg);
  }

  // An empty file has no body for the write callback to create the part file.
  if (!fs::exists(t.part, ec)) {
    t.offset = 0;
    if (!open_part(t)) throw std::runtime_error(where + ": " + t.write_error);
    ::close(t.fd);
    t.fd = -1;
  }
  const long long size = file_size_or_zero(t.part);
  progress.complete(size);
  const std::string deleted = " (deleted '" + t.part + "'; run again to download it from scratch)";
  if (expected_size >= 0 && size != expected_size) {
    fs::remove(t.part, ec);
    throw std::runtime_error(where + ": expected " + std::to_string(expected_size) + " bytes, got " +
                             std::to_string(size) + deleted);
  }
  if (expected.kind != Checksum::Kind::None) {
    const std::string actual = expected.digest_of(t.part);
    std::string want = expected.hex;
    std::transform(want.begin(), want.end(), want.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
    if (actual != want) {
      fs::remove(t.part, ec);
      throw std::runtime_error(where + ": checksum mismatch: expected " + expected.describe() + ", got " +
                               expected.describe(actual) + deleted);
    }
  }
  sync_file(t.part);  // the data on disk before the rename makes it the file
  fs::rename(t.part, dest, ec);
  if (ec) throw std::runtime_error(where + ": cannot rename '" + t.part + "' to '" + dest + "': " + ec.message());
  sync_directory(parent_directory(dest));  // makes the rename durable
}

}  // namespace enf
