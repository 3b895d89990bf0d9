#include "datasets/npy.hpp"

#include "datasets/file_io.hpp"

#include <bit>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <stdexcept>
#include <type_traits>

namespace enf {
namespace {

// Array bytes are memcpy'd straight into host floats; only '<' (little-endian) data is accepted.
static_assert(std::endian::native == std::endian::little,
              "npy reader assumes a little-endian host");

[[noreturn]] void fail(const std::string& name, const std::string& what) {
    throw std::runtime_error("npy file '" + name + "': " + what);
}

// The header is a Python dict literal. numpy writes only str, bool and tuple-of-int values,
// so a tiny parser for exactly those is enough (and safer than anything more general).
struct HeaderValue {
    enum class Kind { String, Bool, Tuple } kind = Kind::String;
    std::string text;
    bool flag = false;
    std::vector<int64_t> tuple;
};

class HeaderParser {
public:
    HeaderParser(const std::string& text, const std::string& name) : s_(text), name_(name) {}

    std::map<std::string, HeaderValue> parse_dict() {
        std::map<std::string, HeaderValue> dict;
        expect('{');
        while (!eat('}')) {
            const std::string key = parse_string();
            expect(':');
            dict[key] = parse_value();
            if (!eat(',')) {
                expect('}');
                break;
            }
        }
        skip_ws();  // numpy pads the header with spaces and a final '\n'
        if (pos_ != s_.size()) error("unexpected text after the header dict");
        return dict;
    }

private:
    [[noreturn]] void error(const std::string& what) const {
        // The header without numpy's padding, so the message stays one line.
        const std::size_t end = s_.find_last_not_of(" \t\r\n");
        fail(name_, "malformed header (" + what + " at offset " + std::to_string(pos_) +
                        "): " + (end == std::string::npos ? std::string() : s_.substr(0, end + 1)));
    }
    void skip_ws() {
        while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    }
    bool eat(char c) {
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!eat(c)) error(std::string("expected '") + c + "'");
    }
    bool eat_word(const char* word) {
        skip_ws();
        const std::size_t n = std::strlen(word);
        if (s_.compare(pos_, n, word) != 0) return false;
        pos_ += n;
        return true;
    }
    std::string parse_string() {
        skip_ws();
        if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) error("expected a string");
        const char quote = s_[pos_++];
        std::string out;
        while (pos_ < s_.size() && s_[pos_] != quote) {
            if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
            out += s_[pos_++];
        }
        if (pos_ >= s_.size()) error("unterminated string");
        ++pos_;
        return out;
    }
    int64_t parse_int() {
        skip_ws();
        if (pos_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[pos_]))) error("expected an integer");
        int64_t v = 0;
        while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
            const int digit = s_[pos_++] - '0';
            if (v > (std::numeric_limits<int64_t>::max() - digit) / 10) error("integer too large");
            v = v * 10 + digit;
        }
        if (pos_ < s_.size() && s_[pos_] == 'L') ++pos_;  // Python 2 long suffix in old files
        return v;
    }
    HeaderValue parse_value() {
        HeaderValue v;
        skip_ws();
        if (pos_ < s_.size() && (s_[pos_] == '\'' || s_[pos_] == '"')) {
            v.text = parse_string();
        } else if (eat_word("True")) {
            v.kind = HeaderValue::Kind::Bool;
            v.flag = true;
        } else if (eat_word("False")) {
            v.kind = HeaderValue::Kind::Bool;
        } else if (eat('(')) {
            v.kind = HeaderValue::Kind::Tuple;
            while (!eat(')')) {
                v.tuple.push_back(parse_int());
                if (!eat(',')) {
                    expect(')');
                    break;
                }
            }
        } else {
            error("unsupported value (only str, bool and tuple of int)");
        }
        return v;
    }

    const std::string& s_;
    const std::string& name_;
    std::size_t pos_ = 0;
};

const HeaderValue& require(const std::map<std::string, HeaderValue>& dict, const char* key, HeaderValue::Kind kind,
                           const std::string& name) {
    const auto it = dict.find(key);
    if (it == dict.end()) fail(name, std::string("header has no '") + key + "' entry");
    if (it->second.kind != kind) fail(name, std::string("header entry '") + key + "' has the wrong type");
    return it->second;
}

uint32_t read_le(const std::string& bytes, std::size_t at, int width) {
    uint32_t v = 0;
    for (int k = width - 1; k >= 0; --k) v = (v << 8) | static_cast<unsigned char>(bytes[at + k]);
    return v;
}

// Fortran order is column-major: walk the C-order multi-index (last axis fastest) while
// tracking the matching column-major offset.
std::vector<double> fortran_to_c(const std::vector<double>& f, const std::vector<int64_t>& shape) {
    const std::size_t nd = shape.size();
    std::vector<std::size_t> stride(nd), idx(nd, 0);
    std::size_t s = 1;
    for (std::size_t j = 0; j < nd; ++j) {
        stride[j] = s;
        s *= static_cast<std::size_t>(shape[j]);
    }
    std::vector<double> c(f.size());
    std::size_t off = 0;
    for (std::size_t k = 0; k < c.size(); ++k) {
        c[k] = f[off];
        for (std::size_t j = nd; j-- > 0;) {
            if (++idx[j] < static_cast<std::size_t>(shape[j])) {
                off += stride[j];
                break;
            }
            off -= (static_cast<std::size_t>(shape[j]) - 1) * stride[j];
            idx[j] = 0;
        }
    }
    return c;
}

template <class T>
void decode(const char* src, std::size_t n, std::vector<double>& out) {
    out.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        T v;
        std::memcpy(&v, src + i * sizeof(T), sizeof(T));
        out[i] = static_cast<double>(v);
    }
}

// Integers become doubles exactly up to 2^53; anything larger would be rounded silently.
template <class T>
void decode_integers(const char* src, std::size_t n, std::vector<double>& out, const std::string& name) {
    constexpr std::uint64_t kExact = std::uint64_t(1) << 53;
    out.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        T v;
        std::memcpy(&v, src + i * sizeof(T), sizeof(T));
        std::uint64_t magnitude;
        if constexpr (std::is_signed_v<T>)
            magnitude = v < 0 ? std::uint64_t(0) - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
        else
            magnitude = static_cast<std::uint64_t>(v);
        if (magnitude > kExact)
            fail(name, "element " + std::to_string(i) + " = " + std::to_string(v) +
                           " is beyond 2^53 and has no exact double");
        out[i] = static_cast<double>(v);
    }
}

// The integer and bool dtypes read with allow_integers: element size, or 0 if not one of them.
std::size_t integer_size(const std::string& dtype) {
    static const std::map<std::string, std::size_t> sizes = {
        {"|i1", 1}, {"<i1", 1}, {"<i2", 2}, {"<i4", 4}, {"<i8", 8}, {"|u1", 1}, {"<u1", 1},
        {"<u2", 2}, {"<u4", 4}, {"<u8", 8}, {"|b1", 1}, {"<b1", 1}};
    const auto it = sizes.find(dtype);
    return it == sizes.end() ? 0 : it->second;
}

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string t = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) t += (i ? ", " : "") + std::to_string(shape[i]);
    return t + (shape.size() == 1 ? ",)" : ")");  // Python needs "(n,)" for a 1-tuple
}

}  // namespace

NpyArray parse_npy(const std::string& bytes, const std::string& name, bool allow_integers) {
    static const char magic[] = "\x93NUMPY";
    if (bytes.size() < 10) fail(name, "file too short (" + std::to_string(bytes.size()) + " bytes)");
    if (bytes.compare(0, 6, magic, 6) != 0) fail(name, "not a .npy file (bad magic string)");
    const int major = static_cast<unsigned char>(bytes[6]);
    const int minor = static_cast<unsigned char>(bytes[7]);
    // 1.0 has a 2-byte header length; 2.0 widened it to 4 bytes; 3.0 only allows UTF-8 in the
    // header, which does not matter for the ASCII keys we read.
    const int len_width = major == 1 ? 2 : (major == 2 || major == 3) ? 4 : 0;
    if (len_width == 0)
        fail(name, "unsupported format version " + std::to_string(major) + "." + std::to_string(minor));
    const std::size_t header_start = 8 + static_cast<std::size_t>(len_width);
    if (bytes.size() < header_start) fail(name, "file too short for the header length field");
    const std::size_t header_len = read_le(bytes, 8, len_width);
    if (header_len > bytes.size() - header_start)
        fail(name, "header length " + std::to_string(header_len) + " exceeds file size " +
                       std::to_string(bytes.size()));

    const std::string header = bytes.substr(header_start, header_len);
    const auto dict = HeaderParser(header, name).parse_dict();
    NpyArray a;
    a.dtype = require(dict, "descr", HeaderValue::Kind::String, name).text;
    const bool fortran = require(dict, "fortran_order", HeaderValue::Kind::Bool, name).flag;
    a.shape = require(dict, "shape", HeaderValue::Kind::Tuple, name).tuple;
    std::size_t esize = 0;
    const std::size_t int_size = allow_integers ? integer_size(a.dtype) : 0;
    if (a.dtype == "<f4") esize = 4;
    else if (a.dtype == "<f8") esize = 8;
    else if (int_size) esize = int_size;
    else if (!allow_integers && integer_size(a.dtype))
        fail(name, "unsupported dtype '" + a.dtype + "' (only little-endian float32 '<f4' and float64 '<f8'; "
                   "this reader does not take integer arrays)");
    else fail(name, "unsupported dtype '" + a.dtype + "' (only little-endian float32 '<f4' and float64 '<f8'" +
                        (allow_integers ? ", integers and bool" : "") + ")");

    const std::size_t available = bytes.size() - header_start - header_len;
    // Stop multiplying once the count exceeds what the file holds, so a hostile shape cannot
    // wrap around and then appear to match the data size.
    std::size_t numel = 1;
    bool too_big = false;
    for (int64_t d : a.shape) {
        const auto dim = static_cast<std::size_t>(d);
        if (dim == 0) {
            numel = 0;
            too_big = false;
            break;
        }
        if (numel > available / esize / dim) too_big = true;
        else numel *= dim;
    }
    if (too_big || numel * esize != available) {
        // The size the shape needs, exactly unless it exceeds 2^64.
        long double need = static_cast<long double>(esize);
        for (int64_t d : a.shape) need *= static_cast<long double>(d);
        const std::string need_text = need < 1.8e19L ? std::to_string(static_cast<unsigned long long>(need))
                                                     : "about " + std::to_string(static_cast<double>(need));
        fail(name, "data size mismatch: shape " + shape_text(a.shape) + " of " + a.dtype + " needs " + need_text +
                       " bytes, file has " + std::to_string(available));
    }

    const char* src = bytes.data() + header_start + header_len;
    if (!int_size) {
        if (esize == 4) decode<float>(src, numel, a.data);
        else decode<double>(src, numel, a.data);
    } else {
        const char kind = a.dtype[1];
        if (kind == 'b') {
            a.data.resize(numel);
            for (std::size_t i = 0; i < numel; ++i) a.data[i] = src[i] != 0 ? 1.0 : 0.0;
        } else if (kind == 'i') {
            if (esize == 1) decode_integers<std::int8_t>(src, numel, a.data, name);
            else if (esize == 2) decode_integers<std::int16_t>(src, numel, a.data, name);
            else if (esize == 4) decode_integers<std::int32_t>(src, numel, a.data, name);
            else decode_integers<std::int64_t>(src, numel, a.data, name);
        } else {
            if (esize == 1) decode_integers<std::uint8_t>(src, numel, a.data, name);
            else if (esize == 2) decode_integers<std::uint16_t>(src, numel, a.data, name);
            else if (esize == 4) decode_integers<std::uint32_t>(src, numel, a.data, name);
            else decode_integers<std::uint64_t>(src, numel, a.data, name);
        }
    }
    if (fortran && a.shape.size() > 1) a.data = fortran_to_c(a.data, a.shape);
    return a;
}

NpyArray read_npy(const std::string& path, bool allow_integers) {
    return parse_npy(read_file_bytes(path, "npy"), path, allow_integers);
}

namespace {

// Checks that shape holds `size` elements; the header and padding of a C-order array of `descr`.
std::string npy_preamble(const std::vector<int64_t>& shape, std::size_t size, const char* descr,
                         const std::string& name) {
    std::size_t numel = 1;
    for (int64_t d : shape) {
        if (d < 0) fail(name, "negative dimension in shape " + shape_text(shape));
        if (d != 0 && numel > std::numeric_limits<std::size_t>::max() / static_cast<std::size_t>(d))
            fail(name, "shape " + shape_text(shape) + " is too large");
        numel *= static_cast<std::size_t>(d);
    }
    if (numel != size)
        fail(name, "shape " + shape_text(shape) + " has " + std::to_string(numel) + " elements but data has " +
                       std::to_string(size));

    std::string header = std::string("{'descr': '") + descr +
                         "', 'fortran_order': False, 'shape': " + shape_text(shape) + ", }";
    // numpy pads (spaces, then '\n') so the data starts on a 64-byte boundary; version 2.0 only
    // when the padded header does not fit the 16-bit length field of version 1.0.
    const auto padding = [&](std::size_t preamble) { return (64 - (preamble + header.size() + 1) % 64) % 64; };
    const bool v2 = header.size() + padding(10) + 1 > 65535;
    const std::size_t preamble = v2 ? 12 : 10;
    header.append(padding(preamble), ' ');
    header += '\n';
    std::string pre = "\x93NUMPY";
    pre += static_cast<char>(v2 ? 2 : 1);
    pre += '\0';
    for (std::size_t k = 0; k < preamble - 8; ++k) pre += static_cast<char>((header.size() >> (8 * k)) & 0xff);
    return pre + header;
}

template <class T>
std::string npy_with_data(const std::vector<int64_t>& shape, const std::vector<T>& data, const char* descr,
                          const std::string& name) {
    std::string out = npy_preamble(shape, data.size(), descr, name);
    const std::size_t at = out.size();
    out.resize(at + data.size() * sizeof(T));
    if (!data.empty()) std::memcpy(out.data() + at, data.data(), data.size() * sizeof(T));
    return out;
}

}  // namespace

std::string npy_bytes(const std::vector<int64_t>& shape, const std::vector<double>& data, bool float32,
                      const std::string& name) {
    if (!float32) return npy_with_data(shape, data, "<f8", name);
    std::string out = npy_preamble(shape, data.size(), "<f4", name);
    for (double v : data) {
        const auto f = static_cast<float>(v);
        char buf[4];
        std::memcpy(buf, &f, 4);
        out.append(buf, 4);
    }
    return out;
}

std::string npy_bytes(const std::vector<int64_t>& shape, const std::vector<float>& data, const std::string& name) {
    return npy_with_data(shape, data, "<f4", name);
}

std::string npy_bytes(const std::vector<int64_t>& shape, const std::vector<int64_t>& data, const std::string& name) {
    return npy_with_data(shape, data, "<i8", name);
}

void write_npy(const std::string& path, const std::vector<int64_t>& shape, const std::vector<double>& data,
               bool float32) {
    write_file_atomically(path, npy_bytes(shape, data, float32, path), "npy");
}

}  // namespace enf
