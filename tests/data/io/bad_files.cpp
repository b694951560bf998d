// Corrupt, truncated and unsupported files: every reader must answer with a
// one-line ctseg::error naming the file (or, for damage that leaves a valid
// file, a clean success), never a crash. Also the variants the library does
// not write but reads: PNG palettes, alpha, low bit depths and interlacing
// (built here byte by byte or with libpng), TIFF codecs, predictors, tiles
// and planes (written here with libtiff).
#define BOOST_TEST_MODULE data io bad files
#include <png.h>
#include <tiffio.h>
#include <zlib.h>

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ctseg/data/io.hpp"
#include "io_test_util.hpp"

using namespace ctseg::data;
using io_test::error_or_success;
using io_test::expect_error;
using io_test::pattern_image;
using io_test::read_bytes;
using io_test::temp_dir;
using io_test::write_bytes;

namespace {

namespace fs = std::filesystem;

struct sample {
    std::string name;
    std::vector<std::byte> bytes;
    std::size_t magic_size;  // leading bytes that identify the format
};

// Valid files of every format, written by the library.
std::vector<sample> samples(const temp_dir& d) {
    std::vector<sample> r;
    auto add = [&](const std::string& name, const auto& img, pixel_type t, std::size_t magic) {
        write_image(d / name, img, t);
        r.push_back({name, read_bytes(d / name), magic});
    };
    add("grey.png", pattern_image<std::uint8_t>(1, {20, 30}), pixel_type::u8, 8);
    add("rgb16.png", pattern_image<std::uint16_t>(3, {9, 7}), pixel_type::u16, 8);
    add("stack.tif", pattern_image<std::uint16_t>(1, {3, 10, 12}), pixel_type::u16, 4);
    add("rgb.tif", pattern_image<std::uint8_t>(3, {6, 5}), pixel_type::u8, 4);
    add("vol.nii", pattern_image<std::int16_t>(1, {3, 4, 5}), pixel_type::i16, 4);
    add("vol.nii.gz", pattern_image<float>(1, {4, 5, 6}), pixel_type::f32, 2);
    add("channels.nii.gz", pattern_image<std::uint8_t>(2, {3, 3, 3}), pixel_type::u8, 2);
    add("vol.npy", pattern_image<float>(1, {3, 4, 5}), pixel_type::f32, 6);
    return r;
}

// Every read of the file must throw a ctseg::error naming it.
void expect_unreadable(const fs::path& p) {
    const std::string file = p.string();
    BOOST_TEST_CONTEXT(p.filename().string()) {
        expect_error([&] { read_image<float>(p); }, {file});
        expect_error([&] { read_labels(p); }, {file});
        error_or_success([&] { probe_image(p); }, file);
    }
}

// Reads the file every way; each may throw a ctseg::error naming it.
void read_every_way(const fs::path& p) {
    const std::string file = p.string();
    error_or_success([&] { probe_image(p); }, file);
    error_or_success([&] { read_image<float>(p); }, file);
    error_or_success([&] { read_image<std::uint8_t>(p); }, file);
    error_or_success([&] { read_labels(p); }, file);
}

// --- PNG files built by hand -------------------------------------------------

void put_be32(std::vector<std::byte>& out, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::byte>((v >> s) & 0xff));
}

void put_chunk(std::vector<std::byte>& out, const char* type, const std::vector<std::uint8_t>& data) {
    put_be32(out, static_cast<std::uint32_t>(data.size()));
    std::vector<std::uint8_t> typed(type, type + 4);
    typed.insert(typed.end(), data.begin(), data.end());
    for (auto b : typed) out.push_back(static_cast<std::byte>(b));
    put_be32(out, static_cast<std::uint32_t>(crc32(0, typed.data(), static_cast<uInt>(typed.size()))));
}

struct png_parts {
    std::uint32_t width, height;
    int bit_depth, color_type;
    std::vector<std::uint8_t> rows;  // filter byte 0 + packed big-endian samples, per row
    std::vector<std::uint8_t> palette, trns;
};

std::vector<std::byte> build_png(const png_parts& p) {
    std::vector<std::byte> out;
    for (int b : {0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a}) out.push_back(static_cast<std::byte>(b));
    std::vector<std::uint8_t> ihdr;
    for (auto v : {p.width, p.height})
        for (int s = 24; s >= 0; s -= 8) ihdr.push_back(static_cast<std::uint8_t>((v >> s) & 0xff));
    ihdr.insert(ihdr.end(), {static_cast<std::uint8_t>(p.bit_depth), static_cast<std::uint8_t>(p.color_type), 0, 0, 0});
    put_chunk(out, "IHDR", ihdr);
    if (!p.palette.empty()) put_chunk(out, "PLTE", p.palette);
    if (!p.trns.empty()) put_chunk(out, "tRNS", p.trns);
    uLongf size = compressBound(static_cast<uLong>(p.rows.size()));
    std::vector<std::uint8_t> z(size);
    compress(z.data(), &size, p.rows.data(), static_cast<uLong>(p.rows.size()));
    z.resize(size);
    put_chunk(out, "IDAT", z);
    put_chunk(out, "IEND", {});
    return out;
}

// An Adam7-interlaced PNG through libpng's writer (the library writes none).
bool encode_interlaced(png_structp png, png_infop info, png_uint_32 w, png_uint_32 h, int color_type, png_bytepp rows) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_set_IHDR(png, info, w, h, 8, color_type, PNG_INTERLACE_ADAM7, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, nullptr);
    return true;
}

void write_interlaced_png(const fs::path& p, std::uint32_t w, std::uint32_t h, int color_type,
                          std::vector<std::uint8_t>& pixels) {
    const std::size_t channels = color_type == PNG_COLOR_TYPE_RGB ? 3 : 1;
    std::vector<png_bytep> rows(h);
    for (std::size_t y = 0; y < h; ++y) rows[y] = pixels.data() + y * w * channels;
    std::FILE* f = std::fopen(p.c_str(), "wb");
    BOOST_TEST_REQUIRE(f != nullptr);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    const bool ok = encode_interlaced(png, info, w, h, color_type, rows.data());
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
    BOOST_TEST_REQUIRE(ok);
}

// --- TIFF directory patching (classic little-endian TIFF, as written here) ---

struct tiff_entry {
    std::size_t at;  // offset of the 12-byte entry
    std::uint16_t tag, type;
};

std::uint32_t le(const std::vector<std::byte>& b, std::size_t at, int n) {
    std::uint32_t v = 0;
    for (int i = 0; i < n; ++i) v |= std::to_integer<std::uint32_t>(b[at + static_cast<std::size_t>(i)]) << (8 * i);
    return v;
}

std::vector<std::vector<tiff_entry>> tiff_directories(const std::vector<std::byte>& b) {
    std::vector<std::vector<tiff_entry>> dirs;
    for (std::uint32_t off = le(b, 4, 4); off != 0;) {
        const std::uint32_t n = le(b, off, 2);
        std::vector<tiff_entry> es;
        for (std::uint32_t i = 0; i < n; ++i) {
            const std::size_t at = off + 2 + 12 * i;
            es.push_back({at, static_cast<std::uint16_t>(le(b, at, 2)), static_cast<std::uint16_t>(le(b, at + 2, 2))});
        }
        dirs.push_back(es);
        off = le(b, off + 2 + 12 * n, 4);
    }
    return dirs;
}

void set_tiff_value(std::vector<std::byte>& b, std::size_t page, std::uint16_t tag, std::uint32_t value) {
    const auto dirs = tiff_directories(b);
    for (const auto& e : dirs.at(page)) {
        if (e.tag != tag) continue;
        const int n = e.type == 3 ? 2 : 4;  // SHORT or LONG
        for (int i = 0; i < n; ++i)
            b[e.at + 8 + static_cast<std::size_t>(i)] = static_cast<std::byte>((value >> (8 * i)) & 0xff);
        return;
    }
    throw std::runtime_error("tag " + std::to_string(tag) + " not in page " + std::to_string(page));
}

template <class V>
void patch(std::vector<std::byte>& b, std::size_t at, V v) {
    std::memcpy(b.data() + at, &v, sizeof v);
}

}  // namespace

BOOST_AUTO_TEST_CASE(truncated_files_are_errors) {
    temp_dir d;
    const auto files = samples(d);
    fs::create_directory(d / "cut");
    for (const auto& s : files) {
        std::vector<std::size_t> lengths = {0, 1, 2, 5, 7, 8, 12, 16, 33, 60, 100, 200, 347, 348, 351, 352, 360};
        for (std::size_t k = 1; k < 8; ++k) lengths.push_back(s.bytes.size() * k / 8);
        for (std::size_t k = 1; k <= 4; ++k) lengths.push_back(s.bytes.size() - k);
        for (std::size_t len : lengths) {
            if (len >= s.bytes.size()) continue;
            const fs::path p = d / "cut" / s.name;
            write_bytes(p, {s.bytes.begin(), s.bytes.begin() + static_cast<std::ptrdiff_t>(len)});
            BOOST_TEST_CONTEXT("cut to " << len << " of " << s.bytes.size() << " bytes") { expect_unreadable(p); }
        }
    }
}

BOOST_AUTO_TEST_CASE(flipped_bytes_never_crash) {
    temp_dir d;
    fs::create_directory(d / "flip");
    for (const auto& s : samples(d)) {
        const fs::path p = d / "flip" / s.name;
        const std::size_t header = std::min<std::size_t>(s.bytes.size(), 400);
        for (std::size_t at = 0; at < header; ++at) {
            for (std::uint8_t mask : {0xff, 0x01, 0x80}) {
                auto b = s.bytes;
                b[at] ^= static_cast<std::byte>(mask);
                write_bytes(p, b);
                BOOST_TEST_CONTEXT("byte " << at << " ^ " << int(mask)) {
                    if (at < s.magic_size)
                        expect_unreadable(p);
                    else
                        read_every_way(p);
                }
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(wrong_content_empty_missing_directory) {
    temp_dir d;
    const auto files = samples(d);
    const std::vector<std::string> exts = {".png", ".tif", ".tiff", ".nii", ".nii.gz", ".npy"};
    fs::create_directory(d / "odd");
    for (const auto& ext : exts) {
        BOOST_TEST_CONTEXT(ext) {
            // Another format's bytes under this name.
            for (const auto& s : files) {
                if (format_of(s.name) == format_of("x" + ext)) continue;
                if (format_of(s.name) == file_format::nifti_gz && ext == ".nii") continue;  // read by content
                if (format_of(s.name) == file_format::nifti && ext == ".nii.gz") continue;
                const fs::path p = d / "odd" / ("from_" + s.name + ext);
                write_bytes(p, s.bytes);
                expect_unreadable(p);
            }
            const fs::path text = d / "odd" / ("text" + ext);
            const std::string hello =
                "hello, this is not an image at all, just some text of sufficient length..."
                "................................................................................"
                "................................................................................"
                "................................................................................"
                "................................................................................";
            std::vector<std::byte> tb(hello.size());
            std::memcpy(tb.data(), hello.data(), hello.size());
            write_bytes(text, tb);
            expect_unreadable(text);
            const fs::path empty = d / "odd" / ("empty" + ext);
            write_bytes(empty, {});
            expect_unreadable(empty);
            const fs::path dir = d / "odd" / ("folder" + ext);
            fs::create_directory(dir);
            expect_error([&] { read_image<float>(dir); }, {dir.string(), "directory"});
            expect_error([&] { probe_image(dir); }, {dir.string(), "directory"});
            const fs::path missing = d / "odd" / ("missing" + ext);
            expect_error([&] { read_image<float>(missing); }, {missing.string(), "No such file"});
            expect_error([&] { probe_image(missing); }, {missing.string(), "No such file"});
            expect_error([&] { read_labels(missing); }, {missing.string()});
        }
    }
}

BOOST_AUTO_TEST_CASE(nifti_header_checks) {
    temp_dir d;
    write_image(d / "v.nii", pattern_image<std::int16_t>(1, {3, 4, 5}), pixel_type::i16);
    const auto good = read_bytes(d / "v.nii");
    struct bad_case {
        const char* what;
        std::function<void(std::vector<std::byte>&)> change;
        const char* message;
    };
    const std::vector<bad_case> cases = {
        {"complex datatype", [](auto& b) { patch<std::int16_t>(b, 70, 32); },
         "datatype 32 (COMPLEX64) is not supported"},
        {"RGB datatype", [](auto& b) { patch<std::int16_t>(b, 70, 128); }, "datatype 128"},
        {"int8 datatype", [](auto& b) { patch<std::int16_t>(b, 70, 256); }, "not supported (supported: uint8, int16"},
        {"NIfTI-2", [](auto& b) { patch<std::int32_t>(b, 0, 540); }, "NIfTI-2"},
        {"sizeof_hdr", [](auto& b) { patch<std::int32_t>(b, 0, 349); }, "sizeof_hdr is 349"},
        {"pair magic", [](auto& b) { std::memcpy(b.data() + 344, "ni1", 4); }, "'ni1'"},
        {"bad magic", [](auto& b) { std::memcpy(b.data() + 344, "xyz", 4); }, "magic is not 'n+1'"},
        {"5D", [](auto& b) { patch<std::int16_t>(b, 40, 5); }, "dim[0] is 5"},
        {"1D", [](auto& b) { patch<std::int16_t>(b, 40, 1); }, "dim[0] is 1"},
        {"zero dim", [](auto& b) { patch<std::int16_t>(b, 44, 0); }, "dim[2] is 0"},
        {"negative dim", [](auto& b) { patch<std::int16_t>(b, 42, -3); }, "dim[1] is -3"},
        {"bitpix", [](auto& b) { patch<std::int16_t>(b, 72, 8); }, "bitpix is 8"},
        {"vox_offset 0", [](auto& b) { patch<float>(b, 108, 0.0f); }, "vox_offset is 0"},
        {"vox_offset fraction", [](auto& b) { patch<float>(b, 108, 352.5f); }, "vox_offset is 352.5"},
        {"vox_offset past end", [](auto& b) { patch<float>(b, 108, 1000.0f); }, "truncated"},
        {"zero spacing", [](auto& b) { patch<float>(b, 80, 0.0f); }, "pixdim[1] is 0"},
        {"nan spacing", [](auto& b) { patch<float>(b, 84, std::nanf("")); }, "pixdim[2] is nan"},
        {"huge dims",
         [](auto& b) {
             for (int i = 0; i < 3; ++i) patch<std::int16_t>(b, 42 + 2 * static_cast<std::size_t>(i), 32767);
         },
         "truncated"},
        {"short data", [](auto& b) { b.resize(b.size() - 2); }, "truncated"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.what) {
            auto b = good;
            c.change(b);
            write_bytes(d / "bad.nii", b);
            expect_error([&] { read_image<float>(d / "bad.nii"); }, {"bad.nii", c.message});
        }
    }
    // A 4D file with dim[4] = 2 reads as 2 channels: a 3D file of 60 values
    // relabelled as 2 x (3 x 2 x 5).
    auto b = good;
    patch<std::int16_t>(b, 40, 4);
    patch<std::int16_t>(b, 44, 2);
    patch<std::int16_t>(b, 48, 2);
    write_bytes(d / "four.nii", b);
    const auto four = read_image<std::int16_t>(d / "four.nii");
    BOOST_TEST(four.channels == 2u);
    BOOST_TEST(four.extents == (std::vector<std::size_t>{3, 2, 5}));
    BOOST_TEST(four.values == pattern_image<std::int16_t>(1, {3, 4, 5}).values);
    // Trailing bytes after the data are ignored, as by niftilib and nibabel.
    b = good;
    b.resize(b.size() + 7);
    write_bytes(d / "long.nii", b);
    BOOST_TEST(read_image<std::int16_t>(d / "long.nii").values == pattern_image<std::int16_t>(1, {3, 4, 5}).values);
}

BOOST_AUTO_TEST_CASE(nifti_gzip_damage) {
    temp_dir d;
    write_image(d / "v.nii.gz", pattern_image<std::uint8_t>(1, {8, 8, 8}), pixel_type::u8);
    const auto good = read_bytes(d / "v.nii.gz");
    auto b = good;
    b[b.size() - 6] ^= std::byte{0x55};  // the CRC
    write_bytes(d / "crc.nii.gz", b);
    expect_error([&] { read_image<float>(d / "crc.nii.gz"); }, {"crc.nii.gz", "corrupt gzip data"});
    b = good;
    b[b.size() / 2] ^= std::byte{0xff};
    write_bytes(d / "mid.nii.gz", b);
    expect_error([&] { read_image<float>(d / "mid.nii.gz"); }, {"mid.nii.gz"});
    // Two gzip members one after the other are one stream.
    image<std::uint8_t> a(1, {2, 2, 2});
    write_image(d / "a.nii", a, pixel_type::u8);
    const auto plain = read_bytes(d / "a.nii");
    std::vector<std::byte> two;
    for (std::size_t part = 0; part < 2; ++part) {
        const std::size_t from = part == 0 ? 0 : 300, to = part == 0 ? 300 : plain.size();
        z_stream zs{};
        deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
        std::vector<std::uint8_t> out(1000);
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(plain.data() + from));
        zs.avail_in = static_cast<uInt>(to - from);
        zs.next_out = out.data();
        zs.avail_out = static_cast<uInt>(out.size());
        deflate(&zs, Z_FINISH);
        for (std::size_t i = 0; i < out.size() - zs.avail_out; ++i) two.push_back(static_cast<std::byte>(out[i]));
        deflateEnd(&zs);
    }
    write_bytes(d / "two.nii.gz", two);
    BOOST_TEST(read_image<std::uint8_t>(d / "two.nii.gz").values == a.values);
}

BOOST_AUTO_TEST_CASE(tiff_unsupported_variants) {
    temp_dir d;
    write_image(d / "g.tif", pattern_image<std::uint8_t>(1, {3, 6, 5}), pixel_type::u8);
    const auto good = read_bytes(d / "g.tif");
    BOOST_TEST(tiff_directories(good).size() == 3u);
    struct bad_case {
        const char* what;
        std::size_t page;
        std::uint16_t tag;
        std::uint32_t value;
        const char* message;
    };
    const std::vector<bad_case> cases = {
        {"MinIsWhite", 0, 262, 0, "page 0: inverted grey"},
        {"CMYK", 0, 262, 5, "PhotometricInterpretation 5"},
        {"JPEG", 1, 259, 7, "page 1: compression JPEG is not supported"},
        {"unknown compression", 0, 259, 12345, "compression 12345 is not supported"},
        {"8-bit float", 0, 339, 3, "8-bit float samples"},
        {"signed bytes", 0, 339, 2, "8-bit signed samples"},
        {"12 bits", 1, 258, 12, "page 1: has 12-bit unsigned samples"},
        {"wider page", 1, 256, 6, "page 1 is 6x6 u8 (1 sample per pixel), page 0 is 6x5 u8 (1 sample per pixel)"},
        {"two samples", 0, 277, 2, "has 2 samples per pixel"},
        {"zero rows per strip", 0, 278, 0, "Bad value 0 for \"RowsPerStrip\""},
        {"strip past the end", 2, 273, 100000, "page 2: cannot decode strip 0"},
        {"LZW on raw data", 0, 259, 5, "page 0: cannot decode strip 0"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.what) {
            auto b = good;
            set_tiff_value(b, c.page, c.tag, c.value);
            write_bytes(d / "bad.tif", b);
            expect_error([&] { read_image<float>(d / "bad.tif"); }, {"bad.tif", c.message});
        }
    }
    // A loop of directories.
    auto b = good;
    const auto dirs = tiff_directories(good);
    const std::size_t last_link = dirs[2].back().at + 12;
    const std::uint32_t first = le(good, 4, 4);
    for (int i = 0; i < 4; ++i)
        b[last_link + static_cast<std::size_t>(i)] = static_cast<std::byte>((first >> (8 * i)) & 0xff);
    write_bytes(d / "loop.tif", b);
    // libtiff stops at the loop: each page is read once, or it is an error.
    const bool threw = error_or_success(
        [&] {
            const auto img = read_image<std::uint8_t>(d / "loop.tif");
            BOOST_TEST(img.values == pattern_image<std::uint8_t>(1, {3, 6, 5}).values);
        },
        (d / "loop.tif").string());
    BOOST_TEST_MESSAGE("directory loop: " << (threw ? "error" : "read once"));
}

BOOST_AUTO_TEST_CASE(png_variants_built_by_hand) {
    temp_dir d;
    auto save = [&](const std::string& name, const png_parts& p) {
        write_bytes(d / name, build_png(p));
        return d / name;
    };
    // Grey + alpha, fully opaque: the alpha is dropped.
    {
        const auto p = save("ga.png", {3, 1, 8, 4, {0, 10, 255, 20, 255, 30, 255}, {}, {}});
        const auto img = read_image<std::uint8_t>(p);
        BOOST_TEST(img.channels == 1u);
        BOOST_TEST(img.values == (std::vector<std::uint8_t>{10, 20, 30}));
        BOOST_TEST(probe_image(p).channels == 1u);
    }
    // One transparent pixel: an error naming it.
    {
        const auto p = save("ga_t.png", {3, 1, 8, 4, {0, 10, 255, 20, 0, 30, 255}, {}, {}});
        expect_error([&] { read_image<float>(p); }, {"ga_t.png", "(y, x) = (0, 1)", "alpha 0 of 255", "transparency"});
    }
    // RGBA 16-bit, opaque.
    {
        const auto p = save(
            "rgba16.png", {2, 1, 16, 6, {0, 1, 2, 3, 4, 5, 6, 255, 255, 0xff, 0xfe, 0, 0, 0x80, 0, 255, 255}, {}, {}});
        const auto img = read_image<std::uint16_t>(p);
        BOOST_TEST(img.channels == 3u);
        BOOST_TEST(img.values == (std::vector<std::uint16_t>{0x0102, 0xfffe, 0x0304, 0, 0x0506, 0x8000}));
        BOOST_TEST(pixel_type_name(probe_image(p).stored) == "u16");
    }
    // A 2-bit palette: colours for intensities, indices for labels.
    {
        const png_parts parts{
            4, 2, 2, 3, {0, 0b00011011, 0, 0b10100100}, {10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42}, {}};
        const auto p = save("pal.png", parts);
        const auto img = read_image<std::uint8_t>(p);
        BOOST_TEST(img.channels == 3u);
        BOOST_TEST(img.values == (std::vector<std::uint8_t>{10, 20, 30, 40, 30, 30, 20, 10, 11, 21, 31, 41,
                                                            31, 31, 21, 11, 12, 22, 32, 42, 32, 32, 22, 12}));
        BOOST_TEST(probe_image(p).channels == 3u);
        const auto labels = read_labels(p);
        BOOST_TEST(labels.channels == 1u);
        BOOST_TEST(labels.values == (std::vector<std::int64_t>{0, 1, 2, 3, 2, 2, 1, 0}));
        // tRNS is ignored.
        auto with_trns = parts;
        with_trns.trns = {0, 128};
        const auto pt = save("pal_trns.png", with_trns);
        BOOST_TEST(read_image<std::uint8_t>(pt).values == img.values);
        BOOST_TEST(read_labels(pt).values == labels.values);
    }
    // 1- and 4-bit grey: unpacked, not scaled.
    {
        const auto p1 = save("bits1.png", {10, 1, 1, 0, {0, 0b10110000, 0b01000000}, {}, {}});
        BOOST_TEST(read_labels(p1).values == (std::vector<std::int64_t>{1, 0, 1, 1, 0, 0, 0, 0, 0, 1}));
        const auto p4 = save("bits4.png", {3, 1, 4, 0, {0, 0x0f, 0x70}, {}, {}});
        BOOST_TEST(read_image<float>(p4).values == (std::vector<float>{0, 15, 7}));
        BOOST_TEST(pixel_type_name(probe_image(p4).stored) == "u8");
    }
    // 16-bit grey is big-endian in the file.
    {
        const auto p = save("g16.png", {2, 1, 16, 0, {0, 0x12, 0x34, 0xff, 0x00}, {}, {}});
        BOOST_TEST(read_image<std::uint16_t>(p).values == (std::vector<std::uint16_t>{0x1234, 0xff00}));
    }
    // Adam7 interlacing, grey and RGB.
    for (int color_type : {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_RGB}) {
        const std::size_t channels = color_type == PNG_COLOR_TYPE_RGB ? 3 : 1;
        const std::uint32_t w = 13, h = 11;
        std::vector<std::uint8_t> pixels(w * h * channels);
        for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 37 + 5);
        const auto p = d / ("interlaced" + std::to_string(channels) + ".png");
        write_interlaced_png(p, w, h, color_type, pixels);
        const auto img = read_image<std::uint8_t>(p);
        BOOST_TEST(img.channels == channels);
        BOOST_TEST(img.extents == (std::vector<std::size_t>{h, w}));
        std::vector<std::uint8_t> planes(pixels.size());
        for (std::size_t c = 0; c < channels; ++c)
            for (std::size_t q = 0; q < w * h; ++q) planes[c * w * h + q] = pixels[q * channels + c];
        BOOST_TEST(img.values == planes);
    }
    // Damage libpng detects.
    {
        auto b = build_png({2, 2, 8, 0, {0, 1, 2, 0, 3, 4}, {}, {}});
        auto crc = b;
        crc[29] ^= std::byte{1};  // the IHDR CRC
        write_bytes(d / "crc.png", crc);
        expect_error([&] { read_image<float>(d / "crc.png"); }, {"crc.png", "invalid PNG", "CRC"});
        auto no_end = b;
        no_end.resize(no_end.size() - 12);
        write_bytes(d / "noend.png", no_end);
        expect_error([&] { read_image<float>(d / "noend.png"); }, {"noend.png", "invalid PNG"});
        write_bytes(d / "short_rows.png", build_png({2, 3, 8, 0, {0, 1, 2, 0, 3, 4}, {}, {}}));
        expect_error([&] { read_image<float>(d / "short_rows.png"); }, {"short_rows.png", "invalid PNG"});
        write_bytes(d / "badtype.png", build_png({2, 1, 8, 5, {0, 1, 2}, {}, {}}));
        expect_error([&] { read_image<float>(d / "badtype.png"); }, {"badtype.png", "invalid PNG"});
        // A header promising 100000 x 100000 pixels in a few bytes.
        write_bytes(d / "huge.png", build_png({100000, 100000, 8, 0, {0, 1}, {}, {}}));
        expect_error([&] { read_image<float>(d / "huge.png"); }, {"huge.png", "cannot be held"});
        BOOST_TEST(probe_image(d / "huge.png").extents == (std::vector<std::size_t>{100000, 100000}));
    }
}

// TIFF codecs, predictors, tiles and planes through libtiff's own writer
// (the library writes uncompressed strips only): each file reads back to the
// values written.
struct tiff_variant {
    const char* name;
    std::uint16_t compression, predictor, planar;
    bool tiled;
};

template <class T>
void write_tiff_variant(const fs::path& p, const tiff_variant& v, std::uint32_t pages, std::uint32_t height,
                        std::uint32_t width, std::uint16_t samples, const std::vector<T>& planes) {
    TIFF* tif = TIFFOpen(p.c_str(), "w");
    BOOST_TEST_REQUIRE(tif != nullptr);
    const std::uint16_t format = std::is_floating_point_v<T> ? SAMPLEFORMAT_IEEEFP
                                 : std::is_signed_v<T>       ? SAMPLEFORMAT_INT
                                                             : SAMPLEFORMAT_UINT;
    const std::size_t plane = std::size_t{height} * width;
    for (std::uint32_t z = 0; z < pages; ++z) {
        TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, width);
        TIFFSetField(tif, TIFFTAG_IMAGELENGTH, height);
        TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, samples);
        TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, static_cast<std::uint16_t>(8 * sizeof(T)));
        TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, format);
        TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, samples == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
        TIFFSetField(tif, TIFFTAG_PLANARCONFIG, v.planar);
        TIFFSetField(tif, TIFFTAG_COMPRESSION, v.compression);
        if (v.predictor != 1) TIFFSetField(tif, TIFFTAG_PREDICTOR, v.predictor);
        // The samples of page z as the file lays them out.
        const bool separate = v.planar == PLANARCONFIG_SEPARATE;
        auto sample = [&](std::size_t c, std::size_t y, std::size_t x) {
            return planes[(c * pages + z) * plane + y * width + x];
        };
        if (v.tiled) {
            const std::uint32_t tw = 16, th = 16;
            TIFFSetField(tif, TIFFTAG_TILEWIDTH, tw);
            TIFFSetField(tif, TIFFTAG_TILELENGTH, th);
            std::vector<T> tile(std::size_t{tw} * th * (separate ? 1 : samples));
            for (std::uint16_t c = 0; c < (separate ? samples : 1); ++c)
                for (std::uint32_t y0 = 0; y0 < height; y0 += th)
                    for (std::uint32_t x0 = 0; x0 < width; x0 += tw) {
                        std::fill(tile.begin(), tile.end(), T{});
                        for (std::uint32_t y = y0; y < std::min(height, y0 + th); ++y)
                            for (std::uint32_t x = x0; x < std::min(width, x0 + tw); ++x)
                                for (std::uint16_t k = 0; k < (separate ? 1 : samples); ++k)
                                    tile[((y - y0) * tw + (x - x0)) * (separate ? 1 : samples) + k] =
                                        sample(separate ? c : k, y, x);
                        BOOST_TEST_REQUIRE(TIFFWriteTile(tif, tile.data(), x0, y0, 0, c) >= 0);
                    }
        } else {
            TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 3u);
            std::vector<T> row(std::size_t{width} * (separate ? 1 : samples));
            for (std::uint16_t c = 0; c < (separate ? samples : 1); ++c)
                for (std::uint32_t y = 0; y < height; ++y) {
                    for (std::uint32_t x = 0; x < width; ++x)
                        for (std::uint16_t k = 0; k < (separate ? 1 : samples); ++k)
                            row[x * (separate ? 1 : samples) + k] = sample(separate ? c : k, y, x);
                    BOOST_TEST_REQUIRE(TIFFWriteScanline(tif, row.data(), y, c) >= 0);
                }
        }
        BOOST_TEST_REQUIRE(TIFFWriteDirectory(tif) != 0);
    }
    TIFFClose(tif);
}

BOOST_AUTO_TEST_CASE(tiff_variants_written_by_libtiff) {
    temp_dir d;
    const std::vector<tiff_variant> variants = {
        {"lzw", COMPRESSION_LZW, 1, PLANARCONFIG_CONTIG, false},
        {"lzw_predictor", COMPRESSION_LZW, 2, PLANARCONFIG_CONTIG, false},
        {"packbits_tiled", COMPRESSION_PACKBITS, 1, PLANARCONFIG_CONTIG, true},
        {"deflate_tiled_planar", COMPRESSION_ADOBE_DEFLATE, 2, PLANARCONFIG_SEPARATE, true},
        {"zstd", COMPRESSION_ZSTD, 1, PLANARCONFIG_SEPARATE, false},
        {"lzma_tiled", COMPRESSION_LZMA, 1, PLANARCONFIG_CONTIG, true},
        {"none_planar", COMPRESSION_NONE, 1, PLANARCONFIG_SEPARATE, false},
    };
    auto check = [&](auto tag, std::uint16_t samples, std::uint32_t pages, const tiff_variant& v) {
        using T = decltype(tag);
        if (!TIFFIsCODECConfigured(v.compression)) {
            BOOST_TEST_MESSAGE("libtiff lacks the codec of " << v.name << ": skipped");
            return;
        }
        const std::uint32_t height = 21, width = 35;
        const std::vector<std::size_t> extents =
            pages > 1 ? std::vector<std::size_t>{pages, height, width} : std::vector<std::size_t>{height, width};
        const auto want = pattern_image<T>(samples, extents);
        const fs::path p = d / (std::string(v.name) + "_" + std::to_string(samples) + "_" + std::to_string(pages) + "_" +
                                std::to_string(sizeof(T)) + ".tif");
        write_tiff_variant(p, v, pages, height, width, samples, want.values);
        BOOST_TEST_CONTEXT(p.filename().string()) {
            const auto got = read_image<T>(p);
            BOOST_TEST(got.channels == std::size_t{samples});
            BOOST_TEST(got.extents == extents);
            BOOST_TEST((got.values == want.values));
        }
    };
    for (const auto& v : variants) {
        check(std::uint8_t{}, 1, 3, v);
        check(std::uint8_t{}, 3, 1, v);
        check(std::uint16_t{}, 3, 2, v);
        check(std::int16_t{}, 1, 1, v);
        check(std::int32_t{}, 1, 2, v);
        if (v.predictor != 2) check(float{}, 1, 2, v);  // horizontal differencing is for integers
    }
}

// Inputs the fuzzers found or kept (tests/data/fuzz/regressions/<format>/),
// each under its format's extension.
BOOST_AUTO_TEST_CASE(fuzz_regressions) {
    const char* root = std::getenv("CTSEG_FUZZ_REGRESSIONS");
    BOOST_TEST_REQUIRE(root != nullptr, "CTSEG_FUZZ_REGRESSIONS is not set");
    BOOST_TEST_REQUIRE(fs::is_directory(root), root << " is not a directory");
    temp_dir d;
    const std::vector<std::pair<std::string, std::string>> formats = {
        {"png", ".png"}, {"tiff", ".tif"}, {"nifti", ".nii.gz"}, {"npy", ".npy"}};
    std::size_t count = 0;
    for (const auto& [dir, ext] : formats) {
        const fs::path sub = fs::path(root) / dir;
        BOOST_TEST_REQUIRE(fs::is_directory(sub), sub << " is missing");
        std::size_t here = 0;
        for (const auto& e : fs::directory_iterator(sub)) {
            if (!e.is_regular_file() || e.path().filename().string().starts_with(".")) continue;
            const fs::path p = d / ("case" + ext);
            fs::copy_file(e.path(), p, fs::copy_options::overwrite_existing);
            BOOST_TEST_CONTEXT(e.path().string()) { read_every_way(p); }
            ++here;
        }
        BOOST_TEST(here > 0u, "no regression inputs in " << sub);
        count += here;
    }
    BOOST_TEST_MESSAGE(count << " regression inputs read");
}
