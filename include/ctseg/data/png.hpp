// PNG images through libpng: 8- and 16-bit grey and RGB.
//
// Reading:
//  - grey of 1, 2 or 4 bits is unpacked to one byte per pixel without scaling
//    (a 1-bit mask reads as 0 and 1);
//  - 16-bit samples read as u16 in native byte order;
//  - palette images read as their colours (RGB, u8) for intensities and as
//    their indices (one channel, u8) for labels;
//  - an alpha channel (grey+alpha, RGBA) is dropped when every pixel is fully
//    opaque; any transparent pixel is an error (its colour would be
//    meaningless), and colour-key transparency (tRNS) is ignored;
//  - gamma, colour profiles and text chunks are ignored: values are read as
//    stored.
// Writing: 2D images of 1 (grey) or 3 (RGB) channels, u8 or u16, not
// interlaced, encoded in memory (the caller writes the file atomically).
//
// libpng reports errors by longjmp. Every libpng call that can fail runs in a
// small function holding no C++ object with a destructor, whose setjmp
// catches the error; the message is kept in a plain buffer and becomes a
// ctseg::error naming the file once control is back in ordinary C++.
#pragma once
#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "ctseg/data/image_file.hpp"
#include "ctseg/error.hpp"

namespace ctseg::data::png_file {

namespace detail {

// Plain data only: it is touched on both sides of a longjmp.
struct io_state {
    const unsigned char* data = nullptr;  // reading: the file
    std::size_t size = 0;
    std::size_t pos = 0;
    std::vector<std::byte>* out = nullptr;  // writing: the encoded file
    char message[256] = {};
};

inline void on_error(png_structp png, png_const_charp msg) {
    auto* st = static_cast<io_state*>(png_get_error_ptr(png));
    if (st != nullptr && st->message[0] == '\0')
        std::snprintf(st->message, sizeof st->message, "%s", msg != nullptr ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

inline void on_warning(png_structp, png_const_charp) {}

inline void read_from_memory(png_structp png, png_bytep out, std::size_t n) {
    auto* st = static_cast<io_state*>(png_get_io_ptr(png));
    if (n > st->size - st->pos) png_error(png, "unexpected end of file (truncated)");
    std::memcpy(out, st->data + st->pos, n);
    st->pos += n;
}

inline void write_to_memory(png_structp png, png_bytep data, std::size_t n) {
    auto* st = static_cast<io_state*>(png_get_io_ptr(png));
    bool ok = true;
    try {
        const auto* p = reinterpret_cast<const std::byte*>(data);
        st->out->insert(st->out->end(), p, p + n);
    } catch (...) {
        ok = false;
    }
    if (!ok) png_error(png, "out of memory while encoding");
}

inline void flush_memory(png_structp) {}

struct header {
    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    bool has_trns = false;
};

// The functions below call libpng under setjmp; false means libpng reported
// an error (the message is in the io_state).
inline bool read_header(png_structp png, png_infop info, header* h) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_read_info(png, info);
    png_get_IHDR(png, info, &h->width, &h->height, &h->bit_depth, &h->color_type, &h->interlace, nullptr, nullptr);
    h->has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    return true;
}

inline bool set_transforms(png_structp png, png_infop info, const header* h, bool palette_colours,
                           std::size_t* rowbytes, int* channels, int* bit_depth) {
    if (setjmp(png_jmpbuf(png))) return false;
    if (h->color_type == PNG_COLOR_TYPE_PALETTE && palette_colours) {
        png_set_palette_to_rgb(png);
        if (h->has_trns) png_set_strip_alpha(png);  // colour-key transparency is ignored
    } else if (h->bit_depth < 8) {
        png_set_packing(png);  // one byte per pixel, values unscaled
    }
    if (h->bit_depth == 16) png_set_swap(png);  // PNG is big-endian
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    *rowbytes = png_get_rowbytes(png, info);
    *channels = png_get_channels(png, info);
    *bit_depth = png_get_bit_depth(png, info);
    return true;
}

inline bool read_rows(png_structp png, png_bytepp rows) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_read_image(png, rows);
    png_read_end(png, nullptr);
    return true;
}

inline bool write_all(png_structp png, png_infop info, png_uint_32 width, png_uint_32 height, int bit_depth,
                      int color_type, png_bytepp rows) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_set_IHDR(png, info, width, height, bit_depth, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    if (bit_depth == 16) png_set_swap(png);
    png_write_image(png, rows);
    png_write_end(png, nullptr);
    return true;
}

// libpng's read structures, destroyed however the reader's constructor ends.
struct read_structs {
    png_structp png = nullptr;
    png_infop info = nullptr;
    read_structs() = default;
    read_structs(const read_structs&) = delete;
    read_structs& operator=(const read_structs&) = delete;
    ~read_structs() { png_destroy_read_struct(&png, &info, nullptr); }
};

struct reader {
    io_state st;
    read_structs structs;
    png_structp png = nullptr;
    png_infop info = nullptr;
    header h;

    reader(std::span<const std::byte> bytes, const std::string& file) {
        if (bytes.size() < 8 || png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) != 0)
            throw error(file + ": not a PNG file (" +
                        (bytes.size() < 8 ? std::to_string(bytes.size()) + " bytes, shorter than the signature"
                                          : std::string("no PNG signature")) +
                        ")");
        st.data = reinterpret_cast<const unsigned char*>(bytes.data());
        st.size = bytes.size();
        png = structs.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &st, on_error, on_warning);
        if (png == nullptr) throw error(file + ": cannot initialise libpng");
        info = structs.info = png_create_info_struct(png);
        if (info == nullptr) throw error(file + ": cannot initialise libpng");
        png_set_read_fn(png, &st, read_from_memory);
        if (!read_header(png, info, &h)) fail(file);
    }
    reader(const reader&) = delete;
    reader& operator=(const reader&) = delete;

    [[noreturn]] void fail(const std::string& file) const {
        throw error(file + ": invalid PNG: " + ctseg::data::detail::io::one_line(st.message));
    }

    int file_channels() const {
        switch (h.color_type) {
            case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
            case PNG_COLOR_TYPE_RGB: return 3;
            case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
            default: return 1;  // grey, palette
        }
    }
    bool has_alpha() const {
        return h.color_type == PNG_COLOR_TYPE_GRAY_ALPHA || h.color_type == PNG_COLOR_TYPE_RGB_ALPHA;
    }

    image_info info_for(read_purpose purpose) const {
        image_info r;
        const bool palette = h.color_type == PNG_COLOR_TYPE_PALETTE;
        r.channels = palette ? (purpose == read_purpose::intensities ? 3 : 1)
                             : static_cast<std::size_t>(file_channels() - (has_alpha() ? 1 : 0));
        r.extents = {h.height, h.width};
        r.stored = h.bit_depth == 16 ? pixel_type::u16 : pixel_type::u8;
        r.geom.spacing = {1.0, 1.0};
        return r;
    }
};

// Moves interleaved samples (alpha dropped) into channel planes, after
// checking that the alpha is fully opaque.
template <class S>
std::vector<S> planes_from_interleaved(const std::vector<S>& rows, std::size_t height, std::size_t width,
                                       std::size_t channels, bool alpha, const std::string& file) {
    const std::size_t stride = channels + (alpha ? 1 : 0);
    const std::size_t pixels = height * width;
    if (alpha) {
        const S opaque = std::numeric_limits<S>::max();
        for (std::size_t p = 0; p < pixels; ++p) {
            const S a = rows[p * stride + channels];
            if (a != opaque)
                throw error(file + ": pixel (y, x) = (" + std::to_string(p / width) + ", " + std::to_string(p % width) +
                            ") has alpha " + std::to_string(a) + " of " + std::to_string(opaque) +
                            ": images with transparency are not supported (a fully opaque alpha is dropped)");
        }
    }
    if (stride == 1) return rows;
    std::vector<S> planes(pixels * channels);
    for (std::size_t c = 0; c < channels; ++c)
        for (std::size_t p = 0; p < pixels; ++p) planes[c * pixels + p] = rows[p * stride + c];
    return planes;
}

}  // namespace detail

// What read_image would return, from the header alone.
inline image_info probe(std::span<const std::byte> bytes, const std::string& file,
                        read_purpose purpose = read_purpose::intensities) {
    detail::reader r(bytes, file);
    return r.info_for(purpose);
}

inline stored_image decode(std::span<const std::byte> bytes, const std::string& file,
                           read_purpose purpose = read_purpose::intensities) {
    detail::reader r(bytes, file);
    stored_image out;
    out.info = r.info_for(purpose);

    // The rows as the file stores them (one filter byte each) must fit what
    // deflate can expand the file to.
    const std::uint64_t raw_row =
        (static_cast<std::uint64_t>(r.h.width) * static_cast<std::uint64_t>(r.file_channels()) *
             static_cast<std::uint64_t>(r.h.bit_depth) +
         7) /
            8 +
        1;
    const std::uint64_t raw = raw_row * r.h.height;
    if (raw / ctseg::data::detail::io::deflate_max_ratio > bytes.size() + 1024)
        throw error(file + ": invalid PNG: " + std::to_string(r.h.width) + "x" + std::to_string(r.h.height) +
                    " pixels cannot be held in a " + std::to_string(bytes.size()) +
                    "-byte file (truncated or corrupt)");

    std::size_t rowbytes = 0;
    int channels = 0, bit_depth = 0;
    if (!detail::set_transforms(r.png, r.info, &r.h, purpose == read_purpose::intensities, &rowbytes, &channels,
                                &bit_depth))
        r.fail(file);
    const std::size_t width = r.h.width, height = r.h.height;
    const std::size_t sample_size = bit_depth == 16 ? 2 : 1;
    if ((bit_depth != 8 && bit_depth != 16) || channels < 1 || channels > 4 ||
        rowbytes != width * static_cast<std::size_t>(channels) * sample_size)
        throw error(file + ": unexpected PNG row layout after decoding (" + std::to_string(rowbytes) +
                    " bytes per row, " + std::to_string(channels) + " channels of " + std::to_string(bit_depth) +
                    " bits)");
    const bool alpha = channels == 2 || channels == 4;
    const std::size_t colour_channels = static_cast<std::size_t>(channels) - (alpha ? 1 : 0);

    auto decode_as = [&](auto sample) {
        using S = decltype(sample);
        std::vector<S> pixels(height * width * static_cast<std::size_t>(channels));
        std::vector<png_bytep> rows(height);
        for (std::size_t y = 0; y < height; ++y)
            rows[y] = reinterpret_cast<png_bytep>(pixels.data() + y * width * static_cast<std::size_t>(channels));
        if (!detail::read_rows(r.png, rows.data())) r.fail(file);
        out.values = detail::planes_from_interleaved(pixels, height, width, colour_channels, alpha, file);
    };
    if (sample_size == 2)
        decode_as(std::uint16_t{});
    else
        decode_as(std::uint8_t{});
    out.info.channels = colour_channels;
    return out;
}

// The PNG encoding of a 2D image of 1 or 3 channels stored as u8 or u16.
inline std::vector<std::byte> encode(const stored_image& s, const std::string& file) {
    const auto& info = s.info;
    if (info.extents.size() != 2)
        throw error(file + ": PNG stores 2D images only, the image is " + extents_text(info.extents) +
                    " (write volumes as .tif, .nii, .nii.gz or .npy)");
    if (info.channels != 1 && info.channels != 3)
        throw error(file + ": PNG stores 1 (grey) or 3 (RGB) channels, the image has " + std::to_string(info.channels));
    if (info.stored != pixel_type::u8 && info.stored != pixel_type::u16)
        throw error(file + ": PNG stores u8 or u16 values, not " + std::string(pixel_type_name(info.stored)));
    const std::size_t height = info.extents[0], width = info.extents[1], channels = info.channels;
    if (height > PNG_USER_HEIGHT_MAX || width > PNG_USER_WIDTH_MAX)
        throw error(file + ": PNG images are at most " + std::to_string(PNG_USER_WIDTH_MAX) + "x" +
                    std::to_string(PNG_USER_HEIGHT_MAX) + " pixels, the image is " + extents_text(info.extents));

    // Interleave the channel planes into rows.
    const std::size_t sample_size = pixel_type_size(info.stored);
    const std::size_t row_bytes = width * channels * sample_size;
    std::vector<unsigned char> pixels(height * row_bytes);
    const auto src = ctseg::data::detail::io::value_bytes(s.values);
    const std::size_t plane = height * width;
    for (std::size_t c = 0; c < channels; ++c)
        for (std::size_t p = 0; p < plane; ++p)
            std::memcpy(pixels.data() + (p * channels + c) * sample_size, src.data() + (c * plane + p) * sample_size,
                        sample_size);
    std::vector<png_bytep> rows(height);
    for (std::size_t y = 0; y < height; ++y) rows[y] = pixels.data() + y * row_bytes;

    std::vector<std::byte> encoded;
    detail::io_state st;
    st.out = &encoded;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &st, detail::on_error, detail::on_warning);
    if (png == nullptr) throw error(file + ": cannot initialise libpng");
    png_infop pinfo = png_create_info_struct(png);
    if (pinfo == nullptr) {
        png_destroy_write_struct(&png, nullptr);
        throw error(file + ": cannot initialise libpng");
    }
    png_set_write_fn(png, &st, detail::write_to_memory, detail::flush_memory);
    const bool ok = detail::write_all(png, pinfo, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height),
                                      info.stored == pixel_type::u16 ? 16 : 8,
                                      channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, rows.data());
    png_destroy_write_struct(&png, &pinfo);
    if (!ok) throw error(file + ": cannot encode PNG: " + ctseg::data::detail::io::one_line(st.message));
    return encoded;
}

}  // namespace ctseg::data::png_file
