// enf: E(n)-equivariant continuous normalizing flows from the command line.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "tools/commands.hpp"
#include "tools/options.hpp"

namespace {

constexpr const char* kUsage = R"(usage: enf <command> [options]

E(n)-equivariant continuous normalizing flows (Satorras, Hoogeboom et al., 2021)
for particle systems (DW4, LJ13) and molecules (QM9).

commands:
  train          train a flow on DW4, LJ13 or QM9 (run directory, checkpoints, resume)
  import         import a model trained with the reference PyTorch code
  eval           test NLL, importance-sampling ESS and plots of a DW4/LJ13 flow
  data list      the datasets and models enf knows by name (dw4:test, qm9:train,
                 qm9-pretrained): shipped or fetched, source, checksum
  data fetch     download a dataset (qm9, lj13, lj55) from its source or a
                 mirror, verify it, convert it, keep it in the data directory
  data generate  sample DW4/LJ13 Boltzmann distributions by MCMC
  metrics        stability, validity, uniqueness and novelty of molecules (QM9),
                 as E-NF/EDM report them
  score          log-likelihood of every structure of a file (.npy, .xyz)
  sample         draw structures from a flow to .xyz or .npy
  field          evaluate the EGNN vector field on a data file: velocity,
                 divergence, Hutchinson estimate, timings
  bench field    time the vector field and its derivatives (forward, J·v,
                 reverse) on DW4, LJ13 and QM9-sized inputs, with FLOP rates
  bench step     time training iterations of the reference setup (at
                 initialisation and after training), evaluation and sampling

Wherever a command takes a data file it also takes a dataset name: dw4:test,
lj13:val, qm9:test, qm9-positional:train ('enf data list').

Run 'enf <command> --help' for the options of a command; 'enf --version' says
which build this is.
)";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // "enf help train" is "enf train --help".
  if (args.size() >= 2 && args[0] == "help") {
    args.erase(args.begin());
    args.push_back("--help");
  }
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version" || args[0] == "version") return enf::cli::print_version();
  try {
    const std::string cmd = args[0];
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (cmd == "field") return enf::cli::run_field(rest);
    if (cmd == "import") return enf::cli::run_import(rest);
    if (cmd == "train") return enf::cli::run_train(rest);
    if (cmd == "eval") return enf::cli::run_eval(rest);
    if (cmd == "data") {
      if (args.size() >= 2 && args[1] == "generate") return enf::cli::run_data_generate({args.begin() + 2, args.end()});
      if (args.size() >= 2 && args[1] == "list") return enf::cli::run_data_list({args.begin() + 2, args.end()});
      if (args.size() >= 2 && args[1] == "fetch") return enf::cli::run_data_fetch({args.begin() + 2, args.end()});
      std::fputs("usage: enf data list|fetch|generate [options]   (see 'enf data fetch --help', ...)\n", stderr);
      return 2;
    }
    if (cmd == "check") return enf::cli::run_check(rest);  // enf check gradients
    if (cmd == "score") return enf::cli::run_score(rest);
    if (cmd == "metrics") return enf::cli::run_metrics(rest);
    if (cmd == "sample") return enf::cli::run_sample(rest);
    if (cmd == "bench") {
      if (args.size() >= 2 && args[1] == "field") return enf::cli::run_bench_field({args.begin() + 2, args.end()});
      if (args.size() >= 2 && args[1] == "step") return enf::cli::run_bench_step({args.begin() + 2, args.end()});
      std::fputs("usage: enf bench field|step [options]   (see 'enf bench field --help', 'enf bench step --help')\n",
                 stderr);
      return 2;
    }
    std::fprintf(stderr, "enf: unknown command '%s' (see 'enf --help' for the commands)\n", cmd.c_str());
    return 2;
  } catch (const enf::cli::UsageError& e) {
    // Two-word commands ("bench step", "data generate") have their own help.
    std::string cmd = args[0];
    if ((cmd == "bench" || cmd == "data") && args.size() >= 2) cmd += " " + args[1];
    std::fprintf(stderr, "enf: %s (see 'enf %s --help')\n", e.what(), cmd.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "enf: error: %s\n", e.what());
    return 1;
  }
}
