// Flow matching (flow_matching.hpp): couplings, the batch's regression
// problem, and the loss with its gradient through the field's reverse pass.
#include "engine/flow_matching.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

#include "egnn/parallel.hpp"
#include "engine/alignment.hpp"
#include "engine/flow.hpp"

namespace enf {

std::string FlowMatchingOptions::validate() const {
  if (!(sigma_min >= 0 && sigma_min < 1)) return "sigma_min must be in [0, 1)";
  if (!(logit_std > 0) || !std::isfinite(logit_mean)) return "the logit-normal time needs a finite mean and std > 0";
  return "";
}

std::string to_string(Coupling c) {
  switch (c) {
    case Coupling::Independent: return "independent";
    case Coupling::MinibatchOT: return "minibatch-ot";
    case Coupling::EquivariantOT: return "equivariant-ot";
  }
  return "?";
}

Coupling parse_coupling(const std::string& name) {
  if (name == "independent") return Coupling::Independent;
  if (name == "minibatch-ot") return Coupling::MinibatchOT;
  if (name == "equivariant-ot") return Coupling::EquivariantOT;
  throw std::invalid_argument("unknown coupling '" + name + "' (use independent, minibatch-ot or equivariant-ot)");
}

std::string to_string(TimeSampling t) { return t == TimeSampling::Uniform ? "uniform" : "logit-normal"; }

TimeSampling parse_time_sampling(const std::string& name) {
  if (name == "uniform") return TimeSampling::Uniform;
  if (name == "logit-normal") return TimeSampling::LogitNormal;
  throw std::invalid_argument("unknown time sampling '" + name + "' (use uniform or logit-normal)");
}

namespace {

// B prior-like draws [B, n·C]: positions N(0, I) projected onto the centre-of-mass-free subspace, features N(0, 1).
std::vector<double> prior_draws(int B, int n, int D, int C, Rng& rng) {
  std::vector<double> z(std::size_t(B) * n * C);
  for (double& v : z) v = rng.normal();
  remove_centre_of_mass(z, B, n, D, C);
  return z;
}

double squared_distance(const double* a, const double* b, std::size_t size) {
  double s = 0;
  for (std::size_t k = 0; k < size; ++k) s += (a[k] - b[k]) * (a[k] - b[k]);
  return s;
}

// Sample b's positions (n × D) out of a state with C channels per node.
std::vector<double> positions(const double* state, int n, int D, int C) {
  std::vector<double> x(std::size_t(n) * D);
  for (int i = 0; i < n; ++i)
    for (int d = 0; d < D; ++d) x[i * D + d] = state[i * C + d];
  return x;
}

// y (one state) with its nodes permuted and positions mapped by a: the aligned partner of x.
std::vector<double> aligned_state(const Alignment& a, const double* y, int n, int D, int C) {
  const std::vector<double> yx = positions(y, n, D, C);
  const std::vector<double> moved = apply_alignment(a, yx.data(), n, D);
  std::vector<double> out(std::size_t(n) * C);
  for (int i = 0; i < n; ++i) {
    for (int d = 0; d < D; ++d) out[i * C + d] = moved[i * D + d];
    for (int c = D; c < C; ++c) out[i * C + c] = y[a.perm[i] * C + c];
  }
  return out;
}

}  // namespace

std::vector<double> couple(Coupling c, const std::vector<double>& x0, const std::vector<double>& x1, int B, int n,
                           int D, int C, int threads) {
  const std::size_t S = std::size_t(n) * C;
  if (x0.size() != B * S || x1.size() != B * S) throw std::invalid_argument("couple: states of the wrong size");
  if (c == Coupling::Independent) return x1;
  Eigen::MatrixXd cost(B, B);
  std::vector<Alignment> align(c == Coupling::EquivariantOT ? std::size_t(B) * B : 0);
  // Each row of the cost matrix by one thread: the B² alignments are independent.
  parallel_for(B, std::max(1, threads), [&](int a, int) {
    for (int b = 0; b < B; ++b) {
      if (c == Coupling::MinibatchOT) {
        cost(a, b) = squared_distance(&x0[a * S], &x1[b * S], S);
      } else {
        const std::vector<double> xa = positions(&x0[a * S], n, D, C), yb = positions(&x1[b * S], n, D, C);
        Alignment& al = align[std::size_t(a) * B + b];
        al = align_structures(xa.data(), yb.data(), n, D);
        cost(a, b) = squared_distance(&x0[a * S], aligned_state(al, &x1[b * S], n, D, C).data(), S);
      }
    }
  });
  const std::vector<int> col = min_cost_assignment(cost);
  std::vector<double> out(B * S);
  for (int a = 0; a < B; ++a) {
    const int b = col[a];
    if (c == Coupling::MinibatchOT) {
      std::copy(&x1[b * S], &x1[b * S] + S, &out[a * S]);
    } else {
      const std::vector<double> y = aligned_state(align[std::size_t(a) * B + b], &x1[b * S], n, D, C);
      std::copy(y.begin(), y.end(), &out[a * S]);
    }
  }
  return out;
}

FlowMatchingBatch make_flow_matching_batch(const FlowMatchingOptions& o, const std::vector<std::vector<double>>& x0,
                                           int D, int C, Rng& rng, int threads) {
  if (const std::string e = o.validate(); !e.empty()) throw std::invalid_argument("flow matching: " + e);
  const int B = int(x0.size());
  if (B < 1) throw std::invalid_argument("flow matching: an empty batch");
  FlowMatchingBatch r;
  r.B = B, r.C = C;
  r.offset.assign(1, 0);
  for (const auto& s : x0) {
    if (s.empty() || s.size() % C != 0) throw std::invalid_argument("flow matching: a state is not n × C values");
    r.atoms.push_back(int(s.size() / C));
    r.offset.push_back(r.offset.back() + s.size());
  }
  r.n = std::all_of(r.atoms.begin(), r.atoms.end(), [&](int n) { return n == r.atoms[0]; }) ? r.atoms[0] : 0;
  const std::size_t total = r.offset.back();
  std::vector<double> x1(total), eps(total), flat0(total);
  for (int b = 0; b < B; ++b) std::copy(x0[b].begin(), x0[b].end(), flat0.begin() + r.offset[b]);
  auto draw = [&](std::vector<double>& into) {
    for (int b = 0; b < B; ++b) {
      const std::vector<double> z = prior_draws(1, r.atoms[b], D, C, rng);
      std::copy(z.begin(), z.end(), into.begin() + r.offset[b]);
    }
  };
  draw(x1);
  // The coupling within each group of equal size, groups by increasing n.
  if (o.coupling != Coupling::Independent) {
    std::map<int, std::vector<int>> groups;
    for (int b = 0; b < B; ++b) groups[r.atoms[b]].push_back(b);
    for (const auto& [n, members] : groups) {
      const std::size_t S = std::size_t(n) * C;
      const int G = int(members.size());
      std::vector<double> g0(G * S), g1(G * S);
      for (int k = 0; k < G; ++k) {
        std::copy_n(flat0.begin() + r.offset[members[k]], S, g0.begin() + k * S);
        std::copy_n(x1.begin() + r.offset[members[k]], S, g1.begin() + k * S);
      }
      const std::vector<double> paired = couple(o.coupling, g0, g1, G, n, D, C, threads);
      for (int k = 0; k < G; ++k) std::copy_n(paired.begin() + k * S, S, x1.begin() + r.offset[members[k]]);
    }
  }
  draw(eps);
  r.t.resize(B);
  for (double& t : r.t) {
    if (o.time == TimeSampling::Uniform) {
      t = rng.uniform();
    } else {
      t = 1 / (1 + std::exp(-(o.logit_mean + o.logit_std * rng.normal())));
    }
  }
  r.xt.resize(total);
  r.target.resize(total);
  for (int b = 0; b < B; ++b) {
    const double t = r.t[b];
    for (std::size_t k = r.offset[b]; k < r.offset[b + 1]; ++k) {
      r.xt[k] = (1 - t) * flat0[k] + t * x1[k] + o.sigma_min * eps[k];
      r.target[k] = x1[k] - flat0[k];
    }
    r.transport_cost += squared_distance(&flat0[r.offset[b]], &x1[r.offset[b]], r.offset[b + 1] - r.offset[b]) / B;
  }
  return r;
}

FlowMatchingBatch make_flow_matching_batch(const FlowMatchingOptions& o, const std::vector<double>& x0, int B, int n,
                                           int D, int C, Rng& rng, int threads) {
  const std::size_t S = std::size_t(n) * C;
  if (B < 1 || x0.size() != B * S) throw std::invalid_argument("flow matching: a batch of the wrong size");
  std::vector<std::vector<double>> states(B);
  for (int b = 0; b < B; ++b) states[b].assign(x0.begin() + b * S, x0.begin() + (b + 1) * S);
  return make_flow_matching_batch(o, states, D, C, rng, threads);
}

template <class T>
FlowMatchingObjective<T>::FlowMatchingObjective(const VectorField<T>& field, int threads)
    : field_(field), batch_(threads) {}

template <class T>
int FlowMatchingObjective<T>::stack_size(const FlowMatchingBatch& batch) const {
  if (prepare_) return 1;  // a conditional field takes one molecule per evaluation
  const int largest = *std::max_element(batch.atoms.begin(), batch.atoms.end());
  return lockstep_group(largest);
}

template <class T>
double FlowMatchingObjective<T>::evaluate(const T* params, const FlowMatchingBatch& batch, int first, int count,
                                         Scratch& s) const {
  const std::size_t begin = batch.offset[first], end = batch.offset[first + count];
  s.sizes.assign(batch.atoms.begin() + first, batch.atoms.begin() + first + count);
  s.times.resize(count);
  for (int k = 0; k < count; ++k) s.times[k] = T(batch.t[first + k]);
  s.z.assign(batch.xt.begin() + begin, batch.xt.begin() + end);
  s.f.resize(end - begin);
  s.fbar.resize(end - begin);
  if (prepare_) prepare_(first, s.ws);
  field_.forward_stacked(params, s.z.data(), s.sizes, s.times.data(), nullptr, s.ws, s.f.data(), nullptr);
  double total = 0;
  for (int b = first; b < first + count; ++b) {
    const std::size_t at = batch.offset[b], S = batch.offset[b + 1] - at;
    double e = 0;
    for (std::size_t k = at; k < at + S; ++k) {
      const double d = double(s.f[k - begin]) - batch.target[k];
      e += d * d;
      s.fbar[k - begin] = T(2 * d / (double(S) * batch.B));  // ∂L/∂f
    }
    total += e / double(S);
  }
  return total;
}

template <class T>
double FlowMatchingObjective<T>::loss(const T* params, const FlowMatchingBatch& batch) {
  const int G = stack_size(batch), stacks = (batch.B + G - 1) / G;
  std::vector<double> per(stacks);
  batch_.for_each(stacks, [&](int k, Scratch& s) {
    per[k] = evaluate(params, batch, k * G, std::min(G, batch.B - k * G), s);
  });
  double L = 0;
  for (double v : per) L += v / batch.B;
  return L;
}

template <class T>
FlowMatchingLoss FlowMatchingObjective<T>::loss_and_gradient(const T* params, const FlowMatchingBatch& batch,
                                                             double* grad) {
  const int B = batch.B;
  if (B < 1) throw std::invalid_argument("flow matching: an empty batch");
  const std::size_t P = field_.parameter_count();
  // Stacks of G consecutive states, each one evaluation and one reverse pass
  // (lockstep_group: DW4 32, LJ13 2, QM9 and LJ55 1); a stack's gradient is
  // its states' summed in one reverse pass, and the stacks are summed in
  // distributed_gradient_sum's fixed order.
  const int G = stack_size(batch), stacks = (B + G - 1) / G;
  std::vector<double> cost(stacks, 0.0);
  for (int b = 0; b < B; ++b) cost[b / G] += double(batch.atoms[b]) * batch.atoms[b];
  FlowMatchingLoss r;
  const std::vector<double> per = batch_.template gradient<double>(stacks, P, cost, grad, r.shards,
                                                                   [&](int k, Scratch& s, double* acc) {
    const double error = evaluate(params, batch, k * G, std::min(G, B - k * G), s);
    s.zbar.resize(s.z.size());
    s.grad.assign(P, T(0));
    field_.reverse(params, s.ws, s.fbar.data(), nullptr, s.zbar.data(), s.grad.data());
    for (std::size_t k2 = 0; k2 < P; ++k2) acc[k2] += double(s.grad[k2]);
    return error;
  });
  for (double v : per) r.loss += v / B;
  r.evaluations = B;
  return r;
}

template class FlowMatchingObjective<float>;
template class FlowMatchingObjective<double>;

}  // namespace enf
