// Batches: node masks (a padded molecule gives exactly what it gives
// unpadded), mixed molecule sizes, results independent of batch composition
// and thread count, and clear errors for bad input.
#include <catch2/catch.hpp>

#include "support/batch_field.hpp"
#include "support/fixtures.hpp"
#include "support/random_model.hpp"

using namespace enf;
using namespace enf::test;

namespace {

struct All {
  std::vector<double> f, div, hutch, JV, zbar, grad, zbar_exact, grad_exact;
};

// Every batched operation on one input.
All run_all(BatchField<double>& batch, const Parameters<double>& p, const BatchInput<double>& in,
            const std::vector<double>& eps, const std::vector<double>& a, const std::vector<double>& a_l) {
  const std::size_t S = std::size_t(in.nodes) * batch.field().config().channels();
  All r;
  r.f.resize(in.batch * S);
  r.div.resize(in.batch);
  r.hutch.resize(in.batch);
  r.JV.resize(in.batch * S);
  r.zbar.resize(in.batch * S);
  r.zbar_exact.resize(in.batch * S);
  r.grad.assign(p.values.size(), 0.0);
  r.grad_exact.assign(p.values.size(), 0.0);
  std::vector<double> f2(r.f.size());
  batch.divergence(p.values.data(), in, r.f.data(), r.div.data());
  batch.hutchinson(p.values.data(), in, eps.data(), f2.data(), r.hutch.data());
  batch.jvp(p.values.data(), in, 1, eps.data(), f2.data(), r.JV.data());
  batch.adjoint_vjp(p.values.data(), in, eps.data(), a.data(), a_l.data(), r.zbar.data(), r.grad.data());
  batch.adjoint_vjp(p.values.data(), in, nullptr, a.data(), a_l.data(), r.zbar_exact.data(), r.grad_exact.data());
  return r;
}

}  // namespace

TEST_CASE("a molecule padded with masked nodes gives exactly what it gives unpadded", "[masks][egnn]") {
  const FieldConfig cfg = small_molecule_field();
  const int C = cfg.channels(), n = 5;
  const auto p = random_params(cfg, 31);
  VectorField<double> field(cfg, p.layout);
  BatchField<double> batch(field, 1);
  Rng rng(32);
  const auto z = random_state(cfg, n, rng);
  std::vector<double> eps(z.size()), a(z.size()), a_l{0.8};
  for (double& e : eps) e = rng.rademacher();
  for (double& v : a) v = rng.normal();
  const double t = 0.3;
  const All ref = run_all(batch, p, {1, n, z.data(), nullptr, {&t, 1}}, eps, a, a_l);

  // Pad to 9 nodes with padding interleaved (real nodes at 0, 2, 3, 6, 7); the
  // padded entries hold garbage that must not matter.
  const std::vector<int> where{0, 2, 3, 6, 7};
  const int np = 9;
  std::vector<double> zp(np * C, 123.0), mask(np, 0.0), epsp(np * C, -1.0), ap(np * C, 7.0);
  for (int k = 0; k < n; ++k) {
    mask[where[k]] = 1;
    for (int c = 0; c < C; ++c) {
      zp[where[k] * C + c] = z[k * C + c];
      epsp[where[k] * C + c] = eps[k * C + c];
      ap[where[k] * C + c] = a[k * C + c];
    }
  }
  const All pad = run_all(batch, p, {1, np, zp.data(), mask.data(), {&t, 1}}, epsp, ap, a_l);
  for (int i = 0; i < np; ++i)
    for (int c = 0; c < C; ++c) {
      const int k = int(std::find(where.begin(), where.end(), i) - where.begin());
      const bool real = k < n;
      INFO("node " << i << " channel " << c);
      CHECK(pad.f[i * C + c] == (real ? ref.f[k * C + c] : 0.0));
      CHECK(pad.JV[i * C + c] == (real ? ref.JV[k * C + c] : 0.0));
      CHECK(pad.zbar[i * C + c] == (real ? ref.zbar[k * C + c] : 0.0));
      CHECK(pad.zbar_exact[i * C + c] == (real ? ref.zbar_exact[k * C + c] : 0.0));
    }
  CHECK(pad.div == ref.div);
  CHECK(pad.hutch == ref.hutch);
  CHECK(pad.grad == ref.grad);
  CHECK(pad.grad_exact == ref.grad_exact);
}

TEST_CASE("results do not depend on batch composition or thread count", "[batch][egnn]") {
  const FieldConfig cfg = small_molecule_field();
  const int C = cfg.channels(), n = 8, B = 21;
  const auto p = random_params(cfg, 33);
  VectorField<double> field(cfg, p.layout);
  Rng rng(34);
  std::vector<double> z(B * n * C), mask(B * n, 0.0), eps(z.size()), a(z.size()), a_l(B), ts(B);
  for (int b = 0; b < B; ++b) {
    const int real = 2 + b % (n - 1);
    const auto zb = random_state(cfg, real, rng);
    for (int i = 0; i < real; ++i) {
      mask[b * n + i] = 1;
      for (int c = 0; c < C; ++c) z[(b * n + i) * C + c] = zb[i * C + c];
    }
    a_l[b] = rng.normal();
    ts[b] = rng.uniform();
  }
  for (double& e : eps) e = rng.rademacher();
  for (double& v : a) v = rng.normal();
  BatchInput<double> in{B, n, z.data(), mask.data(), ts};
  BatchField<double> one(field, 1), two(field, 2), three(field, 3);
  const All r1 = run_all(one, p, in, eps, a, a_l), r2 = run_all(two, p, in, eps, a, a_l),
            r3 = run_all(three, p, in, eps, a, a_l);
  CHECK(r1.f == r2.f);
  CHECK(r1.div == r2.div);
  CHECK(r1.hutch == r3.hutch);
  CHECK(r1.zbar == r3.zbar);
  INFO("max diff " << max_abs_diff(r1.grad, r2.grad) << " " << max_abs_diff(r1.grad, r3.grad));
  CHECK(r1.grad == r2.grad);  // bit for bit: gradients are summed in a fixed order
  CHECK(r1.grad == r3.grad);
  CHECK(r1.grad_exact == r2.grad_exact);

  // Sample 5 alone gives the same numbers as inside the batch.
  const int s = 5;
  const std::size_t S = std::size_t(n) * C;
  std::vector<double> zs(z.begin() + s * S, z.begin() + (s + 1) * S), ms(mask.begin() + s * n, mask.begin() + (s + 1) * n),
      es(eps.begin() + s * S, eps.begin() + (s + 1) * S), as(a.begin() + s * S, a.begin() + (s + 1) * S), als{a_l[s]};
  const All alone = run_all(one, p, {1, n, zs.data(), ms.data(), {&ts[s], 1}}, es, as, als);
  CHECK(std::vector<double>(r1.f.begin() + s * S, r1.f.begin() + (s + 1) * S) == alone.f);
  CHECK(r1.div[s] == alone.div[0]);
  CHECK(r1.hutch[s] == alone.hutch[0]);
  CHECK(std::vector<double>(r1.zbar.begin() + s * S, r1.zbar.begin() + (s + 1) * S) == alone.zbar);
}

TEST_CASE("the batched VJP sums per-sample parameter gradients", "[batch][egnn]") {
  const FieldConfig cfg = particle_field(3);
  const int n = 5, B = 3, S = n * 3;
  const auto p = random_params(cfg, 35);
  VectorField<double> field(cfg, p.layout);
  BatchField<double> batch(field, 2);
  Rng rng(36);
  std::vector<double> z, eps(B * S), a(B * S), a_l{0.5, -1.0, 2.0};
  for (int b = 0; b < B; ++b) {
    auto zb = random_state(cfg, n, rng);
    z.insert(z.end(), zb.begin(), zb.end());
  }
  for (double& e : eps) e = rng.rademacher();
  for (double& v : a) v = rng.normal();
  const double t = 0.5;
  std::vector<double> zbar(B * S), grad(p.values.size(), 0.0), sum(p.values.size(), 0.0);
  batch.adjoint_vjp(p.values.data(), {B, n, z.data(), nullptr, {&t, 1}}, eps.data(), a.data(), a_l.data(), zbar.data(),
                    grad.data());
  for (int b = 0; b < B; ++b) {
    std::vector<double> zb1(S), g1(p.values.size(), 0.0);
    batch.adjoint_vjp(p.values.data(), {1, n, z.data() + b * S, nullptr, {&t, 1}}, eps.data() + b * S,
                      a.data() + b * S, &a_l[b], zb1.data(), g1.data());
    for (std::size_t k = 0; k < sum.size(); ++k) sum[k] += g1[k];
  }
  CHECK(max_abs_diff(grad, sum) <= 1e-12 * std::max(1.0, max_abs(sum)));
}

TEST_CASE("bad input gets a clear error", "[errors][egnn]") {
  const FieldConfig cfg = small_molecule_field();
  const int C = cfg.channels(), n = 4;
  const auto p = random_params(cfg, 37);
  VectorField<double> field(cfg, p.layout);
  BatchField<double> batch(field, 1);
  Rng rng(38);
  auto z = random_state(cfg, n, rng);
  std::vector<double> f(z.size()), mask(n, 1.0);
  const double t = 0.5;
  auto velocity = [&](const BatchInput<double>& in) { batch.velocity(p.values.data(), in, f.data()); };

  SECTION("non-finite input names the node and channel") {
    z[2 * C + 1] = std::nan("");
    CHECK_THROWS_WITH(velocity({1, n, z.data(), nullptr, {&t, 1}}),
                      Catch::Contains("node 2") && Catch::Contains("channel 1") && Catch::Contains("not finite"));
    z[2 * C + 1] = INFINITY;
    CHECK_THROWS_WITH(velocity({1, n, z.data(), nullptr, {&t, 1}}), Catch::Contains("not finite"));
  }
  SECTION("a mask that leaves fewer than 2 nodes") {
    mask = {0, 1, 0, 0};
    CHECK_THROWS_WITH(velocity({1, n, z.data(), mask.data(), {&t, 1}}),
                      Catch::Contains("leaves 1 node") && Catch::Contains("at least 2"));
  }
  SECTION("mask values other than 0 and 1") {
    mask[1] = 0.5;
    CHECK_THROWS_WITH(velocity({1, n, z.data(), mask.data(), {&t, 1}}), Catch::Contains("0 or 1"));
  }
  SECTION("masked nodes may hold anything") {
    mask[3] = 0;
    z[3 * C] = std::nan("");
    CHECK_NOTHROW(velocity({1, n, z.data(), mask.data(), {&t, 1}}));
  }
  SECTION("wrong number of time values") {
    const double ts[2] = {0.1, 0.2};
    CHECK_THROWS_WITH(velocity({1, n, z.data(), nullptr, {ts, 2}}), Catch::Contains("t has 2 values"));
  }
  SECTION("non-finite time") {
    const double bad = INFINITY;
    CHECK_THROWS_WITH(velocity({1, n, z.data(), nullptr, {&bad, 1}}), Catch::Contains("t is not finite"));
  }
  SECTION("tangent directions of the wrong size") {
    FieldWorkspace<double> ws;
    detail::Mat<double> V(1, n * C + 1), JV;
    CHECK_THROWS_WITH(field.forward(p.values.data(), z.data(), n, 0.5, &V, ws, f.data(), &JV),
                      Catch::Contains("columns"));
  }
  SECTION("a layout without the field's tensors") {
    ParameterLayout other;
    other.add("egnn.embedding.weight", {3, 3});
    CHECK_THROWS_WITH(VectorField<double>(cfg, other), Catch::Contains("embedding.weight"));
  }
}

TEST_CASE("the QM9 field layout has the pretrained model's tensor names and shapes", "[layout][egnn][qm9]") {
  const auto& fx = fixture("egnn_qm9.json");
  const ParameterLayout layout = field_layout(qm9_field());
  std::vector<std::string> names;
  for (const auto& info : layout.tensors()) names.push_back(info.name);
  std::vector<std::string> expected;
  const std::string prefix = fx["model"]["param_prefix"];
  for (const auto& n : fx["model"]["param_names"]) {
    std::string s = n;
    expected.push_back(s.rfind(prefix, 0) == 0 ? s.substr(prefix.size()) : s);
  }
  std::sort(names.begin(), names.end());
  std::sort(expected.begin(), expected.end());
  CHECK(names == expected);
}
