#include "datasets/npz.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "datasets/file_io.hpp"

namespace enf {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("npz file '" + path + "': " + what);
}

std::uint32_t u32(const std::string& b, std::size_t at) {
  return std::uint32_t(std::uint8_t(b[at])) | std::uint32_t(std::uint8_t(b[at + 1])) << 8 |
         std::uint32_t(std::uint8_t(b[at + 2])) << 16 | std::uint32_t(std::uint8_t(b[at + 3])) << 24;
}
std::uint16_t u16(const std::string& b, std::size_t at) {
  return std::uint16_t(std::uint8_t(b[at]) | std::uint8_t(b[at + 1]) << 8);
}
void put16(std::string& b, std::uint32_t v) {
  for (int k = 0; k < 2; ++k) b += char((v >> (8 * k)) & 0xff);
}
void put32(std::string& b, std::uint32_t v) {
  for (int k = 0; k < 4; ++k) b += char((v >> (8 * k)) & 0xff);
}

// Deflate cannot expand data by more than about 1032:1, so a directory entry
// claiming more than this many bytes per compressed byte is corrupt (or
// hostile): refused before anything is allocated.
constexpr std::uint64_t kMaxDeflateRatio = 1040;

// Inflates into a buffer that grows with what is really produced (at most
// `expected`), never trusting the header's size for the allocation.
std::string inflate_raw(const std::string& path, const std::string& name, const char* data, std::size_t size,
                        std::size_t expected) {
  std::string out;
  out.resize(std::min<std::size_t>(expected, std::max<std::size_t>(size * 4, 1 << 16)));
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) fail(path, "zlib initialisation failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
  zs.avail_in = uInt(size);
  int rc = Z_OK;
  char extra = 0;
  while (rc == Z_OK) {
    if (zs.total_out == out.size()) {
      if (out.size() >= expected) {
        // Full: the stream must end here; a byte more is past the declared size.
        zs.next_out = reinterpret_cast<Bytef*>(&extra);
        zs.avail_out = 1;
        rc = inflate(&zs, Z_NO_FLUSH);
        break;
      }
      out.resize(std::min<std::size_t>(expected, out.size() * 2));
    }
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + zs.total_out);
    zs.avail_out = uInt(std::min<std::size_t>(out.size() - zs.total_out, 1u << 30));
    rc = inflate(&zs, Z_NO_FLUSH);
  }
  const std::size_t produced = zs.total_out;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || produced != expected)
    fail(path, "member '" + name + "': corrupt deflate data (" + std::to_string(produced) + " of " +
                   std::to_string(expected) + " bytes decoded)");
  return out;
}

std::uint32_t crc32_of(const std::string& bytes) {
  // zlib's crc32 takes uInt lengths: feed it in chunks.
  uLong crc = crc32(0L, Z_NULL, 0);
  for (std::size_t at = 0; at < bytes.size(); at += 1u << 30) {
    const std::size_t n = std::min<std::size_t>(bytes.size() - at, 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + at), uInt(n));
  }
  return std::uint32_t(crc);
}

}  // namespace

NpzFile::NpzFile(const std::string& path) : path_(path), bytes_(read_file_bytes(path, "npz")) {
  const std::string& b = bytes_;
  // End of central directory: signature 0x06054b50 within the last 64 KiB + 22 bytes.
  if (b.size() < 22) fail(path, "too short to be a ZIP archive");
  std::size_t eocd = std::string::npos;
  for (std::size_t i = b.size() - 22 + 1; i-- > 0 && b.size() - i <= 65535 + 22;)
    if (u32(b, i) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd == std::string::npos) fail(path, "not a ZIP archive (no end-of-central-directory record)");
  const std::size_t entries = u16(b, eocd + 10);
  std::size_t at = u32(b, eocd + 16);
  if (u32(b, eocd + 16) == 0xffffffffu || entries == 0xffff) fail(path, "ZIP64 archives are not supported");
  for (std::size_t e = 0; e < entries; ++e) {
    if (at + 46 > b.size() || u32(b, at) != 0x02014b50) fail(path, "corrupt central directory");
    const std::uint16_t flags = u16(b, at + 8), method = u16(b, at + 10);
    const std::uint32_t crc = u32(b, at + 16), csize = u32(b, at + 20), usize = u32(b, at + 24);
    const std::uint16_t nlen = u16(b, at + 28), xlen = u16(b, at + 30), clen = u16(b, at + 32);
    // size_t: local + 30 must not wrap around in 32 bits (a fuzzer found that).
    const std::size_t local = u32(b, at + 42);
    if (at + 46 + nlen > b.size()) fail(path, "corrupt central directory");
    std::string name = b.substr(at + 46, nlen);
    at += 46 + nlen + xlen + clen;
    if (csize == 0xffffffffu || usize == 0xffffffffu || local == 0xffffffffu)
      fail(path, "member '" + name + "' needs ZIP64, which is not supported");
    if (local + 30 > b.size() || u32(b, local) != 0x04034b50) fail(path, "member '" + name + "': corrupt local header");
    const std::size_t data = local + 30 + u16(b, local + 26) + u16(b, local + 28);
    if (data + csize > b.size()) fail(path, "member '" + name + "': data runs past the end of the file");
    // Every claim is checked against the others and the file before any
    // member is decoded (or memory reserved for it).
    if (flags & 1) fail(path, "member '" + name + "' is encrypted, which is not supported");
    if (method == 0 && csize != usize)
      fail(path, "member '" + name + "': stored with " + std::to_string(csize) + " bytes but declares " +
                     std::to_string(usize));
    if (method == 8 && std::uint64_t(usize) > kMaxDeflateRatio * std::max<std::uint64_t>(csize, 1))
      fail(path, "member '" + name + "': declares " + std::to_string(usize) + " bytes from " + std::to_string(csize) +
                     " compressed, more than deflate can produce (corrupt directory)");
    if (method != 0 && method != 8)
      fail(path, "member '" + name + "': compression method " + std::to_string(method) + " is not supported");
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0) name.resize(name.size() - 4);
    if (members_.count(name)) fail(path, "member '" + name + "' appears twice");
    names_.push_back(name);
    members_[name] = Member{data, csize, usize, crc, method};
  }
}

std::string NpzFile::member_bytes(const std::string& name, const Member& m) const {
  std::string bytes = m.method == 0 ? bytes_.substr(m.offset, m.stored_size)
                                    : inflate_raw(path_, name, bytes_.data() + m.offset, m.stored_size, m.size);
  if (crc32_of(bytes) != m.crc32)
    fail(path_, "member '" + name + "': CRC-32 mismatch (the archive is corrupt)");
  return bytes;
}

NpyArray NpzFile::array(const std::string& name, bool allow_integers) const {
  auto it = members_.find(name);
  if (it == members_.end()) {
    std::string list;
    for (const auto& n : names_) list += (list.empty() ? "" : ", ") + n;
    fail(path_, "no member '" + name + "' (members: " + list + ")");
  }
  return parse_npy(member_bytes(name, it->second), path_ + ":" + name, allow_integers);
}

void write_npz(const std::string& path, const std::vector<std::pair<std::string, std::string>>& members) {
  // Every member gets the same fixed time stamp (1980-01-01 00:00, the first DOS
  // date), so the same arrays always give the same bytes.
  constexpr std::uint32_t kDosTime = 0, kDosDate = (1 << 5) | 1;  // year 0 (1980) << 9, month 1 << 5, day 1
  constexpr std::uint32_t kVersion = 20;  // 2.0, as numpy's zipfile writes
  constexpr std::uint64_t kLimit = 0xffffffffu;
  std::string out, directory;
  for (const auto& member : members) {
    // (not a structured binding: the lambda below captures bytes, which clang 14 refuses for bindings)
    const std::string& name = member.first;
    const std::string& bytes = member.second;
    const std::string file = name + ".npy";
    if (file.size() > 0xffff) fail(path, "member name '" + name.substr(0, 40) + "...' is too long");
    if (out.size() + 30 + file.size() + bytes.size() >= kLimit)
      fail(path, "member '" + name + "' would need ZIP64 (archive over 4 GiB), which is not supported");
    const std::uint32_t crc = crc32_of(bytes);
    const auto offset = std::uint32_t(out.size());
    const auto common = [&](std::string& b) {  // version needed .. name length, shared by both headers
      put16(b, kVersion);
      put16(b, 0);  // flags
      put16(b, 0);  // method: stored
      put16(b, kDosTime);
      put16(b, kDosDate);
      put32(b, std::uint32_t(crc));
      put32(b, std::uint32_t(bytes.size()));
      put32(b, std::uint32_t(bytes.size()));
      put16(b, std::uint32_t(file.size()));
      put16(b, 0);  // extra field length
    };
    put32(out, 0x04034b50);
    common(out);
    out += file;
    out += bytes;
    put32(directory, 0x02014b50);
    put16(directory, kVersion);  // made by (MS-DOS attributes)
    common(directory);
    put16(directory, 0);  // comment length
    put16(directory, 0);  // disk number
    put16(directory, 0);  // internal attributes
    put32(directory, 0);  // external attributes
    put32(directory, offset);
    directory += file;
  }
  if (members.size() >= 0xffff || out.size() + directory.size() >= kLimit)
    fail(path, "too many or too large members for a ZIP without ZIP64");
  const auto directory_at = std::uint32_t(out.size());
  out += directory;
  put32(out, 0x06054b50);
  put16(out, 0);  // this disk
  put16(out, 0);  // disk with the directory
  put16(out, std::uint32_t(members.size()));
  put16(out, std::uint32_t(members.size()));
  put32(out, std::uint32_t(directory.size()));
  put32(out, directory_at);
  put16(out, 0);  // comment length
  write_file_atomically(path, out, "npz");
}

}  // namespace enf
