// Overlap-tile inference: a network bound to a fixed tile segments an image or
// volume of any size.
//
// The output tile (extent S' per axis) is laid on a grid covering the image;
// the input tile (extent S) is centred on it, reaching (S - S') / 2 voxels
// beyond it on each side, and what lies outside the image is mirrored (the
// edge voxel is not repeated). Each tile's logits become softmax
// probabilities, weighted by an importance map (a Gaussian centred on the
// tile, or uniform) and summed; the result is the weighted mean per voxel.
// Tile origins are multiples of the network's pooling stride, so that every
// tile sees the pooling grid the whole image would: for networks built from
// valid convolutions, pooling and centre-cropped skips (the paper U-Net) the
// tiled result then equals one pass over the whole mirrored image.
// docs/inference.md describes the options with the numbers of the paper U-Net.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "ctseg/data/image.hpp"
#include "ctseg/error.hpp"
#include "ctseg/model/network.hpp"

namespace ctseg::data {

struct tile_options {
    // Overlap of neighbouring output tiles, as a fraction of the output tile, in
    // [0, 1). The step between tiles is rounded down to the alignment (at least
    // one alignment), so the overlap may come out larger than asked.
    double overlap = 0.5;
    // Blending weights: a Gaussian centred on the output tile (true) or uniform.
    bool gaussian = true;
    // Standard deviation of the Gaussian per axis, as a fraction of the output tile.
    double sigma_fraction = 0.125;
    // Floor of the importance map, relative to its peak of 1, in (0, 1]: keeps
    // every voxel's total weight positive where only tile corners reach it.
    double min_weight = 1e-3;
    // Test-time mirroring: average over every combination of flips of the
    // spatial axes (4 runs in 2D, 8 in 3D), each flipped back.
    bool mirror = false;
    // Tiles (times flips) per call of network::forward.
    std::size_t batch = 1;
    // Tile origins are multiples of this many voxels on every axis; 0 takes the
    // network's pooling stride per axis (network_alignment), 1 places the last
    // tile exactly flush with the image border. An alignment larger than the
    // output tile is ignored (1) on that axis: gapless coverage comes first.
    std::size_t alignment = 0;
    // Called with (tiles done, tiles in all) after each forward call that completes tiles.
    std::function<void(std::size_t, std::size_t)> progress;
};

// Index into [0, n) of position i on an axis extended by mirroring about the
// first and last voxel, which are not repeated: ... 2 1 | 0 1 2 ... n-1 | n-2 ...
// Positions further out than n - 1 reflect again, so any i maps into the axis.
inline std::size_t mirror_index(std::ptrdiff_t i, std::size_t n) {
    if (n == 0) throw error("mirror_index: an axis of extent 0 has no voxel to mirror");
    if (n == 1) return 0;
    const auto period = std::ptrdiff_t(2 * (n - 1));
    std::ptrdiff_t r = i % period;
    if (r < 0) r += period;
    return std::size_t(r < std::ptrdiff_t(n) ? r : period - r);
}

// Origins of the output tiles along one axis of `extent` voxels: 0, step,
// 2 step, ..., with step = tile * (1 - overlap) rounded down to a multiple of
// `alignment` (at least `alignment`); the last origin is the first multiple of
// `alignment` at or after extent - tile, so the last tile is flush with the
// border or overhangs it by less than `alignment` voxels. One origin (0) when
// the tile covers the axis.
inline std::vector<std::size_t> tile_origins(std::size_t extent, std::size_t tile, double overlap,
                                             std::size_t alignment = 1) {
    if (tile == 0) throw error("tile_origins: output tile extent is 0");
    if (!(overlap >= 0 && overlap < 1))
        throw error("tile_options: overlap must be in [0, 1), got " + std::to_string(overlap));
    if (alignment == 0 || alignment > tile) alignment = 1;
    if (extent <= tile) return {0};
    std::size_t step = std::size_t(std::floor(double(tile) * (1 - overlap)));
    step = std::max(alignment, step / alignment * alignment);
    const std::size_t last = (extent - tile + alignment - 1) / alignment * alignment;
    std::vector<std::size_t> origins;
    for (std::size_t o = 0; o < last; o += step) origins.push_back(o);
    origins.push_back(last);
    return origins;
}

// Blending weights of one output tile (C-order over `tile`): the product over
// axes of exp(-(j - c)^2 / (2 sigma^2)), c = (S' - 1) / 2, sigma = sigma_fraction S',
// scaled to a maximum of 1, then raised to at least min_weight; all 1 when
// options.gaussian is false.
inline std::vector<double> importance_map(const std::vector<std::size_t>& tile, const tile_options& options = {}) {
    if (!(options.sigma_fraction > 0) || !std::isfinite(options.sigma_fraction))
        throw error("tile_options: sigma_fraction must be positive, got " + std::to_string(options.sigma_fraction));
    if (!(options.min_weight > 0 && options.min_weight <= 1))
        throw error("tile_options: min_weight must be in (0, 1], got " + std::to_string(options.min_weight));
    std::size_t total = 1;
    for (auto e : tile) total *= e;
    std::vector<double> w(total, 1.0);
    if (!options.gaussian) return w;
    std::size_t inner = total;
    for (std::size_t a = 0; a < tile.size(); ++a) {
        const std::size_t n = tile[a];
        inner /= n;
        std::vector<double> g(n);
        const double c = (double(n) - 1) / 2, sigma = options.sigma_fraction * double(n);
        double peak = 0;
        for (std::size_t j = 0; j < n; ++j) peak = std::max(peak, g[j] = std::exp(-(double(j) - c) * (double(j) - c) / (2 * sigma * sigma)));
        for (std::size_t k = 0; k < total; ++k) w[k] *= g[(k / inner) % n] / peak;
    }
    for (auto& x : w) x = std::max(x, options.min_weight);
    return w;
}

// The image extended by mirroring (mirror_index): `before[a]` voxels ahead of
// axis a and `after[a]` behind it. The spacing is kept; the NIfTI orientation
// is dropped, the origin having moved.
template <class T>
image<T> mirror_pad(const image<T>& input, const std::vector<std::size_t>& before, const std::vector<std::size_t>& after) {
    const std::size_t R = input.rank();
    if (before.size() != R || after.size() != R)
        throw error("mirror_pad: " + std::to_string(before.size()) + " and " + std::to_string(after.size()) +
                    " padding extents for an image of rank " + std::to_string(R));
    if (input.values.size() != input.channels * input.voxels())
        throw error("mirror_pad: image holds " + std::to_string(input.values.size()) + " values, " +
                    std::to_string(input.channels) + " channels of " + extents_text(input.extents) + " need " +
                    std::to_string(input.channels * input.voxels()));
    std::vector<std::size_t> ext(R);
    for (std::size_t a = 0; a < R; ++a) {
        if (input.extents[a] == 0) throw error("mirror_pad: image extents " + extents_text(input.extents) + " contain 0");
        ext[a] = input.extents[a] + before[a] + after[a];
    }
    image<T> out(input.channels, ext);
    out.geom.spacing = input.geom.spacing;
    const std::size_t V = out.voxels();
    std::vector<std::size_t> stride(R, 1);
    for (std::size_t a = R; a-- > 1;) stride[a - 1] = stride[a] * input.extents[a];
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, V, 4096), [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t v = r.begin(); v != r.end(); ++v) {
            std::size_t rest = v, src = 0;
            for (std::size_t a = R; a-- > 0;) {
                const std::size_t i = rest % ext[a];
                rest /= ext[a];
                src += mirror_index(std::ptrdiff_t(i) - std::ptrdiff_t(before[a]), input.extents[a]) * stride[a];
            }
            for (std::size_t c = 0; c < input.channels; ++c) out.channel(c)[v] = input.channel(c)[src];
        }
    });
    return out;
}

// What overlap-tile inference needs to know of a bound network.
template <class Bound>
struct tile_geometry {
    static constexpr std::size_t rank = Bound::rank;
    static constexpr std::size_t input_channels = Bound::input_shape::channels;
    static constexpr std::size_t classes = Bound::output_shape::channels;
    static constexpr bool same_rank = Bound::output_shape::rank == rank;
    // Input tile S and output tile S' per axis.
    static constexpr std::array<std::size_t, rank> input = Bound::input_shape::spatial;
    static constexpr std::array<std::size_t, rank> output = [] {
        std::array<std::size_t, rank> r{};
        if constexpr (same_rank)
            for (std::size_t a = 0; a < rank; ++a) r[a] = Bound::output_shape::spatial[a];
        return r;
    }();
    // Output voxels one input voxel apart (no net down- or up-sampling).
    static constexpr bool unit_stride = [] {
        const auto& out = Bound::lowered.values[std::size_t(Bound::lowered.output)];
        for (std::size_t a = 0; a < rank; ++a)
            if (out.jump[a] != 1.0) return false;
        return true;
    }();
    // (S - S') / 2 per axis, when S' <= S and S - S' is even.
    static constexpr bool centred = [] {
        for (std::size_t a = 0; a < rank; ++a)
            if (output[a] > input[a] || (input[a] - output[a]) % 2 != 0) return false;
        return true;
    }();
    static constexpr std::array<std::size_t, rank> margin = [] {
        std::array<std::size_t, rank> r{};
        for (std::size_t a = 0; a < rank; ++a) r[a] = output[a] <= input[a] ? (input[a] - output[a]) / 2 : 0;
        return r;
    }();
    // The network's pooling stride per axis: the largest distance, in input
    // voxels, between neighbouring elements of any of its tensors.
    static constexpr std::array<std::size_t, rank> alignment = [] {
        std::array<std::size_t, rank> r{};
        const auto& g = Bound::lowered;
        for (std::size_t a = 0; a < rank; ++a) {
            double j = 1;
            for (std::size_t v = 0; v < g.n_values; ++v) j = std::max(j, g.values[v].jump[a]);
            r[a] = std::size_t(j + 0.5);
        }
        return r;
    }();
};

namespace detail::tiling {

inline std::string numbers(const auto& a) {
    std::string s;
    for (std::size_t i = 0; i < a.size(); ++i) s += (i ? "x" : "") + std::to_string(a[i]);
    return s;
}

template <class Bound, class T>
void check_input(const image<T>& input, const tile_options& options, const char* what) {
    using geo = tile_geometry<Bound>;
    if (!geo::same_rank)
        throw error(std::string(what) + ": network output rank " + std::to_string(Bound::output_shape::rank) +
                    " differs from its input rank " + std::to_string(geo::rank));
    if (!geo::unit_stride)
        throw error(std::string(what) + ": network output is not on the input voxel grid (output stride is not 1)");
    if (!geo::centred)
        throw error(std::string(what) + ": output tile " + numbers(geo::output) + " cannot be centred in input tile " +
                    numbers(geo::input) + " (S - S' must be even and non-negative on every axis)");
    if (input.rank() != geo::rank)
        throw error(std::string(what) + ": image of rank " + std::to_string(input.rank()) + " (" +
                    extents_text(input.extents) + ") for a network of rank " + std::to_string(geo::rank));
    if (input.channels != geo::input_channels)
        throw error(std::string(what) + ": image has " + std::to_string(input.channels) + " channels, the network expects " +
                    std::to_string(geo::input_channels));
    for (auto e : input.extents)
        if (e == 0) throw error(std::string(what) + ": image extents " + extents_text(input.extents) + " contain 0");
    if (input.values.size() != input.channels * input.voxels())
        throw error(std::string(what) + ": image holds " + std::to_string(input.values.size()) + " values, " +
                    std::to_string(input.channels) + " channels of " + extents_text(input.extents) + " need " +
                    std::to_string(input.channels * input.voxels()));
    if (options.batch == 0) throw error(std::string(what) + ": tile_options batch must be at least 1, got 0");
}

}  // namespace detail::tiling

// Class probabilities of `input` (C x extents, C the network's input channels,
// rank the network's): channels = the network's output channels, extents and
// geometry those of the input.
template <class Bound, class T>
image<T> predict_tiled(const network<Bound, T>& net, const image<T>& input, const tile_options& options = {}) {
    using geo = tile_geometry<Bound>;
    detail::tiling::check_input<Bound>(input, options, "predict_tiled");
    constexpr std::size_t R = geo::rank, C = geo::input_channels, K = geo::classes;
    // Work on three axes, leading ones of extent 1 for lower ranks.
    constexpr std::size_t lead = 3 - R;
    std::array<std::size_t, 3> N{1, 1, 1}, S{1, 1, 1}, So{1, 1, 1}, m{0, 0, 0};
    std::array<std::vector<std::size_t>, 3> origins{std::vector<std::size_t>{0}, std::vector<std::size_t>{0},
                                                    std::vector<std::size_t>{0}};
    for (std::size_t a = 0; a < R; ++a) {
        N[lead + a] = input.extents[a];
        S[lead + a] = geo::input[a];
        So[lead + a] = geo::output[a];
        m[lead + a] = geo::margin[a];
        origins[lead + a] = tile_origins(input.extents[a], geo::output[a], options.overlap,
                                         options.alignment ? options.alignment : geo::alignment[a]);
    }
    const std::vector<std::size_t> out_tile(geo::output.begin(), geo::output.end());
    const std::vector<double> weights = importance_map(out_tile, options);

    const std::size_t V = input.voxels(), flips = options.mirror ? std::size_t(1) << R : 1;
    const std::size_t tiles = origins[0].size() * origins[1].size() * origins[2].size(), items = tiles * flips;
    const std::size_t in_plane = S[0] * S[1] * S[2], out_plane = So[0] * So[1] * So[2];
    const std::size_t batch = std::min(options.batch, items);

    image<T> result = image_like<T>(input, K, T(0));
    std::vector<T> weight_sum(V, T(0));
    std::vector<T> in_batch(batch * C * in_plane), out_batch(batch * K * out_plane);

    // Sample i is tile i / flips under flip pattern i % flips (bit a: flip spatial axis a).
    auto origin_of = [&](std::size_t tile) {
        std::array<std::size_t, 3> o;
        o[2] = origins[2][tile % origins[2].size()];
        tile /= origins[2].size();
        o[1] = origins[1][tile % origins[1].size()];
        o[0] = origins[0][tile / origins[1].size()];
        return o;
    };
    auto flipped = [&](std::size_t pattern, std::size_t axis3) {
        return axis3 >= lead && ((pattern >> (axis3 - lead)) & 1u);
    };

    std::size_t reported = 0;
    for (std::size_t first = 0; first < items; first += batch) {
        const std::size_t count = std::min(batch, items - first);
        // Gather the input tiles, mirrored at the border and flipped as asked.
        tbb::parallel_for(std::size_t(0), count, [&](std::size_t b) {
            const std::size_t item = first + b, pattern = item % flips;
            const auto o = origin_of(item / flips);
            std::array<std::vector<std::size_t>, 3> src;
            std::size_t stride = 1;
            for (std::size_t a = 3; a-- > 0;) {
                src[a].resize(S[a]);
                for (std::size_t k = 0; k < S[a]; ++k) {
                    const std::size_t kk = flipped(pattern, a) ? S[a] - 1 - k : k;
                    src[a][k] = mirror_index(std::ptrdiff_t(o[a] + kk) - std::ptrdiff_t(m[a]), N[a]) * stride;
                }
                stride *= N[a];
            }
            T* dst = in_batch.data() + b * C * in_plane;
            for (std::size_t c = 0; c < C; ++c) {
                const T* from = input.channel(c);
                for (std::size_t z = 0; z < S[0]; ++z)
                    for (std::size_t y = 0; y < S[1]; ++y) {
                        const T* row = from + src[0][z] + src[1][y];
                        for (std::size_t x = 0; x < S[2]; ++x) *dst++ = row[src[2][x]];
                    }
            }
        });
        net.forward(exec::index_t(count), in_batch.data(), out_batch.data());
        // Softmax, flip back, weight and add; tiles of one batch may overlap, so
        // one after the other, each spread over its rows.
        for (std::size_t b = 0; b < count; ++b) {
            const std::size_t item = first + b, pattern = item % flips;
            const auto o = origin_of(item / flips);
            const T* logits = out_batch.data() + b * K * out_plane;
            tbb::parallel_for(std::size_t(0), So[0] * So[1], [&](std::size_t row) {
                const std::size_t z = row / So[1], y = row % So[1];
                if (o[0] + z >= N[0] || o[1] + y >= N[1]) return;
                const std::size_t sz = flipped(pattern, 0) ? So[0] - 1 - z : z, sy = flipped(pattern, 1) ? So[1] - 1 - y : y;
                const std::size_t dst_row = ((o[0] + z) * N[1] + (o[1] + y)) * N[2] + o[2];
                const std::size_t src_row = (sz * So[1] + sy) * So[2];
                const std::size_t w_row = (z * So[1] + y) * So[2];
                const std::size_t width = std::min(So[2], N[2] - o[2]);
                for (std::size_t x = 0; x < width; ++x) {
                    const std::size_t s = src_row + (flipped(pattern, 2) ? So[2] - 1 - x : x);
                    std::array<double, K> p;
                    double top = double(logits[s]), sum = 0;
                    for (std::size_t k = 1; k < K; ++k) top = std::max(top, double(logits[k * out_plane + s]));
                    for (std::size_t k = 0; k < K; ++k) sum += p[k] = std::exp(double(logits[k * out_plane + s]) - top);
                    const double w = weights[w_row + x] / double(flips);
                    for (std::size_t k = 0; k < K; ++k) result.channel(k)[dst_row + x] += T(w * p[k] / sum);
                    weight_sum[dst_row + x] += T(w);
                }
            });
        }
        const std::size_t done = (first + count) / flips;
        if (options.progress && done > reported) options.progress(reported = done, tiles);
    }
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, V, 4096), [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t v = r.begin(); v != r.end(); ++v)
            for (std::size_t k = 0; k < K; ++k) result.channel(k)[v] /= weight_sum[v];
    });
    return result;
}

// A 2D network on a volume (C x D x H x W): predict_tiled on each slice along
// axis 0, or only on the listed slice indices (duplicates are run once per
// listing); the result is a volume of class probabilities whose unlisted
// slices are 0 in every channel. The progress callback counts tiles over all
// listed slices.
template <class Bound, class T>
image<T> predict_slices(const network<Bound, T>& net, const image<T>& volume, const tile_options& options = {},
                        std::span<const std::size_t> slices = {}) {
    static_assert(Bound::rank == 2, "ctseg: predict_slices runs a network bound to a 2D tile (shape<C, H, W>)");
    using geo = tile_geometry<Bound>;
    if (volume.rank() != 3)
        throw error("predict_slices: volume of rank " + std::to_string(volume.rank()) + " (" + extents_text(volume.extents) +
                    ") for a 2D network run slice by slice (rank 3 expected)");
    if (volume.channels != geo::input_channels)
        throw error("predict_slices: volume has " + std::to_string(volume.channels) + " channels, the network expects " +
                    std::to_string(geo::input_channels));
    if (volume.values.size() != volume.channels * volume.voxels())
        throw error("predict_slices: volume holds " + std::to_string(volume.values.size()) + " values, " +
                    std::to_string(volume.channels) + " channels of " + extents_text(volume.extents) + " need " +
                    std::to_string(volume.channels * volume.voxels()));
    const std::size_t D = volume.extents[0], H = volume.extents[1], W = volume.extents[2], plane = H * W;
    std::vector<std::size_t> all;
    if (slices.empty()) {
        all.resize(D);
        for (std::size_t z = 0; z < D; ++z) all[z] = z;
        slices = all;
    }
    for (auto z : slices)
        if (z >= D) throw error("predict_slices: slice index " + std::to_string(z) + " outside a volume of depth " + std::to_string(D));

    image<T> result = image_like<T>(volume, geo::classes, T(0));
    image<T> slice(volume.channels, {H, W});
    if (volume.geom.spacing.size() == 3) slice.geom.spacing = {volume.geom.spacing[1], volume.geom.spacing[2]};
    tile_options per_slice = options;
    for (std::size_t i = 0; i < slices.size(); ++i) {
        const std::size_t z = slices[i];
        if (options.progress)
            per_slice.progress = [&, i](std::size_t done, std::size_t total) {
                options.progress(i * total + done, slices.size() * total);
            };
        for (std::size_t c = 0; c < volume.channels; ++c)
            std::copy_n(volume.channel(c) + z * plane, plane, slice.channel(c));
        const image<T> probs = predict_tiled(net, slice, per_slice);
        for (std::size_t k = 0; k < geo::classes; ++k) std::copy_n(probs.channel(k), plane, result.channel(k) + z * plane);
    }
    return result;
}

// Per voxel, the index of the largest channel (the first on ties): a
// one-channel label image with the extents and geometry of `probabilities`.
template <class T>
image<std::int64_t> argmax_labels(const image<T>& probabilities) {
    if (probabilities.channels == 0) throw error("argmax_labels: image has 0 channels");
    const std::size_t V = probabilities.voxels();
    if (probabilities.values.size() != probabilities.channels * V)
        throw error("argmax_labels: image holds " + std::to_string(probabilities.values.size()) + " values, " +
                    std::to_string(probabilities.channels) + " channels of " + extents_text(probabilities.extents) +
                    " need " + std::to_string(probabilities.channels * V));
    image<std::int64_t> labels = image_like<std::int64_t>(probabilities, 1);
    for (std::size_t v = 0; v < V; ++v) {
        std::size_t best = 0;
        for (std::size_t k = 1; k < probabilities.channels; ++k)
            if (probabilities.channel(k)[v] > probabilities.channel(best)[v]) best = k;
        labels.values[v] = std::int64_t(best);
    }
    return labels;
}

}  // namespace ctseg::data
