// The FLOPs bench score, bench sample and bench step report
// (tools/bench_common.hpp: NFE × evaluation_flops; tools/bench_step.hpp:
// training_step_flops) against a slow, obvious count: every forward and
// reverse pass the CNF actually makes, each counted at its own tangent count,
// over whole solves. A trace that took more or fewer directions than the
// accounting assumes (another chunking, a forgotten extra f, a VJP that
// re-evaluates the field) shows up here.
#include <catch2/catch.hpp>

#include "egnn/dual_ops.hpp"
#include "engine/cnf_adjoint_impl.hpp"
#include "engine/cnf_discrete_impl.hpp"
#include "engine/cnf_forward_impl.hpp"
#include "engine/initialization.hpp"
#include "engine/rng.hpp"
#include "tools/bench_common.hpp"
#include "tools/bench_step.hpp"

namespace {

using namespace enf;
using cli::evaluation_flops;
using cli::FieldWork;

// The E-NF field, counting the multiply-adds of every forward and reverse pass it runs.
class CountingField {
 public:
  using Scalar = double;
  using Mat = detail::Mat<double>;
  using Workspace = FieldWorkspace<double>;

  CountingField(const VectorField<double>& f) : f_(f) {}
  int channels() const { return f_.channels(); }
  int dim() const { return f_.dim(); }
  std::size_t parameter_count() const { return f_.parameter_count(); }
  double forward_madds(int n, int K) const { return f_.forward_madds(n, K); }
  void forward(const double* p, const double* z, int n, double t, const Mat* V, Workspace& ws, double* f,
               Mat* JV) const {
    last_n_ = n;
    last_K_ = V ? int(V->rows()) : 0;
    madds += f_.forward_madds(n, last_K_);
    f_.forward(p, z, n, t, V, ws, f, JV);
  }
  double forward_madds_node_tangents(int n, int K) const { return f_.forward_madds_node_tangents(n, K); }
  // The exact trace's path (egnn/trace.hpp): layer 0's tangents on each direction's own edges.
  void forward_node_tangents(const double* p, const double* z, int n, double t, const Mat& V, const int* nodes,
                             Workspace& ws, double* f, Mat& JV) const {
    last_n_ = n;
    last_K_ = int(V.rows());
    madds += f_.forward_madds_node_tangents(n, last_K_);
    f_.forward_node_tangents(p, z, n, t, V, nodes, ws, f, JV);
  }
  // The reverse pass of the last forward, at that forward's size and tangents.
  void reverse(const double* p, Workspace& ws, const double* fbar, const Mat* JVbar, double* zbar, double* grad) const {
    reverse_madds += f_.reverse_madds(last_n_, last_K_);
    f_.reverse(p, ws, fbar, JVbar, zbar, grad);
  }
  mutable double madds = 0, reverse_madds = 0;

 private:
  const VectorField<double>& f_;
  mutable int last_n_ = 0, last_K_ = 0;
};

struct Setup {
  FieldConfig cfg;
  Parameters<double> params;
  VectorField<double> field;
  // The configuration bench score and bench sample time by default.
  Setup(int dim, std::uint64_t seed)
      : cfg(cli::bench_field_config(dim)), params(field_layout(cfg)), field(cfg, params.layout) {
    Rng rng(seed);
    initialize_egnn(cfg.egnn(), params, rng);
  }
};

std::vector<double> structure(int n, int dim, Rng& rng) {
  std::vector<double> x(std::size_t(n) * dim);
  for (double& v : x) v = 1.5 * rng.normal();
  return x;
}

}  // namespace

TEST_CASE("bench FLOPs: a likelihood's forward passes, counted one by one, are NFE x evaluation_flops", "[bench]") {
  // DW4 (8 directions, one chunk) and LJ13 (39 directions: several chunks, the last padded).
  for (const auto& [n, dim] : {std::pair{4, 2}, std::pair{13, 3}}) {
    Setup s(dim, 7);
    CountingField counting(s.field);
    for (TraceEstimator trace : {TraceEstimator::Exact, TraceEstimator::Gaussian}) {
      CnfOptions o;
      o.trace = trace;
      o.solver.rtol = o.solver.atol = 1e-5;
      o.adjoint_solver = o.solver;
      Cnf<CountingField> cnf(counting, o);
      Cnf<CountingField>::Scratch scratch;
      Rng rng(3);
      const auto x = structure(n, dim, rng);
      std::vector<double> eps(x.size());
      for (double& e : eps) e = rng.normal();
      counting.madds = 0;
      const ForwardResult r = cnf.forward(s.params.values.data(), x, n, eps, scratch);
      REQUIRE(r.solve.stats.nfe > 0);
      const FieldWork work = trace == TraceEstimator::Exact ? FieldWork::ExactTrace : FieldWork::Hutchinson;
      INFO("n = " << n << ", trace " << to_string(trace));
      CHECK(double(r.solve.stats.nfe) * evaluation_flops(s.field, n, work) ==
            Approx(2 * counting.madds).epsilon(1e-12));
    }
    // Sampling: velocity only.
    CnfOptions o;
    o.solver.rtol = o.solver.atol = 1e-4;
    o.adjoint_solver = o.solver;
    Cnf<CountingField> cnf(counting, o);
    Cnf<CountingField>::Scratch scratch;
    Rng rng(5);
    auto z = structure(n, dim, rng);
    counting.madds = 0;
    const ode::SolveResult r = cnf.reverse(s.params.values.data(), z, n, scratch);
    REQUIRE(r.stats.nfe > 0);
    CHECK(double(r.stats.nfe) * evaluation_flops(s.field, n, FieldWork::Velocity) ==
          Approx(2 * counting.madds).epsilon(1e-12));
  }
}

TEST_CASE("bench FLOPs: the exact trace's count by hand for DW4", "[bench]") {
  // 4 particles in 2-D: 8 unit directions, one chunk of 8 tangents beside f.
  // Each tangent costs the velocity's multiply-adds, less layer 0's work on
  // the 6 edges that do not touch its node (of 12): d and r (2·D), the
  // gather (2H), edge_mlp.2 (H²), attention (2H), coord_mlp (H² + H + D) and
  // the aggregation's sum (H) per edge, and P, Q for 3 of the 4 nodes (2H² each).
  Setup s(2, 1);
  REQUIRE(trace_chunk_size(8, 4) == 8);
  const double H = 32, D = 2;
  const double saved = 6 * (2 * D + 2 * H + H * H + 2 * H + H * H + H + D + H) + 3 * 2 * H * H;
  const double velocity = evaluation_flops(s.field, 4, FieldWork::Velocity) / 2;
  CHECK(evaluation_flops(s.field, 4, FieldWork::ExactTrace) / 2 == Approx(velocity + 8 * (velocity - saved)).epsilon(1e-15));
  CHECK(evaluation_flops(s.field, 4, FieldWork::Hutchinson) ==
        Approx(2 * evaluation_flops(s.field, 4, FieldWork::Velocity)).epsilon(1e-15));
}

TEST_CASE("bench FLOPs: a training step's forward and reverse passes, counted one by one, are bench step's count",
          "[bench]") {
  // bench step's DW4 step: each sample of the batch a forward solve with the
  // Hutchinson trace and a backward pass (BatchFlow::loss_and_gradient runs
  // Cnf::gradient per sample), with the bench's own CNF options.
  const int n = 4, dim = 2, B = 3;
  Setup s(dim, 11);
  CountingField counting(s.field);
  for (GradientMode mode : {GradientMode::Adjoint, GradientMode::Discrete}) {
    Cnf<CountingField> cnf(counting, cli::bench_cnf_options(mode));
    Cnf<CountingField>::Scratch scratch;
    Rng rng(17);
    std::vector<double> grad(s.params.values.size(), 0.0);
    counting.madds = counting.reverse_madds = 0;
    long nfe_forward = 0, nfe_backward = 0;
    for (int b = 0; b < B; ++b) {
      const auto x = structure(n, dim, rng);
      std::vector<double> eps(x.size());
      for (double& e : eps) e = rng.uniform() < 0.5 ? -1.0 : 1.0;  // Rademacher
      const AdjointResult r = cnf.gradient(s.params.values.data(), x, n, eps, 1.0 / B, scratch, grad.data());
      REQUIRE(r.backward.ok());
      nfe_forward += r.forward.solve.stats.nfe;
      nfe_backward += r.backward.stats.nfe;
    }
    INFO("gradient " << to_string(mode) << ", NFE " << nfe_forward << " + " << nfe_backward);
    REQUIRE(nfe_backward > 0);
    CHECK(cli::training_step_flops(s.field, n, mode, double(nfe_forward), double(nfe_backward)) ==
          Approx(2 * (counting.madds + counting.reverse_madds)).epsilon(1e-12));
  }
}

TEST_CASE("bench FLOPs: a flow-matching step is one velocity and its reverse pass per structure", "[bench]") {
  Setup s(2, 1);
  CHECK(cli::flow_matching_step_flops(s.field, 4, 5) ==
        Approx(5 * 2 * (s.field.forward_madds(4, 0) + s.field.reverse_madds(4, 0))).epsilon(1e-15));
}
