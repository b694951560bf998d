// Images as NumPy .npy arrays, through ctseg's .npy reader and writer
// (include/ctseg/interop/npy.hpp).
//
// The shape decides the layout, one rule without options:
//   (H, W)        a 2D image, 1 channel
//   (D, H, W)     a volume, 1 channel
//   (C, D, H, W)  a volume of C channels (channel axis first, as networks
//                 take it)
// Other ranks are errors. A 2D image of several channels therefore has no
// .npy form (its (C, H, W) would read back as a volume); it is refused when
// written. Dtypes: '|u1', '|b1' (read as u8 0/1), '|i1' (read as i16), '<i2',
// '<i4', '<i8' (read as i32; a value outside int32 is an error naming it),
// '<f4', '<f8'. Written: u8, i16, i32, f32, f64 (the .npy layer has no u16).
// No geometry is kept (spacing reads as 1).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "ctseg/data/image_file.hpp"
#include "ctseg/error.hpp"
#include "ctseg/interop/npy.hpp"

namespace ctseg::data::npy_file {

namespace detail {

namespace io = ctseg::data::detail::io;

inline void set_layout(const std::vector<std::int64_t>& shape, const std::string& file, image_info& info) {
    if (shape.size() < 2 || shape.size() > 4)
        throw error(file + ": .npy shape " + interop::shape_to_string(shape) +
                    " is not an image: expected (H, W), (D, H, W) or (C, D, H, W)");
    for (auto d : shape)
        if (d <= 0) throw error(file + ": .npy shape " + interop::shape_to_string(shape) + " is empty");
    info.channels = shape.size() == 4 ? static_cast<std::size_t>(shape[0]) : 1;
    info.extents.assign(shape.end() - (shape.size() == 2 ? 2 : 3), shape.end());
    info.geom.spacing.assign(info.extents.size(), 1.0);
}

inline pixel_type stored_type(interop::dtype t, const std::string& file, const std::string& descr) {
    using interop::dtype;
    switch (t) {
        case dtype::u8:
        case dtype::boolean: return pixel_type::u8;
        case dtype::i8:
        case dtype::i16: return pixel_type::i16;
        case dtype::i32:
        case dtype::i64: return pixel_type::i32;
        case dtype::f32: return pixel_type::f32;
        case dtype::f64: return pixel_type::f64;
        default:
            throw error(file + ": .npy dtype '" + descr +
                        "' is not supported for images (supported: |u1 |b1 |i1 <i2 <i4 <i8 <f4 <f8)");
    }
}

template <class D, class S>
std::vector<D> widened(std::span<const S> src) {
    return std::vector<D>(src.begin(), src.end());
}

inline std::vector<std::int32_t> narrowed_int64(std::span<const std::int64_t> src, const image_info& info,
                                                const std::string& file) {
    std::vector<std::int32_t> r(src.size());
    for (std::size_t i = 0; i < src.size(); ++i) {
        if (!std::in_range<std::int32_t>(src[i]))
            throw error(file + ": int64 value " + std::to_string(src[i]) + " at " +
                        io::voxel_text(i, info.channels, info.extents) +
                        " does not fit i32, the widest integer pixel type");
        r[i] = static_cast<std::int32_t>(src[i]);
    }
    return r;
}

inline stored_image from_tensor(const interop::host_tensor& t, const std::string& file) {
    stored_image out;
    set_layout(t.shape, file, out.info);
    out.info.stored = stored_type(t.type, file, std::string(interop::npy_descr(t.type)));
    using interop::dtype;
    switch (t.type) {
        case dtype::u8: out.values = widened<std::uint8_t>(t.as<std::uint8_t>()); break;
        case dtype::boolean: {
            auto b = t.as<bool>();
            std::vector<std::uint8_t> v(b.size());
            for (std::size_t i = 0; i < b.size(); ++i) v[i] = b[i] ? 1 : 0;
            out.values = std::move(v);
            break;
        }
        case dtype::i8: out.values = widened<std::int16_t>(t.as<std::int8_t>()); break;
        case dtype::i16: out.values = widened<std::int16_t>(t.as<std::int16_t>()); break;
        case dtype::i32: out.values = widened<std::int32_t>(t.as<std::int32_t>()); break;
        case dtype::i64: out.values = narrowed_int64(t.as<std::int64_t>(), out.info, file); break;
        case dtype::f32: out.values = widened<float>(t.as<float>()); break;
        case dtype::f64: out.values = widened<double>(t.as<double>()); break;
        default: break;  // refused by stored_type
    }
    return out;
}

// interop's .npy messages may quote bytes of a malformed header; the image
// API promises one line.
template <class F>
auto one_line_errors(F&& f) {
    try {
        return f();
    } catch (const error& e) {
        const std::string line = io::one_line(e.what());
        if (line == e.what()) throw;
        throw error(line);
    }
}

// The image a file's header describes, with read_npy's checks where the
// header alone does not settle it.
inline image_info probe_header(const std::filesystem::path& path) {
    namespace d = interop::detail::npy;
    interop::input_file in(path);
    const std::string& file = in.name();
    const std::uint64_t size = in.size();
    std::array<std::byte, 12> pre{};
    if (size < 12) return detail::from_tensor(interop::read_npy(path), file).info;  // read_npy says what is wrong
    in.read_at(0, pre);
    if (std::memcmp(pre.data(), d::magic, d::magic_size) != 0 ||
        (pre[6] != std::byte{1} && pre[6] != std::byte{2} && pre[6] != std::byte{3}))
        return detail::from_tensor(interop::read_npy(path), file).info;
    const std::size_t len_size = pre[6] == std::byte{1} ? 2 : 4;
    const std::uint64_t prefix = 8 + len_size;
    const std::uint64_t header_len = d::read_le(pre.data() + 8, len_size);
    if (prefix + header_len > size) return detail::from_tensor(interop::read_npy(path), file).info;
    std::string text(static_cast<std::size_t>(header_len), '\0');
    in.read_at(prefix, std::as_writable_bytes(std::span(text)));
    if (text.find('\0') != std::string::npos) return detail::from_tensor(interop::read_npy(path), file).info;
    const d::header h = d::header_parser(text, file).parse();
    const interop::dtype type = d::dtype_from_descr(h.descr, file);
    image_info info;
    detail::set_layout(h.shape, file, info);
    info.stored = detail::stored_type(type, file, h.descr);
    const auto expected = interop::checked_byte_size(h.shape, type);
    if (h.fortran_order || type == interop::dtype::i64 || !expected || size - prefix - header_len != *expected)
        return detail::from_tensor(interop::read_npy(path), file).info;  // the full checks and messages
    return info;
}

}  // namespace detail

// The header (for '<i8' arrays also the values, which must fit i32).
inline image_info probe_file(const std::filesystem::path& path) {
    return detail::one_line_errors([&] { return detail::probe_header(path); });
}

inline stored_image decode_file(const std::filesystem::path& path) {
    return detail::one_line_errors([&] { return detail::from_tensor(interop::read_npy(path), path.string()); });
}

// Writes through interop::write_npy, which replaces the file atomically.
inline void write_file(const std::filesystem::path& path, const stored_image& s) {
    const std::string file = path.string();
    const auto& info = s.info;
    if (info.extents.size() != 2 && info.extents.size() != 3)
        throw error(file + ": .npy images are 2D or 3D, not extents " + extents_text(info.extents));
    if (info.extents.size() == 2 && info.channels != 1)
        throw error(file + ": a 2D image of " + std::to_string(info.channels) +
                    " channels has no .npy form ((C, H, W) reads back as a volume); write it as PNG or TIFF");
    std::vector<std::int64_t> shape;
    if (info.channels > 1) shape.push_back(static_cast<std::int64_t>(info.channels));
    for (auto e : info.extents) shape.push_back(static_cast<std::int64_t>(e));
    interop::host_tensor t;
    std::visit(
        [&](const auto& v) {
            using S = typename std::decay_t<decltype(v)>::value_type;
            if constexpr (std::is_same_v<S, std::uint16_t>) {
                throw error(file + ": .npy images are written as u8, i16, i32, f32 or f64, not u16 (use i32)");
            } else {
                t = interop::host_tensor::from(std::span<const S>(v), shape);
            }
        },
        s.values);
    interop::write_npy(path, t);
}

}  // namespace ctseg::data::npy_file
