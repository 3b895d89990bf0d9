// NumPy .npz archives: a ZIP of .npy members, stored or deflate-compressed
// (np.savez / np.savez_compressed), read with zlib. Members are decoded on
// request, so an archive may hold arrays of types read_npy refuses, and a
// member that is not asked for costs nothing. The directory's claims are
// checked against each other and the file before anything is decoded
// (encrypted members, stored sizes that disagree, declared sizes deflate
// cannot produce, duplicate names are errors), a member's buffer grows with
// what inflates rather than with what the header declares, and every member's
// CRC-32 is verified.
// write_npz writes the stored (np.savez) kind.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "datasets/npy.hpp"

namespace enf {

class NpzFile {
 public:
  // Reads the archive and checks its directory; errors name the file and the member.
  explicit NpzFile(const std::string& path);
  // Member names without their ".npy" suffix, in archive order.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return members_.count(name) != 0; }
  // The member decoded as read_npy would (std::runtime_error if absent);
  // integer and bool members only with allow_integers (see npy.hpp).
  NpyArray array(const std::string& name, bool allow_integers = false) const;

 private:
  struct Member {
    std::size_t offset = 0;        // of the (stored or deflated) data in bytes_
    std::uint32_t stored_size = 0, size = 0, crc32 = 0;
    std::uint16_t method = 0;      // 0 stored, 8 deflate
  };
  std::string member_bytes(const std::string& name, const Member& m) const;  // decoded, CRC checked

  std::string path_;
  std::string bytes_;  // the whole file
  std::vector<std::string> names_;
  std::map<std::string, Member> members_;
};

// Writes an uncompressed .npz (as np.savez): each member is (name without
// ".npy", the bytes of a .npy file, e.g. from npy_bytes), in the order given.
// No ZIP64, so the archive must stay below 4 GiB. Atomic, as write_file_atomically.
void write_npz(const std::string& path, const std::vector<std::pair<std::string, std::string>>& members);

}  // namespace enf
