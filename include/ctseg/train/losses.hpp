// Training losses for dense segmentation and their gradients w.r.t. the logits.
//
// logits: N x C x plane (contiguous, C-order; plane = product of the spatial
// extents), target: N x plane class indices, weight: optional N x plane
// per-pixel weights (U-Net border weights), ignore_index: optional label whose
// pixels contribute nothing (sparse annotation, as in 3D U-Net). With
// m_i = 0 for ignored pixels and 1 otherwise, p = softmax(logits) over C and
// g = one-hot(target):
//
//   ce      = sum_i m_i w_i CE_i / max(1, sum_i m_i)        (sums over n and i)
//   dice    = 1 - mean_{n,c} (2 sum_i m_i p_ic g_ic + eps) /
//                            (sum_i m_i p_ic + sum_i m_i g_ic + eps)
//             (sums over the positions i of sample n; eps = 1e-5; no weight)
//   dice_ce = ce + dice
//
// With dice_average::present_classes, each sample averages only over the set
// S_n of classes present in its non-ignored target (sum_i m_i g_ic > 0); a
// class absent from the target contributes nothing (neither value nor
// gradient), so a crop that misses a small structure is not pushed towards
// predicting nothing of it, and a sample with S_n empty contributes 0:
//
//   dice    = (1/N) sum_n [S_n not empty] (1 - (1/|S_n|) sum_{c in S_n} D_nc),
//   D_nc    = (2 sum_i m_i p_ic g_ic + eps) / (sum_i m_i p_ic + sum_i m_i g_ic + eps)
//
// Everything is accumulated in double. Pixels are reduced in fixed blocks whose
// partial sums are added in block order, so the value and the gradient do not
// depend on the number of threads.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ctseg/error.hpp"
#include "ctseg/exec/parallel.hpp"

namespace ctseg::train {

enum class loss_kind { ce, dice, dice_ce };

constexpr const char* loss_name(loss_kind k) noexcept {
    switch (k) {
        case loss_kind::ce: return "ce";
        case loss_kind::dice: return "dice";
        case loss_kind::dice_ce: return "dice_ce";
    }
    return "?";
}

inline constexpr double dice_eps = 1e-5;

// Which (sample, class) Dice terms the dice loss averages.
enum class dice_average {
    all_classes,      // every class of every sample
    present_classes,  // per sample, the classes present in its non-ignored target
};

// Sizes of a logits tensor N x C x plane (plane: product of the spatial extents).
struct loss_shape {
    std::size_t n = 0;
    std::size_t c = 0;
    std::size_t plane = 0;
};

template <class T>
struct loss_options {
    loss_kind kind = loss_kind::dice_ce;
    const T* weight = nullptr;                // N x plane per-pixel CE weights, or null (all 1)
    std::optional<std::int64_t> ignore_index;  // label of pixels that contribute nothing
    double eps = dice_eps;                    // Dice smoothing term
    dice_average dice_over = dice_average::all_classes;
};

// Value of each part of a loss (ce and dice are 0 when the kind excludes them).
struct loss_value {
    double total = 0;
    double ce = 0;
    double dice = 0;
};

namespace detail::loss {

// Pixels per reduction block: fixed, so that partial sums do not depend on the
// number of threads.
inline constexpr std::size_t block_pixels = 2048;

inline void check_shape(const loss_shape& s, const char* what) {
    if (s.n == 0 || s.c == 0)
        throw error(std::string(what) + ": logits must have N >= 1 and C >= 1 (got N = " + std::to_string(s.n) +
                    ", C = " + std::to_string(s.c) + ")");
    const std::size_t max = std::numeric_limits<std::size_t>::max();
    if (s.plane != 0 && (s.n > max / s.plane || s.n * s.plane > max / s.c))
        throw error(std::string(what) + ": logits size N x C x plane overflows");
}

inline void check_labels(const std::int64_t* target, const loss_shape& s, std::optional<std::int64_t> ignore,
                         const char* what) {
    const auto c = static_cast<std::int64_t>(s.c);
    for (std::size_t n = 0; n < s.n; ++n) {
        const std::int64_t* t = target + n * s.plane;
        for (std::size_t i = 0; i < s.plane; ++i) {
            const std::int64_t v = t[i];
            if ((v < 0 || v >= c) && !(ignore && v == *ignore)) {
                std::string msg = std::string(what) + ": target label " + std::to_string(v) + " at (n = " +
                                  std::to_string(n) + ", index = " + std::to_string(i) +
                                  ") is outside [0, C) with C = " + std::to_string(s.c);
                if (ignore) msg += " and is not the ignore label " + std::to_string(*ignore);
                throw error(msg);
            }
        }
    }
}

// Softmax of the C logits of one pixel (stride `plane` apart) into p; returns
// the log-sum-exp.
template <class T>
double softmax(const T* z, std::size_t c, std::size_t plane, double* p) {
    double mx = -std::numeric_limits<double>::infinity();
    for (std::size_t k = 0; k < c; ++k) mx = std::max(mx, static_cast<double>(z[k * plane]));
    double sum = 0;
    for (std::size_t k = 0; k < c; ++k) {
        p[k] = std::exp(static_cast<double>(z[k * plane]) - mx);
        sum += p[k];
    }
    const double inv = 1.0 / sum;
    for (std::size_t k = 0; k < c; ++k) p[k] *= inv;
    return mx + std::log(sum);
}

// Partial sums of one block of pixels of one sample.
struct block_sums {
    double ce = 0;      // sum m w CE
    double mask = 0;    // sum m
    std::vector<double> inter, prob, gt;  // per class: sum m p g, sum m p, sum m g
};

}  // namespace detail::loss

// The loss and, if `grad` is not null, its gradient w.r.t. the logits (N x C x
// plane, written, not accumulated). Labels outside [0, C) other than the ignore
// label are a ctseg::error naming the label, its position and C.
template <class T>
    requires std::is_floating_point_v<T>
loss_value compute_loss(const T* logits, const std::int64_t* target, const loss_shape& shape,
                        const loss_options<T>& opt, T* grad = nullptr) {
    namespace d = detail::loss;
    d::check_shape(shape, "loss");
    d::check_labels(target, shape, opt.ignore_index, "loss");
    const std::size_t N = shape.n, C = shape.c, P = shape.plane;
    const bool want_ce = opt.kind != loss_kind::dice;
    const bool want_dice = opt.kind != loss_kind::ce;
    const auto ignored = [&](std::int64_t v) { return opt.ignore_index && v == *opt.ignore_index; };

    // Pass 1: per-block partial sums, in parallel; blocks never straddle samples.
    const std::size_t blocks_per_sample = P == 0 ? 0 : (P + d::block_pixels - 1) / d::block_pixels;
    const std::size_t nblocks = N * blocks_per_sample;
    std::vector<d::block_sums> part(nblocks);
    exec::parallel_for_each(static_cast<exec::index_t>(nblocks), [&](exec::index_t b_) {
        const auto b = static_cast<std::size_t>(b_);
        const std::size_t n = b / blocks_per_sample;
        const std::size_t i0 = (b % blocks_per_sample) * d::block_pixels;
        const std::size_t i1 = std::min(P, i0 + d::block_pixels);
        d::block_sums& s = part[b];
        if (want_dice) {
            s.inter.assign(C, 0.0);
            s.prob.assign(C, 0.0);
            s.gt.assign(C, 0.0);
        }
        std::vector<double> p(C);
        const T* z = logits + n * C * P;
        const std::int64_t* t = target + n * P;
        const T* w = opt.weight ? opt.weight + n * P : nullptr;
        for (std::size_t i = i0; i < i1; ++i) {
            if (ignored(t[i])) continue;
            const auto y = static_cast<std::size_t>(t[i]);
            const double lse = d::softmax(z + i, C, P, p.data());
            s.mask += 1;
            if (want_ce) {
                const double ce = lse - static_cast<double>(z[y * P + i]);
                s.ce += (w ? static_cast<double>(w[i]) : 1.0) * ce;
            }
            if (want_dice) {
                for (std::size_t k = 0; k < C; ++k) s.prob[k] += p[k];
                s.inter[y] += p[y];
                s.gt[y] += 1;
            }
        }
    });

    // Fixed-order combination.
    double ce_sum = 0, mask_sum = 0;
    std::vector<double> inter(want_dice ? N * C : 0), prob(inter.size()), gt(inter.size());
    for (std::size_t b = 0; b < nblocks; ++b) {
        const d::block_sums& s = part[b];
        ce_sum += s.ce;
        mask_sum += s.mask;
        if (want_dice) {
            const std::size_t n = b / blocks_per_sample;
            for (std::size_t k = 0; k < C; ++k) {
                inter[n * C + k] += s.inter[k];
                prob[n * C + k] += s.prob[k];
                gt[n * C + k] += s.gt[k];
            }
        }
    }
    const double denom_ce = std::max(1.0, mask_sum);
    loss_value r;
    // Dice terms per (n, c): D = (2 I + eps) / den, den = P + G + eps, and the
    // weight of each term in the mean: 1 / (N C), or 1 / (N |S_n|) for a class
    // present in sample n and 0 for an absent one.
    std::vector<double> dice_d(inter.size()), dice_den(inter.size()), dice_w(inter.size());
    if (want_ce) r.ce = ce_sum / denom_ce;
    if (want_dice) {
        const bool present_only = opt.dice_over == dice_average::present_classes;
        double mean = 0, present_loss = 0;
        for (std::size_t n = 0; n < N; ++n) {
            std::size_t present = 0;
            for (std::size_t k = 0; k < C; ++k) present += gt[n * C + k] > 0 ? 1 : 0;
            const double w = 1.0 / static_cast<double>(N * (present_only ? std::max<std::size_t>(present, 1) : C));
            double sample_sum = 0;
            for (std::size_t k = 0; k < C; ++k) {
                const std::size_t j = n * C + k;
                dice_den[j] = prob[j] + gt[j] + opt.eps;
                dice_d[j] = (2 * inter[j] + opt.eps) / dice_den[j];
                dice_w[j] = present_only && gt[j] == 0 ? 0.0 : w;
                mean += dice_d[j];
                if (dice_w[j] != 0) sample_sum += dice_d[j];
            }
            if (present != 0) present_loss += (1.0 - sample_sum / static_cast<double>(present)) / static_cast<double>(N);
        }
        r.dice = present_only ? present_loss : 1.0 - mean / static_cast<double>(N * C);
    }
    r.total = r.ce + r.dice;
    if (!grad) return r;

    // Pass 2: the gradient, pixel by pixel.
    //   ce:   dL/dz_c = m w (p_c - g_c) / max(1, sum m)
    //   dice: dL/dp_c = -m w_nc (2 g_c - D_nc) / den_nc (w_nc: the term's weight
    //         in the mean), then through the softmax: dL/dz_c = p_c (a_c - sum_k a_k p_k)
    exec::parallel_for_each(static_cast<exec::index_t>(nblocks), [&](exec::index_t b_) {
        const auto b = static_cast<std::size_t>(b_);
        const std::size_t n = b / blocks_per_sample;
        const std::size_t i0 = (b % blocks_per_sample) * d::block_pixels;
        const std::size_t i1 = std::min(P, i0 + d::block_pixels);
        std::vector<double> p(C), a(want_dice ? C : 0);
        const T* z = logits + n * C * P;
        T* gz = grad + n * C * P;
        const std::int64_t* t = target + n * P;
        const T* w = opt.weight ? opt.weight + n * P : nullptr;
        for (std::size_t i = i0; i < i1; ++i) {
            if (ignored(t[i])) {
                for (std::size_t k = 0; k < C; ++k) gz[k * P + i] = T(0);
                continue;
            }
            const auto y = static_cast<std::size_t>(t[i]);
            d::softmax(z + i, C, P, p.data());
            double dot = 0;
            if (want_dice) {
                for (std::size_t k = 0; k < C; ++k) {
                    const double g = k == y ? 2.0 : 0.0;
                    const std::size_t j = n * C + k;
                    a[k] = dice_w[j] == 0 ? 0.0 : -(g - dice_d[j]) * dice_w[j] / dice_den[j];
                    dot += a[k] * p[k];
                }
            }
            const double ce_scale = want_ce ? (w ? static_cast<double>(w[i]) : 1.0) / denom_ce : 0.0;
            for (std::size_t k = 0; k < C; ++k) {
                double v = 0;
                if (want_ce) v += ce_scale * (p[k] - (k == y ? 1.0 : 0.0));
                if (want_dice) v += p[k] * (a[k] - dot);
                gz[k * P + i] = static_cast<T>(v);
            }
        }
    });
    return r;
}

// Span form: sizes are checked against the shape.
template <class T>
    requires std::is_floating_point_v<T>
loss_value compute_loss(std::span<const T> logits, std::span<const std::int64_t> target, const loss_shape& shape,
                        const loss_options<T>& opt, std::span<T> grad = {}) {
    detail::loss::check_shape(shape, "loss");
    const std::size_t px = shape.n * shape.plane;
    if (logits.size() != px * shape.c || target.size() != px || (!grad.empty() && grad.size() != logits.size()))
        throw error("loss: sizes do not match N = " + std::to_string(shape.n) + ", C = " + std::to_string(shape.c) +
                    ", plane = " + std::to_string(shape.plane) + " (logits " + std::to_string(logits.size()) +
                    ", target " + std::to_string(target.size()) + ", grad " + std::to_string(grad.size()) + ")");
    return compute_loss(logits.data(), target.data(), shape, opt, grad.empty() ? nullptr : grad.data());
}

// Hard Dice counts of argmax predictions against the target, per class, summed
// over every pixel given (pixels with the ignore label are skipped). Add
// batches with add(), read dice() at the end of a validation pass.
struct dice_counts {
    std::vector<std::int64_t> tp, fp, fn;

    explicit dice_counts(std::size_t classes = 0) : tp(classes, 0), fp(classes, 0), fn(classes, 0) {}

    std::size_t classes() const noexcept { return tp.size(); }

    // Counts of one batch of logits (N x C x plane); C must equal classes().
    template <class T>
        requires std::is_floating_point_v<T>
    void add(const T* logits, const std::int64_t* target, const loss_shape& shape,
             std::optional<std::int64_t> ignore_index = std::nullopt) {
        detail::loss::check_shape(shape, "dice");
        if (shape.c != classes())
            throw error("dice: logits have C = " + std::to_string(shape.c) + " but the counts have " +
                        std::to_string(classes()) + " classes");
        detail::loss::check_labels(target, shape, ignore_index, "dice");
        const std::size_t C = shape.c, P = shape.plane;
        for (std::size_t n = 0; n < shape.n; ++n) {
            const T* z = logits + n * C * P;
            const std::int64_t* t = target + n * P;
            for (std::size_t i = 0; i < P; ++i) {
                if (ignore_index && t[i] == *ignore_index) continue;
                std::size_t best = 0;  // first maximum, as torch.argmax
                for (std::size_t k = 1; k < C; ++k)
                    if (z[k * P + i] > z[best * P + i]) best = k;
                const auto y = static_cast<std::size_t>(t[i]);
                if (best == y) {
                    ++tp[y];
                } else {
                    ++fp[best];
                    ++fn[y];
                }
            }
        }
    }

    void merge(const dice_counts& o) {
        if (o.classes() != classes())
            throw error("dice: cannot merge counts of " + std::to_string(o.classes()) + " classes into " +
                        std::to_string(classes()));
        for (std::size_t k = 0; k < classes(); ++k) {
            tp[k] += o.tp[k];
            fp[k] += o.fp[k];
            fn[k] += o.fn[k];
        }
    }

    // 2 TP / (2 TP + FP + FN) per class; NaN for a class absent from both the
    // prediction and the target.
    std::vector<double> dice() const {
        std::vector<double> r(classes());
        for (std::size_t k = 0; k < classes(); ++k) {
            const auto den = 2 * tp[k] + fp[k] + fn[k];
            r[k] = den == 0 ? std::numeric_limits<double>::quiet_NaN()
                            : 2.0 * static_cast<double>(tp[k]) / static_cast<double>(den);
        }
        return r;
    }
};

// Hard Dice per class of one batch (see dice_counts::dice()).
template <class T>
    requires std::is_floating_point_v<T>
std::vector<double> dice_per_class(const T* logits, const std::int64_t* target, const loss_shape& shape,
                                   std::optional<std::int64_t> ignore_index = std::nullopt) {
    dice_counts c(shape.c);
    c.add(logits, target, shape, ignore_index);
    return c.dice();
}

}  // namespace ctseg::train
