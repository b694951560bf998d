// A dense, C-ordered tensor held as raw little-endian bytes on the host, the
// common currency of the file readers and writers (.npy, .safetensors).
#pragma once
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ctseg/error.hpp"

namespace ctseg::interop {

static_assert(std::endian::native == std::endian::little,
              "ctseg's tensor files are little-endian and are read without byte swapping");
static_assert(sizeof(bool) == 1, "booleans are stored as one byte");

enum class dtype { f64, f32, f16, bf16, i64, i32, i16, i8, u8, boolean };

// The safetensors spelling: "F64", "F32", "F16", "BF16", "I64", "I32", "I16",
// "I8", "U8", "BOOL".
constexpr std::string_view dtype_name(dtype t) noexcept {
    switch (t) {
        case dtype::f64: return "F64";
        case dtype::f32: return "F32";
        case dtype::f16: return "F16";
        case dtype::bf16: return "BF16";
        case dtype::i64: return "I64";
        case dtype::i32: return "I32";
        case dtype::i16: return "I16";
        case dtype::i8: return "I8";
        case dtype::u8: return "U8";
        case dtype::boolean: return "BOOL";
    }
    return "?";
}

// Bytes per element.
constexpr std::size_t dtype_size(dtype t) noexcept {
    switch (t) {
        case dtype::f64:
        case dtype::i64: return 8;
        case dtype::f32:
        case dtype::i32: return 4;
        case dtype::f16:
        case dtype::bf16:
        case dtype::i16: return 2;
        case dtype::i8:
        case dtype::u8:
        case dtype::boolean: return 1;
    }
    return 0;
}

inline constexpr dtype all_dtypes[] = {dtype::f64, dtype::f32, dtype::f16, dtype::bf16, dtype::i64,
                                       dtype::i32, dtype::i16, dtype::i8,  dtype::u8,   dtype::boolean};

// Inverse of dtype_name; nullopt for names ctseg does not know.
constexpr std::optional<dtype> dtype_from_name(std::string_view name) noexcept {
    for (dtype t : all_dtypes)
        if (dtype_name(t) == name) return t;
    return std::nullopt;
}

namespace detail {
template <class T>
struct dtype_of_impl;
template <> struct dtype_of_impl<double> { static constexpr dtype value = dtype::f64; };
template <> struct dtype_of_impl<float> { static constexpr dtype value = dtype::f32; };
template <> struct dtype_of_impl<std::int64_t> { static constexpr dtype value = dtype::i64; };
template <> struct dtype_of_impl<std::int32_t> { static constexpr dtype value = dtype::i32; };
template <> struct dtype_of_impl<std::int16_t> { static constexpr dtype value = dtype::i16; };
template <> struct dtype_of_impl<std::int8_t> { static constexpr dtype value = dtype::i8; };
template <> struct dtype_of_impl<std::uint8_t> { static constexpr dtype value = dtype::u8; };
template <> struct dtype_of_impl<bool> { static constexpr dtype value = dtype::boolean; };
}  // namespace detail

// The C++ element types with a dtype (f16 and bf16 have none: use the bytes).
template <class T>
concept tensor_element = requires { detail::dtype_of_impl<std::remove_cv_t<T>>::value; };

template <tensor_element T>
inline constexpr dtype dtype_of = detail::dtype_of_impl<std::remove_cv_t<T>>::value;

// "[64, 1, 3, 3]"; "[]" for a scalar.
inline std::string shape_to_string(std::span<const std::int64_t> shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    s += ']';
    return s;
}

// Number of elements of a shape (1 for a scalar), or nullopt when a dimension
// is negative or the count overflows int64.
inline std::optional<std::int64_t> checked_numel(std::span<const std::int64_t> shape) noexcept {
    std::int64_t n = 1;
    bool zero = false;
    for (std::int64_t d : shape) {
        if (d < 0) return std::nullopt;
        if (d == 0) zero = true;
    }
    if (zero) return 0;
    for (std::int64_t d : shape) {
        if (n > std::numeric_limits<std::int64_t>::max() / d) return std::nullopt;
        n *= d;
    }
    return n;
}

// Byte size of a tensor of this shape and dtype, or nullopt on a negative
// dimension or an overflow (the result always fits size_t).
inline std::optional<std::size_t> checked_byte_size(std::span<const std::int64_t> shape, dtype t) noexcept {
    auto n = checked_numel(shape);
    if (!n) return std::nullopt;
    const auto un = static_cast<std::uint64_t>(*n);
    const std::uint64_t size = dtype_size(t);
    if (un > std::numeric_limits<std::size_t>::max() / size) return std::nullopt;
    return static_cast<std::size_t>(un * size);
}

struct host_tensor {
    dtype type = dtype::f32;
    std::vector<std::int64_t> shape;  // C order (last index fastest); [] is a scalar
    std::vector<std::byte> bytes;     // numel() * dtype_size(type) bytes, little-endian

    std::int64_t numel() const noexcept {
        std::int64_t n = 1;
        for (std::int64_t d : shape) n *= d;
        return n;
    }

    std::size_t byte_size() const noexcept { return bytes.size(); }

    // Throws unless shape has no negative dimension and bytes has exactly the
    // size the shape and dtype call for. `what` prefixes the message.
    void validate(std::string_view what) const {
        auto expected = checked_byte_size(shape, type);
        if (!expected)
            throw error(std::string(what) + ": invalid shape " + shape_to_string(shape));
        if (*expected != bytes.size())
            throw error(std::string(what) + ": has " + std::to_string(bytes.size()) + " bytes, shape " +
                        shape_to_string(shape) + " of " + std::string(dtype_name(type)) + " needs " +
                        std::to_string(*expected));
    }

    // The elements as T; throws ctseg::error unless the dtype is T's.
    template <tensor_element T>
    std::span<const T> as() const {
        check_type<T>();
        return {reinterpret_cast<const T*>(bytes.data()), bytes.size() / sizeof(T)};
    }

    template <tensor_element T>
    std::span<T> as_mutable() {
        check_type<T>();
        return {reinterpret_cast<T*>(bytes.data()), bytes.size() / sizeof(T)};
    }

    // A zero-filled tensor.
    static host_tensor zeros(dtype t, std::vector<std::int64_t> shape) {
        auto size = checked_byte_size(shape, t);
        if (!size) throw error(std::string("host_tensor: invalid shape ") + shape_to_string(shape));
        host_tensor r;
        r.type = t;
        r.shape = std::move(shape);
        r.bytes.assign(*size, std::byte{0});
        return r;
    }

    // A copy of `values` with this shape; throws unless the shape holds
    // exactly values.size() elements.
    template <tensor_element T>
    static host_tensor from(std::span<const T> values, std::vector<std::int64_t> shape) {
        auto n = checked_numel(shape);
        if (!n || static_cast<std::uint64_t>(*n) != values.size())
            throw error(std::string("host_tensor: shape ") + shape_to_string(shape) + " does not hold " +
                        std::to_string(values.size()) + " values");
        host_tensor r;
        r.type = dtype_of<T>;
        r.shape = std::move(shape);
        r.bytes.resize(values.size_bytes());
        if (!values.empty()) std::memcpy(r.bytes.data(), values.data(), values.size_bytes());
        return r;
    }

    template <tensor_element T>
        requires(!std::is_same_v<T, bool>)  // std::vector<bool> has no contiguous storage
    static host_tensor from(const std::vector<T>& values, std::vector<std::int64_t> shape) {
        return from(std::span<const T>(values), std::move(shape));
    }

    friend bool operator==(const host_tensor&, const host_tensor&) = default;

private:
    template <class T>
    void check_type() const {
        if (type != dtype_of<T>)
            throw error(std::string("host_tensor: has dtype ") + std::string(dtype_name(type)) + ", accessed as " +
                        std::string(dtype_name(dtype_of<T>)));
        if (bytes.size() % sizeof(T) != 0)
            throw error(std::string("host_tensor: ") + std::to_string(bytes.size()) + " bytes is not a whole number of " +
                        std::string(dtype_name(type)) + " elements");
    }
};

}  // namespace ctseg::interop
