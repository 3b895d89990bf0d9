// Molecule formats through Open Babel: SDF/MOL (split and checked for
// truncation here, since Open Babel may silently return a partial molecule)
// and any other format Open Babel reads or writes, by extension.
#include <algorithm>
#include <openbabel/atom.h>
#include <openbabel/generic.h>
#include <openbabel/mol.h>
#include <openbabel/obconversion.h>

#include <sstream>
#include <stdexcept>
#include <string_view>

#include "datasets/file_io.hpp"
#include "datasets/molecule_io_detail.hpp"

namespace enf::detail {

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

// Elements, coordinates, title and data fields (Open Babel's own annotations,
// such as "MOL Chiral Flag", are left out).
Molecule from_obmol(OBMol& mol) {
  Molecule m;
  m.name = mol.GetTitle();
  for (unsigned i = 1; i <= mol.NumAtoms(); ++i) {
    const OpenBabel::OBAtom* a = mol.GetAtom(int(i));
    m.atomic_numbers.push_back(int(a->GetAtomicNum()));
    m.positions.insert(m.positions.end(), {a->GetX(), a->GetY(), a->GetZ()});
  }
  for (OpenBabel::OBGenericData* d : mol.GetData())
    if (d->GetDataType() == OpenBabel::OBGenericDataType::PairData && d->GetOrigin() != OpenBabel::local)
      m.properties.emplace_back(d->GetAttribute(), d->GetValue());
  return m;
}

// Geometry a model can use: not a 2-D drawing, not a format without coordinates (SMILES).
void check_geometry(const OBMol& mol, const Molecule& m, MoleculeCollector& out, const std::string& where) {
  if (mol.GetDimension() == 2) out.fail(where, "the record has 2-D coordinates (a drawing, not a geometry)");
  bool all_zero = true;
  for (double c : m.positions) all_zero = all_zero && c == 0;
  if (mol.GetDimension() == 0 && all_zero && m.atoms() > 1) out.fail(where, "the record has no coordinates");
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
    out.add(std::move(m), where, first_atom_line);
  }
  return out.finish(long(records.size()));
}

OpenBabel::OBMol to_obmol(const Molecule& m) {
  OBMol mol;
  mol.BeginModify();
  for (int i = 0; i < m.atoms(); ++i) {
    OpenBabel::OBAtom* a = mol.NewAtom();
    a->SetAtomicNum(m.atomic_numbers[std::size_t(i)]);
    a->SetVector(m.positions[3 * std::size_t(i)], m.positions[3 * std::size_t(i) + 1],
                 m.positions[3 * std::size_t(i) + 2]);
  }
  mol.EndModify();
  mol.SetDimension(3);
  // Bonds from interatomic distances and covalent radii, then orders from valences.
  mol.ConnectTheDots();
  mol.PerceiveBondOrders();
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

}  // namespace

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
    out.add(std::move(m), where);
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
