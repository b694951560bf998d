// U-Net border weight maps and connected-component labelling.
//
//   w(x) = w_c(x) + w0 exp(-(d1(x) + d2(x))^2 / (2 sigma^2))
//
// d1, d2: Euclidean distance (in units of the image spacing) from x to the
// nearest voxel of the nearest and of the second-nearest object. The border
// term is evaluated on background voxels only, as in the U-Net paper, where it
// lifts the thin background gaps that separate touching objects; object voxels
// get w_c alone. With fewer than two objects the term is 0. Objects whose
// voxels touch directly (no background between them) get no border term on
// their interface: draw a background gap between them first.
//
// w_c balances the classes: w_c(x) = N / (K N_class(x)), with N the number of
// voxels that are not ignored, K the number of classes present and N_class the
// voxels of x's class. Every class thus carries the same total weight and w_c
// averages to 1. Classes are background/foreground for an instance image and
// the label values for a semantic one. Ignored voxels get weight 0 (the loss
// skips them anyway) and are neither object nor background.
//
// Distances are exact (per object, the exact distance transform of
// data/distance.hpp restricted to the object's bounding box grown by
// D = sigma sqrt(2 ln 1e7)); voxels farther than D from their second-nearest
// object get no border term, which changes w by less than w0 1e-7.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ctseg/data/distance.hpp"
#include "ctseg/data/image.hpp"
#include "ctseg/error.hpp"

namespace ctseg::data {

// Which neighbours are connected: face (4 in 2D, 6 in 3D: a voxel shares a
// face) or full (8 in 2D, 26 in 3D: also edges and corners).
enum class connectivity { face, full };

struct border_weight_options {
    double w0 = 10;                            // border term amplitude
    double sigma = 5;                          // border term width, in units of the spacing
    bool class_balance = true;                 // w_c as above; false: w_c = 1
    std::optional<std::int64_t> ignore_label;  // voxels with this label: weight 0
    // Semantic input only: how voxels of one class join into objects. Face
    // connectivity keeps objects that meet only at a corner apart.
    connectivity connect = connectivity::face;
};

namespace detail::border {

inline void check_labels(const image<std::int64_t>& labels, const char* what) {
    if (labels.rank() < 1 || labels.rank() > 3)
        throw error(std::string(what) + ": rank " + std::to_string(labels.rank()) + ", expected 1 to 3");
    if (labels.channels != 1)
        throw error(std::string(what) + ": " + std::to_string(labels.channels) + " channels, expected 1");
    if (labels.values.size() != labels.voxels())
        throw error(std::string(what) + ": " + std::to_string(labels.values.size()) + " values for extents " +
                    extents_text(labels.extents));
}

// Neighbour offsets in {-1, 0, 1}^R without 0; face: one nonzero component.
inline std::vector<std::vector<int>> neighbour_offsets(std::size_t R, connectivity c) {
    std::vector<std::vector<int>> out;
    std::size_t count = 1;
    for (std::size_t a = 0; a < R; ++a) count *= 3;
    for (std::size_t k = 0; k < count; ++k) {
        std::vector<int> d(R);
        std::size_t rest = k, nonzero = 0;
        for (std::size_t a = R; a-- > 0;) {
            d[a] = int(rest % 3) - 1;
            rest /= 3;
            nonzero += d[a] != 0;
        }
        if (nonzero == 0 || (c == connectivity::face && nonzero > 1)) continue;
        out.push_back(d);
    }
    return out;
}

}  // namespace detail::border

// Connected components of the voxels whose label is neither `background` nor
// the ignore label; two neighbouring voxels join when their labels are equal.
// Returns ids 1..count numbered in C order of each component's first voxel,
// 0 elsewhere (breadth-first search, linear in the voxels).
inline image<std::int64_t> connected_components(const image<std::int64_t>& labels, connectivity connect = connectivity::face,
                                                std::int64_t background = 0,
                                                std::optional<std::int64_t> ignore_label = std::nullopt,
                                                std::size_t* count = nullptr) {
    detail::border::check_labels(labels, "connected_components");
    const std::size_t R = labels.rank(), V = labels.voxels();
    const auto offsets = detail::border::neighbour_offsets(R, connect);
    std::vector<std::ptrdiff_t> stride(R);
    std::ptrdiff_t s = 1;
    for (std::size_t a = R; a-- > 0;) {
        stride[a] = s;
        s *= std::ptrdiff_t(labels.extents[a]);
    }
    image<std::int64_t> out = image_like<std::int64_t>(labels);
    const auto& lab = labels.values;
    auto& id = out.values;
    std::vector<std::size_t> queue;
    std::vector<std::ptrdiff_t> p(R);
    std::int64_t next = 0;
    for (std::size_t seed = 0; seed < V; ++seed) {
        const std::int64_t v = lab[seed];
        if (id[seed] != 0 || v == background || (ignore_label && v == *ignore_label)) continue;
        id[seed] = ++next;
        queue.assign(1, seed);
        for (std::size_t head = 0; head < queue.size(); ++head) {
            const std::size_t cur = queue[head];
            std::size_t rest = cur;
            for (std::size_t a = R; a-- > 0;) {
                p[a] = std::ptrdiff_t(rest % labels.extents[a]);
                rest /= labels.extents[a];
            }
            for (const auto& d : offsets) {
                std::ptrdiff_t nb = 0;
                bool inside = true;
                for (std::size_t a = 0; a < R && inside; ++a) {
                    const std::ptrdiff_t q = p[a] + d[a];
                    inside = q >= 0 && q < std::ptrdiff_t(labels.extents[a]);
                    nb += q * stride[a];
                }
                if (!inside) continue;
                const auto n = std::size_t(nb);
                if (id[n] == 0 && lab[n] == v) {
                    id[n] = next;
                    queue.push_back(n);
                }
            }
        }
    }
    if (count) *count = std::size_t(next);
    return out;
}

namespace detail::border {

// objects: 0 background, > 0 object id; ignored[i]: voxel i is ignored;
// cls: class of each voxel (for w_c).
inline image<float> weights(const image<std::int64_t>& like, const std::vector<std::int64_t>& objects,
                            const std::vector<std::uint8_t>& ignored, const std::vector<std::int64_t>& cls,
                            const border_weight_options& o) {
    if (!(o.w0 >= 0) || !std::isfinite(o.w0))
        throw error("border_weights: w0 = " + std::to_string(o.w0) + ", expected >= 0");
    if (!(o.sigma > 0) || !std::isfinite(o.sigma))
        throw error("border_weights: sigma = " + std::to_string(o.sigma) + ", expected > 0");
    const std::size_t R = like.rank(), V = like.voxels();
    std::vector<double> spacing = like.geom.spacing;
    if (spacing.empty()) spacing.assign(R, 1.0);
    if (spacing.size() != R)
        throw error("border_weights: " + std::to_string(spacing.size()) + " spacings for rank " + std::to_string(R));
    for (auto h : spacing)
        if (!(h > 0) || !std::isfinite(h)) throw error("border_weights: spacing " + std::to_string(h) + ", expected > 0");

    image<float> out = image_like<float>(like);
    // Class weights.
    std::map<std::int64_t, std::size_t> counts;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < V; ++i)
        if (!ignored[i]) {
            ++counts[cls[i]];
            ++kept;
        }
    std::map<std::int64_t, double> wc;
    for (const auto& [c, n] : counts)
        wc[c] = o.class_balance ? double(kept) / (double(counts.size()) * double(n)) : 1.0;
    for (std::size_t i = 0; i < V; ++i) out.values[i] = ignored[i] ? 0.0f : float(wc[cls[i]]);
    if (o.w0 == 0) return out;

    // Bounding box of every object.
    std::vector<std::size_t> ext = like.extents;
    struct box {
        std::vector<std::size_t> lo, hi;
    };
    std::map<std::int64_t, box> boxes;
    {
        std::vector<std::size_t> p(R);
        for (std::size_t i = 0; i < V; ++i) {
            if (objects[i] <= 0) continue;
            std::size_t rest = i;
            for (std::size_t a = R; a-- > 0;) {
                p[a] = rest % ext[a];
                rest /= ext[a];
            }
            auto [it, fresh] = boxes.try_emplace(objects[i], box{p, p});
            if (!fresh)
                for (std::size_t a = 0; a < R; ++a) {
                    it->second.lo[a] = std::min(it->second.lo[a], p[a]);
                    it->second.hi[a] = std::max(it->second.hi[a], p[a]);
                }
        }
    }
    if (boxes.size() < 2) return out;

    const double reach = o.sigma * std::sqrt(2 * std::log(1e7));
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> d1(V, inf), d2(V, inf);
    std::vector<std::size_t> stride(R);
    {
        std::size_t s = 1;
        for (std::size_t a = R; a-- > 0;) {
            stride[a] = s;
            s *= ext[a];
        }
    }
    for (const auto& [id, b] : boxes) {
        // Crop: the box grown by `reach`; beyond it every voxel is farther than reach.
        std::vector<std::size_t> lo(R), cext(R);
        std::size_t cv = 1;
        for (std::size_t a = 0; a < R; ++a) {
            const auto m = std::size_t(std::ceil(reach / spacing[a]));
            lo[a] = b.lo[a] > m ? b.lo[a] - m : 0;
            const std::size_t hi = std::min(ext[a] - 1, b.hi[a] + m);
            cext[a] = hi - lo[a] + 1;
            cv *= cext[a];
        }
        std::vector<std::size_t> where(cv);  // crop voxel -> image voxel
        std::vector<std::uint8_t> feature(cv);
        std::vector<std::size_t> q(R);
        for (std::size_t k = 0; k < cv; ++k) {
            std::size_t rest = k, flat = 0;
            for (std::size_t a = R; a-- > 0;) {
                q[a] = rest % cext[a];
                rest /= cext[a];
                flat += (q[a] + lo[a]) * stride[a];
            }
            where[k] = flat;
            feature[k] = objects[flat] == id;
        }
        const auto dist = distance_to(feature, cext, spacing);
        for (std::size_t k = 0; k < cv; ++k) {
            const std::size_t i = where[k];
            if (objects[i] != 0 || ignored[i]) continue;
            const double d = dist[k];
            if (d < d1[i]) {
                d2[i] = d1[i];
                d1[i] = d;
            } else if (d < d2[i]) {
                d2[i] = d;
            }
        }
    }
    const double two_s2 = 2 * o.sigma * o.sigma;
    for (std::size_t i = 0; i < V; ++i) {
        if (objects[i] != 0 || ignored[i] || !(d2[i] <= reach)) continue;
        const double s = d1[i] + d2[i];
        out.values[i] = float(double(out.values[i]) + o.w0 * std::exp(-s * s / two_s2));
    }
    return out;
}

}  // namespace detail::border

// From an instance image: 0 background, each positive id one object (ids need
// not be consecutive, an object need not be connected). Negative labels other
// than the ignore label are an error. w_c balances background and foreground.
inline image<float> border_weights_from_instances(const image<std::int64_t>& instances,
                                                  const border_weight_options& o = {}) {
    detail::border::check_labels(instances, "border_weights_from_instances");
    const std::size_t V = instances.voxels();
    std::vector<std::int64_t> objects(V), cls(V);
    std::vector<std::uint8_t> ignored(V);
    for (std::size_t i = 0; i < V; ++i) {
        const std::int64_t v = instances.values[i];
        if (o.ignore_label && v == *o.ignore_label) {
            ignored[i] = 1;
            continue;
        }
        if (v < 0)
            throw error("border_weights_from_instances: label " + std::to_string(v) + " at voxel " + std::to_string(i) +
                        ", expected 0 (background) or a positive object id");
        objects[i] = v;
        cls[i] = v > 0;
    }
    return detail::border::weights(instances, objects, ignored, cls, o);
}

// From a semantic (or binary) label image: 0 background, other values classes;
// objects are the connected components (o.connect) of voxels of one class.
// w_c balances all classes present, background included.
inline image<float> border_weights_from_labels(const image<std::int64_t>& labels, const border_weight_options& o = {}) {
    detail::border::check_labels(labels, "border_weights_from_labels");
    const auto objects = connected_components(labels, o.connect, 0, o.ignore_label);
    const std::size_t V = labels.voxels();
    std::vector<std::uint8_t> ignored(V);
    if (o.ignore_label)
        for (std::size_t i = 0; i < V; ++i) ignored[i] = labels.values[i] == *o.ignore_label;
    return detail::border::weights(labels, objects.values, ignored, labels.values, o);
}

}  // namespace ctseg::data
