// Kernel geometry of a planned operation, for the executors of model/.
#pragma once
#include <array>
#include <cstddef>

#include "ctseg/exec/geometry.hpp"
#include "ctseg/plan/graph.hpp"

namespace ctseg::model::detail {

template <std::size_t R, class A>
std::array<exec::index_t, R> dims(const A& a) {
    std::array<exec::index_t, R> r{};
    for (std::size_t i = 0; i < R; ++i) r[i] = a[i];
    return r;
}

template <std::size_t R>
exec::conv_geometry<R> conv_geometry_of(const plan::op_info& o) {
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
exec::conv_transpose_geometry<R> conv_transpose_geometry_of(const plan::op_info& o) {
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

}  // namespace ctseg::model::detail
