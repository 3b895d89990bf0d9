#include "engine/mcmc.hpp"

#include "datasets/systems.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <stdexcept>

#include "egnn/parallel.hpp"
#include "engine/rng.hpp"

namespace enf {

namespace {

constexpr long long kReportEvery = 1024;  // steps between a chain's progress updates

void remove_mean(double* x, int n, int D) {
  for (int d = 0; d < D; ++d) {
    double m = 0;
    for (int i = 0; i < n; ++i) m += x[i * D + d];
    m /= n;
    for (int i = 0; i < n; ++i) x[i * D + d] -= m;
  }
}

// Random sequential placement in a ball with a minimum separation: a Gaussian
// start would put LJ13 pairs at d ≪ r_m with energies ~1e20, from which a
// random walk needs most of its burn-in just to descend. The radius is loose
// enough (packing fraction < 0.2) that placement never jams; burn-in then
// forgets this start.
std::vector<double> initial_structure(const ParticleSystem& sys, Rng& rng) {
  const SystemInfo* info = find_system(sys.name);
  const bool lj = info && info->energy == SystemEnergy::LennardJones;
  // LJ: 1.8 for 13 particles, grown with the volume (n^(1/3)) for larger clusters.
  double radius = lj ? 1.8 * std::cbrt(sys.n / 13.0) : 3.0;
  const double min_d = lj ? 0.85 : 1.0;
  const int n = sys.n, D = sys.dim;
  std::vector<double> x(std::size_t(n) * D);
  for (int i = 0; i < n; ++i)
    for (int attempt = 0;; ++attempt) {
      if (attempt > 0 && attempt % 1000 == 0) radius *= 1.1;
      double p[3] = {0, 0, 0}, r2 = 0;
      do {  // uniform in the ball by rejection from its cube
        r2 = 0;
        for (int d = 0; d < D; ++d) {
          p[d] = rng.uniform(-radius, radius);
          r2 += p[d] * p[d];
        }
      } while (r2 > radius * radius);
      bool ok = true;
      for (int j = 0; j < i && ok; ++j) {
        double d2 = 0;
        for (int d = 0; d < D; ++d) d2 += (p[d] - x[j * D + d]) * (p[d] - x[j * D + d]);
        ok = d2 >= min_d * min_d;
      }
      if (!ok) continue;
      for (int d = 0; d < D; ++d) x[i * D + d] = p[d];
      break;
    }
  remove_mean(x.data(), n, D);
  return x;
}

}  // namespace

McmcMoves mcmc_moves(const std::string& name) {
  if (name == "all") return McmcMoves::All;
  if (name == "single") return McmcMoves::SingleParticle;
  throw std::invalid_argument("unknown MCMC moves '" + name + "' (use all or single)");
}

const char* to_string(McmcMoves m) { return m == McmcMoves::All ? "all" : "single"; }

double default_target_acceptance(McmcMoves m) { return m == McmcMoves::All ? 0.5 : 0.25; }

std::string McmcOptions::validate() const {
  auto bad = [](const std::string& what, const std::string& value, const std::string& need) {
    return what + " = " + value + ": " + need;
  };
  if (samples < 1) return bad("samples", std::to_string(samples), "must be at least 1");
  if (chains < 1) return bad("chains", std::to_string(chains), "must be at least 1");
  if (chains > samples)
    return bad("chains", std::to_string(chains),
               "exceeds samples (" + std::to_string(samples) + "); every chain must keep at least one sample");
  if (burn_in < 0) return bad("burn_in", std::to_string(burn_in), "must be 0 or more steps");
  if (thin < 1) return bad("thin", std::to_string(thin), "must be at least 1 step");
  if (!(target_acceptance > 0 && target_acceptance < 1))
    return bad("target_acceptance", std::to_string(target_acceptance), "must lie strictly between 0 and 1");
  if (!(initial_step > 0 && std::isfinite(initial_step)))
    return bad("initial_step", std::to_string(initial_step), "must be a positive finite number");
  if (threads < 0) return bad("threads", std::to_string(threads), "must be 0 (all cores) or more");
  return {};
}

double McmcResult::mean_acceptance() const {
  double a = 0;
  for (std::size_t c = 0; c < acceptance.size(); ++c) a += acceptance[c] * chain_rows[c];
  return rows > 0 ? a / rows : 0;
}

McmcResult sample_boltzmann(const ParticleSystem& sys, const McmcOptions& opt, const McmcProgress& progress) {
  if (const std::string msg = opt.validate(); !msg.empty()) throw std::invalid_argument("MCMC options: " + msg);
  const int n = sys.n, D = sys.dim, S = n * D;
  if (S <= 0) throw std::invalid_argument("MCMC: particle system '" + sys.name + "' has no coordinates");
  {
    // Fail here, as std::invalid_argument, for a system without an energy,
    // rather than inside the worker threads.
    const std::vector<double> probe(std::size_t(S), 0.0);
    (void)energy(sys, probe.data(), opt.lj);
  }

  McmcResult res;
  const int C = opt.chains;
  res.rows = opt.samples;
  res.x.assign(std::size_t(opt.samples) * S, 0.0);
  res.energy.assign(opt.samples, 0.0);
  res.acceptance.assign(C, 0.0);
  res.step_size.assign(C, 0.0);
  std::vector<int> first(C);
  long long total_steps = 0;
  for (int c = 0, start = 0; c < C; ++c) {
    res.chain_rows.push_back(opt.samples / C + (c < opt.samples % C ? 1 : 0));
    first[c] = start;
    start += res.chain_rows[c];
    total_steps += opt.burn_in + (long long)res.chain_rows[c] * opt.thin;
  }

  std::atomic<long long> done{0}, next_report{0};
  std::mutex report_mutex;
  auto report = [&](long long steps) {
    const long long now = done.fetch_add(steps) + steps;
    if (!progress || now < next_report.load()) return;
    std::unique_lock lock(report_mutex, std::try_to_lock);
    if (!lock.owns_lock() || now < next_report.load()) return;
    next_report = now + total_steps / 1000 + 1;
    progress(double(now) / double(total_steps));
  };

  const int threads = std::min(C, opt.threads > 0 ? opt.threads : omp_get_max_threads());
  parallel_for(C, threads, [&](int c, int) {
    Rng rng = Rng(opt.seed).split(std::uint64_t(c));
    std::vector<double> x = initial_structure(sys, rng), y(S), z(S);
    double e = energy(sys, x.data(), opt.lj);
    double sigma = opt.initial_step;
    long long pending = 0;

    // One step: all-particle moves propose every coordinate at once; single-
    // particle moves sweep the particles in order, each a Metropolis step of
    // its own (O(n) by move_energy_change), so a step is one sweep. Returns
    // the fraction of proposals accepted.
    const bool single = opt.moves == McmcMoves::SingleParticle;
    auto step = [&]() -> double {
      double accepted = 0;
      if (!single) {
        for (int k = 0; k < S; ++k) z[k] = sigma * rng.normal();
        remove_mean(z.data(), n, D);  // stay on the centre-of-mass-free subspace
        for (int k = 0; k < S; ++k) y[k] = x[k] + z[k];
        const double ey = energy(sys, y.data(), opt.lj);
        // log u < −ΔE: an infinite ey gives −inf and is never accepted.
        if (std::log(rng.uniform()) < e - ey) {
          x.swap(y);
          e = ey;
          accepted = 1;
        }
      } else {
        for (int i = 0; i < n; ++i) {
          double delta[3];
          for (int d = 0; d < D; ++d) delta[d] = sigma * rng.normal();
          const double change = move_energy_change(sys, x.data(), i, delta, opt.lj);
          if (std::log(rng.uniform()) < -change) {
            // Moving particle i by δ and every particle by −δ/n is the same
            // structure up to a translation (E is invariant), and keeps x
            // centred: the proposal is symmetric on the centred subspace.
            for (int j = 0; j < n; ++j)
              for (int d = 0; d < D; ++d) x[j * D + d] += (j == i ? delta[d] : 0.0) - delta[d] / n;
            e += change;
            accepted += 1;
          }
        }
        accepted /= n;
      }
      if (++pending == kReportEvery) {
        report(pending);
        pending = 0;
      }
      return accepted;
    };

    // Robbins–Monro on log σ with gain 2/√k at window k: early windows move σ
    // by large factors from a poor start; later ones average over the
    // configurations visited, so the frozen σ is not tuned to one well.
    double window = 0;
    for (int t = 0, k = 1; t < opt.burn_in; ++t) {
      window += step();
      if ((t + 1) % kAdaptWindow == 0) {
        sigma *= std::exp(2 / std::sqrt(double(k++)) * (window / kAdaptWindow - opt.target_acceptance));
        // Single-particle moves add ΔE at every accepted move: reset the sum
        // so rounding cannot drift.
        if (single) e = energy(sys, x.data(), opt.lj);
        window = 0;
      }
    }

    double accepted = 0;
    for (int r = 0; r < res.chain_rows[c]; ++r) {
      for (int k = 0; k < opt.thin; ++k) accepted += step();
      if (single) {
        remove_mean(x.data(), n, D);  // undo rounding drift of the δ/n shifts
        e = energy(sys, x.data(), opt.lj);
      }
      double* out = res.x.data() + std::size_t(first[c] + r) * S;
      std::copy(x.begin(), x.end(), out);
      remove_mean(out, n, D);  // undo rounding drift of the random walk
      res.energy[first[c] + r] = e;
    }
    res.acceptance[c] = accepted / (double(res.chain_rows[c]) * opt.thin);
    res.step_size[c] = sigma;
    report(pending);
  });
  if (progress) progress(1.0);

  const int shortest = *std::min_element(res.chain_rows.begin(), res.chain_rows.end());
  const int batches = std::min(20, shortest);
  res.mean_energy = C * batches >= 2 ? batch_means(res.energy, C, batches) : mean_and_error(res.energy);
  return res;
}

}  // namespace enf
