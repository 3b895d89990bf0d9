// The conformer model (issue 15): a CNF over the atom positions of one given
// molecule, its EGNN field conditioned on the molecule's graph — element and
// formal charge per atom, bond order and 1-2/1-3/1-4 relation per pair
// (datasets/molecular_graph.hpp) — which is fixed, not flowed. Prior:
// isotropic N(0, I) on the centre-of-mass-free positions ((n − 1)·3 degrees
// of freedom), as the particle flows. So log p(x | graph) is exact (the
// same Cnf, exact trace or Hutchinson), equivariant in x and invariant to the
// atom order (permuting atoms permutes their conditioning with them).
//
// Training: flow matching (engine/flow_matching.hpp) with each molecule's
// conditioning put on the objective's workspace before its state is
// evaluated; a molecule's data is paired with a prior draw of its own
// (independent coupling: an OT assignment across the batch would pair it
// with draws chosen for other molecules, and p(x1 | graph) would no longer
// be N(0, I)). Or maximum likelihood (loss_and_gradient): the mean of
// −log p(x | graph) that log_likelihood_each computes, with the same noise,
// differentiated by the particle flows' Cnf::gradient (adjoint or discrete).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "datasets/molecular_graph.hpp"
#include "engine/cnf.hpp"
#include "engine/flow.hpp"
#include "engine/flow_matching.hpp"
#include "engine/rng.hpp"
#include "engine/sample_batch.hpp"

namespace enf {

// A molecule's conditioning as the field takes it.
struct ConformerCondition {
  std::string name;
  int n = 0;
  std::vector<double> node;  // [n, kNodeConditionFeatures]
  std::vector<double> edge;  // [n(n − 1), kEdgeConditionFeatures], the field's edge order
};
ConformerCondition conformer_condition(const MolecularGraph& g);

// The field of a conformer model: 3-D positions only, time as a node
// feature, the graph's node and edge features as conditioning.
FieldConfig conformer_field_config(int hidden, int layers);

// The batch's regression problem (engine/flow_matching.hpp's form, C = D = 3):
// x0[b] the positions of molecule b (centred here). Only the independent
// coupling: the OT couplings pair states across the batch, i.e. across
// molecules (std::invalid_argument names it).
FlowMatchingBatch conformer_flow_matching_batch(const FlowMatchingOptions& o, std::vector<std::vector<double>> x0,
                                                Rng& rng);

template <class T>
class ConformerFlow {
 public:
  using Field = VectorField<T>;
  ConformerFlow(const Field& field, CnfOptions options, int threads = 0);
  const Cnf<Field>& cnf() const { return cnf_; }
  int threads() const { return batch_.threads(); }

  // log p(x_i | graph_i) of each structure (x_i: [n_i, 3] Å, any centre), in
  // parallel, each alone with its own steps; done(i, result) from one thread
  // at a time, in any order; stop() asked before each starts. Structure i
  // draws its Hutchinson noise from Rng(seed).split(first + i).
  int log_likelihood_each(const T* params, const std::vector<const ConformerCondition*>& conditions,
                          const std::vector<std::vector<double>>& x, std::uint64_t seed,
                          const std::function<bool()>& stop,
                          const std::function<void(int, ForwardResult&&)>& done, std::uint64_t first = 0);

  // K conformers ([n, 3] each) of one molecule: conformer k from the prior
  // draw of Rng(seed).split(first + k), integrated from t = 1 to 0.
  std::vector<std::vector<double>> sample(const T* params, const ConformerCondition& c, int K, std::uint64_t seed,
                                          long* nfe = nullptr, std::uint64_t first = 0);

  // Mean over the batch of −log p(x_b | graph_b) (+ λ(K + R) when the CNF
  // options regularize) and its parameter gradient, added to grad, by the
  // CNF's gradient mode. Molecule b's noise is log_likelihood_each's with the
  // same seed (first = 0), so the loss is the mean of what that reports and
  // the gradient is that estimator's. Summed in a fixed order: the same bits
  // for any thread count; shared with the ranks of set_communicator.
  BatchLoss loss_and_gradient(const T* params, const std::vector<const ConformerCondition*>& conditions,
                              const std::vector<std::vector<double>>& x, std::uint64_t seed, double* grad);
  // The ranks loss_and_gradient shares its molecules with (single_process()
  // by default), balanced by their cost (atoms²).
  void set_communicator(Communicator& comm) { batch_.set_communicator(comm); }

  // Puts molecule c on ws (the objective's prepare hook; the solves' too).
  void condition(const ConformerCondition& c, FieldWorkspace<T>& ws) const;

 private:
  using Scratch = typename Cnf<Field>::Scratch;
  const Field& field_;
  Cnf<Field> cnf_;
  SampleBatch<Scratch> batch_;

  // Structure `index` of a job (its noise) as a solve takes it: c on s.ws,
  // x checked and centred into xc, ε into eps (empty without noise). One
  // place, so that scoring and training see the same estimator.
  void prepare(const ConformerCondition& c, const std::vector<double>& x, std::uint64_t seed, std::uint64_t index,
               Scratch& s, std::vector<double>& xc, std::vector<double>& eps) const;
};

extern template class ConformerFlow<float>;
extern template class ConformerFlow<double>;

}  // namespace enf
