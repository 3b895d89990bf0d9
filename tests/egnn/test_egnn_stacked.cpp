// Several samples in one evaluation (VectorField::forward over G graphs): each
// sample's value, tangents and input cotangent are bit for bit those it gives
// alone, whatever the other samples, their sizes and their order, in float and
// double; the parameter gradient is the sum of theirs;
// and the block-diagonal Jacobian lets one tangent carry a direction of every
// sample at once.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

#include "egnn/vector_field.hpp"
#include "support/random_model.hpp"

using namespace enf;
using namespace enf::test;

namespace {


// The parameter gradient sums the samples' contributions inside the products
// rather than sample by sample: equal to the rounding of double arithmetic.
constexpr double kRounding = 1e-12;

double rel(double a, double b) { return std::abs(a - b) / std::max(1.0, std::max(std::abs(a), std::abs(b))); }

template <class T>
struct Sample {
  int n;
  T t;
  std::vector<T> z;
  detail::Mat<T> V, JVbar;  // K rows over this sample's n·C values
  std::vector<T> fbar;
};

template <class T>
struct Alone {
  std::vector<T> f, zbar, grad;
  detail::Mat<T> JV;
};

template <class T>
Alone<T> alone(const VectorField<T>& field, const std::vector<T>& p, const Sample<T>& s) {
  FieldWorkspace<T> ws;
  Alone<T> r;
  const int S = s.n * field.channels();
  r.f.resize(S);
  r.zbar.resize(S);
  r.grad.assign(p.size(), T(0));
  field.forward(p.data(), s.z.data(), s.n, s.t, &s.V, ws, r.f.data(), &r.JV);
  field.reverse(p.data(), ws, s.fbar.data(), &s.JVbar, r.zbar.data(), r.grad.data());
  return r;
}

template <class T>
std::vector<Sample<T>> make_samples(const FieldConfig& cfg, const std::vector<int>& sizes, int K, Rng& rng) {
  const int C = cfg.channels();
  std::vector<Sample<T>> out;
  for (int n : sizes) {
    const auto z = random_state(cfg, n, rng);
    Sample<T> s{n, T(rng.uniform()), std::vector<T>(z.begin(), z.end()), detail::Mat<T>(K, n * C),
                detail::Mat<T>(K, n * C), {}};
    for (int k = 0; k < K; ++k)
      for (int c = 0; c < n * C; ++c) {
        s.V(k, c) = T(rng.normal());
        s.JVbar(k, c) = T(rng.normal());
      }
    s.fbar.resize(std::size_t(n) * C);
    for (T& v : s.fbar) v = T(rng.normal());
    out.push_back(std::move(s));
  }
  return out;
}

// The samples in `order`, stacked into one evaluation; results per sample, in
// the samples' own numbering.
template <class T>
std::vector<Alone<T>> stacked(const VectorField<T>& field, const std::vector<T>& p,
                              const std::vector<Sample<T>>& samples, const std::vector<int>& order, int K,
                              std::vector<T>* grad_sum) {
  const int C = field.channels();
  std::vector<int> sizes;
  std::vector<T> t, z, fbar;
  int total = 0;
  for (int g : order) {
    sizes.push_back(samples[g].n);
    t.push_back(samples[g].t);
    z.insert(z.end(), samples[g].z.begin(), samples[g].z.end());
    fbar.insert(fbar.end(), samples[g].fbar.begin(), samples[g].fbar.end());
    total += samples[g].n * C;
  }
  detail::Mat<T> V(K, total), JVbar(K, total), JV;
  for (int off = 0; int g : order) {
    const int S = samples[g].n * C;
    V.middleCols(off, S) = samples[g].V;
    JVbar.middleCols(off, S) = samples[g].JVbar;
    off += S;
  }
  FieldWorkspace<T> ws;
  std::vector<T> f(total), zbar(total);
  grad_sum->assign(p.size(), T(0));
  field.forward(p.data(), z.data(), sizes, t, &V, ws, f.data(), &JV);
  field.reverse(p.data(), ws, fbar.data(), &JVbar, zbar.data(), grad_sum->data());
  std::vector<Alone<T>> out(samples.size());
  for (int off = 0; int g : order) {
    const int S = samples[g].n * C;
    out[g].f.assign(f.begin() + off, f.begin() + off + S);
    out[g].zbar.assign(zbar.begin() + off, zbar.begin() + off + S);
    out[g].JV = JV.middleCols(off, S);
    off += S;
  }
  return out;
}

// Bit for bit: every product runs row by row (row_products.hpp) and every
// other operation is per node or per edge, so a sample's arithmetic is the
// same wherever its rows sit.
template <class T>
void check_same(const Alone<T>& a, const Alone<T>& b) {
  REQUIRE(a.f == b.f);
  REQUIRE(a.zbar == b.zbar);
  REQUIRE(a.JV.rows() == b.JV.rows());
  REQUIRE(a.JV == b.JV);
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

TEMPLATE_TEST_CASE("stacked samples give what each gives alone, in any order", "[egnn][stacked]", float, double) {
  using T = TestType;
  const Aggregation agg = GENERATE(Aggregation::Sum, Aggregation::Mean);
  const bool molecules = GENERATE(false, true);
  // Hidden widths below and above row_products' tile (32 floats, 16 doubles),
  // multiples of the SIMD width (16 floats with AVX-512) as every shipped
  // model's (32, 64): Eigen's elementwise kernels (SiLU's exp) send an array's
  // last partial packet through scalar code, which rounds differently, so with
  // a hidden width that is not a multiple, the stack's last rows would round
  // differently from the same rows alone.
  const int hidden = GENERATE(16, 48);
  FieldConfig cfg = molecules ? small_molecule_field() : particle_field(agg);
  cfg.hidden = hidden;
  CAPTURE(molecules, int(agg), hidden);
  const auto pd = random_params(cfg, 41);
  const std::vector<T> p(pd.values.begin(), pd.values.end());
  VectorField<T> field(cfg, pd.layout);
  Rng rng(42);
  const int K = 3;
  const auto samples = make_samples<T>(cfg, {4, 7, 2, 5, 4, 3}, K, rng);

  std::vector<Alone<T>> ref;
  std::vector<double> grad_ref(p.size(), 0.0);
  for (const Sample<T>& s : samples) {
    ref.push_back(alone(field, p, s));
    for (std::size_t k = 0; k < grad_ref.size(); ++k) grad_ref[k] += double(ref.back().grad[k]);
  }
  std::vector<int> order(samples.size());
  std::iota(order.begin(), order.end(), 0);
  for (const std::vector<int>& o : {order, std::vector<int>{3, 0, 5, 4, 2, 1}, std::vector<int>{2, 4}}) {
    std::vector<T> grad;
    const auto got = stacked(field, p, samples, o, K, &grad);
    for (int g : o) check_same(ref[g], got[g]);
    if (o.size() == samples.size() && std::is_same_v<T, double>)
      for (std::size_t k = 0; k < grad.size(); ++k) REQUIRE(rel(double(grad[k]), grad_ref[k]) < kRounding);
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
  using Mat = detail::Mat<double>;
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
    double tr = 0;
    for (int k = 0; k < n * C; ++k) tr += JV(k, k);
    trace_alone.push_back(tr);
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
    CHECK(tr == trace_alone[g]);  // the same diagonal entries, summed in the same order
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
