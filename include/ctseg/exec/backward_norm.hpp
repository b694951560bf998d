// Training-mode batch normalisation (forward with batch statistics and running
// statistics update, backward) and the backward of instance normalisation.
// Sums are accumulated in double over fixed chunks of each plane and combined
// in (sample, chunk) order: results do not depend on the thread count.
#pragma once
#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <vector>

#include "ctseg/exec/geometry.hpp"
#include "ctseg/exec/parallel.hpp"
#include "ctseg/exec/pointwise.hpp"

namespace ctseg::exec {
namespace detail {

// Sum of f(i) over [0, len) in double, four interleaved partial sums combined
// in a fixed order.
template <class F>
double fixed_sum(index_t len, F&& f) {
    double s[4] = {0, 0, 0, 0};
    index_t i = 0;
    for (; i + 4 <= len; i += 4)
        for (int k = 0; k < 4; ++k) s[k] += f(i + k);
    for (; i < len; ++i) s[0] += f(i);
    return (s[0] + s[1]) + (s[2] + s[3]);
}

// out[c * W + w] = sum over samples and chunks of the plane of the W values
// f(n, c, begin, end, double* vals) writes; fixed chunks, fixed order.
template <int W, class F>
std::vector<double> channel_reduce(index_t batch, index_t C, index_t plane, F&& f) {
    const index_t chunk = pointwise_chunk;
    const index_t chunks = (plane + chunk - 1) / chunk;
    std::vector<double> part(std::size_t(batch * C * chunks * W), 0.0), out(std::size_t(C * W), 0.0);
    for_each_plane_chunk(batch, C, plane, [&](index_t n, index_t c, index_t b, index_t e) {
        f(n, c, b, e, part.data() + ((n * C + c) * chunks + b / chunk) * W);
    });
    parallel_for_each(C, [&](index_t c) {
        for (int w = 0; w < W; ++w) {
            double s = 0;
            for (index_t n = 0; n < batch; ++n)
                for (index_t k = 0; k < chunks; ++k) s += part[std::size_t(((n * C + c) * chunks + k) * W + w)];
            out[std::size_t(c * W + w)] = s;
        }
    });
    return out;
}

}  // namespace detail

// Batch normalisation in training mode: per channel mean and biased variance
// over (batch, positions); y = (x - mean) / sqrt(var + eps) * gamma + beta
// (null gamma means 1, null beta 0). running_mean / running_var (nullable) are
// updated as PyTorch: r = (1 - momentum) r + momentum stat, with the unbiased
// variance n / (n - 1) var. save_mean / save_invstd (nullable) receive mean and
// 1 / sqrt(var + eps) for the backward. x and y may be the same tensor.
template <class T, std::size_t R>
void batch_norm_train_forward(index_t batch, tensor_ref<const T, R> x, tensor_ref<T, R> y, const T* gamma,
                              const T* beta, T eps, T momentum, T* running_mean, T* running_var, T* save_mean,
                              T* save_invstd) {
    assert(x.channels == y.channels && x.plane() == y.plane());
    const index_t C = x.channels, plane = x.plane();
    const index_t count = batch * plane;
    if (batch <= 0 || C <= 0 || plane <= 0) return;
    const auto sums = detail::channel_reduce<1>(batch, C, plane, [&](index_t n, index_t c, index_t b, index_t e, double* o) {
        const T* p = x.data + n * x.batch_stride + c * plane + b;
        o[0] = detail::fixed_sum(e - b, [&](index_t i) { return double(p[i]); });
    });
    std::vector<double> mean(static_cast<std::size_t>(C)), invstd(static_cast<std::size_t>(C));
    for (index_t c = 0; c < C; ++c) mean[std::size_t(c)] = sums[std::size_t(c)] / double(count);
    const auto sq = detail::channel_reduce<1>(batch, C, plane, [&](index_t n, index_t c, index_t b, index_t e, double* o) {
        const T* p = x.data + n * x.batch_stride + c * plane + b;
        const double m = mean[std::size_t(c)];
        o[0] = detail::fixed_sum(e - b, [&](index_t i) {
            const double d = double(p[i]) - m;
            return d * d;
        });
    });
    const double m = double(momentum);
    for (index_t c = 0; c < C; ++c) {
        const double var = sq[std::size_t(c)] / double(count);
        invstd[std::size_t(c)] = 1.0 / std::sqrt(var + double(eps));
        if (save_mean) save_mean[c] = T(mean[std::size_t(c)]);
        if (save_invstd) save_invstd[c] = T(invstd[std::size_t(c)]);
        const double unbiased = count > 1 ? var * double(count) / double(count - 1) : var;
        if (running_mean) running_mean[c] = T((1.0 - m) * double(running_mean[c]) + m * mean[std::size_t(c)]);
        if (running_var) running_var[c] = T((1.0 - m) * double(running_var[c]) + m * unbiased);
    }
    detail::for_each_plane_chunk(batch, C, plane, [&](index_t n, index_t c, index_t b, index_t e) {
        const T* p = x.data + n * x.batch_stride + c * plane;
        T* q = y.data + n * y.batch_stride + c * plane;
        const double g = gamma ? double(gamma[c]) : 1.0;
        const T a = T(invstd[std::size_t(c)] * g), mu = T(mean[std::size_t(c)]);
        const T sh = beta ? beta[c] : T(0);
        for (index_t i = b; i < e; ++i) q[i] = (p[i] - mu) * a + sh;
    });
}

// Backward of batch_norm_train_forward with xhat = (x - save_mean) * save_invstd:
// dbeta += sum dy, dgamma += sum dy xhat (both nullable),
// dx += gamma invstd (dy - mean(dy) - xhat mean(dy xhat)) (means over batch and positions).
template <class T, std::size_t R>
void batch_norm_backward(index_t batch, tensor_ref<const T, R> x, tensor_ref<const T, R> dy, const T* gamma,
                         const T* save_mean, const T* save_invstd, tensor_ref<T, R> dx, T* dgamma, T* dbeta) {
    assert(x.channels == dy.channels && dx.channels == dy.channels);
    assert(x.plane() == dy.plane() && dx.plane() == dy.plane());
    const index_t C = x.channels, plane = x.plane();
    const index_t count = batch * plane;
    if (batch <= 0 || C <= 0 || plane <= 0) return;
    const auto sums = detail::channel_reduce<2>(batch, C, plane, [&](index_t n, index_t c, index_t b, index_t e, double* o) {
        const T* p = x.data + n * x.batch_stride + c * plane + b;
        const T* g = dy.data + n * dy.batch_stride + c * plane + b;
        const double mu = double(save_mean[c]), is = double(save_invstd[c]);
        o[0] = detail::fixed_sum(e - b, [&](index_t i) { return double(g[i]); });
        o[1] = detail::fixed_sum(e - b, [&](index_t i) { return double(g[i]) * ((double(p[i]) - mu) * is); });
    });
    for (index_t c = 0; c < C; ++c) {
        if (dbeta) dbeta[c] += T(sums[std::size_t(2 * c)]);
        if (dgamma) dgamma[c] += T(sums[std::size_t(2 * c + 1)]);
    }
    detail::for_each_plane_chunk(batch, C, plane, [&](index_t n, index_t c, index_t b, index_t e) {
        const T* p = x.data + n * x.batch_stride + c * plane;
        const T* g = dy.data + n * dy.batch_stride + c * plane;
        T* d = dx.data + n * dx.batch_stride + c * plane;
        const double is = double(save_invstd[c]);
        const T k = T((gamma ? double(gamma[c]) : 1.0) * is);
        const T mdy = T(sums[std::size_t(2 * c)] / double(count));
        const T mdx = T(sums[std::size_t(2 * c + 1)] / double(count) * is);
        const T mu = save_mean[c];
        for (index_t i = b; i < e; ++i) d[i] += k * (g[i] - mdy - (p[i] - mu) * mdx);
    });
}

// Backward of instance_norm_forward (per sample and channel statistics,
// biased variance, recomputed here as the forward does), before its epilogue.
// dx += g inv (dy - mean(dy) - xhat mean(dy xhat)); dgamma, dbeta (nullable)
// += sums over samples (in sample order) and positions. Null gamma means 1.
template <class T, std::size_t R>
void instance_norm_backward(index_t batch, tensor_ref<const T, R> x, tensor_ref<const T, R> dy, T eps,
                            const T* gamma, tensor_ref<T, R> dx, T* dgamma, T* dbeta) {
    assert(x.channels == dy.channels && dx.channels == dy.channels);
    assert(x.plane() == dy.plane() && dx.plane() == dy.plane());
    const index_t C = x.channels, plane = x.plane();
    if (batch <= 0 || C <= 0 || plane <= 0) return;
    std::vector<double> sdy(std::size_t(batch * C)), sdyx(std::size_t(batch * C));
    parallel_for_each(batch * C, [&](index_t nc) {
        const index_t n = nc / C, c = nc % C;
        const T* p = x.data + n * x.batch_stride + c * plane;
        const T* g = dy.data + n * dy.batch_stride + c * plane;
        T* d = dx.data + n * dx.batch_stride + c * plane;
        const double mean = detail::fixed_sum(plane, [&](index_t i) { return double(p[i]); }) / double(plane);
        const double var = detail::fixed_sum(plane, [&](index_t i) {
                               const double v = double(p[i]) - mean;
                               return v * v;
                           }) / double(plane);
        const double inv = 1.0 / std::sqrt(var + double(eps));
        const double s1 = detail::fixed_sum(plane, [&](index_t i) { return double(g[i]); });
        const double s2 = detail::fixed_sum(plane, [&](index_t i) { return double(g[i]) * ((double(p[i]) - mean) * inv); });
        sdy[std::size_t(nc)] = s1;
        sdyx[std::size_t(nc)] = s2;
        const T k = T((gamma ? double(gamma[c]) : 1.0) * inv);
        const T mdy = T(s1 / double(plane)), mdx = T(s2 / double(plane) * inv), mu = T(mean);
        for (index_t i = 0; i < plane; ++i) d[i] += k * (g[i] - mdy - (p[i] - mu) * mdx);
    });
    for (index_t c = 0; c < C; ++c) {
        double a = 0, b = 0;
        for (index_t n = 0; n < batch; ++n) {
            a += sdyx[std::size_t(n * C + c)];
            b += sdy[std::size_t(n * C + c)];
        }
        if (dgamma) dgamma[c] += T(a);
        if (dbeta) dbeta[c] += T(b);
    }
}

}  // namespace ctseg::exec
