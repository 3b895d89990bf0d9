// Several samples in one evaluation (VectorField::forward over G graphs): each
// sample's value, tangents, input cotangent and parameter gradient are those
// it gives alone, whatever the other samples, their sizes and their order;
// and the block-diagonal Jacobian lets one tangent carry a direction of every
// sample at once.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "egnn/vector_field.hpp"
#include "support/random_model.hpp"

using namespace enf;
using namespace enf::test;

namespace {

using Mat = detail::Mat<double>;

// Rounding of double arithmetic over a few hundred operations: stacked
// products may group their sums differently from one sample's.
constexpr double kRounding = 1e-12;

double rel(double a, double b) { return std::abs(a - b) / std::max(1.0, std::max(std::abs(a), std::abs(b))); }

struct Sample {
  int n;
  double t;
  std::vector<double> z;
  Mat V, JVbar;  // K rows over this sample's n·C values
  std::vector<double> fbar;
};

struct Alone {
  std::vector<double> f, zbar, grad;
  Mat JV;
};

Alone alone(const VectorField<double>& field, const Parameters<double>& p, const Sample& s) {
  FieldWorkspace<double> ws;
  Alone r;
  const int S = s.n * field.channels();
  r.f.resize(S);
  r.zbar.resize(S);
  r.grad.assign(p.values.size(), 0.0);
  field.forward(p.values.data(), s.z.data(), s.n, s.t, &s.V, ws, r.f.data(), &r.JV);
  field.reverse(p.values.data(), ws, s.fbar.data(), &s.JVbar, r.zbar.data(), r.grad.data());
  return r;
}

std::vector<Sample> make_samples(const FieldConfig& cfg, const std::vector<int>& sizes, int K, Rng& rng) {
  const int C = cfg.channels();
  std::vector<Sample> out;
  for (int n : sizes) {
    Sample s{n, rng.uniform(), random_state(cfg, n, rng), Mat(K, n * C), Mat(K, n * C), {}};
    for (int k = 0; k < K; ++k)
      for (int c = 0; c < n * C; ++c) {
        s.V(k, c) = rng.normal();
        s.JVbar(k, c) = rng.normal();
      }
    s.fbar.resize(std::size_t(n) * C);
    for (double& v : s.fbar) v = rng.normal();
    out.push_back(std::move(s));
  }
  return out;
}

// The samples in `order`, stacked into one evaluation; results per sample, in
// the samples' own numbering.
std::vector<Alone> stacked(const VectorField<double>& field, const Parameters<double>& p,
                           const std::vector<Sample>& samples, const std::vector<int>& order, int K,
                           std::vector<double>* grad_sum) {
  const int C = field.channels();
  std::vector<int> sizes;
  std::vector<double> t, z, fbar;
  int total = 0;
  for (int g : order) {
    sizes.push_back(samples[g].n);
    t.push_back(samples[g].t);
    z.insert(z.end(), samples[g].z.begin(), samples[g].z.end());
    fbar.insert(fbar.end(), samples[g].fbar.begin(), samples[g].fbar.end());
    total += samples[g].n * C;
  }
  Mat V(K, total), JVbar(K, total), JV;
  for (int off = 0; int g : order) {
    const int S = samples[g].n * C;
    V.middleCols(off, S) = samples[g].V;
    JVbar.middleCols(off, S) = samples[g].JVbar;
    off += S;
  }
  FieldWorkspace<double> ws;
  std::vector<double> f(total), zbar(total);
  grad_sum->assign(p.values.size(), 0.0);
  field.forward(p.values.data(), z.data(), sizes, t, &V, ws, f.data(), &JV);
  field.reverse(p.values.data(), ws, fbar.data(), &JVbar, zbar.data(), grad_sum->data());
  std::vector<Alone> out(samples.size());
  for (int off = 0; int g : order) {
    const int S = samples[g].n * C;
    out[g].f.assign(f.begin() + off, f.begin() + off + S);
    out[g].zbar.assign(zbar.begin() + off, zbar.begin() + off + S);
    out[g].JV = JV.middleCols(off, S);
    off += S;
  }
  return out;
}

void check_same(const Alone& a, const Alone& b) {
  for (std::size_t i = 0; i < a.f.size(); ++i) REQUIRE(rel(a.f[i], b.f[i]) < kRounding);
  for (std::size_t i = 0; i < a.zbar.size(); ++i) REQUIRE(rel(a.zbar[i], b.zbar[i]) < kRounding);
  REQUIRE(a.JV.rows() == b.JV.rows());
  for (Eigen::Index k = 0; k < a.JV.rows(); ++k)
    for (Eigen::Index c = 0; c < a.JV.cols(); ++c) REQUIRE(rel(a.JV(k, c), b.JV(k, c)) < kRounding);
}

FieldConfig particle_field(Aggregation agg) {
  FieldConfig c;
  c.dim = 3;
  c.hidden = 8;
  c.layers = 3;
  c.aggregation = agg;
  return c;
}

}  // namespace

TEST_CASE("stacked samples give what each gives alone, in any order", "[egnn][stacked]") {
  const Aggregation agg = GENERATE(Aggregation::Sum, Aggregation::Mean);
  const bool molecules = GENERATE(false, true);
  const FieldConfig cfg = molecules ? small_molecule_field() : particle_field(agg);
  CAPTURE(molecules, int(agg));
  const auto p = random_params(cfg, 41);
  VectorField<double> field(cfg, p.layout);
  Rng rng(42);
  const int K = 3;
  const auto samples = make_samples(cfg, {4, 7, 2, 5, 4}, K, rng);

  std::vector<Alone> ref;
  std::vector<double> grad_ref(p.values.size(), 0.0);
  for (const Sample& s : samples) {
    ref.push_back(alone(field, p, s));
    for (std::size_t k = 0; k < grad_ref.size(); ++k) grad_ref[k] += ref.back().grad[k];
  }
  std::vector<int> order(samples.size());
  std::iota(order.begin(), order.end(), 0);
  for (const std::vector<int>& o : {order, std::vector<int>{3, 0, 4, 2, 1}, std::vector<int>{2, 4}}) {
    std::vector<double> grad;
    const auto got = stacked(field, p, samples, o, K, &grad);
    for (int g : o) check_same(ref[g], got[g]);
    if (o.size() == samples.size())
      for (std::size_t k = 0; k < grad.size(); ++k) REQUIRE(rel(grad[k], grad_ref[k]) < kRounding);
  }
}

TEST_CASE("one tangent of the stack carries one direction of every sample", "[egnn][stacked]") {
  // J of the stack is block diagonal: a direction that is e_k in every
  // sample gives each sample's column k of its own Jacobian, so one pass of
  // max(n_g·C) directions yields every sample's exact trace.
  const FieldConfig cfg = small_molecule_field();
  const int C = cfg.channels();
  const auto p = random_params(cfg, 43);
  VectorField<double> field(cfg, p.layout);
  Rng rng(44);
  const std::vector<int> sizes{3, 6, 4};
  std::vector<double> z, t;
  std::vector<double> trace_alone;
  int total = 0, widest = 0;
  for (int n : sizes) {
    const auto zs = random_state(cfg, n, rng);
    t.push_back(rng.uniform());
    Mat I = Mat::Identity(n * C, n * C), JV;
    FieldWorkspace<double> ws;
    std::vector<double> f(zs.size());
    field.forward(p.values.data(), zs.data(), n, t.back(), &I, ws, f.data(), &JV);
    trace_alone.push_back(JV.trace());
    z.insert(z.end(), zs.begin(), zs.end());
    total += n * C;
    widest = std::max(widest, n * C);
  }
  Mat V = Mat::Zero(widest, total), JV;
  for (int off = 0, g = 0; g < int(sizes.size()); off += sizes[g++] * C)
    for (int k = 0; k < sizes[g] * C; ++k) V(k, off + k) = 1;
  FieldWorkspace<double> ws;
  std::vector<double> f(total);
  field.forward(p.values.data(), z.data(), sizes, t, &V, ws, f.data(), &JV);
  for (int off = 0, g = 0; g < int(sizes.size()); off += sizes[g++] * C) {
    double tr = 0;
    for (int k = 0; k < sizes[g] * C; ++k) tr += JV(k, off + k);
    CHECK(rel(tr, trace_alone[g]) < kRounding);
  }
}

TEST_CASE("stacked evaluation refuses what it cannot do", "[egnn][stacked]") {
  const FieldConfig cfg = particle_field(Aggregation::Sum);
  const auto p = random_params(cfg, 45);
  VectorField<double> field(cfg, p.layout);
  FieldWorkspace<double> ws;
  std::vector<double> z(3 * 7, 0.1), f(z.size());
  const std::vector<int> sizes{4, 3};
  const std::vector<double> one_time{0.5};
  CHECK_THROWS_WITH(field.forward(p.values.data(), z.data(), sizes, one_time, nullptr, ws, f.data(), nullptr),
                    Catch::Contains("1 times for 2 samples"));
  const std::vector<int> lonely{6, 1};
  const std::vector<double> times{0.5, 0.5};
  CHECK_THROWS_WITH(field.forward(p.values.data(), z.data(), lonely, times, nullptr, ws, f.data(), nullptr),
                    Catch::Contains("at least 2 nodes"));
}
