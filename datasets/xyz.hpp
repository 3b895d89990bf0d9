// XYZ files, single or multi-frame: per frame a count line, a comment line,
// then one "symbol x y z" line per atom. Particle systems are written with a
// placeholder element ("Ar"), 2-D structures with z = 0.
#pragma once

#include <string>
#include <vector>

namespace enf {

struct XyzFrame {
  std::string comment;
  std::vector<std::string> symbols;
  std::vector<double> positions;  // [atoms, 3]
};

// Reads every frame; errors name the file, the line and what was expected.
std::vector<XyzFrame> read_xyz(const std::string& path);

// Writes frames atomically.
void write_xyz(const std::string& path, const std::vector<XyzFrame>& frames);

// Structures [rows, n·D] of a particle system from XYZ frames (every frame
// must have n atoms; with D = 2 the z column must be 0), centre of mass removed.
std::vector<double> structures_from_xyz(const std::vector<XyzFrame>& frames, int n, int dim, const std::string& path);
std::vector<XyzFrame> frames_from_structures(const std::vector<double>& x, int rows, int n, int dim,
                                             const std::vector<std::string>& comments = {});

}  // namespace enf
