// The one batch path (issue 12): threads, one scratch per thread, the ranks.
// The particles' BatchFlow (an item is a CNF solve), the molecules'
// MoleculeBatch (dequantization, ActNorm and p(N) around the CNF), the
// conformers' ConformerFlow (the molecule's conditioning around the CNF) and
// the flow-matching objective each say only what one item is. Each item
// draws its noise by its index in the job (`first` + its index in the call),
// so its result depends on neither its batch nor the thread count, and
// gradients are summed in a fixed order: the same bits for any number of
// threads and ranks (egnn/distributed_sum.hpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include "egnn/communicator.hpp"
#include "egnn/distributed_sum.hpp"
#include "egnn/parallel.hpp"

namespace enf {

// What one item of a training batch reports (it travels between ranks as bytes).
struct SampleLoss {
  double loss = 0;            // its weighted loss, already divided by B
  double nll = 0;             // its −log p
  double regularization = 0;  // its K + R
  long nfe_forward = 0, nfe_backward = 0;
  double seconds_forward = 0, seconds_backward = 0;  // CPU time of its solves
  double reconstruction_error = 0;  // of the continuous adjoint's backward solve (0: discrete gradient)
};

// A batch's loss, summed from its items' SampleLoss.
struct BatchLoss {
  double loss = 0;  // mean over samples of −log p(x) + λ(K + R)
  double nll = 0;   // mean −log p(x)
  double regularization = 0;  // mean K + R
  long nfe_forward = 0, nfe_backward = 0;  // summed over samples
  double cpu_seconds_forward = 0, cpu_seconds_backward = 0;  // summed over samples (all threads)
  double max_reconstruction_error = 0;  // of the continuous adjoint's backward solves

  ShardTiming shards;  // where the gradient's time went, per rank (distributed_sum.hpp)

  // Adds one of B samples.
  void add(const SampleLoss& s, int B);
};

// threads > 0 as given; otherwise every core OpenMP offers.
int batch_threads(int threads);

// Scratch: an item's workspace (one per thread, reused from item to item).
template <class Scratch>
class SampleBatch {
 public:
  explicit SampleBatch(int threads) : threads_(batch_threads(threads)), scratch_(threads_) {}
  int threads() const { return threads_; }
  // The ranks gradient() shares its items with (single_process() by default).
  void set_communicator(Communicator& comm) { comm_ = &comm; }

  // fn(i, scratch) for i in [0, count); the first exception rethrown after (parallel_for).
  template <class Fn>
  void for_each(int count, Fn fn) {
    parallel_for(count, threads_, [&](int i, int thread) { fn(i, scratch_[thread]); });
  }

  // Streamed, for commands that write each result as it is ready and stop
  // on Ctrl-C: stop() is asked before each item starts (true: none further
  // starts, those running finish); done(i, item(i, scratch)) runs from one
  // thread at a time, in any order of i (handed_over). Returns the count done.
  template <class Item, class Done>
  int each(int count, const std::function<bool()>& stop, Item item, Done done) {
    int finished = 0;
    std::atomic<bool> failed{false};
    for_each(count, [&](int i, Scratch& s) {
      if (failed || stop()) return;
      auto result = item(i, s);
      handed_over(failed, [&] {
        ++finished;
        done(i, std::move(result));
      });
    });
    return finished;
  }

  // item(b, scratch, acc) adds item b's gradient to acc and returns its
  // record (trivially copyable: it travels as bytes); the sum over the B
  // items is added to grad (P values), every record returned on every rank.
  // Items are shared between the ranks by cost (cost[b]; equal when empty)
  // and summed in a fixed order; a failed item throws on every rank.
  template <class Record, class Item>
  std::vector<Record> gradient(int B, std::size_t P, const std::vector<double>& cost, double* grad,
                               ShardTiming& timing, Item item) {
    std::vector<Record> records;
    timing = distributed_gradient_sum(*comm_, B, P, threads_, group_grad_, grad, records, cost,
                                      [&](int b, int thread, double* acc, Record& out) {
                                        out = item(b, scratch_[thread], acc);
                                      });
    return records;
  }
  // The same for a batch's loss: item b's gradient weighted 1/B, its SampleLoss the record.
  template <class Item>
  BatchLoss loss_and_gradient(int B, std::size_t P, const std::vector<double>& cost, double* grad, Item item) {
    BatchLoss L;
    for (const SampleLoss& r : gradient<SampleLoss>(B, P, cost, grad, L.shards, item)) L.add(r, B);
    return L;
  }

 private:
  int threads_;
  Communicator* comm_ = &single_process();
  std::vector<Scratch> scratch_;                 // one per thread
  std::vector<std::vector<double>> group_grad_;  // kept: repeated steps do not reallocate
};

}  // namespace enf
