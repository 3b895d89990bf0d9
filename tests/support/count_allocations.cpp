// The global operators new and delete of a test executable, replaced to count
// allocations (count_allocations.hpp). All unaligned forms are replaced
// together so that new and delete pair up (AddressSanitizer checks that).
// Kept in a file of their own: where the compiler sees a replaced delete
// inlined beside operator new's malloc, GCC 12 warns -Wmismatched-new-delete.
#include "support/count_allocations.hpp"

#include <cstdlib>
#include <new>

std::atomic<long> g_allocations{0};

void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  ++g_allocations;
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new(std::size_t n) {
  if (void* p = operator new(n, std::nothrow)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return operator new(n, std::nothrow); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
