// File digests used to verify downloads: SHA-256, and git's blob id (the
// SHA-1 that `git hash-object` prints), which upstream repositories give for
// files we could not download ourselves. Digests are lower-case hex. Files are
// streamed in chunks, so datasets of hundreds of MB need no memory.
// Errors are std::runtime_error "checksum file '<path>': <what>".
#pragma once

#include <string>
#include <string_view>

namespace enf {

std::string sha256_file(const std::string& path);
std::string sha256_bytes(std::string_view bytes);

// SHA-1 of "blob <size>\0" followed by the contents.
std::string git_blob_sha1_file(const std::string& path);
std::string git_blob_sha1_bytes(std::string_view bytes);

struct Checksum {
  enum class Kind { None, Sha256, GitBlobSha1 };
  Kind kind = Kind::None;
  std::string hex;  // expected digest; compared case-insensitively

  // Validated constructors: throw unless hex has the digest's length (64 / 40).
  static Checksum sha256(std::string hex);
  static Checksum git_blob_sha1(std::string hex);

  // The digest of path of this kind (lower-case hex); "" for Kind::None.
  std::string digest_of(const std::string& path) const;
  // True for Kind::None; otherwise whether digest_of(path) equals hex.
  bool matches(const std::string& path) const;
  // "sha256 <hex>", "git-blob-sha1 <hex>" or "none"; `digest` replaces hex.
  std::string describe() const;
  std::string describe(const std::string& digest) const;
};

}  // namespace enf
