// Data augmentation for segmentation, 2D and 3D: an image, its labels and
// optionally a weight map are transformed together by ONE sampled transform.
//
// Geometry. All geometric transforms (scaling, rotation, quarter turns, flips,
// elastic deformation) are composed into a single sampling map from output
// voxel to (continuous) source voxel, so every image is resampled exactly once:
//
//   q = p + u(p)                                   u: elastic displacement (voxels)
//   x = c + Sc^-1 (D^-1 R^T D) B90 F (q - c)       c = (n - 1) / 2 per axis
//
// F flips axes, B90 undoes k quarter turns, R is the rotation in physical
// space (D = diag(spacing), so anisotropic voxels rotate correctly), Sc the
// scaling. Read forwards: the content is scaled, rotated, turned, flipped, then
// deformed. Output extents equal input extents.
//
// Sampling: image channels by cubic convolution (Keys, a = -1/2: reproduces
// polynomials up to degree 2; bicubic in 2D, tricubic in 3D) or, by option,
// (bi/tri)linear; labels by nearest neighbour (labels never blend, an ignore
// label stays an ignore label, no value appears that is not in the input);
// weight maps linearly. Outside the image, coordinates are mirrored about the
// first and last voxel centres (d c b | a b c d | c b a): no fill value is
// invented. Integer images are rounded and clamped to their type's range.
//
// Intensity, applied to the image after resampling, per channel:
//   gamma:      v' = lo + (hi - lo) ((v - lo) / (hi - lo))^gamma   (lo, hi: channel min and max)
//   contrast:   v' = m + contrast (v - m)                          (m: channel mean)
//   brightness: v' = v + brightness
//   noise:      v' = v + N(0, noise_sigma^2), independent per voxel and channel
//
// Randomness: every draw comes from counter-based streams derived from the
// seed (each transform its own stream), and every voxel is computed by exactly
// one task in a fixed order, so the result depends on the seed only, never on
// the number of threads or the platform's standard library.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "ctseg/data/image.hpp"
#include "ctseg/error.hpp"

namespace ctseg::data {

enum class interpolation { nearest, linear, cubic };

// grid: the U-Net deformation, random vectors on a coarse grid, cubic-interpolated.
// dense: the 3D U-Net form, a per-voxel random field smoothed by a Gaussian.
enum class elastic_kind { grid, dense };

struct augment_options {
    // Elastic deformation, with probability p_elastic.
    double p_elastic = 0;
    elastic_kind elastic = elastic_kind::grid;
    double elastic_sigma = 10;     // grid: standard deviation of each node displacement component, voxels
    std::size_t elastic_grid = 3;  // grid: nodes per axis (>= 2), spanning the image corner to corner
    double dense_magnitude = 4;    // dense: standard deviation of each displacement component, voxels
    double dense_smoothing = 10;   // dense: sigma of the Gaussian that smooths the random field, voxels
    // Flips: every axis independently with probability p_flip.
    double p_flip = 0;
    // Quarter turns, with probability p_rot90: k uniform in {1, 2, 3} in the
    // plane rot90_axes (negative: counted from the last axis, as in numpy); in a
    // plane whose two extents differ only k = 2 keeps the extents, so k = 2.
    double p_rot90 = 0;
    std::array<int, 2> rot90_axes{-2, -1};
    // Rotation by an angle uniform in [-max_rotation_deg, max_rotation_deg], with
    // probability p_rotation. 3D: about extent axis rotation_axis (0, 1, 2), or,
    // for -1, about a direction uniform on the sphere. Unused in 2D.
    double p_rotation = 0;
    double max_rotation_deg = 0;
    int rotation_axis = -1;
    // Scaling by a factor uniform in [scale_min, scale_max] (> 1 magnifies the
    // content), with probability p_scale; one factor per axis if anisotropic_scale.
    double p_scale = 0;
    double scale_min = 1, scale_max = 1;
    bool anisotropic_scale = false;
    interpolation image_interpolation = interpolation::cubic;  // nearest, linear or cubic
    // Intensity, each with its own probability.
    double p_gamma = 0, gamma_min = 1, gamma_max = 1;  // gamma uniform in [gamma_min, gamma_max]
    double p_contrast = 0, contrast = 0;               // factor uniform in [1 - contrast, 1 + contrast]
    double p_brightness = 0, brightness = 0;           // shift uniform in [-brightness, brightness], intensity units
    double p_noise = 0, noise_sigma = 0;               // Gaussian noise of this standard deviation
};

// The U-Net setting (2D): coarse-grid elastic deformation (sigma 10, 3x3
// grid), flips and quarter turns.
inline augment_options unet_2d_options() {
    augment_options o;
    o.p_elastic = 1;
    o.p_flip = 0.5;
    o.p_rot90 = 0.75;
    return o;
}

// The 3D U-Net setting: smooth dense deformation, rotation, scaling and gray
// value changes.
inline augment_options unet_3d_options() {
    augment_options o;
    o.p_elastic = 1;
    o.elastic = elastic_kind::dense;
    o.p_flip = 0.5;
    o.p_rotation = 1;
    o.max_rotation_deg = 15;
    o.p_scale = 1;
    o.scale_min = 0.85;
    o.scale_max = 1.15;
    o.p_gamma = 0.3;
    o.gamma_min = 0.7;
    o.gamma_max = 1.5;
    o.p_contrast = 0.3;
    o.contrast = 0.25;
    o.p_brightness = 0.3;
    o.brightness = 0.1;
    return o;
}

// One drawn augmentation: exactly what apply_transform does. Built by
// sample_transform, or by hand to apply a chosen transform.
struct transform_params {
    std::vector<bool> flip;                  // per axis (empty: none)
    int rot90_k = 0;                         // quarter turns as numpy.rot90(a, k, axes=rot90_axes)
    std::array<std::size_t, 2> rot90_axes{0, 1};
    std::vector<double> rotation;            // forward rotation, rank x rank row-major, physical space (empty: none)
    std::vector<double> scale;               // per axis (empty: none); > 1 magnifies
    image<float> displacement;               // rank channels x extents, voxels (no values: none)
    interpolation image_interpolation = interpolation::cubic;
    double gamma = 1, contrast = 1, brightness = 0, noise_sigma = 0;
    std::uint64_t noise_seed = 0;

    bool geometric() const {
        return std::find(flip.begin(), flip.end(), true) != flip.end() || rot90_k % 4 != 0 || !rotation.empty() ||
               !scale.empty() || !displacement.values.empty();
    }
};

namespace detail::augment {

inline constexpr std::uint64_t golden = 0x9E3779B97F4A7C15ull;

// The splitmix64 finaliser: a bijective 64-bit mix.
inline std::uint64_t mix64(std::uint64_t z) noexcept {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Seed of the sub-stream `tag` of `seed`.
inline std::uint64_t derive(std::uint64_t seed, std::uint64_t tag) noexcept { return mix64(seed ^ mix64(tag * golden + 1)); }

// Uniform in [0, 1) from 53 bits of a hash.
inline double unit(std::uint64_t h) noexcept { return double(h >> 11) * 0x1.0p-53; }

// A sequential stream (splitmix64): the same numbers on every platform, which
// std::normal_distribution does not promise.
struct random_stream {
    std::uint64_t state;
    random_stream(std::uint64_t seed, std::uint64_t tag) : state(derive(seed, tag)) {}
    std::uint64_t next() noexcept { return mix64(state += golden); }
    double uniform() noexcept { return unit(next()); }
    double uniform(double a, double b) noexcept { return a + (b - a) * uniform(); }
    bool chance(double p) noexcept { return uniform() < p; }  // p = 0 never, p = 1 always
    double normal() noexcept {  // Box-Muller
        const double u1 = 1.0 - uniform(), u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
    }
};

// Stream tags: each transform draws from its own stream, so enabling one does
// not change what another draws.
enum tag : std::uint64_t { flip_tag = 1, rot90_tag, rotation_tag, scale_tag, elastic_tag, intensity_tag, noise_tag };

// Index i mirrored into [0, n): d c b | a b c d | c b a.
inline std::ptrdiff_t mirror(std::ptrdiff_t i, std::ptrdiff_t n) noexcept {
    if (i >= 0 && i < n) return i;
    if (n == 1) return 0;
    const std::ptrdiff_t period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
}

// Keys cubic convolution weights (a = -1/2) of the taps at base-1 .. base+2,
// t = x - base in [0, 1]; exactly (0, 1, 0, 0) at t = 0 and (0, 0, 1, 0) at t = 1.
inline void cubic_weights(double t, double* w) noexcept {
    w[0] = ((-0.5 * t + 1.0) * t - 0.5) * t;
    w[1] = (1.5 * t - 2.5) * t * t + 1.0;
    w[2] = ((-1.5 * t + 2.0) * t + 0.5) * t;
    w[3] = (0.5 * t - 0.5) * t * t;
}

// Taps of one axis at continuous coordinate x: K mirrored indices times the
// stride, and their weights (nearest: K = 1, linear: 2, cubic: 4).
template <int K>
inline void taps_at(double x, std::ptrdiff_t n, std::ptrdiff_t stride, std::ptrdiff_t* offset, double* weight) noexcept {
    // Far outside, mirroring is periodic anyway; the clamp keeps floor() finite.
    constexpr double limit = 1e12;
    if (!(x > -limit)) x = -limit;
    if (x > limit) x = limit;
    if constexpr (K == 1) {
        offset[0] = mirror(static_cast<std::ptrdiff_t>(std::floor(x + 0.5)), n) * stride;
        weight[0] = 1;
    } else {
        const double fl = std::floor(x);
        const auto base = static_cast<std::ptrdiff_t>(fl) - (K == 4 ? 1 : 0);
        const double fr = x - fl;
        for (int k = 0; k < K; ++k) offset[k] = mirror(base + k, n) * stride;
        if constexpr (K == 2) {
            weight[0] = 1 - fr;
            weight[1] = fr;
        } else {
            cubic_weights(fr, weight);
        }
    }
}

template <class T>
T to_value(double v) noexcept {
    if constexpr (std::is_integral_v<T>) {
        constexpr double lo = double(std::numeric_limits<T>::lowest());
        // The largest double below 2^digits: double(max) itself may not convert back.
        constexpr double hi = std::numeric_limits<T>::digits >= 53
                                  ? double(std::numeric_limits<T>::max() - (std::numeric_limits<T>::max() >> 11))
                                  : double(std::numeric_limits<T>::max());
        if (!(v > lo)) return std::numeric_limits<T>::lowest();  // also NaN
        if (v >= hi) return std::numeric_limits<T>::max();
        return static_cast<T>(std::round(v));  // in range here, for 64-bit types too
    } else {
        return static_cast<T>(v);
    }
}

inline void check_rank(const std::vector<std::size_t>& ext, const char* what) {
    if (ext.size() != 2 && ext.size() != 3)
        throw error(std::string(what) + ": rank " + std::to_string(ext.size()) + " (extents " + extents_text(ext) +
                    "), expected 2 or 3");
    for (auto e : ext)
        if (e == 0) throw error(std::string(what) + ": empty extents " + extents_text(ext));
}

template <class T>
void check_image(const image<T>& img, const char* what, const char* name) {
    check_rank(img.extents, what);
    if (img.channels == 0) throw error(std::string(what) + ": " + name + " has 0 channels");
    if (img.values.size() != img.channels * img.voxels())
        throw error(std::string(what) + ": " + name + " holds " + std::to_string(img.values.size()) +
                    " values, expected " + std::to_string(img.channels) + " x " + extents_text(img.extents));
}

inline std::vector<double> spacing_or_ones(const std::vector<double>& spacing, std::size_t rank, const char* what) {
    if (spacing.empty()) return std::vector<double>(rank, 1.0);
    if (spacing.size() != rank)
        throw error(std::string(what) + ": " + std::to_string(spacing.size()) + " spacings for rank " +
                    std::to_string(rank));
    for (auto s : spacing)
        if (!(s > 0) || !std::isfinite(s))
            throw error(std::string(what) + ": spacing " + std::to_string(s) + " is not a positive number");
    return spacing;
}

// Resample along one axis: in has extents `ext`; out replaces ext[axis] by
// `positions.size()`, each output line value the 4-tap combination given by
// `base` (first tap index) and `w`.
inline std::vector<double> resample_axis(const std::vector<double>& in, const std::vector<std::size_t>& ext,
                                         std::size_t axis, const std::vector<std::size_t>& base,
                                         const std::vector<std::array<double, 4>>& w) {
    std::size_t outer = 1, inner = 1;
    for (std::size_t a = 0; a < axis; ++a) outer *= ext[a];
    for (std::size_t a = axis + 1; a < ext.size(); ++a) inner *= ext[a];
    const std::size_t n_in = ext[axis], n_out = base.size();
    std::vector<double> out(outer * n_out * inner);
    if (inner == 1) {  // the last axis: one output value per position
        tbb::parallel_for(tbb::blocked_range<std::size_t>(0, outer, 8), [&](const tbb::blocked_range<std::size_t>& r) {
            for (std::size_t o = r.begin(); o != r.end(); ++o) {
                const double* src = in.data() + o * n_in;
                double* dst = out.data() + o * n_out;
                for (std::size_t p = 0; p < n_out; ++p) {
                    const double* s = src + base[p];
                    dst[p] = w[p][0] * s[0] + w[p][1] * s[1] + w[p][2] * s[2] + w[p][3] * s[3];
                }
            }
        });
        return out;
    }
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, outer * n_out, 16), [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t k = r.begin(); k != r.end(); ++k) {
            const std::size_t o = k / n_out, p = k % n_out;
            double* dst = out.data() + k * inner;
            for (std::size_t i = 0; i < inner; ++i) dst[i] = 0;
            for (int t = 0; t < 4; ++t) {
                const double wt = w[p][t];
                if (wt == 0) continue;
                const double* src = in.data() + (o * n_in + base[p] + std::size_t(t)) * inner;
                for (std::size_t i = 0; i < inner; ++i) dst[i] += wt * src[i];
            }
        }
    });
    return out;
}

// One node added before and after along `axis` by Keys' boundary condition
// f(-1) = 3 f(0) - 3 f(1) + f(2) (exact for quadratics); linear for 2 nodes.
inline std::vector<double> extend_axis(const std::vector<double>& in, const std::vector<std::size_t>& ext, std::size_t axis) {
    std::size_t outer = 1, inner = 1;
    for (std::size_t a = 0; a < axis; ++a) outer *= ext[a];
    for (std::size_t a = axis + 1; a < ext.size(); ++a) inner *= ext[a];
    const std::size_t g = ext[axis];
    std::vector<double> out(outer * (g + 2) * inner);
    for (std::size_t o = 0; o < outer; ++o)
        for (std::size_t i = 0; i < inner; ++i) {
            const auto at = [&](std::size_t m) { return in[(o * g + m) * inner + i]; };
            auto put = [&](std::size_t m, double v) { out[(o * (g + 2) + m) * inner + i] = v; };
            for (std::size_t m = 0; m < g; ++m) put(m + 1, at(m));
            if (g >= 3) {
                put(0, 3 * at(0) - 3 * at(1) + at(2));
                put(g + 1, 3 * at(g - 1) - 3 * at(g - 2) + at(g - 3));
            } else {
                put(0, 2 * at(0) - at(1));
                put(g + 1, 2 * at(g - 1) - at(g - 2));
            }
        }
    return out;
}

// Gaussian smoothing of a field along every axis (mirror boundary), in place.
// Kernel: radius ceil(3 sigma), normalised to sum 1. Returns the product over
// axes of sqrt(sum w^2): the standard deviation the smoothing leaves of unit
// white noise away from the borders.
inline double smooth_gaussian(std::vector<float>& f, const std::vector<std::size_t>& ext, double sigma) {
    const auto r = static_cast<std::ptrdiff_t>(std::ceil(3 * sigma));
    std::vector<float> w(std::size_t(2 * r + 1));
    double sum = 0, sum2 = 0;
    for (std::ptrdiff_t k = -r; k <= r; ++k) sum += w[std::size_t(k + r)] = float(std::exp(-double(k * k) / (2 * sigma * sigma)));
    for (auto& x : w) {
        x = float(x / sum);
        sum2 += double(x) * double(x);
    }
    const std::vector<float> wc(w.begin() + r, w.end());  // w at 0, 1, ..., r
    std::vector<float> tmp(f.size());
    const std::size_t total = f.size();
    std::size_t inner = total;
    double remaining = 1;
    for (std::size_t a = 0; a < ext.size(); ++a) {
        const auto n = static_cast<std::ptrdiff_t>(ext[a]);
        inner /= std::size_t(n);
        const std::size_t outer = total / (std::size_t(n) * inner);
        if (inner == 1) {
            // Innermost axis: one contiguous line at a time, mirrored into a padded buffer.
            tbb::parallel_for(tbb::blocked_range<std::size_t>(0, outer, 16), [&](const tbb::blocked_range<std::size_t>& rg) {
                std::vector<float> buf(std::size_t(n + 2 * r));
                for (std::size_t o = rg.begin(); o != rg.end(); ++o) {
                    const float* src = f.data() + o * std::size_t(n);
                    float* dst = tmp.data() + o * std::size_t(n);
                    for (std::ptrdiff_t i = -r; i < n + r; ++i) buf[std::size_t(i + r)] = src[mirror(i, n)];
                    // The kernel is symmetric: pair the taps at -t and +t.
                    for (std::ptrdiff_t p = 0; p < n; ++p) {
                        const float* b = buf.data() + p + r;
                        float acc = wc[0] * b[0];
                        for (std::ptrdiff_t t = 1; t <= r; ++t) acc += wc[std::size_t(t)] * (b[-t] + b[t]);
                        dst[p] = acc;
                    }
                }
            });
        } else {
            // Outer axes: whole contiguous rows of `inner` values at a time (vectorises).
            tbb::parallel_for(tbb::blocked_range<std::size_t>(0, outer * std::size_t(n), 4),
                              [&](const tbb::blocked_range<std::size_t>& rg) {
                for (std::size_t k = rg.begin(); k != rg.end(); ++k) {
                    const std::size_t o = k / std::size_t(n);
                    const auto p = static_cast<std::ptrdiff_t>(k % std::size_t(n));
                    float* dst = tmp.data() + k * inner;
                    const float* row = f.data() + o * std::size_t(n) * inner;
                    const float* mid = row + std::size_t(p) * inner;
                    for (std::size_t i = 0; i < inner; ++i) dst[i] = wc[0] * mid[i];
                    for (std::ptrdiff_t t = 1; t <= r; ++t) {
                        const float wt = wc[std::size_t(t)];
                        const float* below = row + std::size_t(mirror(p - t, n)) * inner;
                        const float* above = row + std::size_t(mirror(p + t, n)) * inner;
                        for (std::size_t i = 0; i < inner; ++i) dst[i] += wt * (below[i] + above[i]);
                    }
                }
            });
        }
        f.swap(tmp);
        remaining *= std::sqrt(sum2);
    }
    return remaining;
}

}  // namespace detail::augment

// ---------------------------------------------------------------------------
// Elastic displacement fields: `rank` channels (displacement along each axis,
// voxels, in extents order) x extents.

// Dense field from vectors on a coarse grid by cubic convolution (Keys,
// a = -1/2, separable). nodes: any number of channels x grid extents (each
// >= 2 nodes); node m of an axis of n voxels sits at voxel m (n - 1) / (g - 1),
// so the grid spans the image corner to corner. Beyond the outer nodes the grid
// is extended by Keys' boundary condition, so linear and quadratic node values
// are reproduced exactly everywhere.
inline image<float> interpolate_grid(const image<double>& nodes, const std::vector<std::size_t>& extents) {
    namespace d = detail::augment;
    if (nodes.extents.size() != extents.size())
        throw error("interpolate_grid: grid rank " + std::to_string(nodes.extents.size()) + " for image extents " +
                    extents_text(extents));
    for (std::size_t a = 0; a < extents.size(); ++a) {
        if (nodes.extents[a] < 2)
            throw error("interpolate_grid: " + std::to_string(nodes.extents[a]) + " nodes along axis " +
                        std::to_string(a) + ", expected at least 2");
        if (extents[a] == 0) throw error("interpolate_grid: empty extents " + extents_text(extents));
    }
    if (nodes.values.size() != nodes.channels * nodes.voxels())
        throw error("interpolate_grid: " + std::to_string(nodes.values.size()) + " node values for " +
                    std::to_string(nodes.channels) + " x " + extents_text(nodes.extents));
    image<float> out(nodes.channels, extents);
    const std::size_t V = out.voxels();
    for (std::size_t c = 0; c < nodes.channels; ++c) {
        std::vector<double> g(nodes.channel(c), nodes.channel(c) + nodes.voxels());
        std::vector<std::size_t> ext = nodes.extents;
        for (std::size_t a = 0; a < ext.size(); ++a) {
            g = d::extend_axis(g, ext, a);
            ext[a] += 2;
        }
        for (std::size_t a = 0; a < ext.size(); ++a) {
            const std::size_t n = extents[a], gn = nodes.extents[a];
            std::vector<std::size_t> base(n);
            std::vector<std::array<double, 4>> w(n);
            for (std::size_t p = 0; p < n; ++p) {
                // t in node units; p (g - 1) / (n - 1) is exact when a node sits on p.
                const double t = n == 1 ? 0.0 : double(p * (gn - 1)) / double(n - 1);
                auto b = static_cast<std::size_t>(std::floor(t));
                if (b > gn - 2) b = gn - 2;
                d::cubic_weights(t - double(b), w[p].data());
                base[p] = b;  // extended index of node b - 1
            }
            g = d::resample_axis(g, ext, a, base, w);
            ext[a] = n;
        }
        float* dst = out.channel(c);
        for (std::size_t i = 0; i < V; ++i) dst[i] = static_cast<float>(g[i]);
    }
    return out;
}

// The U-Net elastic deformation: on a grid of `grid` nodes per axis, random
// displacement vectors whose components are N(0, sigma^2), interpolated to
// every voxel by interpolate_grid.
inline image<float> elastic_field(const std::vector<std::size_t>& extents, double sigma, std::size_t grid,
                                  std::uint64_t seed) {
    detail::augment::check_rank(extents, "elastic_field");
    if (!(sigma >= 0) || !std::isfinite(sigma))
        throw error("elastic_field: elastic_sigma = " + std::to_string(sigma) + ", expected >= 0");
    if (grid < 2) throw error("elastic_field: elastic_grid = " + std::to_string(grid) + ", expected >= 2");
    image<double> nodes(extents.size(), std::vector<std::size_t>(extents.size(), grid));
    detail::augment::random_stream rng(seed, detail::augment::elastic_tag);
    for (auto& v : nodes.values) v = sigma * rng.normal();
    return interpolate_grid(nodes, extents);
}

// The 3D U-Net smooth dense deformation: per voxel and component, unit-variance
// uniform noise, smoothed by a Gaussian of standard deviation `smoothing`
// voxels (kernel radius ceil(3 smoothing), mirror boundary), then scaled so that
// each component has standard deviation `magnitude` voxels away from the
// borders (the smoothed sum of many noise values is Gaussian).
inline image<float> dense_elastic_field(const std::vector<std::size_t>& extents, double magnitude, double smoothing,
                                        std::uint64_t seed) {
    namespace d = detail::augment;
    d::check_rank(extents, "dense_elastic_field");
    if (!(magnitude >= 0) || !std::isfinite(magnitude))
        throw error("dense_elastic_field: dense_magnitude = " + std::to_string(magnitude) + ", expected >= 0");
    if (!(smoothing > 0) || !(smoothing <= 1e4))
        throw error("dense_elastic_field: dense_smoothing = " + std::to_string(smoothing) + ", expected in (0, 1e4]");
    const std::size_t R = extents.size();
    image<float> out(R, extents);
    const std::size_t V = out.voxels();
    const std::uint64_t key = d::derive(seed, d::elastic_tag);
    for (std::size_t c = 0; c < R; ++c) {
        std::vector<float> f(V);
        const std::uint64_t ck = d::mix64(key + (c + 1) * d::golden);
        tbb::parallel_for(tbb::blocked_range<std::size_t>(0, V, 1 << 14), [&](const tbb::blocked_range<std::size_t>& r) {
            for (std::size_t i = r.begin(); i != r.end(); ++i) {
                // Uniform in [-sqrt 3, sqrt 3): mean 0, variance 1.
                const double u = double(d::mix64(ck + i * d::golden) >> 40) * 0x1.0p-24;
                f[i] = static_cast<float>((2 * u - 1) * std::numbers::sqrt3);
            }
        });
        const double left = d::smooth_gaussian(f, extents, smoothing);
        const auto scale = static_cast<float>(magnitude / left);
        float* dst = out.channel(c);
        for (std::size_t i = 0; i < V; ++i) dst[i] = f[i] * scale;
    }
    return out;
}

// ---------------------------------------------------------------------------
// Rotation matrices (forward, physical space, rank x rank row-major).

// Rotation by `radians` in the plane of axes (a, b): the direction of
// numpy.rot90(..., axes=(a, b)), which a rotation by +90 degrees reproduces.
inline std::vector<double> plane_rotation(std::size_t rank, std::size_t a, std::size_t b, double radians) {
    if (a >= rank || b >= rank || a == b)
        throw error("plane_rotation: axes (" + std::to_string(a) + ", " + std::to_string(b) + ") for rank " +
                    std::to_string(rank));
    std::vector<double> m(rank * rank, 0.0);
    for (std::size_t i = 0; i < rank; ++i) m[i * rank + i] = 1;
    const double c = std::cos(radians), s = std::sin(radians);
    m[a * rank + a] = c;
    m[a * rank + b] = -s;
    m[b * rank + a] = s;
    m[b * rank + b] = c;
    return m;
}

// 3D rotation by `radians` about the direction `axis` (extents order, any length > 0; Rodrigues).
inline std::vector<double> axis_rotation(std::array<double, 3> axis, double radians) {
    const double len = std::sqrt(axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]);
    if (!(len > 0) || !std::isfinite(len)) throw error("axis_rotation: rotation axis of length " + std::to_string(len));
    for (auto& v : axis) v /= len;
    const double c = std::cos(radians), s = std::sin(radians), t = 1 - c;
    const auto [x, y, z] = axis;
    return {t * x * x + c,     t * x * y - s * z, t * x * z + s * y,  //
            t * x * y + s * z, t * y * y + c,     t * y * z - s * x,  //
            t * x * z - s * y, t * y * z + s * x, t * z * z + c};
}

// ---------------------------------------------------------------------------
// The sampling map: output voxel -> continuous source voxel (see the top).

class sampling_map {
public:
    // `t` must outlive the map (its displacement field is read, not copied).
    // spacing: per axis, or empty for all 1.
    sampling_map(const transform_params& t, const std::vector<std::size_t>& extents,
                 const std::vector<double>& spacing = {})
        : extents_(extents) {
        namespace d = detail::augment;
        d::check_rank(extents, "sampling_map");
        const std::size_t R = extents.size();
        rank_ = R;
        const auto h = d::spacing_or_ones(spacing, R, "sampling_map");
        for (std::size_t a = 0; a < R; ++a) centre_[a] = double(extents[a] - 1) / 2;
        // L = Sc^-1 (D^-1 R^T D) B90 F, built right to left.
        std::array<double, 9> L{};
        for (std::size_t a = 0; a < R; ++a) L[a * R + a] = 1;
        const auto left_multiply = [&](const std::array<double, 9>& M) {
            std::array<double, 9> P{};
            for (std::size_t i = 0; i < R; ++i)
                for (std::size_t j = 0; j < R; ++j) {
                    double s = 0;
                    for (std::size_t k = 0; k < R; ++k) s += M[i * R + k] * L[k * R + j];
                    P[i * R + j] = s;
                }
            L = P;
        };
        if (!t.flip.empty()) {
            if (t.flip.size() != R)
                throw error("sampling_map: " + std::to_string(t.flip.size()) + " flip flags for rank " + std::to_string(R));
            std::array<double, 9> F{};
            for (std::size_t a = 0; a < R; ++a) F[a * R + a] = t.flip[a] ? -1 : 1;
            left_multiply(F);
        }
        const int k = ((t.rot90_k % 4) + 4) % 4;
        if (k) {
            const auto [a, b] = t.rot90_axes;
            if (a >= R || b >= R || a == b)
                throw error("sampling_map: rot90_axes (" + std::to_string(a) + ", " + std::to_string(b) + ") for rank " +
                            std::to_string(R));
            if (k % 2 && extents[a] != extents[b])
                throw error("sampling_map: rot90 k = " + std::to_string(k) + " in a plane of extents " +
                            std::to_string(extents[a]) + " x " + std::to_string(extents[b]) +
                            " would change the extents; only k = 2 keeps them");
            // One backward quarter turn: source a = output b, source b = -output a.
            std::array<double, 9> Q{};
            for (std::size_t i = 0; i < R; ++i) Q[i * R + i] = 1;
            Q[a * R + a] = 0;
            Q[b * R + b] = 0;
            Q[a * R + b] = 1;
            Q[b * R + a] = -1;
            for (int i = 0; i < k; ++i) left_multiply(Q);
        }
        if (!t.rotation.empty()) {
            if (t.rotation.size() != R * R)
                throw error("sampling_map: rotation of " + std::to_string(t.rotation.size()) + " entries for rank " +
                            std::to_string(R) + ", expected " + std::to_string(R * R));
            // Backward in index space: D^-1 R^T D.
            std::array<double, 9> B{};
            for (std::size_t i = 0; i < R; ++i)
                for (std::size_t j = 0; j < R; ++j) B[i * R + j] = t.rotation[j * R + i] * h[j] / h[i];
            left_multiply(B);
        }
        if (!t.scale.empty()) {
            if (t.scale.size() != R)
                throw error("sampling_map: " + std::to_string(t.scale.size()) + " scale factors for rank " +
                            std::to_string(R));
            std::array<double, 9> S{};
            for (std::size_t a = 0; a < R; ++a) {
                if (!(t.scale[a] > 0) || !std::isfinite(t.scale[a]))
                    throw error("sampling_map: scale factor " + std::to_string(t.scale[a]) + " along axis " +
                                std::to_string(a) + ", expected > 0");
                S[a * R + a] = 1 / t.scale[a];
            }
            left_multiply(S);
        }
        linear_ = L;
        if (!t.displacement.values.empty()) {
            if (t.displacement.channels != R || t.displacement.extents != extents ||
                t.displacement.values.size() != R * t.displacement.voxels())
                throw error("sampling_map: displacement of " + std::to_string(t.displacement.channels) + " x " +
                            extents_text(t.displacement.extents) + ", expected " + std::to_string(R) + " x " +
                            extents_text(extents));
            displacement_ = t.displacement.values.data();
            voxels_ = t.displacement.voxels();
        }
    }

    std::size_t rank() const noexcept { return rank_; }
    const std::vector<std::size_t>& extents() const noexcept { return extents_; }
    // The linear part L (rank x rank row-major) and the centre c.
    const std::array<double, 9>& linear() const noexcept { return linear_; }
    const std::array<double, 3>& centre() const noexcept { return centre_; }

    // Source coordinate (entries beyond the rank are 0) of output voxel p (rank indices).
    std::array<double, 3> source(const std::vector<std::size_t>& p) const {
        if (p.size() != rank_)
            throw error("sampling_map: " + std::to_string(p.size()) + " indices for rank " + std::to_string(rank_));
        std::array<std::size_t, 3> at{};
        std::size_t flat = 0;
        for (std::size_t a = 0; a < rank_; ++a) {
            if (p[a] >= extents_[a])
                throw error("sampling_map: index " + std::to_string(p[a]) + " outside extent " +
                            std::to_string(extents_[a]) + " of axis " + std::to_string(a));
            at[a] = p[a];
            flat = flat * extents_[a] + p[a];
        }
        std::array<double, 3> x{};
        if (rank_ == 2)
            source_of<2>(at.data(), flat, x.data());
        else
            source_of<3>(at.data(), flat, x.data());
        return x;
    }

    // The same for rank R, p and x of R values; `flat` is p's C-order index.
    template <std::size_t R>
    void source_of(const std::size_t* p, std::size_t flat, double* x) const noexcept {
        std::array<double, R> q{};
        for (std::size_t a = 0; a < R; ++a) {
            q[a] = double(p[a]) - centre_[a];
            if (displacement_) q[a] += double(displacement_[a * voxels_ + flat]);
        }
        for (std::size_t i = 0; i < R; ++i) {
            double s = centre_[i];
            for (std::size_t j = 0; j < R; ++j) s += linear_[i * R + j] * q[j];
            x[i] = s;
        }
    }

private:
    std::size_t rank_ = 0;
    std::vector<std::size_t> extents_;
    std::array<double, 9> linear_{};
    std::array<double, 3> centre_{};
    const float* displacement_ = nullptr;
    std::size_t voxels_ = 0;
};

namespace detail::augment {

template <std::size_t R, int K, class T, class U>
void warp_rank(const image<T>& in, const sampling_map& map, image<U>& out) {
    std::array<std::ptrdiff_t, R> n{}, stride{};
    std::ptrdiff_t s = 1;
    for (std::size_t a = R; a-- > 0;) {
        n[a] = static_cast<std::ptrdiff_t>(in.extents[a]);
        stride[a] = s;
        s *= n[a];
    }
    const std::size_t C = in.channels;
    std::vector<const T*> src(C);
    std::vector<U*> dst(C);
    for (std::size_t c = 0; c < C; ++c) {
        src[c] = in.channel(c);
        dst[c] = out.channel(c);
    }
    // The output is walked in tiles, which keeps the reads of a rotated or
    // deformed source local.
    std::array<std::size_t, R> tile{}, tiles{};
    std::size_t tile_count = 1;
    for (std::size_t a = 0; a < R; ++a) {
        tile[a] = a + 1 == R ? 64 : (R == 3 ? 8 : 16);
        tiles[a] = (in.extents[a] + tile[a] - 1) / tile[a];
        tile_count *= tiles[a];
    }
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, tile_count, 1), [&](const tbb::blocked_range<std::size_t>& rg) {
        std::array<std::size_t, R> p{}, lo{}, hi{};
        std::array<double, R> x{};
        std::array<std::array<std::ptrdiff_t, K>, R> off{};
        std::array<std::array<double, K>, R> w{};
        for (std::size_t tl = rg.begin(); tl != rg.end(); ++tl) {
            std::size_t rest = tl;
            for (std::size_t a = R; a-- > 0;) {
                lo[a] = (rest % tiles[a]) * tile[a];
                hi[a] = std::min(in.extents[a], lo[a] + tile[a]);
                rest /= tiles[a];
            }
            p = lo;
            for (;;) {
                std::size_t flat = 0;
                for (std::size_t a = 0; a < R; ++a) flat = flat * in.extents[a] + p[a];
                map.source_of<R>(p.data(), flat, x.data());
                for (std::size_t a = 0; a < R; ++a) taps_at<K>(x[a], n[a], stride[a], off[a].data(), w[a].data());
                if constexpr (K == 1) {
                    // A copy: labels keep their exact values, whatever their type.
                    std::ptrdiff_t at = 0;
                    for (std::size_t a = 0; a < R; ++a) at += off[a][0];
                    for (std::size_t c = 0; c < C; ++c) dst[c][flat] = static_cast<U>(src[c][at]);
                } else {
                    for (std::size_t c = 0; c < C; ++c) {
                        double acc = 0;
                        if constexpr (R == 2) {
                            for (int i = 0; i < K; ++i) {
                                const T* line = src[c] + off[0][i];
                                double a1 = 0;
                                for (int k = 0; k < K; ++k) a1 += w[1][k] * double(line[off[1][k]]);
                                acc += w[0][i] * a1;
                            }
                        } else {
                            for (int i = 0; i < K; ++i) {
                                double a0 = 0;
                                for (int m = 0; m < K; ++m) {
                                    const T* line = src[c] + off[0][i] + off[1][m];
                                    double a1 = 0;
                                    for (int k = 0; k < K; ++k) a1 += w[2][k] * double(line[off[2][k]]);
                                    a0 += w[1][m] * a1;
                                }
                                acc += w[0][i] * a0;
                            }
                        }
                        dst[c][flat] = to_value<U>(acc);
                    }
                }
                // Next voxel of the tile, C order.
                std::size_t a = R;
                while (a-- > 0) {
                    if (++p[a] < hi[a]) break;
                    p[a] = lo[a];
                }
                if (a == std::size_t(-1)) break;
            }
        }
    });
}

template <std::size_t R, class T, class U>
void warp_rank(const image<T>& in, const sampling_map& map, interpolation ip, image<U>& out) {
    switch (ip) {
        case interpolation::nearest: warp_rank<R, 1>(in, map, out); break;
        case interpolation::linear: warp_rank<R, 2>(in, map, out); break;
        case interpolation::cubic: warp_rank<R, 4>(in, map, out); break;
    }
}

// Per-channel min, max and mean; the sum in fixed blocks added in order, so
// it does not depend on the number of threads.
struct channel_stats {
    double lo = 0, hi = 0, mean = 0;
};

template <class T>
channel_stats stats_of(const T* v, std::size_t n) {
    constexpr std::size_t block = 1 << 15;
    const std::size_t blocks = (n + block - 1) / block;
    std::vector<double> sums(blocks), los(blocks), his(blocks);
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, blocks, 1), [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t b = r.begin(); b != r.end(); ++b) {
            const std::size_t i0 = b * block, i1 = std::min(n, i0 + block);
            double s = 0, lo = double(v[i0]), hi = lo;
            for (std::size_t i = i0; i < i1; ++i) {
                const double x = double(v[i]);
                s += x;
                lo = std::min(lo, x);
                hi = std::max(hi, x);
            }
            sums[b] = s;
            los[b] = lo;
            his[b] = hi;
        }
    });
    channel_stats st;
    if (!blocks) return st;
    double s = 0;
    st.lo = los[0];
    st.hi = his[0];
    for (std::size_t b = 0; b < blocks; ++b) {
        s += sums[b];
        st.lo = std::min(st.lo, los[b]);
        st.hi = std::max(st.hi, his[b]);
    }
    st.mean = s / double(n);
    return st;
}

template <class T, class F>
void for_each_value(image<T>& img, F&& f) {
    const std::size_t V = img.voxels();
    for (std::size_t c = 0; c < img.channels; ++c) {
        T* v = img.channel(c);
        tbb::parallel_for(tbb::blocked_range<std::size_t>(0, V, 1 << 14), [&](const tbb::blocked_range<std::size_t>& r) {
            for (std::size_t i = r.begin(); i != r.end(); ++i) v[i] = f(c, i, v[i]);
        });
    }
}

// Standard normal of voxel i of channel c under `key` (Box-Muller on two hashes).
inline double normal_at(std::uint64_t key, std::size_t c, std::size_t i) noexcept {
    const std::uint64_t k = mix64(key + (c + 1) * golden);
    const double u1 = 1.0 - unit(mix64(k + (2 * i) * golden)), u2 = unit(mix64(k + (2 * i + 1) * golden));
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

}  // namespace detail::augment

// Resample `in` through `map`: out(p) = in(map(p)) with the given interpolation
// (nearest for integer labels). out gets in's channels, extents and geometry.
template <class T, class U = T>
void warp(const image<T>& in, const sampling_map& map, interpolation ip, image<U>& out) {
    detail::augment::check_image(in, "warp", "input");
    if (in.extents != map.extents())
        throw error("warp: input extents " + extents_text(in.extents) + " differ from the map's " +
                    extents_text(map.extents()));
    out.channels = in.channels;
    out.extents = in.extents;
    out.geom = in.geom;
    out.values.assign(in.values.size(), U{});
    if (in.rank() == 2)
        detail::augment::warp_rank<2>(in, map, ip, out);
    else
        detail::augment::warp_rank<3>(in, map, ip, out);
}

// ---------------------------------------------------------------------------
// Exact index permutations (no interpolation; any rank).

// Mirror along `axis`: out[.., i, ..] = in[.., n - 1 - i, ..].
template <class T>
image<T> flip(const image<T>& in, std::size_t axis) {
    if (axis >= in.rank())
        throw error("flip: axis " + std::to_string(axis) + " for rank " + std::to_string(in.rank()));
    image<T> out = in;
    std::size_t inner = 1;
    for (std::size_t a = axis + 1; a < in.rank(); ++a) inner *= in.extents[a];
    const std::size_t n = in.extents[axis], lines = in.values.size() / (n * inner);
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, lines, 16), [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t o = r.begin(); o != r.end(); ++o)
            for (std::size_t i = 0; i < n; ++i)
                std::copy_n(in.values.data() + (o * n + (n - 1 - i)) * inner, inner, out.values.data() + (o * n + i) * inner);
    });
    return out;
}

// k quarter turns in the plane (a, b), as numpy.rot90(in, k, axes=(a, b)):
// for k = 1, out[.., i_a, .., i_b, ..] = in[.., i_b, .., n_b - 1 - i_a, ..]. Odd k
// swaps the extents of a and b (and their spacings).
template <class T>
image<T> rot90(const image<T>& in, int k, std::size_t a, std::size_t b) {
    const std::size_t R = in.rank();
    if (a >= R || b >= R || a == b)
        throw error("rot90: axes (" + std::to_string(a) + ", " + std::to_string(b) + ") for rank " + std::to_string(R));
    k = ((k % 4) + 4) % 4;
    if (k == 0) return in;
    if (k == 2) return flip(flip(in, a), b);
    image<T> out = in;
    std::swap(out.extents[a], out.extents[b]);
    if (out.geom.spacing.size() == R) std::swap(out.geom.spacing[a], out.geom.spacing[b]);
    std::vector<std::size_t> in_stride(R);
    std::size_t s = 1;
    for (std::size_t i = R; i-- > 0;) {
        in_stride[i] = s;
        s *= in.extents[i];
    }
    const std::size_t V = in.voxels();
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, V, 4096), [&](const tbb::blocked_range<std::size_t>& r) {
        std::vector<std::size_t> p(R);
        for (std::size_t flat = r.begin(); flat != r.end(); ++flat) {
            std::size_t rest = flat;
            for (std::size_t i = R; i-- > 0;) {
                p[i] = rest % out.extents[i];
                rest /= out.extents[i];
            }
            std::size_t src = 0;
            for (std::size_t i = 0; i < R; ++i) {
                std::size_t q = p[i];
                if (i == a) q = k == 1 ? p[b] : in.extents[a] - 1 - p[b];
                if (i == b) q = k == 1 ? in.extents[b] - 1 - p[a] : p[a];
                src += q * in_stride[i];
            }
            for (std::size_t c = 0; c < in.channels; ++c) out.values[c * V + flat] = in.values[c * V + src];
        }
    });
    return out;
}

// ---------------------------------------------------------------------------
// Intensity transforms (per channel; integer images are rounded and clamped).

template <class T>
void adjust_gamma(image<T>& img, double gamma) {
    detail::augment::check_image(img, "adjust_gamma", "image");
    if (!(gamma > 0) || !std::isfinite(gamma)) throw error("adjust_gamma: gamma = " + std::to_string(gamma) + ", expected > 0");
    std::vector<detail::augment::channel_stats> st(img.channels);
    for (std::size_t c = 0; c < img.channels; ++c) st[c] = detail::augment::stats_of(img.channel(c), img.voxels());
    detail::augment::for_each_value(img, [&](std::size_t c, std::size_t, T v) {
        const double lo = st[c].lo, range = st[c].hi - st[c].lo;
        if (!(range > 0)) return v;
        return detail::augment::to_value<T>(lo + range * std::pow((double(v) - lo) / range, gamma));
    });
}

template <class T>
void adjust_contrast_brightness(image<T>& img, double contrast, double brightness) {
    detail::augment::check_image(img, "adjust_contrast_brightness", "image");
    if (!std::isfinite(contrast) || !std::isfinite(brightness))
        throw error("adjust_contrast_brightness: contrast = " + std::to_string(contrast) +
                    ", brightness = " + std::to_string(brightness) + ", expected finite numbers");
    std::vector<detail::augment::channel_stats> st(img.channels);
    for (std::size_t c = 0; c < img.channels; ++c) st[c] = detail::augment::stats_of(img.channel(c), img.voxels());
    detail::augment::for_each_value(img, [&](std::size_t c, std::size_t, T v) {
        return detail::augment::to_value<T>(st[c].mean + contrast * (double(v) - st[c].mean) + brightness);
    });
}

// v + sigma * N(0, 1), the normal value a function of (seed, channel, voxel) only.
template <class T>
void add_gaussian_noise(image<T>& img, double sigma, std::uint64_t seed) {
    if (!(sigma >= 0) || !std::isfinite(sigma))
        throw error("add_gaussian_noise: noise_sigma = " + std::to_string(sigma) + ", expected >= 0");
    detail::augment::check_image(img, "add_gaussian_noise", "image");
    const std::uint64_t key = detail::augment::derive(seed, detail::augment::noise_tag);
    detail::augment::for_each_value(img, [&](std::size_t c, std::size_t i, T v) {
        return detail::augment::to_value<T>(double(v) + sigma * detail::augment::normal_at(key, c, i));
    });
}

// The intensity part of `t`: gamma, then contrast and brightness, then noise.
template <class T>
void apply_intensity(image<T>& img, const transform_params& t) {
    if (t.gamma != 1) adjust_gamma(img, t.gamma);
    if (t.contrast != 1 || t.brightness != 0) adjust_contrast_brightness(img, t.contrast, t.brightness);
    if (t.noise_sigma != 0) add_gaussian_noise(img, t.noise_sigma, t.noise_seed);
}

// ---------------------------------------------------------------------------
// Drawing and applying an augmentation.

namespace detail::augment {

inline void check_probability(double p, const char* key) {
    if (!(p >= 0 && p <= 1)) throw error(std::string("augment: option ") + key + " = " + std::to_string(p) + ", expected in [0, 1]");
}
inline void check_nonnegative(double v, const char* key) {
    if (!(v >= 0) || !std::isfinite(v))
        throw error(std::string("augment: option ") + key + " = " + std::to_string(v) + ", expected >= 0");
}

inline void check_options(const augment_options& o, std::size_t rank) {
    check_probability(o.p_elastic, "p_elastic");
    check_probability(o.p_flip, "p_flip");
    check_probability(o.p_rot90, "p_rot90");
    check_probability(o.p_rotation, "p_rotation");
    check_probability(o.p_scale, "p_scale");
    check_probability(o.p_gamma, "p_gamma");
    check_probability(o.p_contrast, "p_contrast");
    check_probability(o.p_brightness, "p_brightness");
    check_probability(o.p_noise, "p_noise");
    check_nonnegative(o.elastic_sigma, "elastic_sigma");
    check_nonnegative(o.dense_magnitude, "dense_magnitude");
    check_nonnegative(o.max_rotation_deg, "max_rotation_deg");
    check_nonnegative(o.contrast, "contrast");
    check_nonnegative(o.brightness, "brightness");
    check_nonnegative(o.noise_sigma, "noise_sigma");
    if (o.p_elastic > 0 && o.elastic == elastic_kind::grid && o.elastic_grid < 2)
        throw error("augment: option elastic_grid = " + std::to_string(o.elastic_grid) + ", expected >= 2");
    if (o.p_elastic > 0 && o.elastic == elastic_kind::dense && !(o.dense_smoothing > 0 && o.dense_smoothing <= 1e4))
        throw error("augment: option dense_smoothing = " + std::to_string(o.dense_smoothing) + ", expected in (0, 1e4]");
    if (o.p_scale > 0 && !(o.scale_min > 0 && o.scale_min <= o.scale_max && std::isfinite(o.scale_max)))
        throw error("augment: options scale_min = " + std::to_string(o.scale_min) + ", scale_max = " +
                    std::to_string(o.scale_max) + ", expected 0 < scale_min <= scale_max");
    if (o.p_gamma > 0 && !(o.gamma_min > 0 && o.gamma_min <= o.gamma_max && std::isfinite(o.gamma_max)))
        throw error("augment: options gamma_min = " + std::to_string(o.gamma_min) + ", gamma_max = " +
                    std::to_string(o.gamma_max) + ", expected 0 < gamma_min <= gamma_max");
    if (o.p_rotation > 0 && rank == 3 && (o.rotation_axis < -1 || o.rotation_axis > 2))
        throw error("augment: option rotation_axis = " + std::to_string(o.rotation_axis) + ", expected -1, 0, 1 or 2");
    if (o.p_rot90 > 0)
        for (int a : o.rot90_axes)
            if (a < -int(rank) || a >= int(rank))
                throw error("augment: option rot90_axes holds " + std::to_string(a) + " for rank " + std::to_string(rank));
}

}  // namespace detail::augment

// Draw one augmentation for images of these extents (spacing: per axis or
// empty; rotations act in physical space). Every option's stream is drawn from
// whether or not its transform is enabled.
inline transform_params sample_transform(const std::vector<std::size_t>& extents, const std::vector<double>& spacing,
                                         const augment_options& o, std::uint64_t seed) {
    namespace d = detail::augment;
    d::check_rank(extents, "augment");
    const std::size_t R = extents.size();
    d::spacing_or_ones(spacing, R, "augment");
    d::check_options(o, R);
    transform_params t;
    t.image_interpolation = o.image_interpolation;
    {
        d::random_stream rng(seed, d::flip_tag);
        t.flip.assign(R, false);
        for (std::size_t a = 0; a < R; ++a) t.flip[a] = rng.chance(o.p_flip);
    }
    {
        d::random_stream rng(seed, d::rot90_tag);
        const bool on = rng.chance(o.p_rot90);
        const int k = 1 + int(rng.uniform() * 3);
        const auto axis = [&](int a) { return std::size_t(a < 0 ? a + int(R) : a); };
        t.rot90_axes = {axis(o.rot90_axes[0]), axis(o.rot90_axes[1])};
        if (on) {
            if (t.rot90_axes[0] == t.rot90_axes[1])
                throw error("augment: option rot90_axes names axis " + std::to_string(t.rot90_axes[0]) + " twice");
            t.rot90_k = extents[t.rot90_axes[0]] == extents[t.rot90_axes[1]] ? k : 2;
        }
    }
    {
        d::random_stream rng(seed, d::rotation_tag);
        const bool on = rng.chance(o.p_rotation);
        const double radians = rng.uniform(-1, 1) * o.max_rotation_deg * std::numbers::pi / 180;
        const std::array<double, 3> dir{rng.normal(), rng.normal(), rng.normal()};
        if (on) {
            if (R == 2)
                t.rotation = plane_rotation(2, 0, 1, radians);
            else if (o.rotation_axis >= 0) {
                const std::size_t ax = std::size_t(o.rotation_axis), a = ax == 0 ? 1 : 0, b = ax == 2 ? 1 : 2;
                t.rotation = plane_rotation(3, a, b, radians);
            } else
                t.rotation = axis_rotation(dir, radians);
        }
    }
    {
        d::random_stream rng(seed, d::scale_tag);
        const bool on = rng.chance(o.p_scale);
        std::vector<double> f(R);
        for (auto& v : f) v = rng.uniform(o.scale_min, o.scale_max);
        if (!o.anisotropic_scale) std::fill(f.begin(), f.end(), f[0]);
        if (on) t.scale = f;
    }
    {
        d::random_stream rng(seed, d::elastic_tag);
        const bool on = rng.chance(o.p_elastic);
        const std::uint64_t field_seed = rng.next();
        if (on)
            t.displacement = o.elastic == elastic_kind::grid
                                 ? elastic_field(extents, o.elastic_sigma, o.elastic_grid, field_seed)
                                 : dense_elastic_field(extents, o.dense_magnitude, o.dense_smoothing, field_seed);
    }
    {
        d::random_stream rng(seed, d::intensity_tag);
        const bool g = rng.chance(o.p_gamma);
        const double gamma = rng.uniform(o.gamma_min, o.gamma_max);
        const bool c = rng.chance(o.p_contrast);
        const double contrast = rng.uniform(1 - o.contrast, 1 + o.contrast);
        const bool b = rng.chance(o.p_brightness);
        const double brightness = rng.uniform(-o.brightness, o.brightness);
        const bool n = rng.chance(o.p_noise);
        const std::uint64_t noise_seed = rng.next();
        if (g) t.gamma = gamma;
        if (c) t.contrast = contrast;
        if (b) t.brightness = brightness;
        if (n) {
            t.noise_sigma = o.noise_sigma;
            t.noise_seed = noise_seed;
        }
    }
    return t;
}

namespace detail::augment {

template <class T, class W>
void apply(const transform_params& t, const image<T>& img, image<T>& img_out, const image<std::int64_t>* labels,
           image<std::int64_t>* labels_out, const image<W>* weights, image<W>* weights_out) {
    check_image(img, "augment", "image");
    const auto same = [&](const auto& other, const char* name) {
        check_image(other, "augment", name);
        if (other.extents != img.extents)
            throw error(std::string("augment: ") + name + " extents " + extents_text(other.extents) +
                        " differ from the image's " + extents_text(img.extents));
    };
    if (labels) same(*labels, "labels");
    if (weights) same(*weights, "weights");
    if (t.geometric()) {
        const sampling_map map(t, img.extents, img.geom.spacing);
        // Outputs are written to fresh images so that in-place calls (out == in) work.
        image<T> io;
        warp(img, map, t.image_interpolation, io);
        if (labels) {
            image<std::int64_t> lo;
            warp(*labels, map, interpolation::nearest, lo);
            *labels_out = std::move(lo);
        }
        if (weights) {
            image<W> wo;
            warp(*weights, map, interpolation::linear, wo);
            *weights_out = std::move(wo);
        }
        img_out = std::move(io);
    } else {
        if (&img_out != &img) img_out = img;
        if (labels && labels_out != labels) *labels_out = *labels;
        if (weights && weights_out != weights) *weights_out = *weights;
    }
    apply_intensity(img_out, t);
}

}  // namespace detail::augment

// Apply a drawn (or hand-made) transform to an image and its labels.
template <class T>
void apply_transform(const transform_params& t, const image<T>& img, const image<std::int64_t>& labels, image<T>& img_out,
                     image<std::int64_t>& labels_out) {
    detail::augment::apply<T, float>(t, img, img_out, &labels, &labels_out, nullptr, nullptr);
}

// ... and a weight map (transformed like the image, by linear interpolation).
template <class T, class W>
void apply_transform(const transform_params& t, const image<T>& img, const image<std::int64_t>& labels,
                     const image<W>& weights, image<T>& img_out, image<std::int64_t>& labels_out, image<W>& weights_out) {
    detail::augment::apply<T, W>(t, img, img_out, &labels, &labels_out, &weights, &weights_out);
}

// Draw a transform from `seed` and apply it. Returns what was drawn.
template <class T>
transform_params augment(const image<T>& img, const image<std::int64_t>& labels, image<T>& img_out,
                         image<std::int64_t>& labels_out, const augment_options& o, std::uint64_t seed) {
    detail::augment::check_image(img, "augment", "image");
    auto t = sample_transform(img.extents, img.geom.spacing, o, seed);
    apply_transform(t, img, labels, img_out, labels_out);
    return t;
}

template <class T, class W>
transform_params augment(const image<T>& img, const image<std::int64_t>& labels, const image<W>& weights,
                         image<T>& img_out, image<std::int64_t>& labels_out, image<W>& weights_out,
                         const augment_options& o, std::uint64_t seed) {
    detail::augment::check_image(img, "augment", "image");
    auto t = sample_transform(img.extents, img.geom.spacing, o, seed);
    apply_transform(t, img, labels, weights, img_out, labels_out, weights_out);
    return t;
}

}  // namespace ctseg::data
