// enf bench step --mpi (issue 16): the reference training step with its
// gradient shared among the ranks of an MPI job (egnn/distributed_sum.hpp),
// against the same step taken by one rank alone, and the exchange alone.
//
// Why the K = 1 reference is taken inside the job, step by step: a machine
// shared with builds drifts by tens of percent over a minute; alternating
// one reference step (rank 0 alone, the others waiting) with one distributed
// step puts both under the same conditions (tools/bench_timing.hpp does the
// same for kernels). Both trainers start from the same weights and take the
// same batches, so after the run rank 0 also checks that the distributed
// weights are bit for bit those of one process (the promise).
//
// A waiting rank spins in MPI (Open MPI polls): while rank 0 takes its
// reference step, the others hold their cores. When every rank has a core
// of its own that costs the reference nothing; on a machine loaded by other
// work (load average above cores − ranks × threads) the spinning takes CPU
// from rank 0 and the reference runs slow, so the report gives the load and
// warns; oversubscribed by the job itself, nothing here is a scaling
// measurement, and the report says so.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "datasets/particles.hpp"
#include "egnn/distributed_sum.hpp"
#include "engine/initialization.hpp"
#include "engine/trainer.hpp"
#include "tools/bench_step.hpp"
#include "tools/bench_timing.hpp"
#include "tools/mpi_world.hpp"
#include "tools/option_groups.hpp"

namespace enf::cli {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// One objective's timed steps.
struct Series {
  std::string label;
  std::vector<double> reference, reference_busy;  // rank 0 alone (K > 1 only)
  std::vector<double> total;                      // the distributed step, as rank 0 saw it
  std::vector<double> before_optimizer, optimizer;  // its parts: batch preparation + gradient, the update
  std::vector<std::vector<double>> busy;          // [repeat][rank]
  std::vector<double> wait;                       // this rank's, per repeat
  // Per repeat: the slowest rank's busy time less the fastest's (the load
  // imbalance), and this rank's wait less its share of that (the exchange
  // and the copies, as the step saw them).
  std::vector<double> imbalance, exchange;
  double nfe_forward = 0, nfe_backward = 0, loss = 0;
  bool identical = true;  // every step's loss equal to the reference's (K > 1)
};

// The median busy seconds of each rank over the repeats.
std::vector<double> median_per_rank(const std::vector<std::vector<double>>& busy, int K) {
  std::vector<double> out(K, 0.0);
  for (int r = 0; r < K; ++r) {
    std::vector<double> v;
    for (const auto& b : busy)
      if (r < int(b.size())) v.push_back(b[r]);
    out[r] = bench_median(v);
  }
  return out;
}

// Every rank's host name, in rank order.
std::vector<std::string> host_names(Communicator& comm) {
  char name[256] = "";
  if (gethostname(name, sizeof name - 1) != 0) std::strcpy(name, "?");
  return comm.allgather(name);
}

// The CPUs this process may run on: mpirun binds each rank to one core by
// default (np ≤ 2), so --threads 2 in a bound rank shares that one core.
int allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return int(std::thread::hardware_concurrency());
  return CPU_COUNT(&set);
}

// One exchange, timed on every rank (median of `repeats` after one warm-up,
// each started together); rank order. received[r]: the bytes rank r receives.
struct Exchange {
  std::string label;
  std::vector<double> seconds;
  std::vector<double> received;
  double sent_max = 0;
  double scale = 1;  // reported time = scale × measured (2 for the ring allreduce's two phases)
};

Exchange time_exchange(Communicator& comm, const std::string& label, const std::vector<std::size_t>& bytes_of_rank,
                       int repeats, double scale = 1) {
  const int K = comm.size(), me = comm.rank();
  const std::string payload(bytes_of_rank[me], '\x5a');
  std::vector<double> t;
  for (int k = -1; k < repeats; ++k) {
    comm.any(false);  // start together: the time is the exchange's, not a late rank's
    const auto t0 = Clock::now();
    const std::vector<std::string> all = comm.allgather(payload);
    const double s = since(t0);
    if (all.size() != std::size_t(K)) throw std::runtime_error("bench: an allgather lost a rank");
    if (k >= 0) t.push_back(s);
  }
  Exchange e{label, allgather_values(comm, std::vector<double>{bench_median(t)}), {}, 0, scale};
  double total = 0;
  for (std::size_t b : bytes_of_rank) total += double(b), e.sent_max = std::max(e.sent_max, double(b));
  for (int r = 0; r < K; ++r) e.received.push_back(total - double(bytes_of_rank[r]));
  return e;
}

// Each rank's payload in the gradient's exchange (distributed_sum.hpp): its
// busy time and error length (16 bytes), then its groups' P doubles and its
// samples' records.
std::vector<std::size_t> gradient_payloads(int B, int K, std::size_t P, std::size_t record_bytes) {
  const int G = std::min(B, kGradientGroups);
  const std::vector<int> owner = K == 1 ? std::vector<int>(G, 0) : assign_groups(B, G, K, {});
  std::vector<std::size_t> bytes(K, 16);
  for (int g = 0; g < G; ++g)
    bytes[owner[g]] += P * sizeof(double) + record_bytes * std::size_t(group_begin(B, G, g + 1) - group_begin(B, G, g));
  return bytes;
}

// Half a ring allreduce of P doubles: its allgather phase, P / K per rank
// (the reduce-scatter phase moves the same bytes; scale 2 reports both).
std::vector<std::size_t> allreduce_half_payloads(int K, std::size_t P) {
  std::vector<std::size_t> bytes(K);
  for (int r = 0; r < K; ++r) bytes[r] = std::size_t(shard_of(int(P), r, K).size()) * sizeof(double);
  return bytes;
}

// The step's own exchange path (distributed_gradient_sum with samples that
// add nothing): the allgather plus the payload's assembly, the copies out
// of it and the sum of the G buffers, as a training step pays them.
Exchange time_gradient_sum(Communicator& comm, const std::string& label, int B, std::size_t P, int repeats) {
  const int K = comm.size();
  std::vector<std::vector<double>> buffers;
  std::vector<double> grad(P, 0.0);
  std::vector<SampleLoss> records;
  std::vector<double> t;
  for (int k = -1; k < repeats; ++k) {
    comm.any(false);
    const auto t0 = Clock::now();
    distributed_gradient_sum(comm, B, P, 1, buffers, grad.data(), records, {},
                             [](int, int, double*, SampleLoss&) {});
    if (k >= 0) t.push_back(since(t0));
  }
  const std::vector<std::size_t> bytes = gradient_payloads(B, K, P, sizeof(SampleLoss));
  Exchange e{label, allgather_values(comm, std::vector<double>{bench_median(t)}), {}, 0, 1};
  double total = 0;
  for (std::size_t b : bytes) total += double(b), e.sent_max = std::max(e.sent_max, double(b));
  for (int r = 0; r < K; ++r) e.received.push_back(total - double(bytes[r]));
  return e;
}

}  // namespace

int run_bench_step_mpi(const ParsedOptions& opt) {
  Communicator& comm = world();
  const int K = comm.size(), me = comm.rank();
  const bool root = comm.is_root();
  const ParticleSystem sys = particle_system(parse_system(opt, has_energy).name);
  const Runtime rt = parse_runtime(opt);
  const std::string format = opt.choice("format", {"table", "json"});
  const int B = opt.integer("batch"), repeats = std::max(1, opt.integer("repeats"));
  const int exchange_repeats = std::max(1, opt.integer("exchange-repeats"));
  const long extra_P = opt.integer("exchange-parameters");
  const GradientMode gradient = parse_gradient_mode(opt.choice("gradient", {"adjoint", "discrete"}));

  // Threads per rank: --threads, or (0) this host's cores shared among its ranks.
  const std::vector<std::string> hosts = host_names(comm);
  const int on_my_host = int(std::count(hosts.begin(), hosts.end(), hosts[me]));
  const int cores = std::max(1, int(std::thread::hardware_concurrency()));
  const int threads = rt.threads > 0 ? rt.threads : std::max(1, cores / on_my_host);
  std::vector<std::string> distinct = hosts;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  // Checked on every rank, said by rank 0: a job with more threads than cores
  // on some host, or a rank bound to fewer CPUs than its threads.
  const bool over = comm.any(on_my_host * threads > cores);
  const bool bound = comm.any(allowed_cpus() < threads);
  const double load = load_average();  // before the job's own work starts

  const SplitSpec train_split = shipped_split(sys, "train");
  const Structures train = load_structures(train_split.path, sys, train_split.first, 1000);
  const int S = sys.n * sys.dim;
  const FieldConfig field = bench_field_config(sys.dim);
  const CnfOptions cnf = bench_cnf_options(gradient);
  Parameters<double> init(field_layout(field));
  Rng rng(rt.seed);
  initialize_egnn(field.egnn(), init, rng);  // as enf bench step: the same weights and batches
  BatchStream batches(train, S, B, rng.split(1));
  Trainer<float> dist(field, cnf, AdamWOptions{}, init, threads);
  dist.set_communicator(comm);
  std::unique_ptr<Trainer<float>> ref;
  if (K > 1 && root) ref = std::make_unique<Trainer<float>>(field, cnf, AdamWOptions{}, init, threads);
  const std::size_t P = dist.params().values.size();
  const int G = std::min(B, kGradientGroups);
  if (root)
    std::fprintf(stderr, "enf bench step --mpi: %s, batch %d, %d rank%s x %d thread%s on %zu host%s, P = %zu, G = %d%s\n",
                 sys.name.c_str(), B, K, K > 1 ? "s" : "", threads, threads > 1 ? "s" : "", distinct.size(),
                 distinct.size() > 1 ? "s" : "", P, G, over ? " (OVERSUBSCRIBED: more threads than cores)" : "");
  if (root && load > cores - on_my_host * threads + 0.5)
    std::fprintf(stderr, "  warning: load average %.2f on %d cores before the run: other work competes with the ranks, "
                         "and waiting ranks poll (spin), so the K = 1 reference runs slow\n", load, cores);
  if (root && bound)
    std::fprintf(stderr, "  warning: a rank may run on fewer CPUs than its %d threads (mpirun binds ranks to cores: "
                         "add --bind-to none or --map-by slot:PE=%d)\n", threads, threads);

  std::uint64_t step_seed = rt.seed * 1000003 + 17;
  FlowMatchingOptions fm;
  fm.coupling = Coupling::Independent;  // cheap: the exchange weighs most against its compute
  auto run_series = [&](const std::string& label, bool matching) {
    Series s;
    s.label = label;
    auto one = [&](Trainer<float>& t, const std::vector<double>& x, std::uint64_t seed) {
      return matching ? t.step_flow_matching(fm, x, B, sys.n, seed) : t.step(x, B, sys.n, seed);
    };
    for (int k = -1; k < repeats; ++k) {  // k = -1: the warm-up (sizes the workspaces)
      const std::vector<double> x = batches.next();
      const std::uint64_t seed = step_seed++;
      StepReport r1;
      if (ref) r1 = one(*ref, x, seed);
      comm.any(false);  // the others waited here: the distributed step starts together
      const StepReport rk = one(dist, x, seed);
      if (ref && r1.loss != rk.loss) s.identical = false;
      if (k < 0) continue;
      if (ref) {
        s.reference.push_back(r1.seconds_total);
        s.reference_busy.push_back(r1.shards.busy.empty() ? 0 : r1.shards.busy[0]);
      }
      s.total.push_back(rk.seconds_total);
      s.before_optimizer.push_back(rk.seconds_forward + rk.seconds_backward);
      s.optimizer.push_back(rk.seconds_optimizer);
      s.busy.push_back(rk.shards.busy);
      s.wait.push_back(rk.shards.wait);
      const auto [lo, hi] = std::minmax_element(rk.shards.busy.begin(), rk.shards.busy.end());
      s.imbalance.push_back(*hi - *lo);
      s.exchange.push_back(rk.shards.wait - (*hi - rk.shards.busy[std::size_t(me)]));
      s.nfe_forward += double(rk.nfe_forward) / B / repeats;
      s.nfe_backward += double(rk.nfe_backward) / B / repeats;
      s.loss = rk.loss;
    }
    if (root) std::fprintf(stderr, "  %-34s K = %d: %.4f s per step\n", label.c_str(), K, bench_median(s.total));
    return s;
  };
  const auto t_start = Clock::now();
  std::vector<Series> series;
  series.push_back(run_series("maximum likelihood", false));
  series.push_back(run_series("flow matching, independent", true));
  // Rank 0 holds the reference; every rank exits alike (1: the promise broken).
  const bool weights_identical = comm.broadcast_value<bool>(
      !ref || std::memcmp(ref->params().values.data(), dist.params().values.data(), P * sizeof(double)) == 0);
  // Every rank's median wait, for rank 0's report.
  std::vector<std::vector<double>> waits;
  for (const Series& s : series) waits.push_back(allgather_values(comm, std::vector<double>{bench_median(s.wait)}));

  // The exchange alone (nothing to exchange with one rank).
  std::vector<Exchange> exchanges;
  if (K > 1) {
    const std::size_t record = sizeof(SampleLoss);
    exchanges.push_back(time_gradient_sum(comm, "gradient: the step's exchange path, no compute", B, P,
                                          exchange_repeats));
    exchanges.push_back(time_exchange(comm, "gradient: allgather of G x P doubles", gradient_payloads(B, K, P, record),
                                      exchange_repeats));
    exchanges.push_back(time_exchange(comm, "ring allreduce of P doubles (2 x allgather of P/K)",
                                      allreduce_half_payloads(K, P), exchange_repeats, 2));
    exchanges.push_back(time_exchange(comm, "latency: allgather of 1 byte", std::vector<std::size_t>(K, 1),
                                      exchange_repeats));
    if (extra_P > 0) {
      const std::size_t Q = std::size_t(extra_P);
      exchanges.push_back(time_gradient_sum(comm, "gradient, P = " + std::to_string(Q) + ": the step's exchange path",
                                            B, Q, exchange_repeats));
      exchanges.push_back(time_exchange(comm, "gradient, P = " + std::to_string(Q) + ": allgather of G x P doubles",
                                        gradient_payloads(B, K, Q, record), exchange_repeats));
      exchanges.push_back(time_exchange(comm, "ring allreduce of P = " + std::to_string(Q) + " doubles",
                                        allreduce_half_payloads(K, Q), exchange_repeats, 2));
    }
  }
  const int code = weights_identical ? 0 : 1;
  if (!root) return code;
  std::fprintf(stderr, "  (%.1f s)\n", since(t_start));

  nlohmann::json j{{"system", sys.name},   {"batch", B},          {"ranks", K},
                   {"threads_per_rank", threads}, {"hosts", distinct.size()}, {"oversubscribed", over}, {"load_average", load},
                   {"parameters", P},      {"groups", G},         {"gradient", to_string(gradient)},
                   {"repeats", repeats},   {"weights_identical_to_one_process", weights_identical},
                   {"exchange_bytes_total", double(G) * double(P) * 8}};
  for (std::size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    nlohmann::json o{{"objective", s.label},
                     {"seconds", bench_median(s.total)},
                     {"gradient_seconds", bench_median(s.before_optimizer)},
                     {"optimizer_seconds", bench_median(s.optimizer)},
                     {"busy_seconds_per_rank", median_per_rank(s.busy, K)},
                     {"wait_seconds_per_rank", waits[i]},
                     {"imbalance_seconds", bench_median(s.imbalance)},
                     {"exchange_seconds_in_step", bench_median(s.exchange)},
                     {"nfe_forward_per_sample", s.nfe_forward},
                     {"nfe_backward_per_sample", s.nfe_backward},
                     {"loss", s.loss}};
    if (K > 1) {
      const double t1 = bench_median(s.reference), tk = bench_median(s.total);
      o["reference_seconds"] = t1;
      o["reference_busy_seconds"] = bench_median(s.reference_busy);
      o["speedup"] = t1 / tk;
      o["efficiency"] = t1 / (K * tk);
      o["losses_identical"] = s.identical;
    }
    j["steps"].push_back(o);
  }
  for (const Exchange& e : exchanges) {
    const double worst = *std::max_element(e.seconds.begin(), e.seconds.end()) * e.scale;
    const double received = *std::max_element(e.received.begin(), e.received.end()) * e.scale;
    j["exchanges"].push_back({{"what", e.label},
                              {"seconds", worst},
                              {"seconds_per_rank", e.seconds},
                              {"bytes_sent_max", e.sent_max * e.scale},
                              {"bytes_received_max", received},
                              {"gigabytes_per_second", received / worst / 1e9}});
  }
  if (format == "json") {
    std::puts(j.dump(2).c_str());
    return code;
  }
  auto list = [](const std::vector<double>& v, const char* f) {
    std::string out;
    for (double x : v) {
      char b[32];
      std::snprintf(b, sizeof b, f, x);
      out += (out.empty() ? "" : " / ") + std::string(b);
    }
    return out;
  };
  std::printf("%s, batch %d: %d rank%s x %d thread%s on %zu host%s; P = %zu parameters, G = %d groups; "
              "load average %.2f before%s\n\n",
              sys.name.c_str(), B, K, K > 1 ? "s" : "", threads, threads > 1 ? "s" : "", distinct.size(),
              distinct.size() > 1 ? "s" : "", P, G, load, over ? "; OVERSUBSCRIBED (not a scaling measurement)" : "");
  std::printf("| step (median of %d) | K = 1: s | K = %d: s | speed-up | efficiency | busy per rank, s | "
              "exchange wait per rank, s | imbalance, s | exchange in step, s | NFE fwd + bwd |\n"
              "|---|---:|---:|---:|---:|---|---|---:|---:|---:|\n", repeats, K);
  for (std::size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    const double tk = bench_median(s.total), t1 = K > 1 ? bench_median(s.reference) : tk;
    std::printf("| %s | %.4f | %.4f | %.2f | %.0f%% | %s | %s | %.4f | %.4f | %.1f + %.1f |\n", s.label.c_str(), t1, tk,
                t1 / tk, 100 * t1 / (K * tk), list(median_per_rank(s.busy, K), "%.4f").c_str(),
                list(waits[i], "%.4f").c_str(), bench_median(s.imbalance), bench_median(s.exchange), s.nfe_forward,
                s.nfe_backward);
  }
  if (K > 1)
    std::printf("\nWeights after %d steps %s those of one process, bit for bit.\n", 2 * (repeats + 1),
                weights_identical ? "are" : "are NOT");
  if (!exchanges.empty()) {
    std::printf("\n| exchange, K = %d (median of %d, slowest rank) | MB sent (max) | MB received (max) | ms | GB/s |\n"
                "|---|---:|---:|---:|---:|\n", K, exchange_repeats);
    for (const auto& e : j["exchanges"])
      std::printf("| %s | %.3f | %.3f | %.3f | %.2f |\n", e["what"].get<std::string>().c_str(),
                  e["bytes_sent_max"].get<double>() / 1e6, e["bytes_received_max"].get<double>() / 1e6,
                  1e3 * e["seconds"].get<double>(), e["gigabytes_per_second"].get<double>());
  }
  return code;
}

}  // namespace enf::cli
