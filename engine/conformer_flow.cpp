// ConformerFlow (conformer_flow.hpp): a conditional CNF solved molecule by
// molecule, each with its own steps, its conditioning on the thread's workspace.
#include "engine/conformer_flow.hpp"

#include <stdexcept>
#include <type_traits>
#include <utility>

#include "engine/flow.hpp"

namespace enf {

ConformerCondition conformer_condition(const MolecularGraph& g) {
  ConformerCondition c;
  c.name = g.name();
  c.n = g.atoms();
  c.node = node_condition_features(g);
  c.edge = edge_condition_features(g);
  return c;
}

FieldConfig conformer_field_config(int hidden, int layers) {
  FieldConfig f;
  f.dim = 3;
  f.features = 0;
  f.hidden = hidden;
  f.layers = layers;
  f.condition_time = true;
  f.node_condition = kNodeConditionFeatures;
  f.edge_condition = kEdgeConditionFeatures;
  return f;
}

FlowMatchingBatch conformer_flow_matching_batch(const FlowMatchingOptions& o, std::vector<std::vector<double>> x0,
                                                Rng& rng) {
  if (o.coupling != Coupling::Independent)
    throw std::invalid_argument("conformer flow matching takes the independent coupling only (" + to_string(o.coupling) +
                                " pairs data with prior draws of other molecules)");
  for (auto& x : x0) {
    if (x.empty() || x.size() % 3 != 0) throw std::invalid_argument("conformer flow matching: a state is not n × 3");
    remove_centre_of_mass(x, 1, int(x.size() / 3), 3, 3);
  }
  return make_flow_matching_batch(o, x0, 3, 3, rng);
}

template <class T>
ConformerFlow<T>::ConformerFlow(const Field& field, CnfOptions options, int threads)
    : field_(field), cnf_(field, std::move(options)), batch_(threads) {
  if (field.config().node_condition != kNodeConditionFeatures ||
      field.config().edge_condition != kEdgeConditionFeatures || field.config().features != 0 ||
      field.config().dim != 3)
    throw std::invalid_argument("a conformer flow needs a 3-D positions-only field conditioned on " +
                                std::to_string(kNodeConditionFeatures) + " node and " +
                                std::to_string(kEdgeConditionFeatures) + " edge features");
}

template <class T>
void ConformerFlow<T>::condition(const ConformerCondition& c, FieldWorkspace<T>& ws) const {
  if (int(c.node.size()) != c.n * kNodeConditionFeatures ||
      c.edge.size() != std::size_t(c.n) * (c.n - 1) * kEdgeConditionFeatures)
    throw std::invalid_argument(c.name + ": conditioning of the wrong size");
  if constexpr (std::is_same_v<T, double>) {
    field_.set_condition(ws, c.n, c.node.data(), c.edge.data());
  } else {
    const std::vector<T> node(c.node.begin(), c.node.end()), edge(c.edge.begin(), c.edge.end());
    field_.set_condition(ws, c.n, node.data(), edge.data());
  }
}

template <class T>
void ConformerFlow<T>::prepare(const ConformerCondition& c, const std::vector<double>& x, std::uint64_t seed,
                               std::uint64_t index, Scratch& s, std::vector<double>& xc,
                               std::vector<double>& eps) const {
  if (x.size() != std::size_t(c.n) * 3)
    throw std::invalid_argument(c.name + ": " + std::to_string(x.size()) + " coordinates for " + std::to_string(c.n) +
                                " atoms");
  condition(c, s.ws);
  xc = x;
  remove_centre_of_mass(xc, 1, c.n, 3, 3);
  eps = draw_noise(cnf_.options(), c.n * 3, seed, index);
}

template <class T>
BatchLoss ConformerFlow<T>::loss_and_gradient(const T* params, const std::vector<const ConformerCondition*>& conditions,
                                              const std::vector<std::vector<double>>& x, std::uint64_t seed,
                                              double* grad) {
  const int B = int(x.size());
  if (conditions.size() != x.size() || B < 1)
    throw std::invalid_argument("conformer loss: one condition per structure, at least one structure");
  // A molecule's cost grows with its edges: atoms² (as MoleculeBatch's).
  std::vector<double> cost(B);
  for (int b = 0; b < B; ++b) cost[b] = double(conditions[b]->n) * conditions[b]->n;
  return batch_.loss_and_gradient(B, field_.parameter_count(), cost, grad, [&](int b, Scratch& s, double* acc) {
    const ConformerCondition& c = *conditions[b];
    std::vector<double> xb, eps;
    prepare(c, x[b], seed, std::uint64_t(b), s, xb, eps);
    return sample_gradient(cnf_, params, xb, c.n, eps, B, s, acc, c.name);
  });
}

template <class T>
int ConformerFlow<T>::log_likelihood_each(const T* params, const std::vector<const ConformerCondition*>& conditions,
                                          const std::vector<std::vector<double>>& x, std::uint64_t seed,
                                          const std::function<bool()>& stop,
                                          const std::function<void(int, ForwardResult&&)>& done, std::uint64_t first) {
  if (conditions.size() != x.size()) throw std::invalid_argument("conformer log-likelihood: one condition per structure");
  return batch_.each(int(x.size()), stop, [&](int i, Scratch& s) {
    const ConformerCondition& c = *conditions[i];
    std::vector<double> xi, eps;
    prepare(c, x[i], seed, first + std::uint64_t(i), s, xi, eps);
    ForwardResult r = cnf_.forward(params, xi, c.n, eps, s);
    if (!r.solve.ok()) throw std::runtime_error(c.name + ": " + r.solve.message);
    return r;
  }, done);
}

template <class T>
std::vector<std::vector<double>> ConformerFlow<T>::sample(const T* params, const ConformerCondition& c, int K,
                                                          std::uint64_t seed, long* nfe, std::uint64_t first) {
  std::vector<std::vector<double>> out(K);
  std::vector<long> evaluations(K, 0);
  batch_.for_each(K, [&](int k, Scratch& s) {
    condition(c, s.ws);
    Rng rng = Rng(seed).split(first + std::uint64_t(k));
    std::vector<double> z(std::size_t(c.n) * 3);
    for (double& v : z) v = rng.normal();
    remove_centre_of_mass(z, 1, c.n, 3, 3);
    const ode::SolveResult r = cnf_.reverse(params, z, c.n, s);
    if (!r.ok()) throw std::runtime_error(c.name + ", conformer " + std::to_string(first + k) + ": " + r.message);
    evaluations[k] = r.stats.nfe;
    out[k] = std::move(z);
  });
  if (nfe)
    for (long e : evaluations) *nfe += e;
  return out;
}

template class ConformerFlow<float>;
template class ConformerFlow<double>;

}  // namespace enf
