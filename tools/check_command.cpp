// enf check gradients: the derivatives of a user's model against central
// finite differences (the logic is engine/gradient_check.hpp; this file is
// the options, the table and the exit code).
#include <cstdio>
#include <string>
#include <vector>

#include "datasets/particles.hpp"
#include "engine/checkpoint.hpp"
#include "engine/gradient_check.hpp"
#include "tools/commands.hpp"
#include "tools/option_groups.hpp"
#include "tools/options.hpp"

namespace enf::cli {

namespace {

const CommandSpec kCheckGradients{
    "check gradients",
    "Check a model's derivatives against central finite differences.",
    "What is checked, on a few structures of --data, in double precision (one row each):\n"
    "  field_jvp          the vector field's forward-mode tangents J·v (--directions random\n"
    "                     unit directions) against differences of f along v\n"
    "  field_vjp_input    the field's reverse pass, for a random scalar of f and of J·V (the\n"
    "  field_vjp_params   exact trace's gradient runs through both), wrt the state and wrt\n"
    "                     --params random parameters\n"
    "  nll_grad_adjoint   d(-log p(x))/dtheta for --params random parameters, by the\n"
    "  nll_grad_discrete  continuous adjoint and by backprop through the solver's steps,\n"
    "                     against differences of -log p(x) (exact trace, dopri5 at --tol)\n"
    "Finite differences are central with one Richardson step (error O(h^4)); field steps\n"
    "h = 1e-4, loss steps h = 1e-3.\n"
    "\nReading the table (stdout): per quantity, the number of entries compared, the largest\n"
    "absolute error |analytic - fd| and the largest relative error |analytic - fd| /\n"
    "max(|analytic|, |fd|, 1% of the largest |fd| of the quantity): entries much smaller\n"
    "than the rest are judged against the quantity's scale, which is what differences\n"
    "resolve. 'ok' when every entry is within the tolerance. Field derivatives are exact up\n"
    "to rounding, so their tolerance is tight (1e-6); the NLL's differences carry the\n"
    "adaptive solver's error (the step sequence changes with the parameters), about\n"
    "tol / h, so theirs is 1e-4 at --tol 1e-9: a larger error there is a wrong gradient,\n"
    "or a flow so stiff that the solves are not accurate at --tol (lower it). The log\n"
    "(stderr) gives each structure's -log p(x) and NFE.\n"
    "Exit status: 0 when every row is ok, 1 when one is not (or on errors), 2 on usage\n"
    "errors. Particle models only (dw4, lj13, qm9_positional).\n"
    "\nexample:\n  enf check gradients --model models/dw4 --data dw4:test --structures 2 --params 20",
    {
        {"model", "CKPT|NAME", "", kModelHelp},
        {"data", "FILE|NAME", "", "structures (.npy, .npz, .xyz or a dataset name); default: the system's test split"},
        {"structures", "N", "2", "structures to check (the first N of --data)", "1", "10000"},
        {"params", "N", "20", "random parameters checked per structure", "1", "100000"},
        {"directions", "K", "2", "random tangent directions per structure", "1", "10000"},
        {"tol", "T", "1e-9", "rtol = atol of the NLL solves (forward and adjoint)"},
        {"seed", "S", "0", "seed of the directions, cotangents, times and parameter subsets"},
        {"threads", "N", "0", "threads for the NLL solves (0: all cores); the results do not depend on it", "0",
         std::to_string(max_threads())},
    }};

}  // namespace

int run_check_gradients(const std::vector<std::string>& args) {
  ParsedOptions opt(kCheckGradients, args);
  if (opt.help()) return std::fputs(usage(kCheckGradients).c_str(), stdout), 0;
  if (opt.str("model").empty()) throw UsageError("--model is required");
  GradientCheckOptions g;
  g.params = opt.integer("params");
  g.directions = opt.integer("directions");
  g.seed = std::uint64_t(opt.integer("seed"));
  g.threads = opt.integer("threads");
  if (g.threads > max_threads())  // the runtime group's bound (a crash beyond it)
    throw UsageError("--threads must be at most " + std::to_string(max_threads()) + ", got " + std::to_string(g.threads));
  g.solver_tolerance = opt.real("tol");
  if (!(g.solver_tolerance > 0)) throw UsageError("--tol must be positive");
  const Checkpoint c = load_model(opt.str("model"));
  if (c.molecule) {
    std::fprintf(stderr,
                 "enf check gradients: '%s' is a molecule model (features, dequantizer, ActNorm); the checker "
                 "covers particle models (dw4, lj13, qm9_positional) only\n",
                 opt.str("model").c_str());
    return 2;
  }
  if (c.system.empty())
    throw std::runtime_error("the checkpoint names no particle system (dw4, lj13, qm9_positional)");
  const ParticleSystem sys = particle_system(c.system);
  const int count = opt.integer("structures");
  Structures data;
  std::string source = opt.str("data");
  if (source.empty()) {
    const SplitSpec split = shipped_split(sys, "test");
    source = (c.system == "qm9_positional" ? std::string("qm9-positional") : c.system) + ":test";
    data = load_structures(split.path, sys, split.first, count);
  } else {
    data = load_structures(source, sys, 0, count);
  }
  std::fprintf(stderr, "enf check gradients: %s (%s, %zu parameters), %d structure(s) of %s\n",
               opt.str("model").c_str(), c.system.c_str(), c.params.values.size(), data.rows, source.c_str());
  const auto rows = check_gradients(c.field, c.params, data.x, data.rows, sys.n, g,
                                    [](const std::string& s) { std::fprintf(stderr, "  %s\n", s.c_str()); });
  std::printf("%-20s %8s %14s %14s %10s  %s\n", "quantity", "entries", "max_abs_error", "max_rel_error", "tolerance",
              "ok");
  int failed = 0;
  for (const auto& r : rows) {
    std::printf("%-20s %8zu %14.3e %14.3e %10.0e  %s\n", r.quantity.c_str(), r.entries, r.max_abs_error,
                r.max_rel_error, r.tolerance, r.ok ? "yes" : "NO");
    if (!r.ok) {
      ++failed;
      std::fprintf(stderr, "  %s: the largest relative error is at entry %zu\n", r.quantity.c_str(), r.worst);
    }
  }
  if (failed)
    std::fprintf(stderr, "enf check gradients: %d of %zu checks FAILED\n", failed, rows.size());
  else
    std::fprintf(stderr, "enf check gradients: all %zu checks ok\n", rows.size());
  return failed ? 1 : 0;
}

}  // namespace enf::cli
