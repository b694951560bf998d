// What the image file formats (png.hpp, tiff.hpp, nifti.hpp, npy_image.hpp)
// share: how a file stores its values (`pixel_type`), what a header says
// (`image_info`), an image as a file holds it (`stored_image`: the values in
// their stored type) and the checked conversions between stored values and
// the caller's element type. io.hpp builds the public read/write API on these.
#pragma once
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "ctseg/data/image.hpp"
#include "ctseg/error.hpp"
#include "ctseg/interop/atomic_file.hpp"

namespace ctseg::data {

// How values are stored in a file.
enum class pixel_type { u8, u16, i16, i32, f32, f64 };

constexpr std::string_view pixel_type_name(pixel_type t) noexcept {
    switch (t) {
        case pixel_type::u8: return "u8";
        case pixel_type::u16: return "u16";
        case pixel_type::i16: return "i16";
        case pixel_type::i32: return "i32";
        case pixel_type::f32: return "f32";
        case pixel_type::f64: return "f64";
    }
    return "?";
}

constexpr std::size_t pixel_type_size(pixel_type t) noexcept {
    switch (t) {
        case pixel_type::u8: return 1;
        case pixel_type::u16:
        case pixel_type::i16: return 2;
        case pixel_type::i32:
        case pixel_type::f32: return 4;
        case pixel_type::f64: return 8;
    }
    return 0;
}

// Inverse of pixel_type_name ("u8", "u16", ...); nullopt for other names.
constexpr std::optional<pixel_type> pixel_type_from_name(std::string_view name) noexcept {
    for (auto t : {pixel_type::u8, pixel_type::u16, pixel_type::i16, pixel_type::i32, pixel_type::f32, pixel_type::f64})
        if (pixel_type_name(t) == name) return t;
    return std::nullopt;
}

// What a file's header says about its image.
struct image_info {
    std::size_t channels = 1;
    std::vector<std::size_t> extents;  // slowest first: H W or D H W
    pixel_type stored = pixel_type::u8;
    geometry geom;
};

// Whether values are read as intensities or as labels. It matters for
// palette PNGs only: intensities are the palette colours (RGB), labels the
// palette indices.
enum class read_purpose { intensities, labels };

// An image with its values in the type the file stores (or is to store).
struct stored_image {
    using values_type = std::variant<std::vector<std::uint8_t>, std::vector<std::uint16_t>, std::vector<std::int16_t>,
                                     std::vector<std::int32_t>, std::vector<float>, std::vector<double>>;
    image_info info;
    values_type values;
    // NIfTI intensity scaling: the value meant is stored * slope + intercept.
    bool scaled = false;
    double slope = 1, intercept = 0;
};

namespace detail::io {

template <class T>
constexpr pixel_type pixel_type_of() {
    if constexpr (std::is_same_v<T, std::uint8_t>)
        return pixel_type::u8;
    else if constexpr (std::is_same_v<T, std::uint16_t>)
        return pixel_type::u16;
    else if constexpr (std::is_same_v<T, std::int16_t>)
        return pixel_type::i16;
    else if constexpr (std::is_same_v<T, std::int32_t>)
        return pixel_type::i32;
    else if constexpr (std::is_same_v<T, float>)
        return pixel_type::f32;
    else
        return pixel_type::f64;
}

// The element types images are read into and written from: numbers, not
// bool or characters.
template <class T>
inline constexpr bool number_type =
    std::is_arithmetic_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char> && !std::is_same_v<T, wchar_t> &&
    !std::is_same_v<T, char8_t> && !std::is_same_v<T, char16_t> && !std::is_same_v<T, char32_t>;

// A zero-filled vector of the stored type.
inline stored_image::values_type make_values(pixel_type t, std::size_t n) {
    switch (t) {
        case pixel_type::u8: return std::vector<std::uint8_t>(n);
        case pixel_type::u16: return std::vector<std::uint16_t>(n);
        case pixel_type::i16: return std::vector<std::int16_t>(n);
        case pixel_type::i32: return std::vector<std::int32_t>(n);
        case pixel_type::f32: return std::vector<float>(n);
        case pixel_type::f64: return std::vector<double>(n);
    }
    return std::vector<std::uint8_t>(n);
}

// The bytes of the values (native byte order).
inline std::span<std::byte> value_bytes(stored_image::values_type& v) {
    return std::visit([](auto& vec) { return std::as_writable_bytes(std::span(vec)); }, v);
}
inline std::span<const std::byte> value_bytes(const stored_image::values_type& v) {
    return std::visit([](const auto& vec) { return std::as_bytes(std::span(vec)); }, v);
}

// Product of extents, or nullopt on overflow of `limit`.
inline std::optional<std::uint64_t> checked_product(std::span<const std::uint64_t> factors,
                                                    std::uint64_t limit = std::numeric_limits<std::uint64_t>::max()) {
    std::uint64_t n = 1;
    for (auto f : factors) {
        if (f != 0 && n > limit / f) return std::nullopt;
        n *= f;
    }
    return n;
}

// "(z, y, x) = (1, 2, 3)" with "c" first when there are several channels.
inline std::string voxel_text(std::size_t index, std::size_t channels, const std::vector<std::size_t>& extents) {
    static constexpr const char* names2[] = {"y", "x"};
    static constexpr const char* names3[] = {"z", "y", "x"};
    std::vector<std::size_t> coord(extents.size());
    std::size_t rest = index;
    for (std::size_t a = extents.size(); a-- > 0;) {
        const std::size_t e = extents[a] ? extents[a] : 1;
        coord[a] = rest % e;
        rest /= e;
    }
    std::string names = "(", values = "(";
    const bool with_channel = channels > 1;
    if (with_channel) {
        names += "c";
        values += std::to_string(rest);
    }
    for (std::size_t a = 0; a < extents.size(); ++a) {
        if (with_channel || a) {
            names += ", ";
            values += ", ";
        }
        names += extents.size() == 2 ? names2[a] : extents.size() == 3 ? names3[a] : "i";
        values += std::to_string(coord[a]);
    }
    return names + ") = " + values + ")";
}

template <class V>
std::string value_text(V v) {
    if constexpr (std::is_floating_point_v<V>) {
        if (std::isnan(v)) return "nan";
        char buf[64];
        auto r = std::to_chars(buf, buf + sizeof buf, v);
        return std::string(buf, r.ptr);
    } else {
        return std::to_string(v);
    }
}

// "u8", "i64", "f32", ...: the pixel_type spelling, for any number type.
template <class T>
std::string type_text() {
    if constexpr (std::is_floating_point_v<T>)
        return "f" + std::to_string(8 * sizeof(T));
    else
        return (std::is_signed_v<T> ? "i" : "u") + std::to_string(8 * sizeof(T));
}

// Why `v` cannot be a T, or nullptr when it can. Integer T must hold v
// exactly; floating T must hold it within range, and with `exact` an integer
// v must also survive the round trip (a label written as f32 above 2^24
// would not).
template <class T, bool exact = false, class V>
const char* unrepresentable(V v) {
    if constexpr (std::is_floating_point_v<T>) {
        if constexpr (std::is_floating_point_v<V> && sizeof(V) > sizeof(T)) {
            if (std::isfinite(v) && std::abs(v) > static_cast<V>(std::numeric_limits<T>::max())) return "out of range";
        }
        if constexpr (exact && std::is_integral_v<V> &&
                      std::numeric_limits<V>::digits > std::numeric_limits<T>::digits) {
            const T t = static_cast<T>(v);  // rounds; may reach 2^digits, which V cannot hold
            if (t >= std::ldexp(T(1), std::numeric_limits<V>::digits) || static_cast<V>(t) != v)
                return "not exactly representable";
        }
        return nullptr;
    } else if constexpr (std::is_floating_point_v<V>) {
        if (!std::isfinite(v)) return "not finite";
        if (std::trunc(v) != v) return "not an integer";
        // Bounds as powers of two, exact in any floating type.
        const V lo = std::is_signed_v<T> ? -std::ldexp(V(1), std::numeric_limits<T>::digits) : V(0);
        const V hi = std::ldexp(V(1), std::numeric_limits<T>::digits);
        if (v < lo || v >= hi) return "out of range";
        return nullptr;
    } else {
        if (!std::in_range<T>(v)) return "out of range";
        return nullptr;
    }
}

template <class T>
std::string range_text() {
    if constexpr (std::is_floating_point_v<T>) {
        return "|v| <= " + value_text(std::numeric_limits<T>::max());
    } else {
        return std::to_string(std::numeric_limits<T>::min()) + ".." + std::to_string(std::numeric_limits<T>::max());
    }
}

// Converts stored values to T, applying the intensity scaling; a value that T
// cannot hold is an error naming the file, the voxel and the value.
template <class T>
image<T> to_image(stored_image&& s, const std::string& file, const char* what = "voxel") {
    image<T> img;
    img.channels = s.info.channels;
    img.extents = s.info.extents;
    img.geom = std::move(s.info.geom);
    std::visit(
        [&](auto& src) {
            using S = typename std::decay_t<decltype(src)>::value_type;
            if constexpr (std::is_same_v<S, T>) {
                if (!s.scaled) {
                    img.values = std::move(src);
                    return;
                }
            }
            img.values.resize(src.size());
            auto fail = [&](std::size_t i, auto v, const char* why) {
                throw error(file + ": " + what + " " + voxel_text(i, img.channels, img.extents) + " has value " +
                            value_text(v) + ", " + why + " for " + type_text<T>() + " (" + range_text<T>() + ")");
            };
            if (s.scaled) {
                for (std::size_t i = 0; i < src.size(); ++i) {
                    const double v = static_cast<double>(src[i]) * s.slope + s.intercept;
                    if (const char* why = unrepresentable<T>(v)) fail(i, v, why);
                    img.values[i] = static_cast<T>(v);
                }
            } else {
                for (std::size_t i = 0; i < src.size(); ++i) {
                    const S v = src[i];
                    if (const char* why = unrepresentable<T>(v)) fail(i, v, why);
                    img.values[i] = static_cast<T>(v);
                }
            }
            std::vector<S>().swap(src);
        },
        s.values);
    return img;
}

// Checks that an image is one the formats can write: rank 2 or 3, non-empty
// extents, at least one channel, values sized to match.
template <class T>
void check_writable(const image<T>& img, const std::string& file) {
    if (img.extents.size() != 2 && img.extents.size() != 3)
        throw error(file + ": cannot write an image of rank " + std::to_string(img.extents.size()) + " (extents " +
                    extents_text(img.extents) + "): only 2D (H W) and 3D (D H W) images");
    if (img.channels == 0) throw error(file + ": cannot write an image with 0 channels");
    std::vector<std::uint64_t> f{img.channels};
    for (auto e : img.extents) {
        if (e == 0) throw error(file + ": cannot write an empty image (extents " + extents_text(img.extents) + ")");
        f.push_back(e);
    }
    const auto n = checked_product(f);
    if (!n || *n != img.values.size())
        throw error(file + ": image holds " + std::to_string(img.values.size()) + " values, " +
                    std::to_string(img.channels) + " channel(s) of " + extents_text(img.extents) + " need " +
                    (n ? std::to_string(*n) : std::string("more than 2^64")));
}

// The values of `img` in the stored type; a value the stored type cannot hold
// exactly (out of range, or not an integer for an integer type) is an error
// naming the file, the voxel and the value.
template <class T>
stored_image to_stored(const image<T>& img, pixel_type stored, const std::string& file) {
    check_writable(img, file);
    stored_image s;
    s.info.channels = img.channels;
    s.info.extents = img.extents;
    s.info.stored = stored;
    s.info.geom = img.geom;
    s.values = make_values(stored, img.values.size());
    std::visit(
        [&](auto& dst) {
            using D = typename std::decay_t<decltype(dst)>::value_type;
            if constexpr (std::is_same_v<D, T>) {
                dst = img.values;
            } else {
                for (std::size_t i = 0; i < img.values.size(); ++i) {
                    const T v = img.values[i];
                    if (const char* why = unrepresentable<D, true>(v))
                        throw error(file + ": cannot store voxel " + voxel_text(i, img.channels, img.extents) +
                                    " value " + value_text(v) + " as " + std::string(pixel_type_name(stored)) + ": " +
                                    why + " (" + range_text<D>() + ")");
                    dst[i] = static_cast<D>(v);
                }
            }
        },
        s.values);
    return s;
}

// The whole file; errors name it (missing, a directory, unreadable).
inline std::vector<std::byte> read_file_bytes(const std::filesystem::path& path) {
    interop::input_file in(path);
    std::vector<std::byte> bytes(static_cast<std::size_t>(in.size()));
    if (!bytes.empty()) in.read_at(0, bytes);
    return bytes;
}

// One line: control characters (libraries' messages may end in newlines)
// become spaces, trailing ones are dropped.
inline std::string one_line(std::string_view s) {
    std::string r;
    for (char c : s) r += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
    while (!r.empty() && r.back() == ' ') r.pop_back();
    return r;
}

// Deflate cannot expand data more than about 1032:1; a header promising more
// decoded bytes than its compressed bytes can hold is lying (or the file is
// truncated), and is rejected before anything that large is allocated.
inline constexpr std::uint64_t deflate_max_ratio = 1040;

}  // namespace detail::io
}  // namespace ctseg::data
