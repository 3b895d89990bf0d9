// Per-sample gradients summed over threads and over the ranks of a job
// (issue 16), bit for bit the same for any thread count and any number of
// ranks: the B samples fall into min(B, kGradientGroups) contiguous groups
// (a function of B alone); each group is summed in sample order into a
// buffer of its own (P values) by whichever thread of whichever rank owns
// it; every rank receives every group's buffer as bytes and adds them to
// grad in group order. So a K-rank job takes the same steps as one process.
//
// With one rank nothing is copied. With more, a group is owned by one rank
// (contiguous runs of groups, balanced by the samples' estimated cost), a
// sample's failure on any rank is thrown on every rank (with the rank named)
// after the exchange (CollectiveError), so no rank is left waiting in a
// collective.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "egnn/communicator.hpp"
#include "egnn/parallel.hpp"

namespace enf {

constexpr int kGradientGroups = 16;

// Where a distributed sum spent its time (seconds of wall clock).
struct ShardTiming {
  std::vector<double> busy;  // each rank's computing time (rank order; one entry with one rank)
  double wait = 0;           // this rank's time in the exchange (waiting for the slowest, then copying)
};

// The first sample of group g of `groups` over B samples.
inline int group_begin(int B, int groups, int g) { return int(std::int64_t(B) * g / groups); }

// The rank owning each group: contiguous runs (rank 0's first) whose largest
// total cost (cost[b] per sample; equal costs when empty) is the smallest
// possible; with more ranks than groups the last ranks get none.
std::vector<int> assign_groups(int B, int groups, int ranks, const std::vector<double>& cost);

// fn(b, thread, group_grad, record) adds sample b's gradient to group_grad
// and fills its record (trivially copyable: it travels as bytes); on return
// `records` holds all B records on every rank, and grad (P values) has the
// sum added. Throws std::runtime_error when a sample failed on any rank.
template <class Record, class Fn>
ShardTiming distributed_gradient_sum(Communicator& comm, int B, std::size_t P, int threads,
                                     std::vector<std::vector<double>>& buffers, double* grad,
                                     std::vector<Record>& records, const std::vector<double>& cost, Fn fn) {
  static_assert(std::is_trivially_copyable_v<Record>);
  using Clock = std::chrono::steady_clock;
  const int groups = std::min(B, kGradientGroups), K = comm.size(), me = comm.rank();
  records.assign(B, Record{});
  if (int(buffers.size()) < groups) buffers.resize(groups);
  const std::vector<int> owner = K == 1 ? std::vector<int>(groups, 0) : assign_groups(B, groups, K, cost);
  std::vector<int> mine;
  for (int g = 0; g < groups; ++g)
    if (owner[g] == me) mine.push_back(g);
  const auto t0 = Clock::now();
  std::string error;
  try {
    parallel_for(int(mine.size()), threads, [&](int k, int thread) {
      const int g = mine[k];
      auto& acc = buffers[g];
      acc.assign(P, 0.0);
      for (int b = group_begin(B, groups, g); b < group_begin(B, groups, g + 1); ++b)
        fn(b, thread, acc.data(), records[b]);
    });
  } catch (const std::exception& e) {
    if (K == 1) throw;
    error = e.what();
  }
  const auto t1 = Clock::now();
  ShardTiming timing;
  timing.busy.push_back(std::chrono::duration<double>(t1 - t0).count());
  if (K > 1) {
    std::string payload;
    put_bytes(payload, &timing.busy[0], 1);
    const std::uint64_t error_size = error.size();
    put_bytes(payload, &error_size, 1);
    payload += error;
    if (error.empty())
      for (int g : mine) {
        const int lo = group_begin(B, groups, g), hi = group_begin(B, groups, g + 1);
        put_bytes(payload, buffers[g].data(), P);
        put_bytes(payload, records.data() + lo, std::size_t(hi - lo));
      }
    const std::vector<std::string> all = comm.allgather(payload);
    timing.busy.assign(K, 0.0);
    std::vector<ByteReader> readers;
    std::string first_error;
    for (int r = 0; r < K; ++r) {
      readers.emplace_back(all[r]);
      std::uint64_t n = 0;
      readers[r].get(&timing.busy[r], 1);
      readers[r].get(&n, 1);
      const std::string e = readers[r].get_string(n);
      if (!e.empty() && first_error.empty()) first_error = "rank " + std::to_string(r) + ": " + e;
    }
    if (!first_error.empty()) throw CollectiveError(first_error);
    for (int g = 0; g < groups; ++g) {
      if (owner[g] == me) continue;
      const int lo = group_begin(B, groups, g), hi = group_begin(B, groups, g + 1);
      buffers[g].resize(P);
      readers[owner[g]].get(buffers[g].data(), P);
      readers[owner[g]].get(records.data() + lo, std::size_t(hi - lo));
    }
    timing.wait = std::chrono::duration<double>(Clock::now() - t1).count();
  }
  for (int g = 0; g < groups; ++g)
    for (std::size_t i = 0; i < P; ++i) grad[i] += buffers[g][i];
  return timing;
}

}  // namespace enf
