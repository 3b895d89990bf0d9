// BatchFlow (flow.hpp): samples in parallel, each with its own steps and noise.
#include "engine/flow.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

namespace enf {

void remove_centre_of_mass(std::vector<double>& x, int B, int n, int dim, int channels) {
  for (int b = 0; b < B; ++b)
    for (int d = 0; d < dim; ++d) {
      double m = 0;
      for (int i = 0; i < n; ++i) m += x[(std::size_t(b) * n + i) * channels + d];
      m /= n;
      for (int i = 0; i < n; ++i) x[(std::size_t(b) * n + i) * channels + d] -= m;
    }
}

std::vector<double> draw_noise(TraceEstimator trace, int size, Rng& rng) {
  std::vector<double> e(size);
  for (double& v : e) v = trace == TraceEstimator::Gaussian ? rng.normal() : rng.rademacher();
  return e;
}

std::vector<double> draw_noise(const CnfOptions& o, int size, std::uint64_t seed, std::uint64_t index) {
  Rng rng = Rng(seed).split(index);
  return o.needs_noise() ? draw_noise(o.trace, size, rng) : std::vector<double>{};
}

template <class Field>
SampleLoss sample_gradient(const Cnf<Field>& cnf, const typename Field::Scalar* params, const std::vector<double>& x,
                           int n, const std::vector<double>& eps, int B, typename Cnf<Field>::Scratch& s, double* acc,
                           const std::string& what) {
  const AdjointResult r = cnf.gradient(params, x, n, eps, 1.0 / B, s, acc);
  if (!r.forward.solve.ok()) throw std::runtime_error(what + ": " + r.forward.solve.message);
  if (!r.backward.ok())
    throw std::runtime_error(what + " (" + to_string(cnf.options().gradient) + "): " + r.backward.message);
  return {r.loss,
          -r.forward.log_px,
          r.forward.kinetic + r.forward.frobenius,
          r.forward.solve.stats.nfe,
          r.backward.stats.nfe,
          r.seconds_forward,
          r.seconds_backward,
          r.reconstruction_error};
}

template <class Field>
std::vector<ForwardResult> BatchFlow<Field>::log_likelihood(const T* params, std::vector<double> x, int B, int n,
                                                            std::uint64_t seed) {
  std::vector<ForwardResult> out(B);
  log_likelihood_each(params, std::move(x), B, n, seed, [] { return false; },
                      [&](int b, ForwardResult&& r) { out[b] = std::move(r); });
  return out;
}

namespace {

// The local items [begin, end) of a job of B items starting at job index
// `first`, in groups of the job indices that share index / G: the groups and
// so every result's bits depend on the job, not on the threads or ranks.
std::vector<std::pair<int, int>> lockstep_groups(int B, std::uint64_t first, int group) {
  const std::uint64_t G = std::uint64_t(group);
  std::vector<std::pair<int, int>> groups;
  for (int b = 0; b < B;) {
    const std::uint64_t job = first + std::uint64_t(b);
    const int end = int(std::min<std::uint64_t>(B, b + (G - job % G)));
    groups.push_back({b, end});
    b = end;
  }
  return groups;
}

}  // namespace

template <class Field>
int BatchFlow<Field>::likelihood_group(int n) const {
  // Sampling's groups. Measured for the exact trace (enf bench score,
  // float32, 1e-7, 2 threads, random E-NF models): flat within the noise from
  // 1 to 64 structures a group (DW4 0.61–0.65 s for 1000, LJ13 3.1–3.4 s
  // for 100): its chunks of 8–16 directions already fill the products.
  return lockstep_group(n);
}

template <class Field>
int BatchFlow<Field>::log_likelihood_each(const T* params, std::vector<double> x, int B, int n, std::uint64_t seed,
                                          const std::function<bool()>& stop,
                                          const std::function<void(int, ForwardResult&&)>& done, std::uint64_t first) {
  const int C = cnf_.field().channels(), S = n * C;
  check(x, B, n, first);
  remove_centre_of_mass(x, B, n, cnf_.field().dim(), C);
  const std::vector<std::pair<int, int>> groups = lockstep_groups(B, first, likelihood_group(n));
  int finished = 0;
  batch_.each(
      int(groups.size()), stop,
      [&](int g, Scratch& s) {
        const auto [begin, end] = groups[g];
        std::vector<std::vector<double>> xs, eps;
        for (int b = begin; b < end; ++b) {
          xs.emplace_back(x.begin() + std::size_t(b) * S, x.begin() + std::size_t(b + 1) * S);
          eps.push_back(draw_noise(cnf_.options(), S, seed, first + b));
        }
        std::vector<ForwardResult> r = cnf_.forward_lockstep(params, xs, n, eps, s);
        for (int k = 0; k < end - begin; ++k)
          if (!r[k].solve.ok())
            throw std::runtime_error("sample " + std::to_string(first + begin + k) + ": " + r[k].solve.message);
        return r;
      },
      [&](int g, std::vector<ForwardResult>&& r) {
        for (int k = 0; k < int(r.size()); ++k, ++finished) done(groups[g].first + k, std::move(r[k]));
      });
  return finished;
}

template <class Field>
std::vector<ForwardResult> BatchFlow<Field>::log_likelihood_alone(const T* params, std::vector<double> x, int B, int n,
                                                                  std::uint64_t seed, std::uint64_t first) {
  const int C = cnf_.field().channels(), S = n * C;
  check(x, B, n, first);
  remove_centre_of_mass(x, B, n, cnf_.field().dim(), C);
  std::vector<ForwardResult> out(B);
  batch_.for_each(B, [&](int b, Scratch& s) {
    std::vector<double> xb(x.begin() + std::size_t(b) * S, x.begin() + std::size_t(b + 1) * S);
    out[b] = cnf_.forward(params, xb, n, draw_noise(cnf_.options(), S, seed, first + b), s);
    if (!out[b].solve.ok()) throw std::runtime_error("sample " + std::to_string(first + b) + ": " + out[b].solve.message);
  });
  return out;
}

namespace {

// Sample `index` of a job: its prior draw, centre-of-mass free.
std::vector<double> prior_draw(std::uint64_t seed, std::uint64_t index, int n, int dim, int channels) {
  Rng rng = Rng(seed).split(index);
  std::vector<double> z(std::size_t(n) * channels);
  for (double& v : z) v = rng.normal();
  remove_centre_of_mass(z, 1, n, dim, channels);
  return z;
}

}  // namespace

template <class Field>
std::vector<double> BatchFlow<Field>::sample(const T* params, int B, int n, std::uint64_t seed, long* nfe,
                                             std::uint64_t first) {
  const int C = cnf_.field().channels(), D = cnf_.field().dim(), S = n * C;
  std::vector<double> x(std::size_t(B) * S);
  const std::vector<std::pair<int, int>> groups = lockstep_groups(B, first, lockstep_group(n));
  std::vector<long> evaluations(groups.size(), 0);
  batch_.for_each(int(groups.size()), [&](int g, Scratch& s) {
    const auto [begin, end] = groups[g];
    std::vector<std::vector<double>> z;
    for (int b = begin; b < end; ++b) z.push_back(prior_draw(seed, first + std::uint64_t(b), n, D, C));
    const ode::BatchSolveResult r = cnf_.reverse_lockstep(params, z, n, s);
    for (int k = 0; k < end - begin; ++k) {
      if (!r.samples[k].ok())
        throw std::runtime_error("sample " + std::to_string(first + begin + k) + ": " + r.samples[k].message);
      std::copy(z[k].begin(), z[k].end(), x.begin() + std::size_t(begin + k) * S);
    }
    evaluations[g] = r.evaluations;
  });
  if (nfe) *nfe = std::accumulate(evaluations.begin(), evaluations.end(), 0L);
  return x;
}

template <class Field>
std::vector<double> BatchFlow<Field>::sample_alone(const T* params, int B, int n, std::uint64_t seed, long* nfe,
                                                   std::uint64_t first) {
  const int C = cnf_.field().channels(), D = cnf_.field().dim(), S = n * C;
  std::vector<double> x(std::size_t(B) * S);
  std::vector<long> evaluations(B, 0);
  batch_.for_each(B, [&](int b, Scratch& s) {
    std::vector<double> z = prior_draw(seed, first + std::uint64_t(b), n, D, C);
    const auto r = cnf_.reverse(params, z, n, s);
    if (!r.ok()) throw std::runtime_error("sample " + std::to_string(first + b) + ": " + r.message);
    evaluations[b] = r.stats.nfe;
    std::copy(z.begin(), z.end(), x.begin() + std::size_t(b) * S);
  });
  if (nfe) *nfe = std::accumulate(evaluations.begin(), evaluations.end(), 0L);
  return x;
}

template <class Field>
BatchLoss BatchFlow<Field>::loss_and_gradient(const T* params, std::vector<double> x, int B, int n, std::uint64_t seed,
                                              double* grad) {
  const int C = cnf_.field().channels(), S = n * C;
  check(x, B, n);
  remove_centre_of_mass(x, B, n, cnf_.field().dim(), C);
  return batch_.loss_and_gradient(B, cnf_.field().parameter_count(), {}, grad, [&](int b, Scratch& s, double* acc) {
    std::vector<double> xb(x.begin() + std::size_t(b) * S, x.begin() + std::size_t(b + 1) * S);
    const std::vector<double> eps = draw_noise(cnf_.options(), S, seed, b);
    return sample_gradient(cnf_, params, xb, n, eps, B, s, acc, "sample " + std::to_string(b));
  });
}

template <class Field>
void BatchFlow<Field>::check(const std::vector<double>& x, int B, int n, std::uint64_t first) const {
  const std::size_t want = std::size_t(B) * n * cnf_.field().channels();
  if (B < 1 || n < 2) throw std::invalid_argument("a batch needs at least one sample of at least 2 nodes");
  if (x.size() != want)
    throw std::invalid_argument("batch holds " + std::to_string(x.size()) +
                                " values, expected B·n·C = " + std::to_string(want));
  for (std::size_t k = 0; k < x.size(); ++k)
    if (!std::isfinite(x[k]))
      throw std::invalid_argument("sample " + std::to_string(first + k / (want / B)) + ": input is not finite");
}

template SampleLoss sample_gradient(const Cnf<VectorField<float>>&, const float*, const std::vector<double>&, int,
                                   const std::vector<double>&, int, Cnf<VectorField<float>>::Scratch&, double*,
                                   const std::string&);
template SampleLoss sample_gradient(const Cnf<VectorField<double>>&, const double*, const std::vector<double>&, int,
                                   const std::vector<double>&, int, Cnf<VectorField<double>>::Scratch&, double*,
                                   const std::string&);
template class BatchFlow<VectorField<float>>;
template class BatchFlow<VectorField<double>>;

}  // namespace enf
