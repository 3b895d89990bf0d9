#include "engine/molecule_model.hpp"

#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>

namespace enf {

namespace {

// Numerically stable softplus(s) = log(1 + e^s), logσ(s) = −softplus(−s), σ(s).
double softplus(double s) { return s > 0 ? s + std::log1p(std::exp(-s)) : std::log1p(std::exp(s)); }
double log_sigmoid(double s) { return -softplus(-s); }
double sigmoid(double s) {
  if (s >= 0) return 1.0 / (1.0 + std::exp(-s));
  const double e = std::exp(s);
  return e / (1.0 + e);
}

constexpr double kHalfLog2Pi = 0.91893853320467274178;  // ½ log 2π

}  // namespace

std::string to_string(Dequantization d) {
  switch (d) {
    case Dequantization::Uniform: return "uniform";
    case Dequantization::Variational: return "variational";
    case Dequantization::ArgmaxVariational: return "argmax_variational";
  }
  return "?";
}

Dequantization parse_dequantization(const std::string& name) {
  if (name == "uniform") return Dequantization::Uniform;
  if (name == "variational") return Dequantization::Variational;
  if (name == "argmax_variational" || name == "argmax") return Dequantization::ArgmaxVariational;
  throw std::invalid_argument("unknown dequantization '" + name + "' (use uniform, variational or argmax_variational)");
}

std::string MoleculeModelConfig::validate() const {
  if (has_network()) {
    if (dequantizer_hidden < 1) return "dequantizer width must be positive";
    if (dequantizer_layers < 1) return "dequantizer layers must be positive";
  }
  if (node_counts.size() < 3) return "the node-count histogram is empty";
  for (double c : node_counts)
    if (!(c >= 0) || !std::isfinite(c)) return "the node-count histogram has a negative or non-finite count";
  double total = 0;
  for (double c : node_counts) total += c;
  if (total <= 0) return "the node-count histogram has no molecules";
  return {};
}

EgnnConfig MoleculeModelConfig::dequantizer_egnn() const {
  EgnnConfig e;
  e.dim = 3;
  e.in_node_nf = kMoleculeFeatures;
  e.out_node_nf = 2 * kMoleculeFeatures;
  e.hidden = dequantizer_hidden;
  e.layers = dequantizer_layers;
  e.attention = false;
  e.tanh = false;
  e.aggregation = Aggregation::Sum;
  e.edge_attr = false;
  e.prefix = "dequantizer.egnn.";
  return e;
}

FieldConfig qm9_field_config(int hidden, int layers) {
  FieldConfig f;
  f.dim = 3;
  f.features = kMoleculeFeatures;
  f.hidden = hidden;
  f.layers = layers;
  f.attention = true;
  f.tanh = true;
  f.coords_range = 15.0;
  f.aggregation = Aggregation::Sum;
  f.condition_time = true;
  return f;
}

ParameterLayout molecule_layout(const FieldConfig& field, const MoleculeModelConfig& mol) {
  if (field.dim != 3 || field.features != kMoleculeFeatures)
    throw std::invalid_argument("a molecule model needs a 3-D field with 6 node features");
  if (auto err = mol.validate(); !err.empty()) throw std::invalid_argument("molecule model: " + err);
  ParameterLayout layout = field_layout(field);
  layout.add("actnorm.x_log_s", {1, 1});
  layout.add("actnorm.h_t", {1, kMoleculeFeatures});
  layout.add("actnorm.h_log_s", {1, kMoleculeFeatures});
  if (mol.has_network()) register_egnn_parameters(mol.dequantizer_egnn(), layout);
  return layout;
}

std::vector<double> qm9_reference_node_counts() {
  // qm9/analyze.py analyzed['n_nodes'] of the reference (fixtures README §4.10).
  std::vector<double> c(30, 0.0);
  const std::pair<int, double> h[] = {{3, 1},      {4, 4},      {5, 5},     {6, 9},      {7, 16},    {8, 49},
                                      {9, 124},    {10, 362},   {11, 807},  {12, 1689},  {13, 3060}, {14, 5136},
                                      {15, 7796},  {16, 10644}, {17, 13025}, {18, 13364}, {19, 13832}, {20, 9482},
                                      {21, 9970},  {22, 3393},  {23, 4848}, {24, 539},   {25, 1506}, {26, 48},
                                      {27, 266},   {29, 25}};
  for (const auto& [n, count] : h) c[n] = count;
  return c;
}

NodeCountDistribution::NodeCountDistribution(std::vector<double> counts) : counts_(std::move(counts)) {
  for (double c : counts_) total_ += c;
  if (!(total_ > 0)) throw std::invalid_argument("node-count histogram: no molecules");
}

double NodeCountDistribution::log_prob(int n, bool float32) const {
  if (n < 0 || n >= int(counts_.size()) || counts_[n] <= 0) return -std::numeric_limits<double>::infinity();
  const double p = counts_[n] / total_;
  return float32 ? double(std::log(float(p))) : std::log(p);
}

int NodeCountDistribution::sample(Rng& rng) const {
  double u = rng.uniform() * total_;
  for (int n = 0; n < int(counts_.size()); ++n) {
    if (u < counts_[n]) return n;
    u -= counts_[n];
  }
  for (int n = int(counts_.size()) - 1; n >= 0; --n)
    if (counts_[n] > 0) return n;
  return 0;
}

void ActNormParams::write(double* p) const {
  p[0] = x_log_s;
  for (int c = 0; c < kMoleculeFeatures; ++c) {
    p[1 + c] = h_t[c];
    p[1 + kMoleculeFeatures + c] = h_log_s[c];
  }
}

double actnorm_forward(const ActNormParams& a, std::vector<double>& s, int n) {
  const int C = kMoleculeChannels;
  const double sx = std::exp(-a.x_log_s);
  double sum_h = 0;
  for (int c = 0; c < kMoleculeFeatures; ++c) sum_h += a.h_log_s[c];
  for (int i = 0; i < n; ++i) {
    for (int d = 0; d < 3; ++d) s[i * C + d] *= sx;
    for (int c = 0; c < kMoleculeFeatures; ++c)
      s[i * C + 3 + c] = (s[i * C + 3 + c] - a.h_t[c]) * std::exp(-a.h_log_s[c]);
  }
  return -double(n) * (3 * a.x_log_s + sum_h);
}

void actnorm_inverse(const ActNormParams& a, std::vector<double>& s, int n) {
  const int C = kMoleculeChannels;
  const double sx = std::exp(a.x_log_s);
  for (int i = 0; i < n; ++i) {
    for (int d = 0; d < 3; ++d) s[i * C + d] *= sx;
    for (int c = 0; c < kMoleculeFeatures; ++c)
      s[i * C + 3 + c] = s[i * C + 3 + c] * std::exp(a.h_log_s[c]) + a.h_t[c];
  }
}

void actnorm_reverse(const ActNormParams& a, const std::vector<double>& y, std::vector<double>& ybar, int n,
                     double c_logdet, double* grad) {
  const int C = kMoleculeChannels;
  // y_x = x e^{−s_x}: ∂y/∂s_x = −y, ∂y/∂x = e^{−s_x}. logdet = −n(3 s_x + Σ s_h).
  // The loss holds −c·logdet = c·n·(3 s_x + Σ s_h).
  double gx = c_logdet * 3.0 * n;
  const double sx = std::exp(-a.x_log_s);
  for (int i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d) {
      gx -= ybar[i * C + d] * y[i * C + d];
      ybar[i * C + d] *= sx;
    }
  grad[0] += gx;
  for (int c = 0; c < kMoleculeFeatures; ++c) {
    // y_h = (h − t) e^{−s}: ∂y/∂t = −e^{−s}, ∂y/∂s = −y.
    const double e = std::exp(-a.h_log_s[c]);
    double gt = 0, gs = c_logdet * n;
    for (int i = 0; i < n; ++i) {
      const double yb = ybar[i * C + 3 + c];
      gt -= yb * e;
      gs -= yb * y[i * C + 3 + c];
      ybar[i * C + 3 + c] = yb * e;
    }
    grad[1 + c] += gt;
    grad[1 + kMoleculeFeatures + c] += gs;
  }
}

ActNormParams actnorm_initialize(const std::vector<std::vector<double>>& states) {
  const int C = kMoleculeChannels;
  double nodes = 0, sum_x = 0;
  std::array<double, kMoleculeFeatures> sum_h{};
  for (const auto& s : states) {
    const int n = int(s.size()) / C;
    nodes += n;
    for (int i = 0; i < n; ++i) {
      for (int d = 0; d < 3; ++d) sum_x += s[i * C + d];
      for (int c = 0; c < kMoleculeFeatures; ++c) sum_h[c] += s[i * C + 3 + c];
    }
  }
  if (nodes == 0) throw std::invalid_argument("ActNorm initialisation: no nodes");
  ActNormParams a;
  const double mx = sum_x / nodes;  // sic: Σ over all 3 coordinates / number of nodes, as the reference
  double var_x = 0;
  std::array<double, kMoleculeFeatures> var_h{};
  for (int c = 0; c < kMoleculeFeatures; ++c) a.h_t[c] = sum_h[c] / nodes;
  for (const auto& s : states) {
    const int n = int(s.size()) / C;
    for (int i = 0; i < n; ++i) {
      for (int d = 0; d < 3; ++d) var_x += (s[i * C + d] - mx) * (s[i * C + d] - mx);
      for (int c = 0; c < kMoleculeFeatures; ++c) {
        const double r = s[i * C + 3 + c] - a.h_t[c];
        var_h[c] += r * r;
      }
    }
  }
  a.x_log_s = std::log(std::sqrt(var_x / nodes + 1e-5) + 1e-8);
  for (int c = 0; c < kMoleculeFeatures; ++c) a.h_log_s[c] = std::log(std::sqrt(var_h[c] / nodes + 1e-5) + 1e-8);
  return a;
}

template <class T>
Dequantizer<T>::Dequantizer(const MoleculeModelConfig& cfg, const ParameterLayout& layout) : cfg_(cfg) {
  if (cfg_.has_network()) net_ = std::make_unique<EgnnNetwork<T>>(cfg_.dequantizer_egnn(), layout);
}

template <class T>
DequantizerTerms Dequantizer<T>::forward(const T* params, const std::vector<double>& x, const std::vector<int>& types,
                                         const std::vector<double>& noise, Workspace& ws) const {
  const int n = int(types.size()), F = kMoleculeFeatures;
  if (int(x.size()) != 3 * n || int(noise.size()) != F * n)
    throw std::invalid_argument("dequantizer: positions or noise of the wrong size");
  DequantizerTerms d;
  d.v.assign(std::size_t(n) * F, 0.0);
  ws.type = types;
  if (cfg_.dequantization == Dequantization::Uniform) {
    // v = h + U[0,1) − ½, log q = 0 (flows/dequantize.py UniformDequantizer).
    for (int i = 0; i < n; ++i) {
      for (int k = 0; k < kMoleculeTypes; ++k) d.v[i * F + k] = (k == types[i] ? 1.0 : 0.0) + noise[i * F + k] - 0.5;
      d.v[i * F + 5] = kQm9AtomicNumbers[types[i]] + noise[i * F + 5] - 0.5;
    }
    return d;
  }
  // The network: h0 = [one-hot, Z], positions as given; output [μ, log σ].
  ws.x.resize(n, 3);
  ws.h0.setZero(n, F);
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < 3; ++c) ws.x(i, c) = T(x[i * 3 + c]);
    ws.h0(i, types[i]) = T(1);
    ws.h0(i, 5) = T(kQm9AtomicNumbers[types[i]]);
  }
  net_->forward(params, ws.x, ws.h0, n, 1, EgnnRequest{false, true}, ws.net);
  d.mu.resize(std::size_t(n) * F);
  d.log_sigma.resize(std::size_t(n) * F);
  d.u.resize(std::size_t(n) * F);
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < F; ++c) {
      const double mu = double(ws.net.h_out(i, c)), ls = double(ws.net.h_out(i, F + c)), e = noise[i * F + c];
      d.mu[i * F + c] = mu;
      d.log_sigma[i * F + c] = ls;
      d.u[i * F + c] = mu + e * std::exp(ls);
      d.log_q_eps += -0.5 * e * e - kHalfLog2Pi;
      d.sum_log_sigma += ls;
    }
  d.log_q_u = d.log_q_eps - d.sum_log_sigma;
  for (int i = 0; i < n; ++i) {
    // Integer channel: v = Z + σ(u), ldj = logσ(u) + logσ(−u).
    const double ui = d.u[i * F + 5];
    d.v[i * F + 5] = kQm9AtomicNumbers[types[i]] + sigmoid(ui);
    d.ldj_integer += log_sigmoid(ui) + log_sigmoid(-ui);
    if (cfg_.dequantization == Dequantization::ArgmaxVariational) {
      // Argmax partition: the hot channel keeps u; the others are pushed below it.
      const double Ti = d.u[i * F + types[i]];
      for (int k = 0; k < kMoleculeTypes; ++k) {
        const double uk = d.u[i * F + k];
        if (k == types[i]) {
          d.v[i * F + k] = uk;
        } else {
          d.v[i * F + k] = Ti - softplus(Ti - uk);
          d.ldj_categorical += log_sigmoid(Ti - uk);
        }
      }
    } else {
      // Hypercube partition: v = onehot + σ(u).
      for (int k = 0; k < kMoleculeTypes; ++k) {
        const double uk = d.u[i * F + k];
        d.v[i * F + k] = (k == types[i] ? 1.0 : 0.0) + sigmoid(uk);
        d.ldj_categorical += log_sigmoid(uk) + log_sigmoid(-uk);
      }
    }
  }
  d.log_q_v = d.log_q_u - d.ldj_categorical - d.ldj_integer;
  return d;
}

template <class T>
void Dequantizer<T>::reverse(const T* params, const DequantizerTerms& d, const std::vector<double>& noise,
                             const std::vector<double>& vbar, double c_q, Workspace& ws, T* grad) const {
  if (cfg_.dequantization == Dequantization::Uniform) return;  // nothing trainable
  const int n = int(ws.type.size()), F = kMoleculeFeatures;
  // ū = ∂L/∂u through v and through −c_q·ldj(u).
  std::vector<double> ubar(std::size_t(n) * F, 0.0);
  for (int i = 0; i < n; ++i) {
    const double ui = d.u[i * F + 5];
    // dv/du = σ(u)σ(−u); d ldj/du = σ(−u) − σ(u).
    ubar[i * F + 5] = vbar[i * F + 5] * sigmoid(ui) * sigmoid(-ui) - c_q * (sigmoid(-ui) - sigmoid(ui));
    if (cfg_.dequantization == Dequantization::ArgmaxVariational) {
      const int h = ws.type[i];
      const double Ti = d.u[i * F + h];
      double tbar = vbar[i * F + h];
      for (int k = 0; k < kMoleculeTypes; ++k) {
        if (k == h) continue;
        const double a = Ti - d.u[i * F + k];
        // v_k = T − softplus(a): ∂v/∂u_k = σ(a), ∂v/∂T = σ(−a); ldj_k = logσ(a): ∂/∂u_k = −σ(−a), ∂/∂T = σ(−a).
        ubar[i * F + k] = vbar[i * F + k] * sigmoid(a) + c_q * sigmoid(-a);
        tbar += vbar[i * F + k] * sigmoid(-a) - c_q * sigmoid(-a);
      }
      ubar[i * F + h] = tbar;
    } else {
      for (int k = 0; k < kMoleculeTypes; ++k) {
        const double uk = d.u[i * F + k];
        ubar[i * F + k] = vbar[i * F + k] * sigmoid(uk) * sigmoid(-uk) - c_q * (sigmoid(-uk) - sigmoid(uk));
      }
    }
  }
  // u = μ + ε e^{log σ}; log q(u) = log q(ε) − Σ log σ.
  ws.hbar.resize(n, 2 * F);
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < F; ++c) {
      const double ub = ubar[i * F + c];
      ws.hbar(i, c) = T(ub);
      ws.hbar(i, F + c) = T(ub * noise[i * F + c] * std::exp(d.log_sigma[i * F + c]) - c_q);
    }
  net_->reverse(params, nullptr, &ws.hbar, ws.net, ws.xbar, ws.h0bar, grad);
}

template <class T>
void Dequantizer<T>::quantize(Dequantization mode, const std::vector<double>& v, int n, std::vector<int>& types,
                              std::vector<int>& charges) {
  const int F = kMoleculeFeatures;
  types.assign(n, 0);
  charges.assign(n, 0);
  for (int i = 0; i < n; ++i) {
    int best = 0;
    for (int k = 1; k < kMoleculeTypes; ++k)
      if (v[i * F + k] > v[i * F + best]) best = k;
    types[i] = best;
    const double vi = v[i * F + 5];
    charges[i] = int(mode == Dequantization::Uniform ? std::round(vi) : std::floor(vi));
  }
}

template class Dequantizer<float>;
template class Dequantizer<double>;

}  // namespace enf
