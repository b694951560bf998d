// Transposed convolution (PyTorch ConvTranspose*d semantics, output_padding
// included) as a gather: the output is split into stride^R residue classes;
// within one class every output receives the same kernel taps from inputs at
// fixed integer shifts, so each class is an ordinary direct convolution over a
// strided sub-grid of the output. Every output element is owned by exactly one
// class and one task: no scatter, no races, deterministic.
#pragma once
#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <vector>

#include "ctseg/exec/conv.hpp"
#include "ctseg/exec/geometry.hpp"

namespace ctseg::exec {

namespace detail {

// Whether the residues of the output rows (dim R - 2) fold into virtual
// channels next to those of the innermost dim: with both strides 2, a block of
// output channels then holds whole real channels, and one pass reads the
// input once and writes two output rows per input row.
template <std::size_t R>
bool folds_rows(const conv_transpose_geometry<R>& g) {
    if constexpr (R < 2) {
        return false;
    } else {
        return g.stride[R - 1] == 2 && g.stride[R - 2] == 2;
    }
}

// Calls f(plan, kidx) for each residue class of the output (outer dims) that
// holds outputs: the residue classes of the outer dims run one after the
// other; the residues of the innermost dim, and with folds_rows those of the
// row dim too, are folded into virtual output channels (one pass writes whole
// output rows). The taps of a folded dim are then the union over its
// residues, with zero weights where a residue lacks a tap.
// kidx[d]: the kernel index of each tap of an outer dim d not folded.
template <std::size_t R, class F>
void for_each_residue_class(const conv_transpose_geometry<R>& g, const std::array<index_t, R>& out_extent, F&& f) {
    constexpr std::size_t I = R - 1;
    const bool rows = folds_rows<R>(g);
    const std::size_t unfolded = rows ? I - 1 : I;  // dims [0, unfolded) run class by class
    index_t classes = 1;
    for (std::size_t d = 0; d < unfolded; ++d) classes *= g.stride[d];
    const index_t sI = g.stride[I];
    for (index_t cls = 0; cls < classes; ++cls) {
        std::array<index_t, R> r{};
        {
            index_t q = cls;
            for (std::size_t d = unfolded; d-- > 0;) { r[d] = q % g.stride[d]; q /= g.stride[d]; }
        }
        tap_plan<R> p;
        p.in_channels = g.in_channels;
        p.fold = sI;
        p.fold_rows = rows ? g.stride[I - 1] : 1;
        p.out_channels = g.out_channels * p.fold * p.fold_rows;
        std::array<tap_list, R> kidx;
        bool empty = false;
        for (std::size_t d = 0; d < R; ++d) {
            const index_t s = g.stride[d];
            const bool folded = d >= unfolded;
            const index_t rd = folded ? 0 : r[d];
            p.count[d] = rd < out_extent[d] ? (out_extent[d] - rd + s - 1) / s : 0;
            if (p.count[d] == 0) empty = true;
            p.in_step[d] = 1;
            p.out_step[d] = s;
            p.out_base[d] = rd;
            // Output o = r + q s receives input i = (o + pad - k dilation) / s
            // when divisible, i.e. i = q + (r + pad - k dilation) / s.
            const index_t nres = folded ? std::min(s, out_extent[d]) : 1;
            for (index_t rr = 0; rr < nres; ++rr)
                for (index_t k = 0; k < g.kernel[d]; ++k) {
                    const index_t num = (folded ? rr : rd) + g.pad[d] - k * g.dilation[d];
                    if (((num % s) + s) % s != 0) continue;
                    if (folded) {
                        if (std::find(p.taps[d].begin(), p.taps[d].end(), num / s) == p.taps[d].end())
                            p.taps[d].push_back(num / s);
                    } else {
                        p.taps[d].push_back(num / s);
                        kidx[d].push_back(k);
                    }
                }
        }
        if (!empty) f(p, kidx);
    }
}

}  // namespace detail

// The weights [in][out][k0][k1]... rearranged for the micro-kernel, one block
// per residue class of an output of extents `out_extent`. A caller that runs
// one transposed convolution many times packs once per weight change.
template <class T, std::size_t R>
std::vector<T> pack_conv_transpose_weights(const conv_transpose_geometry<R>& g, const std::array<index_t, R>& out_extent,
                                           const T* weight) {
    constexpr std::size_t I = R - 1;
    index_t ktotal = 1;
    for (std::size_t d = 0; d < R; ++d) ktotal *= g.kernel[d];
    const index_t IC = g.in_channels, OC = g.out_channels, sI = g.stride[I];
    std::vector<T> all;
    detail::for_each_residue_class<R>(g, out_extent, [&](const detail::tap_plan<R>& p, const std::array<detail::tap_list, R>& kidx) {
        const index_t ntaps = p.tap_count();
        const std::size_t unfolded = p.fold_rows > 1 ? I - 1 : I;
        // The kernel index along folded dim d of tap offset a for residue rr, or -1.
        auto folded_k = [&](std::size_t d, index_t rr, index_t a) -> index_t {
            const index_t num = rr + g.pad[d] - a * g.stride[d];
            if (num % g.dilation[d] != 0) return -1;
            const index_t k = num / g.dilation[d];
            return k >= 0 && k < g.kernel[d] ? k : -1;
        };
        const auto wpk = detail::pack_weights<T>(p.out_channels, IC, ntaps, [&](index_t vc, index_t ic, index_t t) {
            const index_t oc = vc / (sI * p.fold_rows), rI = vc % sI, rH = (vc / sI) % p.fold_rows;
            std::array<index_t, R> tk{};
            index_t q = t;
            for (std::size_t d = R; d-- > 0;) {
                const index_t nt = index_t(p.taps[d].size());
                const index_t a = p.taps[d][std::size_t(q % nt)];
                if (d >= unfolded) {
                    tk[d] = folded_k(d, d == I ? rI : rH, a);
                    if (tk[d] < 0) return T(0);
                } else {
                    tk[d] = kidx[d][std::size_t(q % nt)];
                }
                q /= nt;
            }
            index_t kflat = 0;
            for (std::size_t d = 0; d < R; ++d) kflat = kflat * g.kernel[d] + tk[d];
            return weight[(ic * OC + oc) * ktotal + kflat];
        });
        all.insert(all.end(), wpk.begin(), wpk.end());
    });
    return all;
}

// Bytes of working memory per thread that conv_transpose_forward(g, batch,
// ...) with output extents `out_extent` uses, for the calling task arena.
template <class T, std::size_t R>
std::size_t conv_transpose_scratch_bytes(const conv_transpose_geometry<R>& g, index_t batch, const std::array<index_t, R>& out_extent) {
    std::size_t most = 0;
    detail::for_each_residue_class<R>(g, out_extent, [&](const detail::tap_plan<R>& p, const auto&) {
        most = std::max(most, detail::scratch_bytes_any_rank<T, R>(p, batch));
    });
    return most;
}

// out = epilogue(conv_transpose(in, weight)); weight is [in][out][k0][k1]...;
// out.extent must be (in - 1) stride - 2 pad + dilation (k - 1) + output_pad + 1.
// `packed`, when given, is pack_conv_transpose_weights(g, out.extent, weight)
// (packed here when not). `ws`, when given, holds conv_transpose_scratch_bytes
// per thread of the calling arena. With both, the call allocates nothing.
template <class T, std::size_t R>
void conv_transpose_forward(const conv_transpose_geometry<R>& g, index_t batch, tensor_ref<const T, R> in,
                            const T* weight, tensor_ref<T, R> out, const epilogue<T, R>& ep, const T* packed = nullptr,
                            const workspace& ws = {}) {
    assert(in.channels >= g.in_channels && out.channels >= g.out_channels);
    for (std::size_t d = 0; d < R; ++d)
        assert(out.extent[d] == (in.extent[d] - 1) * g.stride[d] - 2 * g.pad[d] + g.dilation[d] * (g.kernel[d] - 1) +
                                    g.output_pad[d] + 1);
    if (batch <= 0 || g.out_channels <= 0) return;
    std::vector<T> own;
    if (!packed) {
        own = pack_conv_transpose_weights<T, R>(g, out.extent, weight);
        packed = own.data();
    }
    constexpr index_t B = detail::blocking<T>::ocb;
    detail::for_each_residue_class<R>(g, out.extent, [&](const detail::tap_plan<R>& p, const auto&) {
        detail::run_any_rank<T, R>(p, batch, in, packed, out, ep, ws);
        packed += ((p.out_channels + B - 1) / B) * p.in_channels * p.tap_count() * B;
    });
}

}  // namespace ctseg::exec
