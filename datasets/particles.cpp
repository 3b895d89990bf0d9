#include "datasets/particles.hpp"

#include <cmath>
#include <stdexcept>

#include "datasets/molecule_io.hpp"
#include "datasets/npy.hpp"
#include "datasets/npz.hpp"
#include "datasets/registry.hpp"
#include "datasets/systems.hpp"

namespace enf {

ParticleSystem particle_system(const std::string& name) {
  const SystemInfo* s = find_system(name);
  if (s && is_particles(*s)) return {s->name, s->n, s->dim};
  throw std::invalid_argument("unknown particle system '" + name + "' (use " + system_names("or", is_particles) + ")");
}

namespace {
// A .npz holds several arrays: take the one named "x", or the only one.
NpyArray read_array(const std::string& path) {
  if (path.size() < 4 || path.compare(path.size() - 4, 4, ".npz") != 0) return read_npy(path);
  const NpzFile f(path);
  if (f.contains("x")) return f.array("x");
  if (f.names().size() == 1) return f.array(f.names()[0]);
  std::string list;
  for (const auto& n : f.names()) list += (list.empty() ? "" : ", ") + n;
  throw std::runtime_error("npz file '" + path + "': holds several arrays (" + list +
                           "); name the structures' array \"x\"");
}
}  // namespace

namespace {
// QM9-positional: the positions of the 19-atom molecules of a molecule file
// (EDM .npz, XYZ, SDF, ...), atom types dropped.
Structures load_qm9_positional(const std::string& path, const ParticleSystem& sys, long first, long count) {
  const MoleculeSet set = read_molecules(path);
  std::vector<const Molecule*> keep;
  for (const auto& m : set.molecules)
    if (m.atoms() == sys.n) keep.push_back(&m);
  const long rows = long(keep.size());
  if (first < 0 || first > rows)
    throw std::runtime_error(path + ": first row " + std::to_string(first) + " is out of range (" +
                             std::to_string(rows) + " molecules of " + std::to_string(sys.n) + " atoms)");
  const long take = count < 0 ? rows - first : std::min(count, rows - first);
  Structures s;
  s.rows = int(take);
  for (long r = first; r < first + take; ++r) s.x.insert(s.x.end(), keep[r]->positions.begin(), keep[r]->positions.end());
  return s;  // read_molecules centred each molecule
}

bool is_molecule_file(const std::string& path) {
  if (path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0) return false;
  if (path.size() >= 4 && path.compare(path.size() - 4, 4, ".npz") == 0) return NpzFile(path).contains("num_atoms");
  return true;
}
}  // namespace

Structures load_structures(const std::string& spec, const ParticleSystem& sys, long first, long count) {
  // A dataset name (dw4:test, qm9-positional:train) is rows of a file: the
  // requested rows count from the part's first row and stay inside it.
  const ResolvedData data = resolve_data(spec);
  const std::string& path = data.path;
  if (data.first != 0 || data.count >= 0) {
    if (data.count >= 0 && first > data.count)
      throw std::runtime_error(spec + ": first row " + std::to_string(first) + " is out of range (" +
                               std::to_string(data.count) + " rows)");
    const long left = data.count < 0 ? -1 : data.count - first;
    count = count < 0 ? left : (left < 0 ? count : std::min(count, left));
    first += data.first;
  }
  const SystemInfo* info = find_system(sys.name);
  if (info && info->positions_of_molecules && is_molecule_file(path)) return load_qm9_positional(path, sys, first, count);
  const NpyArray a = read_array(path);
  const int S = sys.n * sys.dim;
  const long rows = long(a.shape.empty() ? 0 : a.shape[0]);
  if (first < 0 || first > rows) throw std::runtime_error(path + ": first row " + std::to_string(first) + " is out of range");
  const long take = count < 0 ? rows - first : std::min(count, rows - first);
  check_structure_rows(a, path, sys, first, take);
  Structures s;
  s.rows = int(take);
  s.x.assign(a.data.begin() + first * S, a.data.begin() + (first + take) * S);
  for (long r = 0; r < take; ++r)
    for (int d = 0; d < sys.dim; ++d) {
      double m = 0;
      for (int i = 0; i < sys.n; ++i) m += s.x[r * S + i * sys.dim + d];
      m /= sys.n;
      for (int i = 0; i < sys.n; ++i) s.x[r * S + i * sys.dim + d] -= m;
    }
  return s;
}

void check_structure_rows(const NpyArray& a, const std::string& path, const ParticleSystem& sys, long first,
                          long count) {
  const int S = sys.n * sys.dim;
  std::string shape;
  for (auto d : a.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
  const bool flat = a.shape.size() == 2 && a.shape[1] == S;
  const bool nested = a.shape.size() == 3 && a.shape[1] == sys.n && a.shape[2] == sys.dim;
  if (!flat && !nested)
    throw std::runtime_error(path + ": shape (" + shape + "): expected (rows, " + std::to_string(S) + ") or (rows, " +
                             std::to_string(sys.n) + ", " + std::to_string(sys.dim) + ") — " +
                             (sys.name.empty() ? "" : sys.name + ": ") + std::to_string(sys.n) + " particles × " +
                             std::to_string(sys.dim) + " dimensions");
  if (a.shape[0] == 0) throw std::runtime_error(path + ": shape (" + shape + "): no structures");
  if (count <= 0) throw std::runtime_error(path + ": no structures from row " + std::to_string(first));
  for (long r = first; r < first + count; ++r)
    for (int k = 0; k < S; ++k)
      if (!(std::abs(a.data[std::size_t(r) * S + k]) <= kMaxCoordinate))
        throw std::runtime_error(path + ": row " + std::to_string(r) + " (0-based), particle " + std::to_string(k / sys.dim) +
                                 (std::isfinite(a.data[std::size_t(r) * S + k]) ? ": coordinate is beyond 1e6 ("
                                                                               : ": coordinate is not finite (") +
                                 std::to_string(a.data[std::size_t(r) * S + k]) + ")");
}

SplitSpec shipped_split(const ParticleSystem& sys, const std::string& split) {
  if (split != "train" && split != "val" && split != "test")
    throw std::invalid_argument("unknown split '" + split + "' (use train, val or test)");
  // The system's default splits (datasets/systems.cpp); a row range replaces
  // the registered part's own (LJ13 trains on a part of its validation split).
  const SystemInfo& info = system_info(sys.name);
  const SplitRange& range = split == "train" ? info.train : split == "val" ? info.val : info.test;
  const ResolvedData r = resolve_data(range.part);
  if (range.count >= 0) return {r.path, range.first, range.count};
  return {r.path, r.first, r.count};
}

}  // namespace enf
