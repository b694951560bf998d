// Transposed convolution (PyTorch ConvTranspose*d semantics, output_padding
// included) as a gather: the output is split into stride^R residue classes;
// within one class every output receives the same kernel taps from inputs at
// fixed integer shifts, so each class is an ordinary direct convolution over a
// strided sub-grid of the output. Every output element is owned by exactly one
// class and one task: no scatter, no races, deterministic.
#pragma once
#include <array>
#include <cassert>
#include <cstddef>
#include <vector>

#include "ctseg/exec/conv.hpp"
#include "ctseg/exec/geometry.hpp"

namespace ctseg::exec {

// out = epilogue(conv_transpose(in, weight)); weight is [in][out][k0][k1]...;
// out.extent must be (in - 1) stride - 2 pad + dilation (k - 1) + output_pad + 1.
template <class T, std::size_t R>
void conv_transpose_forward(const conv_transpose_geometry<R>& g, index_t batch, tensor_ref<const T, R> in,
                            const T* weight, tensor_ref<T, R> out, const epilogue<T, R>& ep) {
    assert(in.channels >= g.in_channels && out.channels >= g.out_channels);
    index_t ktotal = 1, classes = 1;
    for (std::size_t d = 0; d < R; ++d) {
        assert(out.extent[d] == (in.extent[d] - 1) * g.stride[d] - 2 * g.pad[d] + g.dilation[d] * (g.kernel[d] - 1) +
                                    g.output_pad[d] + 1);
        ktotal *= g.kernel[d];
        classes *= g.stride[d];
    }
    if (batch <= 0 || g.out_channels <= 0) return;
    const index_t IC = g.in_channels, OC = g.out_channels;

    for (index_t cls = 0; cls < classes; ++cls) {
        std::array<index_t, R> r{};
        {
            index_t q = cls;
            for (std::size_t d = R; d-- > 0;) { r[d] = q % g.stride[d]; q /= g.stride[d]; }
        }
        detail::tap_plan<R> p;
        p.in_channels = IC;
        p.out_channels = OC;
        std::array<std::vector<index_t>, R> kidx;  // kernel index of each tap
        bool empty = false;
        for (std::size_t d = 0; d < R; ++d) {
            const index_t s = g.stride[d];
            p.count[d] = r[d] < out.extent[d] ? (out.extent[d] - r[d] + s - 1) / s : 0;
            if (p.count[d] == 0) empty = true;
            p.in_step[d] = 1;
            p.out_step[d] = s;
            p.out_base[d] = r[d];
            // Output o = r + q s receives input i = (o + pad - k dilation) / s
            // when divisible, i.e. i = q + (r + pad - k dilation) / s.
            for (index_t k = 0; k < g.kernel[d]; ++k) {
                const index_t num = r[d] + g.pad[d] - k * g.dilation[d];
                if (((num % s) + s) % s != 0) continue;
                p.taps[d].push_back(num / s);
                kidx[d].push_back(k);
            }
        }
        if (empty) continue;
        const index_t ntaps = p.tap_count();
        const auto wpk = detail::pack_weights<T>(OC, IC, ntaps, [&](index_t oc, index_t ic, index_t t) {
            index_t kflat = 0;
            std::array<index_t, R> tk{};
            index_t q = t;
            for (std::size_t d = R; d-- > 0;) {
                const index_t nt = index_t(kidx[d].size());
                tk[d] = kidx[d][std::size_t(q % nt)];
                q /= nt;
            }
            for (std::size_t d = 0; d < R; ++d) kflat = kflat * g.kernel[d] + tk[d];
            return weight[(ic * OC + oc) * ktotal + kflat];
        });
        detail::run_any_rank<T, R>(p, batch, in, wpk.data(), out, ep);
    }
}

}  // namespace ctseg::exec
