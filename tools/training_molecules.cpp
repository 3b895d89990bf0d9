#include "tools/training_molecules.hpp"

#include <cstdio>
#include <stdexcept>

#include "datasets/molecule_io.hpp"
#include "engine/data_split.hpp"
#include "tools/commands.hpp"

namespace enf::cli {

namespace {

MoleculeSet read(const std::string& path, bool skip) {
  MoleculeReadOptions ro;
  ro.skip_unsupported = skip;
  MoleculeSet s = read_molecules(path, ro);
  for (const auto& m : s.molecules)
    if (m.atoms() < 2) throw std::runtime_error("molecule '" + m.name + "' in '" + path + "': fewer than 2 atoms");
  if (s.skipped > 0) {
    std::fprintf(stderr, "enf train: skipped %ld unsupported molecules of %s", s.skipped, path.c_str());
    for (const auto& r : s.skip_reasons) std::fprintf(stderr, "\n  %s", r.c_str());
    std::fputc('\n', stderr);
  }
  return s;
}

// --split tenth: the held-out tenth of --data (every_kth_held_out) validates, the rest trains.
MoleculeData held_out_tenth(const ParsedOptions& opt, MoleculeSet all, const std::string& path) {
  const long n = opt.integer("n-data"), v = opt.integer("val-samples");
  if (!opt.str("val-data").empty())
    throw UsageError("--split tenth validates on the held-out tenth of --data: leave out --val-data");
  const HeldOutSplit split = every_kth_held_out(int(all.molecules.size()), 10);
  const long trainable = long(split.train.size()), held = long(split.held_out.size());
  if (n > trainable)
    throw UsageError("--n-data " + std::to_string(n) + " exceeds the " + std::to_string(trainable) +
                     " molecules of " + path + " outside its held-out tenth");
  if (v > held || trainable == 0)
    throw UsageError("--val-samples " + std::to_string(v) + ": " + path + " has " + std::to_string(held) +
                     " held-out molecules (positions divisible by 10) and " + std::to_string(trainable) +
                     " others");
  MoleculeData d;
  d.skipped = all.skipped;
  const long used = n == 0 ? trainable : n;
  for (long k = 0; k < used; ++k) d.train.push_back(std::move(all.molecules[split.train[k]]));
  for (long k = 0; k < v; ++k) d.val.push_back(std::move(all.molecules[split.held_out[k]]));
  d.train_source = path + ": the first " + std::to_string(used) + " of its molecules at positions not divisible by 10";
  d.val_source = path + ": the first " + std::to_string(v) + " of its " + std::to_string(held) +
                 " held-out molecules (positions divisible by 10)";
  return d;
}

}  // namespace

MoleculeData load_training_molecules(const ParsedOptions& opt) {
  const bool skip = opt.flag("skip-unsupported");
  const long n = opt.integer("n-data"), v = opt.integer("val-samples");
  if (n < 0 || v < 1) throw UsageError("--n-data must be at least 0 and --val-samples at least 1");
  MoleculeData d;
  const std::string path = opt.str("data");
  MoleculeSet all = read(path, skip);
  if (opt.choice("split", {"first", "tenth"}) == "tenth") return held_out_tenth(opt, std::move(all), path);
  d.skipped = all.skipped;
  std::vector<Molecule>& m = all.molecules;
  const long total = long(m.size());
  if (!opt.str("val-data").empty()) {
    MoleculeSet val = read(opt.str("val-data"), skip);
    d.skipped += val.skipped;
    if (long(val.molecules.size()) > v) val.molecules.resize(v);
    d.val = std::move(val.molecules);
    d.val_source = opt.str("val-data") + ": the first " + std::to_string(d.val.size()) + " molecules";
    const long used = n == 0 ? total : std::min(n, total);
    d.train.assign(m.begin(), m.begin() + used);
  } else {
    if (v >= total)
      throw UsageError("--val-samples " + std::to_string(v) + " leaves no training molecules among the " +
                       std::to_string(total) + " of " + path + " (give --val-data or fewer)");
    const long used = n == 0 ? total - v : n;
    if (used > total - v)
      throw UsageError("--n-data " + std::to_string(n) + " plus the last " + std::to_string(v) +
                       " molecules for validation exceed the " + std::to_string(total) + " of " + path +
                       " (give --val-data, or fewer)");
    d.train.assign(m.begin(), m.begin() + used);
    d.val.assign(m.end() - v, m.end());
    d.val_source = path + ": its last " + std::to_string(v) + " molecules";
  }
  d.train_source = path + ": its first " + std::to_string(d.train.size()) + " molecules";
  return d;
}

}  // namespace enf::cli
