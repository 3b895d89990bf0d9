// enf score and enf sample over the ranks of a job (issue 16): the items
// (structures, molecules, samples) go in rounds; each round is shared among
// the ranks (contiguous shares, balanced by an estimated cost), each rank
// computes its share with the engine's `first` index (item i draws its noise
// as item i of one process would), and the results travel to rank 0 as
// bytes, which emits them in input order. So the output is the same bytes as
// one process's, whatever the number of ranks.
//
// Every rank calls the same collectives in the same order: one exchange per
// round, also with an empty share or after a stop. A stop (Ctrl-C, SIGTERM)
// on any rank stops every rank after the current round; an item that fails
// on any rank is thrown on every rank (CollectiveError) after the exchange.
//
// One process: one round of every item, emitted as they finish (in input
// order), and exceptions propagate unchanged: the commands as before.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "egnn/communicator.hpp"

namespace enf::cli {

// fn() on every rank; then every rank learns whether it failed on any: the
// first failure in rank order is thrown on every rank, a UsageError as a
// UsageError (rank 0 says it), any other as a CollectiveError (naming the
// rank unless every rank failed alike). With one rank: fn() as it is.
// Returns what fn returned on every rank, in rank order.
std::vector<std::string> on_every_rank(Communicator& comm, const std::function<std::string()>& fn);

// Items of a trivially copyable type as bytes and back.
template <class V>
std::string to_bytes(const V& v) {
  std::string s;
  put_bytes(s, &v, 1);
  return s;
}
template <class V>
V from_bytes(const std::string& s) {
  V v{};
  ByteReader(s).get(&v, 1);
  return v;
}

class ShardedRounds {
 public:
  // An item's result, from one thread at a time: its index in the job.
  using Put = std::function<void(int index, std::string bytes)>;
  // Computes items [begin, end) of the job (begin is the engine's `first`),
  // putting each as it finishes; stops starting items on stop_requested();
  // throws when an item fails.
  using Compute = std::function<void(int begin, int end, const Put& put)>;
  // On rank 0 only, in input order.
  using Emit = std::function<void(int index, const std::string& bytes)>;

  // count items; cost: one estimate per item (empty: all alike); threads:
  // this rank's workers (a round gives every worker a few items: rank 0's
  // count sets the round for all).
  // group: items computed together whose bits depend on the group's
  // members (lockstep likelihoods, flow.hpp): rounds and shares then begin at
  // a multiple of it, so that a rank's items have the bits one process gives
  // them. Not with a cost (the cost assignment moves single items).
  ShardedRounds(Communicator& comm, int count, int threads, std::vector<double> cost = {}, int group = 1);

  // Every round, until the last or a stop. Throws CollectiveError (one rank:
  // the item's own error) when an item failed, after emitting the items
  // before it.
  void run(const Compute& compute, const Emit& emit);
  // Emits the finished items after a gap (an item never started because of
  // a stop), in order.
  void flush();

  int items_per_round() const { return per_round_; }
  // Whether a stop ended the job (every rank agrees), and the exit status of
  // its signal (130, 143; 0 without).
  bool interrupted() const;
  int exit_code() const;

 private:
  void add(int index, std::string bytes);
  Communicator& comm_;
  int count_, per_round_ = 0, group_;
  std::vector<double> cost_;
  Emit emit_;
  std::map<int, std::string> pending_;  // finished, waiting for an earlier index
  int next_ = 0;
  int signal_ = 0;  // the job's stop signal (several ranks)
};

}  // namespace enf::cli
