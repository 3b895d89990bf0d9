// XYZ files, single or multi-frame: per frame a count line, a comment line,
// then one "symbol x y z" line per atom. Particle systems are written with a
// placeholder element ("Ar"), 2-D structures with z = 0.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace enf {

struct XyzFrame {
  std::string comment;
  std::vector<std::string> symbols;
  std::vector<double> positions;  // [atoms, 3]
  std::size_t line = 0;           // line of the atom-count line (1-based), when read
  // Original QM9 records (dsgdb9nsd_*.xyz, comment "gdb <id>\t<properties>")
  // end with three more lines: harmonic frequencies, SMILES, InChI.
  std::vector<std::string> trailer;
};

// Reads every frame; errors name the file, the line and what was expected.
// Columns after x y z (charges, forces, ...) are ignored.
std::vector<XyzFrame> read_xyz(const std::string& path);
// Same, from the text of a file; an empty list when it holds no frames.
std::vector<XyzFrame> parse_xyz(const std::string& text, const std::string& path);

// strtod over a whole token that also reads the original QM9 files'
// Mathematica exponent "*^" ("1.5*^-5" = 1.5e-5); false if not a number.
bool parse_xyz_number(const std::string& token, double& out);

// Writes frames atomically.
void write_xyz(const std::string& path, const std::vector<XyzFrame>& frames);
// The text write_xyz writes (for writers that append frame by frame).
std::string xyz_text(const std::vector<XyzFrame>& frames);

// Structures [rows, n·D] of a particle system from XYZ frames (every frame
// must have n atoms; with D = 2 the z column must be 0), centre of mass removed.
std::vector<double> structures_from_xyz(const std::vector<XyzFrame>& frames, int n, int dim, const std::string& path);
std::vector<XyzFrame> frames_from_structures(const std::vector<double>& x, int rows, int n, int dim,
                                             const std::vector<std::string>& comments = {});

}  // namespace enf
