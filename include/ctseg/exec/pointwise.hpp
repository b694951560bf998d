// Per-element and per-position kernels over NC<spatial> tensors: channel
// affine + epilogue, channel tiling, centre crop, softmax and argmax over
// channels.
#pragma once
#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ctseg/exec/geometry.hpp"
#include "ctseg/exec/parallel.hpp"
#include "ctseg/exec/simd.hpp"

namespace ctseg::exec {
namespace detail {

inline constexpr index_t pointwise_chunk = 16384;

// f(n, c, begin, end) over ranges of positions of every (sample, channel) plane.
template <class F>
void for_each_plane_chunk(index_t batch, index_t channels, index_t plane, F&& f) {
    if (batch <= 0 || channels <= 0 || plane <= 0) return;
    const index_t chunks = (plane + pointwise_chunk - 1) / pointwise_chunk;
    parallel_for_each(batch * channels * chunks, [&](index_t item) {
        const index_t k = item % chunks, nc = item / chunks;
        const index_t b = k * pointwise_chunk, e = std::min(plane, b + pointwise_chunk);
        f(nc / channels, nc % channels, b, e);
    });
}

}  // namespace detail

// out = ep(in * scale[c] + shift[c]); null scale means 1, null shift means 0.
// in and out may be the same tensor.
template <class T, std::size_t R>
void channel_affine(index_t batch, tensor_ref<const T, R> in, tensor_ref<T, R> out, const T* scale, const T* shift,
                    const epilogue<T, R>& ep) {
    assert(in.channels == out.channels && in.plane() == out.plane());
    const index_t plane = out.plane();
    detail::for_each_plane_chunk(batch, out.channels, plane, [&](index_t n, index_t c, index_t b, index_t e) {
        const T* x = in.data + n * in.batch_stride + c * plane;
        T* y = out.data + n * out.batch_stride + c * plane;
        const T a = scale ? scale[c] : T(1), s = shift ? shift[c] : T(0);
        const auto ce = detail::make_channel_epilogue(ep, n, c, plane);
        if (scale || shift)
            for (index_t i = b; i < e; ++i) y[i] = x[i] * a + s;
        else if (static_cast<const T*>(y) != x)
            std::copy(x + b, x + e, y + b);
        ce.apply(y + b, y + b, e - b, b);
    });
}

// out[n, c] = in[n, channel_offset + c % period] for every channel of out.
template <class T, std::size_t R>
void tile_channels(index_t batch, tensor_ref<const T, R> in, index_t channel_offset, index_t period,
                   tensor_ref<T, R> out) {
    assert(in.plane() == out.plane() && period > 0 && channel_offset + std::min(period, out.channels) <= in.channels);
    const index_t plane = out.plane();
    detail::for_each_plane_chunk(batch, out.channels, plane, [&](index_t n, index_t c, index_t b, index_t e) {
        const T* x = in.data + n * in.batch_stride + (channel_offset + c % period) * plane;
        T* y = out.data + n * out.batch_stride + c * plane;
        std::copy(x + b, x + e, y + b);
    });
}

namespace detail {
// Calls row(n, c, big_offset, small_offset, width) for every innermost row of a
// `small` extent centred in a `big` one (lo = (big - small) / 2 per dim; floor),
// in parallel over rows. The offsets are within one channel plane.
template <std::size_t R, class Row>
void for_each_centred_row(index_t batch, index_t channels, const std::array<index_t, R>& big,
                          const std::array<index_t, R>& small, Row&& row) {
    static_assert(R >= 1);
    constexpr std::size_t I = R - 1;
    std::array<index_t, R> lo{};
    index_t small_plane = 1;
    for (std::size_t d = 0; d < R; ++d) {
        assert(small[d] <= big[d]);
        lo[d] = (big[d] - small[d]) / 2;
        small_plane *= small[d];
    }
    const index_t width = small[I];
    if (width <= 0 || batch <= 0 || small_plane <= 0) return;
    const index_t rows = small_plane / width;
    const index_t total = batch * channels * rows;
    parallel_for_range(total, balanced_chunk(total, std::max<index_t>(1, 4096 / width)), [&](index_t r0, index_t r1) {
        for (index_t r = r0; r < r1; ++r) {
            const index_t nc = r / rows, srow = r % rows;
            index_t q = srow, off = 0, stride = big[I];
            for (std::size_t d = I; d-- > 0;) {
                off += (q % small[d] + lo[d]) * stride;
                q /= small[d];
                stride *= big[d];
            }
            row(nc / channels, nc % channels, off + lo[I], srow * width, width);
        }
    });
}
}  // namespace detail

// out = in[..., lo:lo + out.extent] per spatial dim with lo = (in - out) / 2.
template <class T, std::size_t R>
void copy_center_crop(index_t batch, tensor_ref<const T, R> in, tensor_ref<T, R> out) {
    assert(in.channels == out.channels);
    const index_t in_plane = in.plane(), out_plane = out.plane();
    detail::for_each_centred_row<R>(batch, out.channels, in.extent, out.extent,
                                    [&](index_t n, index_t c, index_t big, index_t small, index_t width) {
                                        const T* x = in.data + n * in.batch_stride + c * in_plane + big;
                                        std::copy(x, x + width, out.data + n * out.batch_stride + c * out_plane + small);
                                    });
}

// Softmax over the channels at every position (max-subtracted). in and out may
// be the same tensor.
template <class T, std::size_t R>
void softmax_channels(index_t batch, tensor_ref<const T, R> in, tensor_ref<T, R> out) {
    assert(in.channels == out.channels && in.plane() == out.plane());
    const index_t C = out.channels, plane = out.plane();
    if (batch <= 0 || C <= 0 || plane <= 0) return;
    constexpr index_t chunk = 1024;
    const index_t chunks = (plane + chunk - 1) / chunk;
    parallel_for_each(batch * chunks, [&](index_t item) {
        const index_t n = item / chunks, b = (item % chunks) * chunk, e = std::min(plane, b + chunk);
        const index_t len = e - b;
        T mx[chunk], sum[chunk];
        const T* x0 = in.data + n * in.batch_stride + b;
        T* y0 = out.data + n * out.batch_stride + b;
        for (index_t i = 0; i < len; ++i) mx[i] = x0[i];
        for (index_t c = 1; c < C; ++c) {
            const T* x = x0 + c * plane;
            for (index_t i = 0; i < len; ++i) mx[i] = x[i] > mx[i] ? x[i] : mx[i];
        }
        for (index_t i = 0; i < len; ++i) sum[i] = T(0);
        for (index_t c = 0; c < C; ++c) {
            const T* x = x0 + c * plane;
            T* y = y0 + c * plane;
            for (index_t i = 0; i < len; ++i) {
                const T v = std::exp(x[i] - mx[i]);
                y[i] = v;
                sum[i] += v;
            }
        }
        for (index_t i = 0; i < len; ++i) sum[i] = T(1) / sum[i];
        for (index_t c = 0; c < C; ++c) {
            T* y = y0 + c * plane;
            for (index_t i = 0; i < len; ++i) y[i] *= sum[i];
        }
    });
}

// labels[n * label_batch_stride + pos] = index of the largest channel (first
// one on ties; NaN counts as largest, as torch.argmax); the stride defaults to
// the plane. Label: an integer type, or T to write the labels as values.
template <class T, std::size_t R, class Label>
void argmax_channels(index_t batch, tensor_ref<const T, R> in, Label* labels, index_t label_batch_stride = -1) {
    const index_t C = in.channels, plane = in.plane();
    if (batch <= 0 || C <= 0 || plane <= 0) return;
    if (label_batch_stride < 0) label_batch_stride = plane;
    constexpr index_t chunk = 1024;
    const index_t chunks = (plane + chunk - 1) / chunk;
    parallel_for_each(batch * chunks, [&](index_t item) {
        const index_t n = item / chunks, b = (item % chunks) * chunk, e = std::min(plane, b + chunk);
        const index_t len = e - b;
        T best[chunk];
        const T* x0 = in.data + n * in.batch_stride + b;
        Label* l = labels + n * label_batch_stride + b;
        for (index_t i = 0; i < len; ++i) {
            best[i] = x0[i];
            l[i] = 0;
        }
        for (index_t c = 1; c < C; ++c) {
            const T* x = x0 + c * plane;
            for (index_t i = 0; i < len; ++i) {
                const T v = x[i];
                if (v > best[i] || (v != v && best[i] == best[i])) {
                    best[i] = v;
                    l[i] = Label(c);
                }
            }
        }
    });
}

}  // namespace ctseg::exec
