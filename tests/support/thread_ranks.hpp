// Test support: K "ranks" as K threads of this process, joined by a
// Communicator that exchanges bytes through shared memory. It lets the
// distributed paths (egnn/distributed_sum.hpp, the sharded validation, the
// training loop's agreements) run, and run under the sanitizers, without MPI;
// the MPI transport itself is tested end to end by tests/cli/cli_mpi_*.
#pragma once

#include <condition_variable>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "egnn/communicator.hpp"

namespace enf::test {

class ThreadRanks {
 public:
  explicit ThreadRanks(int ranks) : slots_(ranks) {
    members_.reserve(ranks);
    for (int r = 0; r < ranks; ++r) members_.emplace_back(*this, r);
  }
  int size() const { return int(slots_.size()); }

  // fn(comm) on every rank at once (one thread each); rethrows rank 0's
  // exception, else the first other rank's, once all have returned.
  template <class Fn>
  void run(Fn fn) {
    std::vector<std::exception_ptr> errors(size());
    std::vector<std::thread> threads;
    for (int r = 0; r < size(); ++r)
      threads.emplace_back([&, r] {
        try {
          fn(static_cast<Communicator&>(members_[r]));
        } catch (...) {
          errors[r] = std::current_exception();
        }
      });
    for (auto& t : threads) t.join();
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
  }

 private:
  class Member final : public Communicator {
   public:
    Member(ThreadRanks& hub, int rank) : hub_(hub), rank_(rank) {}
    int rank() const override { return rank_; }
    int size() const override { return hub_.size(); }
    std::vector<std::string> allgather(const std::string& mine) override { return hub_.exchange(rank_, mine); }
    void broadcast(std::string& data, int root) override { data = hub_.exchange(rank_, data)[root]; }

   private:
    ThreadRanks& hub_;
    int rank_;
  };

  // A barrier that carries every rank's bytes: the last to arrive publishes
  // them; a rank can only reach the next exchange's publication after every
  // rank has copied this one's (that needs them all to arrive again).
  std::vector<std::string> exchange(int rank, const std::string& mine) {
    std::unique_lock<std::mutex> lock(mutex_);
    slots_[rank] = mine;
    const long generation = generation_;
    if (++arrived_ == size()) {
      published_ = slots_;
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != generation; });
    }
    return published_;
  }

  std::vector<std::string> slots_, published_;
  std::vector<Member> members_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int arrived_ = 0;
  long generation_ = 0;
};

}  // namespace enf::test
