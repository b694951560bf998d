// Channel-blocked 2D kernels (float): activations stored as
// [C / 16][H][W][16], the 16 channels of one block of a pixel side by side.
//
// On large planes the NCHW kernels stream one short row per channel: a 3x3
// convolution of 64 channels at 256x256 reads 64 input rows and writes 32
// output rows per output row, more streams than the prefetchers follow. In
// blocked layout a row of a channel block is one long contiguous stream, and
// the micro-kernel reads its inputs straight from the tensor: per call it holds
// P pixels of one output row times 16 or 32 output channels in registers; per
// input channel and tap it loads one or two vectors of weights and broadcasts
// one input value per pixel. Borders are handled by dropping the taps that
// fall outside the input, so nothing is copied or padded.
//
// A blocked tensor with C channels (C a multiple of 16) takes as many elements
// as an NCHW one, and channel c0 (a multiple of 16) starts at the same
// address: a planner can store either layout in the same place, concatenation
// in place included.
//
// Inputs may be either layout (a 1-channel image feeds a blocked convolution
// directly); outputs are blocked, except for the 1x1 convolution to NCHW (a
// classifier head) and pooling to NCHW, which leave the blocked region.
#pragma once
#include <algorithm>
#include <cassert>
#include <cstddef>
#include <limits>
#include <utility>
#include <vector>

#include "ctseg/exec/geometry.hpp"
#include "ctseg/exec/parallel.hpp"
#include "ctseg/exec/simd.hpp"

namespace ctseg::exec {

// Channels per block of the blocked layout.
inline constexpr index_t channel_block = 16;

// One sample's 2D activation in either layout: rows [row0, row0 + rows held)
// of a tensor `height` rows high (rows outside [0, height) read as zero
// padding), `data` at channel 0 of row row0. `stride` is the distance between
// channels (NCHW) or between channel blocks (blocked).
struct plane_view {
    const float* data = nullptr;
    index_t stride = 0;
    index_t width = 0;
    index_t row0 = 0, height = 0;
    bool blocked = false;
};
struct plane_out {
    float* data = nullptr;
    index_t stride = 0;
    index_t width = 0;
    index_t row0 = 0;
};

// The views of sample n of `t`, whose rows are rows [row0, row0 +
// t.extent[0]) of a tensor `height` rows high (by default, t is the whole tensor).
inline plane_view plane_of(tensor_ref<const float, 2> t, index_t n, bool blocked, index_t row0 = 0, index_t height = -1) {
    const index_t plane = t.extent[0] * t.extent[1];
    return {t.data + n * t.batch_stride, blocked ? plane * channel_block : plane, t.extent[1], row0,
            height < 0 ? t.extent[0] : height, blocked};
}
inline plane_out plane_of(tensor_ref<float, 2> t, index_t n, bool blocked, index_t row0 = 0) {
    const index_t plane = t.extent[0] * t.extent[1];
    return {t.data + n * t.batch_stride, blocked ? plane * channel_block : plane, t.extent[1], row0};
}

namespace detail {

using block_vec = float __attribute__((vector_size(channel_block * sizeof(float))));

// Vectors go by reference: passed by value, a 64-byte vector has another
// ABI on targets without AVX-512, which GCC warns about.
inline void load_block(block_vec& v, const float* p) { __builtin_memcpy(&v, p, sizeof v); }
inline void store_block(float* p, const block_vec& v) { __builtin_memcpy(p, &v, sizeof v); }

// Pixels per micro-kernel call: 12 x 2 accumulators of 16 lanes fill 24 of the
// 32 AVX-512 registers; narrower machines take fewer (a 16-lane vector is two
// or four of their registers).
inline constexpr int blocked_pixels = simd<float>::registers >= 32 && simd<float>::lanes >= 16 ? 12 : 4;

// The epilogue of a blocked output: act(acc + bias) per 16 channels.
struct block_epilogue {
    const float* bias = nullptr;
    activation act = activation::none;
    float slope = 0;
    const float* prelu_slope = nullptr;

    // r = act(r + bias) for channels [c0, c0 + 16).
    void apply(block_vec& r, index_t c0) const {
        block_vec v;
        if (bias) {
            load_block(v, bias + c0);
            r += v;
        }
        // Tests of "below zero" keep NaN, as PyTorch does.
        const block_vec zero{};
        switch (act) {
            case activation::none: break;
            case activation::relu: r = r < zero ? zero : r; break;
            case activation::leaky_relu: r = r < zero ? r * slope : r; break;
            case activation::prelu:
                load_block(v, prelu_slope + c0);
                r = r < zero ? r * v : r;
                break;
        }
    }
    float operator()(float r, index_t c) const {
        if (bias) r += bias[c];
        switch (act) {
            case activation::none: break;
            case activation::relu: r = r < 0 ? 0.0f : r; break;
            case activation::leaky_relu: r = r < 0 ? r * slope : r; break;
            case activation::prelu: r = r < 0 ? r * prelu_slope[c] : r; break;
        }
        return r;
    }
};
template <std::size_t R>
block_epilogue block_epilogue_of(const epilogue<float, R>& e) {
    assert(!e.residual);
    return {e.bias, e.act, e.slope, e.prelu_slope};
}

// acc[j][v] = sum over input blocks b, taps t and channels c < nc(b) of
// x[b * block_stride + tap_in[t] + j * px + c * ci] * w[b * w_block + tap_w[t] + c * NV * 16 + v * 16 ...]:
// P pixels (px apart) times NV vectors of 16 output channels. The pixels are
// neighbours in a row (px 16 blocked, 1 NCHW), or with Column (blocked
// input) the same column of P rows, `column_step` apart.
template <int P, int NV, bool BlockedIn, bool Column = false>
__attribute__((noinline)) void blocked_micro_kernel(const float* x, index_t blocks, index_t block_stride, index_t ci,
                                                    index_t last_channels, const index_t* tap_in, const index_t* tap_w,
                                                    int ntaps, const float* w, index_t w_block, block_vec (&out)[P][NV],
                                                    index_t column_step = 0) {
    static_assert(!Column || BlockedIn);
    const index_t px = Column ? column_step : BlockedIn ? channel_block : 1;
    constexpr index_t width = NV * channel_block;
    block_vec acc[P][NV];
    for (int j = 0; j < P; ++j)
        for (int v = 0; v < NV; ++v) acc[j][v] = block_vec{};
    for (index_t b = 0; b < blocks; ++b) {
        const index_t nc = BlockedIn || b + 1 < blocks ? channel_block : last_channels;
        for (int t = 0; t < ntaps; ++t) {
            const float* xt = x + b * block_stride + tap_in[t];
            const float* wt = w + b * w_block + tap_w[t];
            for (index_t c = 0; c < (BlockedIn ? channel_block : nc); ++c) {
                block_vec wv[NV];
                for (int v = 0; v < NV; ++v) load_block(wv[v], wt + c * width + v * channel_block);
                for (int j = 0; j < P; ++j) {
                    const float s = xt[j * px + c * (BlockedIn ? 1 : ci)];
                    for (int v = 0; v < NV; ++v) acc[j][v] += wv[v] * s;
                }
            }
        }
    }
    for (int j = 0; j < P; ++j)
        for (int v = 0; v < NV; ++v) out[j][v] = acc[j][v];
}

// f.template operator()<P>(first) for the calls that cover [0, n): as few
// calls of at most blocked_pixels as possible, their sizes differing by one
// at most (a short last call wastes the FMA pipes).
template <class F>
void for_even_calls(index_t n, F&& f) {
    const index_t calls = (n + blocked_pixels - 1) / blocked_pixels;
    for (index_t k = 0, first = 0; k < calls; ++k) {
        const int p = int((n + k) / calls);
        [&]<int... K>(std::integer_sequence<int, K...>) {
            ((p == K + 1 ? (f.template operator()<K + 1>(first), 0) : 0), ...);
        }(std::make_integer_sequence<int, blocked_pixels>{});
        first += p;
    }
}

// One micro-kernel call for the `width` output channels from c0 (a weight
// group, weights `w`), through the epilogue to P outputs from `dst` (at
// channel block c0 / 16), `out_step` apart; blocks of output channels
// `out_stride` apart. The arguments of the input are blocked_micro_kernel's;
// with Column, the P pixels are rows of one column of `in`.
template <int P, bool Column = false>
void run_group(const plane_view& in, const float* x, index_t blocks, index_t last_channels, const index_t* tin,
               const index_t* tw, int nt, const float* w, index_t w_block, index_t width, index_t c0,
               const block_epilogue& ep, float* dst, index_t out_stride, index_t out_step) {
    auto call = [&]<int NV>() {
        block_vec a[P][NV];
        if constexpr (Column)
            blocked_micro_kernel<P, NV, true, true>(x, blocks, in.stride, 1, last_channels, tin, tw, nt, w, w_block, a,
                                                    in.width * channel_block);
        else if (in.blocked)
            blocked_micro_kernel<P, NV, true>(x, blocks, in.stride, 1, last_channels, tin, tw, nt, w, w_block, a);
        else
            blocked_micro_kernel<P, NV, false>(x, blocks, in.stride * channel_block, in.stride, last_channels, tin, tw, nt, w,
                                               w_block, a);
        for (int v = 0; v < NV; ++v)
            for (int j = 0; j < P; ++j) {
                ep.apply(a[j][v], c0 + v * channel_block);
                store_block(dst + v * out_stride + j * out_step, a[j][v]);
            }
    };
    if (width == 2 * channel_block) call.template operator()<2>();
    else call.template operator()<1>();
}

// Weights as the blocked kernels read them: [out / width][in blocks][tap][16
// in][width out], width = the output channels' group width, input channels
// past the end zero; get(o, i, t) reads the caller's layout.
template <class Get>
std::vector<float> pack_blocked(index_t OC, index_t IC, index_t taps, index_t width, Get&& get) {
    const index_t groups = OC / width, blocks = (IC + channel_block - 1) / channel_block;
    std::vector<float> w(std::size_t(groups * blocks * taps * channel_block * width), 0.0f);
    for (index_t o = 0; o < OC; ++o)
        for (index_t i = 0; i < IC; ++i)
            for (index_t t = 0; t < taps; ++t)
                w[std::size_t((((o / width * blocks + i / channel_block) * taps + t) * channel_block + i % channel_block) * width +
                              o % width)] = get(o, i, t);
    return w;
}

}  // namespace detail

// Output channels per weight group of a blocked convolution: two vectors
// where they divide the output channels, else one.
constexpr index_t blocked_group_width(index_t out_channels) { return out_channels % (2 * channel_block) == 0 ? 2 * channel_block : channel_block; }

// Whether conv_forward_blocked runs a convolution with this geometry: 2D,
// stride 1, output channels in whole blocks.
constexpr bool blocked_conv_supported(const conv_geometry<2>& g) {
    return g.stride[0] == 1 && g.stride[1] == 1 && g.out_channels % channel_block == 0 && g.in_channels > 0;
}
// Whether conv_transpose_forward_blocked runs it: kernel equal to the stride
// (outputs of different input pixels never overlap), no padding, dilation 1.
constexpr bool blocked_conv_transpose_supported(const conv_transpose_geometry<2>& g) {
    for (std::size_t d = 0; d < 2; ++d)
        if (g.kernel[d] != g.stride[d] || g.pad[d] != 0 || g.output_pad[d] != 0 || g.dilation[d] != 1) return false;
    return g.out_channels % channel_block == 0 && g.in_channels > 0;
}

// Whether pointwise_forward_to_nchw runs it: a 1x1 convolution (stride 1,
// no padding) from whole blocks of input channels.
constexpr bool pointwise_to_nchw_supported(const conv_geometry<2>& g) {
    for (std::size_t d = 0; d < 2; ++d)
        if (g.kernel[d] != 1 || g.stride[d] != 1 || g.pad[d] != 0) return false;
    return g.in_channels % channel_block == 0 && g.out_channels > 0;
}

// Weights [out][in][kh][kw] packed for the blocked convolution
// (detail::pack_blocked, width blocked_group_width(out)).
inline std::vector<float> pack_blocked_conv(const conv_geometry<2>& g, const float* weight) {
    const index_t OC = g.out_channels, IC = g.in_channels, taps = g.kernel[0] * g.kernel[1];
    return detail::pack_blocked(OC, IC, taps, blocked_group_width(OC),
                                [&](index_t o, index_t i, index_t t) { return weight[(o * IC + i) * taps + t]; });
}

// Output rows [y0, y1) of a stride-1 convolution, written blocked: out(c, y,
// x) = ep(sum over in channels and taps of w * in(ic, y + ky * dil - pad, x +
// kx * dil - pad)), `packed` from pack_blocked_conv. The output width is
// in.width + 2 pad - dil (k - 1).
inline void conv_rows_blocked(const conv_geometry<2>& g, const plane_view& in, const float* packed,
                              const detail::block_epilogue& ep, const plane_out& out, index_t y0, index_t y1) {
    using namespace detail;
    assert(blocked_conv_supported(g));
    const index_t KH = g.kernel[0], KW = g.kernel[1], taps = KH * KW, W = in.width;
    const index_t OW = W + 2 * g.pad[1] - g.dilation[1] * (KW - 1);
    const index_t width = blocked_group_width(g.out_channels), groups = g.out_channels / width;
    const index_t blocks = (g.in_channels + channel_block - 1) / channel_block;
    const index_t last_channels = g.in_channels - (blocks - 1) * channel_block;
    const index_t px = in.blocked ? channel_block : 1;
    const index_t w_block = taps * channel_block * width, w_group = blocks * w_block;
    const index_t ax_min = -g.pad[1], ax_max = (KW - 1) * g.dilation[1] - g.pad[1];
    // Columns whose taps all fall inside the input.
    const index_t x_lo = std::min(OW, std::max<index_t>(0, -ax_min)), x_hi = std::max(x_lo, std::min(OW, W - ax_max));
    constexpr index_t max_taps = 64;
    index_t row_in[max_taps], row_w[max_taps], pix_in[max_taps], pix_w[max_taps];
    assert(taps <= max_taps);

    // P outputs from (y, x0): along the row, or with Column down the column.
    auto run = [&]<int P, bool Column = false>(const float* x, const index_t* tin, const index_t* tw, int nt, index_t y, index_t x0) {
        const index_t out_step = (Column ? OW : 1) * channel_block;
        for (index_t grp = 0; grp < groups; ++grp)
            run_group<P, Column>(in, x, blocks, last_channels, tin, tw, nt, packed + grp * w_group, w_block, width, grp * width, ep,
                                 out.data + grp * (width / channel_block) * out.stride + ((y - out.row0) * OW + x0) * channel_block,
                                 out.stride, out_step);
    };
    // f(x) for the output columns outside [x_lo, x_hi).
    auto for_border_columns = [&](auto&& f) {
        for (index_t x = 0; x < std::min(x_lo, OW); ++x) f(x);
        for (index_t x = std::max(x_lo, x_hi); x < OW; ++x) f(x);
    };
    // Of the taps (tin, tw) of a row, those whose column stays inside the
    // input at output column x, into (pix_in, pix_w); returns their count.
    auto taps_inside = [&](index_t x, const index_t* tin, const index_t* tw, int nt) {
        int n = 0;
        for (int t = 0; t < nt; ++t) {
            const index_t kx = (tw[t] / (channel_block * width)) % KW;
            const index_t ix = x + kx * g.dilation[1] - g.pad[1];
            if (ix < 0 || ix >= W) continue;
            pix_in[n] = tin[t];
            pix_w[n] = tw[t];
            ++n;
        }
        return n;
    };
    // Rows whose taps all fall inside the input: with a blocked input their
    // border columns run down the column, P rows per call, after the rows.
    const index_t full_lo = std::max(y0, g.pad[0]), full_hi = std::min(y1, in.height - ((KH - 1) * g.dilation[0] - g.pad[0]));
    const bool by_column = in.blocked && full_hi > full_lo;
    for (index_t y = y0; y < y1; ++y) {
        // The taps whose input row lies inside the tensor.
        int nrow = 0;
        for (index_t ky = 0; ky < KH; ++ky) {
            const index_t iy = y + ky * g.dilation[0] - g.pad[0];
            if (iy < 0 || iy >= in.height) continue;
            assert(iy >= in.row0);
            for (index_t kx = 0; kx < KW; ++kx) {
                row_in[nrow] = ((iy - in.row0) * W + kx * g.dilation[1] - g.pad[1]) * px;
                row_w[nrow] = (ky * KW + kx) * channel_block * width;
                ++nrow;
            }
        }
        if (nrow == 0) {
            // Every tap in the padding: the epilogue of zero.
            for (index_t c = 0; c < g.out_channels; c += channel_block) {
                block_vec r{};
                ep.apply(r, c);
                for (index_t x = 0; x < OW; ++x)
                    store_block(out.data + c / channel_block * out.stride + ((y - out.row0) * OW + x) * channel_block, r);
            }
            continue;
        }
        // Interior columns.
        for_even_calls(x_hi - x_lo, [&]<int P>(index_t first) {
            const index_t x0 = x_lo + first;
            run.template operator()<P>(in.data + x0 * px, row_in, row_w, nrow, y, x0);
        });
        // Border columns one by one, with the taps that stay inside.
        if (by_column && y >= full_lo && y < full_hi) continue;
        for_border_columns([&](index_t x) {
            const int n = taps_inside(x, row_in, row_w, nrow);
            run.template operator()<1>(in.data + x * px, pix_in, pix_w, n, y, x);
        });
    }
    if (!by_column) return;
    // The border columns of the full rows down the column.
    int nfull = 0;
    for (index_t ky = 0; ky < KH; ++ky)
        for (index_t kx = 0; kx < KW; ++kx, ++nfull) {
            row_in[nfull] = ((ky * g.dilation[0] - g.pad[0]) * W + kx * g.dilation[1] - g.pad[1]) * channel_block;
            row_w[nfull] = (ky * KW + kx) * channel_block * width;
        }
    for_border_columns([&](index_t x) {
        const int n = taps_inside(x, row_in, row_w, nfull);
        for_even_calls(full_hi - full_lo, [&]<int P>(index_t first) {
            const index_t ya = full_lo + first;
            run.template operator()<P, true>(in.data + ((ya - in.row0) * W + x) * channel_block, pix_in, pix_w, n, ya, x);
        });
    });
}

namespace detail {
// sums[p] = the sum of the lanes of v[p], for 16 vectors: a tree of
// shuffles and adds that halves the lanes of each vector per level (a fixed
// order, the same on every machine).
inline void lane_sums(const block_vec (&v)[channel_block], block_vec& sums) {
    using mask = int __attribute__((vector_size(channel_block * sizeof(int))));
    // Level k keeps, of each pair of inputs, groups of 8 >> k lanes.
    constexpr mask lo1{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
    constexpr mask hi1{8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
    constexpr mask lo2{0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};
    constexpr mask hi2{4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31};
    constexpr mask lo3{0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29};
    constexpr mask hi3{2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31};
    constexpr mask lo4{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
    constexpr mask hi4{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
    block_vec a[8], b[4], c[2];
    for (int i = 0; i < 8; ++i) a[i] = __builtin_shuffle(v[2 * i], v[2 * i + 1], lo1) + __builtin_shuffle(v[2 * i], v[2 * i + 1], hi1);
    for (int i = 0; i < 4; ++i) b[i] = __builtin_shuffle(a[2 * i], a[2 * i + 1], lo2) + __builtin_shuffle(a[2 * i], a[2 * i + 1], hi2);
    for (int i = 0; i < 2; ++i) c[i] = __builtin_shuffle(b[2 * i], b[2 * i + 1], lo3) + __builtin_shuffle(b[2 * i], b[2 * i + 1], hi3);
    sums = __builtin_shuffle(c[0], c[1], lo4) + __builtin_shuffle(c[0], c[1], hi4);
}

}  // namespace detail

// Output rows [y0, y1) of a 1x1 convolution from a blocked input to NCHW
// (a classifier head with few classes): out(c, y, x) = ep(sum over input
// channels of w[c][ic] * in(ic, y, x)), `weight` [out][in] as stored. Per 16
// pixels and output channel: 16 vectors of products over the channels, their
// lane sums the 16 outputs.
inline void pointwise_rows_to_nchw(index_t in_channels, index_t out_channels, const plane_view& in, const float* weight,
                                   const detail::block_epilogue& ep, const plane_out& out, index_t y0, index_t y1) {
    using namespace detail;
    assert(in.blocked && in_channels % channel_block == 0);
    const index_t W = in.width, blocks = in_channels / channel_block;
    for (index_t y = y0; y < y1; ++y) {
        const float* src = in.data + (y - in.row0) * W * channel_block;
        for (index_t c = 0; c < out_channels; ++c) {
            float* dst = out.data + c * out.stride + (y - out.row0) * W;
            const float* wc = weight + c * in_channels;
            for (index_t x0 = 0; x0 < W; x0 += channel_block) {
                const index_t n = std::min(channel_block, W - x0);
                block_vec prod[channel_block];
                for (index_t p = 0; p < channel_block; ++p) prod[p] = block_vec{};
                for (index_t b = 0; b < blocks; ++b) {
                    block_vec wv;
                    load_block(wv, wc + b * channel_block);
                    for (index_t p = 0; p < n; ++p) {
                        block_vec xv;
                        load_block(xv, src + b * in.stride + (x0 + p) * channel_block);
                        prod[p] += xv * wv;
                    }
                }
                block_vec sums;
                lane_sums(prod, sums);
                alignas(64) float lanes[channel_block];
                store_block(lanes, sums);
                for (index_t p = 0; p < n; ++p) dst[x0 + p] = ep(lanes[p], c);
            }
        }
    }
}

// Weights [in][out][kh][kw] (PyTorch's transposed convolution) packed for
// conv_transpose_forward_blocked (detail::pack_blocked, width
// blocked_group_width(out)).
inline std::vector<float> pack_blocked_conv_transpose(const conv_transpose_geometry<2>& g, const float* weight) {
    const index_t OC = g.out_channels, IC = g.in_channels, taps = g.kernel[0] * g.kernel[1];
    return detail::pack_blocked(OC, IC, taps, blocked_group_width(OC),
                                [&](index_t o, index_t i, index_t t) { return weight[(i * OC + o) * taps + t]; });
}

// A transposed convolution whose kernel equals its stride, written blocked:
// input pixel (y, x) alone makes output pixels (y s + a, x s + b), one tap
// (a, b) per micro-kernel call.
inline void conv_transpose_rows_blocked(const conv_transpose_geometry<2>& g, const plane_view& in, const float* packed,
                                        const detail::block_epilogue& ep, const plane_out& out, index_t y0, index_t y1) {
    using namespace detail;
    assert(blocked_conv_transpose_supported(g));
    const index_t SH = g.stride[0], SW = g.stride[1], taps = SH * SW, W = in.width, OW = W * SW;
    const index_t width = blocked_group_width(g.out_channels), groups = g.out_channels / width;
    const index_t blocks = (g.in_channels + channel_block - 1) / channel_block;
    const index_t last_channels = g.in_channels - (blocks - 1) * channel_block;
    const index_t px = in.blocked ? channel_block : 1;
    const index_t w_block = taps * channel_block * width, w_group = blocks * w_block;
    const index_t zero_tap[1] = {0};
    for (index_t y = y0; y < y1; ++y) {
        const float* row = in.data + (y - in.row0) * W * px;
        for (index_t grp = 0; grp < groups; ++grp)
            for (index_t t = 0; t < taps; ++t) {
                const index_t oy = y * SH + t / SW, ox0 = t % SW, tap_w[1] = {t * channel_block * width};
                for_even_calls(W, [&]<int P>(index_t x0) {
                    run_group<P>(in, row + x0 * px, blocks, last_channels, zero_tap, tap_w, 1, packed + grp * w_group, w_block,
                                 width, grp * width, ep,
                                 out.data + grp * (width / channel_block) * out.stride +
                                     ((oy - out.row0) * OW + x0 * SW + ox0) * channel_block,
                                 out.stride, SW * channel_block);
                });
            }
    }
}

// Output rows [y0, y1) of a max pooling (floor mode, -inf padding, NaN
// propagating) of a blocked input with `channels` channels, written blocked
// or NCHW.
inline void max_pool_rows_blocked(const pool_geometry<2>& g, index_t channels, const plane_view& in, const plane_out& out,
                                  bool out_blocked, index_t out_width, index_t y0, index_t y1) {
    using namespace detail;
    assert(in.blocked && channels % channel_block == 0);
    const index_t W = in.width, OW = out_width;
    const block_vec lowest = block_vec{} - std::numeric_limits<float>::infinity();
    constexpr index_t chunk = 64;  // output pixels kept before an NCHW store
    alignas(64) float tmp[chunk * channel_block];
    for (index_t b = 0; b < channels / channel_block; ++b)
        for (index_t y = y0; y < y1; ++y)
            for (index_t xc = 0; xc < OW; xc += chunk) {
                const index_t n = std::min(chunk, OW - xc);
                for (index_t i = 0; i < n; ++i) {
                    const index_t x = xc + i;
                    block_vec m = lowest;
                    for (index_t ky = 0; ky < g.kernel[0]; ++ky) {
                        const index_t iy = y * g.stride[0] - g.pad[0] + ky;
                        if (iy < 0 || iy >= in.height) continue;
                        for (index_t kx = 0; kx < g.kernel[1]; ++kx) {
                            const index_t ix = x * g.stride[1] - g.pad[1] + kx;
                            if (ix < 0 || ix >= W) continue;
                            block_vec v;
                            load_block(v, in.data + b * in.stride + ((iy - in.row0) * W + ix) * channel_block);
                            m = (v > m) | (v != v) ? v : m;
                        }
                    }
                    if (out_blocked) store_block(out.data + b * out.stride + ((y - out.row0) * OW + x) * channel_block, m);
                    else store_block(tmp + i * channel_block, m);
                }
                if (!out_blocked)
                    for (index_t c = 0; c < channel_block; ++c) {
                        float* dst = out.data + (b * channel_block + c) * out.stride + (y - out.row0) * OW + xc;
                        for (index_t i = 0; i < n; ++i) dst[i] = tmp[i * channel_block + c];
                    }
            }
}

// Rows of `batch` samples cut into tasks: f(n, y0, y1) over chunks of rows
// that give every thread several tasks.
template <class F>
void for_row_chunks(index_t batch, index_t rows, F&& f) {
    if (batch <= 0 || rows <= 0) return;
    const index_t want = 4 * index_t(concurrency());
    const index_t per_sample = std::max<index_t>(1, std::min(rows, (want + batch - 1) / batch));
    const index_t chunk = (rows + per_sample - 1) / per_sample, chunks = (rows + chunk - 1) / chunk;
    parallel_for_each(batch * chunks, [&](index_t item) {
        const index_t n = item / chunks, y0 = (item % chunks) * chunk;
        f(n, y0, std::min(rows, y0 + chunk));
    });
}

// Whole-tensor forms. `in_blocked`/`out_blocked` give the layouts of the
// views (same addresses either way, see the top of this file).
inline void conv_forward_blocked(const conv_geometry<2>& g, index_t batch, tensor_ref<const float, 2> in, bool in_blocked,
                                 const float* packed, tensor_ref<float, 2> out, const epilogue<float, 2>& ep) {
    const auto e = detail::block_epilogue_of(ep);
    for_row_chunks(batch, out.extent[0], [&](index_t n, index_t y0, index_t y1) {
        conv_rows_blocked(g, plane_of(in, n, in_blocked), packed, e, plane_of(out, n, true), y0, y1);
    });
}
inline void pointwise_forward_to_nchw(const conv_geometry<2>& g, index_t batch, tensor_ref<const float, 2> in,
                                      const float* weight, tensor_ref<float, 2> out, const epilogue<float, 2>& ep) {
    assert(pointwise_to_nchw_supported(g));
    const auto e = detail::block_epilogue_of(ep);
    for_row_chunks(batch, out.extent[0], [&](index_t n, index_t y0, index_t y1) {
        pointwise_rows_to_nchw(g.in_channels, g.out_channels, plane_of(in, n, true), weight, e, plane_of(out, n, false), y0, y1);
    });
}
inline void conv_transpose_forward_blocked(const conv_transpose_geometry<2>& g, index_t batch, tensor_ref<const float, 2> in,
                                           bool in_blocked, const float* packed, tensor_ref<float, 2> out,
                                           const epilogue<float, 2>& ep) {
    const auto e = detail::block_epilogue_of(ep);
    for_row_chunks(batch, in.extent[0], [&](index_t n, index_t y0, index_t y1) {
        conv_transpose_rows_blocked(g, plane_of(in, n, in_blocked), packed, e, plane_of(out, n, true), y0, y1);
    });
}
inline void max_pool_forward_blocked(const pool_geometry<2>& g, index_t batch, tensor_ref<const float, 2> in,
                                     tensor_ref<float, 2> out, bool out_blocked) {
    for_row_chunks(batch, out.extent[0], [&](index_t n, index_t y0, index_t y1) {
        max_pool_rows_blocked(g, in.channels, plane_of(in, n, true), plane_of(out, n, out_blocked), out_blocked, out.extent[1], y0, y1);
    });
}

// Layout conversions of `channels` channels (a multiple of 16) of `batch`
// samples, for tests and for callers at the edge of a blocked region.
inline void to_blocked(index_t batch, tensor_ref<const float, 2> in, tensor_ref<float, 2> out) {
    const index_t plane = in.extent[0] * in.extent[1];
    assert(in.channels % channel_block == 0);
    for (index_t n = 0; n < batch; ++n)
        for (index_t c = 0; c < in.channels; ++c)
            for (index_t p = 0; p < plane; ++p)
                out.data[n * out.batch_stride + (c / channel_block * plane + p) * channel_block + c % channel_block] =
                    in.data[n * in.batch_stride + c * plane + p];
}
inline void from_blocked(index_t batch, tensor_ref<const float, 2> in, tensor_ref<float, 2> out) {
    const index_t plane = in.extent[0] * in.extent[1];
    assert(in.channels % channel_block == 0);
    for (index_t n = 0; n < batch; ++n)
        for (index_t c = 0; c < in.channels; ++c)
            for (index_t p = 0; p < plane; ++p)
                out.data[n * out.batch_stride + c * plane + p] =
                    in.data[n * in.batch_stride + (c / channel_block * plane + p) * channel_block + c % channel_block];
}

}  // namespace ctseg::exec
