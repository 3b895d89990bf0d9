// The QM9 flow: import of the official pretrained model, every term of the
// reference NLL (qm9_flow_pretrained.json), gradients of the whole model
// against finite differences, and the symmetries of the likelihood.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "engine/checkpoint.hpp"
#include "engine/initialization.hpp"
#include "engine/molecule_batch.hpp"
#include "engine/molecule_flow.hpp"
#include "support/cnf_options.hpp"
#include "support/finite_difference.hpp"
#include "support/fixtures.hpp"
#include "support/random_model.hpp"

using namespace enf;
using namespace enf::test;

namespace {

const std::string kPretrained = "datasets/models/en_flows_qm9_pretrained";

MoleculeInput fixture_input(const nlohmann::json& m) {
  MoleculeInput in;
  in.x = flat(m["x_centred"]);
  const auto onehot = flat(m["one_hot"]);
  for (std::size_t i = 0; i < onehot.size() / 5; ++i)
    for (int k = 0; k < 5; ++k)
      if (onehot[i * 5 + k] == 1) in.types.push_back(k);
  return in;
}

// |a − b| ≤ tol·max(1, |b|), elementwise.
void check_close(const std::vector<double>& a, const std::vector<double>& b, double tol, const std::string& what) {
  INFO(what);
  REQUIRE(a.size() == b.size());
  for (std::size_t k = 0; k < a.size(); ++k) {
    INFO("entry " << k);
    CHECK(std::abs(a[k] - b[k]) <= tol * std::max(1.0, std::abs(b[k])));
  }
}
void check_close(double a, double b, double tol, const std::string& what) {
  check_close(std::vector<double>{a}, std::vector<double>{b}, tol, what);
}

// Columns [lo, hi) of an n × C row-major array.
std::vector<double> columns(const std::vector<double>& a, int C, int lo, int hi) {
  std::vector<double> out;
  for (std::size_t i = 0; i < a.size() / C; ++i)
    for (int c = lo; c < hi; ++c) out.push_back(a[i * C + c]);
  return out;
}

}  // namespace

TEST_CASE("the pretrained QM9 model imports: field, ActNorm, dequantizer", "[molecule][import]") {
  const Checkpoint c = import_reference(kPretrained);
  REQUIRE(c.molecule.has_value());
  CHECK(c.system == "qm9");
  CHECK(c.molecule->dequantization == Dequantization::ArgmaxVariational);
  CHECK(c.molecule->actnorm);
  CHECK(c.field.hidden == 64);
  CHECK(c.field.layers == 6);
  // 82 field tensors + 3 ActNorm + 4 dequantizer layers × 11 + 4 embedding tensors.
  CHECK(c.params.layout.tensors().size() == 82 + 3 + 48);
  const auto xls = c.params.tensor("actnorm.x_log_s");
  CHECK(std::isfinite(xls[0]));
  CHECK(xls[0] != 0);
  // Round trip through enf's own checkpoint format.
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("enf-test-molecule-ckpt-" + std::to_string(::getpid()))).string();
  save_checkpoint(dir, c);
  const Checkpoint back = load_checkpoint(dir);
  std::filesystem::remove_all(dir);
  REQUIRE(back.molecule.has_value());
  CHECK(back.molecule->node_counts == c.molecule->node_counts);
  CHECK(std::equal(back.params.values.begin(), back.params.values.end(), c.params.values.begin()));
}

TEST_CASE("dequantizer, ActNorm and p(N) reproduce every recorded term of the reference", "[molecule][fixtures]") {
  // Everything before the ODE, for all three molecules (N = 9, 14, 19; all
  // five elements). float64 against float64: README §6 measured ≤ 9e-15 for a
  // field evaluation; the dequantizer is a 4-layer EGNN of the same kind.
  const Checkpoint c = import_reference(kPretrained);
  MoleculeFlow<double> flow(c.field, *c.molecule, exact_options(1e-9));
  MoleculeFlow<double>::Scratch s;
  const auto& fx = fixture("qm9_flow_pretrained.json");
  const double tol = tol::kFloat64Relative;
  for (const auto& m : fx["molecules"]) {
    const MoleculeInput in = fixture_input(m);
    const int n = in.atoms();
    INFO("molecule gdb " << m["molecule"]["gdb_index"] << " (" << n << " atoms)");
    MoleculeNoise noise;
    noise.dequantizer = flat(m["dequantizer"]["eps"]);
    Dequantizer<double> deq(*c.molecule, flow.layout());
    Dequantizer<double>::Workspace ws;
    const DequantizerTerms d = deq.forward(c.params.values.data(), in.x, in.types, noise.dequantizer, ws);
    const auto& r = m["dequantizer"];
    check_close(d.mu, flat(r["net_out_mu"]), tol, "mu");
    check_close(d.log_sigma, flat(r["net_out_log_sigma"]), tol, "log sigma");
    check_close(d.u, flat(r["u"]), tol, "u");
    check_close(d.log_q_eps, flat(r["log_q_eps"])[0], tol, "log q(eps)");
    check_close(d.sum_log_sigma, flat(r["sum_log_sigma"])[0], tol, "sum log sigma");
    check_close(d.log_q_u, flat(r["log_q_u"])[0], tol, "log q(u)");
    check_close(d.ldj_integer, flat(r["ldj_integer_sigmoid"])[0], tol, "ldj integer");
    check_close(d.ldj_categorical, flat(r["ldj_categorical_argmax"])[0], tol, "ldj categorical");
    check_close(columns(d.v, 6, 0, 5), flat(r["v_categorical"]), tol, "v categorical");
    check_close(columns(d.v, 6, 5, 6), flat(r["v_integer"]), tol, "v integer");
    check_close(d.log_q_v, flat(r["log_q_v"])[0], tol, "log q(v)");
    // The argmax of v is the true type.
    std::vector<int> types, charges;
    Dequantizer<double>::quantize(Dequantization::ArgmaxVariational, d.v, n, types, charges);
    CHECK(types == in.types);
    for (int i = 0; i < n; ++i) CHECK(charges[i] == kQm9AtomicNumbers[in.types[i]]);

    std::vector<double> y(std::size_t(n) * 9);
    for (int i = 0; i < n; ++i) {
      for (int k = 0; k < 3; ++k) y[i * 9 + k] = in.x[i * 3 + k];
      for (int k = 0; k < 6; ++k) y[i * 9 + 3 + k] = d.v[i * 6 + k];
    }
    check_close(y, flat(m["xh_dequantized"]), tol, "xh dequantized");
    const ActNormParams a = ActNormParams::read(c.params.tensor("actnorm.x_log_s").data());
    const double logdet = actnorm_forward(a, y, n);
    check_close(y, flat(m["actnorm"]["output"]), tol, "ActNorm output");
    check_close(logdet, flat(m["actnorm"]["logdet"])[0], tol, "ActNorm logdet");
    actnorm_inverse(a, y, n);
    check_close(y, flat(m["xh_dequantized"]), 1e-13, "ActNorm inverse");

    CHECK(flow.node_counts().log_prob(n) == flat(m["log_pN_repo_float32prob"])[0]);
    CHECK(flow.node_counts().log_prob(n, false) == Approx(m["log_pN_float64"].get<double>()).epsilon(1e-15));
  }
}

TEST_CASE("the whole QM9 NLL of the reference, exact trace at 1e-9 (molecule gdb 31)", "[molecule][fixtures][cnf]") {
  // README §6: any correct dopri5 at 1e-9 reproduces the NLL to 1e-5 and z to
  // 1e-6 (measured 1.4e-6 and 1.1e-7 against 1e-11).
  const Checkpoint c = import_reference(kPretrained);
  MoleculeFlow<double> flow(c.field, *c.molecule, exact_options(1e-9));
  MoleculeFlow<double>::Scratch s;
  const auto& m = fixture("qm9_flow_pretrained.json")["molecules"][0];
  const MoleculeInput in = fixture_input(m);
  MoleculeNoise noise;
  noise.dequantizer = flat(m["dequantizer"]["eps"]);
  const MoleculeLikelihood L = flow.log_likelihood(c.params.values.data(), in, noise, s);
  REQUIRE(L.ode.solve.ok());
  CHECK(max_abs_diff(L.ode.z, flat(m["ode"]["z"])) <= 1e-6);
  CHECK(std::abs(L.ode.delta_logp - flat(m["ode"]["delta_logp"])[0]) <= 1e-6);
  CHECK(std::abs(L.delta_logp_total - flat(m["delta_logp_total"])[0]) <= 1e-6);
  CHECK(std::abs(L.log_pz_x - flat(m["log_pz_x"])[0]) <= 1e-5);
  CHECK(std::abs(L.log_pz_h - flat(m["log_pz_h"])[0]) <= 1e-5);
  CHECK(std::abs(L.nll() - flat(m["nll"])[0]) <= 1e-5);
  // And back: z(1) through the reverse ODE and the inverse ActNorm recovers
  // the dequantized state (README §6: 1e-6 at 1e-9).
  std::vector<double> z = L.ode.z;
  REQUIRE(flow.cnf().reverse(c.params.values.data(), z, in.atoms(), s.cnf).ok());
  actnorm_inverse(ActNormParams::read(c.params.tensor("actnorm.x_log_s").data()), z, in.atoms());
  CHECK(max_abs_diff(z, flat(m["xh_dequantized"])) <= 1e-6);
}

namespace {

// A small molecule model with perturbed weights everywhere, so no part is
// near the identity, and a random 5-atom molecule.
struct MoleculeProblem {
  FieldConfig field = qm9_field_config(8, 2);
  MoleculeModelConfig mol;
  Parameters<double> p;
  MoleculeInput in;
  MoleculeProblem(Dequantization dq, std::uint64_t seed, double perturbation = 0.05) {
    mol.dequantization = dq;
    mol.dequantizer_hidden = 8;
    mol.dequantizer_layers = 2;
    mol.node_counts = {0, 0, 0, 1, 2, 5, 3};
    p = Parameters<double>(molecule_layout(field, mol));
    Rng rng(seed);
    initialize_egnn(field.egnn(), p, rng);
    if (mol.has_network()) initialize_egnn(mol.dequantizer_egnn(), p, rng);
    for (double& v : p.values) v += perturbation * rng.normal();
    const int n = 5;
    for (int i = 0; i < n; ++i) {
      in.types.push_back(int(rng.uniform() * 5) % 5);
      for (int d = 0; d < 3; ++d) in.x.push_back(1.2 * rng.normal());
    }
    remove_centre_of_mass(in.x, 1, n, 3, 3);
  }
};

}  // namespace

TEST_CASE("the molecule loss gradient matches finite differences in every part of the model", "[molecule][gradient]") {
  // Field, ActNorm and dequantizer, each along its own random direction; the
  // continuous adjoint (its error is the solver's: tolerance 1e-10) and the
  // discrete gradient (exact for the discrete solution).
  const auto mode = GENERATE(GradientMode::Adjoint, GradientMode::Discrete);
  const auto dq = GENERATE(Dequantization::ArgmaxVariational, Dequantization::Variational);
  const auto trace = GENERATE(TraceEstimator::Exact, TraceEstimator::Gaussian);
  INFO("gradient " << to_string(mode) << ", dequantization " << to_string(dq) << ", trace " << to_string(trace));
  MoleculeProblem P(dq, 11);
  CnfOptions opt = exact_options(1e-10);
  opt.gradient = mode;
  opt.trace = trace;
  opt.ode_regularization = 0.01;
  MoleculeFlow<double> flow(P.field, P.mol, opt);
  MoleculeFlow<double>::Scratch s;
  Rng rng(5);
  const MoleculeNoise noise = flow.draw_noise(P.in.atoms(), rng);
  const double w = 0.7;
  std::vector<double> grad(P.p.values.size(), 0.0);
  const auto r = flow.gradient(P.p.values.data(), P.in, noise, w, s, grad.data());
  REQUIRE(r.likelihood.ode.solve.ok());
  INFO("adjoint reconstruction error " << r.reconstruction_error << ", forward NFE " << r.likelihood.ode.solve.stats.nfe
       << ", loss " << r.loss);
  auto loss = [&](const Parameters<double>& q) {
    MoleculeFlow<double>::Scratch s2;
    const auto L = flow.log_likelihood(q.values.data(), P.in, noise, s2);
    return w * (L.nll() + opt.ode_regularization * (L.ode.kinetic + L.ode.frobenius));
  };
  CHECK(r.loss == Approx(loss(P.p)).epsilon(1e-12));
  const std::size_t act = flow.actnorm_offset();
  struct Part {
    const char* name;
    std::size_t lo, hi;
  };
  const Part parts[] = {{"field", 0, act}, {"actnorm", act, act + 13}, {"dequantizer", act + 13, P.p.values.size()}};
  for (const Part& part : parts) {
    INFO(part.name);
    std::vector<double> u = unit_direction(part.hi - part.lo, rng);
    double predicted = 0;
    for (std::size_t k = 0; k < u.size(); ++k) predicted += u[k] * grad[part.lo + k];
    const double fd = derivative([&](double h) {
      Parameters<double> q = P.p;
      for (std::size_t k = 0; k < u.size(); ++k) q.values[part.lo + k] += h * u[k];
      return loss(q);
    });
    CHECK(predicted == Approx(fd).epsilon(1e-5).margin(1e-7));
  }
}

TEST_CASE("the molecule likelihood is invariant under rotations, reflections, translations and permutations",
          "[molecule][symmetry]") {
  MoleculeProblem P(Dequantization::ArgmaxVariational, 3);
  MoleculeFlow<double> flow(P.field, P.mol, exact_options(1e-10));
  MoleculeFlow<double>::Scratch s;
  Rng rng(9);
  const int n = P.in.atoms();
  const MoleculeNoise noise = flow.draw_noise(n, rng);
  const double ref = flow.log_likelihood(P.p.values.data(), P.in, noise, s).log_p;
  // A rotation with a reflection (det −1): Householder reflection.
  const std::vector<double> v = unit_direction(3, rng);
  MoleculeInput t = P.in;
  for (int i = 0; i < n; ++i) {
    double dot = 0;
    for (int d = 0; d < 3; ++d) dot += v[d] * P.in.x[i * 3 + d];
    for (int d = 0; d < 3; ++d) t.x[i * 3 + d] = P.in.x[i * 3 + d] - 2 * dot * v[d];
  }
  CHECK(flow.log_likelihood(P.p.values.data(), t, noise, s).log_p == Approx(ref).epsilon(1e-8));
  // A permutation, with the per-atom noise permuted alike.
  const std::vector<int> perm = {3, 0, 4, 1, 2};
  MoleculeInput q;
  MoleculeNoise qn;
  for (int i : perm) {
    q.types.push_back(P.in.types[i]);
    for (int d = 0; d < 3; ++d) q.x.push_back(P.in.x[i * 3 + d]);
    for (int c = 0; c < 6; ++c) qn.dequantizer.push_back(noise.dequantizer[i * 6 + c]);
  }
  CHECK(flow.log_likelihood(P.p.values.data(), q, qn, s).log_p == Approx(ref).epsilon(1e-8));
}

TEST_CASE("ActNorm's data-dependent initialisation standardises the first batch", "[molecule][actnorm]") {
  Rng rng(4);
  std::vector<std::vector<double>> states;
  for (int b = 0; b < 3; ++b) {
    std::vector<double> s(std::size_t(4 + b) * 9);
    for (double& v : s) v = 2.0 + 3.0 * rng.normal();
    states.push_back(s);
  }
  const ActNormParams a = actnorm_initialize(states);
  // After the transform the feature channels have mean 0 and variance ≈ 1.
  double mean = 0, var = 0, nodes = 0;
  for (auto s : states) {
    const int n = int(s.size()) / 9;
    actnorm_forward(a, s, n);
    for (int i = 0; i < n; ++i) {
      mean += s[i * 9 + 4];
      var += s[i * 9 + 4] * s[i * 9 + 4];
      nodes += 1;
    }
  }
  CHECK(std::abs(mean / nodes) < 1e-12);
  CHECK(var / nodes == Approx(1.0).epsilon(1e-4));
}

TEST_CASE("sampling a molecule gives n atoms of the five types, and its reverse scores finitely", "[molecule][sample]") {
  MoleculeProblem P(Dequantization::ArgmaxVariational, 5);
  MoleculeFlow<double> flow(P.field, P.mol, exact_options(1e-8));
  MoleculeFlow<double>::Scratch s;
  Rng rng(8);
  const auto smp = flow.sample(P.p.values.data(), 6, rng, s);
  REQUIRE(smp.solve.ok());
  REQUIRE(smp.types.size() == 6);
  for (int t : smp.types) CHECK((t >= 0 && t < 5));
  double cx = 0;
  for (int i = 0; i < 6; ++i) cx += smp.x[i * 3];
  CHECK(std::abs(cx) < 1e-8);  // the prior and the field keep the centre of mass at 0
  MoleculeInput in{smp.x, smp.types};
  const MoleculeNoise noise = flow.draw_noise(6, rng);
  CHECK(std::isfinite(flow.log_likelihood(P.p.values.data(), in, noise, s).log_p));
}

TEST_CASE("a molecule's score and gradient depend neither on its batch nor on the thread count", "[molecule][batch]") {
  MoleculeProblem P(Dequantization::ArgmaxVariational, 6);
  CnfOptions opt = exact_options(1e-8);
  opt.trace = TraceEstimator::Gaussian;
  MoleculeFlow<double> flow(P.field, P.mol, opt);
  // Three molecules of different sizes: P's, and two of its prefixes.
  std::vector<MoleculeInput> mols(3);
  for (int b = 0; b < 3; ++b) {
    const int n = 5 - b;
    mols[b].types.assign(P.in.types.begin(), P.in.types.begin() + n);
    mols[b].x.assign(P.in.x.begin(), P.in.x.begin() + 3 * n);
    remove_centre_of_mass(mols[b].x, 1, n, 3, 3);
  }
  auto none = [](int) {};
  MoleculeBatch<double> one(flow, 1), two(flow, 2);
  const auto a = one.score(P.p.values.data(), mols, 2, 17, none);
  const auto b = two.score(P.p.values.data(), mols, 2, 17, none);
  for (int k = 0; k < 3; ++k) {
    CHECK(a[k].log_p == b[k].log_p);
    CHECK(a[k].log_p_iw >= a[k].log_p);  // log-mean-exp ≥ mean
  }
  // Molecule 0 alone gets the same noise stream (split 0) and the same score.
  const auto alone = one.score(P.p.values.data(), {mols[0]}, 2, 17, none);
  CHECK(alone[0].log_p == a[0].log_p);
  // The batch gradient is the same for 1 and 2 threads, bit for bit.
  std::vector<double> g1(P.p.values.size(), 0.0), g2(P.p.values.size(), 0.0);
  const auto l1 = one.loss_and_gradient(P.p.values.data(), mols, 5, g1.data());
  const auto l2 = two.loss_and_gradient(P.p.values.data(), mols, 5, g2.data());
  CHECK(l1.loss == l2.loss);
  CHECK(g1 == g2);
}

TEST_CASE("uniform dequantization: v = h + u − ½ with log q = 0, and rounding recovers h", "[molecule][dequantizer]") {
  MoleculeModelConfig mol;
  mol.dequantization = Dequantization::Uniform;
  mol.node_counts = {0, 0, 1, 1};
  const ParameterLayout layout = molecule_layout(qm9_field_config(8, 2), mol);
  CHECK_FALSE(layout.contains("dequantizer.egnn.embedding.weight"));
  Dequantizer<double> deq(mol, layout);
  Dequantizer<double>::Workspace ws;
  const std::vector<int> types = {1, 0, 4};
  const std::vector<double> x(9, 0.0);
  Rng rng(2);
  std::vector<double> u(18);
  for (double& v : u) v = rng.uniform();
  const std::vector<double> params(layout.total_size(), 0.0);
  const DequantizerTerms d = deq.forward(params.data(), x, types, u, ws);
  CHECK(d.log_q_v == 0);
  for (int i = 0; i < 3; ++i) {
    for (int k = 0; k < 5; ++k) CHECK(d.v[i * 6 + k] == (k == types[i] ? 1.0 : 0.0) + u[i * 6 + k] - 0.5);
    CHECK(d.v[i * 6 + 5] == kQm9AtomicNumbers[types[i]] + u[i * 6 + 5] - 0.5);
  }
  std::vector<int> back, charges;
  Dequantizer<double>::quantize(Dequantization::Uniform, d.v, 3, back, charges);
  CHECK(back == types);
  CHECK(charges == std::vector<int>{6, 1, 9});
}
