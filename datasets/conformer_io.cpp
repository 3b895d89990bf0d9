#include "datasets/conformer_io.hpp"

#include <openbabel/atom.h>
#include <openbabel/mol.h>
#include <openbabel/obconversion.h>
#include <openbabel/oberror.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "datasets/file_io.hpp"
#include "datasets/molecular_graph.hpp"
#include "datasets/molecule_io.hpp"
#include "datasets/molecule_io_detail.hpp"
#include "datasets/stereo.hpp"

namespace enf {

namespace {

namespace fs = std::filesystem;
using OpenBabel::OBConversion;
using OpenBabel::OBMol;

using detail::lower_extension;
using detail::trim;

// The last line of Open Babel's latest error or warning, e.g. "Invalid
// SMILES string: 1 unmatched ring bonds." ("" when it logged none).
std::string openbabel_reason() {
  std::string last;
  for (const auto level : {OpenBabel::obError, OpenBabel::obWarning})
    for (const std::string& message : OpenBabel::obErrorLog.GetMessagesOfLevel(level)) {
      std::istringstream lines(message);
      for (std::string line; std::getline(lines, line);) {
        line = trim(line);
        if (!line.empty() && line.find("===") != 0 && line.find("*** Open Babel") != 0) last = line;
      }
    }
  return last;
}

// mol with its missing hydrogens added (after its atoms) as a Molecule with
// bonds_known; fail(what) for what cannot be used.
template <class Fail>
Molecule complete(OBMol& mol, const Fail& fail) {
  const unsigned before = mol.NumAtoms();
  if (before == 0) fail("the record has no atoms");
  if (!mol.AddHydrogens()) fail("Open Babel could not add its hydrogens");
  for (unsigned i = 1; i <= before; ++i)
    if (mol.GetAtom(int(i))->GetAtomicNum() == 0)
      fail("atom " + std::to_string(i) + " has no element (a dummy or query atom)");
  Molecule m = detail::from_obmol(mol);
  if (!m.bonds_known) fail("a bond is not single, double or triple");
  // The stereo the input asks for, after AddHydrogens (whose new atoms the
  // indices must count): its @/@@, wedges, or a 3-D geometry's own.
  m.stereo = specified_tetrahedral_centres(mol);
  return m;
}

// A SMILES (and its optional title) as a Molecule; fail(what) on error.
template <class Fail>
Molecule from_smiles(const std::string& smiles, const std::string& title, const Fail& fail) {
  OBConversion conv;
  if (!conv.SetInFormat("smi")) fail("Open Babel has no SMILES reader");
  OBMol mol;
  const detail::QuietOpenBabel quiet;  // its reason is in the error below
  const bool read = conv.ReadString(&mol, smiles);
  const std::string reason = openbabel_reason();
  if (!read || mol.NumAtoms() == 0)
    fail("unparsable SMILES '" + smiles + "'" + (reason.empty() ? "" : " (Open Babel: " + reason + ")"));
  Molecule m = complete(mol, fail);
  m.name = title.empty() ? smiles : title;
  m.properties.clear();
  return m;
}

// "CCO ethanol" -> ("CCO", "ethanol").
std::pair<std::string, std::string> split_smiles_line(const std::string& line) {
  const std::string t = trim(line);
  const auto space = t.find_first_of(" \t");
  if (space == std::string::npos) return {t, ""};
  return {t.substr(0, space), trim(t.substr(space))};
}

std::vector<Molecule> read_smiles_file(const std::string& path, const std::string& ext) {
  const std::string text = read_file_bytes(path, ext);
  std::vector<Molecule> out;
  std::istringstream in(text);
  long number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    const auto [smiles, title] = split_smiles_line(t);
    out.push_back(from_smiles(smiles, title, [&](const std::string& what) {
      throw std::runtime_error(ext + " file '" + path + "': line " + std::to_string(number) + ": " + what);
    }));
  }
  if (out.empty())
    throw std::runtime_error(ext + " file '" + path + "': no molecules (expected one SMILES per line, optionally "
                                                       "followed by a title)");
  return out;
}

std::vector<Molecule> read_openbabel_file(const std::string& path, const std::string& ext) {
  const auto fail_file = [&](const std::string& what) {
    throw std::runtime_error((ext.empty() ? std::string("molecule") : ext) + " file '" + path + "': " + what);
  };
  OpenBabel::OBFormat* format = ext.empty() ? nullptr : OBConversion::FindFormat(ext);
  if (!format || (format->Flags() & NOTREADABLE))
    fail_file((ext.empty() ? std::string("no extension to tell its format") : "unknown format '." + ext + "'") +
              " (expected a file Open Babel reads, e.g. .sdf, .mol2, .pdb; a .smi file of SMILES; or a SMILES "
              "string)");
  OBConversion conv;
  if (!conv.SetInFormat(format)) fail_file("Open Babel cannot read '." + ext + "' files");
  const std::string text = read_file_bytes(path, ext);
  std::istringstream in(text);
  conv.SetInStream(&in, false);
  std::vector<Molecule> out;
  OBMol mol;
  for (long r = 1;; ++r) {
    mol.Clear();
    if (!conv.Read(&mol)) break;
    const std::string where = detail::record_label(r, trim(mol.GetTitle()));
    Molecule m = complete(mol, [&](const std::string& what) { fail_file(where + ": " + what); });
    if (trim(m.name).empty()) m.name = detail::default_name(path, r);
    out.push_back(std::move(m));
  }
  if (out.empty()) fail_file("no molecules (Open Babel read no record of format '." + ext + "')");
  return out;
}

// The shortest decimal text that reads back to v.
std::string shortest(double v) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, v);
  return std::string(buffer, result.ptr);
}

// The records of write_conformer_sdf / _xyz.
std::vector<Molecule> conformer_records(const std::string& kind, const std::string& path, const Molecule& source,
                                        const std::vector<std::vector<double>>& conformers,
                                        const std::vector<double>& log_likelihoods) {
  const auto fail = [&](const std::string& what) {
    throw std::invalid_argument(kind + " file '" + path + "': molecule '" + source.name + "': " + what);
  };
  if (conformers.empty()) fail("no conformers to write");
  if (log_likelihoods.size() != conformers.size())
    fail(std::to_string(log_likelihoods.size()) + " log-likelihoods for " + std::to_string(conformers.size()) +
         " conformers");
  const MolecularGraph g = perceive_graph(source);
  Molecule record;
  record.name = source.name;
  record.atomic_numbers = source.atomic_numbers;
  record.bonds_known = true;
  record.bonds = g.molecule_bonds();
  record.formal_charges = g.formal_charges();
  std::vector<Molecule> out;
  out.reserve(conformers.size());
  for (std::size_t k = 0; k < conformers.size(); ++k) {
    const auto& x = conformers[k];
    if (x.size() != 3 * std::size_t(source.atoms()))
      fail("conformer " + std::to_string(k + 1) + " has " + std::to_string(x.size()) + " coordinates for " +
           std::to_string(source.atoms()) + " atoms");
    for (std::size_t c = 0; c < x.size(); ++c)
      if (!(std::abs(x[c]) <= kMaxCoordinate))
        fail("conformer " + std::to_string(k + 1) + ": atom " + std::to_string(c / 3 + 1) +
             " has a non-finite or huge coordinate");
    record.positions = x;
    record.properties = {{kLogLikelihoodField, shortest(log_likelihoods[k])}};
    out.push_back(record);
  }
  return out;
}

void require_extension(const std::string& path, std::initializer_list<const char*> allowed, const char* what) {
  const std::string ext = lower_extension(path);
  for (const char* e : allowed)
    if (ext == e) return;
  throw std::invalid_argument(std::string(what) + " file '" + path + "': expected a path ending in ." +
                              *allowed.begin());
}

}  // namespace

std::vector<Molecule> read_conformer_inputs(const std::string& spec) {
  std::error_code ec;
  if (fs::is_directory(spec, ec))
    throw std::runtime_error("'" + spec + "' is a directory (expected a molecule file or a SMILES string)");
  if (fs::exists(spec, ec)) {
    const std::string ext = lower_extension(spec);
    if (ext == "smi" || ext == "smiles") return read_smiles_file(spec, ext);
    return read_openbabel_file(spec, ext);
  }
  const auto [smiles, title] = split_smiles_line(spec);
  if (smiles.empty()) throw std::runtime_error("no molecule given (expected a molecule file or a SMILES string)");
  return {from_smiles(smiles, title, [&](const std::string& what) {
    throw std::runtime_error("'" + spec + "' is no file, and as a SMILES string: " + what);
  })};
}

void write_conformer_sdf(const std::string& path, const Molecule& graph_source,
                         const std::vector<std::vector<double>>& conformers, const std::vector<double>& log_likelihoods) {
  require_extension(path, {"sdf", "sd"}, "sdf");
  write_molecules(path, conformer_records("sdf", path, graph_source, conformers, log_likelihoods));
}

void write_conformer_xyz(const std::string& path, const Molecule& graph_source,
                         const std::vector<std::vector<double>>& conformers, const std::vector<double>& log_likelihoods) {
  require_extension(path, {"xyz"}, "xyz");
  write_molecules(path, conformer_records("xyz", path, graph_source, conformers, log_likelihoods));
}

}  // namespace enf
