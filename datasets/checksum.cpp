#include "datasets/checksum.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace enf {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("checksum file '" + path + "': " + what);
}

// One EVP digest in progress; OpenSSL errors here mean a broken installation.
class Digest {
 public:
  explicit Digest(const EVP_MD* md) : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), md, nullptr) != 1)
      throw std::runtime_error("checksum: OpenSSL cannot initialise the digest");
  }
  void update(const void* data, std::size_t n) {
    if (EVP_DigestUpdate(ctx_.get(), data, n) != 1) throw std::runtime_error("checksum: OpenSSL digest update failed");
  }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), md, &len) != 1) throw std::runtime_error("checksum: OpenSSL digest failed");
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * len);
    for (unsigned int i = 0; i < len; ++i) {
      out += kDigits[md[i] >> 4];
      out += kDigits[md[i] & 15];
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

// Feeds the whole file to d in 1 MiB chunks; returns the number of bytes read.
std::uintmax_t digest_file(Digest& d, const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, "is a directory, not a file");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) fail(path, std::filesystem::exists(path, ec) ? "cannot open file (permission denied?)" : "no such file");
  std::vector<char> buf(1 << 20);
  std::uintmax_t total = 0;
  for (;;) {
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), f.get());
    d.update(buf.data(), n);
    total += n;
    if (n < buf.size()) break;
  }
  if (std::ferror(f.get())) fail(path, "read error");
  return total;
}

std::string blob_header(std::uintmax_t size) {
  // git hashes the header including its terminating NUL.
  const std::string h = "blob " + std::to_string(size);
  return std::string(h.c_str(), h.size() + 1);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

Checksum validated(Checksum::Kind kind, std::string hex, std::size_t digits, const char* name) {
  const bool ok = hex.size() == digits &&
                  std::all_of(hex.begin(), hex.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
  if (!ok)
    throw std::runtime_error(std::string(name) + " checksum '" + hex + "': expected " + std::to_string(digits) +
                             " hexadecimal digits");
  return Checksum{kind, lower(std::move(hex))};
}

}  // namespace

std::string sha256_bytes(std::string_view bytes) {
  Digest d(EVP_sha256());
  d.update(bytes.data(), bytes.size());
  return d.hex();
}

std::string sha256_file(const std::string& path) {
  Digest d(EVP_sha256());
  digest_file(d, path);
  return d.hex();
}

std::string git_blob_sha1_bytes(std::string_view bytes) {
  Digest d(EVP_sha1());
  const std::string header = blob_header(bytes.size());
  d.update(header.data(), header.size());
  d.update(bytes.data(), bytes.size());
  return d.hex();
}

std::string git_blob_sha1_file(const std::string& path) {
  // The header needs the size before the contents; a file that changes size
  // while it is hashed would give a digest of nothing real, so that is an error.
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) {
    if (std::filesystem::is_directory(path, ec)) fail(path, "is a directory, not a file");
    fail(path, "no such file");
  }
  Digest d(EVP_sha1());
  const std::string header = blob_header(size);
  d.update(header.data(), header.size());
  if (digest_file(d, path) != size) fail(path, "file changed size while it was read");
  return d.hex();
}

Checksum Checksum::sha256(std::string hex) { return validated(Kind::Sha256, std::move(hex), 64, "SHA-256"); }

Checksum Checksum::git_blob_sha1(std::string hex) {
  return validated(Kind::GitBlobSha1, std::move(hex), 40, "git blob SHA-1");
}

std::string Checksum::digest_of(const std::string& path) const {
  switch (kind) {
    case Kind::Sha256: return sha256_file(path);
    case Kind::GitBlobSha1: return git_blob_sha1_file(path);
    case Kind::None: break;
  }
  return {};
}

bool Checksum::matches(const std::string& path) const {
  return kind == Kind::None || digest_of(path) == lower(hex);
}

std::string Checksum::describe() const { return describe(hex); }

std::string Checksum::describe(const std::string& digest) const {
  switch (kind) {
    case Kind::Sha256: return "sha256 " + digest;
    case Kind::GitBlobSha1: return "git-blob-sha1 " + digest;
    case Kind::None: break;
  }
  return "none";
}

}  // namespace enf
