#include "engine/safetensors.hpp"

#include "datasets/file_io.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace enf {
namespace {

// Tensor bytes are memcpy'd straight into host integers/floats.
static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host would need byte swapping");

using ojson = nlohmann::ordered_json;  // keeps header key order, which callers rely on

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw std::runtime_error("safetensors file '" + path + "': " + what);
}

[[noreturn]] void fail_tensor(const std::string& path, const std::string& name, const std::string& what) {
    fail(path, "tensor '" + name + "': " + what);
}

// 0 means "unknown dtype"; the caller turns that into an error naming the tensor.
std::size_t dtype_size(const std::string& dtype) {
    if (dtype == "F64" || dtype == "I64") return 8;
    if (dtype == "F32" || dtype == "I32") return 4;
    if (dtype == "F16") return 2;
    return 0;
}

// IEEE binary16 -> double; written out by hand because C++20 has no portable half type.
double half_to_double(uint16_t h) {
    const int exponent = (h >> 10) & 0x1f;
    const int mantissa = h & 0x3ff;
    double magnitude;
    if (exponent == 0) magnitude = std::ldexp(mantissa, -24);  // zero / subnormal
    else if (exponent == 31) magnitude = mantissa ? std::numeric_limits<double>::quiet_NaN()
                                                  : std::numeric_limits<double>::infinity();
    else magnitude = std::ldexp(mantissa + 1024, exponent - 25);
    return (h & 0x8000) ? -magnitude : magnitude;
}

// Element count, or kOverflow when count * element_size does not fit in 64 bits: a hostile
// shape must not wrap around and then appear to match the offsets.
constexpr uint64_t kOverflow = std::numeric_limits<uint64_t>::max();
uint64_t checked_numel(const std::vector<int64_t>& shape, std::size_t element_size) {
    for (int64_t d : shape)
        if (d == 0) return 0;  // empty whatever the other dimensions are
    uint64_t numel = 1;
    for (int64_t d : shape) {
        const auto dim = static_cast<uint64_t>(d);
        if (numel > kOverflow / element_size / dim) return kOverflow;
        numel *= dim;
    }
    return numel;
}

template <class T>
void decode(const char* src, std::size_t n, std::vector<double>& out) {
    out.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        T v;
        std::memcpy(&v, src + i * sizeof(T), sizeof(T));
        if constexpr (std::is_same_v<T, uint16_t>) out[i] = half_to_double(v);
        else out[i] = static_cast<double>(v);
    }
}

// JSON integers that must be >= 0: nlohmann parses those as number_unsigned, negatives and
// fractions as other types, so the type check alone rejects both.
uint64_t non_negative(const ojson& v, const std::string& path, const std::string& name, const char* field) {
    if (!v.is_number_unsigned())
        fail_tensor(path, name, std::string(field) + " must hold non-negative integers, got " + v.dump());
    return v.get<uint64_t>();
}

SafeTensor parse_tensor(const ojson& entry, const std::string& path, const std::string& name,
                        const char* data, uint64_t data_size) {
    if (!entry.is_object()) fail_tensor(path, name, "header entry is not an object");
    for (const char* key : {"dtype", "shape", "data_offsets"})
        if (!entry.contains(key)) fail_tensor(path, name, std::string("missing key '") + key + "'");
    const ojson& jdtype = entry["dtype"];
    const ojson& jshape = entry["shape"];
    const ojson& joffsets = entry["data_offsets"];
    if (!jdtype.is_string()) fail_tensor(path, name, "dtype is not a string");
    if (!jshape.is_array()) fail_tensor(path, name, "shape is not an array");
    if (!joffsets.is_array() || joffsets.size() != 2)
        fail_tensor(path, name, "data_offsets must be [begin, end], got " + joffsets.dump());

    SafeTensor t;
    t.dtype = jdtype.get<std::string>();
    const std::size_t esize = dtype_size(t.dtype);
    if (esize == 0) fail_tensor(path, name, "unsupported dtype '" + t.dtype + "'");

    for (const ojson& d : jshape) {
        const uint64_t dim = non_negative(d, path, name, "shape");
        if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
            fail_tensor(path, name, "shape " + jshape.dump() + " is too large");
        t.shape.push_back(static_cast<int64_t>(dim));
    }
    const uint64_t numel = checked_numel(t.shape, esize);
    if (numel == kOverflow) fail_tensor(path, name, "shape " + jshape.dump() + " is too large");

    const uint64_t begin = non_negative(joffsets[0], path, name, "data_offsets");
    const uint64_t end = non_negative(joffsets[1], path, name, "data_offsets");
    if (begin > end || end > data_size)
        fail_tensor(path, name, "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                                    "] out of range (data region is " + std::to_string(data_size) + " bytes)");
    if (end - begin != numel * esize)
        fail_tensor(path, name, "shape " + jshape.dump() + " x " + t.dtype + " needs " +
                                    std::to_string(numel * esize) + " bytes but data_offsets span " +
                                    std::to_string(end - begin));

    const char* src = data + begin;
    const auto n = static_cast<std::size_t>(numel);
    if (t.dtype == "F32") decode<float>(src, n, t.data);
    else if (t.dtype == "F64") decode<double>(src, n, t.data);
    else if (t.dtype == "I64") decode<int64_t>(src, n, t.data);
    else if (t.dtype == "I32") decode<int32_t>(src, n, t.data);
    else decode<uint16_t>(src, n, t.data);  // F16
    return t;
}

template <class T>
void encode(T v, std::string& out) {
    char buf[sizeof(T)];
    std::memcpy(buf, &v, sizeof(T));
    out.append(buf, sizeof(T));
}

// Integers are stored as doubles in memory, so refuse anything that would not survive the cast.
template <class T>
T checked_int(double v, const std::string& path, const std::string& name) {
    const double lo = static_cast<double>(std::numeric_limits<T>::min());
    const double hi_exclusive = -lo;  // 2^31 or 2^63, exactly representable
    if (!(v >= lo && v < hi_exclusive) || v != std::trunc(v))
        fail_tensor(path, name, "value " + std::to_string(v) + " is not representable as an integer dtype");
    return static_cast<T>(v);
}

}  // namespace

SafeTensorFile read_safetensors(const std::string& path) {
    const std::string bytes = read_file_bytes(path, "safetensors");
    if (bytes.size() < 8)
        fail(path, "file too short (" + std::to_string(bytes.size()) + " bytes, need at least 8)");
    uint64_t header_len;
    std::memcpy(&header_len, bytes.data(), 8);
    if (header_len > bytes.size() - 8)
        fail(path, "header length " + std::to_string(header_len) + " exceeds file size " +
                       std::to_string(bytes.size()));

    // A key given twice would silently keep one of the two tensors: refused,
    // at every depth, while parsing.
    std::vector<std::vector<std::string>> keys_at_depth;
    std::string duplicate;
    const auto no_duplicate_keys = [&](int depth, nlohmann::json::parse_event_t event, ojson& parsed) {
        using E = nlohmann::json::parse_event_t;
        if (event == E::object_start) keys_at_depth.resize(std::size_t(depth) + 2), keys_at_depth[depth + 1].clear();
        if (event == E::key && duplicate.empty()) {
            auto& seen = keys_at_depth[std::size_t(depth)];
            const std::string k = parsed.get<std::string>();
            if (std::find(seen.begin(), seen.end(), k) != seen.end()) duplicate = k;
            seen.push_back(k);
        }
        return true;
    };
    ojson header;
    try {
        header = ojson::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_len),
                              no_duplicate_keys);
    } catch (const nlohmann::json::exception& e) {
        fail(path, std::string("bad JSON header: ") + e.what());
    }
    if (!duplicate.empty()) fail(path, "the JSON header names '" + duplicate + "' twice");
    if (!header.is_object()) fail(path, "JSON header is not an object");

    const char* data = bytes.data() + 8 + header_len;
    const uint64_t data_size = bytes.size() - 8 - header_len;
    SafeTensorFile file;
    std::vector<std::pair<uint64_t, std::string>> begins;  // to check that tensors do not overlap
    for (const auto& [name, entry] : header.items()) {
        if (name == "__metadata__") {
            if (!entry.is_object()) fail(path, "__metadata__ is not an object");
            // The spec says string -> string; anything else is kept as its JSON text rather than
            // rejecting an otherwise valid model file.
            for (const auto& [k, v] : entry.items())
                file.metadata[k] = v.is_string() ? v.get<std::string>() : v.dump();
            continue;
        }
        file.tensors.emplace(name, parse_tensor(entry, path, name, data, data_size));
        file.order.push_back(name);
        begins.emplace_back(entry["data_offsets"][0].get<uint64_t>(), name);
    }
    // Tensors that share bytes would load one set of numbers twice: refused, as
    // the reference implementation does (holes between tensors are allowed).
    std::sort(begins.begin(), begins.end());
    for (std::size_t k = 1; k < begins.size(); ++k) {
        const std::string& prev = begins[k - 1].second;
        const uint64_t prev_end = header[prev]["data_offsets"][1].get<uint64_t>();
        if (begins[k].first < prev_end)
            fail(path, "tensors '" + prev + "' and '" + begins[k].second + "' overlap in the data region");
    }
    return file;
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, SafeTensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    ojson header = ojson::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;  // first, as the reference writer does
    std::string blob;
    for (const auto& [name, t] : tensors) {
        if (name == "__metadata__") fail_tensor(path, name, "reserved name");
        if (header.contains(name)) fail_tensor(path, name, "duplicate tensor name");
        for (int64_t d : t.shape)
            if (d < 0) fail_tensor(path, name, "negative dimension in shape");
        const uint64_t numel = checked_numel(t.shape, 8);
        if (numel != t.data.size())
            fail_tensor(path, name, "shape has " + std::to_string(numel) + " elements but data has " +
                                        std::to_string(t.data.size()));
        const uint64_t begin = blob.size();
        if (t.dtype == "F32") for (double v : t.data) encode(static_cast<float>(v), blob);
        else if (t.dtype == "F64") for (double v : t.data) encode(v, blob);
        else if (t.dtype == "I64") for (double v : t.data) encode(checked_int<int64_t>(v, path, name), blob);
        else if (t.dtype == "I32") for (double v : t.data) encode(checked_int<int32_t>(v, path, name), blob);
        else fail_tensor(path, name, "cannot write dtype '" + t.dtype + "' (supported: F32, F64, I32, I64)");
        const uint64_t end = blob.size();
        header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", ojson::array({begin, end})}};
    }

    std::string text = header.dump();
    // Pad with spaces (valid trailing JSON whitespace) so the data region is 8-byte aligned,
    // which lets mmap-based readers view F64/I64 tensors in place.
    text.append((8 - text.size() % 8) % 8, ' ');
    const uint64_t header_len = text.size();

    char len_bytes[8];
    std::memcpy(len_bytes, &header_len, 8);
    write_file_atomically(path, std::string(len_bytes, 8) + text + blob, "safetensors");
}

}  // namespace enf
