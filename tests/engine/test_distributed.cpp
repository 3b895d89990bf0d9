// Issue 16: work shared among the ranks of a job gives what one process
// gives, bit for bit. The ranks here are threads (support/thread_ranks.hpp),
// each with its own trainer as an MPI process has; the MPI transport is
// tested end to end by tests/cli/cli_mpi_*.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "egnn/distributed_sum.hpp"
#include "engine/molecule_trainer.hpp"
#include "engine/trainer.hpp"
#include "engine/validation.hpp"
#include "support/cnf_options.hpp"
#include "support/fixtures.hpp"
#include "support/random_model.hpp"
#include "support/thread_ranks.hpp"
#include "support/tiny_qm9.hpp"

using namespace enf;
using enf::test::ThreadRanks;

namespace {

struct Record {
  int sample;
  double value;
};

// Sample b's gradient: values of very different magnitudes, so that any
// other order of summation changes the last bits.
void sample_gradient(int b, std::size_t P, double* acc, Record& rec) {
  for (std::size_t k = 0; k < P; ++k) acc[k] += std::sin(double(b) * P + k) * std::pow(10.0, double((b * 7 + k) % 9) - 4);
  rec = {b, std::cos(double(b))};
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

}  // namespace

TEST_CASE("A distributed gradient sum gives one process's bits for any ranks and threads", "[distributed]") {
  const std::size_t P = 23;
  for (int B : {1, 5, 16, 37}) {
    std::vector<double> want(P, 0.0);
    std::vector<std::vector<double>> buffers;
    std::vector<Record> want_records;
    distributed_gradient_sum(single_process(), B, P, 1, buffers, want.data(), want_records, {},
                             [&](int b, int, double* acc, Record& r) { sample_gradient(b, P, acc, r); });
    // A different order of the same sums does change the bits (the test can fail).
    std::vector<double> reversed(P, 0.0);
    for (int b = B - 1; b >= 0; --b) {
      Record r;
      sample_gradient(b, P, reversed.data(), r);
    }
    if (B > 4) CHECK_FALSE(same_bits(want, reversed));
    for (int K : {2, 3, 5})
      for (int threads : {1, 2}) {
        CAPTURE(B, K, threads);
        ThreadRanks ranks(K);
        std::vector<std::vector<double>> got(K, std::vector<double>(P, 0.0));
        std::vector<std::vector<Record>> records(K);
        ranks.run([&](Communicator& comm) {
          std::vector<std::vector<double>> own;
          std::vector<double> cost(B);
          for (int b = 0; b < B; ++b) cost[b] = 1 + b % 4;  // unequal shares
          const ShardTiming t = distributed_gradient_sum(comm, B, P, threads, own, got[comm.rank()].data(),
                                                         records[comm.rank()], cost,
                                                         [&](int b, int, double* acc, Record& r) { sample_gradient(b, P, acc, r); });
          if (t.busy.size() != std::size_t(K)) throw std::runtime_error("busy times of every rank expected");
        });
        for (int r = 0; r < K; ++r) {
          CHECK(same_bits(got[r], want));
          REQUIRE(records[r].size() == std::size_t(B));
          for (int b = 0; b < B; ++b) {  // field by field: Record has padding bytes, which hold anything
            CHECK(records[r][b].sample == want_records[b].sample);
            CHECK(std::memcmp(&records[r][b].value, &want_records[b].value, sizeof(double)) == 0);
          }
        }
      }
  }
}

TEST_CASE("Groups go to ranks in contiguous runs balanced by cost", "[distributed]") {
  const int B = 64, groups = 16;
  std::vector<double> cost(B);
  for (int b = 0; b < B; ++b) cost[b] = (b < 16) ? 9.0 : 1.0;  // the first groups cost 9× the others
  for (int K : {1, 2, 3, 7, 16, 20}) {
    CAPTURE(K);
    const std::vector<int> owner = assign_groups(B, groups, K, cost);
    REQUIRE(owner.size() == std::size_t(groups));
    CHECK(owner.front() == 0);
    for (int g = 1; g < groups; ++g) CHECK(owner[g] >= owner[g - 1]);  // contiguous runs (ranks may get none)
    CHECK(owner.back() <= K - 1);
    // No rank holds more than its share plus one group's cost.
    std::vector<double> load(K, 0.0);
    for (int g = 0; g < groups; ++g)
      for (int b = group_begin(B, groups, g); b < group_begin(B, groups, g + 1); ++b) load[owner[g]] += cost[b];
    const double total = 16 * 9.0 + 48 * 1.0, largest_group = 4 * 9.0;
    for (double l : load) CHECK(l <= total / K + largest_group + 1e-12);
  }
  // The largest load is the smallest any contiguous split gives (brute force over the cuts).
  std::vector<double> gcost(groups, 0.0);
  for (int g = 0; g < groups; ++g)
    for (int b = group_begin(B, groups, g); b < group_begin(B, groups, g + 1); ++b) gcost[g] += cost[b];
  std::function<double(int, int)> optimum = [&](int first, int k) {  // groups [first, G) on k ranks
    double run = 0, best = std::numeric_limits<double>::infinity();
    if (k == 1) {
      for (int g = first; g < groups; ++g) run += gcost[g];
      return run;
    }
    for (int end = first; end <= groups; ++end) {
      if (end > first) run += gcost[end - 1];
      best = std::min(best, std::max(run, optimum(end, k - 1)));
    }
    return best;
  };
  for (int K : {2, 3, 4}) {
    const std::vector<int> owner = assign_groups(B, groups, K, cost);
    std::vector<double> load(K, 0.0);
    for (int g = 0; g < groups; ++g) load[owner[g]] += gcost[g];
    CHECK(*std::max_element(load.begin(), load.end()) == Approx(optimum(0, K)).epsilon(1e-15));
  }
  // Equal costs: an even split.
  const std::vector<int> even = assign_groups(B, groups, 4, {});
  for (int g = 0; g < groups; ++g) CHECK(even[g] == g / 4);
}

TEST_CASE("A sample that fails on one rank fails every rank alike, naming both", "[distributed]") {
  ThreadRanks ranks(3);
  std::atomic<int> collective{0};
  std::vector<std::string> messages(3);
  ranks.run([&](Communicator& comm) {
    std::vector<double> grad(4, 0.0);
    std::vector<std::vector<double>> own;
    std::vector<Record> records;
    try {
      distributed_gradient_sum(comm, 30, 4, 1, own, grad.data(), records, {}, [&](int b, int, double* acc, Record& r) {
        if (b == 29) throw std::runtime_error("sample 29: step size underflow");
        sample_gradient(b, 4, acc, r);
      });
    } catch (const CollectiveError& e) {
      ++collective;
      messages[comm.rank()] = e.what();
    }
  });
  CHECK(collective == 3);
  for (const std::string& m : messages) CHECK(m == "rank 2: sample 29: step size underflow");
}

TEST_CASE("Empty payloads pass through the byte helpers (null data pointers included)", "[distributed]") {
  // An empty share's vector has data() == nullptr: neither append nor memcpy may see it (UBSan found this).
  std::vector<double> none;
  std::string bytes;
  put_bytes(bytes, none.data(), none.size());
  CHECK(bytes.empty());
  ByteReader reader(bytes);
  reader.get(none.data(), 0);
  double one = 0;
  CHECK_THROWS_AS(reader.get(&one, 1), std::runtime_error);  // and nothing past the end
}

TEST_CASE("Shards cover the items in order and values gather in that order", "[distributed]") {
  for (int K : {1, 2, 3, 8})
    for (int count : {0, 1, 7, 100}) {
      int next = 0;
      for (int r = 0; r < K; ++r) {
        const Shard s = shard_of(count, r, K);
        CHECK(s.begin == next);
        CHECK(s.size() >= count / K);
        CHECK(s.size() <= count / K + 1);
        next = s.end;
      }
      CHECK(next == count);
      ThreadRanks ranks(K);
      ranks.run([&](Communicator& comm) {
        const Shard s = my_shard(comm, count);
        std::vector<int> mine;
        for (int i = s.begin; i < s.end; ++i) mine.push_back(i * i);
        const std::vector<int> all = allgather_values(comm, mine);
        if (int(all.size()) != count) throw std::runtime_error("wrong count");
        for (int i = 0; i < count; ++i)
          if (all[i] != i * i) throw std::runtime_error("out of order");
        if (comm.any(comm.rank() == K - 1) != true) throw std::runtime_error("any() missed a rank's flag");
        if (comm.broadcast_value(comm.rank() * 10 + 3, K - 1) != (K - 1) * 10 + 3) throw std::runtime_error("broadcast");
      });
    }
}

namespace {

// A small 2-D particle field and `rows` random structures of 4 nodes.
struct SmallParticles {
  FieldConfig cfg;
  std::vector<double> x;
  static constexpr int n = 4;
  SmallParticles(int rows, std::uint64_t seed) : cfg(test::particle_field(2)) {
    cfg.hidden = 8;
    cfg.layers = 2;
    Rng rng(seed);
    for (int b = 0; b < rows; ++b) {
      const std::vector<double> s = test::random_state(cfg, n, rng, 1.0);
      x.insert(x.end(), s.begin(), s.end());
    }
  }
};

// Particle training (maximum likelihood and flow matching) on K ranks: the
// weights after a few steps, as bytes.
std::vector<double> particle_weights_after_steps(int K, int threads, TrainingObjective objective) {
  const int B = 10, n = SmallParticles::n;
  const SmallParticles data(B, 5);
  const FieldConfig& cfg = data.cfg;
  const std::vector<double>& x = data.x;
  const Parameters<double> init = test::random_params(cfg, 3, 0.1);
  std::vector<std::vector<double>> out(K);
  ThreadRanks ranks(K);
  ranks.run([&](Communicator& comm) {
    Trainer<float> t(cfg, test::training_options(1e-3), AdamWOptions{}, init, threads, true);
    t.set_communicator(comm);
    for (int step = 0; step < 3; ++step) {
      if (objective == TrainingObjective::FlowMatching) {
        FlowMatchingOptions o;
        o.coupling = Coupling::EquivariantOT;
        t.step_flow_matching(o, x, B, n, 100 + step);
      } else {
        t.step(x, B, n, 100 + step);
      }
    }
    out[comm.rank()].assign(t.params().values.begin(), t.params().values.end());
  });
  for (int r = 1; r < K; ++r)
    if (!same_bits(out[r], out[0])) throw std::runtime_error("ranks disagree on the weights");
  return out[0];
}

}  // namespace

TEST_CASE("Particle training on several ranks takes one process's steps, bit for bit", "[distributed][training]") {
  for (TrainingObjective objective : {TrainingObjective::MaximumLikelihood, TrainingObjective::FlowMatching}) {
    CAPTURE(to_string(objective));
    const std::vector<double> one = particle_weights_after_steps(1, 1, objective);
    CHECK(same_bits(particle_weights_after_steps(2, 1, objective), one));
    CHECK(same_bits(particle_weights_after_steps(3, 2, objective), one));
  }
}

TEST_CASE("Molecule training on several ranks takes one process's steps, bit for bit", "[distributed][training]") {
  for (bool matching : {false, true}) {
    CAPTURE(matching);
    test::TinyQm9 qm9(12);
    // Flow matching trains the uniform dequantization only.
    if (matching) qm9.mol.dequantization = Dequantization::Uniform;
    std::vector<std::vector<double>> weights;
    for (int K : {1, 3}) {
      std::vector<std::vector<double>> out(K);
      ThreadRanks ranks(K);
      ranks.run([&](Communicator& comm) {
        auto t = qm9.trainer<float>(11);
        t->set_communicator(comm);
        FlowMatchingOptions o;
        o.coupling = Coupling::EquivariantOT;
        for (int step = 0; step < 2; ++step) {
          const auto batch = qm9.batch(step * 5, 8);
          if (matching) t->step_flow_matching(o, batch, 7 + step);
          else t->step(batch, 7 + step);
        }
        out[comm.rank()].assign(t->params().values.begin(), t->params().values.end());
      });
      for (int r = 1; r < K; ++r) CHECK(same_bits(out[r], out[0]));
      weights.push_back(out[0]);
    }
    CHECK(same_bits(weights[1], weights[0]));
  }
}

TEST_CASE("Validation shared among ranks gives one process's NLL", "[distributed][validation]") {
  const int rows = 11, n = SmallParticles::n;
  const SmallParticles data(rows, 6);
  const FieldConfig& cfg = data.cfg;
  const std::vector<double>& x = data.x;
  const Parameters<double> p = test::random_params(cfg, 4, 0.1);
  for (TraceEstimator trace : {TraceEstimator::Exact, TraceEstimator::Rademacher}) {
    const Validation one = particle_validation(cfg, p, x, rows, n, 1, 9, [] { return false; }, trace);
    ThreadRanks ranks(3);
    std::vector<Validation> got(3);
    ranks.run([&](Communicator& comm) {
      got[comm.rank()] = particle_validation(cfg, p, x, rows, n, 1, 9, [] { return false; }, trace, comm);
    });
    for (const Validation& v : got) {
      CHECK(std::memcmp(&v.nll, &one.nll, sizeof(double)) == 0);
      CHECK(std::memcmp(&v.standard_error, &one.standard_error, sizeof(double)) == 0);
    }
  }
  // A stop on one rank interrupts every rank's validation.
  ThreadRanks ranks(2);
  std::vector<int> interrupted(2, 0);
  ranks.run([&](Communicator& comm) {
    const bool mine = comm.rank() == 1;
    interrupted[comm.rank()] =
        particle_validation(cfg, p, x, rows, n, 1, 9, [&] { return mine; }, TraceEstimator::Exact, comm).interrupted;
  });
  CHECK(interrupted == std::vector<int>{1, 1});
}
