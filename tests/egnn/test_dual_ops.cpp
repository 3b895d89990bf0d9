// Per-op derivative tests of egnn/dual_ops.hpp (as ggml's test-backend-ops
// tests each backend op on its own): every primitive's forward tangent rule
// against central differences of its value, and its reverse rule against
// central differences of a scalar loss through value and tangents, in float
// and double. The primitives: sigmoid; silu_forward / silu_reverse;
// scalar_forward / scalar_reverse with the two activations the network gives
// them (σ for attention, C·tanh for the coordinate range — the lambdas of
// egnn_network.cpp, repeated here: the header does not hold them);
// linear_forward / linear_reverse (with and without bias, accumulating or not).
//
// Error bounds: for a central difference of half-width δ the truncation error
// is ≤ δ²/6 · sup|g'''| and the rounding error ≤ 2·c·ε·|g| / (2δ), where c·ε
// bounds the relative error of one evaluation of g. The test computes that
// bound for every entry from the derivative bounds of each activation
// (kSilu, kSigmoid, kTanh below) and checks |rule − difference| ≤ 2 × bound
// (the factor covers the estimate of c; where sup|g'''| is reached, as for
// tanh at s = 0, the truncation bound is the actual error: measured at 0.82
// (float) and 1.00 (double) of the bound there, silu below 0.13 and σ below
// 0.19 of theirs). δ = cbrt(ε)·max(1, |s|): the step
// that balances the two terms for a smooth g, scaled with |s| so that the
// rounding of s ± δ stays ~ε|s| relative to δ.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "egnn/dual_ops.hpp"

using namespace enf::detail;

namespace {

constexpr double kSafety = 2;  // on the computed bounds (see the header comment)
constexpr double kRoundingUlps = 8;  // c: one evaluation of g (exp, a division, products) is within 8 ulp

// sup over the real line of |g''|, |g'''|, |g''''| (max of |g'| too), from
// the closed forms, evaluated on a grid of step 1e-3 over [−20, 20] and
// rounded up: silu'' peaks at s = 0 (0.5); σ'' at ±1.32 (0.0962); tanh''
// (0.770), tanh''' at 0 (2), tanh'''' (4.09). C·tanh scales all of them by C.
struct DerivativeBounds {
  double g1, g2, g3, g4;
};
constexpr DerivativeBounds kSilu{1.1, 0.5, 0.31, 0.5};
constexpr DerivativeBounds kSigmoid{0.25, 0.0963, 0.125, 0.128};
constexpr DerivativeBounds kTanh{1.0, 0.77, 2.0, 4.09};
// The coordinate range of the network's tanh: coords_range / layers = 15 / 3.
constexpr double kTanhScale = 5.0;

// An elementwise primitive on stacked blocks (block 0 the value, 1..K the
// tangents), flattened block-major: entry e of block b at b·N + e.
template <class T>
struct Elementwise {
  std::string name;
  DerivativeBounds bounds;
  std::function<std::vector<T>(const std::vector<T>& s, int blocks)> forward;
  // Forward then reverse for the cotangent ybar (what the network does).
  std::function<std::vector<T>(const std::vector<T>& s, int blocks, const std::vector<T>& ybar)> reverse;
};

constexpr int kCols = 4;  // silu works on matrices: N entries as (N / 4) × 4 per block

template <class T>
Elementwise<T> silu_op() {
  auto to_mat = [](const std::vector<T>& v) {
    return Mat<T>(ConstMatMap<T>(v.data(), Eigen::Index(v.size() / kCols), kCols));
  };
  auto to_vec = [](const Mat<T>& m) { return std::vector<T>(m.data(), m.data() + m.size()); };
  return {"silu", kSilu,
          [=](const std::vector<T>& s, int blocks) {
            Mat<T> y, sig, d1;
            silu_forward<T>(to_mat(s), blocks, y, sig, d1);
            return to_vec(y);
          },
          [=](const std::vector<T>& s, int blocks, const std::vector<T>& ybar) {
            const Mat<T> S = to_mat(s);
            Mat<T> y, sig, d1, yb = to_mat(ybar), mix;
            silu_forward<T>(S, blocks, y, sig, d1);
            silu_reverse<T>(S, sig, d1, blocks, yb, mix);
            return to_vec(yb);
          }};
}

template <class T, class Fn>
Elementwise<T> scalar_op(std::string name, DerivativeBounds b, Fn fn) {
  auto to_vec = [](const Vec<T>& v) { return std::vector<T>(v.data(), v.data() + v.size()); };
  return {std::move(name), b,
          [=](const std::vector<T>& s, int blocks) {
            Vec<T> y, d1, d2;
            scalar_forward<T>(Eigen::Map<const Vec<T>>(s.data(), Eigen::Index(s.size())), blocks, fn, y, d1, d2);
            return to_vec(y);
          },
          [=](const std::vector<T>& s, int blocks, const std::vector<T>& ybar) {
            const Vec<T> S = Eigen::Map<const Vec<T>>(s.data(), Eigen::Index(s.size()));
            Vec<T> y, d1, d2, yb = Eigen::Map<const Vec<T>>(ybar.data(), Eigen::Index(ybar.size()));
            scalar_forward<T>(S, blocks, fn, y, d1, d2);
            scalar_reverse<T>(S, d1, d2, blocks, yb);
            return to_vec(yb);
          }};
}

template <class T>
std::vector<Elementwise<T>> elementwise_ops() {
  const T C = T(kTanhScale);
  const DerivativeBounds tanh_b{C * kTanh.g1, C * kTanh.g2, C * kTanh.g3, C * kTanh.g4};
  return {silu_op<T>(),
          scalar_op<T>("sigmoid (attention)", kSigmoid,
                       [](T s, T& y, T& d1, T& d2) {
                         y = sigmoid(s);
                         d1 = y * (T(1) - y);
                         d2 = d1 * (T(1) - T(2) * y);
                       }),
          scalar_op<T>("C·tanh (coordinate range)", tanh_b, [C](T s, T& y, T& d1, T& d2) {
            const T th = std::tanh(s);
            y = C * th;
            d1 = C * (T(1) - th * th);
            d2 = T(-2) * th * d1;
          })};
}

// N = 32 values of s⁰: 0, tiny, moderate, saturated (|s| up to 40: e^±40 is
// finite in float), and random N(0, 3²).
template <class T>
std::vector<T> values_of_s(std::mt19937_64& rng) {
  std::vector<T> s{0, T(1e-7), T(-1e-7), T(1e-3), T(-1e-3), T(0.5), T(-0.5), 1, -1, T(2.5), T(-2.5),
                   6, -6, 15, -15, 40, -40, T(-1.3)};
  std::normal_distribution<double> nd(0, 3);
  while (s.size() < 32) s.push_back(T(nd(rng)));
  return s;
}

template <class T>
std::vector<T> normals(std::size_t count, std::mt19937_64& rng) {
  std::normal_distribution<double> nd(0, 1);
  std::vector<T> v(count);
  for (T& x : v) x = T(nd(rng));
  return v;
}

// s⁰ ± δ per entry, δ = cbrt(ε)·max(1, |s⁰|); the tangent blocks are copied.
template <class T>
void shifted(const std::vector<T>& s, std::size_t N, std::vector<T>& sp, std::vector<T>& sm, std::vector<double>& H) {
  const double step = std::cbrt(double(std::numeric_limits<T>::epsilon()));
  sp = sm = s;
  H.resize(N);
  for (std::size_t e = 0; e < N; ++e) {
    const T d = T(step * std::max(1.0, std::abs(double(s[e]))));
    sp[e] = s[e] + d;
    sm[e] = s[e] - d;
    H[e] = double(sp[e]) - double(sm[e]);  // the step actually taken (exact in double)
  }
}

}  // namespace

TEMPLATE_TEST_CASE("dual ops: forward tangents match central differences of the value", "[dual_ops]", float,
                   double) {
  using T = TestType;
  const double eps = std::numeric_limits<T>::epsilon();
  std::mt19937_64 rng(11);
  for (const auto& op : elementwise_ops<T>()) {
    for (const int K : {1, 3}) {
      SECTION(op.name + ", K = " + std::to_string(K)) {
        const auto s0 = values_of_s<T>(rng);
        const std::size_t N = s0.size();
        std::vector<T> s = s0;
        const auto tangents = normals<T>(K * N, rng);
        s.insert(s.end(), tangents.begin(), tangents.end());
        const auto y = op.forward(s, 1 + K);
        const auto value = op.forward(s0, 1);
        // The value block does not depend on the tangents.
        CHECK(std::vector<T>(y.begin(), y.begin() + N) == value);
        std::vector<T> sp, sm;
        std::vector<double> H;
        shifted(s0, N, sp, sm, H);
        const auto gp = op.forward(sp, 1), gm = op.forward(sm, 1);
        const auto& B = op.bounds;
        double worst = 0;
        for (int k = 1; k <= K; ++k)
          for (std::size_t e = 0; e < N; ++e) {
            const double v = double(s[k * N + e]), yk = double(y[k * N + e]);
            const double slope = (double(gp[e]) - double(gm[e])) / H[e];
            const double gmax = std::max(std::abs(double(gp[e])), std::abs(double(gm[e])));
            // truncation (δ = H/2) + rounding of g(s ± δ) + the midpoint's
            // offset from s⁰ (ε|s⁰|) + rounding of the rule's own product.
            const double bound = std::abs(v) * (H[e] * H[e] / 24 * B.g3 + 2 * kRoundingUlps * eps * gmax / H[e] +
                                                 eps * std::abs(double(s0[e])) * B.g2) +
                                 kRoundingUlps * eps * std::abs(yk);
            const double err = std::abs(yk - slope * v);
            worst = std::max(worst, err / bound);
            INFO("s = " << s0[e] << ", block " << k << ": rule " << yk << ", difference " << slope * v << ", bound "
                        << bound);
            CHECK(err <= kSafety * bound);
          }
        INFO("largest error / bound " << worst);
        CHECK(worst > 0);  // the comparison ran on something
      }
    }
  }
}

TEMPLATE_TEST_CASE("dual ops: the reverse rule matches central differences of a loss through value and tangents",
                   "[dual_ops]", float, double) {
  // L(s) = Σ_b Σ_e w_b,e y_b,e(s). The primitive is elementwise, so entry e of
  // the loss, L_e = w⁰ g(s⁰) + m g'(s⁰) with m = Σ_k wᵏ sᵏ, depends only on
  // entry e of s: one perturbation of every entry at once gives every partial
  // derivative. ∂L/∂s⁰ = g'w⁰ + g''m (the second-order term); ∂L/∂sᵏ = g'wᵏ,
  // L affine in sᵏ, so that difference is exact with step 1 up to rounding.
  using T = TestType;
  const double eps = std::numeric_limits<T>::epsilon();
  std::mt19937_64 rng(12);
  for (const auto& op : elementwise_ops<T>()) {
    for (const int K : {0, 1, 3}) {
      SECTION(op.name + ", K = " + std::to_string(K)) {
        const int blocks = 1 + K;
        const auto s0 = values_of_s<T>(rng);
        const std::size_t N = s0.size();
        std::vector<T> s = s0;
        const auto tangents = normals<T>(K * N, rng);
        s.insert(s.end(), tangents.begin(), tangents.end());
        const auto w = normals<T>(blocks * N, rng);
        const auto sbar = op.reverse(s, blocks, w);
        REQUIRE(sbar.size() == s.size());
        // Per-entry loss and the sum of |terms| (its rounding scale).
        auto entry_loss = [&](const std::vector<T>& at, std::vector<double>& L, std::vector<double>& A) {
          const auto y = op.forward(at, blocks);
          L.assign(N, 0.0);
          A.assign(N, 0.0);
          for (int b = 0; b < blocks; ++b)
            for (std::size_t e = 0; e < N; ++e) {
              L[e] += double(w[b * N + e]) * double(y[b * N + e]);
              A[e] += std::abs(double(w[b * N + e]) * double(y[b * N + e]));
            }
        };
        const auto& B = op.bounds;
        std::vector<double> Lp, Lm, Ap, Am, H;
        std::vector<T> sp, sm;
        // ∂L/∂s⁰.
        shifted(s, N, sp, sm, H);
        entry_loss(sp, Lp, Ap);
        entry_loss(sm, Lm, Am);
        for (std::size_t e = 0; e < N; ++e) {
          double m = 0;
          for (int k = 1; k <= K; ++k) m += double(w[k * N + e]) * double(s[k * N + e]);
          const double w0 = std::abs(double(w[e])), am = std::abs(m);
          const double fd = (Lp[e] - Lm[e]) / H[e];
          const double bound = H[e] * H[e] / 24 * (w0 * B.g3 + am * B.g4) +
                               2 * kRoundingUlps * eps * std::max(Ap[e], Am[e]) / H[e] +
                               eps * std::abs(double(s0[e])) * (w0 * B.g2 + am * B.g3) +
                               kRoundingUlps * eps * (w0 * B.g1 + am * B.g2);
          INFO("s = " << s0[e] << ", K = " << K << ": s̄⁰ " << sbar[e] << ", difference " << fd << ", bound "
                      << bound);
          CHECK(std::abs(double(sbar[e]) - fd) <= kSafety * bound);
        }
        // ∂L/∂sᵏ, step 1 on every entry of block k.
        for (int k = 1; k <= K; ++k) {
          sp = sm = s;
          for (std::size_t e = 0; e < N; ++e) {
            sp[k * N + e] += T(1);
            sm[k * N + e] -= T(1);
          }
          entry_loss(sp, Lp, Ap);
          entry_loss(sm, Lm, Am);
          for (std::size_t e = 0; e < N; ++e) {
            const double fd = (Lp[e] - Lm[e]) / 2;
            const double bound = kRoundingUlps * eps *
                                 (std::max(Ap[e], Am[e]) + std::abs(double(w[k * N + e])) * B.g1 *
                                                               (1 + std::abs(double(s[k * N + e]))));
            INFO("s = " << s0[e] << ", block " << k << ": s̄ᵏ " << sbar[k * N + e] << ", difference " << fd);
            CHECK(std::abs(double(sbar[k * N + e]) - fd) <= kSafety * bound);
          }
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("dual ops: sigmoid is accurate and finite over the whole line", "[dual_ops]", float, double) {
  // Against 1/(1 + e^−s) in long double: within 4 ulp, or (where σ underflows)
  // within the smallest normal number; never NaN, even where e^−s overflows.
  using T = TestType;
  const long double eps = std::numeric_limits<T>::epsilon(), tiny = std::numeric_limits<T>::min();
  for (const double s : {-1000.0, -745.0, -200.0, -88.0, -40.0, -10.0, -1.0, -1e-8, 0.0, 1e-8, 0.3, 1.0, 10.0, 40.0,
                         88.0, 200.0, 1000.0}) {
    const T x = T(s);
    const long double ref = 1.0L / (1.0L + std::exp(-static_cast<long double>(x)));
    const T got = sigmoid(x);
    INFO("s = " << s << ": " << got << " vs " << double(ref));
    REQUIRE(std::isfinite(double(got)));
    CHECK(std::abs(static_cast<long double>(got) - ref) <= 4 * eps * std::max(ref, tiny));
  }
}


namespace {

template <class T>
Mat<T> random_mat(int rows, int cols, std::mt19937_64& rng) {
  std::normal_distribution<double> nd(0, 1);
  Mat<T> m(rows, cols);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) m(i, j) = T(nd(rng));
  return m;
}

}  // namespace

TEMPLATE_TEST_CASE("dual ops: linear tangents and reverse rule match central differences", "[dual_ops]", float,
                   double) {
  // Y = X Wᵀ (+ b on block 0). L = Σ Ȳ∘Y is affine in X, in W and in b taken
  // one at a time, so central differences with step 1 have no truncation
  // error: what remains is rounding, ≤ (in + 2)·ε per product sum relative to
  // the sum of |terms| (A below), twice (two evaluations), over the step 2.
  using T = TestType;
  const double eps = std::numeric_limits<T>::epsilon();
  constexpr int rows = 3, in = 5, out = 4;
  std::mt19937_64 rng(13);
  for (const bool bias : {true, false})
    for (const int K : {0, 1, 3}) {
      SECTION(std::string(bias ? "with" : "without") + " bias, K = " + std::to_string(K)) {
        const int blocks = 1 + K, R = blocks * rows;
        const Mat<T> X = random_mat<T>(R, in, rng), Ybar = random_mat<T>(R, out, rng);
        const Mat<T> Wm = random_mat<T>(out, in, rng), bm = random_mat<T>(1, out, rng);
        const std::vector<T> W(Wm.data(), Wm.data() + Wm.size()), b(bm.data(), bm.data() + bm.size());
        auto forward = [&](const Mat<T>& Xa, const std::vector<T>& Wa, const std::vector<T>& ba) {
          Mat<T> Y;
          linear_forward<T>(Xa, ConstMatMap<T>(Wa.data(), out, in), bias ? ba.data() : nullptr, blocks, Y);
          return Y;
        };
        // |X||W|ᵀ (+ |b| on block 0): the rounding scale of each output.
        const Eigen::MatrixXd absY = [&] {
          Eigen::MatrixXd a = X.template cast<double>().cwiseAbs() * Wm.template cast<double>().cwiseAbs().transpose();
          if (bias) a.topRows(rows).rowwise() += bm.template cast<double>().cwiseAbs().row(0);
          return a;
        }();
        const Mat<T> Y = forward(X, W, b);
        REQUIRE(Y.rows() == R);
        REQUIRE(Y.cols() == out);

        // Tangent rule: Yᵏ = Xᵏ Wᵀ, the derivative of Y⁰ along Xᵏ (no bias).
        for (int k = 1; k <= K; ++k) {
          Mat<T> Xp = X, Xm = X;
          Xp.topRows(rows) += X.middleRows(k * rows, rows);
          Xm.topRows(rows) -= X.middleRows(k * rows, rows);
          const Mat<T> Yp = forward(Xp, W, b), Ym = forward(Xm, W, b);
          for (int r = 0; r < rows; ++r)
            for (int o = 0; o < out; ++o) {
              const double fd = (double(Yp(r, o)) - double(Ym(r, o))) / 2;
              const double bound = (in + 2) * eps * (absY(r, o) + 2 * absY(k * rows + r, o));
              INFO("block " << k << " (" << r << ", " << o << "): rule " << Y(k * rows + r, o) << ", difference "
                            << fd);
              CHECK(std::abs(double(Y(k * rows + r, o)) - fd) <= kSafety * bound);
            }
        }

        // Reverse rule, accumulating into buffers that already hold values.
        Mat<T> Xbar = random_mat<T>(R, in, rng);
        const Mat<T> Xbar0 = Xbar;
        std::vector<T> Wbar(W.size()), bbar(b.size());
        for (T& v : Wbar) v = T(0.25);
        for (T& v : bbar) v = T(-0.5);
        linear_reverse<T>(X, Ybar, ConstMatMap<T>(W.data(), out, in), blocks, &Xbar, true, Wbar.data(),
                          bias ? bbar.data() : nullptr);
        auto loss = [&](const Mat<T>& Xa, const std::vector<T>& Wa, const std::vector<T>& ba) {
          return (forward(Xa, Wa, ba).template cast<double>().array() * Ybar.template cast<double>().array()).sum();
        };
        const double A = (absY.array() * Ybar.template cast<double>().cwiseAbs().array()).sum();
        const double bound = kSafety * (in + R + 2) * eps * A;  // A bounds every partial sum; R more terms in L
        for (int i = 0; i < R; ++i)
          for (int j = 0; j < in; ++j) {
            Mat<T> Xp = X, Xm = X;
            Xp(i, j) += T(1);
            Xm(i, j) -= T(1);
            const double fd = (loss(Xp, W, b) - loss(Xm, W, b)) / 2;
            const double got = double(Xbar(i, j)) - double(Xbar0(i, j));
            INFO("X̄(" << i << ", " << j << "): " << got << ", difference " << fd);
            CHECK(std::abs(got - fd) <= bound + 2 * eps * std::abs(double(Xbar0(i, j))));
          }
        for (std::size_t q = 0; q < W.size(); ++q) {
          std::vector<T> Wp = W, Wn = W;
          Wp[q] += T(1);
          Wn[q] -= T(1);
          const double fd = (loss(X, Wp, b) - loss(X, Wn, b)) / 2;
          INFO("W̄[" << q << "]: " << double(Wbar[q]) - 0.25 << ", difference " << fd);
          CHECK(std::abs(double(Wbar[q]) - 0.25 - fd) <= bound + eps);
        }
        for (std::size_t q = 0; q < b.size(); ++q) {
          std::vector<T> bp = b, bn = b;
          bp[q] += T(1);
          bn[q] -= T(1);
          const double fd = (loss(X, W, bp) - loss(X, W, bn)) / 2;  // 0 without bias
          const double got = bias ? double(bbar[q]) + 0.5 : 0.0;
          INFO("b̄[" << q << "]: " << got << ", difference " << fd);
          CHECK(std::abs(got - fd) <= bound + eps);
          if (!bias) CHECK(bbar[q] == T(-0.5));  // no bias: b̄ untouched
        }

        // Overwriting X̄ gives what accumulating added; without X̄ and b̄, W̄ is the same.
        Mat<T> Xbar2 = Mat<T>::Constant(R, in, T(1e3));
        std::vector<T> Wbar2(W.size(), T(0.25));
        linear_reverse<T>(X, Ybar, ConstMatMap<T>(W.data(), out, in), blocks, &Xbar2, false, Wbar2.data(), nullptr);
        CHECK(((Xbar2.template cast<double>() - (Xbar.template cast<double>() - Xbar0.template cast<double>()))
                   .cwiseAbs()
                   .maxCoeff()) <= bound + 2 * eps * Xbar0.template cast<double>().cwiseAbs().maxCoeff());
        std::vector<T> Wbar3(W.size(), T(0.25));
        linear_reverse<T>(X, Ybar, ConstMatMap<T>(W.data(), out, in), blocks, nullptr, false, Wbar3.data(), nullptr);
        CHECK(Wbar3 == Wbar2);
      }
    }
}
