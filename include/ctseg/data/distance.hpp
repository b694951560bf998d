// Exact Euclidean distance transform of an n-dimensional binary image with
// anisotropic voxel spacing (separable lower-envelope algorithm of
// Felzenszwalb and Huttenlocher, one pass per axis, linear in the voxels).
// Used by the U-Net border weights (distance to the nearest and second-nearest
// object) and by the Hausdorff distance.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "ctseg/error.hpp"

namespace ctseg::data {

namespace detail::edt {

inline constexpr double far = std::numeric_limits<double>::infinity();

// One axis: f holds squared distances along a line of n samples spaced `h`
// apart; d receives min_q f(q) + (h (p - q))^2. v, z: scratch of n and n + 1.
inline void lower_envelope(const double* f, double* d, std::size_t n, double h, std::vector<std::size_t>& v,
                           std::vector<double>& z) {
    const double h2 = h * h;
    std::size_t k = 0;
    bool any = false;
    for (std::size_t q = 0; q < n; ++q) {
        if (f[q] == far) continue;
        if (!any) {
            v[0] = q;
            z[0] = -far;
            z[1] = far;
            any = true;
            continue;
        }
        // Intersection of the parabolas rooted at q and at v[k], in sample units.
        double s = 0;
        for (;;) {
            const double p = double(v[k]);
            s = ((f[q] / h2 + double(q) * double(q)) - (f[v[k]] / h2 + p * p)) / (2 * (double(q) - p));
            if (s > z[k] || k == 0) break;
            --k;
        }
        if (s <= z[k]) {  // k == 0 and q dominates everywhere
            v[0] = q;
            z[0] = -far;
            z[1] = far;
            continue;
        }
        ++k;
        v[k] = q;
        z[k] = s;
        z[k + 1] = far;
    }
    if (!any) {
        for (std::size_t p = 0; p < n; ++p) d[p] = far;
        return;
    }
    k = 0;
    for (std::size_t p = 0; p < n; ++p) {
        while (z[k + 1] < double(p)) ++k;
        const double dp = h * (double(p) - double(v[k]));
        d[p] = f[v[k]] + dp * dp;
    }
}

}  // namespace detail::edt

// Squared Euclidean distance (in units of `spacing`) from every voxel to the
// nearest voxel where feature != 0; +infinity everywhere when there is none.
// extents: slowest axis first; spacing: one per axis, or empty for all 1.
inline std::vector<double> squared_distance_to(const std::vector<std::uint8_t>& feature,
                                               const std::vector<std::size_t>& extents,
                                               std::vector<double> spacing = {}) {
    std::size_t total = 1;
    for (auto e : extents) total *= e;
    if (feature.size() != total)
        throw error("distance transform: " + std::to_string(feature.size()) + " voxels given for extents of " +
                    std::to_string(total));
    if (spacing.empty()) spacing.assign(extents.size(), 1.0);
    if (spacing.size() != extents.size())
        throw error("distance transform: " + std::to_string(spacing.size()) + " spacings for " +
                    std::to_string(extents.size()) + " axes");
    std::vector<double> dist(total);
    for (std::size_t i = 0; i < total; ++i) dist[i] = feature[i] ? 0.0 : detail::edt::far;
    std::size_t stride = 1;
    for (std::size_t a = extents.size(); a-- > 0;) {
        const std::size_t n = extents[a], lines = n ? total / n : 0, s = stride;
        const double h = spacing[a];
        tbb::parallel_for(tbb::blocked_range<std::size_t>(0, lines, 64), [&](const tbb::blocked_range<std::size_t>& r) {
            std::vector<double> f(n), d(n), z(n + 1);
            std::vector<std::size_t> v(n);
            for (std::size_t line = r.begin(); line != r.end(); ++line) {
                // Line `line` enumerates all voxels with this axis' index 0.
                const std::size_t outer = line / s, inner = line % s, base = outer * n * s + inner;
                for (std::size_t p = 0; p < n; ++p) f[p] = dist[base + p * s];
                detail::edt::lower_envelope(f.data(), d.data(), n, h, v, z);
                for (std::size_t p = 0; p < n; ++p) dist[base + p * s] = d[p];
            }
        });
        stride *= n;
    }
    return dist;
}

// Euclidean distance: the square root of the above.
inline std::vector<double> distance_to(const std::vector<std::uint8_t>& feature, const std::vector<std::size_t>& extents,
                                       std::vector<double> spacing = {}) {
    auto d = squared_distance_to(feature, extents, std::move(spacing));
    for (auto& x : d) x = std::sqrt(x);
    return d;
}

}  // namespace ctseg::data
