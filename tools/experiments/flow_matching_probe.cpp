// A first measurement of flow matching (issue 14) before it is wired to
// enf train: the particle flow of enf train's defaults (H = 32, L = 3, AdamW
// at lr 5e-4) trained by Trainer::step_flow_matching on the first N_DATA
// structures of the system's training split for SECONDS of wall time, then
// scored by the exact-trace log-likelihood (dopri5, 1e-5) on the first
// N_TEST test structures — the protocol of the README's maximum-likelihood
// results, so the NLL compares with them directly.
//
//   flow_matching_probe SYSTEM SECONDS COUPLING BATCH N_DATA N_TEST THREADS SEED
//
// Built on request: cmake --build build --target flow_matching_probe.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "datasets/particles.hpp"
#include "datasets/systems.hpp"
#include "engine/flow.hpp"
#include "engine/initialization.hpp"
#include "engine/statistics.hpp"
#include "engine/trainer.hpp"

using namespace enf;

int main(int argc, char** argv) {
  if (argc != 9) {
    std::fprintf(stderr, "usage: flow_matching_probe SYSTEM SECONDS COUPLING BATCH N_DATA N_TEST THREADS SEED\n");
    return 2;
  }
  const SystemInfo& info = system_info(argv[1]);
  const double seconds = std::atof(argv[2]);
  FlowMatchingOptions fm;
  fm.coupling = parse_coupling(argv[3]);
  const int B = std::atoi(argv[4]), n_data = std::atoi(argv[5]), n_test = std::atoi(argv[6]);
  const int threads = std::atoi(argv[7]);
  const std::uint64_t seed = std::strtoull(argv[8], nullptr, 10);
  const ParticleSystem sys{info.name, info.n, info.dim};
  const Structures train = load_structures(info.train.part, sys, info.train.first, n_data);
  const Structures test = load_structures(info.test.part, sys, info.test.first, n_test);
  const int n = info.n, S = n * info.dim, rows = int(train.x.size() / S);

  FieldConfig field;
  field.dim = info.dim;
  field.hidden = 32;
  field.layers = 3;
  Parameters<double> init(field_layout(field));
  Rng init_rng(seed);
  initialize_egnn(field.egnn(), init, init_rng);
  CnfOptions cnf;
  cnf.solver.rtol = cnf.solver.atol = 1e-5;
  Trainer<float> trainer(field, cnf, AdamWOptions{}, init, threads);

  Rng order(seed + 1);
  std::vector<int> perm(rows);
  std::iota(perm.begin(), perm.end(), 0);
  const auto t0 = std::chrono::steady_clock::now();
  long step = 0;
  double recent = 0;
  std::printf("step,seconds,loss_mean_last_50\n");
  for (int epoch = 0;; ++epoch) {
    for (int i = rows - 1; i > 0; --i) std::swap(perm[i], perm[int(order.uniform() * (i + 1))]);
    bool out_of_time = false;
    for (int start = 0; start + B <= rows; start += B) {
      std::vector<double> x(std::size_t(B) * S);
      for (int b = 0; b < B; ++b)
        std::copy(train.x.begin() + std::size_t(perm[start + b]) * S, train.x.begin() + std::size_t(perm[start + b] + 1) * S,
                  x.begin() + std::size_t(b) * S);
      const StepReport r = trainer.step_flow_matching(fm, x, B, n, seed * 1000003 + step);
      recent += r.loss;
      ++step;
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (step % 50 == 0) {
        std::printf("%ld,%.1f,%.5f\n", step, el, recent / 50);
        std::fflush(stdout);
        recent = 0;
      }
      if (el > seconds) {
        out_of_time = true;
        break;
      }
    }
    if (out_of_time) break;
  }
  const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  VectorField<double> f(field, trainer.params().layout);
  Cnf<VectorField<double>> exact(f, cnf);
  BatchFlow<VectorField<double>> flow(exact, threads);
  const int T = int(test.x.size() / S);
  const auto r = flow.log_likelihood(trainer.params().values.data(), test.x, T, n, seed + 2);
  std::vector<double> nll;
  double nfe = 0;
  for (const auto& e : r) nll.push_back(-e.log_px), nfe += double(e.solve.stats.nfe) / T;
  const MeanError m = mean_standard_error(nll);
  std::fprintf(stderr, "%s %s: %ld steps (batch %d) in %.1f s; test NLL %.3f ± %.3f over %d (exact trace, 1e-5), %.0f NFE\n",
               info.name.c_str(), argv[3], step, B, train_seconds, m.mean, m.error, T, nfe);
  return 0;
}
