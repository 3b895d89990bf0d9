// Shared by the libFuzzer targets (tests/fuzz): the input as a file of a
// given name in a private directory, for readers that take paths. A reader
// may throw std::exception (that is its job: a clear error); anything else —
// a crash, a sanitizer report, a leak, a hang, an allocation over the RSS
// limit — is a finding.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace enf::fuzz {

inline std::filesystem::path scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("enf_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// Writes the fuzzer's bytes to <scratch>/<name> and returns the path.
inline std::string as_file(const std::string& name, const uint8_t* data, std::size_t size) {
  const std::string path = (scratch_dir() / name).string();
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), std::streamsize(size));
  return path;
}

inline std::string as_string(const uint8_t* data, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

}  // namespace enf::fuzz
