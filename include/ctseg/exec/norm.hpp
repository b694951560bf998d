// Instance normalisation (PyTorch InstanceNorm semantics: per sample and
// channel, biased variance), optional affine, then the epilogue. Statistics
// are accumulated in double in a fixed order: deterministic.
#pragma once
#include <cassert>
#include <cmath>
#include <cstddef>

#include "ctseg/exec/geometry.hpp"
#include "ctseg/exec/parallel.hpp"
#include "ctseg/exec/simd.hpp"

namespace ctseg::exec {

// out = ep((in - mean) / sqrt(var + eps) * gamma[c] + beta[c]); null gamma
// means 1, null beta means 0. in and out may be the same tensor.
template <class T, std::size_t R>
void instance_norm_forward(index_t batch, tensor_ref<const T, R> in, tensor_ref<T, R> out, T eps, const T* gamma,
                           const T* beta, const epilogue<T, R>& ep) {
    assert(in.channels == out.channels && in.plane() == out.plane());
    const index_t C = out.channels, plane = out.plane();
    if (batch <= 0 || C <= 0 || plane <= 0) return;
    parallel_for_each(batch * C, [&](index_t nc) {
        const index_t n = nc / C, c = nc % C;
        const T* x = in.data + n * in.batch_stride + c * plane;
        T* y = out.data + n * out.batch_stride + c * plane;
        // Two passes in double; four partial sums for throughput, combined in
        // a fixed order.
        double s[4] = {0, 0, 0, 0};
        index_t i = 0;
        for (; i + 4 <= plane; i += 4)
            for (int k = 0; k < 4; ++k) s[k] += double(x[i + k]);
        for (; i < plane; ++i) s[0] += double(x[i]);
        const double mean = ((s[0] + s[1]) + (s[2] + s[3])) / double(plane);
        double v[4] = {0, 0, 0, 0};
        for (i = 0; i + 4 <= plane; i += 4)
            for (int k = 0; k < 4; ++k) {
                const double d = double(x[i + k]) - mean;
                v[k] += d * d;
            }
        for (; i < plane; ++i) {
            const double d = double(x[i]) - mean;
            v[0] += d * d;
        }
        const double var = ((v[0] + v[1]) + (v[2] + v[3])) / double(plane);
        const double inv = 1.0 / std::sqrt(var + double(eps));
        const double g = gamma ? double(gamma[c]) : 1.0;
        const T a = T(inv * g), m = T(mean);
        const T b = beta ? beta[c] : T(0);
        for (index_t j = 0; j < plane; ++j) y[j] = (x[j] - m) * a + b;
        const auto ce = detail::make_channel_epilogue(ep, n, c, plane);
        ce.apply(y, y, plane, 0);
    });
}

}  // namespace ctseg::exec
