// NumPy .npy files (format versions 1.0, 2.0 and 3.0), C order, little-endian
// '<f8' '<f4' '<f2' '<i8' '<i4' '<i2' '|i1' '|u1' '|b1'. Anything else
// (Fortran order, big-endian, object or structured dtypes, truncated or
// trailing data, malformed headers) is a ctseg::error naming the file.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ctseg/error.hpp"
#include "ctseg/interop/atomic_file.hpp"
#include "ctseg/interop/tensor.hpp"

namespace ctseg::interop {

// NumPy's descr for a dtype ("<f4", "|u1", ...); bf16 has none (empty).
constexpr std::string_view npy_descr(dtype t) noexcept {
    switch (t) {
        case dtype::f64: return "<f8";
        case dtype::f32: return "<f4";
        case dtype::f16: return "<f2";
        case dtype::i64: return "<i8";
        case dtype::i32: return "<i4";
        case dtype::i16: return "<i2";
        case dtype::i8: return "|i1";
        case dtype::u8: return "|u1";
        case dtype::boolean: return "|b1";
        case dtype::bf16: return "";
    }
    return "";
}

namespace detail::npy {

inline constexpr char magic[] = "\x93NUMPY";
inline constexpr std::size_t magic_size = 6;

struct header {
    std::string descr;
    bool fortran_order = false;
    std::vector<std::int64_t> shape;
};

// A parser for the Python dict literal NumPy writes, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 30, 40), }
class header_parser {
public:
    header_parser(std::string_view text, const std::string& file) : s_(text), file_(file) {}

    header parse() {
        header h;
        bool seen_descr = false, seen_order = false, seen_shape = false;
        skip_ws();
        expect('{');
        for (;;) {
            skip_ws();
            if (peek() == '}') {
                ++i_;
                break;
            }
            const std::string key = parse_string("a key");
            skip_ws();
            expect(':');
            skip_ws();
            if (key == "descr") {
                if (peek() != '\'' && peek() != '"')
                    fail("'descr' is not a string (structured dtypes are not supported)");
                h.descr = parse_string("the 'descr' value");
                seen_descr = true;
            } else if (key == "fortran_order") {
                h.fortran_order = parse_bool();
                seen_order = true;
            } else if (key == "shape") {
                h.shape = parse_shape();
                seen_shape = true;
            } else {
                fail(std::string("unexpected key '") + key + "'");
            }
            skip_ws();
            if (peek() == ',') {
                ++i_;
            } else if (peek() != '}') {
                fail_at("expected ',' or '}'");
            }
        }
        skip_ws();
        if (i_ != s_.size()) fail_at("unexpected text after the dictionary");
        if (!seen_descr) fail("missing key 'descr'");
        if (!seen_order) fail("missing key 'fortran_order'");
        if (!seen_shape) fail("missing key 'shape'");
        return h;
    }

private:
    char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }

    void skip_ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }

    void expect(char c) {
        if (peek() != c) fail_at(std::string("expected '") + c + "'");
        ++i_;
    }

    std::string parse_string(const char* what) {
        const char q = peek();
        if (q != '\'' && q != '"') fail_at(std::string("expected ") + what + " in quotes");
        ++i_;
        const auto end = s_.find(q, i_);
        if (end == std::string_view::npos) fail("unterminated string");
        std::string r(s_.substr(i_, end - i_));
        if (r.find('\\') != std::string::npos) fail("escape sequences are not supported");
        i_ = end + 1;
        return r;
    }

    bool parse_bool() {
        if (s_.substr(i_, 4) == "True") {
            i_ += 4;
            return true;
        }
        if (s_.substr(i_, 5) == "False") {
            i_ += 5;
            return false;
        }
        fail_at("'fortran_order' is not True or False");
    }

    std::vector<std::int64_t> parse_shape() {
        std::vector<std::int64_t> shape;
        if (peek() != '(' && peek() != '[') fail_at("'shape' is not a tuple");
        const char close = peek() == '(' ? ')' : ']';
        ++i_;
        for (;;) {
            skip_ws();
            if (peek() == close) {
                ++i_;
                return shape;
            }
            if (peek() == '-') fail("'shape' has a negative dimension");
            if (peek() < '0' || peek() > '9') fail_at("'shape' holds something other than integers");
            std::int64_t v = 0;
            while (peek() >= '0' && peek() <= '9') {
                const int digit = peek() - '0';
                if (v > (std::numeric_limits<std::int64_t>::max() - digit) / 10)
                    fail("'shape' has a dimension too large");
                v = v * 10 + digit;
                ++i_;
            }
            if (peek() == 'L') ++i_;  // Python 2 long literal
            shape.push_back(v);
            skip_ws();
            if (peek() == ',') {
                ++i_;
            } else if (peek() != close) {
                fail_at(std::string("expected ',' or '") + std::string(1, close) + "' in 'shape'");
            }
        }
    }

    [[noreturn]] void fail(const std::string& what) const {
        throw error(file_ + ": malformed .npy header: " + what);
    }
    [[noreturn]] void fail_at(const std::string& what) const {
        fail(what + " at offset " + std::to_string(i_) + " of the header dictionary");
    }

    std::string_view s_;
    const std::string& file_;
    std::size_t i_ = 0;
};

// Maps a descr to a dtype, or throws explaining why it is not supported.
inline dtype dtype_from_descr(const std::string& descr, const std::string& file) {
    if (descr.size() < 2) throw error(file + ": unsupported dtype '" + descr + "'");
    const char order = descr[0];
    const std::string_view kind = std::string_view(descr).substr(1);
    if (kind.starts_with("O"))
        throw error(file + ": object arrays (dtype '" + descr + "') are not supported");
    struct entry {
        std::string_view kind;
        dtype type;
    };
    static constexpr entry table[] = {{"f8", dtype::f64}, {"f4", dtype::f32}, {"f2", dtype::f16},
                                      {"i8", dtype::i64}, {"i4", dtype::i32}, {"i2", dtype::i16},
                                      {"i1", dtype::i8},  {"u1", dtype::u8},  {"b1", dtype::boolean}};
    for (const auto& e : table) {
        if (e.kind != kind) continue;
        const bool single = dtype_size(e.type) == 1;
        if (order == '<' || order == '=' || (single && (order == '|' || order == '>'))) return e.type;
        if (order == '>')
            throw error(file + ": big-endian dtype '" + descr + "' is not supported (use '<" +
                        std::string(kind) + "')");
        break;
    }
    throw error(file + ": unsupported dtype '" + descr +
                "' (supported: <f8 <f4 <f2 <i8 <i4 <i2 |i1 |u1 |b1)");
}

inline std::uint32_t read_le(const std::byte* p, std::size_t n) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint32_t>(p[i]) << (8 * i);
    return v;
}

inline std::string shape_tuple(const std::vector<std::int64_t>& shape) {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    if (shape.size() == 1) s += ',';
    s += ')';
    return s;
}

inline void check_booleans(const host_tensor& t, const std::string& file) {
    if (t.type != dtype::boolean) return;
    for (std::size_t i = 0; i < t.bytes.size(); ++i) {
        const auto b = std::to_integer<unsigned>(t.bytes[i]);
        if (b > 1)
            throw error(file + ": boolean element " + std::to_string(i) + " has byte value " +
                        std::to_string(b) + ", not 0 or 1");
    }
}

}  // namespace detail::npy

inline host_tensor read_npy(const std::filesystem::path& path) {
    namespace d = detail::npy;
    input_file in(path);
    const std::string& file = in.name();
    const std::uint64_t size = in.size();

    std::array<std::byte, 12> pre{};
    if (size < 10)
        throw error(file + ": not a .npy file: " + std::to_string(size) + " bytes, shorter than the preamble");
    in.read_at(0, std::span(pre).first(std::min<std::size_t>(12, static_cast<std::size_t>(size))));
    if (std::memcmp(pre.data(), d::magic, d::magic_size) != 0)
        throw error(file + ": not a .npy file: missing the \\x93NUMPY magic string");
    const auto major = std::to_integer<unsigned>(pre[6]);
    const auto minor = std::to_integer<unsigned>(pre[7]);
    if (major < 1 || major > 3 || minor != 0)
        throw error(file + ": unsupported .npy format version " + std::to_string(major) + "." +
                    std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
    const std::size_t len_size = major == 1 ? 2 : 4;
    const std::uint64_t prefix = 8 + len_size;
    if (size < prefix)
        throw error(file + ": truncated .npy preamble: " + std::to_string(size) + " bytes, need " +
                    std::to_string(prefix));
    const std::uint64_t header_len = d::read_le(pre.data() + 8, len_size);
    if (prefix + header_len > size)
        throw error(file + ": .npy header length " + std::to_string(header_len) + " runs past the end of the " +
                    std::to_string(size) + "-byte file");
    std::string text(static_cast<std::size_t>(header_len), '\0');
    in.read_at(prefix, std::as_writable_bytes(std::span(text)));
    if (text.find('\0') != std::string::npos) throw error(file + ": malformed .npy header: contains a NUL byte");

    const d::header h = d::header_parser(text, file).parse();
    const dtype type = d::dtype_from_descr(h.descr, file);
    if (h.fortran_order)
        throw error(file + ": Fortran-ordered arrays (fortran_order True) are not supported, shape " +
                    shape_to_string(h.shape) + ", " + h.descr);
    const auto expected = checked_byte_size(h.shape, type);
    if (!expected)
        throw error(file + ": shape " + shape_to_string(h.shape) + " of " + h.descr + " is too large");
    const std::uint64_t data = size - prefix - header_len;
    if (data != *expected)
        throw error(file + ": data has " + std::to_string(data) + " bytes, header promises " +
                    std::to_string(*expected) + " (shape " + shape_to_string(h.shape) + ", " + h.descr + ")");

    host_tensor t;
    t.type = type;
    t.shape = h.shape;
    t.bytes.resize(*expected);
    in.read_at(prefix + header_len, t.bytes);
    d::check_booleans(t, file);
    return t;
}

// Writes format 1.0 (2.0 if the header needs it), C order, atomically.
inline void write_npy(const std::filesystem::path& path, const host_tensor& t) {
    namespace d = detail::npy;
    const std::string file = path.string();
    const std::string_view descr = npy_descr(t.type);
    if (descr.empty())
        throw error(file + ": dtype " + std::string(dtype_name(t.type)) + " has no .npy representation");
    t.validate(file);

    std::string dict = std::string("{'descr': '") + std::string(descr) + "', 'fortran_order': False, 'shape': " +
                       d::shape_tuple(t.shape) + ", }";
    // Pad with spaces, ending in '\n', so the data starts 64-byte aligned.
    auto build = [&](std::size_t len_size) {
        const std::size_t prefix = 8 + len_size;
        const std::size_t total = (prefix + dict.size() + 1 + 63) / 64 * 64;
        std::string h = dict;
        h.append(total - prefix - dict.size() - 1, ' ');
        h += '\n';
        return h;
    };
    std::string h = build(2);
    unsigned major = 1;
    std::size_t len_size = 2;
    if (h.size() > 0xffff) {
        major = 2;
        len_size = 4;
        h = build(4);
    }
    std::vector<std::byte> pre(8 + len_size);
    std::memcpy(pre.data(), d::magic, d::magic_size);
    pre[6] = static_cast<std::byte>(major);
    pre[7] = std::byte{0};
    for (std::size_t i = 0; i < len_size; ++i) pre[8 + i] = static_cast<std::byte>((h.size() >> (8 * i)) & 0xff);

    write_file_atomically(path, {std::span<const std::byte>(pre), std::as_bytes(std::span(h)),
                                 std::span<const std::byte>(t.bytes)});
}

// The values of an .npy file as T, with its shape.
template <class T>
struct npy_array {
    std::vector<std::int64_t> shape;
    std::vector<T> values;
};

// Reads an .npy file whose dtype is exactly T's (float: '<f4' only, double:
// '<f8' only, ...). For T = std::int64_t (labels) any of '<i8' '<i4' '<i2'
// '|i1' '|u1' is accepted and widened. Any other dtype is an error naming it.
template <tensor_element T>
    requires(!std::is_same_v<T, bool>)
npy_array<T> read_npy_as(const std::filesystem::path& path) {
    host_tensor t = read_npy(path);
    npy_array<T> r;
    r.shape = t.shape;
    if (t.type == dtype_of<T>) {
        auto v = t.as<T>();
        r.values.assign(v.begin(), v.end());
        return r;
    }
    if constexpr (std::is_same_v<T, std::int64_t>) {
        auto widen = [&](auto tag) {
            using S = decltype(tag);
            auto v = t.as<S>();
            r.values.assign(v.begin(), v.end());
        };
        switch (t.type) {
            case dtype::i32: widen(std::int32_t{}); return r;
            case dtype::i16: widen(std::int16_t{}); return r;
            case dtype::i8: widen(std::int8_t{}); return r;
            case dtype::u8: widen(std::uint8_t{}); return r;
            default:
                throw error(path.string() + ": has dtype '" + std::string(npy_descr(t.type)) +
                            "', expected an integer dtype ('<i8', '<i4', '<i2', '|i1' or '|u1')");
        }
    }
    throw error(path.string() + ": has dtype '" + std::string(npy_descr(t.type)) + "', expected '" +
                std::string(npy_descr(dtype_of<T>)) + "'");
}

}  // namespace ctseg::interop
