// The FLOPs bench score and bench sample report (tools/bench_common.hpp:
// NFE × evaluation_flops) against a slow, obvious count: every forward pass
// the CNF actually makes, each counted at its own tangent count, over whole
// solves. A trace that took more or fewer directions than the accounting
// assumes (another chunking, a forgotten extra f) shows up here.
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

// The E-NF field, counting the multiply-adds of every forward pass it runs.
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
    madds += f_.forward_madds(n, V ? int(V->rows()) : 0);
    f_.forward(p, z, n, t, V, ws, f, JV);
  }
  void reverse(const double* p, Workspace& ws, const double* fbar, const Mat* JVbar, double* zbar, double* grad) const {
    f_.reverse(p, ws, fbar, JVbar, zbar, grad);
  }
  mutable double madds = 0;

 private:
  const VectorField<double>& f_;
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
  // 4 particles in 2-D: 8 unit directions, one chunk of 8 tangents beside f,
  // so one evaluation costs the velocity's multiply-adds 9 times over.
  Setup s(2, 1);
  REQUIRE(trace_chunk_size(8) == 8);
  CHECK(evaluation_flops(s.field, 4, FieldWork::ExactTrace) ==
        Approx(9 * evaluation_flops(s.field, 4, FieldWork::Velocity)).epsilon(1e-15));
  CHECK(evaluation_flops(s.field, 4, FieldWork::Hutchinson) ==
        Approx(2 * evaluation_flops(s.field, 4, FieldWork::Velocity)).epsilon(1e-15));
}
