// Reader/writer for the safetensors format (https://github.com/huggingface/safetensors):
// an 8-byte little-endian header length N, an N-byte JSON header, then the raw data region.
// Tensors are converted to double on read because the engine does all its arithmetic in
// double; F32 -> double -> F32 is exact, so a read/write round trip loses nothing.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace enf {

struct SafeTensor {
    std::string dtype;            // "F32", "F64", "I64", "I32", "F16" (as stored in the file)
    std::vector<int64_t> shape;   // empty for a scalar
    std::vector<double> data;     // row-major; I64 values beyond 2^53 are rounded
};

struct SafeTensorFile {
    std::vector<std::string> order;                 // tensor names in header order (no "__metadata__")
    std::map<std::string, SafeTensor> tensors;
    std::map<std::string, std::string> metadata;    // the "__metadata__" object, if any
};

// Throws std::runtime_error whose message names the file (and the tensor, where one is involved).
SafeTensorFile read_safetensors(const std::string& path);

// Writes the tensors contiguously in the given order, header padded with spaces so the data
// region is 8-byte aligned. Supported dtypes: F32, F64, and I32/I64 (values must be integral).
// Atomic: writes path + ".tmp" and renames it over path, so readers never see a partial file.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, SafeTensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace enf
