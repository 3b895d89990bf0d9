#include "datasets/molecule_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "datasets/file_io.hpp"
#include "datasets/molecule_io.hpp"
#include "datasets/molecule_io_detail.hpp"

namespace enf {

namespace {

std::string extension_of(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  if (!ext.empty()) ext.erase(0, 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext;
}

// Formats whose file is its records one after the other, with no header,
// footer or cross-record state: a prefix of records is a valid file.
bool appendable(const std::string& ext) {
  for (const char* e : {"xyz", "sdf", "sd", "mol2", "smi", "can"})
    if (ext == e) return true;
  return false;
}

}  // namespace

MoleculeWriter::MoleculeWriter(std::string path)
    : path_(std::move(path)), part_(path_ + ".part"), ext_(extension_of(path_)) {
  check_molecule_output(path_);
  check_writable(part_, ext_);
  streamed_ = appendable(ext_);
  fd_ = ::open(part_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0666);
  if (fd_ < 0) throw std::runtime_error(ext_ + " file '" + path_ + "': cannot create '" + part_ + "': " + std::strerror(errno));
}

MoleculeWriter::~MoleculeWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && (written_ == 0 || !streamed_)) {
    std::error_code ignored;
    std::filesystem::remove(part_, ignored);
  }
}

void MoleculeWriter::write(const Molecule& m) {
  if (committed_) throw std::logic_error("MoleculeWriter::write after commit");
  detail::check_writable(ext_, path_, {m});
  if (!streamed_) {
    held_.push_back(m);
    ++written_;
    return;
  }
  const std::string text = ext_ == "xyz" ? detail::xyz_record_text(m) : detail::openbabel_record_text(path_, ext_, m);
  // One write(2) per record (a regular file takes it whole); a short write
  // (disk full) is an error, after which the .part file may end mid-record.
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    const ssize_t w = ::write(fd_, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      throw std::runtime_error(ext_ + " file '" + path_ + "': cannot write '" + part_ + "': " + std::strerror(errno));
    p += w;
    left -= std::size_t(w);
  }
  ++written_;
}

void MoleculeWriter::commit() {
  if (committed_) return;
  if (!streamed_) {
    // Writes path atomically itself; the empty .part goes.
    write_molecules(path_, held_);
    ::close(fd_);
    fd_ = -1;
    std::error_code ignored;
    std::filesystem::remove(part_, ignored);
    committed_ = true;
    return;
  }
  // The data on disk before the rename makes it the file (file_io.hpp).
  const bool synced = ::fsync(fd_) == 0 || errno == EINVAL || errno == EROFS;
  ::close(fd_);
  fd_ = -1;
  std::error_code ec;
  if (synced) std::filesystem::rename(part_, path_, ec);
  if (!synced || ec)
    throw std::runtime_error(ext_ + " file '" + path_ + "': cannot sync '" + part_ + "' and rename it" +
                             (ec ? ": " + ec.message() : std::string()) + " (the molecules are in '" + part_ + "')");
  sync_directory(parent_directory(path_));
  committed_ = true;
}

}  // namespace enf
