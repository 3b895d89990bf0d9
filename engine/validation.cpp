#include "engine/validation.hpp"

#include <cmath>
#include <limits>

#include "engine/flow.hpp"
#include "engine/statistics.hpp"

namespace enf {

Validation particle_validation(const FieldConfig& field, const Parameters<double>& params,
                               const std::vector<double>& x, int rows, int n, int threads, std::uint64_t seed,
                               const ValidationStop& stop, TraceEstimator trace, Communicator& comm) {
  VectorField<double> f64(field, params.layout);
  Cnf<VectorField<double>> c64(f64, validation_cnf_options(trace));
  BatchFlow<VectorField<double>> flow(c64, threads);
  const Shard mine = my_shard(comm, rows);
  const std::size_t S = x.size() / std::size_t(rows);
  std::vector<double> part(x.begin() + std::ptrdiff_t(mine.begin * S), x.begin() + std::ptrdiff_t(mine.end * S));
  std::vector<double> nll(mine.size());
  const int done = mine.size() == 0 ? 0
                                    : flow.log_likelihood_each(params.values.data(), std::move(part), mine.size(), n,
                                                               seed, stop, [&](int b, ForwardResult&& r) { nll[b] = -r.log_px; },
                                                               std::uint64_t(mine.begin));
  if (comm.any(done < mine.size())) return Validation{0, 0, nlohmann::json::object(), true};
  nll = allgather_values(comm, nll);
  const MeanError m = mean_standard_error(nll);
  return Validation{m.mean, m.error};
}

Validation molecule_validation(const FieldConfig& field, const MoleculeModelConfig& mol,
                               const Parameters<double>& params, const std::vector<MoleculeInput>& val, int threads,
                               std::uint64_t seed, const ValidationStop& stop, Communicator& comm) {
  MoleculeFlow<double> f64(field, mol, validation_cnf_options(TraceEstimator::Gaussian));
  MoleculeBatch<double> batch(f64, threads);
  batch.integrate_impossible_sizes(true);  // their NLL given N counts in nll_given_n
  const Shard mine = my_shard(comm, int(val.size()));
  const std::vector<MoleculeInput> part(val.begin() + mine.begin, val.begin() + mine.end);
  std::vector<MoleculeScore> scores(part.size());
  const int done = part.empty() ? 0
                                : batch.score_each(params.values.data(), part, 1, seed, stop,
                                                   [&](int b, MoleculeScore&& s) { scores[b] = std::move(s); },
                                                   std::uint64_t(mine.begin));
  if (comm.any(done < mine.size())) return Validation{0, 0, nlohmann::json::object(), true};
  // −log p(x, h | N) of every molecule and −log p(x, h, N) (NaN where p(N) = 0).
  struct Terms {
    double given_n, nll;
  };
  std::vector<Terms> terms;
  for (const auto& s : scores) {
    const MoleculeLikelihood& L = s.first;  // the only draw
    terms.push_back({-(L.log_pz_x + L.log_pz_h + L.delta_logp_total - L.dequantizer.log_q_v),
                     std::isfinite(L.log_pN) ? L.nll() : std::numeric_limits<double>::quiet_NaN()});
  }
  std::vector<double> nll, given_n;
  for (const Terms& t : allgather_values(comm, terms)) {
    given_n.push_back(t.given_n);
    if (!std::isnan(t.nll)) nll.push_back(t.nll);
  }
  const MeanError n = mean_standard_error(given_n);
  Validation v;
  v.extra = {{"nll_given_n", n.mean}, {"molecules", nll.size()}, {"excluded", given_n.size() - nll.size()}};
  if (nll.empty()) {
    v.nll = n.mean;
    v.standard_error = n.error;
    v.extra["nll"] = nullptr;
    return v;
  }
  const MeanError m = mean_standard_error(nll);
  v.nll = m.mean;
  v.standard_error = m.error;
  return v;
}

}  // namespace enf
