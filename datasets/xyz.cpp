#include "datasets/xyz.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <iomanip>
#include <sstream>
#include <stdexcept>

#include "datasets/file_io.hpp"

namespace enf {

namespace {
[[noreturn]] void fail(const std::string& path, std::size_t line, const std::string& what) {
  throw std::runtime_error("xyz file '" + path + "', line " + std::to_string(line) + ": " + what);
}

// An original QM9 record's comment: "gdb <id>" then tab-separated properties.
bool is_qm9_original_comment(const std::string& c) {
  return c.size() > 4 && c.compare(0, 4, "gdb ") == 0 && std::isdigit(static_cast<unsigned char>(c[4])) &&
         c.find('\t') != std::string::npos;
}
}  // namespace

bool parse_xyz_number(const std::string& text, double& out) {
  std::string token = text;
  // (built by concatenation: string::replace trips GCC 12's false -Wrestrict, PR 105329)
  if (auto p = token.find("*^"); p != std::string::npos) token = token.substr(0, p) + 'e' + token.substr(p + 2);
  char* end = nullptr;
  out = std::strtod(token.c_str(), &end);
  return end && *end == '\0' && !token.empty();
}

std::vector<XyzFrame> read_xyz(const std::string& path) {
  auto frames = parse_xyz(read_file_bytes(path, "xyz"), path);
  if (frames.empty()) throw std::runtime_error("xyz file '" + path + "': no frames");
  return frames;
}

std::vector<XyzFrame> parse_xyz(const std::string& text, const std::string& path) {
  std::istringstream in(text);
  std::vector<XyzFrame> frames;
  std::string line;
  std::size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines between frames
    long count = 0;
    {
      std::istringstream ls(line);
      if (!(ls >> count) || count < 1) fail(path, lineno, "expected the number of atoms, found '" + line + "'");
    }
    XyzFrame f;
    f.line = lineno;
    if (!std::getline(in, f.comment)) fail(path, lineno + 1, "expected a comment line, found the end of the file");
    ++lineno;
    if (!f.comment.empty() && f.comment.back() == '\r') f.comment.pop_back();
    for (long a = 0; a < count; ++a) {
      if (!std::getline(in, line))
        fail(path, lineno + 1, "expected " + std::to_string(count) + " atom lines, the file ends after " +
                                   std::to_string(a));
      ++lineno;
      std::istringstream ls(line);
      std::string sym, tx, ty, tz;
      double x, y, z;
      if (!(ls >> sym >> tx >> ty >> tz) || !parse_xyz_number(tx, x) || !parse_xyz_number(ty, y) ||
          !parse_xyz_number(tz, z))
        fail(path, lineno,
             "expected 'symbol x y z' (frame " + std::to_string(frames.size() + 1) + ", atom " + std::to_string(a + 1) +
                 "), found '" + line + "'");
      f.symbols.push_back(sym);
      f.positions.insert(f.positions.end(), {x, y, z});
    }
    if (is_qm9_original_comment(f.comment))
      for (const char* what : {"harmonic frequencies", "SMILES", "InChI"}) {
        if (!std::getline(in, line))
          fail(path, lineno + 1,
               std::string("expected the ") + what + " line of an original QM9 record, found the end of the file");
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        f.trailer.push_back(line);
      }
    frames.push_back(std::move(f));
  }
  return frames;
}

void write_xyz(const std::string& path, const std::vector<XyzFrame>& frames) {
  write_file_atomically(path, xyz_text(frames), "xyz");
}

std::string xyz_text(const std::vector<XyzFrame>& frames) {
  std::ostringstream os;
  os << std::setprecision(10);
  for (const auto& f : frames) {
    os << f.symbols.size() << '\n' << f.comment << '\n';
    for (std::size_t a = 0; a < f.symbols.size(); ++a)
      os << f.symbols[a] << ' ' << f.positions[3 * a] << ' ' << f.positions[3 * a + 1] << ' ' << f.positions[3 * a + 2]
         << '\n';
  }
  return os.str();
}

std::vector<double> structures_from_xyz(const std::vector<XyzFrame>& frames, int n, int dim, const std::string& path) {
  std::vector<double> x;
  for (std::size_t r = 0; r < frames.size(); ++r) {
    const auto& f = frames[r];
    if (int(f.symbols.size()) != n)
      throw std::runtime_error("xyz file '" + path + "', frame " + std::to_string(r) + ": " +
                               std::to_string(f.symbols.size()) + " atoms, the model expects " + std::to_string(n));
    for (int i = 0; i < n; ++i) {
      if (dim == 2 && f.positions[3 * i + 2] != 0)
        throw std::runtime_error("xyz file '" + path + "', frame " + std::to_string(r) + ", atom " +
                                 std::to_string(i) + ": a 2-D system needs z = 0");
      for (int d = 0; d < dim; ++d) x.push_back(f.positions[3 * i + d]);
    }
  }
  const int rows = int(frames.size());
  for (int r = 0; r < rows; ++r)
    for (int d = 0; d < dim; ++d) {
      double m = 0;
      for (int i = 0; i < n; ++i) m += x[(std::size_t(r) * n + i) * dim + d] / n;
      for (int i = 0; i < n; ++i) x[(std::size_t(r) * n + i) * dim + d] -= m;
    }
  return x;
}

std::vector<XyzFrame> frames_from_structures(const std::vector<double>& x, int rows, int n, int dim,
                                             const std::vector<std::string>& comments) {
  std::vector<XyzFrame> frames(rows);
  for (int r = 0; r < rows; ++r) {
    auto& f = frames[r];
    f.comment = r < int(comments.size()) ? comments[r] : "";
    for (int i = 0; i < n; ++i) {
      f.symbols.push_back("Ar");
      for (int d = 0; d < 3; ++d) f.positions.push_back(d < dim ? x[(std::size_t(r) * n + i) * dim + d] : 0.0);
    }
  }
  return frames;
}

}  // namespace enf
