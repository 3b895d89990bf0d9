#include "datasets/file_io.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>

namespace enf {

namespace {
[[noreturn]] void fail(const std::string& kind, const std::string& path, const std::string& what) {
  throw std::runtime_error(kind + " file '" + path + "': " + what);
}
}  // namespace

std::string read_file_bytes(const std::string& path, const std::string& kind) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) fail(kind, path, "cannot open file");
  const std::streamoff size = in.tellg();
  if (size < 0) fail(kind, path, "cannot determine file size");
  std::string bytes(static_cast<std::size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(bytes.data(), size)) fail(kind, path, "read error");
  return bytes;
}

void write_file_atomically(const std::string& path, const std::string& bytes, const std::string& kind) {
  const std::string tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) fail(kind, path, "cannot open '" + tmp + "' for writing");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  std::error_code ec;
  if (out) std::filesystem::rename(tmp, path, ec);
  if (!out || ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    fail(kind, path, "cannot write '" + tmp + "' and rename it" + (ec ? ": " + ec.message() : std::string()));
  }
}

}  // namespace enf
