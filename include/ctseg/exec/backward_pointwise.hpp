// Backward (training) kernels of max pooling, the activations and the channel
// and spatial plumbing (centre crop, channel tiling, the epilogue's residual).
// Gradients are added to their destination. Reductions (the PReLU slope) use
// fixed chunks combined in a fixed order: results do not depend on the thread
// count.
#pragma once
#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <limits>
#include <vector>

#include "ctseg/exec/geometry.hpp"
#include "ctseg/exec/parallel.hpp"
#include "ctseg/exec/pointwise.hpp"

namespace ctseg::exec {

// dx += dy routed to the first maximum of each window of x in window scan
// order (row-major over the kernel; padded positions never win; a NaN takes
// the place of the maximum, as in PyTorch).
template <class T, std::size_t R>
void max_pool_backward(const pool_geometry<R>& g, index_t batch, tensor_ref<const T, R> x, tensor_ref<const T, R> dy,
                       tensor_ref<T, R> dx) {
    static_assert(R >= 1);
    assert(x.channels == dy.channels && dx.channels == x.channels && dx.extent == x.extent);
    for (std::size_t d = 0; d < R; ++d)
        assert(dy.extent[d] == (x.extent[d] + 2 * g.pad[d] - g.kernel[d]) / g.stride[d] + 1);
    const index_t C = dy.channels, in_plane = x.plane(), out_plane = dy.plane();
    index_t K = 1;
    for (auto k : g.kernel) K *= k;
    if (batch <= 0 || C <= 0 || out_plane <= 0 || K <= 0) return;
    // One task per (sample, channel) plane: windows may overlap, and every
    // element of dx then receives its contributions in output order.
    parallel_for_each(batch * C, [&](index_t nc) {
        const index_t n = nc / C, c = nc % C;
        const T* xp = x.data + n * x.batch_stride + c * in_plane;
        const T* gp = dy.data + n * dy.batch_stride + c * out_plane;
        T* dp = dx.data + n * dx.batch_stride + c * in_plane;
        std::array<index_t, R> o{}, st{};
        for (index_t pos = 0; pos < out_plane; ++pos) {
            {
                index_t q = pos;
                for (std::size_t d = R; d-- > 0;) { o[d] = q % dy.extent[d]; q /= dy.extent[d]; }
            }
            for (std::size_t d = 0; d < R; ++d) st[d] = o[d] * g.stride[d] - g.pad[d];
            T best = -std::numeric_limits<T>::infinity();
            index_t arg = -1;
            for (index_t k = 0; k < K; ++k) {
                index_t q = k, off = 0, mul = 1;
                bool inside = true;
                for (std::size_t d = R; d-- > 0;) {
                    const index_t u = st[d] + q % g.kernel[d];
                    q /= g.kernel[d];
                    if (u < 0 || u >= x.extent[d]) { inside = false; break; }
                    off += u * mul;
                    mul *= x.extent[d];
                }
                if (!inside) continue;
                const T v = xp[off];
                if (arg < 0) arg = off;  // the first valid position holds a window of -inf
                if (v > best || v != v) {
                    best = v;
                    arg = off;
                }
            }
            if (arg >= 0) dp[arg] += gp[pos];
        }
    });
}

// Backward of the activation y = act(pre): dx += dact/dpre * dy. relu: dy
// where pre > 0 (0 at pre == 0; NaN passes dy, as PyTorch's threshold
// backward); leaky_relu / prelu: dy where pre > 0, slope * dy elsewhere;
// none: dy. With prelu and a non-null dprelu_slope, dprelu_slope[c] += sum
// over the batch and positions of dy * (pre > 0 ? 0 : pre).
template <class T, std::size_t R>
void activation_backward(index_t batch, activation act, T slope, const T* prelu_slope, tensor_ref<const T, R> pre,
                         tensor_ref<const T, R> dy, tensor_ref<T, R> dx, T* dprelu_slope) {
    assert(pre.channels == dy.channels && dx.channels == dy.channels);
    assert(pre.plane() == dy.plane() && dx.plane() == dy.plane());
    const index_t C = dy.channels, plane = dy.plane();
    if (batch <= 0 || C <= 0 || plane <= 0) return;
    const index_t chunk = detail::pointwise_chunk;
    const index_t chunks = (plane + chunk - 1) / chunk;
    const bool slope_grad = act == activation::prelu && dprelu_slope != nullptr;
    std::vector<double> part(slope_grad ? std::size_t(batch * C * chunks) : 0);
    parallel_for_each(batch * C * chunks, [&](index_t item) {
        const index_t k = item % chunks, nc = item / chunks;
        const index_t n = nc / C, c = nc % C;
        const index_t b = k * chunk, len = std::min(plane, b + chunk) - b;
        const T* p = pre.data + n * pre.batch_stride + c * plane + b;
        const T* g = dy.data + n * dy.batch_stride + c * plane + b;
        T* d = dx.data + n * dx.batch_stride + c * plane + b;
        switch (act) {
            case activation::none:
                for (index_t i = 0; i < len; ++i) d[i] += g[i];
                break;
            case activation::relu:
                for (index_t i = 0; i < len; ++i) d[i] += p[i] <= T(0) ? T(0) : g[i];
                break;
            case activation::leaky_relu:
            case activation::prelu: {
                const T a = act == activation::prelu ? (prelu_slope ? prelu_slope[c] : T(0)) : slope;
                for (index_t i = 0; i < len; ++i) d[i] += p[i] > T(0) ? g[i] : a * g[i];
                if (slope_grad) {
                    double s = 0;
                    for (index_t i = 0; i < len; ++i) s += p[i] > T(0) ? 0.0 : double(g[i]) * double(p[i]);
                    part[std::size_t(item)] = s;
                }
                break;
            }
        }
    });
    if (slope_grad)
        for (index_t c = 0; c < C; ++c) {
            double s = 0;
            for (index_t n = 0; n < batch; ++n)
                for (index_t k = 0; k < chunks; ++k) s += part[std::size_t((n * C + c) * chunks + k)];
            dprelu_slope[c] += T(s);
        }
}

// Backward of copy_center_crop: dy (the crop) is added into the centred window
// of dx, at lo = (dx - dy) / 2 per dim.
template <class T, std::size_t R>
void copy_center_crop_backward(index_t batch, tensor_ref<const T, R> dy, tensor_ref<T, R> dx) {
    assert(dx.channels == dy.channels);
    const index_t big_plane = dx.plane(), small_plane = dy.plane();
    detail::for_each_centred_row<R>(batch, dy.channels, dx.extent, dy.extent,
                                    [&](index_t n, index_t c, index_t big, index_t small, index_t width) {
                                        T* d = dx.data + n * dx.batch_stride + c * big_plane + big;
                                        const T* s = dy.data + n * dy.batch_stride + c * small_plane + small;
                                        for (index_t i = 0; i < width; ++i) d[i] += s[i];
                                    });
}

// Backward of tile_channels: dx[n, channel_offset + c % period] += dy[n, c] for
// every channel c of dy; the repeats of one target are added in channel order.
template <class T, std::size_t R>
void tile_channels_backward(index_t batch, tensor_ref<const T, R> dy, index_t channel_offset, index_t period,
                            tensor_ref<T, R> dx) {
    assert(dx.plane() == dy.plane() && period > 0);
    const index_t C = dy.channels, plane = dy.plane();
    const index_t targets = std::min(period, C);
    assert(channel_offset + targets <= dx.channels);
    detail::for_each_plane_chunk(batch, targets, plane, [&](index_t n, index_t j, index_t b, index_t e) {
        T* d = dx.data + n * dx.batch_stride + (channel_offset + j) * plane;
        for (index_t c = j; c < C; c += period) {
            const T* s = dy.data + n * dy.batch_stride + c * plane;
            for (index_t i = b; i < e; ++i) d[i] += s[i];
        }
    });
}

// Backward of the epilogue's residual term y += res[n, offset + c % period]:
// dres gets dy summed over the repeats (a period <= 0 means 1, as the epilogue).
template <class T, std::size_t R>
void residual_backward(index_t batch, tensor_ref<const T, R> dy, index_t residual_offset, index_t residual_period,
                       tensor_ref<T, R> dres) {
    tile_channels_backward<T, R>(batch, dy, residual_offset, residual_period > 0 ? residual_period : 1, dres);
}

}  // namespace ctseg::exec
