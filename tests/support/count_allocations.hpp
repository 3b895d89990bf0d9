// Test support: every (unaligned) operator new of an executable linked with
// count_allocations.cpp is counted in g_allocations, to check that solvers
// allocate per solve and never per step.
#pragma once

#include <atomic>

extern std::atomic<long> g_allocations;
