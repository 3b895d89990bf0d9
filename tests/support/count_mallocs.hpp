// Test support: malloc itself counted, for what operator new does not see
// (Eigen's matrices allocate through malloc). An executable linked with
// count_mallocs.cpp counts every malloc in g_mallocs — except under
// AddressSanitizer, which provides malloc itself: there kMallocsCounted is
// false and g_mallocs stays 0.
#pragma once

#include <atomic>

extern std::atomic<long> g_mallocs;
extern const bool kMallocsCounted;
