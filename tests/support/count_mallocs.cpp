#include "support/count_mallocs.hpp"

#include <cstddef>

std::atomic<long> g_mallocs{0};

#if defined(__SANITIZE_ADDRESS__)
const bool kMallocsCounted = false;
#else
const bool kMallocsCounted = true;
// glibc's own allocator under its internal name; free, calloc and realloc stay
// glibc's, which own the same heap.
extern "C" void* __libc_malloc(std::size_t);
extern "C" void* malloc(std::size_t n) {
  g_mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
#endif
