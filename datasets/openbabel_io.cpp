// Molecule formats through Open Babel: SDF/MOL (split and checked for
// truncation here, since Open Babel may silently return a partial molecule)
// and any other format Open Babel reads or writes, by extension.
#include <algorithm>
#include <openbabel/atom.h>
#include <openbabel/bond.h>
#include <openbabel/generic.h>
#include <openbabel/mol.h>
#include <openbabel/obconversion.h>
#include <openbabel/oberror.h>

#include <array>
#include <cmath>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "datasets/file_io.hpp"
#include "datasets/molecule_io_detail.hpp"

namespace enf::detail {

QuietOpenBabel::QuietOpenBabel() : stream_(OpenBabel::obErrorLog.GetOutputStream()) {
  // A stream without a buffer swallows what is written to it.
  static std::ostream sink(nullptr);
  OpenBabel::obErrorLog.SetOutputStream(&sink);
  OpenBabel::obErrorLog.ClearLog();
}

QuietOpenBabel::~QuietOpenBabel() { OpenBabel::obErrorLog.SetOutputStream(stream_); }

namespace {

using OpenBabel::OBConversion;
using OpenBabel::OBFormat;
using OpenBabel::OBMol;

// Whether format is Open Babel's MDL reader/writer (it is registered as
// "sdf"/"sd" and, as a separate instance, "mol"/"mdl").
bool is_mdl(OBFormat* format) {
  return format == OBConversion::FindFormat("sdf") || format == OBConversion::FindFormat("mol");
}

std::string_view rstrip(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string trimmed(std::string_view s) {
  s = rstrip(s);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return std::string(s);
}

bool blank(std::string_view s) { return rstrip(s).empty(); }

// Lines of a file with the offset each starts at (lines keep no '\n').
struct Lines {
  std::vector<std::string_view> text;
  std::vector<std::size_t> offset;
  explicit Lines(const std::string& s) {
    std::size_t at = 0;
    while (at < s.size()) {
      const auto nl = s.find('\n', at);
      const std::size_t end = nl == std::string::npos ? s.size() : nl;
      text.emplace_back(s.data() + at, end - at);
      offset.push_back(at);
      at = end + 1;
    }
  }
};

// One SDF record: lines [begin, end), closed when its last line is "$$$$".
struct MdlRecord {
  std::size_t begin, end;
  bool closed;
};

std::vector<MdlRecord> split_mdl(const Lines& lines) {
  std::vector<MdlRecord> records;
  std::size_t begin = 0;
  const std::size_t n = lines.text.size();
  for (std::size_t i = 0; i < n; ++i)
    if (rstrip(lines.text[i]) == "$$$$") {
      records.push_back({begin, i + 1, true});
      begin = i + 1;
    }
  for (std::size_t i = begin; i < n; ++i)
    if (!blank(lines.text[i])) {
      records.push_back({begin, n, false});
      break;
    }
  return records;
}

bool parse_count(std::string_view field, long& out) {
  const std::string t = trimmed(field);
  if (t.empty() || t.find_first_not_of("0123456789") != std::string::npos) return false;
  out = std::stol(t);
  return true;
}

// Checks that a V2000/V3000 record is complete, which Open Babel does not;
// returns the atom count of its counts line (-1 when not known) and sets
// first_atom_line (1-based, 0 when not known).
long check_mdl_record(const Lines& lines, const MdlRecord& rec, bool need_terminator, MoleculeCollector& out,
                      const std::string& where, std::size_t& first_atom_line) {
  const auto& L = lines.text;
  const auto at = [&](std::size_t i) { return where + ", line " + std::to_string(i + 1); };
  const std::size_t last = rec.closed ? rec.end - 1 : rec.end;  // lines before "$$$$"
  first_atom_line = 0;
  if (last < rec.begin + 4)
    out.fail(at(rec.end - 1), "truncated: the record ends before its counts line (line 4 of the record)");
  const std::string_view counts = L[rec.begin + 3];
  long atoms = -1;
  std::size_t body = rec.begin + 4;  // first line after the counts line
  if (counts.find("V3000") != std::string_view::npos) {
    bool end_ctab = false, end = false, in_atoms = false, continued = false;
    long atom_entries = 0;
    std::size_t counts_line = body;
    for (std::size_t i = body; i < last && !end; ++i) {
      const std::string_view l = rstrip(L[i]);
      if (l.substr(0, 13) == "M  V30 COUNTS") {
        std::istringstream ls{std::string(l.substr(13))};
        if (!(ls >> atoms)) out.fail(at(i), "malformed V3000 counts line '" + std::string(l) + "'");
        counts_line = i;
      }
      // Atom entries (a line ending in '-' continues on the next): the counts
      // line must agree with them before Open Babel sizes anything by it.
      if (l == "M  V30 BEGIN ATOM") in_atoms = true;
      else if (l == "M  V30 END ATOM") {
        in_atoms = false;
        if (atom_entries != atoms)
          out.fail(at(counts_line), "the V3000 counts line announces " + std::to_string(atoms) +
                                        " atoms, the atom block holds " + std::to_string(atom_entries));
      } else if (in_atoms && !continued) ++atom_entries;
      continued = !l.empty() && l.back() == '-';
      if (l == "M  V30 END CTAB") end_ctab = true;
      if (l.substr(0, 6) == "M  END") {
        if (!end_ctab || atoms < 0)
          out.fail(at(i), "malformed V3000 record: 'M  END' before the counts and 'END CTAB'");
        end = true;
      }
    }
    if (!end) out.fail(at(rec.end - 1), "truncated: the V3000 record has no 'M  END' line");
  } else {
    long bonds = 0;
    if (counts.size() < 6 || !parse_count(counts.substr(0, 3), atoms) || !parse_count(counts.substr(3, 3), bonds))
      out.fail(at(rec.begin + 3), "malformed counts line '" + std::string(rstrip(counts)) + "'");
    const std::string announced =
        "the counts line announces " + std::to_string(atoms) + " atoms and " + std::to_string(bonds) + " bonds";
    for (long i = 0; i < atoms + bonds; ++i) {
      const std::size_t li = body + std::size_t(i);
      const bool atom = i < atoms;
      const long k = atom ? i : i - atoms;
      if (li >= last)
        out.fail(at(rec.end - 1), "truncated: " + announced + ", but the record ends after " + std::to_string(k) +
                                      " of its " + std::to_string(atom ? atoms : bonds) + (atom ? " atom" : " bond") +
                                      " lines");
      // V2000 is fixed-width: an atom line holds x, y, z (10 columns each), a space
      // and the symbol; a bond line at least the two atoms and the order (3 columns each).
      if (rstrip(L[li]).size() < (atom ? 32u : 9u))
        out.fail(at(li), std::string("truncated: ") + (atom ? "atom" : "bond") + " line " + std::to_string(k + 1) +
                             " is cut short: '" + std::string(rstrip(L[li])) + "'");
    }
    std::size_t i = body + std::size_t(atoms + bonds);
    while (i < last && rstrip(L[i]).substr(0, 6) != "M  END") ++i;
    if (i >= last) out.fail(at(rec.end - 1), "truncated: " + announced + ", but the record has no 'M  END' line");
    first_atom_line = body + 1;
  }
  if (need_terminator && !rec.closed) out.fail(at(rec.end - 1), "truncated: the last record does not end with '$$$$'");
  return atoms;
}

}  // namespace

// Elements, coordinates, bonds, formal charges, title and data fields (Open
// Babel's own annotations, such as "MOL Chiral Flag", are left out). Bonds
// are the file's own (or those Open Babel perceived for a format without
// any, e.g. PDB without CONECT); unknown when one is not single, double or triple.
Molecule from_obmol(OpenBabel::OBMol& mol) {
  Molecule m;
  m.name = mol.GetTitle();
  for (unsigned i = 1; i <= mol.NumAtoms(); ++i) {
    const OpenBabel::OBAtom* a = mol.GetAtom(int(i));
    m.atomic_numbers.push_back(int(a->GetAtomicNum()));
    m.positions.insert(m.positions.end(), {a->GetX(), a->GetY(), a->GetZ()});
    m.formal_charges.push_back(a->GetFormalCharge());
  }
  m.bonds_known = true;
  for (unsigned k = 0; k < mol.NumBonds(); ++k) {
    const OpenBabel::OBBond* b = mol.GetBond(int(k));
    const int i = int(b->GetBeginAtomIdx()) - 1, j = int(b->GetEndAtomIdx()) - 1, order = int(b->GetBondOrder());
    if (order < 1 || order > 3 || i == j) {
      m.bonds_known = false;
      m.bonds.clear();
      break;
    }
    m.bonds.push_back({std::min(i, j), std::max(i, j), order});
  }
  std::sort(m.bonds.begin(), m.bonds.end(),
            [](const Bond& a, const Bond& b) { return a.i != b.i ? a.i < b.i : a.j < b.j; });
  for (OpenBabel::OBGenericData* d : mol.GetData())
    if (d->GetDataType() == OpenBabel::OBGenericDataType::PairData && d->GetOrigin() != OpenBabel::local)
      m.properties.emplace_back(d->GetAttribute(), d->GetValue());
  return m;
}

namespace {

// Largest distance (Å) of an atom from the plane through three of them: the
// first, the one farthest from it, and the one farthest from their line (0
// when all atoms lie on a line, or there are at most 3). A molecule that is
// flat to 1e-3 Å is flat in every plane choice up to that scale.
double distance_from_plane(const Molecule& m) {
  const int n = m.atoms();
  if (n <= 3) return 0;
  const auto at = [&](int a) { return &m.positions[3 * std::size_t(a)]; };
  const auto sub = [](const double* p, const double* q) { return std::array<double, 3>{p[0] - q[0], p[1] - q[1], p[2] - q[2]}; };
  const auto cross = [](const std::array<double, 3>& u, const std::array<double, 3>& v) {
    return std::array<double, 3>{u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]};
  };
  const auto norm = [](const std::array<double, 3>& u) { return std::sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]); };
  int far = 0, wide = 0;
  for (int a = 1; a < n; ++a)
    if (norm(sub(at(a), at(0))) > norm(sub(at(far), at(0)))) far = a;
  const auto axis = sub(at(far), at(0));
  std::array<double, 3> normal{0, 0, 0};
  for (int a = 1; a < n; ++a) {
    const auto c = cross(axis, sub(at(a), at(0)));
    if (norm(c) > norm(normal)) normal = c, wide = a;
  }
  const double len = norm(normal);
  if (wide == 0 || len < 1e-9 * std::max(1.0, norm(axis) * norm(axis))) return 0;  // a line
  double most = 0;
  for (int a = 0; a < n; ++a) {
    const auto d = sub(at(a), at(0));
    most = std::max(most, std::abs(d[0] * normal[0] + d[1] * normal[1] + d[2] * normal[2]) / len);
  }
  return most;
}

// Geometry a model can use: not a 2-D drawing, not a format without
// coordinates (SMILES). Open Babel calls a record 2-D when an MDL header says
// so, or says nothing and every z is 0; a drawing in a file that claims 3-D
// (an SDF header "3D", MOL2, PDB) is caught by its shape: flat as a sheet yet
// with an atom of 4 or more bonded neighbours, which no real geometry of H,
// C, N, O, F has (a tetrahedral centre is never coplanar with its
// neighbours). Genuinely planar molecules (benzene, formaldehyde, at most 3
// neighbours per atom) pass, in any orientation.
void check_geometry(const OBMol& mol, const Molecule& m, MoleculeCollector& out, const std::string& where) {
  if (mol.GetDimension() == 2) out.fail(where, "the record has 2-D coordinates (a drawing, not a geometry)");
  bool all_zero = true;
  for (double c : m.positions) all_zero = all_zero && c == 0;
  if (mol.GetDimension() == 0 && all_zero && m.atoms() > 1) out.fail(where, "the record has no coordinates");
  if (distance_from_plane(m) > 1e-3) return;
  std::vector<int> degree(std::size_t(m.atoms()), 0);
  for (const Bond& b : m.bonds) ++degree[std::size_t(b.i)], ++degree[std::size_t(b.j)];
  for (int a = 0; a < m.atoms(); ++a)
    if (degree[std::size_t(a)] >= 4)
      out.fail(where, "the record is flat (all atoms in one plane) but atom " + std::to_string(a + 1) + " (" +
                          element_symbol(m.atomic_numbers[std::size_t(a)]) + ") has " +
                          std::to_string(degree[std::size_t(a)]) +
                          " bonded neighbours: a 2-D drawing, not a geometry (make 3-D coordinates, e.g. obabel "
                          "--gen3d)");
}

// Chemistry the QM9 model knows: every hydrogen an atom with coordinates, and
// neutral molecules. False (the record skipped, with skip_unsupported) or an
// error otherwise. Implicit hydrogens are what Open Babel infers for an atom
// short of its valence in a format with bonds (a heavy-atom-only SDF/MOL2, a
// PDB without hydrogens); they are refused rather than added, since hydrogen
// positions Open Babel guesses are not a geometry the model should score.
// Formal charges are refused when they do not sum to zero (an ion: the
// model's integer feature is the atomic number, and QM9 holds neutral
// molecules); a neutral molecule written charge-separated, as a nitro group
// [N+](=O)[O-] (the form enf itself writes), is kept: the model sees the same
// atoms.
bool check_chemistry(const OBMol& mol, MoleculeCollector& out, const std::string& where) {
  // An element the model does not know is the first thing to say (add does).
  for (unsigned i = 1; i <= mol.NumAtoms(); ++i)
    if (qm9_type_index(int(mol.GetAtom(int(i))->GetAtomicNum())) < 0) return true;
  int net = 0;
  for (unsigned i = 1; i <= mol.NumAtoms(); ++i) net += mol.GetAtom(int(i))->GetFormalCharge();
  for (unsigned i = 1; i <= mol.NumAtoms(); ++i) {
    const OpenBabel::OBAtom* a = mol.GetAtom(int(i));
    const std::string atom = "atom " + std::to_string(i) + " (" + element_symbol(int(a->GetAtomicNum())) + ")";
    if (const int h = int(a->GetImplicitHCount()); h > 0) {
      out.unsupported(where, atom + " has " + std::to_string(h) + " implicit hydrogen" + (h > 1 ? "s" : "") +
                                 "; enf needs every hydrogen as an atom with coordinates (add them with "
                                 "'obabel -h', better with a geometry optimisation)");
      return false;
    }
    if (const int c = a->GetFormalCharge(); c != 0 && net != 0) {
      const auto sign = [](int v) {
        std::string t = std::to_string(v);
        if (v > 0) t.insert(t.begin(), '+');
        return t;
      };
      out.unsupported(where, atom + " has formal charge " + sign(c) + " and the record's charges sum to " +
                                 sign(net) + "; the QM9 model knows neutral molecules only");
      return false;
    }
  }
  return true;
}

MoleculeSet read_mdl(const std::string& path, const std::string& ext, const std::string& text, OBConversion& conv,
                     MoleculeCollector& out) {
  const Lines lines(text);
  const auto records = split_mdl(lines);
  const bool need_terminator = ext != "mol" && ext != "mdl";  // single-record files may omit "$$$$"
  OBMol mol;
  for (long r = 0; r < long(records.size()) && !out.past_range(r); ++r) {
    if (out.before_range(r)) continue;
    const MdlRecord& rec = records[std::size_t(r)];
    const std::string title = trimmed(lines.text[rec.begin]);
    const std::string where = record_label(r + 1, title);
    std::size_t first_atom_line = 0;
    const long atoms = check_mdl_record(lines, rec, need_terminator, out, where, first_atom_line);
    const std::size_t from = lines.offset[rec.begin];
    const std::size_t to = rec.end < lines.offset.size() ? lines.offset[rec.end] : text.size();
    mol.Clear();
    if (!conv.ReadString(&mol, text.substr(from, to - from)))
      out.fail(where + ", line " + std::to_string(rec.begin + 1), "Open Babel could not read the record");
    if (atoms >= 0 && long(mol.NumAtoms()) != atoms)
      out.fail(where + ", line " + std::to_string(rec.begin + 1), "Open Babel read " + std::to_string(mol.NumAtoms()) +
                                                                      " atoms, the counts line announces " +
                                                                      std::to_string(atoms));
    Molecule m = from_obmol(mol);
    if (m.name.empty()) m.name = title.empty() ? default_name(path, r + 1) : title;
    check_geometry(mol, m, out, where);
    if (check_chemistry(mol, out, where)) out.add(std::move(m), where, first_atom_line);
  }
  return out.finish(long(records.size()));
}

}  // namespace

OpenBabel::OBMol to_obmol(const Molecule& m) {
  OBMol mol;
  mol.BeginModify();
  for (int i = 0; i < m.atoms(); ++i) {
    OpenBabel::OBAtom* a = mol.NewAtom();
    a->SetAtomicNum(m.atomic_numbers[std::size_t(i)]);
    a->SetVector(m.positions[3 * std::size_t(i)], m.positions[3 * std::size_t(i) + 1],
                 m.positions[3 * std::size_t(i) + 2]);
    if (m.bonds_known) {
      // Every hydrogen is an atom: none implicit, so Open Babel's MDL writer
      // marks an atom short of its valence (a sampled C with 3 bonds) with
      // the valence field instead of a reader adding hydrogens to it.
      a->SetImplicitHCount(0);
      if (std::size_t(i) < m.formal_charges.size()) a->SetFormalCharge(m.formal_charges[std::size_t(i)]);
    }
  }
  if (m.bonds_known)
    for (const Bond& b : m.bonds) {
      if (b.i < 0 || b.j < 0 || b.i >= m.atoms() || b.j >= m.atoms() || b.i == b.j || b.order < 1 || b.order > 3)
        throw std::invalid_argument("molecule '" + m.name + "': bond " + std::to_string(b.i + 1) + "-" +
                                    std::to_string(b.j + 1) + " of order " + std::to_string(b.order) +
                                    " is not a bond of its atoms");
      mol.AddBond(b.i + 1, b.j + 1, b.order);
    }
  mol.EndModify();
  mol.SetDimension(3);
  if (!m.bonds_known) {
    // Bonds from interatomic distances and covalent radii, then orders from valences.
    mol.ConnectTheDots();
    mol.PerceiveBondOrders();
  }
  // No stereochemistry: the writers would otherwise perceive it from the
  // coordinates and, for a sampled geometry, print "TetStereoToWedgeHash"
  // errors on stderr. What the record says is its bonds, not its stereo.
  mol.SetChiralityPerceived();
  mol.SetTitle(one_line(m.name).c_str());
  for (const auto& [key, value] : m.properties) {
    auto* d = new OpenBabel::OBPairData;  // owned by mol from SetData on
    d->SetAttribute(one_line(key));
    d->SetValue(value);
    d->SetOrigin(OpenBabel::userInput);
    mol.SetData(d);
  }
  return mol;
}

MoleculeSet read_openbabel(const std::string& path, const std::string& ext, const MoleculeReadOptions& opt) {
  MoleculeCollector out(ext, path, opt);
  OBFormat* format = OBConversion::FindFormat(ext);
  if (!format)
    out.fail("", "unknown format '." + ext +
                     "' (enf reads .npz, .xyz and the formats Open Babel reads, e.g. .sdf, "
                     ".mol, .mol2, .pdb)");
  if (format->Flags() & NOTREADABLE) out.fail("", "Open Babel cannot read '." + ext + "' files");
  OBConversion conv;
  if (!conv.SetInFormat(format)) out.fail("", "Open Babel cannot read '." + ext + "' files");
  const std::string text = read_file_bytes(path, ext);
  if (is_mdl(format)) return read_mdl(path, ext, text, conv, out);

  // Other formats: record by record, trusting Open Babel to find the boundaries.
  std::istringstream in(text);
  conv.SetInStream(&in, false);
  OBMol mol;
  long r = 0;
  for (; !out.past_range(r); ++r) {
    mol.Clear();
    if (!conv.Read(&mol)) break;
    if (out.before_range(r)) continue;
    Molecule m = from_obmol(mol);
    if (m.name.empty()) m.name = default_name(path, r + 1);
    const std::string where = record_label(r + 1, mol.GetTitle());
    check_geometry(mol, m, out, where);
    if (check_chemistry(mol, out, where)) out.add(std::move(m), where);
  }
  return out.finish(r);
}

OBFormat* openbabel_output_format(const std::string& path, const std::string& ext) {
  const auto fail = [&](const std::string& what) { throw std::runtime_error(ext + " file '" + path + "': " + what); };
  // Open Babel 3.1's PNG writer (the cairo depiction) crashes in Debian 12's
  // build when called through the library; its SVG depiction works.
  if (ext == "png") fail("enf draws molecules as .svg (Open Babel's PNG writer is not usable here)");
  OBFormat* format = OBConversion::FindFormat(ext);
  if (!format || (format->Flags() & NOTWRITABLE))
    fail("Open Babel has no writer for '." + ext + "' (enf writes .xyz and the formats Open Babel writes, e.g. .sdf)");
  return format;
}

void check_openbabel_output(const std::string& path, const std::string& ext) { openbabel_output_format(path, ext); }

std::string openbabel_record_text(const std::string& path, const std::string& ext, const Molecule& m) {
  OBConversion conv;
  if (!conv.SetOutFormat(openbabel_output_format(path, ext)))
    throw std::runtime_error(ext + " file '" + path + "': Open Babel cannot write '." + ext + "' files");
  OBMol mol = to_obmol(m);
  conv.SetLast(true);
  std::ostringstream os;
  if (!conv.Write(&mol, &os))
    throw std::runtime_error(ext + " file '" + path + "': molecule '" + m.name + "': Open Babel could not write it");
  return os.str();
}

void write_openbabel(const std::string& path, const std::string& ext, const std::vector<Molecule>& molecules) {
  const auto fail = [&](const std::string& what) { throw std::runtime_error(ext + " file '" + path + "': " + what); };
  OBFormat* format = openbabel_output_format(path, ext);
  OBConversion conv;
  if (!conv.SetOutFormat(format)) fail("Open Babel cannot write '." + ext + "' files");
  std::ostringstream os;
  if (ext == "svg" && molecules.size() > 1) {
    // Open Babel's writer makes one complete SVG document per molecule when
    // called per molecule; a picture of several is a grid of them nested in
    // one document (4 per row, 200 px each).
    const int cols = int(std::min<std::size_t>(4, molecules.size()));
    const int rows = int((molecules.size() + cols - 1) / cols);
    os << "<?xml version=\"1.0\"?>\n<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" "
          "xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\""
       << 200 * cols << "px\" height=\"" << 200 * rows << "px\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    for (std::size_t k = 0; k < molecules.size(); ++k) {
      OBMol mol = to_obmol(molecules[k]);
      std::ostringstream one;
      conv.SetLast(true);
      if (!conv.Write(&mol, &one))
        fail("molecule " + std::to_string(k + 1) + " ('" + molecules[k].name + "'): Open Babel could not write it");
      std::string svg = one.str();
      if (svg.rfind("<?xml", 0) == 0) svg.erase(0, svg.find('\n') + 1);
      const std::string top = "<svg version=\"1.1\" id=\"topsvg\"";
      const auto at = svg.find(top);
      if (at == std::string::npos) fail("unexpected SVG from Open Babel");
      svg.replace(at, top.size(), "<svg version=\"1.1\"");
      os << "<g transform=\"translate(" << 200 * (int(k) % cols) << "," << 200 * (int(k) / cols) << ")\">\n"
         << svg << "</g>\n";
    }
    os << "</svg>\n";
    write_file_atomically(path, os.str(), ext);
    return;
  }
  for (std::size_t k = 0; k < molecules.size(); ++k) {
    OBMol mol = to_obmol(molecules[k]);
    conv.SetLast(k + 1 == molecules.size());  // formats with a footer (CML, PDB's END) close it here
    if (!conv.Write(&mol, &os))
      fail("molecule " + std::to_string(k + 1) + " ('" + molecules[k].name + "'): Open Babel could not write it");
  }
  write_file_atomically(path, os.str(), ext);
}

}  // namespace enf::detail
