// Flow matching (issue 14): the CNF's vector field trained by regression,
// without solving the ODE (Lipman et al. 2023; Tong et al. 2024; equivariant
// OT couplings: Klein, Krämer and Noé 2023). The result is the same kind of
// CNF, scored by the exact log-likelihood enf already computes.
//
// Time convention: the flow's own, data at t = 0 and latent at t = 1
// (dz/dt = f(z, t), the forward solve of Cnf). For a data state x0 and a prior
// draw x1 (positions on the centre-of-mass-free subspace, features standard
// normal), coupled as the options say,
//   x_t = (1 − t)·x0 + t·x1 + σ_min·ε      (ε: the prior's kind of noise)
//   u   = x1 − x0                          (the target: d x_t / dt)
//   L   = 1/B Σ_b 1/(n·C) |f(x_t, t) − u|²
// so the regression target points from data to latent, the direction the
// forward solve integrates. The states of a batch may differ in size (QM9
// molecules: n·C values each, n the molecule's atoms); each is evaluated
// alone and weighs 1/B whatever its n. Couplings pair states of equal size
// only: minibatch and equivariant OT run the Hungarian over each group of
// equal n in the batch (an x1 of another size cannot be the partner of x0). This is the independent-coupling CFM of Tong et
// al. with constant σ = σ_min; with σ_min → 0 the marginal path is the
// straight interpolation.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "egnn/communicator.hpp"
#include "egnn/vector_field.hpp"
#include "engine/rng.hpp"
#include "engine/sample_batch.hpp"

namespace enf {

enum class Coupling {
  Independent,    // x1 drawn independently of x0
  MinibatchOT,    // the batch's x1 assigned to its x0 by exact OT on squared distances
  EquivariantOT,  // each pair first aligned (permutation + orthogonal map), then assigned
};
enum class TimeSampling { Uniform, LogitNormal };

struct FlowMatchingOptions {
  Coupling coupling = Coupling::EquivariantOT;
  TimeSampling time = TimeSampling::Uniform;
  double sigma_min = 0.01;
  double logit_mean = 0, logit_std = 1;  // logit-normal t = σ(m + s·N(0,1))
  std::string validate() const;
};

std::string to_string(Coupling c);
Coupling parse_coupling(const std::string& name);  // independent, minibatch-ot, equivariant-ot
std::string to_string(TimeSampling t);
TimeSampling parse_time_sampling(const std::string& name);  // uniform, logit-normal

// The batch's regression problem: B states x_t, their times and targets,
// concatenated; state b holds atoms[b] nodes of C channels from offset[b].
struct FlowMatchingBatch {
  int B = 0, n = 0, C = 0;  // n: the common node count (0 when the sizes differ)
  std::vector<int> atoms;
  std::vector<std::size_t> offset;  // B + 1 entries
  std::vector<double> xt, target, t;
  double transport_cost = 0;  // mean over the batch of |x1 − x0|² after coupling
};

// x0: B data states [B, n·C] (positions centred, the first D channels of
// each node); rng draws x1, t and ε. Deterministic for a given rng state,
// whatever the thread count (threads: the coupling's pairwise alignments).
FlowMatchingBatch make_flow_matching_batch(const FlowMatchingOptions& o, const std::vector<double>& x0, int B, int n,
                                           int D, int C, Rng& rng, int threads = 1);

// The same for states of any sizes (x0[b]: n_b·C values, positions centred):
// x1, ε and t are drawn in the order above (state after state), so equal
// sizes give exactly the batch of the form above.
FlowMatchingBatch make_flow_matching_batch(const FlowMatchingOptions& o, const std::vector<std::vector<double>>& x0,
                                           int D, int C, Rng& rng, int threads = 1);

// The coupling alone: x1 [B, n·C] reordered over the batch (and, for
// equivariant OT, each aligned to its x0) to pair with x0.
std::vector<double> couple(Coupling c, const std::vector<double>& x0, const std::vector<double>& x1, int B, int n,
                           int D, int C, int threads = 1);

struct FlowMatchingLoss {
  double loss = 0;  // L above
  long evaluations = 0;
  ShardTiming shards;  // where the gradient's time went, per rank
};

// L and its gradient wrt the field's parameters (added to grad, double),
// samples in parallel over `threads`, a few small states stacked into one
// evaluation; summed in a fixed order (the same bits for any thread count).
template <class T>
class FlowMatchingObjective {
 public:
  FlowMatchingObjective(const VectorField<T>& field, int threads);
  // The ranks loss_and_gradient shares its samples with (single_process() by
  // default), balanced by their cost (nodes², for batches of mixed sizes).
  void set_communicator(Communicator& comm) { batch_.set_communicator(comm); }
  // Called with state b's index and the workspace before the field evaluates
  // that state: a conditional field's molecule goes onto the workspace here
  // (VectorField::set_condition; the conformer model), since the states of a
  // batch are different molecules.
  using Prepare = std::function<void(int b, FieldWorkspace<T>& ws)>;
  void set_prepare(Prepare prepare) { prepare_ = std::move(prepare); }
  FlowMatchingLoss loss_and_gradient(const T* params, const FlowMatchingBatch& batch, double* grad);
  // L alone (for finite-difference checks and validation).
  double loss(const T* params, const FlowMatchingBatch& batch);

 private:
  const VectorField<T>& field_;
  Prepare prepare_;
  struct Scratch {
    FieldWorkspace<T> ws;
    // 64-byte aligned (AlignedVector): the field's vectorised kernels peel
    // unaligned heads, so with malloc's addresses (a per-thread arena) the
    // last bits of a gradient depended on the thread that computed it.
    AlignedVector<T> z, f, fbar, zbar, grad, times;
    std::vector<int> sizes;
  };
  SampleBatch<Scratch> batch_;
  // States first .. first + count − 1 in one stacked evaluation
  // (VectorField::forward_stacked): their squared errors / (n·C) summed,
  // leaving f and ∂L/∂f in s.
  double evaluate(const T* params, const FlowMatchingBatch& batch, int first, int count, Scratch& s) const;
  // States per stacked evaluation: lockstep_group of the batch's largest
  // state (flow.hpp), 1 for a conditional field (one molecule per call).
  int stack_size(const FlowMatchingBatch& batch) const;
};

extern template class FlowMatchingObjective<float>;
extern template class FlowMatchingObjective<double>;

}  // namespace enf
