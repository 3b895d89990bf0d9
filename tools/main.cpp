// enf: E(n)-equivariant continuous normalizing flows from the command line.
// The commands are one table (name, summary, handler): the dispatcher looks
// names up in it, two-word commands ("data list", "bench step") included,
// and `enf --help` is generated from it.
#include <cstdio>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "tools/commands.hpp"
#include "tools/mpi_world.hpp"
#include "tools/options.hpp"

namespace {

using enf::cli::Command;

// Summaries wrap with '\n'; continuation lines are indented under the first.
const std::vector<Command>& commands() {
  using namespace enf::cli;
  static const std::vector<Command> c = {
      {"train", "train a flow on DW4, LJ13 or QM9 (run directory, checkpoints, resume)", run_train},
      {"import", "import a model trained with the reference PyTorch code", run_import},
      {"export", "write a trained model without its training state (to share or ship)", run_export},
      {"eval", "test NLL, importance-sampling ESS and plots of a DW4/LJ13/LJ55 flow", run_eval},
      {"data list",
       "the datasets and models enf knows by name (dw4:test, qm9:train,\n"
       "qm9-pretrained): shipped or fetched, source, checksum",
       run_data_list},
      {"data fetch",
       "download a dataset (qm9, lj13, lj55) from its source or a\n"
       "mirror, verify it, convert it, keep it in the data directory",
       run_data_fetch},
      {"data generate", "sample DW4/LJ13/LJ55 Boltzmann distributions by MCMC", run_data_generate},
      {"metrics",
       "stability, validity, uniqueness and novelty of molecules (QM9),\n"
       "as E-NF/EDM report them",
       run_metrics},
      {"score",
       "log-likelihood of every structure of a file: particles from\n"
       ".npy, .npz, .xyz or a dataset name (dw4:test); molecules from\n"
       ".npz, .xyz, .sdf or any Open Babel format",
       run_score},
      {"sample",
       "draw structures from a flow: particles to .xyz or .npy,\n"
       "molecules to .sdf, .xyz or any Open Babel format",
       run_sample},
      {"conformers",
       "3-D conformers of given molecules (SMILES, .sdf, any Open\n"
       "Babel format) from a conformer model, with log p(x | graph)",
       run_conformers},
      {"field",
       "evaluate the EGNN vector field on a data file: velocity,\n"
       "divergence, Hutchinson estimate, timings",
       run_field},
      {"check gradients",
       "check a model's derivatives (J·v, VJPs, the NLL gradient of\n"
       "both modes) against central finite differences",
       run_check_gradients},
      {"bench field",
       "time the vector field and its derivatives (forward, J·v,\n"
       "reverse) on DW4, LJ13 and QM9-sized inputs, with FLOP rates",
       run_bench_field},
      {"bench step",
       "time training iterations of the reference setup (at\n"
       "initialisation and after training), evaluation and sampling",
       run_bench_step},
      {"bench score",
       "time log p(x) of DW4/LJ13/LJ55 test structures (exact trace):\n"
       "NFE, FLOP per structure, GFLOP/s and % of the GEMM peak",
       run_bench_score},
      {"bench sample",
       "time sampling DW4/LJ13/LJ55 (dopri5, rk4): NFE, FLOP per\n"
       "structure, GFLOP/s and % of the GEMM peak",
       run_bench_sample},
      {"bench scaling",
       "scaling curves (SVG): time per evaluation and per sample vs\n"
       "atoms and vs batch; gradient memory vs solver steps",
       run_bench_scaling},
  };
  return c;
}

constexpr std::size_t kNameColumn = 17;  // "check gradients" and two spaces

std::string top_usage() {
  std::string u =
      "usage: enf <command> [options]\n\n"
      "E(n)-equivariant continuous normalizing flows (Satorras, Hoogeboom et al., 2021)\n"
      "for particle systems (DW4, LJ13) and molecules (QM9).\n\ncommands:\n";
  for (const Command& c : commands()) {
    std::string name = c.name;
    name.resize(kNameColumn, ' ');
    u += "  " + name;
    for (char ch : c.summary) u += ch == '\n' ? "\n  " + std::string(kNameColumn, ' ') : std::string(1, ch);
    u += "\n";
  }
  u += "\nWherever a command takes a data file it also takes a dataset name: dw4:test,\n"
       "lj13:val, qm9:test, qm9-positional:train ('enf data list').\n\n"
       "Run 'enf <command> --help' for the options of a command; 'enf --version' says\n"
       "which build this is.\n";
  return u;
}

// The first word of two-word commands ("data" of "data list").
std::string first_word(const std::string& name) { return name.substr(0, name.find(' ')); }

// The command args name (one or two words), or null; `words` says how many.
const Command* find_command(const std::vector<std::string>& args, std::size_t& words) {
  for (const Command& c : commands()) {
    if (c.name == args[0]) return words = 1, &c;
    if (args.size() >= 2 && c.name == args[0] + " " + args[1]) return words = 2, &c;
  }
  return nullptr;
}

// "usage: enf data list|fetch|generate [options]   (see 'enf data list --help', ...)"
// for a first word given without (or with an unknown) second; "" when `word`
// starts no two-word command.
std::string group_usage(const std::string& word) {
  std::string seconds, helps;
  for (const Command& c : commands()) {
    if (c.name.find(' ') == std::string::npos || first_word(c.name) != word) continue;
    // (appended piecewise: GCC 12's false -Wrestrict on "x" + string, PR 105329)
    if (!seconds.empty()) seconds += '|';
    seconds += c.name.substr(word.size() + 1);
    if (!helps.empty()) helps += ", ";
    helps += "'enf ";
    helps += c.name;
    helps += " --help'";
  }
  if (seconds.empty()) return {};
  return "usage: enf " + word + " " + seconds + " [options]   (see " + helps + ")\n";
}

// Errors quote file names, option values and bytes read from files: a
// terminal must not execute them. Control characters (C0, DEL, C1) and
// bytes that are not valid UTF-8 become visible escapes ("\x1b"); the rest
// of UTF-8 ("Å", "−") stays as it is.
std::string printable(const std::string& s) {
  std::string out;
  auto escape = [&out](unsigned char b) {
    static const char hex[] = "0123456789abcdef";
    out += "\\x";
    out += hex[b >> 4];
    out += hex[b & 15];
  };
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      if (b < 0x20 || b == 0x7f) escape(b);
      else out += char(b);
      ++i;
      continue;
    }
    // The length of the sequence b starts, and its smallest code point
    // (overlong encodings are invalid).
    const std::size_t n = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 && b < 0xe0 ? 2 : 0;
    char32_t cp = n == 4 ? b & 7u : n == 3 ? b & 15u : b & 31u;
    bool ok = n != 0 && i + n <= s.size();
    for (std::size_t k = 1; ok && k < n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      ok = (c & 0xc0) == 0x80;
      cp = (cp << 6) | (c & 0x3fu);
    }
    ok = ok && !(n == 3 && cp < 0x800) && !(n == 4 && (cp < 0x10000 || cp > 0x10ffff)) &&
         !(cp >= 0xd800 && cp <= 0xdfff) && !(cp >= 0x80 && cp <= 0x9f);  // C1 controls (0x9b: CSI)
    if (!ok) {
      escape(b);
      ++i;
      continue;
    }
    out.append(s, i, n);
    i += n;
  }
  return out;
}

// "enf: error: ..." (one process) or "enf: error (rank 1 of 4): ..." (one of
// a job's ranks, each of which may say it).
void say_error(const std::string& what) {
  enf::Communicator& w = enf::cli::world();
  const std::string who = w.size() > 1 ? " (rank " + std::to_string(w.rank()) + " of " + std::to_string(w.size()) + ")" : "";
  std::fprintf(stderr, "enf: error%s: %s\n", who.c_str(), what.c_str());
}

int dispatch(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // "enf help train" is "enf train --help".
  if (args.size() >= 2 && args[0] == "help") {
    args.erase(args.begin());
    args.push_back("--help");
  }
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::fputs(top_usage().c_str(), args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version" || args[0] == "version") return enf::cli::print_version();
  std::size_t words = 0;
  const Command* cmd = find_command(args, words);
  if (!cmd) {
    if (const std::string u = group_usage(args[0]); !u.empty()) {
      std::fputs(u.c_str(), stderr);
      return 2;
    }
    std::fprintf(stderr, "enf: unknown command '%s' (see 'enf --help' for the commands)\n", printable(args[0]).c_str());
    return 2;
  }
  // Commands that share their work among ranks; the others would run K
  // times over and write their outputs K times.
  const bool shares_work = cmd->name == "train" || cmd->name == "score" || cmd->name == "sample" ||
                           cmd->name == "bench step";
  if (enf::cli::world().size() > 1 && !shares_work) {
    if (enf::cli::world().is_root())
      std::fprintf(stderr, "enf: error: 'enf %s' runs as one process (started as %d ranks); under mpirun or srun "
                   "run enf train, score, sample or bench step\n", cmd->name.c_str(), enf::cli::world().size());
    return 2;
  }
  try {
    return cmd->run({args.begin() + std::ptrdiff_t(words), args.end()});
  } catch (const enf::cli::UsageError& e) {
    // The options are the same on every rank: each finds the same mistake, rank 0 says it.
    if (enf::cli::world().is_root())
      std::fprintf(stderr, "enf: %s (see 'enf %s --help')\n", printable(e.what()).c_str(), cmd->name.c_str());
    return 2;
  } catch (const enf::CollectiveError& e) {
    // Every rank has it (a collective told them): said once, every rank ends normally.
    if (enf::cli::world().is_root()) say_error(printable(e.what()));
    return 1;
  } catch (const std::bad_alloc&) {
    // A fallback: sizes read from files are checked before allocating, and
    // such errors name the file; this says what happened if one slips through.
    say_error("out of memory while running 'enf " + cmd->name + "'");
  } catch (const std::length_error& e) {
    say_error("out of memory while running 'enf " + cmd->name + "' (" + printable(e.what()) + ")");
  } catch (const std::exception& e) {
    say_error(printable(e.what()));
  }
  // An error of this rank alone: the others must not wait for it.
  enf::cli::abort_world(1);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  enf::cli::init_world(argc, argv);
  const int code = dispatch(argc, argv);
  enf::cli::finalize_world();
  return code;
}
