// Max pooling, floor mode; padded positions never win (-inf padding). NaN
// propagates as in PyTorch.
#pragma once
#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <limits>
#include <vector>

#include "ctseg/exec/geometry.hpp"
#include "ctseg/exec/parallel.hpp"

namespace ctseg::exec {

// out.extent must be floor((in + 2 pad - kernel) / stride) + 1.
template <class T, std::size_t R>
void max_pool_forward(const pool_geometry<R>& g, index_t batch, tensor_ref<const T, R> in, tensor_ref<T, R> out) {
    static_assert(R >= 1);
    assert(in.channels == out.channels);
    for (std::size_t d = 0; d < R; ++d)
        assert(out.extent[d] == (in.extent[d] + 2 * g.pad[d] - g.kernel[d]) / g.stride[d] + 1);
    constexpr std::size_t I = R - 1;
    const index_t C = out.channels;
    const index_t in_plane = in.plane(), out_plane = out.plane();
    const index_t OW = out.extent[I], W = in.extent[I];
    const index_t orows = out_plane / std::max<index_t>(OW, 1);
    index_t krows = 1;
    for (std::size_t d = 0; d < I; ++d) krows *= g.kernel[d];
    const index_t s = g.stride[I], pw = g.pad[I];
    const bool pairs = g.kernel[I] == 2 && s == 2 && pw == 0;
    const index_t rows_total = batch * C * orows;
    if (rows_total <= 0 || OW <= 0) return;

    parallel_for_range(rows_total, balanced_chunk(rows_total, std::max<index_t>(1, 4096 / std::max<index_t>(OW, 1))),
                       [&](index_t r0, index_t r1) {
        for (index_t row = r0; row < r1; ++row) {
            const index_t nc = row / orows, orow = row % orows;
            const index_t n = nc / C, c = nc % C;
            const T* src = in.data + n * in.batch_stride + c * in_plane;
            T* dst = out.data + n * out.batch_stride + c * out_plane + orow * OW;
            std::array<index_t, R> o{};
            {
                index_t q = orow;
                for (std::size_t d = I; d-- > 0;) { o[d] = q % out.extent[d]; q /= out.extent[d]; }
            }
            for (index_t i = 0; i < OW; ++i) dst[i] = -std::numeric_limits<T>::infinity();
            for (index_t kr = 0; kr < krows; ++kr) {
                index_t q = kr, off = 0, stride = 1;
                bool inside = true;
                for (std::size_t d = I; d-- > 0;) {
                    const index_t k = q % g.kernel[d];
                    q /= g.kernel[d];
                    const index_t x = o[d] * g.stride[d] - g.pad[d] + k;
                    if (x < 0 || x >= in.extent[d]) { inside = false; break; }
                    off += x * stride;
                    stride *= in.extent[d];
                }
                if (!inside) continue;
                const T* srow = src + off * W;
                if (pairs) {
                    // The common 2-wide, stride-2 window: constant strides, so the
                    // loop vectorises (even/odd lanes by permutes).
                    for (index_t i = 0; i < OW; ++i) {
                        const T a = srow[2 * i], b = srow[2 * i + 1];
                        T m = dst[i];
                        m = (a > m || a != a) ? a : m;
                        m = (b > m || b != b) ? b : m;
                        dst[i] = m;
                    }
                    continue;
                }
                for (index_t k = 0; k < g.kernel[I]; ++k) {
                    // x = ow * s - pw + k in [0, W)
                    const index_t x0 = k - pw;
                    const index_t lo = x0 >= 0 ? 0 : (-x0 + s - 1) / s;
                    const index_t hi = x0 < W ? std::min(OW, (W - 1 - x0) / s + 1) : 0;
                    const T* sp = srow + x0;
                    for (index_t i = lo; i < hi; ++i) {
                        const T v = sp[i * s];
                        dst[i] = (v > dst[i] || v != v) ? v : dst[i];
                    }
                }
            }
        }
    });
}

}  // namespace ctseg::exec
