// Molecules written one at a time as they are made (enf sample), so that an
// interrupted run keeps every finished molecule. Records are appended to
// "<path>.part" in the same directory, each with a single write(2), so the
// .part file holds whole records only, at every instant; commit() syncs it
// to disk and renames it to path (atomic, as write_file_atomically).
//
// Streamed record by record: .xyz (write_molecules' frames) and the Open
// Babel formats whose records are independent: .sdf/.sd (the molecule's own
// bonds when it has them, e.g. from annotate_molecule, else Open Babel's
// perception), .mol2, .smi/.can. Every other format (.svg, a grid of
// pictures in one document; .mol, whose "$$$$" separators depend on which
// record is last; .cml, .pdb, ... with a header or footer)
// is kept in memory and written by commit() with write_molecules: its .part
// file stays empty until then, and an exit before commit() loses it.
//
// An uncommitted writer (an error, or an exit before commit) leaves the
// .part file in place when it holds records (the finished work, valid as it
// stands; rename it to use it) and removes it when it holds none.
#pragma once

#include <string>
#include <vector>

#include "datasets/molecule.hpp"

namespace enf {

class MoleculeWriter {
 public:
  // Throws (as write_molecules) when path's format cannot be written or its
  // directory is not writable; creates (truncates) "<path>.part".
  explicit MoleculeWriter(std::string path);
  ~MoleculeWriter();
  MoleculeWriter(const MoleculeWriter&) = delete;
  MoleculeWriter& operator=(const MoleculeWriter&) = delete;

  void write(const Molecule& m);
  // The .part file synced, renamed to path and the directory synced; then
  // the writer is closed (no more writes).
  void commit();

  // Whether records reach the .part file as they are written (else at commit).
  bool streamed() const { return streamed_; }
  long written() const { return written_; }
  const std::string& path() const { return path_; }
  const std::string& part_path() const { return part_; }

 private:
  std::string path_, part_, ext_;
  bool streamed_ = false, committed_ = false;
  int fd_ = -1;
  long written_ = 0;
  std::vector<Molecule> held_;  // formats written at commit()
};

}  // namespace enf
