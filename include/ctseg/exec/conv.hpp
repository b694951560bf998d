// Direct convolution (cross-correlation, PyTorch semantics) in NC<spatial>
// layout, for any spatial rank.
//
// The work is organised as a generic "tap engine" also used by the transposed
// convolution: outputs on a regular sub-grid, each one a sum over input
// channels and over a dense grid of taps whose input coordinate per dimension
// is `o * in_step + a[tap]`. A task owns a set of output rows (all dims but the
// innermost) of one sample and a group of output-channel blocks. It copies the
// input rows it needs into a zero-padded buffer, with the innermost dimension
// split into `in_step` phases so that every tap reads a contiguous run. The
// micro-kernel keeps an (output channels x innermost run) block of
// accumulators in vector registers and broadcasts packed weights.
#pragma once
#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <vector>

#include "ctseg/exec/geometry.hpp"
#include "ctseg/exec/parallel.hpp"
#include "ctseg/exec/simd.hpp"

namespace ctseg::exec {
namespace detail {

// Output coordinate (per dim) = o * out_step + out_base, o in [0, count).
// Input coordinate of tap t = o * in_step + taps[t]; outside the input reads 0.
template <std::size_t R>
struct tap_plan {
    index_t in_channels = 0, out_channels = 0;
    std::array<index_t, R> count{}, in_step{}, out_step{}, out_base{};
    std::array<std::vector<index_t>, R> taps;
    // out_channels counts virtual channels v: real channel v / fold, with the
    // innermost output coordinate shifted by v % fold (and dropped when it
    // falls outside the output). Lets residue classes of a transposed
    // convolution share one pass so that output rows are written whole.
    index_t fold = 1;

    index_t tap_count() const {
        index_t t = 1;
        for (auto& v : taps) t *= index_t(v.size());
        return t;
    }
};

template <class T>
struct blocking {
    static constexpr int lanes = simd<T>::lanes;
    static constexpr int ocb = 4;                                   // output channels per block
    static constexpr int nv = simd<T>::registers >= 32 ? 6 : 3;    // vectors along the row
};

// Packed weights: [oc block][ic][tap][ocb], zero for channels past the end.
// get(oc, ic, tap) reads the caller's layout.
template <class T, class Get>
std::vector<T> pack_weights(index_t oc_count, index_t ic_count, index_t ntaps, Get&& get) {
    constexpr index_t B = blocking<T>::ocb;
    const index_t nb = (oc_count + B - 1) / B;
    std::vector<T> w(std::size_t(nb * ic_count * ntaps * B), T(0));
    parallel_for_each(nb, [&](index_t b) {
        for (index_t ic = 0; ic < ic_count; ++ic)
            for (index_t t = 0; t < ntaps; ++t)
                for (index_t o = 0; o < B; ++o) {
                    const index_t oc = b * B + o;
                    if (oc < oc_count) w[std::size_t(((b * ic_count + ic) * ntaps + t) * B + o)] = get(oc, ic, t);
                }
    });
    return w;
}

// acc[o][v] = sum_ic sum_t w[ic][t][o] * in[ic * ic_stride + off[t] + v * L + lane]
template <class T, int OCB, int NV>
inline void micro_kernel(const T* in, index_t nic, index_t ic_stride, const index_t* off, index_t ntaps,
                         const T* w, typename simd<T>::V (&acc)[OCB][NV]) {
    using S = simd<T>;
    constexpr int L = S::lanes;
    for (int o = 0; o < OCB; ++o)
        for (int v = 0; v < NV; ++v) acc[o][v] = S::splat(T(0));
    for (index_t ic = 0; ic < nic; ++ic) {
        const T* p = in + ic * ic_stride;
        for (index_t t = 0; t < ntaps; ++t) {
            const T* q = p + off[t];
            const T* wt = w + (ic * ntaps + t) * OCB;
            for (int v = 0; v < NV; ++v) {
                typename S::V x = S::load(q + v * L);
                S::pin(x);
                for (int o = 0; o < OCB; ++o) acc[o][v] = S::fma(x, S::splat(wt[o]), acc[o][v]);
            }
        }
    }
}

template <class T>
inline std::vector<T>& scratch() {
    thread_local std::vector<T> buf;
    return buf;
}

// Runs a tap plan; R >= 2. wpk from pack_weights with the plan's tap order
// (row-major over dims).
template <class T, std::size_t R>
void run_tap_plan(const tap_plan<R>& p, index_t batch, tensor_ref<const T, R> in, const T* wpk,
                  tensor_ref<T, R> out, const epilogue<T, R>& ep) {
    static_assert(R >= 2);
    using S = simd<T>;
    constexpr int L = S::lanes;
    constexpr int OCB = blocking<T>::ocb;
    constexpr int NVMAX = blocking<T>::nv;
    constexpr std::size_t I = R - 1;  // innermost dim
    constexpr std::size_t H = R - 2;  // row dim split among tasks

    for (auto c : p.count)
        if (c <= 0) return;
    const index_t ntaps = p.tap_count();
    const index_t nic = ntaps > 0 ? p.in_channels : 0;
    const index_t OC = p.out_channels;
    const index_t nblocks = (OC + OCB - 1) / OCB;
    const index_t in_plane = in.plane(), out_plane = out.plane();

    // Tap extents per dim.
    std::array<index_t, R> amin{}, amax{};
    for (std::size_t d = 0; d < R; ++d) {
        if (p.taps[d].empty()) continue;
        amin[d] = *std::min_element(p.taps[d].begin(), p.taps[d].end());
        amax[d] = *std::max_element(p.taps[d].begin(), p.taps[d].end());
    }
    // Innermost dim: phase split.
    const index_t s = p.in_step[I];
    const index_t OW = p.count[I];
    index_t idx_max = 0;
    for (auto a : p.taps[I]) idx_max = std::max(idx_max, (a - amin[I]) / s);
    // Short rows waste vector lanes; with unit steps a chunk of rows can run
    // as one flat sequence over rows of the padded width (the positions past
    // the row end are computed and dropped).
    const index_t row_vecs = (OW + L - 1) / L;
    const double row_eff = double(OW) / double(row_vecs * L) * std::min(1.0, double(row_vecs) / 2.0);
    const double flat_eff = double(OW) / double(OW + idx_max);
    const bool flat = s == 1 && p.in_step[H] == 1 && flat_eff > row_eff;
    const index_t M = flat ? OW + idx_max : row_vecs * L + idx_max;
    const index_t rowlen = s * M;

    // Outer planes (dims < H), row chunks along H, output-channel groups.
    index_t planes = 1;
    for (std::size_t d = 0; d < H; ++d) planes *= p.count[d];
    const index_t rows = p.count[H];
    const index_t threads = concurrency();
    const index_t want = threads > 1 ? 4 * threads : 1;
    index_t base = batch * planes;
    index_t nchunks = std::min(rows, std::max<index_t>(1, (want + base - 1) / base));
    index_t hc = (rows + nchunks - 1) / nchunks;
    hc = std::min<index_t>(hc, 32);
    nchunks = (rows + hc - 1) / hc;
    index_t groups = 1;
    if (threads > 1 && base * nchunks < 2 * threads)
        groups = std::min(nblocks, (2 * threads + base * nchunks - 1) / (base * nchunks));
    const index_t per_group = (nblocks + groups - 1) / groups;
    groups = (nblocks + per_group - 1) / per_group;

    const index_t items = batch * planes * nchunks * groups;
    parallel_for_each(items, [&](index_t item) {
        index_t r = item;
        const index_t g = r % groups; r /= groups;
        const index_t ch = r % nchunks; r /= nchunks;
        const index_t pl = r % planes; r /= planes;
        const index_t n = r;
        const index_t h0 = ch * hc, h1 = std::min(rows, h0 + hc);

        // Output indices of the outer planes.
        std::array<index_t, R> o{};
        {
            index_t q = pl;
            for (std::size_t d = H; d-- > 0;) { o[d] = q % p.count[d]; q /= p.count[d]; }
        }
        // Box of input rows (dims < I).
        std::array<index_t, R> lo{}, ext{};
        for (std::size_t d = 0; d < H; ++d) {
            lo[d] = o[d] * p.in_step[d] + amin[d];
            ext[d] = amax[d] - amin[d] + 1;
        }
        lo[H] = h0 * p.in_step[H] + amin[H];
        ext[H] = (h1 - 1 - h0) * p.in_step[H] + amax[H] - amin[H] + 1;
        index_t box = 1;
        for (std::size_t d = 0; d < I; ++d) box *= ext[d];
        const index_t ic_stride = box * rowlen;

        std::vector<T>& buf = scratch<T>();
        if (nic > 0) {
            buf.assign(std::size_t(nic * ic_stride + (flat ? NVMAX * L + M : 0)), T(0));
            for (index_t ic = 0; ic < nic; ++ic) {
                const T* src_c = in.data + n * in.batch_stride + ic * in_plane;
                for (index_t b = 0; b < box; ++b) {
                    // Input coordinates of box row b.
                    index_t q = b, off = 0, stride = 1;
                    bool inside = true;
                    std::array<index_t, R> x{};
                    for (std::size_t d = I; d-- > 0;) { x[d] = lo[d] + q % ext[d]; q /= ext[d]; }
                    for (std::size_t d = I; d-- > 0;) {
                        if (x[d] < 0 || x[d] >= in.extent[d]) { inside = false; break; }
                        off += x[d] * stride;
                        stride *= in.extent[d];
                    }
                    if (!inside) continue;
                    const T* src = src_c + off * in.extent[I];
                    T* dst = buf.data() + ic * ic_stride + b * rowlen;
                    const index_t W = in.extent[I];
                    for (index_t ph = 0; ph < s; ++ph) {
                        T* dp = dst + ph * M;
                        // x = m * s + amin + ph in [0, W)
                        const index_t x0 = amin[I] + ph;
                        index_t m0 = x0 >= 0 ? 0 : (-x0 + s - 1) / s;
                        index_t m1 = x0 < W ? std::min(M, (W - 1 - x0) / s + 1) : 0;
                        if (s == 1) {
                            if (m1 > m0) std::copy(src + x0 + m0, src + x0 + m1, dp + m0);
                        } else {
                            for (index_t m = m0; m < m1; ++m) dp[m] = src[x0 + m * s];
                        }
                    }
                }
            }
        }

        // Tap offsets for the first row h0 (row-major over dims).
        std::vector<index_t> off(std::size_t(std::max<index_t>(ntaps, 1)));
        if (ntaps > 0) {
            for (index_t t = 0; t < ntaps; ++t) {
                index_t q = t, row = 0, bstride = 1, inner = 0;
                for (std::size_t d = R; d-- > 0;) {
                    const index_t nt = index_t(p.taps[d].size());
                    const index_t a = p.taps[d][std::size_t(q % nt)];
                    q /= nt;
                    if (d == I) {
                        inner = ((a - amin[I]) % s) * M + (a - amin[I]) / s;
                    } else {
                        const index_t xr = (d == H ? h0 : o[d]) * p.in_step[d] + a - lo[d];
                        row += xr * bstride;
                        bstride *= ext[d];
                    }
                }
                off[std::size_t(t)] = row * rowlen + inner;
            }
        }

        alignas(64) T tmp[NVMAX * L];
        typename S::V acc[OCB][NVMAX];
        const index_t b0 = g * per_group, b1 = std::min(nblocks, b0 + per_group);
        auto row_position = [&](index_t h) {
            index_t rp = 0;
            for (std::size_t d = 0; d < I; ++d) rp = rp * out.extent[d] + (d == H ? h : o[d]) * p.out_step[d] + p.out_base[d];
            return rp * out.extent[I];
        };
        // acc = the micro-kernel over nv vectors of outputs (nv picked at run time,
        // the kernel instantiated for each count up to NVMAX).
        auto accumulate = [&](const T* ib, const T* wb, int nv) {
            auto block = [&]<int NV>() {
                typename S::V a[OCB][NV];
                micro_kernel<T, OCB, NV>(ib, nic, ic_stride, off.data(), nic > 0 ? ntaps : 0, wb, a);
                for (int oo = 0; oo < OCB; ++oo)
                    for (int v = 0; v < NV; ++v) acc[oo][v] = a[oo][v];
            };
            [&]<int... K>(std::integer_sequence<int, K...>) {
                ((nv == K + 1 ? (block.template operator()<K + 1>(), 0) : 0), ...);
            }(std::make_integer_sequence<int, NVMAX>{});
        };
        if (flat) {
            const index_t run = (h1 - h0) * M;
            for (index_t blk = b0; blk < b1; ++blk) {
                const T* wb = wpk + blk * nic * ntaps * OCB;
                for (index_t j0 = 0; j0 < run; j0 += NVMAX * L) {
                    const index_t rem = std::min<index_t>(NVMAX * L, run - j0);
                    const int nv = int((rem + L - 1) / L);
                    accumulate(nic > 0 ? buf.data() + j0 : nullptr, wb, nv);
                    for (int oo = 0; oo < OCB; ++oo) {
                        const index_t vc = blk * OCB + oo;
                        if (vc >= OC) break;
                        const index_t c = vc / p.fold, shift = p.out_base[I] + vc % p.fold;
                        for (int v = 0; v < nv; ++v) S::store(tmp + v * L, acc[oo][v]);
                        const auto ce = make_channel_epilogue(ep, n, c, out_plane);
                        T* dst = out.data + n * out.batch_stride + c * out_plane;
                        index_t i = 0;
                        while (i < rem) {
                            // One output row segment at a time.
                            const index_t j = j0 + i, r = j / M, ow = j - r * M;
                            const index_t len = std::min(rem - i, M - ow);
                            const index_t valid = std::max<index_t>(0, std::min(len, OW - ow));
                            const index_t rp = row_position(h0 + r);
                            for (index_t e = 0; e < valid; ++e) {
                                const index_t oi = (ow + e) * p.out_step[I] + shift;
                                if (oi >= out.extent[I]) break;
                                dst[rp + oi] = ce(tmp[i + e], rp + oi);
                            }
                            i += len;
                        }
                    }
                }
            }
            return;
        }
        // Transposed convolutions fold the stride's residues of the innermost
        // dim into neighbouring virtual channels of one block.
        constexpr index_t max_fold = 4;
        const bool interleave = p.fold > 1 && p.fold <= max_fold && p.out_step[I] == p.fold && OCB % p.fold == 0;
        alignas(64) T inter[NVMAX * L * max_fold];
        alignas(64) T tmp2[NVMAX * L];
        for (index_t h = h0; h < h1; ++h) {
            const T* rowbase = nic > 0 ? buf.data() + (h - h0) * p.in_step[H] * rowlen : nullptr;
            // Flattened output position of this row's first element (excluding inner).
            index_t rowpos = 0;
            for (std::size_t d = 0; d < I; ++d) {
                const index_t od = (d == H ? h : o[d]) * p.out_step[d] + p.out_base[d];
                rowpos = rowpos * out.extent[d] + od;
            }
            rowpos *= out.extent[I];
            for (index_t blk = b0; blk < b1; ++blk) {
                const T* wb = wpk + blk * nic * ntaps * OCB;
                for (index_t ow0 = 0; ow0 < OW; ow0 += NVMAX * L) {
                    const index_t rem = std::min<index_t>(NVMAX * L, OW - ow0);
                    const int nv = int((rem + L - 1) / L);
                    accumulate(rowbase ? rowbase + ow0 : nullptr, wb, nv);
                    if (interleave) {
                        // The fold residues of one channel are neighbours in the
                        // output row: interleave them, then store contiguously.
                        const index_t f = p.fold;
                        for (int oo = 0; oo < OCB; oo += int(f)) {
                            const index_t vc = blk * OCB + oo;
                            if (vc >= OC) break;
                            const index_t c = vc / f, first = ow0 * f + p.out_base[I];
                            if (f == 2) {  // the common stride 2, as a loop the compiler vectorises
                                for (int v = 0; v < nv; ++v) {
                                    S::store(tmp + v * L, acc[oo][v]);
                                    S::store(tmp2 + v * L, acc[oo + 1][v]);
                                }
                                for (index_t i = 0; i < rem; ++i) {
                                    inter[2 * i] = tmp[i];
                                    inter[2 * i + 1] = tmp2[i];
                                }
                            } else {
                                for (index_t r = 0; r < f; ++r) {
                                    for (int v = 0; v < nv; ++v) S::store(tmp + v * L, acc[oo + r][v]);
                                    for (index_t i = 0; i < rem; ++i) inter[i * f + r] = tmp[i];
                                }
                            }
                            const index_t cnt = std::min(rem * f, out.extent[I] - first);
                            const auto ce = make_channel_epilogue(ep, n, c, out_plane);
                            T* dst = out.data + n * out.batch_stride + c * out_plane;
                            ce.apply(inter, dst + rowpos + first, cnt, rowpos + first);
                        }
                        continue;
                    }
                    for (int oo = 0; oo < OCB; ++oo) {
                        const index_t vc = blk * OCB + oo;
                        if (vc >= OC) break;
                        const index_t c = vc / p.fold, shift = p.out_base[I] + vc % p.fold;
                        for (int v = 0; v < nv; ++v) S::store(tmp + v * L, acc[oo][v]);
                        const auto ce = make_channel_epilogue(ep, n, c, out_plane);
                        T* dst = out.data + n * out.batch_stride + c * out_plane;
                        if (p.out_step[I] == 1 && p.fold == 1) {
                            const index_t pos0 = rowpos + ow0 + shift;
                            ce.apply(tmp, dst + pos0, rem, pos0);
                        } else if (!ce.residual) {
                            ce.apply(tmp, tmp, rem, 0);
                            const index_t step = p.out_step[I];
                            const index_t cnt = std::min(rem, (out.extent[I] - 1 - shift - ow0 * step) / step + 1);
                            T* d0 = dst + rowpos + ow0 * step + shift;
                            for (index_t i = 0; i < cnt; ++i) d0[i * step] = tmp[i];
                        } else {
                            for (index_t i = 0; i < rem; ++i) {
                                const index_t oi = (ow0 + i) * p.out_step[I] + shift;
                                if (oi >= out.extent[I]) break;
                                dst[rowpos + oi] = ce(tmp[i], rowpos + oi);
                            }
                        }
                    }
                }
            }
        }
    });
}

// Views of rank R as rank R + 1 with a leading extent-1 dimension.
template <class T, std::size_t R>
tensor_ref<T, R + 1> lift(tensor_ref<T, R> t) {
    tensor_ref<T, R + 1> u;
    u.data = t.data;
    u.channels = t.channels;
    u.extent[0] = 1;
    for (std::size_t d = 0; d < R; ++d) u.extent[d + 1] = t.extent[d];
    u.batch_stride = t.batch_stride;
    return u;
}
template <class T, std::size_t R>
epilogue<T, R + 1> lift(const epilogue<T, R>& e) {
    epilogue<T, R + 1> u;
    u.bias = e.bias;
    u.act = e.act;
    u.slope = e.slope;
    u.prelu_slope = e.prelu_slope;
    u.residual = e.residual;
    u.residual_batch_stride = e.residual_batch_stride;
    u.residual_channels = e.residual_channels;
    u.residual_offset = e.residual_offset;
    return u;
}
template <std::size_t R>
tap_plan<R + 1> lift(const tap_plan<R>& p) {
    tap_plan<R + 1> u;
    u.in_channels = p.in_channels;
    u.out_channels = p.out_channels;
    u.count[0] = 1;
    u.in_step[0] = 1;
    u.out_step[0] = 1;
    u.out_base[0] = 0;
    u.taps[0] = {0};
    for (std::size_t d = 0; d < R; ++d) {
        u.count[d + 1] = p.count[d];
        u.in_step[d + 1] = p.in_step[d];
        u.out_step[d + 1] = p.out_step[d];
        u.out_base[d + 1] = p.out_base[d];
        u.taps[d + 1] = p.taps[d];
    }
    u.fold = p.fold;
    return u;
}

template <class T, std::size_t R>
void run_any_rank(const tap_plan<R>& p, index_t batch, tensor_ref<const T, R> in, const T* wpk,
                  tensor_ref<T, R> out, const epilogue<T, R>& ep) {
    if constexpr (R >= 2)
        run_tap_plan<T, R>(p, batch, in, wpk, out, ep);
    else
        run_tap_plan<T, R + 1>(lift(p), batch, lift(in), wpk, lift(out), lift(ep));
}

// A pointwise (1x1, stride 1, no padding) convolution seen as rank 2: the
// plane split as [rows][cols] with cols a product of trailing extents.
template <class T, std::size_t R>
void conv_pointwise(index_t ic, index_t oc, index_t batch, tensor_ref<const T, R> in, const T* wpk,
                    tensor_ref<T, R> out, const epilogue<T, R>& ep) {
    const index_t plane = out.plane();
    index_t cols = 1;
    for (std::size_t d = R; d-- > 0;) {
        cols *= out.extent[d];
        if (cols >= 64) break;
    }
    tap_plan<2> p;
    p.in_channels = ic;
    p.out_channels = oc;
    p.count = {plane / cols, cols};
    p.in_step = {1, 1};
    p.out_step = {1, 1};
    p.out_base = {0, 0};
    p.taps = {std::vector<index_t>{0}, std::vector<index_t>{0}};
    tensor_ref<const T, 2> i2{in.data, in.channels, {plane / cols, cols}, in.batch_stride};
    tensor_ref<T, 2> o2{out.data, out.channels, {plane / cols, cols}, out.batch_stride};
    epilogue<T, 2> e2;
    e2.bias = ep.bias;
    e2.act = ep.act;
    e2.slope = ep.slope;
    e2.prelu_slope = ep.prelu_slope;
    e2.residual = ep.residual;
    e2.residual_batch_stride = ep.residual_batch_stride;
    e2.residual_channels = ep.residual_channels;
    e2.residual_offset = ep.residual_offset;
    run_tap_plan<T, 2>(p, batch, i2, wpk, o2, e2);
}

}  // namespace detail

// The weights [out][in][k0][k1]... rearranged for the micro-kernel. A caller
// that runs one convolution many times (a network) packs once per weight
// change and passes the result to conv_forward.
template <class T, std::size_t R>
std::vector<T> pack_conv_weights(const conv_geometry<R>& g, const T* weight) {
    index_t ntaps = 1;
    for (std::size_t d = 0; d < R; ++d) ntaps *= g.kernel[d];
    const index_t IC = g.in_channels;
    return detail::pack_weights<T>(g.out_channels, IC, ntaps, [&](index_t oc, index_t ic, index_t t) {
        return weight[(oc * IC + ic) * ntaps + t];
    });
}

// out = epilogue(conv(in, weight)); weight is [out][in][k0][k1]...; zero padding
// g.pad on both sides of every dim. out.extent must be
// floor((in + 2 pad - dilation (k - 1) - 1) / stride) + 1. `packed`, when
// given, is pack_conv_weights(g, weight).
template <class T, std::size_t R>
void conv_forward(const conv_geometry<R>& g, index_t batch, tensor_ref<const T, R> in, const T* weight,
                  tensor_ref<T, R> out, const epilogue<T, R>& ep, const T* packed = nullptr) {
    assert(in.channels >= g.in_channels && out.channels >= g.out_channels);
    bool pointwise = true;
    for (std::size_t d = 0; d < R; ++d) {
        assert(out.extent[d] == (in.extent[d] + 2 * g.pad[d] - g.dilation[d] * (g.kernel[d] - 1) - 1) / g.stride[d] + 1);
        pointwise = pointwise && g.kernel[d] == 1 && g.stride[d] == 1 && g.pad[d] == 0;
    }
    if (batch <= 0 || g.out_channels <= 0) return;
    const index_t IC = g.in_channels;
    std::vector<T> own;
    if (!packed) {
        own = pack_conv_weights<T, R>(g, weight);
        packed = own.data();
    }
    if (pointwise) {
        detail::conv_pointwise<T, R>(IC, g.out_channels, batch, in, packed, out, ep);
        return;
    }
    detail::tap_plan<R> p;
    p.in_channels = IC;
    p.out_channels = g.out_channels;
    for (std::size_t d = 0; d < R; ++d) {
        p.count[d] = out.extent[d];
        p.in_step[d] = g.stride[d];
        p.out_step[d] = 1;
        p.out_base[d] = 0;
        p.taps[d].resize(std::size_t(g.kernel[d]));
        for (index_t k = 0; k < g.kernel[d]; ++k) p.taps[d][std::size_t(k)] = k * g.dilation[d] - g.pad[d];
    }
    detail::run_any_rank<T, R>(p, batch, in, packed, out, ep);
}

}  // namespace ctseg::exec
