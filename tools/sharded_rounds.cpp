// ShardedRounds and on_every_rank (sharded_rounds.hpp).
#include "tools/sharded_rounds.hpp"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <stdexcept>

#include "egnn/distributed_sum.hpp"
#include "tools/options.hpp"
#include "tools/stop_signal.hpp"

namespace enf::cli {

namespace {

// Items a worker (thread) gets in a round: enough that the wait for the
// slowest at the round's end stays a small part of it, few enough that the
// output and a stop follow within a few items' time.
constexpr int kItemsPerWorker = 4;

void put_string(std::string& out, const std::string& s) {
  const std::uint64_t n = s.size();
  put_bytes(out, &n, 1);
  out += s;
}
std::string get_string(ByteReader& in) {
  std::uint64_t n = 0;
  in.get(&n, 1);
  return in.get_string(n);
}

}  // namespace

std::vector<std::string> on_every_rank(Communicator& comm, const std::function<std::string()>& fn) {
  if (comm.size() == 1) return {fn()};
  char kind = 'o';  // ok, usage error, other error
  std::string text;
  try {
    text = fn();
  } catch (const UsageError& e) {
    kind = 'u';
    text = e.what();
  } catch (const std::exception& e) {
    kind = 'e';
    text = e.what();
  }
  std::vector<std::string> all = comm.allgather(kind + text);
  int first = -1;
  bool alike = true;
  for (int r = 0; r < int(all.size()); ++r) {
    if (all[r].empty() || all[r][0] == 'o') {
      alike = false;
      continue;
    }
    if (first < 0) first = r;
    alike = alike && all[r] == all[first];
  }
  if (first >= 0) {
    const std::string what = all[first].substr(1);
    if (all[first][0] == 'u') throw UsageError(what);
    throw CollectiveError(alike ? what : "rank " + std::to_string(first) + ": " + what);
  }
  for (std::string& s : all) s.erase(0, 1);
  return all;
}

ShardedRounds::ShardedRounds(Communicator& comm, int count, int threads, std::vector<double> cost, int group)
    : comm_(comm), count_(count), group_(std::max(1, group)), cost_(std::move(cost)) {
  if (group_ > 1 && !cost_.empty()) throw std::invalid_argument("sharded rounds: groups or costs, not both");
  per_round_ = comm.size() == 1 ? count : comm.size() * kItemsPerWorker * std::max(1, comm.broadcast_value(threads));
  per_round_ = (per_round_ + group_ - 1) / group_ * group_;  // every round begins at a multiple of the group
}

void ShardedRounds::add(int index, std::string bytes) {
  pending_.emplace(index, std::move(bytes));
  while (!pending_.empty() && pending_.begin()->first == next_) {
    emit_(next_++, pending_.begin()->second);
    pending_.erase(pending_.begin());
  }
}

void ShardedRounds::flush() {
  for (auto& [index, bytes] : pending_) emit_(index, bytes);
  pending_.clear();
}

bool ShardedRounds::interrupted() const { return comm_.size() == 1 ? stop_requested() : signal_ != 0; }
int ShardedRounds::exit_code() const {
  return comm_.size() == 1 ? stop_exit_code() : signal_ != 0 ? 128 + signal_ : 0;
}

void ShardedRounds::run(const Compute& compute, const Emit& emit) {
  emit_ = emit;
  const int K = comm_.size(), me = comm_.rank();
  if (K == 1) {
    if (count_ > 0) compute(0, count_, [&](int i, std::string bytes) { add(i, std::move(bytes)); });
    return;
  }
  int begin = 0;
  do {  // at least one exchange, so that a stop is agreed even without items
    const int end = std::min(count_, begin + per_round_), n = end - begin;
    // This rank's share of the round: contiguous, rank 0's first.
    int lo = begin, hi = begin;
    if (cost_.empty()) {
      const Shard s = shard_of_groups(n, group_, me, K);
      lo = begin + s.begin;
      hi = begin + s.end;
    } else if (n > 0) {
      const std::vector<double> cost(cost_.begin() + begin, cost_.begin() + end);
      const std::vector<int> owner = assign_groups(n, n, K, cost);
      lo = begin + int(std::lower_bound(owner.begin(), owner.end(), me) - owner.begin());
      hi = begin + int(std::upper_bound(owner.begin(), owner.end(), me) - owner.begin());
    }
    // Rank 0 emits its own items as they finish (they follow the previous
    // round's); the others' travel in the exchange.
    std::vector<std::pair<int, std::string>> mine;
    std::string error;
    if (hi > lo) {
      try {
        compute(lo, hi, [&](int i, std::string bytes) {
          if (me == 0)
            add(i, std::move(bytes));
          else
            mine.emplace_back(i, std::move(bytes));
        });
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
    std::string payload;
    const std::int32_t sig = stop_signal_number();
    put_bytes(payload, &sig, 1);
    put_string(payload, error);
    const std::uint64_t items = mine.size();
    put_bytes(payload, &items, 1);
    for (const auto& [i, bytes] : mine) {
      const std::int32_t index = i;
      put_bytes(payload, &index, 1);
      put_string(payload, bytes);
    }
    const std::vector<std::string> all = comm_.allgather(payload);
    std::string first_error;
    for (int r = 0; r < K; ++r) {
      ByteReader in(all[r]);
      std::int32_t s = 0;
      in.get(&s, 1);
      if (signal_ == 0) signal_ = s;
      const std::string e = get_string(in);
      if (!e.empty() && first_error.empty()) first_error = "rank " + std::to_string(r) + ": " + e;
      std::uint64_t m = 0;
      in.get(&m, 1);
      for (std::uint64_t k = 0; k < m; ++k) {
        std::int32_t index = 0;
        in.get(&index, 1);
        std::string bytes = get_string(in);
        if (me == 0) add(index, std::move(bytes));
      }
    }
    if (!first_error.empty()) throw CollectiveError(first_error);
    begin = end;
  } while (begin < count_ && signal_ == 0);
}

}  // namespace enf::cli
