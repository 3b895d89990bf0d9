#include "datasets/molecule_io.hpp"
#include "datasets/registry.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <utility>

#include "datasets/file_io.hpp"
#include "datasets/molecule_io_detail.hpp"
#include "datasets/npz.hpp"
#include "datasets/xyz.hpp"

namespace enf {

namespace detail {

namespace {
const char* const kSkipHint = " (skip such molecules with --skip-unsupported)";
}  // namespace

std::string record_label(long number, const std::string& title) {
  std::string s = "record " + std::to_string(number);
  return title.empty() ? s : s + " ('" + title + "')";
}

std::string default_name(const std::string& path, long number) {
  return std::filesystem::path(path).filename().string() + " record " + std::to_string(number);
}

std::string one_line(const std::string& text) {
  std::string s = text;
  std::replace_if(
      s.begin(), s.end(), [](char c) { return c == '\n' || c == '\r' || c == '\t'; }, ' ');
  return s;
}

MoleculeCollector::MoleculeCollector(std::string kind, std::string path, const MoleculeReadOptions& opt)
    : kind_(std::move(kind)), path_(std::move(path)), opt_(opt) {}

void MoleculeCollector::fail(const std::string& where, const std::string& what) const {
  throw std::runtime_error(kind_ + " file '" + path_ + "': " + (where.empty() ? "" : where + ": ") + what);
}

void MoleculeCollector::unsupported(const std::string& where, const std::string& what) {
  if (!opt_.skip_unsupported) fail(where, what + kSkipHint);
  ++set_.skipped;
  if (set_.skip_reasons.size() < opt_.max_skip_reasons) set_.skip_reasons.push_back(where + ": " + what);
}

void MoleculeCollector::add(Molecule m, const std::string& where, std::size_t first_atom_line) {
  const auto atom_where = [&](int i) {
    return first_atom_line > 0 ? where + ", line " + std::to_string(first_atom_line + std::size_t(i)) : where;
  };
  const int n = m.atoms();
  if (m.positions.size() != 3 * std::size_t(n))
    fail(where, std::to_string(m.positions.size()) + " coordinates for " + std::to_string(n) + " atoms");
  for (int i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d)
      if (!(std::abs(m.positions[3 * std::size_t(i) + std::size_t(d)]) <= kMaxCoordinate))
        fail(atom_where(i), "atom " + std::to_string(i + 1) +
                                (std::isfinite(m.positions[3 * std::size_t(i) + std::size_t(d)])
                                     ? " has a coordinate beyond 1e6 Å ("
                                     : " has a non-finite coordinate (") +
                                std::to_string(m.positions[3 * std::size_t(i)]) + ", " +
                                std::to_string(m.positions[3 * std::size_t(i) + 1]) + ", " +
                                std::to_string(m.positions[3 * std::size_t(i) + 2]) + ")");
  if (n == 0) return unsupported(where, "the record has no atoms");
  for (int i = 0; i < n; ++i) {
    const int z = m.atomic_numbers[std::size_t(i)];
    if (qm9_type_index(z) >= 0) continue;
    const std::string what =
        z >= 1 && z <= 118 ? "is " + element_symbol(z) : "has no known element (Z = " + std::to_string(z) + ")";
    return unsupported(atom_where(i), "atom " + std::to_string(i + 1) + " " + what + "; enf models H, C, N, O, F");
  }
  const std::string source = opt_.limits_source.empty() ? "" : " (" + opt_.limits_source + ")";
  if (!opt_.elements.empty())
    for (int i = 0; i < n; ++i) {
      const int z = m.atomic_numbers[std::size_t(i)];
      if (std::find(opt_.elements.begin(), opt_.elements.end(), z) != opt_.elements.end()) continue;
      std::string known;
      for (int e : opt_.elements) {
        if (!known.empty()) known += ", ";
        known += element_symbol(e);
      }
      return unsupported(atom_where(i), "atom " + std::to_string(i + 1) + " is " + element_symbol(z) +
                                            "; the model knows " + known + " only" + source);
    }
  if (opt_.max_atoms > 0 && n > opt_.max_atoms)
    return unsupported(where, std::to_string(n) + " atoms, more than the " + std::to_string(opt_.max_atoms) +
                                  " the model takes" + (source.empty() ? " (max_atoms)" : source));
  if (opt_.centre) {
    double mean[3] = {0, 0, 0};
    for (int i = 0; i < n; ++i)
      for (int d = 0; d < 3; ++d) mean[d] += m.positions[3 * std::size_t(i) + std::size_t(d)];
    for (double& c : mean) c /= n;
    for (int i = 0; i < n; ++i)
      for (int d = 0; d < 3; ++d) m.positions[3 * std::size_t(i) + std::size_t(d)] -= mean[d];
  }
  set_.molecules.push_back(std::move(m));
}

MoleculeSet MoleculeCollector::finish(long records_seen) {
  if (set_.molecules.empty()) {
    if (records_seen == 0) fail("", "no molecules");
    if (opt_.first >= records_seen)
      fail("", "no molecules from record " + std::to_string(opt_.first + 1) + " on (the file has " +
                   std::to_string(records_seen) + ")");
    if (set_.skipped > 0)
      fail("", "no molecules left: all " + std::to_string(set_.skipped) +
                   " were skipped (first: " + set_.skip_reasons.front() + ")");
    fail("", "no molecules in the requested records (count = " + std::to_string(opt_.count) + ")");
  }
  return std::move(set_);
}

void check_writable(const std::string& kind, const std::string& path, const std::vector<Molecule>& molecules) {
  for (std::size_t k = 0; k < molecules.size(); ++k) {
    const Molecule& m = molecules[k];
    const auto fail = [&](const std::string& what) {
      throw std::runtime_error(kind + " file '" + path + "': molecule " + std::to_string(k + 1) + " ('" + m.name +
                               "'): " + what);
    };
    if (m.positions.size() != 3 * m.atomic_numbers.size())
      fail(std::to_string(m.positions.size()) + " coordinates for " + std::to_string(m.atoms()) + " atoms");
    for (int i = 0; i < m.atoms(); ++i)
      if (const int z = m.atomic_numbers[std::size_t(i)]; z < 1 || z > 118)
        fail("atom " + std::to_string(i + 1) + " has no element (Z = " + std::to_string(z) + ")");
  }
}

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  if (!ext.empty()) ext.erase(0, 1);
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace detail

namespace {

using detail::MoleculeCollector;
using detail::lower_extension;
using detail::trim;

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  std::size_t at = 0;
  for (;;) {
    const auto tab = line.find('\t', at);
    out.push_back(trim(line.substr(at, tab == std::string::npos ? std::string::npos : tab - at)));
    if (tab == std::string::npos) return out;
    at = tab + 1;
  }
}

// ---- .npz: the EDM/cormorant splits ------------------------------------------------

MoleculeSet read_npz_molecules(const std::string& path, const MoleculeReadOptions& opt) {
  MoleculeCollector out("npz", path, opt);
  const NpzFile f(path);
  for (const char* member : {"num_atoms", "charges", "positions"})
    if (!f.contains(member))
      out.fail("", std::string("no member '") + member +
                       "' (a QM9 split in the EDM/cormorant layout has num_atoms, charges, positions)");
  // Only the members a molecule needs are decoded, not the ~25 property arrays.
  const NpyArray num = f.array("num_atoms", true), charges = f.array("charges", true), pos = f.array("positions");
  if (num.shape.size() != 1) out.fail("", "member 'num_atoms' is not one-dimensional");
  const long rows = long(num.shape[0]);
  if (charges.shape.size() != 2 || charges.shape[0] != rows)
    out.fail("", "member 'charges' should have shape (" + std::to_string(rows) + ", atoms)");
  const long width = long(charges.shape[1]);
  if (pos.shape != std::vector<int64_t>{rows, width, 3})
    out.fail("",
             "member 'positions' should have shape (" + std::to_string(rows) + ", " + std::to_string(width) + ", 3)");
  NpyArray index;
  if (f.contains("index")) {
    index = f.array("index", true);
    if (index.shape != std::vector<int64_t>{rows})
      out.fail("", "member 'index' should have shape (" + std::to_string(rows) + ",)");
  }
  const std::string file = std::filesystem::path(path).filename().string();
  for (long r = opt.first; r < rows && !out.past_range(r); ++r) {
    std::string where = "row " + std::to_string(r);
    if (!index.data.empty()) where += " (gdb " + std::to_string(std::int64_t(index.data[std::size_t(r)])) + ")";
    const double n = num.data[std::size_t(r)];
    if (!(n >= 0 && n <= double(width) && n == std::floor(n)))
      out.fail(where, "num_atoms = " + std::to_string(n) + ", outside 0.." + std::to_string(width));
    Molecule m;
    m.name = file + " " + where;
    const std::size_t row = std::size_t(r) * std::size_t(width);
    for (std::size_t a = 0; a < std::size_t(n); ++a) {
      const double z = charges.data[row + a];
      if (!(z >= 0 && z <= 1000 && z == std::floor(z)))
        out.fail(where, "charges[" + std::to_string(a) + "] = " + std::to_string(z) + " is no atomic number");
      m.atomic_numbers.push_back(int(z));
      for (std::size_t d = 0; d < 3; ++d) m.positions.push_back(pos.data[3 * (row + a) + d]);
    }
    out.add(std::move(m), where);
  }
  return out.finish(rows);
}

// ---- .xyz: original QM9 records and plain/extended multi-frame XYZ ------------------

// The properties on line 2 of an original QM9 record, after "gdb <id>" (units of the
// QM9 paper: GHz, D, a0^3, Ha, a0^2, Ha, cal/(mol K)).
constexpr const char* kQm9Properties[] = {"A",  "B",    "C",  "mu", "alpha", "homo", "lumo", "gap",
                                          "r2", "zpve", "U0", "U",  "H",     "G",    "Cv"};

std::string without_mathematica_exponent(std::string v) {
  if (auto p = v.find("*^"); p != std::string::npos) v = v.substr(0, p) + 'e' + v.substr(p + 2);
  return v;
}

void read_qm9_original(const XyzFrame& f, Molecule& m) {
  const auto fields = split_tabs(f.comment);
  m.name = fields[0];
  for (std::size_t k = 1; k < fields.size() && k - 1 < std::size(kQm9Properties); ++k)
    if (!fields[k].empty()) m.properties.emplace_back(kQm9Properties[k - 1], without_mathematica_exponent(fields[k]));
  // Trailer: frequencies, then SMILES and InChI, each of GDB-17 and of the B3LYP geometry.
  for (const auto& [line, prefix] : {std::pair{1, "smiles_"}, std::pair{2, "inchi_"}}) {
    const auto values = split_tabs(f.trailer[std::size_t(line)]);
    for (std::size_t j = 0; j < 2 && j < values.size(); ++j)
      if (!values[j].empty()) m.properties.emplace_back(prefix + std::string(j ? "b3lyp" : "gdb17"), values[j]);
  }
}

// An extended-XYZ comment: the name is the text before the first key=value
// token; values may be "double-quoted" with \" and \\ escapes.
struct CommentToken {
  std::size_t start;
  std::string key, value;  // key empty: not a key=value token
};

std::vector<CommentToken> tokenize_comment(const std::string& c) {
  std::vector<CommentToken> tokens;
  std::size_t i = 0;
  while (i < c.size()) {
    if (std::isspace(static_cast<unsigned char>(c[i]))) {
      ++i;
      continue;
    }
    CommentToken t{i, "", ""};
    std::string text;
    std::size_t eq = std::string::npos;
    bool quoted = false;
    for (; i < c.size() && (quoted || !std::isspace(static_cast<unsigned char>(c[i]))); ++i) {
      if (c[i] == '"') {
        quoted = !quoted;
        continue;
      }
      if (quoted && c[i] == '\\' && i + 1 < c.size()) {
        text += c[++i];
        continue;
      }
      if (!quoted && c[i] == '=' && eq == std::string::npos) eq = text.size();
      text += c[i];
    }
    if (eq != std::string::npos && eq > 0) {
      t.key = text.substr(0, eq);
      t.value = text.substr(eq + 1);
    }
    tokens.push_back(std::move(t));
  }
  return tokens;
}

void read_xyz_comment(const std::string& comment, Molecule& m, MoleculeCollector& out, const std::string& where) {
  const auto tokens = tokenize_comment(comment);
  std::size_t name_end = comment.size();
  for (const auto& t : tokens) {
    if (t.key.empty()) continue;
    name_end = std::min(name_end, t.start);
    if (t.key == "Properties") {  // ASE extxyz columns: species and positions must come first
      if (t.value.rfind("species:S:1:pos:R:3", 0) != 0)
        out.fail(where, "extended XYZ columns 'Properties=" + t.value +
                            "' are not supported (they must start with species:S:1:pos:R:3)");
      continue;
    }
    m.properties.emplace_back(t.key, t.value);
  }
  m.name = trim(comment.substr(0, name_end));
}

std::string xyz_property_value(const std::string& v) {
  const bool plain = !v.empty() && std::none_of(v.begin(), v.end(), [](char c) {
    return std::isspace(static_cast<unsigned char>(c)) || c == '"' || c == '\\';
  });
  if (plain) return v;
  std::string q = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') q += '\\';
    q += (c == '\n' || c == '\r') ? ' ' : c;
  }
  return q + '"';
}

std::string xyz_property_key(const std::string& k) {
  std::string s = k.empty() ? "_" : k;
  for (char& c : s)
    if (std::isspace(static_cast<unsigned char>(c)) || c == '=' || c == '"' || c == '\\') c = '_';
  return s;
}

int atomic_number_of_token(const std::string& sym) {
  if (!sym.empty() &&
      std::all_of(sym.begin(), sym.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return sym.size() <= 3 ? std::stoi(sym) : 0;  // some XYZ writers put Z instead of the symbol
  return atomic_number(sym);
}

// `path` names the text in messages (a file, or "<archive>:<member>").
MoleculeSet xyz_molecules_from_text(const std::string& text, const std::string& path, const MoleculeReadOptions& opt) {
  MoleculeCollector out("xyz", path, opt);
  const auto frames = parse_xyz(text, path);
  for (long r = opt.first; r < long(frames.size()) && !out.past_range(r); ++r) {
    const XyzFrame& f = frames[std::size_t(r)];
    Molecule m;
    const std::string at_line = "record " + std::to_string(r + 1) + ", line " + std::to_string(f.line);
    if (!f.trailer.empty())
      read_qm9_original(f, m);
    else
      read_xyz_comment(f.comment, m, out, at_line);
    if (m.name.empty()) m.name = detail::default_name(path, r + 1);
    const std::string where = detail::record_label(r + 1, m.name);
    bool known = true;
    for (std::size_t a = 0; a < f.symbols.size() && known; ++a) {
      const int z = atomic_number_of_token(f.symbols[a]);
      if (z < 1 || z > 118) {
        out.unsupported(where + ", line " + std::to_string(f.line + 2 + a),
                        "atom " + std::to_string(a + 1) + " is '" + f.symbols[a] + "', not an element symbol");
        known = false;
      }
      m.atomic_numbers.push_back(z);
    }
    if (!known) continue;
    m.positions = f.positions;
    out.add(std::move(m), where, f.line + 2);
  }
  return out.finish(long(frames.size()));
}

MoleculeSet read_xyz_molecules(const std::string& path, const MoleculeReadOptions& opt) {
  return xyz_molecules_from_text(read_file_bytes(path, "xyz"), path, opt);
}

XyzFrame xyz_frame(const Molecule& m) {
  XyzFrame f;
  f.comment = detail::one_line(m.name);
  for (const auto& [key, value] : m.properties)  // (appends: `" " + s` trips GCC 12's false -Wrestrict, PR 105329)
    f.comment.append(" ").append(xyz_property_key(key)).append("=").append(xyz_property_value(value));
  for (int z : m.atomic_numbers) f.symbols.push_back(element_symbol(z));
  f.positions = m.positions;
  return f;
}

void write_xyz_molecules(const std::string& path, const std::vector<Molecule>& molecules) {
  std::vector<XyzFrame> frames;
  for (const Molecule& m : molecules) frames.push_back(xyz_frame(m));
  write_xyz(path, frames);
}

}  // namespace

MoleculeSet read_molecules(const std::string& path, const MoleculeReadOptions& opt) {
  // A dataset name (qm9:test) reads the file it names.
  if (is_dataset_name(path)) {
    if (path.rfind("qm9-positional:", 0) == 0)
      throw std::runtime_error(path + ": qm9-positional holds positions only (use --system qm9_positional with it, "
                               "or qm9:train, qm9:valid, qm9:test for molecules)");
    return read_molecules(resolve_data(path).path, opt);
  }
  const std::string ext = lower_extension(path);
  const std::string kind = ext.empty() ? "molecule" : ext;
  const auto fail = [&](const std::string& what) { throw std::runtime_error(kind + " file '" + path + "': " + what); };
  if (opt.first < 0) fail("the first record must be >= 0 (got " + std::to_string(opt.first) + ")");
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail("no such file");
  if (std::filesystem::is_directory(path, ec)) fail("is a directory");
  if (ext.empty()) fail("no extension to tell the format by (.npz, .xyz, or an Open Babel format such as .sdf)");
  if (ext == "npz") return read_npz_molecules(path, opt);
  if (ext == "xyz") return read_xyz_molecules(path, opt);
  return detail::read_openbabel(path, ext, opt);
}

void check_molecule_output(const std::string& path) {
  const std::string ext = lower_extension(path);
  if (ext.empty())
    throw std::runtime_error("molecule file '" + path + "': no extension to tell the format by (.xyz, .sdf, ...)");
  if (ext == "npz")
    throw std::runtime_error("npz file '" + path + "': writing .npz is not supported (use .xyz or .sdf)");
  if (ext != "xyz") detail::check_openbabel_output(path, ext);
}

void write_molecules(const std::string& path, const std::vector<Molecule>& molecules) {
  check_molecule_output(path);
  const std::string ext = lower_extension(path);
  detail::check_writable(ext, path, molecules);
  if (ext == "xyz") return write_xyz_molecules(path, molecules);
  detail::write_openbabel(path, ext, molecules);
}

std::vector<long> node_count_histogram(const std::vector<Molecule>& molecules) {
  int largest = 0;
  for (const auto& m : molecules) largest = std::max(largest, m.atoms());
  std::vector<long> count(std::size_t(largest) + 1, 0);
  for (const auto& m : molecules) ++count[std::size_t(m.atoms())];
  return count;
}

std::string detail::xyz_record_text(const Molecule& m) { return xyz_text({xyz_frame(m)}); }

MoleculeSet parse_xyz_molecules(const std::string& text, const std::string& name, const MoleculeReadOptions& opt) {
  if (opt.first < 0)
    throw std::runtime_error("xyz file '" + name + "': the first record must be >= 0 (got " +
                             std::to_string(opt.first) + ")");
  return xyz_molecules_from_text(text, name, opt);
}

}  // namespace enf
