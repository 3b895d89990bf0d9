// Reader/writer for NumPy .npy files (format versions 1.0, 2.0 and 3.0), restricted to the
// little-endian float32/float64 arrays the datasets use. Values are converted to double.
// Integer and bool arrays (<i1 <i2 <i4 <i8, |u1 <u2 <u4 <u8, |b1; '|' or '<' for one-byte
// types) are read only on request (allow_integers), converted exactly: a value beyond
// ±2^53 is an error. Written: float32, float64 and (npy_bytes) int64.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace enf {

struct NpyArray {
    std::vector<int64_t> shape;   // empty for a 0-d array
    std::vector<double> data;     // row-major (C order), even if the file was Fortran order
    std::string dtype;            // as stored in the file: "<f4", "<f8" (or e.g. "<i8", "|u1")
};

// Throws std::runtime_error naming the file and the problem (e.g. the unsupported dtype).
NpyArray read_npy(const std::string& path, bool allow_integers = false);

// Same, from the bytes of a .npy file already in memory (e.g. a stored .npz member);
// name_for_errors is used in error messages in place of a path.
NpyArray parse_npy(const std::string& bytes, const std::string& name_for_errors, bool allow_integers = false);

// Writes C-order "<f8" (or "<f4" when float32 is true). Atomic: writes path + ".tmp" and
// renames it over path.
void write_npy(const std::string& path, const std::vector<int64_t>& shape, const std::vector<double>& data,
               bool float32 = false);

// The bytes of a .npy file (format 1.0, or 2.0 for a header past 64 KiB) in C order, as write_npy
// writes them, for callers that bundle arrays (write_npz): "<f8" (or "<f4" when float32), "<f4"
// from floats, "<i8" from integers. Errors (shape and data size disagree) name name_for_errors.
std::string npy_bytes(const std::vector<int64_t>& shape, const std::vector<double>& data, bool float32,
                      const std::string& name_for_errors);
std::string npy_bytes(const std::vector<int64_t>& shape, const std::vector<float>& data,
                      const std::string& name_for_errors);
std::string npy_bytes(const std::vector<int64_t>& shape, const std::vector<int64_t>& data,
                      const std::string& name_for_errors);

}  // namespace enf
