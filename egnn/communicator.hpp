// The processes of a job and the few collectives enf needs between them
// (issue 16). One process is rank 0 of 1 (single_process(): nothing is sent);
// under MPI (tools/mpi_communicator.cpp, built with ENF_MPI) every rank of
// MPI_COMM_WORLD. Everything exchanged is bytes in rank order, so what a
// rank computes from them does not depend on how the network reduced them:
// results are the same bit for bit for any number of ranks.
//
// Collectives: every rank calls them, in the same order. A failure (a rank
// lost, the network gone) throws std::runtime_error with one clear line.
#pragma once

#include <algorithm>

#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace enf {

// An error every rank throws alike, after a collective told them all (a
// sample that failed on one rank): the program reports it once and ends
// every rank normally, where any other error on one rank must end the job.
struct CollectiveError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  bool is_root() const { return rank() == 0; }
  // Every rank's bytes, in rank order, on every rank.
  virtual std::vector<std::string> allgather(const std::string& mine) = 0;
  // Rank root's bytes on every rank (data is replaced on the others).
  virtual void broadcast(std::string& data, int root) = 0;

  // Whether any rank's flag is set (a stop asked on one rank stops all).
  bool any(bool flag);
  // Rank root's value of a trivially copyable value on every rank.
  template <class V>
  V broadcast_value(V v, int root = 0) {
    static_assert(std::is_trivially_copyable_v<V>);
    if (size() == 1) return v;
    std::string bytes(reinterpret_cast<const char*>(&v), sizeof v);
    broadcast(bytes, root);
    std::memcpy(&v, bytes.data(), sizeof v);
    return v;
  }
};

// This process alone: rank 0 of 1.
Communicator& single_process();

// Rank `rank`'s share of `count` items in input order: [begin, end), contiguous,
// the shares of ranks 0, 1, ... following each other.
struct Shard {
  int begin = 0, end = 0;
  int size() const { return end - begin; }
};
inline Shard shard_of(int count, int rank, int ranks) {
  return {int(static_cast<long long>(count) * rank / ranks), int(static_cast<long long>(count) * (rank + 1) / ranks)};
}
inline Shard my_shard(Communicator& comm, int count) { return shard_of(count, comm.rank(), comm.size()); }
// The same in whole groups of `group` items (the last may be short), for work
// done group by group whose bits depend on the group's members (lockstep
// sampling, flow.hpp): every rank's share begins at a multiple of `group`.
inline Shard shard_of_groups(int count, int group, int rank, int ranks) {
  const Shard g = shard_of((count + group - 1) / group, rank, ranks);
  return {std::min(count, g.begin * group), std::min(count, g.end * group)};
}
inline Shard my_shard_of_groups(Communicator& comm, int count, int group) {
  return shard_of_groups(count, group, comm.rank(), comm.size());
}

// Appends / reads trivially copyable values as bytes (the payloads of allgather).
template <class V>
void put_bytes(std::string& out, const V* v, std::size_t count) {
  static_assert(std::is_trivially_copyable_v<V>);
  if (count == 0) return;  // v may be null (an empty vector's data()), which append must not see
  out.append(reinterpret_cast<const char*>(v), count * sizeof(V));
}
class ByteReader {
 public:
  explicit ByteReader(const std::string& s) : s_(s) {}
  template <class V>
  void get(V* v, std::size_t count) {
    static_assert(std::is_trivially_copyable_v<V>);
    const std::size_t n = count * sizeof(V);
    if (at_ + n > s_.size()) throw std::runtime_error("a message between ranks is shorter than expected");
    if (n == 0) return;  // v may be null (an empty vector's data()): memcpy must not see it
    std::memcpy(static_cast<void*>(v), s_.data() + at_, n);
    at_ += n;
  }
  std::string get_string(std::size_t n) {
    if (at_ + n > s_.size()) throw std::runtime_error("a message between ranks is shorter than expected");
    std::string r = s_.substr(at_, n);
    at_ += n;
    return r;
  }

 private:
  const std::string& s_;
  std::size_t at_ = 0;
};

// Every rank's values, concatenated in rank order (with contiguous shards:
// the values of all items in input order).
template <class V>
std::vector<V> allgather_values(Communicator& comm, const std::vector<V>& mine) {
  static_assert(std::is_trivially_copyable_v<V>);
  if (comm.size() == 1) return mine;
  std::string bytes;
  put_bytes(bytes, mine.data(), mine.size());
  std::vector<V> all;
  for (const std::string& s : comm.allgather(bytes)) {
    if (s.size() % sizeof(V)) throw CollectiveError("a message between ranks has a partial value");
    const std::size_t n = s.size() / sizeof(V), at = all.size();
    all.resize(at + n);
    if (n) std::memcpy(static_cast<void*>(all.data() + at), s.data(), s.size());
  }
  return all;
}

}  // namespace enf
