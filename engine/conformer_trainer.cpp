#include "engine/conformer_trainer.hpp"

#include <cmath>
#include <stdexcept>
#include <utility>

#include "engine/statistics.hpp"

namespace enf {

template <class T>
ConformerTrainer<T>::ConformerTrainer(const FieldConfig& field, const CnfOptions& cnf, const AdamWOptions& adam,
                                      Parameters<double> init, int threads, bool clip_gradients)
    : TrainerCore(std::move(init), adam, clip_gradients),
      field_(field, master_.layout),
      flow_(field_, cnf, threads),
      matching_(field_, flow_.threads()) {
  // State b of the batch being evaluated is molecule (*batch_conditions_)[b].
  matching_.set_prepare([this](int b, FieldWorkspace<T>& ws) { flow_.condition(*(*batch_conditions_)[b], ws); });
}

template <class T>
StepReport ConformerTrainer<T>::step_flow_matching(const FlowMatchingOptions& o,
                                                   const std::vector<const ConformerCondition*>& conditions,
                                                   const std::vector<std::vector<double>>& x, std::uint64_t seed) {
  if (conditions.size() != x.size() || x.empty())
    throw std::invalid_argument("conformer step: one condition per structure, at least one structure");
  StepReport r;
  take_step<T>(r, [&](const T* p, double* grad) {
    Rng rng(seed);
    const FlowMatchingBatch batch = conformer_flow_matching_batch(o, x, rng);
    batch_conditions_ = &conditions;
    const FlowMatchingLoss L = matching_.loss_and_gradient(p, batch, grad);
    batch_conditions_ = nullptr;
    return L;
  });
  return r;
}

template <class T>
StepReport ConformerTrainer<T>::step(const std::vector<const ConformerCondition*>& conditions,
                                     const std::vector<std::vector<double>>& x, std::uint64_t seed) {
  StepReport r;
  take_step<T>(r, [&](const T* p, double* grad) { return flow_.loss_and_gradient(p, conditions, x, seed, grad); });
  return r;
}

template class ConformerTrainer<float>;
template class ConformerTrainer<double>;

Validation conformer_validation(const FieldConfig& field, const Parameters<double>& params,
                                const std::vector<ConformerCondition>& conditions,
                                const std::vector<std::vector<double>>& x, int threads, std::uint64_t seed,
                                const std::function<bool()>& stop) {
  VectorField<double> f64(field, params.layout);
  ConformerFlow<double> flow(f64, validation_cnf_options(TraceEstimator::Gaussian), threads);
  std::vector<const ConformerCondition*> cp;
  for (const auto& c : conditions) cp.push_back(&c);
  std::vector<double> nll(x.size(), NAN);
  const int done = flow.log_likelihood_each(params.values.data(), cp, x, seed, stop,
                                            [&](int i, ForwardResult&& r) { nll[i] = -r.log_px; });
  if (done < int(x.size())) return Validation{0, 0, nlohmann::json::object(), true};
  const MeanError m = mean_standard_error(nll);
  Validation v;
  v.nll = m.mean;
  v.standard_error = m.error;
  v.extra = {{"molecules", x.size()}};
  return v;
}

}  // namespace enf
