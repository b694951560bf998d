// TIFF images and stacks through libtiff.
//
// A file of one page is a 2D image (H W); a file of several pages is a volume
// (D H W), page z being slice z (pages count from 0), like the EM stacks of
// the U-Net paper. Every page must have the same size and sample layout.
// Supported samples: 8- and 16-bit unsigned, 16- and 32-bit signed, 32- and
// 64-bit float; one sample per pixel (MinIsBlack grey) or three (RGB,
// contiguous or planar); strips or tiles; no compression, LZW, deflate,
// PackBits, LZMA or zstd. Inverted grey (MinIsWhite), palettes, alpha or other
// extra samples and lossy (JPEG) compression are errors that say so.
// Writing: 2D images as one page, volumes as one page per slice, 1 or 3
// channels, any pixel_type, uncompressed (BigTIFF above 4 GiB), encoded in
// memory. No geometry is kept (spacing reads as 1).
//
// libtiff's messages never reach stderr: each file gets its own error handler
// (libtiff 4.5 open options), which keeps the first message for the
// ctseg::error naming the file and the page; the process-wide handlers are
// silenced for the messages libtiff reports without a file.
#pragma once
#include <fcntl.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ctseg/data/image_file.hpp"
#include "ctseg/error.hpp"

namespace ctseg::data::tiff_file {

namespace detail {

namespace io = ctseg::data::detail::io;

// Where libtiff reads from or writes to: a memory buffer, a file descriptor
// (reading) or a growing vector (writing).
struct stream {
    const std::byte* data = nullptr;
    std::uint64_t size = 0;
    int fd = -1;
    std::vector<std::byte>* out = nullptr;
    std::uint64_t pos = 0;
    bool failed = false;
};

inline tmsize_t read_proc(thandle_t h, void* buf, tmsize_t n) {
    auto* s = static_cast<stream*>(h);
    // While writing, libtiff reads back what it wrote (to link directories).
    const std::byte* data = s->out != nullptr ? s->out->data() : s->data;
    const std::uint64_t size = s->out != nullptr ? s->out->size() : s->size;
    if (n <= 0 || s->pos >= size) return 0;
    const auto want = std::min<std::uint64_t>(static_cast<std::uint64_t>(n), size - s->pos);
    if (s->fd < 0) {
        std::memcpy(buf, data + s->pos, want);
        s->pos += want;
        return static_cast<tmsize_t>(want);
    }
    std::uint64_t done = 0;
    while (done < want) {
        const ::ssize_t r =
            ::pread(s->fd, static_cast<char*>(buf) + done, want - done, static_cast<::off_t>(s->pos + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        done += static_cast<std::uint64_t>(r);
    }
    s->pos += done;
    return static_cast<tmsize_t>(done);
}

inline tmsize_t write_proc(thandle_t h, void* buf, tmsize_t n) {
    auto* s = static_cast<stream*>(h);
    if (s->out == nullptr || n < 0) return -1;
    const auto count = static_cast<std::uint64_t>(n);
    try {
        if (s->pos + count > s->out->size()) s->out->resize(s->pos + count);
    } catch (...) {
        s->failed = true;
        return -1;
    }
    if (count) std::memcpy(s->out->data() + s->pos, buf, count);
    s->pos += count;
    return n;
}

inline toff_t size_proc(thandle_t h) {
    auto* s = static_cast<stream*>(h);
    return s->out != nullptr ? s->out->size() : s->size;
}

inline toff_t seek_proc(thandle_t h, toff_t off, int whence) {
    auto* s = static_cast<stream*>(h);
    // Offsets are unsigned; a backwards SEEK_CUR wraps around as intended.
    switch (whence) {
        case SEEK_SET: s->pos = off; break;
        case SEEK_CUR: s->pos += off; break;
        case SEEK_END: s->pos = size_proc(h) + off; break;
        default: return static_cast<toff_t>(-1);
    }
    return s->pos;
}

inline int close_proc(thandle_t) { return 0; }
inline int map_proc(thandle_t, void**, toff_t*) { return 0; }
inline void unmap_proc(thandle_t, void*, toff_t) {}

// libtiff's error messages since the last clear(). libtiff also reports
// problems it recovers from (a malformed private tag) as errors, so only
// those of a failing call count, and the last one, usually the fatal one,
// is kept.
struct messages {
    char last_error[256] = {};
    bool has_error = false;
};

inline int on_error(TIFF*, void* user, const char*, const char* fmt, va_list ap) {
    auto* m = static_cast<messages*>(user);
    std::vsnprintf(m->last_error, sizeof m->last_error, fmt, ap);
    m->has_error = true;
    return 1;  // handled: the process-wide handler is not called
}

inline int on_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

// libtiff's process-wide handlers print to stderr; they only see messages
// that libtiff reports without a file handle.
inline void silence_global_handlers() {
    static const bool done = [] {
        TIFFSetErrorHandler(nullptr);
        TIFFSetWarningHandler(nullptr);
        return true;
    }();
    (void)done;
}

// An open TIFF with its stream and its messages (neither may move).
class handle {
public:
    handle(const std::string& file, const char* mode, stream s, std::uint64_t max_alloc) : file_(file), s_(s) {
        silence_global_handlers();
        TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
        if (opts == nullptr) throw error(file_ + ": cannot initialise libtiff");
        TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, &m_);
        TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, nullptr);
        if (max_alloc) TIFFOpenOptionsSetMaxSingleMemAlloc(opts, static_cast<tmsize_t>(max_alloc));
        tif_ = TIFFClientOpenExt(file_.c_str(), mode, &s_, read_proc, write_proc, seek_proc, close_proc, size_proc,
                                 map_proc, unmap_proc, opts);
        TIFFOpenOptionsFree(opts);
        if (tif_ == nullptr) fail(m_.has_error ? "" : "not a TIFF file");
    }
    handle(const handle&) = delete;
    handle& operator=(const handle&) = delete;
    ~handle() {
        if (tif_ != nullptr) TIFFClose(tif_);
    }

    TIFF* get() const noexcept { return tif_; }
    bool has_error() const noexcept { return m_.has_error; }
    void clear_errors() noexcept { m_.has_error = false; }
    const std::string& file() const noexcept { return file_; }
    stream& io() noexcept { return s_; }

    // Closes (and so flushes) the file; errors name it.
    void close() {
        TIFF* t = tif_;
        tif_ = nullptr;
        TIFFClose(t);
        if (m_.has_error || s_.failed) fail("cannot write TIFF");
    }

    [[noreturn]] void fail(const std::string& what, std::optional<std::uint32_t> page = std::nullopt) const {
        std::string msg = file_ + ": ";
        if (page) msg += "page " + std::to_string(*page) + ": ";
        msg += what;
        if (m_.has_error) {
            // libtiff puts the file's name in some messages; it is said once.
            std::string lib = io::one_line(m_.last_error);
            for (auto at = lib.find(file_ + ": "); at != std::string::npos; at = lib.find(file_ + ": "))
                lib.erase(at, file_.size() + 2);
            msg += (what.empty() ? "" : ": ") + lib;
        }
        if (what.empty() && !m_.has_error) msg += "invalid TIFF";
        throw error(msg);
    }

private:
    std::string file_;
    stream s_;
    messages m_;
    TIFF* tif_ = nullptr;
};

// How one page stores its samples.
struct page_layout {
    std::uint32_t width = 0, height = 0;
    std::uint16_t samples = 1, bits = 1, sample_format = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG;
    std::uint16_t compression = COMPRESSION_NONE;
    bool tiled = false;
    std::uint32_t tile_width = 0, tile_height = 0, rows_per_strip = 0;
    pixel_type type = pixel_type::u8;

    bool same_image(const page_layout& o) const {
        return width == o.width && height == o.height && samples == o.samples && type == o.type;
    }
    std::string text() const {
        return std::to_string(height) + "x" + std::to_string(width) + " " + std::string(pixel_type_name(type)) + " (" +
               std::to_string(samples) + (samples == 1 ? " sample" : " samples") + " per pixel)";
    }
};

inline const char* compression_name(std::uint16_t c) {
    switch (c) {
        case COMPRESSION_NONE: return "none";
        case COMPRESSION_LZW: return "LZW";
        case COMPRESSION_ADOBE_DEFLATE:
        case COMPRESSION_DEFLATE: return "deflate";
        case COMPRESSION_PACKBITS: return "PackBits";
        case COMPRESSION_LZMA: return "LZMA";
        case COMPRESSION_ZSTD: return "zstd";
        case COMPRESSION_JPEG:
        case COMPRESSION_OJPEG: return "JPEG";
        default: return nullptr;
    }
}

// How far a codec can expand its input, bounding what a page's data can
// decode to before anything is allocated for it.
inline std::uint64_t max_expansion(std::uint16_t c) {
    switch (c) {
        case COMPRESSION_NONE: return 1;
        case COMPRESSION_PACKBITS: return 128;  // a 2-byte run codes 128 bytes
        case COMPRESSION_ADOBE_DEFLATE:
        case COMPRESSION_DEFLATE: return io::deflate_max_ratio;
        case COMPRESSION_LZW: return 4096;  // a code of at least 9 bits yields at most 4096 bytes
        default: return 1u << 16;           // LZMA, zstd
    }
}

inline page_layout read_layout(const handle& h, std::uint32_t page) {
    TIFF* tif = h.get();
    page_layout l;
    auto fail = [&](const std::string& what) {
        throw error(h.file() + ": page " + std::to_string(page) + ": " + what);
    };
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &l.width) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &l.height))
        fail("has no image width or length");
    if (l.width == 0 || l.height == 0)
        fail("is empty (" + std::to_string(l.width) + "x" + std::to_string(l.height) + ")");
    std::uint32_t depth = 1;
    TIFFGetFieldDefaulted(tif, TIFFTAG_IMAGEDEPTH, &depth);
    if (depth != 1) fail("has image depth " + std::to_string(depth) + "; store volumes as one page per slice");
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &l.samples);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &l.bits);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &l.sample_format);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &l.planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &l.compression);
    std::uint16_t photometric = 0;
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric))
        photometric = l.samples == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;

    if (l.samples != 1 && l.samples != 3)
        fail("has " + std::to_string(l.samples) +
             " samples per pixel; supported are 1 (grey) and 3 (RGB), without alpha or extra samples");
    if (photometric == PHOTOMETRIC_MINISWHITE)
        fail("inverted grey (PhotometricInterpretation MinIsWhite) is not supported");
    if (photometric == PHOTOMETRIC_PALETTE) fail("palette images are not supported");
    if (l.samples == 1 && photometric != PHOTOMETRIC_MINISBLACK)
        fail("PhotometricInterpretation " + std::to_string(photometric) + " is not supported for 1 sample per pixel");
    if (l.samples == 3 && photometric != PHOTOMETRIC_RGB)
        fail("PhotometricInterpretation " + std::to_string(photometric) +
             " is not supported for 3 samples per pixel (only RGB)");
    if (l.planar != PLANARCONFIG_CONTIG && l.planar != PLANARCONFIG_SEPARATE)
        fail("has unknown PlanarConfiguration " + std::to_string(l.planar));

    const auto f = l.sample_format;
    if (f == SAMPLEFORMAT_UINT && l.bits == 8)
        l.type = pixel_type::u8;
    else if (f == SAMPLEFORMAT_UINT && l.bits == 16)
        l.type = pixel_type::u16;
    else if (f == SAMPLEFORMAT_INT && l.bits == 16)
        l.type = pixel_type::i16;
    else if (f == SAMPLEFORMAT_INT && l.bits == 32)
        l.type = pixel_type::i32;
    else if (f == SAMPLEFORMAT_IEEEFP && l.bits == 32)
        l.type = pixel_type::f32;
    else if (f == SAMPLEFORMAT_IEEEFP && l.bits == 64)
        l.type = pixel_type::f64;
    else {
        const char* kind = f == SAMPLEFORMAT_UINT     ? "unsigned"
                           : f == SAMPLEFORMAT_INT    ? "signed"
                           : f == SAMPLEFORMAT_IEEEFP ? "float"
                                                      : "unknown-format";
        fail("has " + std::to_string(l.bits) + "-bit " + kind +
             " samples; supported are 8/16-bit unsigned, 16/32-bit signed and 32/64-bit float");
    }

    const char* cname = compression_name(l.compression);
    const bool allowed = l.compression == COMPRESSION_NONE || l.compression == COMPRESSION_LZW ||
                         l.compression == COMPRESSION_ADOBE_DEFLATE || l.compression == COMPRESSION_DEFLATE ||
                         l.compression == COMPRESSION_PACKBITS || l.compression == COMPRESSION_LZMA ||
                         l.compression == COMPRESSION_ZSTD;
    if (!allowed || !TIFFIsCODECConfigured(l.compression))
        fail(std::string("compression ") + (cname ? cname : std::to_string(l.compression).c_str()) +
             " is not supported (supported: none, LZW, deflate, PackBits, LZMA, zstd)");

    l.tiled = TIFFIsTiled(tif) != 0;
    if (l.tiled) {
        if (!TIFFGetField(tif, TIFFTAG_TILEWIDTH, &l.tile_width) ||
            !TIFFGetField(tif, TIFFTAG_TILELENGTH, &l.tile_height) || l.tile_width == 0 || l.tile_height == 0)
            fail("is tiled without a valid tile size");
    } else {
        TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &l.rows_per_strip);
        if (l.rows_per_strip == 0) fail("has RowsPerStrip 0");
        l.rows_per_strip = std::min(l.rows_per_strip, l.height);
    }
    return l;
}

// One strip or tile: where its samples go in the page.
struct chunk {
    std::uint32_t index;          // strip or tile number
    std::uint32_t x0, y0;         // top left pixel
    std::uint32_t width, height;  // as stored (tiles: the full tile)
    std::uint32_t valid_width, valid_height;
    int plane;  // -1: all samples interleaved; else the sample
};

// How many strips or tiles a page's size and layout call for (nullopt when
// absurdly many).
inline std::optional<std::uint64_t> chunk_count(const page_layout& l) {
    const std::uint64_t planes = l.planar == PLANARCONFIG_SEPARATE ? l.samples : 1;
    if (l.tiled) {
        const std::uint64_t across = (std::uint64_t{l.width} + l.tile_width - 1) / l.tile_width;
        const std::uint64_t down = (std::uint64_t{l.height} + l.tile_height - 1) / l.tile_height;
        const std::uint64_t f[] = {planes, across, down};
        return io::checked_product(f, 0xffffffffu);
    }
    const std::uint64_t per_plane = (std::uint64_t{l.height} + l.rows_per_strip - 1) / l.rows_per_strip;
    const std::uint64_t f[] = {planes, per_plane};
    return io::checked_product(f, 0xffffffffu);
}

inline chunk chunk_at(const page_layout& l, std::uint32_t index) {
    const bool separate = l.planar == PLANARCONFIG_SEPARATE && l.samples > 1;
    if (l.tiled) {
        const std::uint64_t across = (std::uint64_t{l.width} + l.tile_width - 1) / l.tile_width;
        const std::uint64_t down = (std::uint64_t{l.height} + l.tile_height - 1) / l.tile_height;
        const std::uint64_t in_plane = index % (across * down);
        const auto x0 = static_cast<std::uint32_t>(in_plane % across * l.tile_width);
        const auto y0 = static_cast<std::uint32_t>(in_plane / across * l.tile_height);
        return {index,
                x0,
                y0,
                l.tile_width,
                l.tile_height,
                std::min(l.tile_width, l.width - x0),
                std::min(l.tile_height, l.height - y0),
                separate ? static_cast<int>(index / (across * down)) : -1};
    }
    const std::uint64_t per_plane = (std::uint64_t{l.height} + l.rows_per_strip - 1) / l.rows_per_strip;
    const auto y0 = static_cast<std::uint32_t>(index % per_plane * l.rows_per_strip);
    const std::uint32_t rows = std::min(l.rows_per_strip, l.height - y0);
    return {index, 0, y0, l.width, rows, l.width, rows, separate ? static_cast<int>(index / per_plane) : -1};
}

// Bytes of decoded samples in a strip or tile; nullopt on overflow.
inline std::optional<std::uint64_t> chunk_bytes(const page_layout& l, const chunk& c) {
    const std::uint64_t f[] = {c.width, c.height, c.plane < 0 ? l.samples : 1u, pixel_type_size(l.type)};
    return io::checked_product(f, std::uint64_t{1} << 62);
}

// Checks a page's strips or tiles against the file: their count, and that
// each one's bytes can decode to what it must hold. Adds the page's stored
// bytes to `stored_total`, which may not exceed the file (pages do not share
// data), so that no header can make the reader allocate more than the file's
// bytes can decode to.
inline void check_chunks(const handle& h, const page_layout& l, std::uint32_t page, std::uint64_t& stored_total,
                         std::uint64_t file_size) {
    TIFF* tif = h.get();
    const std::string where = h.file() + ": page " + std::to_string(page) + ": ";
    const char* kind = l.tiled ? "tile " : "strip ";
    const auto expected = chunk_count(l);
    const std::uint64_t count = l.tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
    if (!expected || count != *expected)
        throw error(where + "has " + std::to_string(count) + " " + (l.tiled ? "tiles" : "strips") +
                    ", its size and layout call for " +
                    (expected ? std::to_string(*expected) : std::string("too many")));
    const std::uint64_t ratio = max_expansion(l.compression);
    for (std::uint32_t i = 0; i < count; ++i) {
        const chunk c = chunk_at(l, i);
        const std::uint64_t stored = TIFFGetStrileByteCount(tif, i);
        const auto decoded = chunk_bytes(l, c);
        if (!decoded) throw error(where + kind + std::to_string(i) + " is too large");
        if (stored == 0 || stored > file_size || *decoded > stored * ratio + 4096)
            throw error(where + kind + std::to_string(i) + " has " + std::to_string(stored) + " stored bytes for " +
                        std::to_string(*decoded) + " bytes of " + compression_name(l.compression) +
                        "-compressed samples (truncated or corrupt)");
        stored_total += stored;
        if (stored_total > file_size)
            throw error(where + "strips and tiles claim more than the " + std::to_string(file_size) +
                        " bytes of the file (truncated or corrupt)");
    }
}

// Decodes page `z` of `depth` into channel-first values C x D x H x W.
inline void read_page(handle& h, const page_layout& l, std::uint32_t z, std::uint64_t depth, std::span<std::byte> out) {
    TIFF* tif = h.get();
    const std::size_t es = pixel_type_size(l.type);
    const std::uint64_t plane = std::uint64_t{l.width} * l.height;
    // check_chunks has bounded the count and the sizes.
    const auto count = static_cast<std::uint32_t>(*chunk_count(l));
    std::uint64_t largest = 0;
    for (std::uint32_t i = 0; i < count; ++i) largest = std::max(largest, *chunk_bytes(l, chunk_at(l, i)));
    std::vector<std::byte> buf(static_cast<std::size_t>(largest));
    for (std::uint32_t i = 0; i < count; ++i) {
        const chunk c = chunk_at(l, i);
        const auto n = static_cast<tmsize_t>(*chunk_bytes(l, c));
        h.clear_errors();
        const tmsize_t got = l.tiled ? TIFFReadEncodedTile(tif, c.index, buf.data(), n)
                                     : TIFFReadEncodedStrip(tif, c.index, buf.data(), n);
        if (got != n || h.has_error())
            h.fail(std::string("cannot decode ") + (l.tiled ? "tile " : "strip ") + std::to_string(c.index), z);
        const std::uint64_t per_pixel = c.plane < 0 ? l.samples : 1;
        for (std::uint32_t r = 0; r < c.valid_height; ++r) {
            const std::byte* row = buf.data() + std::uint64_t{r} * c.width * per_pixel * es;
            const std::uint64_t y = std::uint64_t{c.y0} + r;
            if (per_pixel == 1) {
                const std::uint64_t ch = c.plane < 0 ? 0 : static_cast<std::uint64_t>(c.plane);
                std::memcpy(out.data() + (((ch * depth + z) * plane) + y * l.width + c.x0) * es, row,
                            std::uint64_t{c.valid_width} * es);
            } else {
                for (std::uint64_t ch = 0; ch < per_pixel; ++ch)
                    for (std::uint32_t x = 0; x < c.valid_width; ++x)
                        std::memcpy(out.data() + (((ch * depth + z) * plane) + y * l.width + c.x0 + x) * es,
                                    row + (std::uint64_t{x} * per_pixel + ch) * es, es);
            }
        }
    }
}

// libtiff reads a directory cut short by the end of the file without a word
// (a missing link to the next one reads as "no more pages"); a truncated file
// must not pass for a complete one.
inline void check_directory_in_file(handle& h, std::uint32_t page, std::uint64_t file_size) {
    TIFF* tif = h.get();
    const bool big = TIFFIsBigTIFF(tif) != 0;
    const std::uint64_t offset = TIFFCurrentDirOffset(tif);
    const std::uint64_t count_size = big ? 8 : 2, entry_size = big ? 20 : 12, link_size = big ? 8 : 4;
    std::byte raw[8] = {};
    stream& s = h.io();
    const std::uint64_t saved = s.pos;
    s.pos = offset;
    const auto got = static_cast<std::uint64_t>(read_proc(&s, raw, static_cast<tmsize_t>(count_size)));
    s.pos = saved;
    std::uint64_t entries = 0;
    const bool little = (std::endian::native == std::endian::little) != (TIFFIsByteSwapped(tif) != 0);
    for (std::uint64_t i = 0; i < count_size; ++i) {
        const std::uint64_t b = std::to_integer<std::uint64_t>(raw[little ? i : count_size - 1 - i]);
        entries |= b << (8 * i);
    }
    const std::uint64_t end = offset + count_size + std::min<std::uint64_t>(entries, 1u << 20) * entry_size + link_size;
    if (got != count_size || end > file_size)
        throw error(h.file() + ": page " + std::to_string(page) + ": truncated: its directory at offset " +
                    std::to_string(offset) + " ends at byte " + std::to_string(end) + ", the file has " +
                    std::to_string(file_size));
}

struct scan {
    page_layout first;
    std::uint32_t pages = 0;
};

// Walks every page, checking that they agree and that their data fits the
// file; leaves the handle at the last page.
inline scan scan_pages(handle& h, std::uint64_t file_size) {
    scan s;
    std::uint64_t stored_total = 0;
    for (std::uint32_t page = 0;; ++page) {
        const page_layout l = read_layout(h, page);
        if (page == 0)
            s.first = l;
        else if (!l.same_image(s.first))
            throw error(h.file() + ": page " + std::to_string(page) + " is " + l.text() + ", page 0 is " +
                        s.first.text() + ": the pages of a stack must agree");
        check_chunks(h, l, page, stored_total, file_size);
        check_directory_in_file(h, page, file_size);
        s.pages = page + 1;
        h.clear_errors();
        if (!TIFFReadDirectory(h.get())) {
            if (h.has_error()) h.fail("cannot read the directory after this page", page);
            break;
        }
    }
    return s;
}

inline image_info info_of(const scan& s) {
    image_info info;
    info.channels = s.first.samples;
    info.stored = s.first.type;
    if (s.pages == 1) {
        info.extents = {s.first.height, s.first.width};
        info.geom.spacing = {1.0, 1.0};
    } else {
        info.extents = {s.pages, s.first.height, s.first.width};
        info.geom.spacing = {1.0, 1.0, 1.0};
    }
    return info;
}

inline std::uint64_t alloc_limit(std::uint64_t file_size) { return 2 * file_size + (std::uint64_t{64} << 20); }

inline image_info probe_stream(const std::string& file, stream s) {
    handle h(file, "r", s, alloc_limit(s.size));
    return info_of(scan_pages(h, s.size));
}

inline stored_image decode_stream(const std::string& file, stream s) {
    handle h(file, "r", s, alloc_limit(s.size));
    const scan sc = scan_pages(h, s.size);
    stored_image out;
    out.info = info_of(sc);
    const std::uint64_t total = std::uint64_t{sc.pages} * sc.first.height * sc.first.width * sc.first.samples;
    out.values = io::make_values(sc.first.type, static_cast<std::size_t>(total));
    auto bytes = io::value_bytes(out.values);
    h.clear_errors();
    if (!TIFFSetDirectory(h.get(), 0)) h.fail("cannot return to the first page", 0);
    std::uint64_t stored_total = 0;
    for (std::uint32_t z = 0; z < sc.pages; ++z) {
        h.clear_errors();
        if (z > 0 && !TIFFReadDirectory(h.get())) h.fail("cannot read the directory", z);
        const page_layout l = read_layout(h, z);
        if (!l.same_image(sc.first)) h.fail("changed while reading", z);
        check_chunks(h, l, z, stored_total, s.size);  // again: a file may change under the reader
        read_page(h, l, z, sc.pages, bytes);
    }
    return out;
}

// A file descriptor closed on scope exit.
struct fd_guard {
    int fd;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
};

inline int open_for_reading(const std::filesystem::path& path, std::uint64_t& size) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw error(path.string() + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        const bool dir = S_ISDIR(st.st_mode);
        ::close(fd);
        throw error(path.string() + (dir ? ": is a directory, not a file" : ": is not a regular file"));
    }
    size = static_cast<std::uint64_t>(st.st_size);
    return fd;
}

}  // namespace detail

// From the headers of every page; the samples are not decoded.
inline image_info probe(std::span<const std::byte> bytes, const std::string& file) {
    detail::stream s;
    s.data = bytes.data();
    s.size = bytes.size();
    return detail::probe_stream(file, s);
}

inline stored_image decode(std::span<const std::byte> bytes, const std::string& file) {
    detail::stream s;
    s.data = bytes.data();
    s.size = bytes.size();
    return detail::decode_stream(file, s);
}

// The same, reading the file as libtiff asks for its parts.
inline image_info probe_file(const std::filesystem::path& path) {
    detail::stream s;
    detail::fd_guard g{detail::open_for_reading(path, s.size)};
    s.fd = g.fd;
    return detail::probe_stream(path.string(), s);
}

inline stored_image decode_file(const std::filesystem::path& path) {
    detail::stream s;
    detail::fd_guard g{detail::open_for_reading(path, s.size)};
    s.fd = g.fd;
    return detail::decode_stream(path.string(), s);
}

// The TIFF encoding of a 2D image (one page) or a volume (one page per
// slice), 1 or 3 channels.
inline std::vector<std::byte> encode(const stored_image& s, const std::string& file) {
    const auto& info = s.info;
    if (info.extents.size() != 2 && info.extents.size() != 3)
        throw error(file + ": TIFF stores 2D images and volumes, not extents " + extents_text(info.extents));
    if (info.channels != 1 && info.channels != 3)
        throw error(file + ": TIFF is written with 1 (grey) or 3 (RGB) channels, the image has " +
                    std::to_string(info.channels));
    const bool volume = info.extents.size() == 3;
    const std::uint64_t depth = volume ? info.extents[0] : 1;
    const std::uint64_t height = info.extents[volume ? 1 : 0], width = info.extents[volume ? 2 : 1];
    if (height > 0xffffffffu || width > 0xffffffffu || depth > 0xffffu)
        throw error(file + ": extents " + extents_text(info.extents) + " exceed what TIFF can hold");
    const std::size_t es = pixel_type_size(info.stored);
    const std::uint64_t channels = info.channels;
    const std::uint64_t plane = height * width;
    const auto src = detail::io::value_bytes(s.values);
    const bool big = src.size() > (std::uint64_t{0xf0000000});

    std::uint16_t sample_format = SAMPLEFORMAT_UINT;
    if (info.stored == pixel_type::i16 || info.stored == pixel_type::i32) sample_format = SAMPLEFORMAT_INT;
    if (info.stored == pixel_type::f32 || info.stored == pixel_type::f64) sample_format = SAMPLEFORMAT_IEEEFP;

    std::vector<std::byte> encoded;
    detail::stream st;
    st.out = &encoded;
    detail::handle h(file, big ? "w8" : "w", st, 0);
    TIFF* tif = h.get();
    std::vector<std::byte> page(static_cast<std::size_t>(plane * channels * es));
    for (std::uint64_t z = 0; z < depth; ++z) {
        TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, static_cast<std::uint32_t>(width));
        TIFFSetField(tif, TIFFTAG_IMAGELENGTH, static_cast<std::uint32_t>(height));
        TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, static_cast<std::uint16_t>(channels));
        TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, static_cast<std::uint16_t>(es * 8));
        TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, sample_format);
        TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, channels == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
        TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
        TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_NONE);
        if (volume) {
            TIFFSetField(tif, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
            TIFFSetField(tif, TIFFTAG_PAGENUMBER, static_cast<std::uint16_t>(z), static_cast<std::uint16_t>(depth));
        }
        const std::uint32_t rows_per_strip =
            std::min<std::uint32_t>(TIFFDefaultStripSize(tif, 0), static_cast<std::uint32_t>(height));
        TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rows_per_strip);
        for (std::uint64_t c = 0; c < channels; ++c)
            for (std::uint64_t p = 0; p < plane; ++p)
                std::memcpy(page.data() + (p * channels + c) * es, src.data() + ((c * depth + z) * plane + p) * es, es);
        const std::uint64_t row_bytes = width * channels * es;
        std::uint32_t strip = 0;
        for (std::uint64_t y = 0; y < height; y += rows_per_strip, ++strip) {
            const std::uint64_t rows = std::min<std::uint64_t>(rows_per_strip, height - y);
            if (TIFFWriteEncodedStrip(tif, strip, page.data() + y * row_bytes,
                                      static_cast<tmsize_t>(rows * row_bytes)) < 0)
                h.fail("cannot write strip " + std::to_string(strip), static_cast<std::uint32_t>(z));
        }
        if (!TIFFWriteDirectory(tif)) h.fail("cannot write the directory", static_cast<std::uint32_t>(z));
    }
    h.close();
    return encoded;
}

}  // namespace ctseg::data::tiff_file
