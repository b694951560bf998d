// NIfTI-1 single files (.nii, and gzip-compressed .nii.gz) with niftilib's
// header structure, byte swapping and header conversion, and zlib.
//
// Layout: NIfTI's x is the fastest axis on disk, so the voxels are already
// C-order with extents {ny, nx} (dim[0] = 2) or {nz, ny, nx} (dim[0] = 3, 4);
// a 4D file's dim[4] is the channel axis (slowest). Spacing is |pixdim| in the
// order of the extents. Datatypes: uint8, int16, uint16, int32, float32,
// float64, either byte order. A non-zero finite scl_slope scales the stored
// values (value = stored * slope + inter) as nibabel's get_fdata does.
// The qform and sform (codes, quaternion, offsets, qfac, srow) and the units
// are kept in image.geom and written back, so a mask written from an image
// read keeps its affine.
//
// The whole header is checked before anything is allocated or handed to
// niftilib (magic, sizeof_hdr, dims, datatype and bitpix, vox_offset, data
// size against the file or, compressed, against what the compressed bytes can
// hold): niftilib prints to stderr on bad headers, and its reader cannot tell
// a truncated .nii.gz from a whole one. The data are read from memory here.
// Writing builds the header with niftilib (nifti_make_new_nim,
// nifti_convert_nim2nhdr), compresses in memory for .nii.gz, and leaves the
// atomic write of the file to the caller.
#pragma once
#include <nifti1_io.h>
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ctseg/data/image_file.hpp"
#include "ctseg/error.hpp"
#include "ctseg/interop/atomic_file.hpp"

namespace ctseg::data::nifti_file {

namespace detail {

namespace io = ctseg::data::detail::io;

inline constexpr std::size_t header_size = 348;
inline constexpr std::size_t first_voxel_offset = 352;  // header + 4-byte extension flag

inline void quiet_niftilib() {
    static const bool done = [] {
        nifti_set_debug_level(0);
        return true;
    }();
    (void)done;
}

inline bool is_gzip(std::span<const std::byte> bytes) {
    return bytes.size() >= 2 && bytes[0] == std::byte{0x1f} && bytes[1] == std::byte{0x8b};
}

// The decoded bytes of a file, uncompressed as they are asked for.
class byte_reader {
public:
    byte_reader(std::span<const std::byte> bytes, const std::string& file) : in_(bytes), file_(file) {
        gzip_ = is_gzip(bytes);
        if (gzip_) {
            if (inflateInit2(&zs_, 15 + 16) != Z_OK) throw error(file_ + ": cannot initialise zlib");
            zs_open_ = true;
        }
    }
    byte_reader(const byte_reader&) = delete;
    byte_reader& operator=(const byte_reader&) = delete;
    ~byte_reader() {
        if (zs_open_) inflateEnd(&zs_);
    }

    bool compressed() const noexcept { return gzip_; }

    // Fills up to n bytes; fewer only at the end of the data.
    std::size_t read(std::byte* dst, std::size_t n) {
        if (!gzip_) {
            const std::size_t k = std::min(n, in_.size() - pos_);
            if (k) std::memcpy(dst, in_.data() + pos_, k);
            pos_ += k;
            return k;
        }
        std::size_t done = 0;
        while (done < n && !ended_) {
            if (zs_.avail_in == 0) {
                const std::size_t chunk = std::min<std::size_t>(in_.size() - pos_, UINT_MAX);
                if (chunk == 0) break;  // the compressed data end early
                zs_.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in_.data() + pos_));
                zs_.avail_in = static_cast<uInt>(chunk);
                pos_ += chunk;
            }
            const std::size_t want = std::min<std::size_t>(n - done, UINT_MAX);
            zs_.next_out = reinterpret_cast<Bytef*>(dst + done);
            zs_.avail_out = static_cast<uInt>(want);
            const int rc = inflate(&zs_, Z_NO_FLUSH);
            done += want - zs_.avail_out;
            if (rc == Z_STREAM_END) {
                // gzip allows several members one after another.
                const std::size_t left = zs_.avail_in + (in_.size() - pos_);
                if (left >= 2 && *reinterpret_cast<const unsigned char*>(zs_.next_in) == 0x1f) {
                    if (inflateReset(&zs_) != Z_OK) throw error(file_ + ": cannot reset zlib");
                } else {
                    ended_ = true;
                }
            } else if (rc == Z_BUF_ERROR) {
                if (zs_.avail_in == 0 && pos_ == in_.size()) break;  // truncated: the caller says so
                if (zs_.avail_in != 0) throw error(file_ + ": corrupt gzip data: inflate made no progress");
            } else if (rc != Z_OK) {
                throw error(file_ + ": corrupt gzip data: " +
                            (zs_.msg != nullptr ? zs_.msg : "zlib error " + std::to_string(rc)));
            }
        }
        return done;
    }

    // After the last byte needed: a compressed stream must still end
    // properly (its length and CRC checked), so that a truncated or damaged
    // .nii.gz is not taken for a whole one.
    void finish() {
        if (!gzip_) return;
        std::byte rest[4096];
        while (!ended_) {
            if (read(rest, sizeof rest) == 0 && !ended_)
                throw error(file_ + ": truncated gzip stream (it ends without its trailer)");
        }
    }

private:
    std::span<const std::byte> in_;
    const std::string& file_;
    std::size_t pos_ = 0;
    bool gzip_ = false;
    bool zs_open_ = false;
    bool ended_ = false;
    z_stream zs_{};
};

// A checked header: what it says, in native byte order.
struct header_facts {
    nifti_1_header h{};
    bool swapped = false;
    image_info info;
    std::uint64_t vox_offset = 0;
    std::uint64_t data_bytes = 0;
    std::size_t element_size = 0;
    bool scaled = false;
    double slope = 1, intercept = 0;
};

inline std::int32_t int32_le(const std::byte* p) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::to_integer<std::uint32_t>(p[i]) << (8 * i);
    return static_cast<std::int32_t>(v);
}

inline std::int32_t byte_swapped(std::int32_t v) {
    const auto u = static_cast<std::uint32_t>(v);
    return static_cast<std::int32_t>((u >> 24) | ((u >> 8) & 0xff00u) | ((u << 8) & 0xff0000u) | (u << 24));
}

inline const char* supported_datatypes() { return "uint8, int16, uint16, int32, float32, float64"; }

inline std::optional<pixel_type> pixel_type_of_datatype(int dt) {
    switch (dt) {
        case DT_UINT8: return pixel_type::u8;
        case DT_INT16: return pixel_type::i16;
        case DT_UINT16: return pixel_type::u16;
        case DT_INT32: return pixel_type::i32;
        case DT_FLOAT32: return pixel_type::f32;
        case DT_FLOAT64: return pixel_type::f64;
        default: return std::nullopt;
    }
}

inline int datatype_of(pixel_type t) {
    switch (t) {
        case pixel_type::u8: return DT_UINT8;
        case pixel_type::i16: return DT_INT16;
        case pixel_type::u16: return DT_UINT16;
        case pixel_type::i32: return DT_INT32;
        case pixel_type::f32: return DT_FLOAT32;
        case pixel_type::f64: return DT_FLOAT64;
    }
    return DT_UNKNOWN;
}

inline header_facts check_header(const std::byte* raw, std::size_t available, const std::string& file,
                                 bool compressed) {
    if (available < header_size)
        throw error(file + (compressed ? ": truncated: the compressed data end after " : ": ") +
                    std::to_string(available) + " bytes, before the end of the 348-byte NIfTI-1 header" +
                    (compressed ? "" : " (truncated, or not a NIfTI file)"));
    header_facts f;
    const std::int32_t sizeof_hdr = int32_le(raw);
    if (sizeof_hdr == 540 || byte_swapped(sizeof_hdr) == 540)
        throw error(file + ": NIfTI-2 files are not supported (sizeof_hdr 540), only NIfTI-1");
    if (sizeof_hdr != 348) {
        if (byte_swapped(sizeof_hdr) != 348)
            throw error(file + ": not a NIfTI-1 file: sizeof_hdr is " + std::to_string(sizeof_hdr) + ", expected 348");
        f.swapped = true;
    }
    std::memcpy(&f.h, raw, header_size);
    if (f.swapped) swap_nifti_header(&f.h, 1);
    const nifti_1_header& h = f.h;
    if (std::memcmp(h.magic, "ni1", 4) == 0)
        throw error(file + ": header/image pairs (magic 'ni1', .hdr + .img) are not supported, only single .nii files");
    if (std::memcmp(h.magic, "n+1", 4) != 0)
        throw error(file + ": not a NIfTI-1 file: magic is not 'n+1' (an ANALYZE 7.5 header?)");

    const int rank = h.dim[0];
    if (rank < 2 || rank > 4)
        throw error(file + ": dim[0] is " + std::to_string(rank) +
                    ": supported are 2D and 3D images and 4D images with channels in dim[4]");
    std::vector<std::uint64_t> dims;
    for (int i = 1; i <= rank; ++i) {
        if (h.dim[i] <= 0)
            throw error(file + ": dim[" + std::to_string(i) + "] is " + std::to_string(h.dim[i]) +
                        ", must be positive");
        dims.push_back(static_cast<std::uint64_t>(h.dim[i]));
    }
    const auto type = pixel_type_of_datatype(h.datatype);
    if (!type)
        throw error(file + ": datatype " + std::to_string(h.datatype) + " (" + nifti_datatype_string(h.datatype) +
                    ") is not supported (supported: " + supported_datatypes() + ")");
    f.element_size = pixel_type_size(*type);
    if (h.bitpix != static_cast<int>(8 * f.element_size))
        throw error(file + ": bitpix is " + std::to_string(h.bitpix) + ", datatype " +
                    nifti_datatype_string(h.datatype) + " has " + std::to_string(8 * f.element_size) + " bits");
    const double vox = h.vox_offset;
    if (!std::isfinite(vox) || vox < static_cast<double>(first_voxel_offset) || vox != std::floor(vox) || vox > 0x1p52)
        throw error(file + ": vox_offset is " + io::value_text(vox) + ", must be a whole number of at least 352");
    f.vox_offset = static_cast<std::uint64_t>(vox);
    dims.push_back(f.element_size);
    const auto bytes = io::checked_product(dims, std::uint64_t{1} << 62);
    if (!bytes) {
        std::string d;
        for (int i = 1; i <= rank; ++i) d += (i > 1 ? "x" : "") + std::to_string(h.dim[i]);
        throw error(file + ": dims " + d + " describe more data than can be addressed");
    }
    f.data_bytes = *bytes;

    // Extents slowest first: (channels) z y x.
    image_info& info = f.info;
    info.stored = *type;
    info.channels = rank == 4 ? static_cast<std::size_t>(h.dim[4]) : 1;
    const int spatial = rank == 2 ? 2 : 3;
    for (int i = spatial; i >= 1; --i) {
        info.extents.push_back(static_cast<std::size_t>(h.dim[i]));
        const double s = std::fabs(static_cast<double>(h.pixdim[i]));
        if (!std::isfinite(s) || s == 0)
            throw error(file + ": pixdim[" + std::to_string(i) + "] is " + io::value_text(h.pixdim[i]) +
                        ", not a voxel size");
        info.geom.spacing.push_back(s);
    }
    geometry& g = info.geom;
    g.qform_code = h.qform_code;
    g.sform_code = h.sform_code;
    g.quatern = {h.quatern_b, h.quatern_c, h.quatern_d, h.qoffset_x, h.qoffset_y, h.qoffset_z};
    g.qfac = h.pixdim[0] < 0 ? -1.0 : 1.0;
    for (int j = 0; j < 4; ++j) {
        g.srow[0][static_cast<std::size_t>(j)] = h.srow_x[j];
        g.srow[1][static_cast<std::size_t>(j)] = h.srow_y[j];
        g.srow[2][static_cast<std::size_t>(j)] = h.srow_z[j];
    }
    g.xyzt_units = static_cast<unsigned char>(h.xyzt_units);

    if (std::isfinite(h.scl_slope) && h.scl_slope != 0) {
        f.slope = h.scl_slope;
        f.intercept = std::isfinite(h.scl_inter) ? h.scl_inter : 0.0;
        f.scaled = !(f.slope == 1 && f.intercept == 0);
    }
    return f;
}

// An uncompressed file must hold the header's data.
inline void check_file_size(const header_facts& f, std::uint64_t size, const std::string& file) {
    const std::uint64_t needed = f.vox_offset + f.data_bytes;
    if (needed > size)
        throw error(file + ": truncated: the file has " + std::to_string(size) + " bytes, the header needs " +
                    std::to_string(needed) + " (vox_offset " + std::to_string(f.vox_offset) + " + " +
                    std::to_string(f.data_bytes) + " data bytes)");
}

inline header_facts read_header(byte_reader& r, std::span<const std::byte> bytes, const std::string& file) {
    std::byte raw[header_size];
    const std::size_t got = r.read(raw, header_size);
    header_facts f = check_header(raw, got, file, r.compressed());
    const std::uint64_t needed = f.vox_offset + f.data_bytes;
    if (!r.compressed()) check_file_size(f, bytes.size(), file);
    if (r.compressed() && needed / io::deflate_max_ratio > bytes.size() + 1024)
        throw error(file + ": truncated or corrupt: the header needs " + std::to_string(needed) +
                    " decompressed bytes, more than the " + std::to_string(bytes.size()) +
                    " compressed bytes of the file can hold");
    return f;
}

// The stored image of a checked header: fill(bytes) reads its data bytes as
// the file holds them; they are then put in host byte order.
template <class Fill>
stored_image stored_from(const header_facts& f, Fill&& fill) {
    stored_image out;
    out.info = f.info;
    out.values = io::make_values(out.info.stored, static_cast<std::size_t>(f.data_bytes / f.element_size));
    auto dst = io::value_bytes(out.values);
    fill(dst);
    if (f.swapped && f.element_size > 1)
        nifti_swap_Nbytes(dst.size() / f.element_size, static_cast<int>(f.element_size), dst.data());
    out.scaled = f.scaled;
    out.slope = f.slope;
    out.intercept = f.intercept;
    return out;
}

// The checked header of an uncompressed file, read in place; nothing for a
// gzip-compressed one (read whole and decompressed instead).
inline std::optional<header_facts> plain_file_header(interop::input_file& in) {
    std::byte raw[header_size];
    const std::size_t got = static_cast<std::size_t>(std::min<std::uint64_t>(in.size(), header_size));
    in.read_at(0, std::span(raw, got));
    if (is_gzip(std::span<const std::byte>(raw, got))) return std::nullopt;
    header_facts f = check_header(raw, got, in.name(), false);
    check_file_size(f, in.size(), in.name());
    return f;
}

}  // namespace detail

inline image_info probe(std::span<const std::byte> bytes, const std::string& file) {
    detail::quiet_niftilib();
    detail::byte_reader r(bytes, file);
    return detail::read_header(r, bytes, file).info;
}

inline stored_image decode(std::span<const std::byte> bytes, const std::string& file) {
    detail::quiet_niftilib();
    detail::byte_reader r(bytes, file);
    detail::header_facts f = detail::read_header(r, bytes, file);
    // Skip the extensions up to vox_offset.
    std::vector<std::byte> skip(
        static_cast<std::size_t>(std::min<std::uint64_t>(f.vox_offset - detail::header_size, 1 << 16)));
    for (std::uint64_t left = f.vox_offset - detail::header_size; left > 0;) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, skip.size()));
        if (r.read(skip.data(), n) != n)
            throw error(file + ": truncated: the data end before vox_offset " + std::to_string(f.vox_offset));
        left -= n;
    }
    return detail::stored_from(f, [&](std::span<std::byte> dst) {
        const std::size_t got = r.read(dst.data(), dst.size());
        if (got != dst.size())
            throw error(file + ": truncated: " + std::to_string(got) + " of " + std::to_string(dst.size()) + " data bytes" +
                        (r.compressed() ? " after decompression" : "") + " (header: vox_offset " +
                        std::to_string(f.vox_offset) + ", dims " + extents_text(f.info.extents) + ")");
        r.finish();
    });
}

// The same from a file: an uncompressed one is read in place (header, then
// the data straight into the values), a compressed one from memory.
inline image_info probe_file(const std::filesystem::path& path) {
    detail::quiet_niftilib();
    interop::input_file in(path);
    const auto f = detail::plain_file_header(in);
    if (!f) return probe(ctseg::data::detail::io::read_file_bytes(path), in.name());
    return f->info;
}

inline stored_image decode_file(const std::filesystem::path& path) {
    detail::quiet_niftilib();
    interop::input_file in(path);
    const auto f = detail::plain_file_header(in);
    if (!f) return decode(ctseg::data::detail::io::read_file_bytes(path), in.name());
    return detail::stored_from(*f, [&](std::span<std::byte> dst) { in.read_at(f->vox_offset, dst); });
}

// The NIfTI-1 encoding (single file, vox_offset 352, little-endian), gzip
// compressed when `compress`.
inline std::vector<std::byte> encode(const stored_image& s, const std::string& file, bool compress) {
    detail::quiet_niftilib();
    const auto& info = s.info;
    const std::size_t rank = info.extents.size();
    if (rank != 2 && rank != 3)
        throw error(file + ": NIfTI is written for 2D and 3D images, not extents " + extents_text(info.extents));
    if (rank == 2 && info.channels != 1)
        throw error(file + ": NIfTI keeps channels in dim[4] of a volume; a 2D image must have 1 channel, it has " +
                    std::to_string(info.channels));
    for (auto e : info.extents)
        if (e > 32767)
            throw error(file + ": extents " + extents_text(info.extents) + " exceed NIfTI-1's 32767 per axis");
    if (info.channels > 32767)
        throw error(file + ": " + std::to_string(info.channels) + " channels exceed NIfTI-1's 32767");
    const auto& spacing = info.geom.spacing;
    if (!spacing.empty() && spacing.size() != rank)
        throw error(file + ": geometry has " + std::to_string(spacing.size()) + " spacings for " +
                    std::to_string(rank) + " axes");
    for (double sp : spacing)
        if (!std::isfinite(sp) || sp <= 0)
            throw error(file + ": spacing " + detail::io::value_text(sp) + " is not a voxel size");

    int dims[8] = {0, 1, 1, 1, 1, 1, 1, 1};
    dims[0] = rank == 2 ? 2 : (info.channels > 1 ? 4 : 3);
    for (std::size_t a = 0; a < rank; ++a) dims[rank - a] = static_cast<int>(info.extents[a]);
    if (info.channels > 1) dims[4] = static_cast<int>(info.channels);
    nifti_image* nim = nifti_make_new_nim(dims, detail::datatype_of(info.stored), 0);
    if (nim == nullptr) throw error(file + ": niftilib cannot make a header for extents " + extents_text(info.extents));
    for (std::size_t a = 0; a < rank; ++a)
        nim->pixdim[rank - a] = spacing.empty() ? 1.0f : static_cast<float>(spacing[a]);
    nim->dx = nim->pixdim[1];
    nim->dy = nim->pixdim[2];
    nim->dz = nim->pixdim[3];
    const geometry& g = info.geom;
    nim->qform_code = g.qform_code;
    nim->quatern_b = static_cast<float>(g.quatern[0]);
    nim->quatern_c = static_cast<float>(g.quatern[1]);
    nim->quatern_d = static_cast<float>(g.quatern[2]);
    nim->qoffset_x = static_cast<float>(g.quatern[3]);
    nim->qoffset_y = static_cast<float>(g.quatern[4]);
    nim->qoffset_z = static_cast<float>(g.quatern[5]);
    nim->qfac = g.qfac < 0 ? -1.0f : 1.0f;
    nim->sform_code = g.sform_code;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 4; ++j)
            nim->sto_xyz.m[i][j] = static_cast<float>(g.srow[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]);
    nim->xyz_units = XYZT_TO_SPACE(g.xyzt_units);
    nim->time_units = XYZT_TO_TIME(g.xyzt_units);
    nim->scl_slope = 0;  // values are stored unscaled
    nim->scl_inter = 0;
    nim->iname_offset = static_cast<int>(detail::first_voxel_offset);
    nifti_1_header h = nifti_convert_nim2nhdr(nim);
    nifti_image_free(nim);
    h.pixdim[0] = g.qfac < 0 ? -1.0f : 1.0f;
    for (int i = h.dim[0] + 1; i < 8; ++i) h.pixdim[i] = 1.0f;  // nibabel warns about 0 in pixdim[1..3]

    const auto data = detail::io::value_bytes(s.values);
    std::vector<std::byte> plain(detail::first_voxel_offset + data.size());
    std::memcpy(plain.data(), &h, detail::header_size);  // the 4 bytes after it stay 0: no extensions
    if (!data.empty()) std::memcpy(plain.data() + detail::first_voxel_offset, data.data(), data.size());
    if (!compress) return plain;

    struct deflater {
        z_stream zs{};
        bool open = false;
        ~deflater() {
            if (open) deflateEnd(&zs);
        }
    } d;
    z_stream& zs = d.zs;
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw error(file + ": cannot initialise zlib");
    d.open = true;
    std::vector<std::byte> out(deflateBound(&zs, static_cast<uLong>(std::min<std::size_t>(plain.size(), ULONG_MAX))) +
                               64);
    std::size_t in_pos = 0, out_pos = 0;
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        if (zs.avail_in == 0 && in_pos < plain.size()) {
            const std::size_t chunk = std::min<std::size_t>(plain.size() - in_pos, UINT_MAX);
            zs.next_in = reinterpret_cast<Bytef*>(plain.data() + in_pos);
            zs.avail_in = static_cast<uInt>(chunk);
            in_pos += chunk;
        }
        if (out_pos == out.size()) out.resize(out.size() * 2);
        const std::size_t room = std::min<std::size_t>(out.size() - out_pos, UINT_MAX);
        zs.next_out = reinterpret_cast<Bytef*>(out.data() + out_pos);
        zs.avail_out = static_cast<uInt>(room);
        rc = deflate(&zs, in_pos == plain.size() && zs.avail_in == 0 ? Z_FINISH : Z_NO_FLUSH);
        out_pos += room - zs.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            throw error(file + ": cannot compress: zlib error " + std::to_string(rc));
    }
    out.resize(out_pos);
    return out;
}

}  // namespace ctseg::data::nifti_file
