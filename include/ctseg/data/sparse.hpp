// Sparse annotation as in the 3D U-Net paper: a volume is labelled on a few
// slices only, every other voxel carries an ignore label, and the loss skips
// ignored voxels (train::loss_options::ignore_index / trainer_options::
// ignore_index). These helpers turn a dense label image into such a sparse one
// (to train or to study how many slices are needed) and report which voxels
// are annotated.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ctseg/data/image.hpp"
#include "ctseg/error.hpp"

namespace ctseg::data {

// Chosen slices along one axis (an index into extents, slowest first).
struct slice_set {
    std::size_t axis = 0;
    std::vector<std::size_t> indices;
};

// Slices offset, offset + k, offset + 2k, ... below `extent`.
inline std::vector<std::size_t> every_kth_slice(std::size_t extent, std::size_t k, std::size_t offset = 0) {
    if (k == 0) throw error("every_kth_slice: k = 0, expected >= 1");
    if (offset >= extent)
        throw error("every_kth_slice: offset " + std::to_string(offset) + " outside an axis of " + std::to_string(extent) +
                    " slices");
    std::vector<std::size_t> out;
    for (std::size_t i = offset; i < extent; i += k) out.push_back(i);
    return out;
}

// `labels` kept on the voxels that lie on any chosen slice of any set (the
// paper annotates slices in all three orthogonal directions), `ignore`
// everywhere else, in every channel. Labels equal to `ignore` on kept slices
// stay ignored. Geometry is kept.
inline image<std::int64_t> sparse_labels(const image<std::int64_t>& labels, std::span<const slice_set> sets,
                                         std::int64_t ignore = -1) {
    const std::size_t R = labels.rank(), V = labels.voxels();
    if (labels.values.size() != labels.channels * V)
        throw error("sparse_labels: " + std::to_string(labels.values.size()) + " values for " +
                    std::to_string(labels.channels) + " x " + extents_text(labels.extents));
    // keep[a][i]: slice i of axis a is annotated.
    std::vector<std::vector<std::uint8_t>> keep(R);
    for (const auto& s : sets) {
        if (s.axis >= R)
            throw error("sparse_labels: axis " + std::to_string(s.axis) + " for extents " + extents_text(labels.extents));
        keep[s.axis].resize(labels.extents[s.axis]);
        for (auto i : s.indices) {
            if (i >= labels.extents[s.axis])
                throw error("sparse_labels: slice " + std::to_string(i) + " along axis " + std::to_string(s.axis) +
                            " of extent " + std::to_string(labels.extents[s.axis]));
            keep[s.axis][i] = 1;
        }
    }
    image<std::int64_t> out = labels;
    std::vector<std::size_t> p(R);
    for (std::size_t v = 0; v < V; ++v) {
        std::size_t rest = v;
        bool kept = false;
        for (std::size_t a = R; a-- > 0;) {
            p[a] = rest % labels.extents[a];
            rest /= labels.extents[a];
            kept = kept || (!keep[a].empty() && keep[a][p[a]]);
        }
        if (!kept)
            for (std::size_t c = 0; c < labels.channels; ++c) out.values[c * V + v] = ignore;
    }
    return out;
}

// One axis: keep `indices` along `axis`.
inline image<std::int64_t> sparse_labels(const image<std::int64_t>& labels, std::size_t axis,
                                         std::vector<std::size_t> indices, std::int64_t ignore = -1) {
    const slice_set s{axis, std::move(indices)};
    return sparse_labels(labels, std::span<const slice_set>(&s, 1), ignore);
}

// 1 where a label is annotated (differs from `ignore`), 0 elsewhere; same
// channels, extents and geometry.
inline image<std::uint8_t> annotated_mask(const image<std::int64_t>& labels, std::int64_t ignore = -1) {
    image<std::uint8_t> m = image_like<std::uint8_t>(labels, labels.channels);
    if (labels.values.size() != m.values.size())
        throw error("annotated_mask: " + std::to_string(labels.values.size()) + " values for " +
                    std::to_string(labels.channels) + " x " + extents_text(labels.extents));
    for (std::size_t i = 0; i < m.values.size(); ++i) m.values[i] = labels.values[i] != ignore;
    return m;
}

}  // namespace ctseg::data
