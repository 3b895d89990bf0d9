#include "datasets/qm9_raw.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <stdexcept>
#include <tuple>
#include <unordered_set>
#include <utility>

#include "datasets/molecule.hpp"
#include "datasets/molecule_io.hpp"
#include "datasets/npy.hpp"
#include "datasets/npz.hpp"
#include "datasets/numpy_random.hpp"
#include "datasets/xyz.hpp"

namespace enf {

namespace {

namespace fs = std::filesystem;

// Line 2 of an original QM9 file after "gdb <id>", in cormorant's order.
constexpr std::array<const char*, 15> kProperties = {"A",    "B",  "C",  "mu", "alpha", "homo", "lumo", "gap",
                                                     "r2",   "zpve", "U0", "U", "H",     "G",    "Cv"};
constexpr int kWidth = kQm9MaxAtoms;  // EDM pads every split to QM9's largest molecule
constexpr const char* kSplitFiles[] = {"train.npz", "valid.npz", "test.npz"};

// One included molecule, as it goes into the npz (positions already float32,
// as cormorant's torch tensors): ~0.5 KB, so all of QM9 stays near 70 MB.
struct Record {
  int64_t id = 0;
  int atoms = 0;
  std::array<std::int8_t, kWidth> z{};
  std::array<float, 3 * kWidth> positions{};
  std::array<double, kProperties.size()> properties{};
};

[[noreturn]] void fail(const std::string& kind, const std::string& path, const std::string& what) {
  throw std::runtime_error(kind + " '" + path + "': " + what);
}

// ---- the archive -------------------------------------------------------------------

// The gdb id of a member named [dir/]dsgdb9nsd_NNNNNN.xyz, or 0.
int64_t member_id(const std::string& path) {
  const std::string base = fs::path(path).filename().string();
  const std::string prefix = "dsgdb9nsd_", suffix = ".xyz";
  if (base.size() != prefix.size() + 6 + suffix.size() || base.compare(0, prefix.size(), prefix) != 0 ||
      base.compare(base.size() - suffix.size(), suffix.size(), suffix) != 0)
    return 0;
  int64_t id = 0;
  for (std::size_t k = prefix.size(); k < prefix.size() + 6; ++k) {
    if (base[k] < '0' || base[k] > '9') return 0;
    id = 10 * id + (base[k] - '0');
  }
  return id;
}

// One member's text -> Record, through the project's original-QM9 XYZ reader.
Record parse_member(const std::string& text, const std::string& name, int64_t id) {
  MoleculeReadOptions ro;
  ro.centre = false;  // cormorant keeps the file's coordinates
  const MoleculeSet set = parse_xyz_molecules(text, name, ro);
  const auto bad = [&](const std::string& what) { fail("xyz file", name, what); };
  if (set.molecules.size() != 1)
    bad("holds " + std::to_string(set.molecules.size()) + " records; an original QM9 file holds one");
  const Molecule& m = set.molecules[0];
  const std::string title = "gdb " + std::to_string(id);
  if (m.name != title)
    bad("line 2 starts with '" + m.name + "', expected '" + title + "' and the tab-separated properties of an "
        "original QM9 file");
  Record r;
  r.id = id;
  r.atoms = m.atoms();
  for (int a = 0; a < r.atoms; ++a) {
    r.z[std::size_t(a)] = std::int8_t(m.atomic_numbers[std::size_t(a)]);  // H..F only (the reader checks)
    for (std::size_t d = 0; d < 3; ++d)
      r.positions[3 * std::size_t(a) + d] = static_cast<float>(m.positions[3 * std::size_t(a) + d]);
  }
  for (std::size_t k = 0; k < kProperties.size(); ++k) {
    const auto it = std::find_if(m.properties.begin(), m.properties.end(),
                                 [&](const auto& p) { return p.first == kProperties[k]; });
    if (it == m.properties.end())
      bad("line 2 has " + std::to_string(k) + " properties; an original QM9 file has 15 (A B C mu alpha homo lumo "
          "gap r2 zpve U0 U H G Cv)");
    if (!parse_xyz_number(it->second, r.properties[k]))
      bad(std::string("property ") + kProperties[k] + " on line 2 is '" + it->second + "', not a number");
  }
  return r;
}

// Progress on the log: a line every few seconds with an estimate of the time left.
class Progress {
  using Clock = std::chrono::steady_clock;

 public:
  Progress(std::ostream* log, long total) : log_(log), total_(total), start_(Clock::now()), last_(start_) {}
  void step(long done) {
    if (!log_) return;
    const auto now = Clock::now();
    if (now - last_ < std::chrono::seconds(5)) return;
    last_ = now;
    const double elapsed = seconds(now), left = done > 0 ? elapsed * double(total_ - done) / double(done) : 0;
    char line[160];
    std::snprintf(line, sizeof line, "qm9: %ld / %ld members read (%.0f%%), %.0f s elapsed, about %.0f s left",
                  done, total_, total_ > 0 ? 100.0 * double(done) / double(total_) : 0.0, elapsed,
                  std::max(left, 0.0));
    *log_ << line << std::endl;
  }
  double seconds(Clock::time_point now = Clock::now()) const {
    return std::chrono::duration<double>(now - start_).count();
  }

 private:
  std::ostream* log_;
  long total_;
  Clock::time_point start_, last_;
};

struct ArchiveContents {
  std::vector<int64_t> ids;      // every member's gdb id, ascending
  std::vector<Record> records;   // the included members, ascending id
};

ArchiveContents read_archive(const std::string& path, const std::unordered_set<int64_t>& excluded,
                             const Qm9RawOptions& opt) {
  using ArchivePtr = std::unique_ptr<archive, decltype(&archive_read_free)>;
  const ArchivePtr a(archive_read_new(), &archive_read_free);
  if (!a) fail("qm9 archive", path, "libarchive could not start a reader");
  archive_read_support_filter_all(a.get());  // bzip2, gzip, xz, ... or none
  archive_read_support_format_tar(a.get());
  const auto error = [&] {
    const char* e = archive_error_string(a.get());
    return std::string(e ? e : "unknown libarchive error");
  };
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) fail("qm9 archive", path, "no such file");
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK)
    fail("qm9 archive", path, "cannot open as a tar archive (.tar, .tar.gz, .tar.bz2): " + error());

  if (opt.log) *opt.log << "qm9: reading " << path << " (" << opt.molecules << " molecules expected)" << std::endl;
  ArchiveContents out;
  out.records.reserve(std::size_t(std::clamp(opt.molecules, 0L, 200000L)));
  std::set<int64_t> seen;
  std::string last = "(none)", text;
  Progress progress(opt.log, opt.molecules);
  std::vector<char> buffer(1 << 16);
  for (;;) {
    archive_entry* entry = nullptr;
    const int rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN)
      fail("qm9 archive", path, "corrupt after member '" + last + "' (" + std::to_string(seen.size()) +
                                    " members read): " + error());
    const char* name_c = archive_entry_pathname(entry);
    const std::string name = name_c ? name_c : "";
    if (archive_entry_filetype(entry) == AE_IFDIR) continue;
    const int64_t id = member_id(name);
    if (id == 0 || archive_entry_filetype(entry) != AE_IFREG)
      fail("qm9 archive", path, "member '" + name + "' is not a dsgdb9nsd_NNNNNN.xyz file (the QM9 archive "
                                "holds only those)");
    if (!seen.insert(id).second) fail("qm9 archive", path, "member '" + name + "' appears twice");
    last = name;
    const bool include = excluded.count(id) == 0;
    text.clear();
    for (;;) {
      const la_ssize_t n = include ? archive_read_data(a.get(), buffer.data(), buffer.size()) : 0;
      if (n == 0) break;
      if (n < 0) fail("qm9 archive", path, "member '" + name + "': cannot read its data: " + error());
      text.append(buffer.data(), std::size_t(n));
    }
    // The excluded molecules are never read (cormorant never opens them).
    if (include) out.records.push_back(parse_member(text, path + ":" + name, id));
    progress.step(long(seen.size()));
  }
  out.ids.assign(seen.begin(), seen.end());
  std::sort(out.records.begin(), out.records.end(), [](const Record& x, const Record& y) { return x.id < y.id; });
  if (opt.log)
    *opt.log << "qm9: " << seen.size() << " members read, " << out.records.size() << " parsed in "
             << std::lround(progress.seconds()) << " s" << std::endl;
  return out;
}

// ---- the output directory ----------------------------------------------------------

// out_dir may be new, empty, or a previous result (only the split files).
void check_out_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  if (!fs::is_directory(dir, ec)) fail("qm9 output directory", dir.string(), "exists and is not a directory");
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (std::find(std::begin(kSplitFiles), std::end(kSplitFiles), n) == std::end(kSplitFiles))
      fail("qm9 output directory", dir.string(),
           "holds '" + n + "', so it is not a previous result (train.npz, valid.npz, test.npz only); "
           "give a new or empty directory");
  }
}

void write_split(const std::string& path, const std::vector<const Record*>& rows) {
  const auto m = int64_t(rows.size());
  std::vector<std::pair<std::string, std::string>> members;
  {
    std::vector<int64_t> num(rows.size()), index(rows.size()), charges(rows.size() * kWidth, 0);
    for (std::size_t r = 0; r < rows.size(); ++r) {
      num[r] = rows[r]->atoms;
      index[r] = rows[r]->id;
      for (int a = 0; a < rows[r]->atoms; ++a) charges[r * kWidth + std::size_t(a)] = rows[r]->z[std::size_t(a)];
    }
    members.emplace_back("num_atoms", npy_bytes({m}, num, path + ":num_atoms"));
    members.emplace_back("charges", npy_bytes({m, kWidth}, charges, path + ":charges"));
    std::vector<float> pos;
    pos.reserve(rows.size() * 3 * kWidth);
    for (const Record* r : rows) pos.insert(pos.end(), r->positions.begin(), r->positions.end());
    members.emplace_back("positions", npy_bytes({m, kWidth, 3}, pos, path + ":positions"));
    members.emplace_back("index", npy_bytes({m}, index, path + ":index"));
  }
  for (std::size_t k = 0; k < kProperties.size(); ++k) {
    std::vector<double> v(rows.size());
    for (std::size_t r = 0; r < rows.size(); ++r) v[r] = rows[r]->properties[k];
    members.emplace_back(kProperties[k], npy_bytes({m}, v, false, path + ":" + kProperties[k]));
  }
  write_npz(path, members);
}

// Replaces dir by tmp: rename when dir is absent, else move the old result
// aside first (a directory cannot be renamed over a non-empty one).
void move_into_place(const fs::path& tmp, const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::rename(tmp, dir, ec);
    if (ec) fail("qm9 output directory", dir.string(), "cannot rename '" + tmp.string() + "' to it: " + ec.message());
    return;
  }
  const fs::path old = dir.parent_path() / ("." + dir.filename().string() + ".old-" + std::to_string(::getpid()));
  fs::remove_all(old, ec);
  fs::rename(dir, old, ec);
  if (ec) fail("qm9 output directory", dir.string(), "cannot move the previous result aside: " + ec.message());
  fs::rename(tmp, dir, ec);
  if (ec) {
    std::error_code ignored;
    fs::rename(old, dir, ignored);
    fail("qm9 output directory", dir.string(), "cannot rename '" + tmp.string() + "' to it: " + ec.message());
  }
  fs::remove_all(old, ec);
}

}  // namespace

// ---- splits ------------------------------------------------------------------------

std::vector<int64_t> read_qm9_excluded(const std::string& path) {
  std::ifstream in(path);
  std::error_code ec;
  if (!fs::is_regular_file(path, ec) || !in) fail("excluded-molecule list", path, "no such file or not readable");
  std::vector<int64_t> ids;
  std::set<int64_t> seen;
  std::string line;
  for (long lineno = 1; std::getline(in, line); ++lineno) {
    const auto b = line.find_first_not_of(" \t\r\n\f\v");
    if (b == std::string::npos) continue;
    const std::string token = line.substr(b, line.find_first_of(" \t\r\n\f\v", b) - b);
    // is_int: Python's int(token) succeeds (an optional sign, then digits).
    const std::size_t digits = token[0] == '+' || token[0] == '-' ? 1 : 0;
    if (token.size() == digits || token.find_first_not_of("0123456789", digits) != std::string::npos) continue;
    const std::string where = "line " + std::to_string(lineno) + ": ";
    if (token[0] == '-' || token.size() - digits > 9 || std::stoll(token) < 1)
      fail("excluded-molecule list", path, where + "'" + token + "' is not a gdb id (1 or more)");
    const int64_t id = std::stoll(token);
    if (!seen.insert(id).second) fail("excluded-molecule list", path, where + "gdb id " + token + " is listed twice");
    ids.push_back(id);
  }
  if (in.bad()) fail("excluded-molecule list", path, "read error");
  return ids;
}

namespace {

// qm9_splits, its messages starting with `context`.
Qm9Splits make_splits(const std::vector<int64_t>& ids, const std::vector<int64_t>& excluded, const Qm9RawOptions& opt,
                      const std::string& context) {
  const auto bad = [&](const std::string& what) { throw std::runtime_error(context + what); };
  if (long(ids.size()) != opt.molecules)
    bad("the archive holds " + std::to_string(ids.size()) + " molecules; the QM9 archive has " +
        std::to_string(opt.molecules));
  if (long(excluded.size()) != opt.excluded)
    bad("the excluded list holds " + std::to_string(excluded.size()) + " gdb ids; QM9's uncharacterized.txt has " +
        std::to_string(opt.excluded));
  if (!std::is_sorted(ids.begin(), ids.end()) || std::adjacent_find(ids.begin(), ids.end()) != ids.end())
    bad("the archive's ids must be ascending and distinct");
  if (opt.contiguous_ids && !ids.empty() && (ids.front() != 1 || ids.back() != int64_t(ids.size())))
    bad("the archive's gdb ids run from " + std::to_string(ids.front()) + " to " + std::to_string(ids.back()) +
        "; the QM9 archive's run from 1 to " + std::to_string(ids.size()));
  const std::set<int64_t> out(excluded.begin(), excluded.end());
  for (int64_t e : excluded)
    if (!std::binary_search(ids.begin(), ids.end(), e))
      bad("excluded gdb id " + std::to_string(e) + " is not in the archive");
  std::vector<int64_t> included;
  for (int64_t id : ids)
    if (!out.count(id)) included.push_back(id);

  const long n = long(included.size());
  const long n_test = long(opt.test_fraction * double(n));  // Python's int(0.1 * Nmols)
  const long n_valid = n - opt.train - n_test;
  if (opt.train < 1 || n_test < 1 || n_valid < 1)
    bad(std::to_string(n) + " molecules do not make non-empty splits of " + std::to_string(opt.train) +
        " train, " + std::to_string(n_test) + " test (fraction " + std::to_string(opt.test_fraction) +
        ") and the rest valid");
  const std::vector<int64_t> perm = numpy_legacy_permutation(n, opt.seed);
  Qm9Splits s;
  const auto take = [&](long from, long count, std::vector<int64_t>& ids_out) {
    for (long k = from; k < from + count; ++k) ids_out.push_back(included[std::size_t(perm[std::size_t(k)])]);
    std::sort(ids_out.begin(), ids_out.end());  // rows in archive order, as cormorant
  };
  take(0, opt.train, s.train);
  take(opt.train, n_valid, s.valid);
  take(opt.train + n_valid, n_test, s.test);
  return s;
}

}  // namespace

Qm9Splits qm9_splits(const std::vector<int64_t>& ids, const std::vector<int64_t>& excluded, const Qm9RawOptions& opt) {
  return make_splits(ids, excluded, opt, "qm9 splits: ");
}

// ---- processing --------------------------------------------------------------------

Qm9Splits process_qm9_raw(const std::string& archive_path, const std::string& excluded_path,
                          const std::string& out_dir, const Qm9RawOptions& opt) {
  // Everything that can be checked before the long read is checked first.
  const fs::path dir = fs::absolute(fs::path(out_dir)).lexically_normal();
  const fs::path target = dir.filename().empty() ? dir.parent_path() : dir;  // "out/" names "out"
  check_out_dir(target);
  const std::vector<int64_t> excluded = read_qm9_excluded(excluded_path);
  if (long(excluded.size()) != opt.excluded)
    fail("excluded-molecule list", excluded_path,
         "holds " + std::to_string(excluded.size()) + " gdb ids; QM9's uncharacterized.txt has " +
             std::to_string(opt.excluded));
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) fail("qm9 output directory", target.string(), "cannot create its parent: " + ec.message());

  const ArchiveContents contents =
      read_archive(archive_path, std::unordered_set<int64_t>(excluded.begin(), excluded.end()), opt);
  if (long(contents.ids.size()) != opt.molecules)
    fail("qm9 archive", archive_path,
         "holds " + std::to_string(contents.ids.size()) + " molecules; the QM9 archive has " +
             std::to_string(opt.molecules));
  const Qm9Splits splits = make_splits(contents.ids, excluded, opt,
                                       "qm9 archive '" + archive_path + "' with excluded-molecule list '" +
                                           excluded_path + "': ");

  const fs::path tmp =
      target.parent_path() / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  try {
    fs::create_directory(tmp);
    const auto row_of = [&](int64_t id) {
      const auto it = std::lower_bound(contents.records.begin(), contents.records.end(), id,
                                       [](const Record& r, int64_t v) { return r.id < v; });
      return &*it;  // every included id was parsed
    };
    const std::vector<int64_t>* parts[] = {&splits.train, &splits.valid, &splits.test};
    for (std::size_t s = 0; s < 3; ++s) {
      std::vector<const Record*> rows;
      for (int64_t id : *parts[s]) rows.push_back(row_of(id));
      write_split((tmp / kSplitFiles[s]).string(), rows);
      if (opt.log) *opt.log << "qm9: " << kSplitFiles[s] << ": " << rows.size() << " molecules" << std::endl;
    }
    check_out_dir(target);  // nothing else appeared there meanwhile
    move_into_place(tmp, target);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  return splits;
}

// ---- verification ------------------------------------------------------------------

Qm9TestCheck verify_against_shipped_test(const std::string& produced_test_npz, const std::string& shipped_test_npz) {
  const NpzFile ours(produced_test_npz), shipped(shipped_test_npz);
  const auto differ = [&](const std::string& what) {
    throw std::runtime_error("qm9 test split '" + produced_test_npz + "' differs from the shipped EDM test split '" +
                             shipped_test_npz + "': " + what);
  };
  const NpyArray id_a = ours.array("index", true), id_b = shipped.array("index", true);
  if (id_a.data.size() != id_b.data.size())
    differ(std::to_string(id_a.data.size()) + " molecules, the shipped split has " + std::to_string(id_b.data.size()));
  const std::size_t rows = id_a.data.size();
  const auto row_name = [&](std::size_t r) {
    return "row " + std::to_string(r) + " (gdb " + std::to_string(int64_t(id_b.data[r])) + ")";
  };
  for (std::size_t r = 0; r < rows; ++r)
    if (id_a.data[r] != id_b.data[r])
      differ("row " + std::to_string(r) + " is gdb " + std::to_string(int64_t(id_a.data[r])) + ", the shipped row is gdb " +
             std::to_string(int64_t(id_b.data[r])) + " (the splits differ)");
  const NpyArray n_a = ours.array("num_atoms", true), n_b = shipped.array("num_atoms", true);
  const NpyArray z_a = ours.array("charges", true), z_b = shipped.array("charges", true);
  const NpyArray x_a = ours.array("positions"), x_b = shipped.array("positions");
  for (const auto& [file, n, z, x] : {std::tuple{&produced_test_npz, &n_a, &z_a, &x_a},
                                      std::tuple{&shipped_test_npz, &n_b, &z_b, &x_b}}) {
    const auto w = z->shape.size() == 2 ? z->shape[1] : -1;
    if (id_a.shape.size() != 1 || n->shape != std::vector<int64_t>{int64_t(rows)} || z->shape.size() != 2 ||
        z->shape[0] != int64_t(rows) || x->shape != std::vector<int64_t>{int64_t(rows), w, 3})
      throw std::runtime_error("npz file '" + *file + "': not a QM9 split in the EDM layout (index [M], num_atoms "
                               "[M], charges [M, atoms], positions [M, atoms, 3])");
    for (double v : n->data)
      if (!(v >= 0 && v <= double(w)))
        throw std::runtime_error("npz file '" + *file + "': num_atoms " + std::to_string(v) + " outside 0.." +
                                 std::to_string(w));
  }
  const std::size_t w_a = std::size_t(z_a.shape[1]), w_b = std::size_t(z_b.shape[1]);
  // Equal after rounding to float32: at most one float32 ulp apart.
  const auto same_float = [](double a, double b) {
    const float fa = static_cast<float>(a), fb = static_cast<float>(b);
    return fa == fb || std::nextafter(fa, fb) == fb;
  };
  Qm9TestCheck check;
  check.molecules = long(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    if (n_a.data[r] != n_b.data[r])
      differ(row_name(r) + ": " + std::to_string(int64_t(n_a.data[r])) + " atoms, the shipped row has " +
             std::to_string(int64_t(n_b.data[r])));
    for (std::size_t a = 0; a < std::size_t(n_a.data[r]); ++a) {
      if (z_a.data[r * w_a + a] != z_b.data[r * w_b + a])
        differ(row_name(r) + ": atom " + std::to_string(a + 1) + " has Z = " +
               std::to_string(int(z_a.data[r * w_a + a])) + ", the shipped row Z = " +
               std::to_string(int(z_b.data[r * w_b + a])));
      for (std::size_t d = 0; d < 3; ++d) {
        const double xa = x_a.data[3 * (r * w_a + a) + d], xb = x_b.data[3 * (r * w_b + a) + d];
        check.max_position_diff = std::max(check.max_position_diff, std::abs(xa - xb));
        if (!same_float(xa, xb))
          differ(row_name(r) + ": atom " + std::to_string(a + 1) + " " + "xyz"[d] + " is " +
                 std::to_string(xa) + ", the shipped " + std::to_string(xb));
      }
    }
  }
  for (const char* p : kProperties) {
    if (!shipped.contains(p)) continue;
    const NpyArray pa = ours.array(p), pb = shipped.array(p);
    for (std::size_t r = 0; r < rows; ++r)
      if (!same_float(pa.data[r], pb.data[r]))
        differ(row_name(r) + ": " + p + " = " + std::to_string(pa.data[r]) + ", the shipped " +
               std::to_string(pb.data[r]));
  }
  return check;
}

}  // namespace enf
