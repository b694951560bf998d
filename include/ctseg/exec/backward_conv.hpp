// Backward (training) kernels of the direct and transposed convolutions.
//
// Data gradients reuse the forward tap engine: the gradient of a convolution
// w.r.t. its input is a transposed convolution of the output gradient with the
// same weights (and conversely), run with an epilogue whose residual is the
// gradient tensor itself, so that results are added to what it holds.
//
// Weight gradients are correlations reduced over the batch and every position.
// The work is split into tasks by (weight channel block, input channel block,
// fixed range of output rows); the ranges depend on the shapes only. Each task
// sums its range in a fixed order into vector accumulators; the ranges are
// combined in their index order. Results do not depend on the thread count.
#pragma once
#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <utility>
#include <vector>

#include "ctseg/exec/conv.hpp"
#include "ctseg/exec/conv_transpose.hpp"
#include "ctseg/exec/geometry.hpp"
#include "ctseg/exec/parallel.hpp"
#include "ctseg/exec/pointwise.hpp"
#include "ctseg/exec/simd.hpp"

namespace ctseg::exec {
namespace detail {

// An epilogue that adds the values `t` holds before the kernel writes it: a
// copy of channels [0, channels) of t becomes the residual (the epilogue
// writes its output before adding the residual, so t itself cannot serve).
template <class T, std::size_t R>
struct add_to {
    std::vector<T> copy;
    epilogue<T, R> ep;

    add_to(index_t batch, index_t channels, tensor_ref<T, R> t) {
        const index_t plane = t.plane();
        copy.resize(std::size_t(std::max<index_t>(0, batch * channels * plane)));
        for_each_plane_chunk(batch, channels, plane, [&](index_t n, index_t c, index_t b, index_t e) {
            const T* src = t.data + n * t.batch_stride + c * plane;
            std::copy(src + b, src + e, copy.data() + (n * channels + c) * plane + b);
        });
        ep.residual = copy.data();
        ep.residual_batch_stride = channels * plane;
        ep.residual_channels = std::max<index_t>(channels, 1);
        ep.residual_offset = 0;
    }
};

// Sum of the first `channels` channel planes over the batch, in double, one
// task per channel with a fixed order; out[c] += result.
template <class T, std::size_t R>
void channel_sums_add(index_t batch, index_t channels, tensor_ref<const T, R> t, T* out) {
    const index_t plane = t.plane();
    if (!out || channels <= 0) return;
    parallel_for_each(channels, [&](index_t c) {
        double s[4] = {0, 0, 0, 0};
        for (index_t n = 0; n < batch; ++n) {
            const T* p = t.data + n * t.batch_stride + c * plane;
            index_t i = 0;
            for (; i + 4 <= plane; i += 4)
                for (int k = 0; k < 4; ++k) s[k] += double(p[i + k]);
            for (; i < plane; ++i) s[0] += double(p[i]);
        }
        out[c] += T((s[0] + s[1]) + (s[2] + s[3]));
    });
}

template <class T>
struct wgrad_blocking {
    static constexpr int regs = simd<T>::registers;
    static constexpr int max_ab = regs >= 32 ? 8 : 4;        // weight channels per register block
    static constexpr int group_a = 2 * max_ab;                // weight channels per task
    static constexpr index_t group_b = 16;                    // input channels per task
    static constexpr index_t target_tasks = 64;               // shape-only split target
    static constexpr index_t unit_positions = 1024;           // positions per unit of rows
    static constexpr int max_nt(int ab) { return std::min(12, (regs - 1) / (ab + 1)); }
};

// out[a * out_a + t * L + lane] += sum over rows r in [r0, r1) and vectors v of
// g[a * g_chan + r * g_row + v L + lane] * x[roff[r] + off[t] + v L + lane].
template <class T, int AB, int NT>
void wgrad_micro(const T* g, index_t g_row, index_t g_chan, const T* x, const index_t* roff, index_t r0, index_t r1,
                 const index_t* off, index_t nvec, T* out, index_t out_a) {
    using S = simd<T>;
    using V = typename S::V;
    constexpr int L = S::lanes;
    V acc[AB][NT];
    for (int a = 0; a < AB; ++a)
        for (int t = 0; t < NT; ++t) acc[a][t] = S::splat(T(0));
    for (index_t r = r0; r < r1; ++r) {
        const T* gr = g + r * g_row;
        const T* xr = x + roff[r];
        for (index_t v = 0; v < nvec; ++v) {
            V xv[NT];
            for (int t = 0; t < NT; ++t) {
                xv[t] = S::load(xr + off[t] + v * L);
                S::pin(xv[t]);
            }
            for (int a = 0; a < AB; ++a) {
                V gv = S::load(gr + a * g_chan + v * L);
                S::pin(gv);
                for (int t = 0; t < NT; ++t) acc[a][t] = S::fma(gv, xv[t], acc[a][t]);
            }
        }
    }
    const V one = S::splat(T(1));
    for (int a = 0; a < AB; ++a)
        for (int t = 0; t < NT; ++t) {
            T* o = out + a * out_a + t * L;
            S::store(o, S::fma(acc[a][t], one, S::load(o)));
        }
}

template <class T, int AB, class... Args>
void wgrad_dispatch_nt(int nt, Args... args) {
    constexpr int M = wgrad_blocking<T>::max_nt(AB);
    [&]<int... K>(std::integer_sequence<int, K...>) {
        ((nt == K + 1 ? (wgrad_micro<T, AB, K + 1>(args...), 0) : 0), ...);
    }(std::make_integer_sequence<int, M>{});
}

template <class T, class... Args>
void wgrad_dispatch(int ab, int nt, Args... args) {
    if constexpr (wgrad_blocking<T>::max_ab >= 8)
        if (ab == 8) return wgrad_dispatch_nt<T, 8>(nt, args...);
    if (ab == 4) return wgrad_dispatch_nt<T, 4>(nt, args...);
    if (ab == 2) return wgrad_dispatch_nt<T, 2>(nt, args...);
    wgrad_dispatch_nt<T, 1>(nt, args...);
}

// dw[a][b][k] += sum_n sum_o g[n][a][o] * x[n][b][o * stride + k * dilation - pad]
// with x zero outside its extent; o runs over g's extent, k over the kernel
// grid (row-major). Channels [0, A) of g and [0, B) of x are used.
template <class T, std::size_t R>
void correlation_weight_grad(index_t A, index_t B, const std::array<index_t, R>& kernel,
                             const std::array<index_t, R>& stride, const std::array<index_t, R>& pad,
                             const std::array<index_t, R>& dilation, index_t batch, tensor_ref<const T, R> g,
                             tensor_ref<const T, R> x, T* dw) {
    static_assert(R >= 1);
    using S = simd<T>;
    using BL = wgrad_blocking<T>;
    constexpr int L = S::lanes;
    constexpr std::size_t I = R - 1;
    index_t K = 1;
    for (auto k : kernel) K *= k;
    const index_t gplane = g.plane();
    if (batch <= 0 || A <= 0 || B <= 0 || K <= 0 || gplane <= 0) return;

    const index_t OW = g.extent[I];
    const index_t rows = gplane / OW;
    const index_t nvec = (OW + L - 1) / L, OWp = nvec * L;

    // x copied into zero-padded rows; the innermost dim split into `stride`
    // phases so that every tap reads a contiguous run.
    std::array<index_t, R> hp{};
    for (std::size_t d = 0; d < I; ++d) hp[d] = (g.extent[d] - 1) * stride[d] + (kernel[d] - 1) * dilation[d] + 1;
    const index_t s = stride[I];
    const index_t M = OWp + ((kernel[I] - 1) * dilation[I]) / s;
    const index_t rowlen = s * M;
    std::array<index_t, R> pstride{};  // padded-row stride of each outer dim
    index_t prows = 1;
    for (std::size_t d = I; d-- > 0;) {
        pstride[d] = prows;
        prows *= hp[d];
    }
    const index_t xblock = prows * rowlen;
    std::vector<T> xb(std::size_t(batch * B * xblock), T(0));
    {
        const index_t total = batch * B * prows;
        const index_t W = x.extent[I], xplane = x.plane();
        parallel_for_range(total, balanced_chunk(total, std::max<index_t>(1, 4096 / rowlen)), [&](index_t i0, index_t i1) {
            for (index_t i = i0; i < i1; ++i) {
                const index_t nb = i / prows, pr = i % prows;
                const index_t n = nb / B, b = nb % B;
                index_t q = pr, off = 0, st = 1;
                bool inside = true;
                for (std::size_t d = I; d-- > 0;) {
                    const index_t u = q % hp[d] - pad[d];
                    q /= hp[d];
                    if (u < 0 || u >= x.extent[d]) { inside = false; break; }
                    off += u * st;
                    st *= x.extent[d];
                }
                if (!inside) continue;
                const T* src = x.data + n * x.batch_stride + b * xplane + off * W;
                T* dst = xb.data() + nb * xblock + pr * rowlen;
                for (index_t ph = 0; ph < s; ++ph)
                    for (index_t m = 0; m < M; ++m) {
                        const index_t xi = m * s + ph - pad[I];
                        if (xi >= 0 && xi < W) dst[ph * M + m] = src[xi];
                    }
            }
        });
    }

    // g rows, padded to whole vectors when needed.
    const T* gp = g.data;
    index_t g_bs = g.batch_stride, g_chan = gplane, g_row = OW;
    std::vector<T> gb;
    if (OW != OWp) {
        gb.assign(std::size_t(batch * A * rows * OWp), T(0));
        const index_t total = batch * A * rows;
        parallel_for_range(total, balanced_chunk(total, std::max<index_t>(1, 4096 / OWp)), [&](index_t i0, index_t i1) {
            for (index_t i = i0; i < i1; ++i) {
                const index_t na = i / rows, r = i % rows;
                const index_t n = na / A, a = na % A;
                const T* src = g.data + n * g.batch_stride + a * gplane + r * OW;
                std::copy(src, src + OW, gb.data() + i * OWp);
            }
        });
        gp = gb.data();
        g_bs = A * rows * OWp;
        g_chan = rows * OWp;
        g_row = OWp;
    }

    // Offsets into a padded x block: per g row, and per tap.
    std::vector<index_t> roff(static_cast<std::size_t>(rows)), off(static_cast<std::size_t>(K));
    for (index_t r = 0; r < rows; ++r) {
        index_t q = r, o = 0;
        for (std::size_t d = I; d-- > 0;) {
            o += (q % g.extent[d]) * stride[d] * pstride[d];
            q /= g.extent[d];
        }
        roff[std::size_t(r)] = o * rowlen;
    }
    for (index_t t = 0; t < K; ++t) {
        index_t q = t, o = 0;
        const index_t kI = q % kernel[I];
        q /= kernel[I];
        for (std::size_t d = I; d-- > 0;) {
            o += (q % kernel[d]) * dilation[d] * pstride[d];
            q /= kernel[d];
        }
        const index_t j = kI * dilation[I];
        off[std::size_t(t)] = o * rowlen + (j % s) * M + j / s;
    }

    // Task decomposition (shapes only).
    const index_t ga = BL::group_a, gbn = BL::group_b;
    const index_t na_groups = (A + ga - 1) / ga, nb_groups = (B + gbn - 1) / gbn;
    const index_t ur = std::max<index_t>(1, BL::unit_positions / OWp);
    const index_t per_sample = (rows + ur - 1) / ur;
    const index_t units = batch * per_sample;
    const index_t pairs = na_groups * nb_groups;
    const index_t splits = std::min(units, std::max<index_t>(1, (BL::target_tasks + pairs - 1) / pairs));
    std::vector<T> partial(splits > 1 ? std::size_t(splits * A * B * K) : 0);

    parallel_for_each(pairs * splits, [&](index_t task) {
        const index_t sp = task % splits, pair = task / splits;
        const index_t a0 = (pair / nb_groups) * ga, a1 = std::min(A, a0 + ga);
        const index_t b0 = (pair % nb_groups) * gbn, b1 = std::min(B, b0 + gbn);
        const index_t nA = a1 - a0, nB = b1 - b0;
        const index_t u0 = sp * units / splits, u1 = (sp + 1) * units / splits;
        // vacc[a][b][t][lane]
        std::vector<T> vacc(std::size_t(nA * nB * K * L), T(0));
        for (index_t u = u0; u < u1; ++u) {
            const index_t n = u / per_sample;
            const index_t r0 = (u % per_sample) * ur, r1 = std::min(rows, r0 + ur);
            for (index_t a = a0; a < a1;) {
                int ab = 1;
                while (ab * 2 <= BL::max_ab && a + ab * 2 <= a1) ab *= 2;
                const int ntm = BL::max_nt(ab);
                const index_t nch = (K + ntm - 1) / ntm;
                const T* gbase = gp + n * g_bs + a * g_chan;
                for (index_t b = b0; b < b1; ++b) {
                    const T* xbase = xb.data() + (n * B + b) * xblock;
                    for (index_t ch = 0; ch < nch; ++ch) {
                        const index_t t0 = ch * K / nch, t1 = (ch + 1) * K / nch;
                        T* out = vacc.data() + (((a - a0) * nB + (b - b0)) * K + t0) * L;
                        wgrad_dispatch<T>(ab, int(t1 - t0), gbase, g_row, g_chan, static_cast<const T*>(xbase),
                                          static_cast<const index_t*>(roff.data()), r0, r1,
                                          static_cast<const index_t*>(off.data() + t0), nvec, out, nB * K * L);
                    }
                }
                a += ab;
            }
        }
        for (index_t a = 0; a < nA; ++a)
            for (index_t b = 0; b < nB; ++b)
                for (index_t t = 0; t < K; ++t) {
                    const T* v = vacc.data() + ((a * nB + b) * K + t) * L;
                    T sum = T(0);
                    for (int l = 0; l < L; ++l) sum += v[l];
                    const index_t e = ((a0 + a) * B + (b0 + b)) * K + t;
                    if (splits > 1)
                        partial[std::size_t(sp * A * B * K + e)] = sum;
                    else
                        dw[e] += sum;
                }
    });
    if (splits > 1) {
        const index_t total = A * B * K;
        parallel_for_range(total, 1024, [&](index_t e0, index_t e1) {
            for (index_t e = e0; e < e1; ++e) {
                T sum = partial[std::size_t(e)];
                for (index_t sp = 1; sp < splits; ++sp) sum += partial[std::size_t(sp * total + e)];
                dw[e] += sum;
            }
        });
    }
}

// dx += correlation of dy with taps o * 1 + (k dilation - pad) read at o * stride:
// the input gradient of a transposed convolution (or the forward of a direct
// one) with `count` = dx extent, added to dx.
template <class T, std::size_t R>
void conv_like_add(index_t in_channels, index_t out_channels, const std::array<index_t, R>& kernel,
                   const std::array<index_t, R>& stride, const std::array<index_t, R>& pad,
                   const std::array<index_t, R>& dilation, index_t batch, tensor_ref<const T, R> in,
                   const T* weight /*[out][in][k...]*/, tensor_ref<T, R> out) {
    index_t ntaps = 1;
    for (auto k : kernel) ntaps *= k;
    for (auto e : out.extent)
        if (e <= 0) return;
    if (batch <= 0 || out_channels <= 0) return;
    const auto wpk = pack_weights<T>(out_channels, in_channels, ntaps, [&](index_t oc, index_t ic, index_t t) {
        return weight[(oc * in_channels + ic) * ntaps + t];
    });
    tap_plan<R> p;
    p.in_channels = in_channels;
    p.out_channels = out_channels;
    for (std::size_t d = 0; d < R; ++d) {
        p.count[d] = out.extent[d];
        p.in_step[d] = stride[d];
        p.out_step[d] = 1;
        p.out_base[d] = 0;
        for (index_t k = 0; k < kernel[d]; ++k) p.taps[d].push_back(k * dilation[d] - pad[d]);
    }
    const add_to<T, R> acc(batch, out_channels, out);
    run_any_rank<T, R>(p, batch, in, wpk.data(), out, acc.ep);
}

}  // namespace detail

// dx += dL/dx of y = conv(x, weight) (before the epilogue), weight [out][in][k...].
template <class T, std::size_t R>
void conv_backward_data(const conv_geometry<R>& g, index_t batch, tensor_ref<const T, R> dy, const T* weight,
                        tensor_ref<T, R> dx) {
    assert(dy.channels >= g.out_channels && dx.channels >= g.in_channels);
    if (batch <= 0 || g.in_channels <= 0) return;
    conv_transpose_geometry<R> tg;
    tg.in_channels = g.out_channels;
    tg.out_channels = g.in_channels;
    tg.kernel = g.kernel;
    tg.stride = g.stride;
    tg.pad = g.pad;
    tg.dilation = g.dilation;
    for (std::size_t d = 0; d < R; ++d) {
        assert(dy.extent[d] == (dx.extent[d] + 2 * g.pad[d] - g.dilation[d] * (g.kernel[d] - 1) - 1) / g.stride[d] + 1);
        tg.output_pad[d] = dx.extent[d] - ((dy.extent[d] - 1) * g.stride[d] - 2 * g.pad[d] +
                                           g.dilation[d] * (g.kernel[d] - 1) + 1);
        if (dx.extent[d] <= 0) return;
    }
    if (g.out_channels <= 0) return;  // nothing flows back
    // The conv weight [out][in][k] is the transposed conv weight [in'][out'][k].
    const detail::add_to<T, R> acc(batch, g.in_channels, dx);
    conv_transpose_forward<T, R>(tg, batch, dy, weight, dx, acc.ep);
}

// dweight [out][in][k...] += dL/dweight; dbias (nullable) += sum of dy over batch and positions.
template <class T, std::size_t R>
void conv_backward_weights(const conv_geometry<R>& g, index_t batch, tensor_ref<const T, R> x,
                           tensor_ref<const T, R> dy, T* dweight, T* dbias) {
    assert(x.channels >= g.in_channels && dy.channels >= g.out_channels);
    if (dweight)
        detail::correlation_weight_grad<T, R>(g.out_channels, g.in_channels, g.kernel, g.stride, g.pad, g.dilation,
                                              batch, dy, x, dweight);
    if (batch > 0) detail::channel_sums_add<T, R>(batch, g.out_channels, dy, dbias);
}

// dx += dL/dx of y = conv_transpose(x, weight), weight [in][out][k...].
template <class T, std::size_t R>
void conv_transpose_backward_data(const conv_transpose_geometry<R>& g, index_t batch, tensor_ref<const T, R> dy,
                                  const T* weight, tensor_ref<T, R> dx) {
    assert(dy.channels >= g.out_channels && dx.channels >= g.in_channels);
    for (std::size_t d = 0; d < R; ++d)
        assert(dy.extent[d] == (dx.extent[d] - 1) * g.stride[d] - 2 * g.pad[d] + g.dilation[d] * (g.kernel[d] - 1) +
                                   g.output_pad[d] + 1);
    if (batch <= 0 || g.in_channels <= 0) return;
    // dx[i] = sum_o,k dy[o] w[i][o][k] with o = i stride - pad + k dilation: a
    // direct convolution of dy whose weight [out=i][in=o][k] is w itself.
    detail::conv_like_add<T, R>(g.out_channels, g.in_channels, g.kernel, g.stride, g.pad, g.dilation, batch, dy,
                                weight, dx);
}

// dweight [in][out][k...] += dL/dweight; dbias (nullable, per output channel) += sum of dy.
template <class T, std::size_t R>
void conv_transpose_backward_weights(const conv_transpose_geometry<R>& g, index_t batch, tensor_ref<const T, R> x,
                                     tensor_ref<const T, R> dy, T* dweight, T* dbias) {
    assert(x.channels >= g.in_channels && dy.channels >= g.out_channels);
    // dw[i][o][k] = sum x[i][p] dy[o][p stride + k dilation - pad]
    if (dweight)
        detail::correlation_weight_grad<T, R>(g.in_channels, g.out_channels, g.kernel, g.stride, g.pad, g.dilation,
                                              batch, x, dy, dweight);
    if (batch > 0) detail::channel_sums_add<T, R>(batch, g.out_channels, dy, dbias);
}

}  // namespace ctseg::exec
