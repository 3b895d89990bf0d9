// NumPy .npz archives: a ZIP of .npy members, stored or deflate-compressed
// (np.savez / np.savez_compressed), read with zlib. Members are decoded on
// request, so an archive may hold arrays of types read_npy refuses.
// write_npz writes the stored (np.savez) kind.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "datasets/npy.hpp"

namespace enf {

class NpzFile {
 public:
  // Reads the archive's directory and every member's bytes; errors name the
  // file and the member.
  explicit NpzFile(const std::string& path);
  // Member names without their ".npy" suffix, in archive order.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return members_.count(name) != 0; }
  // The member decoded as read_npy would (std::runtime_error if absent);
  // integer and bool members only with allow_integers (see npy.hpp).
  NpyArray array(const std::string& name, bool allow_integers = false) const;

 private:
  std::string path_;
  std::vector<std::string> names_;
  std::map<std::string, std::string> members_;  // name → raw .npy bytes
};

// Writes an uncompressed .npz (as np.savez): each member is (name without
// ".npy", the bytes of a .npy file, e.g. from npy_bytes), in the order given.
// No ZIP64, so the archive must stay below 4 GiB. Atomic, as write_file_atomically.
void write_npz(const std::string& path, const std::vector<std::pair<std::string, std::string>>& members);

}  // namespace enf
