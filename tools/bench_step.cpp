// enf bench step: one training iteration of the reference E-NF configuration
// (batch 100, H=32, L=3, attention, tanh, time conditioning, Hutchinson with
// Rademacher noise, dopri5 rtol = atol = 1e-4, continuous adjoint, float32
// field), at initialisation and after --train-steps steps on the shipped data;
// then log-likelihood evaluation (exact trace, 1e-7, float64) and sampling
// (1e-4) of --eval-samples structures. Each timed iteration reports the FLOPs
// of its field work (tools/bench_step.hpp) and their rate against the GEMM
// peak measured around it (issue 13: benchmarks that name the limit). --mpi: the same step over the ranks of
// an MPI job (tools/bench_mpi.cpp).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "datasets/particles.hpp"
#include "engine/initialization.hpp"
#include "engine/trainer.hpp"
#include "tools/bench_step.hpp"
#include "tools/commands.hpp"
#include "tools/mpi_world.hpp"
#include "tools/option_groups.hpp"
#include "tools/options.hpp"

namespace enf::cli {

namespace {

const CommandSpec kSpec{
    "bench step",
    "Time training iterations, likelihood evaluation and sampling of the reference E-NF setup.",
    "Training: batch --batch of the first 1000 training structures (DW4: train split;\n"
    "LJ13: validation split, which ships without a training split), float32 field,\n"
    "Hutchinson trace (Rademacher), dopri5 at rtol = atol = 1e-4 forward and adjoint,\n"
    "AdamW (lr 5e-4, AMSGrad). Each sample integrates with its own adaptive steps:\n"
    "NFE are per sample (mean over the batch), the reference's are per batch.\n"
    "FLOPs (the field's work only, 2 per multiply-add of the layer shapes, as bench field\n"
    "counts them): per sample, forward NFE x (velocity + one tangent J.eps for the trace)\n"
    "plus backward NFE x one adjoint evaluation (velocity and J.eps again, then the reverse\n"
    "pass: a.dF/dz with the trace term's derivative, and the parameter gradient; a reverse\n"
    "pass counted as 2x its forward's multiply-adds, as bench field counts it);\n"
    "--gradient discrete: half the backward NFE are velocity-only stage recomputations.\n"
    "Flow matching: per structure one velocity and its reverse pass. Not counted: the\n"
    "prior, the loss and its sums over samples, the ODE solver's vector arithmetic, the\n"
    "coupling (assignment, alignment) and the optimizer. GFLOP/s: those FLOPs over the\n"
    "whole iteration's seconds (optimizer included); % of GEMM peak: against a 384^3 float\n"
    "product per thread, timed 5 times right before and 5 right after each iteration\n"
    "(median of the 10), in the same run; above 100 % it is marked (peak disturbed).\n"
    "--mpi reports no FLOPs.\n"
    "Evaluation: log p(x) of the first --eval-samples test structures, exact trace,\n"
    "rtol = atol = 1e-7, float64. Sampling: --eval-samples draws at 1e-4, float32.\n"
    "The reference implementation's figures, with the machine they were measured on, are\n"
    "in the README (Benchmark: training, evaluation, sampling), not in this program.\n"
    "--mpi (an MPI build started as 'mpirun -np K enf bench step --mpi'; also alone, K = 1):\n"
    "the same training step, maximum likelihood and flow matching (independent coupling),\n"
    "with the gradient shared among the K ranks (each with --threads threads), at\n"
    "initialisation; rank 0 first takes every step alone too (the K = 1 reference, the\n"
    "other ranks waiting), so the report holds both, the speed-up, the efficiency\n"
    "T1 / (K TK), each rank's busy and exchange-wait seconds and whether the weights\n"
    "stayed bit for bit those of one process. Then the exchange alone, repeated: the\n"
    "allgather of the 16 group gradients (G x P doubles), half a ring allreduce of P\n"
    "doubles (an allgather of P / K per rank) for comparison, and a 1-byte allgather\n"
    "(latency). --train-steps and --eval-samples do not apply; --threads 0 gives each rank\n"
    "its host's cores shared among the ranks there. Ranks vs threads: compare\n"
    "'mpirun -np 2 enf bench step --mpi --threads 1' with 'enf bench step --mpi --threads 2'\n"
    "(tools/experiments/mpi_scaling.sh; the cluster model: tools/experiments/mpi_model.py).",
    with_groups(
        {
            system_option("dw4", "particle system", has_energy),
            {"format", "table|json", "table", "output format on stdout"},
            // The batch is drawn from the first 1000 training structures.
            {"batch", "B", "100", "training batch size", "1", "1000"},
            {"train-steps", "N", "200", "training steps between the two timed points", "0", "100000"},
            {"repeats", "N", "5", "timed iterations at each point (the median is reported)", "1", "1000"},
            {"eval-samples", "N", "1000", "structures for the evaluation and sampling timings", "1", "100000"},
            {"gradient", "adjoint|discrete", "adjoint", "gradient mode"},
            {"mpi", "", "", "time the step over the ranks of an MPI job (mpirun -np K), with the K = 1 reference"},
            {"exchange-repeats", "N", "30", "--mpi: timed repetitions of each exchange (the median is reported)", "1",
             "100000"},
            {"exchange-parameters", "P", "0",
             "--mpi: also time the exchange for a gradient of P values (e.g. 294000: the full-size QM9 model); 0: no",
             "0", "100000000"},
        },
        {{runtime_group(), {kThreads, kSeed}, {{kSeed, "0", "seed of the initialisation, batches and noise"}}}})};

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Point {
  std::string label;
  double total = 0, forward = 0, backward = 0, optimizer = 0, nfe_f = 0, nfe_b = 0, loss = 0;
  double flops = 0, peak_gflops = 0;  // the field's FLOPs in the iteration; the GEMM peak bracketing it
  double gflops() const { return flops / total * 1e-9; }
};

}  // namespace

int run_bench_step(const std::vector<std::string>& args) {
  ParsedOptions opt(kSpec, args);
  if (opt.help()) {
    std::fputs(usage(kSpec).c_str(), stdout);
    return 0;
  }
  if (opt.flag("mpi")) return run_bench_step_mpi(opt);
  // Without --mpi every rank would time the same steps and print them K times.
  if (world().size() > 1) throw UsageError("as several ranks (mpirun, srun), bench step needs --mpi");
  const ParticleSystem sys = particle_system(parse_system(opt, has_energy).name);
  const Runtime rt = parse_runtime(opt);
  const std::string format = opt.choice("format", {"table", "json"});
  const int B = opt.integer("batch"), steps = opt.integer("train-steps"), repeats = std::max(1, opt.integer("repeats"));
  const int n_eval = opt.integer("eval-samples");
  const std::uint64_t seed = rt.seed;
  if (B < 1 || steps < 0 || n_eval < 1) throw UsageError("--batch and --eval-samples must be positive, --train-steps ≥ 0");

  const SplitSpec train_split = shipped_split(sys, "train"), test_split = shipped_split(sys, "test");
  const Structures train = load_structures(train_split.path, sys, train_split.first, 1000);
  const Structures test = load_structures(test_split.path, sys, test_split.first, n_eval);
  const int S = sys.n * sys.dim;

  const FieldConfig field = bench_field_config(sys.dim);
  const CnfOptions cnf = bench_cnf_options(parse_gradient_mode(opt.choice("gradient", {"adjoint", "discrete"})));
  Parameters<double> init(field_layout(field));
  Rng rng(seed);
  initialize_egnn(field.egnn(), init, rng);
  Trainer<float> trainer(field, cnf, AdamWOptions{}, init, rt.threads);
  BatchStream batches(train, S, B, rng.split(1));
  auto next_batch = [&] { return batches.next(); };
  std::uint64_t step_seed = seed * 1000003 + 17;
  // The FLOPs of a step follow its NFE (tools/bench_step.hpp); the float
  // field has the float peak beside it.
  const VectorField<float> field32(field, trainer.params().layout);
  BracketedPeak<float> peak(trainer.flow().threads());
  // Median of `repeats` steps, each bracketed by the peak; `fm` (when given)
  // times flow-matching steps with that coupling instead of maximum-likelihood ones.
  auto timed = [&](const std::string& label, const FlowMatchingOptions* fm = nullptr) {
    std::vector<std::pair<StepReport, double>> rs;
    for (int k = 0; k < repeats; ++k) {
      StepReport r;
      const auto t = peak.time([&] {
        r = fm ? trainer.step_flow_matching(*fm, next_batch(), B, sys.n, step_seed++)
               : trainer.step(next_batch(), B, sys.n, step_seed++);
      });
      rs.emplace_back(r, t.peak_gflops);
    }
    std::sort(rs.begin(), rs.end(), [](auto& a, auto& b) { return a.first.seconds_total < b.first.seconds_total; });
    const auto& [m, peak_gflops] = rs[rs.size() / 2];
    Point p{label, m.seconds_total, m.seconds_forward, m.seconds_backward, m.seconds_optimizer,
            double(m.nfe_forward) / B, double(m.nfe_backward) / B, m.loss,
            fm ? flow_matching_step_flops(field32, sys.n, B)
               : training_step_flops(field32, sys.n, cnf.gradient, double(m.nfe_forward), double(m.nfe_backward)),
            peak_gflops};
    std::fprintf(stderr,
                 "  %-22s %.4f s (forward %.4f, backward %.4f, optimizer %.5f), NFE %.1f + %.1f, loss %.3f, "
                 "%.2f GFLOP/s, peak alongside %.1f GFLOP/s\n",
                 label.c_str(), p.total, p.forward, p.backward, p.optimizer, p.nfe_f, p.nfe_b, p.loss, p.gflops(),
                 p.peak_gflops);
    return p;
  };

  std::fprintf(stderr, "enf bench step: %s, batch %d, %d threads\n", sys.name.c_str(), B, trainer.flow().threads());
  trainer.step(next_batch(), B, sys.n, step_seed++);  // warm-up: sizes the workspaces
  std::vector<Point> points{timed("at initialisation")};
  const auto t_train = Clock::now();
  for (int k = 0; k < steps; ++k) {
    const StepReport r = trainer.step(next_batch(), B, sys.n, step_seed++);
    if ((k + 1) % 20 == 0 || k + 1 == steps) {
      const double el = since(t_train);
      std::fprintf(stderr, "\r  training %d/%d  loss %.3f  %.1f s elapsed, ETA %.0f s   ", k + 1, steps, r.loss, el,
                   el / (k + 1) * (steps - k - 1));
    }
  }
  if (steps > 0) std::fputc('\n', stderr);
  points.push_back(timed("after " + std::to_string(steps) + " steps"));
  // The flow-matching step (issue 14) on the same weights and batches: one
  // evaluation and one reverse pass per structure, plus the coupling.
  const std::size_t ml_points = points.size();
  for (Coupling c : {Coupling::Independent, Coupling::MinibatchOT, Coupling::EquivariantOT}) {
    FlowMatchingOptions fm;
    fm.coupling = c;
    trainer.step_flow_matching(fm, next_batch(), B, sys.n, step_seed++);  // warm-up
    points.push_back(timed("flow matching, " + to_string(c), &fm));
  }

  // Evaluation: exact trace, 1e-7, float64, with the trained weights.
  CnfOptions ev;
  ev.trace = TraceEstimator::Exact;
  ev.solver.rtol = ev.solver.atol = 1e-7;
  ev.adjoint_solver = ev.solver;
  VectorField<double> f64(field, trainer.params().layout);
  Cnf<VectorField<double>> cnf64(f64, ev);
  BatchFlow<VectorField<double>> eval_flow(cnf64, rt.threads);
  auto t_eval = Clock::now();
  const auto lik = eval_flow.log_likelihood(trainer.params().values.data(), test.x, test.rows, sys.n, seed);
  const double eval_seconds = since(t_eval);
  double nll = 0, nfe_eval = 0;
  for (const auto& r : lik) {
    nll -= r.log_px / test.rows;
    nfe_eval += double(r.solve.stats.nfe) / test.rows;
  }
  const Parameters<float> p32 = trainer.params().cast<float>();
  auto t_sample = Clock::now();
  const auto xs = trainer.flow().sample(p32.values.data(), n_eval, sys.n, seed + 99);
  const double sample_seconds = since(t_sample);
  std::fprintf(stderr, "  evaluation: %d structures in %.3f s (NFE %.1f per structure), test NLL %.3f\n", test.rows,
               eval_seconds, nfe_eval, nll);
  std::fprintf(stderr, "  sampling: %d structures in %.3f s\n", n_eval, sample_seconds);

  const std::string cpu = cpu_model_name(), date = utc_now();
  const double load = load_average();
  if (format == "json") {
    nlohmann::json j{{"system", sys.name}, {"batch", B}, {"threads", trainer.flow().threads()},
                     {"gradient", to_string(cnf.gradient)}, {"cpu", cpu}, {"date", date},
                     {"load_average_1min", load}, {"precision", "float"}};
    for (const auto& p : points)
      j["iterations"].push_back({{"when", p.label}, {"seconds", p.total}, {"forward_seconds", p.forward},
                                 {"backward_seconds", p.backward}, {"optimizer_seconds", p.optimizer},
                                 {"nfe_forward_per_sample", p.nfe_f}, {"nfe_backward_per_sample", p.nfe_b},
                                 {"seconds_per_nfe", p.total / (p.nfe_f + p.nfe_b)}, {"loss", p.loss},
                                 {"flop_per_iteration", p.flops}, {"gflops", p.gflops()},
                                 {"peak_gflops", p.peak_gflops}, {"fraction_of_peak", p.gflops() / p.peak_gflops},
                                 {"peak_disturbed", p.gflops() > p.peak_gflops}});
    j["maximum_likelihood_over_flow_matching"] = points[ml_points - 1].total / points[ml_points].total;
    j["evaluation"] = {{"structures", test.rows}, {"seconds", eval_seconds}, {"nfe_per_structure", nfe_eval}, {"nll", nll}};
    j["sampling"] = {{"structures", n_eval}, {"seconds", sample_seconds}};
    std::puts(j.dump(2).c_str());
  } else {
    std::printf("enf bench step: %s, %s, load average %.2f; %d threads, float field\n\n", cpu.c_str(), date.c_str(),
                load, trainer.flow().threads());
    std::printf("| %s, batch %d | s / iteration | forward | backward | optimizer | NFE fwd + bwd (per sample) | ms / NFE "
                "| GFLOP / iteration | GFLOP/s | %% of GEMM peak | GEMM peak GFLOP/s |\n",
                sys.name.c_str(), B);
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const auto& p : points)
      std::printf("| %s | %.4f | %.4f | %.4f | %.5f | %.1f + %.1f | %.3f | %.4g | %.3g | %s | %.3g |\n", p.label.c_str(),
                  p.total, p.forward, p.backward, p.optimizer, p.nfe_f, p.nfe_b, 1e3 * p.total / (p.nfe_f + p.nfe_b),
                  p.flops * 1e-9, p.gflops(), percent_of_peak(p.gflops() / p.peak_gflops).c_str(), p.peak_gflops);
    std::printf("\nA maximum-likelihood step (trained weights) takes %.1fx the time of a flow-matching step "
                "(independent coupling).\n", points[ml_points - 1].total / points[ml_points].total);
    std::printf("\n| task | structures | seconds |\n|---|---:|---:|\n");
    std::printf("| log p(x), exact trace, 1e-7 (NFE %.0f / structure; NLL %.3f) | %d | %.3f |\n", nfe_eval, nll,
                test.rows, eval_seconds);
    std::printf("| sampling, 1e-4 | %d | %.3f |\n", n_eval, sample_seconds);
  }
  return 0;
}

}  // namespace enf::cli
