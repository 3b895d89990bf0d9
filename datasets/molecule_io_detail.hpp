// Internals shared by the molecule readers and writers (molecule_io.cpp) and
// their Open Babel formats (openbabel_io.cpp). Not a public header: Open Babel
// itself stays out of it (OBMol is only declared; callers of the two
// converters below include <openbabel/mol.h>).
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

#include "datasets/molecule_io.hpp"

namespace OpenBabel {
class OBMol;
}

namespace enf::detail {

// While alive, Open Babel prints nothing (its log still records every
// message, cleared on entry, for the caller to read and report): for work
// whose outcome enf reports itself, e.g. perceiving bonds of a generated
// geometry or a SMILES that does not parse (the reason goes in enf's error).
class QuietOpenBabel {
 public:
  QuietOpenBabel();
  ~QuietOpenBabel();
  QuietOpenBabel(const QuietOpenBabel&) = delete;
  QuietOpenBabel& operator=(const QuietOpenBabel&) = delete;

 private:
  std::ostream* stream_;
};

// "record 7 ('gdb 7')", or "record 7" for an untitled record.
std::string record_label(long number, const std::string& title);
// The name of an untitled record: "<file name> record 7".
std::string default_name(const std::string& path, long number);
// A file name's extension, lower case, without its dot ("" for none).
std::string lower_extension(const std::string& path);
// s without leading and trailing blanks (spaces, tabs, CR, LF).
std::string trim(const std::string& s);
// The text on one line (newlines and tabs become spaces), for titles.
std::string one_line(const std::string& text);

// Collects the records of one file for read_molecules: keeps records
// [first, first + count), checks each (finite coordinates, elements H, C, N,
// O, F, at most max_atoms atoms), centres it, and with skip_unsupported skips
// and counts the unsupported ones. Messages are
// "<kind> file '<path>': <where>: <what>".
class MoleculeCollector {
 public:
  MoleculeCollector(std::string kind, std::string path, const MoleculeReadOptions& opt);

  // Whether the record with 0-based index is before / past the requested range.
  bool before_range(long index) const { return index < opt_.first; }
  bool past_range(long index) const { return opt_.count >= 0 && index >= opt_.first + opt_.count; }

  // `where` names the record ("record 7 ('gdb 7')"); when first_atom_line > 0,
  // atom i (0-based) is on line first_atom_line + i of the file.
  void add(Molecule m, const std::string& where, std::size_t first_atom_line = 0);
  // An unsupported record: an error, or, with skip_unsupported, skipped and counted.
  void unsupported(const std::string& where, const std::string& what);
  [[noreturn]] void fail(const std::string& where, const std::string& what) const;

  // The molecules kept; an error if there are none (records_seen: records in
  // the file, or read so far, for the message).
  MoleculeSet finish(long records_seen);

  const std::string& kind() const { return kind_; }
  const std::string& path() const { return path_; }

 private:
  std::string kind_, path_;
  MoleculeReadOptions opt_;
  MoleculeSet set_;
};

// Shape and element checks shared by the writers.
void check_writable(const std::string& kind, const std::string& path, const std::vector<Molecule>& molecules);

// Formats read and written through Open Babel, chosen by the lower-case
// extension ext (without the dot). SDF/MOL records are split and checked for
// truncation here before Open Babel parses them.
MoleculeSet read_openbabel(const std::string& path, const std::string& ext, const MoleculeReadOptions& opt);
void write_openbabel(const std::string& path, const std::string& ext, const std::vector<Molecule>& molecules);
// One molecule's record as the whole-file writers would write it, for
// datasets/molecule_writer, which appends records as they are made: Open
// Babel's text for '.ext' (a fresh conversion, so no header or footer shared
// with other records), and the .xyz frame of write_molecules.
std::string openbabel_record_text(const std::string& path, const std::string& ext, const Molecule& m);
std::string xyz_record_text(const Molecule& m);
// Throws unless Open Babel can write '.ext' files.
void check_openbabel_output(const std::string& path, const std::string& ext);

// The readers' and writers' conversions (openbabel_io.cpp), shared with
// datasets/molecular_graph and datasets/conformer_io. from_obmol: elements,
// coordinates, formal charges, title, data fields and the bonds (bonds_known
// false when one is not of order 1, 2 or 3). to_obmol: the molecule's bonds
// and charges when bonds_known (no implicit hydrogens), else bonds perceived
// from the geometry (ConnectTheDots + PerceiveBondOrders); atom order kept;
// stereochemistry marked perceived (none).
Molecule from_obmol(OpenBabel::OBMol& mol);
OpenBabel::OBMol to_obmol(const Molecule& m);

}  // namespace enf::detail
