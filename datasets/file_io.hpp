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
// flushes it to disk, renames it over path and flushes the directory, so a
// power loss leaves the old file or the new one, never an empty one; on
// failure the temporary file is removed.
void write_file_atomically(const std::string& path, const std::string& bytes, const std::string& kind);

// fsync of a file, or of a directory (after a rename in it, to make the
// rename durable). Best effort: a file system that cannot sync is not an error.
void sync_file(const std::string& path);
void sync_directory(const std::string& path);
// The directory holding path ("." for a bare file name).
std::string parent_directory(const std::string& path);

}  // namespace enf
