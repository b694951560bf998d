// Segmentation metrics: per class Dice, IoU and 95th-percentile Hausdorff
// distance (HD95, in the units of the image spacing), and the pixel error.
//
// Only evaluated voxels count: those inside the optional mask whose truth is
// not the ignore label. Per class c, with T = truth voxels of c, P = predicted
// voxels of c and I = voxels both:
//   Dice = 2 I / (T + P), IoU = I / (T + P - I); NaN when T + P = 0.
//   pixel error = evaluated voxels whose prediction differs from the truth /
//   evaluated voxels; NaN when none is evaluated.
//   HD95: an object is the set of evaluated voxels labelled c; its surface the
//   object voxels with a face neighbour (2D: 4, 3D: 6) outside the object or
//   outside the image. The directed distances from each surface voxel of one
//   object to the nearest surface voxel of the other (Euclidean, spacing
//   applied) have a 95th percentile each (linear interpolation between order
//   statistics: at rank 0.95 (n - 1), as numpy's default); HD95 is the larger
//   of the two. NaN when both objects are empty, +infinity when exactly one is.
// docs/inference.md has the definitions with examples.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "ctseg/data/distance.hpp"
#include "ctseg/data/image.hpp"
#include "ctseg/error.hpp"

namespace ctseg::data {

struct class_scores {
    double dice = std::numeric_limits<double>::quiet_NaN();
    double iou = std::numeric_limits<double>::quiet_NaN();
    double hd95 = std::numeric_limits<double>::quiet_NaN();
    std::size_t truth_voxels = 0, predicted_voxels = 0, intersection = 0;
};

struct segmentation_scores {
    std::vector<class_scores> classes;
    double pixel_error = std::numeric_limits<double>::quiet_NaN();
    std::size_t voxels = 0;  // evaluated voxels
    std::size_t wrong = 0;   // evaluated voxels whose prediction differs from the truth

    // Mean Dice over the classes where it is defined (not NaN), from class 1
    // when skip_background; NaN when there is none.
    double mean_dice(bool skip_background = true) const { return mean_of(&class_scores::dice, skip_background); }
    double mean_iou(bool skip_background = true) const { return mean_of(&class_scores::iou, skip_background); }

private:
    double mean_of(double class_scores::*field, bool skip_background) const {
        double sum = 0;
        std::size_t n = 0;
        for (std::size_t c = skip_background ? 1 : 0; c < classes.size(); ++c)
            if (!std::isnan(classes[c].*field)) { sum += classes[c].*field; ++n; }
        return n ? sum / double(n) : std::numeric_limits<double>::quiet_NaN();
    }
};

// Surface voxels of a binary object (see the top of this file), as 0/1.
inline std::vector<std::uint8_t> surface_voxels(const std::vector<std::uint8_t>& object, const std::vector<std::size_t>& extents) {
    const std::size_t R = extents.size(), V = image<std::uint8_t>::voxels_of(extents);
    if (object.size() != V)
        throw error("surface_voxels: " + std::to_string(object.size()) + " voxels given for extents " + extents_text(extents));
    std::vector<std::size_t> stride(R, 1);
    for (std::size_t a = R; a-- > 1;) stride[a - 1] = stride[a] * extents[a];
    std::vector<std::uint8_t> surface(V, 0);
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, V, 4096), [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t v = r.begin(); v != r.end(); ++v) {
            if (!object[v]) continue;
            bool edge = false;
            for (std::size_t a = 0; a < R && !edge; ++a) {
                const std::size_t i = (v / stride[a]) % extents[a];
                edge = i == 0 || i + 1 == extents[a] || !object[v - stride[a]] || !object[v + stride[a]];
            }
            surface[v] = edge;
        }
    });
    return surface;
}

// The q-quantile (q in [0, 1]) of `values`, linear between order statistics.
inline double quantile(std::vector<double> values, double q) {
    if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
    std::sort(values.begin(), values.end());
    const double rank = q * double(values.size() - 1);
    const std::size_t lo = std::size_t(std::floor(rank)), hi = std::min(lo + 1, values.size() - 1);
    return values[lo] + (rank - double(lo)) * (values[hi] - values[lo]);
}

// HD95 between two binary objects on one grid (see the top of this file).
inline double hausdorff95(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b,
                          const std::vector<std::size_t>& extents, const std::vector<double>& spacing = {}) {
    const auto sa = surface_voxels(a, extents), sb = surface_voxels(b, extents);
    const bool a_empty = std::find(sa.begin(), sa.end(), 1) == sa.end(), b_empty = std::find(sb.begin(), sb.end(), 1) == sb.end();
    if (a_empty && b_empty) return std::numeric_limits<double>::quiet_NaN();
    if (a_empty || b_empty) return std::numeric_limits<double>::infinity();
    auto directed = [&](const std::vector<std::uint8_t>& from, const std::vector<std::uint8_t>& to) {
        const auto d = distance_to(to, extents, spacing);
        std::vector<double> picked;
        for (std::size_t v = 0; v < from.size(); ++v)
            if (from[v]) picked.push_back(d[v]);
        return quantile(std::move(picked), 0.95);
    };
    return std::max(directed(sa, sb), directed(sb, sa));
}

// Sums counts over many label images (or slices) so that Dice, IoU and the
// pixel error come out over all their evaluated voxels at once; HD95 is
// computed per added image, and result() reports their mean over the images
// where it is defined (not NaN): +infinity if any image has +infinity, NaN if
// none has a value (or hausdorff is off).
class score_accumulator {
public:
    explicit score_accumulator(std::size_t classes, std::optional<std::int64_t> ignore = {}, bool hausdorff = true)
        : classes_(classes), ignore_(ignore), hausdorff_(hausdorff), totals_(classes), hd_sum_(classes, 0.0),
          hd_count_(classes, 0), hd_infinite_(classes, false) {
        if (classes == 0) throw error("score_accumulator: classes must be at least 1, got 0");
    }

    // Adds one prediction / truth pair (one-channel label images of equal
    // extents; mask: one entry per voxel, nonzero = evaluate) and returns its
    // own scores.
    segmentation_scores add(const image<std::int64_t>& pred, const image<std::int64_t>& truth,
                            const std::vector<std::uint8_t>* mask = nullptr) {
        check(pred, truth, mask);
        const std::size_t V = truth.voxels();
        auto evaluated = [&](std::size_t v) {
            return (!mask || (*mask)[v]) && !(ignore_ && truth.values[v] == *ignore_);
        };
        counts here(classes_);
        for (std::size_t v = 0; v < V; ++v) {
            if (!evaluated(v)) continue;
            const auto t = std::size_t(truth.values[v]), p = std::size_t(pred.values[v]);
            ++here.voxels;
            ++here.truth[t];
            ++here.predicted[p];
            if (p == t) ++here.intersection[t];
        }
        segmentation_scores s = scores_of(here);
        if (hausdorff_) {
            const auto spacing = spacing_of(pred, truth);
            std::vector<std::uint8_t> a(V), b(V);
            for (std::size_t c = 0; c < classes_; ++c) {
                auto& cs = s.classes[c];
                if (cs.truth_voxels == 0 && cs.predicted_voxels == 0) cs.hd95 = std::numeric_limits<double>::quiet_NaN();
                else if (cs.truth_voxels == 0 || cs.predicted_voxels == 0) cs.hd95 = std::numeric_limits<double>::infinity();
                else {
                    for (std::size_t v = 0; v < V; ++v) {
                        const bool e = evaluated(v);
                        a[v] = e && std::size_t(pred.values[v]) == c;
                        b[v] = e && std::size_t(truth.values[v]) == c;
                    }
                    cs.hd95 = hausdorff95(a, b, truth.extents, spacing);
                }
                if (std::isinf(cs.hd95)) hd_infinite_[c] = true;
                else if (!std::isnan(cs.hd95)) { hd_sum_[c] += cs.hd95; ++hd_count_[c]; }
            }
        }
        totals_.add(here);
        ++images_;
        return s;
    }

    segmentation_scores result() const {
        segmentation_scores s = scores_of(totals_);
        for (std::size_t c = 0; c < classes_; ++c)
            s.classes[c].hd95 = hd_infinite_[c] ? std::numeric_limits<double>::infinity()
                                : hd_count_[c]  ? hd_sum_[c] / double(hd_count_[c])
                                                : std::numeric_limits<double>::quiet_NaN();
        return s;
    }

    std::size_t images() const noexcept { return images_; }
    std::size_t classes() const noexcept { return classes_; }

private:
    struct counts {
        std::vector<std::size_t> truth, predicted, intersection;
        std::size_t voxels = 0;
        explicit counts(std::size_t k) : truth(k, 0), predicted(k, 0), intersection(k, 0) {}
        void add(const counts& o) {
            for (std::size_t c = 0; c < truth.size(); ++c) {
                truth[c] += o.truth[c];
                predicted[c] += o.predicted[c];
                intersection[c] += o.intersection[c];
            }
            voxels += o.voxels;
        }
    };

    segmentation_scores scores_of(const counts& n) const {
        segmentation_scores s;
        s.classes.resize(classes_);
        std::size_t right = 0;
        for (std::size_t c = 0; c < classes_; ++c) {
            auto& cs = s.classes[c];
            cs.truth_voxels = n.truth[c];
            cs.predicted_voxels = n.predicted[c];
            cs.intersection = n.intersection[c];
            right += n.intersection[c];
            const double sum = double(n.truth[c] + n.predicted[c]), i = double(n.intersection[c]);
            if (sum > 0) {
                cs.dice = 2 * i / sum;
                cs.iou = i / (sum - i);
            }
        }
        s.voxels = n.voxels;
        s.wrong = n.voxels - right;
        if (n.voxels) s.pixel_error = double(s.wrong) / double(n.voxels);
        return s;
    }

    void check(const image<std::int64_t>& pred, const image<std::int64_t>& truth, const std::vector<std::uint8_t>* mask) const {
        if (pred.extents != truth.extents)
            throw error("metrics: prediction extents " + extents_text(pred.extents) + " differ from truth extents " +
                        extents_text(truth.extents));
        if (pred.channels != 1 || truth.channels != 1)
            throw error("metrics: label images have one channel; prediction has " + std::to_string(pred.channels) +
                        ", truth " + std::to_string(truth.channels));
        const std::size_t V = truth.voxels();
        if (pred.values.size() != V || truth.values.size() != V)
            throw error("metrics: prediction holds " + std::to_string(pred.values.size()) + " and truth " +
                        std::to_string(truth.values.size()) + " labels for extents " + extents_text(truth.extents) + " (" +
                        std::to_string(V) + " voxels)");
        if (mask && mask->size() != V)
            throw error("metrics: mask has " + std::to_string(mask->size()) + " entries for " + std::to_string(V) +
                        " voxels (" + extents_text(truth.extents) + ")");
        const auto K = std::int64_t(classes_);
        for (std::size_t v = 0; v < V; ++v) {
            const std::int64_t p = pred.values[v], t = truth.values[v];
            if (p < 0 || p >= K)
                throw error("metrics: predicted label " + std::to_string(p) + " at voxel " + std::to_string(v) +
                            " is outside [0, " + std::to_string(K) + ")");
            if ((t < 0 || t >= K) && !(ignore_ && t == *ignore_))
                throw error("metrics: truth label " + std::to_string(t) + " at voxel " + std::to_string(v) + " is outside [0, " +
                            std::to_string(K) + ")" + (ignore_ ? " and not the ignore label " + std::to_string(*ignore_) : std::string()));
        }
    }

    // The truth's spacing, else the prediction's, else 1 per axis; both given must agree.
    static std::vector<double> spacing_of(const image<std::int64_t>& pred, const image<std::int64_t>& truth) {
        const std::size_t R = truth.rank();
        auto text = [](const std::vector<double>& s) {
            std::string t;
            for (std::size_t i = 0; i < s.size(); ++i) t += (i ? "x" : "") + std::to_string(s[i]);
            return t;
        };
        for (const auto* s : {&pred.geom.spacing, &truth.geom.spacing})
            if (!s->empty() && s->size() != R)
                throw error("metrics: spacing " + text(*s) + " has " + std::to_string(s->size()) + " entries for rank " +
                            std::to_string(R));
        if (!pred.geom.spacing.empty() && !truth.geom.spacing.empty())
            for (std::size_t a = 0; a < R; ++a)
                if (std::abs(pred.geom.spacing[a] - truth.geom.spacing[a]) > 1e-6 * std::abs(truth.geom.spacing[a]))
                    throw error("metrics: prediction spacing " + text(pred.geom.spacing) + " differs from truth spacing " +
                                text(truth.geom.spacing));
        if (!truth.geom.spacing.empty()) return truth.geom.spacing;
        if (!pred.geom.spacing.empty()) return pred.geom.spacing;
        return std::vector<double>(R, 1.0);
    }

    std::size_t classes_;
    std::optional<std::int64_t> ignore_;
    bool hausdorff_;
    counts totals_;
    std::vector<double> hd_sum_;
    std::vector<std::size_t> hd_count_;
    std::vector<bool> hd_infinite_;
    std::size_t images_ = 0;
};

// The scores of one prediction against its truth (score_accumulator with one image).
inline segmentation_scores evaluate(const image<std::int64_t>& pred, const image<std::int64_t>& truth, std::size_t classes,
                                    std::optional<std::int64_t> ignore = {}, const std::vector<std::uint8_t>* mask = nullptr,
                                    bool hausdorff = true) {
    score_accumulator acc(classes, ignore, hausdorff);
    return acc.add(pred, truth, mask);
}

}  // namespace ctseg::data
