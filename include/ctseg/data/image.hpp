// A dense image or volume in memory, the common currency of the data layer.
//
// Values are C-order channels x extents, slowest axis first: a 2D image is
// C x H x W, a volume C x D x H x W (NIfTI's x, the fastest axis on disk, is
// the last extent). This is exactly one sample of the network layout (NCHW /
// NCDHW), so an image feeds a network without copying.
//
// `geometry` says where the voxels lie in the world. PNG and TIFF carry none
// (spacing 1, no affine); NIfTI carries spacing and its qform/sform, which are
// kept on read and written back on masks derived from the image.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "ctseg/error.hpp"

namespace ctseg::data {

struct geometry {
    // Voxel size per spatial axis, in the order of `extents` (slowest first).
    std::vector<double> spacing;
    // NIfTI orientation, verbatim: codes 0 mean "absent".
    int qform_code = 0, sform_code = 0;
    std::array<double, 6> quatern{};                 // b, c, d, qoffset_x, qoffset_y, qoffset_z
    double qfac = 1;                                 // pixdim[0]: handedness of the qform
    std::array<std::array<double, 4>, 3> srow{};     // sform rows (x, y, z)
    int xyzt_units = 0;                              // NIfTI units byte
};

template <class T>
struct image {
    std::size_t channels = 1;
    std::vector<std::size_t> extents;  // spatial extents, slowest first (H W or D H W)
    std::vector<T> values;             // channels x extents, C-order
    geometry geom;

    image() = default;
    image(std::size_t c, std::vector<std::size_t> ext, T fill = T{})
        : channels(c), extents(std::move(ext)), values(c * voxels_of(extents), fill) {}

    static std::size_t voxels_of(const std::vector<std::size_t>& ext) {
        return std::accumulate(ext.begin(), ext.end(), std::size_t{1}, std::multiplies<>{});
    }
    std::size_t rank() const noexcept { return extents.size(); }
    std::size_t voxels() const noexcept { return voxels_of(extents); }  // per channel
    std::size_t size() const noexcept { return values.size(); }
    T* channel(std::size_t c) noexcept { return values.data() + c * voxels(); }
    const T* channel(std::size_t c) const noexcept { return values.data() + c * voxels(); }
};

// Same spatial layout and geometry as `like`, `c` channels of U.
template <class U, class T>
image<U> image_like(const image<T>& like, std::size_t c = 1, U fill = U{}) {
    image<U> r(c, like.extents, fill);
    r.geom = like.geom;
    return r;
}

inline std::string extents_text(const std::vector<std::size_t>& ext) {
    std::string s;
    for (std::size_t i = 0; i < ext.size(); ++i) s += (i ? "x" : "") + std::to_string(ext[i]);
    return s.empty() ? "(scalar)" : s;
}

}  // namespace ctseg::data
