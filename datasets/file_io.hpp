// Whole-file reads and atomic writes shared by every reader and writer.
// Errors are std::runtime_error "<kind> file '<path>': <what>".
#pragma once

#include <string>

namespace enf {

std::string read_file_bytes(const std::string& path, const std::string& kind);

// Throws unless path can be written as a file: it is not a directory and its
// parent directory exists and a file can be created in it (checked before
// long work, so errors come first).
void check_writable(const std::string& path, const std::string& kind);

// Readers must never see a half-written file: writes a sibling "<path>.tmp",
// then renames it over path; on failure the temporary file is removed.
void write_file_atomically(const std::string& path, const std::string& bytes, const std::string& kind);

}  // namespace enf
