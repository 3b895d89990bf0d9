#include "tools/stop_signal.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>

namespace enf::cli {

namespace {

// Lock-free atomics are async-signal-safe; the message buffers are written
// before the handlers are installed and only read by them.
std::atomic<int> g_signal{0};
constexpr std::size_t kMessageSize = 1024;
char g_first[kMessageSize], g_second[kMessageSize];
std::size_t g_first_size = 0, g_second_size = 0;
struct sigaction g_old_int, g_old_term;

void write_all(const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, p, n);
    if (w <= 0) return;
    p += w;
    n -= std::size_t(w);
  }
}

extern "C" void on_signal(int sig) {
  int expected = 0;
  if (g_signal.compare_exchange_strong(expected, sig)) {
    write_all(g_first, g_first_size);  // says which rank, under mpirun (sharded_rounds)
    return;
  }
  // A second signal: the user wants out now. Records are complete in the
  // file after each flush, so the partial output is valid as it stands.
  write_all(g_second, g_second_size);
  ::_exit(128 + sig);
}

std::size_t copy_message(char* to, const std::string& from) {
  const std::size_t n = std::min(from.size(), kMessageSize);
  std::memcpy(to, from.data(), n);
  return n;
}

}  // namespace

StopSignal::StopSignal(const std::string& first_message, const std::string& second_message) {
  static_assert(std::atomic<int>::is_always_lock_free, "the stop flag must be async-signal-safe");
  g_signal = 0;
  g_first_size = copy_message(g_first, first_message);
  g_second_size = copy_message(g_second, second_message);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a write to the output must not fail with EINTR
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

StopSignal::~StopSignal() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

bool stop_requested() { return g_signal.load() != 0; }
int stop_signal_number() { return g_signal.load(); }
int stop_exit_code() { return g_signal.load() == 0 ? 0 : 128 + g_signal.load(); }

}  // namespace enf::cli
