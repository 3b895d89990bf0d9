#include "datasets/file_io.hpp"

#include <fcntl.h>
#include <unistd.h>

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

void check_writable(const std::string& path, const std::string& kind) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(kind, path, "is a directory; give a file name");
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
    fail(kind, path, "directory '" + parent.string() + "' does not exist");
  // Permissions, read-only mounts and ACLs are only known by trying: create
  // (and remove) a file next to the output, as the atomic write will.
  const std::filesystem::path dir = parent.empty() ? std::filesystem::path(".") : parent;
  const std::filesystem::path probe = dir / (".enf-write-test-" + std::filesystem::path(path).filename().string());
  if (std::ofstream test(probe, std::ios::binary | std::ios::app); !test)
    fail(kind, path, "directory '" + dir.string() + "' is not writable");
  std::filesystem::remove(probe, ec);
}

std::string read_file_bytes(const std::string& path, const std::string& kind) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) fail(kind, path, "no such file");
  if (std::filesystem::is_directory(status)) fail(kind, path, "is a directory, not a file");
  // A FIFO or device would block (or never end): only regular files are read.
  if (!std::filesystem::is_regular_file(status)) fail(kind, path, "is not a regular file (a pipe, socket or device)");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) fail(kind, path, "cannot open file (permission denied?)");
  const std::streamoff size = in.tellg();
  if (size < 0) fail(kind, path, "cannot determine file size");
  std::string bytes(static_cast<std::size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(bytes.data(), size)) fail(kind, path, "read error");
  return bytes;
}

void write_file_atomically(const std::string& path, const std::string& bytes, const std::string& kind) {
  check_writable(path, kind);
  const std::string tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) fail(kind, path, "cannot open '" + tmp + "' for writing");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  std::error_code ec;
  if (out) sync_file(tmp);  // the data must be on disk before the rename makes it the file
  if (out) std::filesystem::rename(tmp, path, ec);
  if (out && !ec) sync_directory(parent_directory(path));
  if (!out || ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    fail(kind, path, "cannot write '" + tmp + "' and rename it" + (ec ? ": " + ec.message() : std::string()));
  }
}

namespace {
void sync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}
}  // namespace

void sync_file(const std::string& path) { sync_path(path, O_RDONLY); }
void sync_directory(const std::string& path) { sync_path(path, O_RDONLY | O_DIRECTORY); }

std::string parent_directory(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace enf
