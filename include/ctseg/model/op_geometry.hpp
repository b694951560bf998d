// Kernel geometry and epilogue of a planned operation, for the executors of
// model/ (inference in network.hpp, training in training.hpp).
#pragma once
#include <array>
#include <cstddef>

#include "ctseg/exec/geometry.hpp"
#include "ctseg/plan/graph.hpp"

namespace ctseg::model::detail {

template <std::size_t R, class A>
constexpr std::array<exec::index_t, R> dims(const A& a) {
    std::array<exec::index_t, R> r{};
    for (std::size_t i = 0; i < R; ++i) r[i] = a[i];
    return r;
}

template <std::size_t R>
constexpr exec::conv_geometry<R> conv_geometry_of(const plan::op_info& o) {
    exec::conv_geometry<R> g;
    g.in_channels = o.in_channels;
    g.out_channels = o.out_channels;
    g.kernel = dims<R>(o.kernel);
    g.stride = dims<R>(o.stride);
    g.pad = dims<R>(o.pad);
    g.dilation = dims<R>(o.dilation);
    return g;
}

template <std::size_t R>
constexpr exec::conv_transpose_geometry<R> conv_transpose_geometry_of(const plan::op_info& o) {
    exec::conv_transpose_geometry<R> g;
    g.in_channels = o.in_channels;
    g.out_channels = o.out_channels;
    g.kernel = dims<R>(o.kernel);
    g.stride = dims<R>(o.stride);
    g.pad = dims<R>(o.pad);
    g.dilation = dims<R>(o.dilation);
    g.output_pad = dims<R>(o.output_pad);
    return g;
}

template <std::size_t R>
exec::pool_geometry<R> pool_geometry_of(const plan::op_info& o) {
    exec::pool_geometry<R> g;
    g.kernel = dims<R>(o.kernel);
    g.stride = dims<R>(o.stride);
    g.pad = dims<R>(o.pad);
    return g;
}

template <class U, std::size_t R>
exec::tensor_ref<const U, R> as_const(const exec::tensor_ref<U, R>& r) {
    return {r.data, r.channels, r.extent, r.batch_stride};
}

inline exec::activation activation_of(plan::act_kind k) {
    switch (k) {
        case plan::act_kind::relu: return exec::activation::relu;
        case plan::act_kind::leaky_relu: return exec::activation::leaky_relu;
        case plan::act_kind::prelu: return exec::activation::prelu;
        case plan::act_kind::none: break;
    }
    return exec::activation::none;
}

// y = act(acc + bias) + residual: bias and PReLU slopes (or null) as given;
// `residual` is read only when the operation has one.
template <class T, std::size_t R>
exec::epilogue<T, R> epilogue_of(const plan::op_info& o, const T* bias, const T* prelu, const exec::tensor_ref<T, R>& residual) {
    exec::epilogue<T, R> e;
    e.bias = bias;
    e.act = activation_of(o.act);
    e.slope = T(o.slope);
    e.prelu_slope = prelu;
    if (o.residual >= 0) {
        e.residual = residual.data;
        e.residual_batch_stride = residual.batch_stride;
        e.residual_channels = o.residual_period;
        e.residual_offset = o.residual_offset;
    }
    return e;
}

}  // namespace ctseg::model::detail
