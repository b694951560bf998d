// Reading and writing images and volumes, dispatched on the file name:
//   .png            PNG (png.hpp): 2D, grey or RGB, u8/u16
//   .tif .tiff      TIFF (tiff.hpp): 2D, or a stack of pages as a volume
//   .nii .nii.gz    NIfTI-1 (nifti.hpp): 2D/3D/4D with spacing and affine
//   .npy            NumPy (npy_image.hpp): (H,W), (D,H,W) or (C,D,H,W)
// Extensions are matched without regard to case. Every error is a
// ctseg::error whose one-line message names the file; writes replace the
// target atomically (the file is encoded in memory, then written to a
// temporary next to it and renamed), so a crash never leaves half a file.
// docs/data-io.md describes the formats, layouts and geometry.
#pragma once
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "ctseg/data/image.hpp"
#include "ctseg/data/image_file.hpp"
#include "ctseg/data/nifti.hpp"
#include "ctseg/data/npy_image.hpp"
#include "ctseg/data/png.hpp"
#include "ctseg/data/tiff.hpp"
#include "ctseg/error.hpp"
#include "ctseg/interop/atomic_file.hpp"

namespace ctseg::data {

enum class file_format { png, tiff, nifti, nifti_gz, npy };

inline constexpr std::string_view supported_image_extensions = ".png .tif .tiff .nii .nii.gz .npy";

// The format a file name says, or nullopt.
inline std::optional<file_format> format_of(const std::filesystem::path& path) {
    std::string name = path.filename().string();
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    auto ends = [&](std::string_view ext) { return name.size() > ext.size() && name.ends_with(ext); };
    if (ends(".png")) return file_format::png;
    if (ends(".tif") || ends(".tiff")) return file_format::tiff;
    if (ends(".nii.gz")) return file_format::nifti_gz;
    if (ends(".nii")) return file_format::nifti;
    if (ends(".npy")) return file_format::npy;
    return std::nullopt;
}

// Whether the name has a supported extension (the file is not opened).
inline bool is_image_file(const std::filesystem::path& path) { return format_of(path).has_value(); }

namespace detail::io {

inline file_format require_format(const std::filesystem::path& path) {
    if (auto f = format_of(path)) return *f;
    const std::string ext = path.extension().string();
    throw error(path.string() + ": unknown image file extension" + (ext.empty() ? std::string() : " '" + ext + "'") +
                " (supported: " + std::string(supported_image_extensions) + ")");
}

inline stored_image read_stored(const std::filesystem::path& path, read_purpose purpose) {
    const std::string file = path.string();
    switch (require_format(path)) {
        case file_format::png: return png_file::decode(read_file_bytes(path), file, purpose);
        case file_format::tiff: return tiff_file::decode_file(path);
        case file_format::nifti:
        case file_format::nifti_gz: return nifti_file::decode_file(path);
        case file_format::npy: return npy_file::decode_file(path);
    }
    throw error(file + ": unknown image format");
}

}  // namespace detail::io

// What read_image<T> would return, but for the values: channels, extents,
// stored type, geometry. Reads headers only (except .npy int64 arrays, whose
// values must fit i32).
inline image_info probe_image(const std::filesystem::path& path) {
    const std::string file = path.string();
    switch (detail::io::require_format(path)) {
        case file_format::png: return png_file::probe(detail::io::read_file_bytes(path), file);
        case file_format::tiff: return tiff_file::probe_file(path);
        case file_format::nifti:
        case file_format::nifti_gz: return nifti_file::probe_file(path);
        case file_format::npy: return npy_file::probe_file(path);
    }
    throw error(file + ": unknown image format");
}

// The image with its values converted to T (NIfTI scaling applied). A value T
// cannot hold (an integer T: out of range, fractional, not finite) is an
// error naming the file, the voxel and the value. Values are not normalised:
// a u8 file reads as 0..255 whatever T is.
template <class T>
image<T> read_image(const std::filesystem::path& path) {
    static_assert(detail::io::number_type<T>, "read_image<T>: T must be an integer or floating-point type");
    return detail::io::to_image<T>(detail::io::read_stored(path, read_purpose::intensities), path.string());
}

// A label map: one channel of integers (a palette PNG gives its indices). A
// value that is not an integer is an error naming the file, the first such
// voxel and its value.
inline image<std::int64_t> read_labels(const std::filesystem::path& path) {
    stored_image s = detail::io::read_stored(path, read_purpose::labels);
    if (s.info.channels != 1)
        throw error(path.string() + ": a label image must have 1 channel, it has " + std::to_string(s.info.channels) +
                    " (extents " + extents_text(s.info.extents) + ")");
    return detail::io::to_image<std::int64_t>(std::move(s), path.string(), "label voxel");
}

// Writes `img` with its values stored as `stored`; every value must be exactly
// representable (an error names the file, the voxel and the value). PNG:
// 2D, 1 or 3 channels, u8/u16. TIFF: 2D or 3D (one page per slice), 1 or 3
// channels. NIfTI: 2D or 3D (channels in dim[4]), geometry written. NPY:
// (H,W), (D,H,W) or (C,D,H,W), not u16. Label images are written as u8 or i16.
template <class T>
void write_image(const std::filesystem::path& path, const image<T>& img, pixel_type stored) {
    static_assert(detail::io::number_type<T>, "write_image<T>: T must be an integer or floating-point type");
    const std::string file = path.string();
    const file_format format = detail::io::require_format(path);
    const stored_image s = detail::io::to_stored(img, stored, file);
    switch (format) {
        case file_format::png: interop::write_file_atomically(path, png_file::encode(s, file)); return;
        case file_format::tiff: interop::write_file_atomically(path, tiff_file::encode(s, file)); return;
        case file_format::nifti: interop::write_file_atomically(path, nifti_file::encode(s, file, false)); return;
        case file_format::nifti_gz: interop::write_file_atomically(path, nifti_file::encode(s, file, true)); return;
        case file_format::npy: npy_file::write_file(path, s); return;
    }
}

// The image files of a directory (regular files, or links to them, with a
// supported extension; hidden files skipped), sorted by name. A missing
// directory, or one without image files, is an error.
inline std::vector<std::filesystem::path> list_images(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const auto st = fs::status(dir, ec);
    if (ec || !fs::exists(st)) throw error(dir.string() + ": image directory does not exist");
    if (!fs::is_directory(st)) throw error(dir.string() + ": is not a directory");
    std::vector<fs::path> files;
    fs::directory_iterator it(dir, ec);
    if (ec) throw error(dir.string() + ": cannot list the directory: " + ec.message());
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec) throw error(dir.string() + ": cannot list the directory: " + ec.message());
        const fs::path& p = it->path();
        const std::string name = p.filename().string();
        if (name.empty() || name[0] == '.' || !is_image_file(p)) continue;
        std::error_code fec;
        if (!fs::is_regular_file(fs::status(p, fec))) continue;
        files.push_back(p);
    }
    if (ec) throw error(dir.string() + ": cannot list the directory: " + ec.message());
    if (files.empty())
        throw error(dir.string() + ": holds no image files (supported: " + std::string(supported_image_extensions) +
                    ")");
    std::sort(files.begin(), files.end());
    return files;
}

}  // namespace ctseg::data
