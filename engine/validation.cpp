#include "engine/validation.hpp"

#include <cmath>

#include "engine/flow.hpp"
#include "engine/statistics.hpp"

namespace enf {

Validation particle_validation(const FieldConfig& field, const Parameters<double>& params,
                               const std::vector<double>& x, int rows, int n, int threads, std::uint64_t seed,
                               const ValidationStop& stop, TraceEstimator trace) {
  VectorField<double> f64(field, params.layout);
  Cnf<VectorField<double>> c64(f64, validation_cnf_options(trace));
  BatchFlow<VectorField<double>> flow(c64, threads);
  std::vector<double> nll(rows);
  const int done = flow.log_likelihood_each(params.values.data(), x, rows, n, seed, stop,
                                            [&](int b, ForwardResult&& r) { nll[b] = -r.log_px; });
  if (done < rows) return Validation{0, 0, nlohmann::json::object(), true};
  const MeanError m = mean_standard_error(nll);
  return Validation{m.mean, m.error};
}

Validation molecule_validation(const FieldConfig& field, const MoleculeModelConfig& mol,
                               const Parameters<double>& params, const std::vector<MoleculeInput>& val, int threads,
                               std::uint64_t seed, const ValidationStop& stop) {
  MoleculeFlow<double> f64(field, mol, validation_cnf_options(TraceEstimator::Gaussian));
  MoleculeBatch<double> batch(f64, threads);
  batch.integrate_impossible_sizes(true);  // their NLL given N counts in nll_given_n
  std::vector<MoleculeScore> scores(val.size());
  const int done = batch.score_each(params.values.data(), val, 1, seed, stop,
                                    [&](int b, MoleculeScore&& s) { scores[b] = std::move(s); });
  if (done < int(val.size())) return Validation{0, 0, nlohmann::json::object(), true};
  // −log p(x, h, N) where p(N) > 0, and −log p(x, h | N) of every molecule.
  std::vector<double> nll, given_n;
  for (const auto& s : scores) {
    const MoleculeLikelihood& L = s.first;  // the only draw
    given_n.push_back(-(L.log_pz_x + L.log_pz_h + L.delta_logp_total - L.dequantizer.log_q_v));
    if (std::isfinite(L.log_pN)) nll.push_back(L.nll());
  }
  const MeanError n = mean_standard_error(given_n);
  Validation v;
  v.extra = {{"nll_given_n", n.mean}, {"molecules", nll.size()}, {"excluded", scores.size() - nll.size()}};
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
