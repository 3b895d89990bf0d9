// Parity with the reference PyTorch implementation (tests/fixtures):
// velocity, per-layer values, Jacobian, exact divergence and Hutchinson
// estimate, in float64 and float32, for DW4, LJ13 and the pretrained QM9 field.
#include <catch2/catch.hpp>

#include <limits>

#include "support/batch_field.hpp"
#include "support/fixtures.hpp"

using namespace enf;
using namespace enf::test;

namespace {

// Evaluates the batch of the fixture with the field in scalar type T and
// returns {f, div_exact, div_hutch}.
template <class T>
struct Results {
  std::vector<double> f, div, hutch;
};

template <class T>
Results<T> evaluate(const FieldConfig& cfg, const Parameters<double>& p64, const std::vector<double>& z,
                    const std::vector<double>* mask, int B, int n, double t, const std::vector<double>& eps) {
  VectorField<T> field(cfg, p64.layout);
  BatchField<T> batch(field);
  Parameters<T> p = p64.template cast<T>();
  std::vector<T> zt(z.begin(), z.end()), mt, et(eps.begin(), eps.end());
  if (mask) mt.assign(mask->begin(), mask->end());
  const T tt = T(t);
  BatchInput<T> in{B, n, zt.data(), mask ? mt.data() : nullptr, {&tt, 1}};
  std::vector<T> f(z.size()), f2(z.size()), div(B), hutch(B);
  batch.divergence(p.values.data(), in, f.data(), div.data());
  batch.hutchinson(p.values.data(), in, et.data(), f2.data(), hutch.data());
  // The velocity does not depend on which derivative was asked for, to
  // rounding: the exact trace evaluates layer 0's value block in products of
  // its own (node-local tangents, egnn_local_tangents.cpp), Hutchinson
  // stacked with its tangent, and a product's rounding depends on its rows.
  std::vector<double> fd(f.begin(), f.end()), f2d(f2.begin(), f2.end());
  INFO("f: exact-trace path vs Hutchinson path " << max_abs_diff(fd, f2d) << " of " << max_abs(f2d));
  // 64 ulps: products of width 32 to 64 in each of the layers (measured: 11).
  REQUIRE(max_abs_diff(fd, f2d) <= 64 * std::numeric_limits<T>::epsilon() * std::max(1.0, max_abs(f2d)));
  return {std::vector<double>(f.begin(), f.end()), std::vector<double>(div.begin(), div.end()),
          std::vector<double>(hutch.begin(), hutch.end())};
}

void check_particles(const std::string& file) {
  const auto& fx = fixture(file);
  const int n = fx["n_particles"], D = fx["n_dim"];
  const auto x = flat(fx["x"]), eps = flat(fx["eps"]);
  const int B = int(x.size()) / (n * D);
  const double t = fx["t"];
  const FieldConfig cfg = particle_field(D);
  const ParameterLayout layout = field_layout(cfg);

  for (const std::string variant : {"init", "perturbed"}) {
    SECTION(file + " " + variant) {
      const auto& v = fx["variants"][variant];
      // Our tensors are registered in the reference's named_parameters() order.
      std::vector<std::string> names;
      for (const auto& info : layout.tensors()) names.push_back(info.name);
      REQUIRE(names == v["param_order"].get<std::vector<std::string>>());
      const Parameters<double> p = params_from_json(layout, v["params"]);

      const auto f64 = flat(v["f_float64"]);
      const double scale = std::max(1.0, max_abs(f64));
      auto r = evaluate<double>(cfg, p, x, nullptr, B, n, t, eps);
      CHECK(max_abs_diff(r.f, f64) <= tol::kFloat64Relative * scale);
      const auto div64 = flat(v["div_exact_float64"]), hutch64 = flat(v["div_hutch_float64"]);
      CHECK(max_abs_diff(r.div, div64) <= tol::kFloat64Relative * std::max(1.0, max_abs(div64)));
      CHECK(max_abs_diff(r.hutch, hutch64) <= tol::kFloat64Relative * std::max(1.0, max_abs(hutch64)));

      auto r32 = evaluate<float>(cfg, p, x, nullptr, B, n, t, eps);
      CHECK(max_abs_diff(r32.f, f64) <= tol::kFloat32 * scale);
      CHECK(max_abs_diff(r32.div, div64) <= tol::kFloat32 * std::max(1.0, max_abs(div64)));
      CHECK(max_abs_diff(r32.hutch, hutch64) <= tol::kFloat32 * std::max(1.0, max_abs(hutch64)));
      CHECK(max_abs_diff(r32.div, flat(v["div_exact_float32"])) <= tol::kFloat32 * std::max(1.0, max_abs(div64)));

      // Jacobian: J·e_k for every direction k is column k.
      VectorField<double> field(cfg, layout);
      FieldWorkspace<double> ws;
      const auto jac = flat(v["jacobian_float64"]);
      const int S = n * D;
      detail::Mat<double> I = detail::Mat<double>::Identity(S, S), JV;
      std::vector<double> f(S);
      double jmax = 0, jerr = 0;
      for (int b = 0; b < B; ++b) {
        field.forward(p.values.data(), x.data() + b * S, n, t, &I, ws, f.data(), &JV);
        for (int o = 0; o < S; ++o)
          for (int k = 0; k < S; ++k) {
            const double ref = jac[(std::size_t(b) * S + o) * S + k];
            jmax = std::max(jmax, std::abs(ref));
            jerr = std::max(jerr, std::abs(JV(k, o) - ref));
          }
      }
      CHECK(jerr <= tol::kFloat64Relative * std::max(1.0, jmax));

      // Per-layer values (the network evaluated with every output requested,
      // as the reference computes the last layer's node update too).
      EgnnNetwork<double> net(cfg.egnn(), layout);
      EgnnWorkspace<double> nws;
      const auto& layers = v["layers_float64"];
      REQUIRE(int(layers.size()) == cfg.layers);
      for (int b = 0; b < B; ++b) {
        detail::Mat<double> xb(n, D), h0 = detail::Mat<double>::Constant(n, 1, t);
        for (int i = 0; i < n; ++i)
          for (int d = 0; d < D; ++d) xb(i, d) = x[(b * n + i) * D + d];
        net.forward(p.values.data(), xb, h0, n, 1, {true, true}, nws);
        for (int l = 0; l < cfg.layers; ++l) {
          const auto h_ref = flat(layers[l]["h"]), x_ref = flat(layers[l]["x"]);
          double eh = 0, ex = 0, sh = 1, sx = 1;
          for (int i = 0; i < n; ++i) {
            for (int c = 0; c < cfg.hidden; ++c) {
              const double ref = h_ref[(b * n + i) * cfg.hidden + c];
              sh = std::max(sh, std::abs(ref));
              eh = std::max(eh, std::abs(nws.hs[l + 1](i, c) - ref));
            }
            for (int d = 0; d < D; ++d) {
              const double ref = x_ref[(b * n + i) * D + d];
              sx = std::max(sx, std::abs(ref));
              ex = std::max(ex, std::abs(nws.xs[l + 1](i, d) - ref));
            }
          }
          INFO("layer " << l << " sample " << b);
          CHECK(eh <= tol::kFloat64Relative * sh);
          CHECK(ex <= tol::kFloat64Relative * sx);
        }
      }
    }
  }
}

}  // namespace

TEST_CASE("EGNN_dynamics matches the reference on DW4", "[fixtures][egnn]") { check_particles("egnn_dw4.json"); }

TEST_CASE("EGNN_dynamics matches the reference on LJ13", "[fixtures][egnn]") { check_particles("egnn_lj13.json"); }

TEST_CASE("EGNN_dynamics_QM9 matches the reference with the pretrained weights", "[fixtures][egnn][qm9]") {
  const auto& fx = fixture("egnn_qm9.json");
  const FieldConfig cfg = qm9_field();
  const ParameterLayout layout = field_layout(cfg);
  const Parameters<double> p = params_from_safetensors(
      layout, "datasets/models/en_flows_qm9_pretrained/flow.safetensors", fx["model"]["param_prefix"]);
  const int B = 2, n = fx["n_nodes_padded"], C = 9;
  const double t = fx["t"];
  const auto mask = flat(fx["node_mask"]), eps = flat(fx["eps_rademacher_masked"]);

  for (const std::string variant : {"raw", "actnorm"}) {
    SECTION(variant) {
      const auto& v = fx["variants"][variant];
      const auto xh = flat(v["xh"]), f64 = flat(v["f_float64"]);
      const double scale = std::max(1.0, max_abs(f64));
      auto r = evaluate<double>(cfg, p, xh, &mask, B, n, t, eps);
      CHECK(max_abs_diff(r.f, f64) <= tol::kFloat64Relative * scale);
      const auto div64 = flat(v["div_exact_float64"]), hutch64 = flat(v["div_hutch_float64"]);
      CHECK(max_abs_diff(r.div, div64) <= tol::kFloat64Relative * std::max(1.0, max_abs(div64)));
      CHECK(max_abs_diff(r.hutch, hutch64) <= tol::kFloat64Relative * std::max(1.0, max_abs(hutch64)));
      auto r32 = evaluate<float>(cfg, p, xh, &mask, B, n, t, eps);
      CHECK(max_abs_diff(r32.f, f64) <= tol::kFloat32 * scale);
      CHECK(max_abs_diff(r32.div, div64) <= tol::kFloat32 * std::max(1.0, max_abs(div64)));

      // Jacobian over the real atoms of each molecule.
      VectorField<double> field(cfg, layout);
      FieldWorkspace<double> ws;
      for (int b = 0; b < B; ++b) {
        const auto jac = flat(v["jacobian_float64"][b]);
        const int N = int(std::lround(std::sqrt(double(jac.size())))) / C, S = N * C;
        std::vector<double> z(xh.begin() + std::size_t(b) * n * C, xh.begin() + std::size_t(b) * n * C + S), f(S);
        detail::Mat<double> I = detail::Mat<double>::Identity(S, S), JV;
        field.forward(p.values.data(), z.data(), N, t, &I, ws, f.data(), &JV);
        double jmax = 0, jerr = 0;
        for (int o = 0; o < S; ++o)
          for (int k = 0; k < S; ++k) {
            jmax = std::max(jmax, std::abs(jac[std::size_t(o) * S + k]));
            jerr = std::max(jerr, std::abs(JV(k, o) - jac[std::size_t(o) * S + k]));
          }
        INFO("molecule " << b << " with " << N << " atoms");
        CHECK(jerr <= tol::kFloat64Relative * std::max(1.0, jmax));

        // Per-layer values of the real atoms.
        const auto& layers = v["layers_float64"];
        for (int l = 0; l < cfg.layers; ++l) {
          const auto h_ref = flat(layers[l]["h"]), x_ref = flat(layers[l]["x"]);
          double eh = 0, ex = 0, sh = 1, sx = 1;
          for (int i = 0; i < N; ++i) {
            for (int c = 0; c < cfg.hidden; ++c) {
              const double ref = h_ref[(std::size_t(b) * n + i) * cfg.hidden + c];
              sh = std::max(sh, std::abs(ref));
              eh = std::max(eh, std::abs(ws.net.hs[l + 1](i, c) - ref));
            }
            for (int d = 0; d < 3; ++d) {
              const double ref = x_ref[(std::size_t(b) * n + i) * 3 + d];
              sx = std::max(sx, std::abs(ref));
              ex = std::max(ex, std::abs(ws.net.xs[l + 1](i, d) - ref));
            }
          }
          INFO("layer " << l);
          CHECK(eh <= tol::kFloat64Relative * sh);
          CHECK(ex <= tol::kFloat64Relative * sx);
        }
      }
    }
  }
}
