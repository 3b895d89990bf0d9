// The pieces of the reference's QM9 flow that sit around the CNF (fixtures
// README §4): dequantization of the atom types and charges, ActNorm on
// positions and features, and the node-count distribution p(N).
//
// Per node the model's state has C = 9 channels [x, y, z, v_H, v_C, v_N, v_O,
// v_F, v_int]: positions, then the dequantized one-hot (5) and integer (1)
// features. The parameters of the whole model live in one flat buffer whose
// first tensors are the vector field's ("egnn.*", same offsets as
// field_layout), then "actnorm.*", then the dequantizer's "dequantizer.egnn.*".
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "egnn/egnn_network.hpp"
#include "egnn/vector_field.hpp"
#include "datasets/molecule.hpp"
#include "engine/rng.hpp"

namespace enf {

inline constexpr int kMoleculeTypes = 5;                      // H, C, N, O, F
inline constexpr int kMoleculeFeatures = kMoleculeTypes + 1;  // + the integer charge
inline constexpr int kMoleculeChannels = 3 + kMoleculeFeatures;

enum class Dequantization { Uniform, Variational, ArgmaxVariational };
std::string to_string(Dequantization d);
Dequantization parse_dequantization(const std::string& name);  // "uniform", "variational", "argmax_variational"

struct MoleculeModelConfig {
  Dequantization dequantization = Dequantization::ArgmaxVariational;
  bool actnorm = true;
  int dequantizer_hidden = 64;  // the reference's EGNN_output_h: width 64, 4 layers
  int dequantizer_layers = 4;
  // count[N] of molecules with N atoms in the training data (index = N).
  std::vector<double> node_counts;

  std::string validate() const;
  bool has_network() const { return dequantization != Dequantization::Uniform; }
  // EGNN_output_h: no attention, no tanh, no edge attribute, sum aggregation,
  // input [one-hot, Z] (6), output [μ, log σ] (12), prefix "dequantizer.egnn.".
  EgnnConfig dequantizer_egnn() const;
};

// The reference's QM9 vector field (EGNN_dynamics_QM9, fixtures §2b).
FieldConfig qm9_field_config(int hidden = 64, int layers = 6);

// The field's tensors, then actnorm.{x_log_s [1,1], h_t [1,6], h_log_s [1,6]},
// then the dequantizer network (when it has one).
ParameterLayout molecule_layout(const FieldConfig& field, const MoleculeModelConfig& mol);

// The QM9 node-count histogram the pretrained model uses (qm9/analyze.py,
// 100 000 molecules), count[N].
std::vector<double> qm9_reference_node_counts();

// p(N) from a histogram of counts.
class NodeCountDistribution {
 public:
  explicit NodeCountDistribution(std::vector<double> counts);
  // log p(N) with the probability rounded to float32 before the log, as the
  // reference computes it (float32 = false: exact). −inf when count[N] = 0.
  double log_prob(int n, bool float32 = true) const;
  int sample(Rng& rng) const;
  int max_nodes() const { return int(counts_.size()) - 1; }
  const std::vector<double>& counts() const { return counts_; }

 private:
  std::vector<double> counts_;
  double total_ = 0;
};

// ActNorm on the 9-channel state (fixtures §4.7; flows/actnorm.py).
struct ActNormParams {
  double x_log_s = 0;
  std::array<double, kMoleculeFeatures> h_t{}, h_log_s{};
  // p at "actnorm.x_log_s": 13 contiguous values (x_log_s, h_t, h_log_s).
  template <class T>
  static ActNormParams read(const T* p) {
    ActNormParams a;
    a.x_log_s = double(p[0]);
    for (int c = 0; c < kMoleculeFeatures; ++c) {
      a.h_t[c] = double(p[1 + c]);
      a.h_log_s[c] = double(p[1 + kMoleculeFeatures + c]);
    }
    return a;
  }
  void write(double* p) const;
};
// y = [x·e^(−x_log_s), (h − h_t)·e^(−h_log_s)] in place on n nodes; returns the
// log-determinant −n·(3·x_log_s + Σ h_log_s).
double actnorm_forward(const ActNormParams& a, std::vector<double>& state, int n);
void actnorm_inverse(const ActNormParams& a, std::vector<double>& state, int n);
// Reverse of actnorm_forward for the loss  L(y) − c·logdet: given ȳ = ∂L/∂y
// (in place → ∂L/∂(input)) and y, accumulates ∂/∂(x_log_s, h_t, h_log_s)
// into grad[0..13).
void actnorm_reverse(const ActNormParams& a, const std::vector<double>& y, std::vector<double>& ybar, int n,
                     double c_logdet, double* grad);
// The reference's data-dependent initialisation from a first batch of states
// (each n_b × 9, node-major, positions centred): h_t = mean, h_log_s =
// log(sqrt(var + 1e-5) + 1e-8) per feature channel over all real nodes;
// x_log_s from Σ|x − m|² / (number of nodes) with m = Σx / (number of nodes),
// exactly as flows/actnorm.py's masked_stdev over dims (0, 1).
ActNormParams actnorm_initialize(const std::vector<std::vector<double>>& states);

// The dequantization of one molecule (fixtures §4.2–4.6).
struct DequantizerTerms {
  std::vector<double> mu, log_sigma, u;  // n × 6 (variational modes)
  std::vector<double> v;                 // n × 6: [v_cat (5), v_int]
  double log_q_eps = 0, sum_log_sigma = 0, log_q_u = 0;
  double ldj_integer = 0, ldj_categorical = 0;
  double log_q_v = 0;  // log q(v | x, h)
};

template <class T>
class Dequantizer {
 public:
  Dequantizer(const MoleculeModelConfig& cfg, const ParameterLayout& layout);
  const MoleculeModelConfig& config() const { return cfg_; }

  struct Workspace {
    EgnnWorkspace<T> net;
    detail::Mat<T> x, h0, hbar, xbar, h0bar;
    std::vector<int> type;
  };

  // x: n × 3 centred positions; types: index 0..4 per atom; noise: n × 6
  // (standard normal for the variational modes, uniform [0,1) for uniform).
  DequantizerTerms forward(const T* params, const std::vector<double>& x, const std::vector<int>& types,
                           const std::vector<double>& noise, Workspace& ws) const;
  // After forward on ws: the loss has ∂L/∂v = vbar (n × 6) and contains
  // c_q·log q(v|x,h); accumulates ∂L/∂θ into grad (the whole layout).
  void reverse(const T* params, const DequantizerTerms& d, const std::vector<double>& noise,
               const std::vector<double>& vbar, double c_q, Workspace& ws, T* grad) const;
  // Atom types (argmax of v_cat, or round/floor for the other modes) and
  // integer charges (floor of v_int; round for uniform) of a generated v.
  static void quantize(Dequantization mode, const std::vector<double>& v, int n, std::vector<int>& types,
                       std::vector<int>& charges);

 private:
  MoleculeModelConfig cfg_;
  std::unique_ptr<EgnnNetwork<T>> net_;
};

extern template class Dequantizer<float>;
extern template class Dequantizer<double>;

}  // namespace enf
