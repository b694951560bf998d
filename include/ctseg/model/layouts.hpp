// Which values of a planned network inference stores channel-blocked
// (exec/blocked.hpp) rather than NCHW, decided at compile time.
//
// A value is blocked when all of these hold:
// - the network is 2D and runs in float;
// - the value is neither the network's input nor its output (public tensors
//   stay NCHW);
// - its storage and every view of it (concatenation in place) have channel
//   counts and offsets in whole blocks of 16;
// - its plane holds at least `min_blocked_plane` positions. Below that the
//   weights dominate a convolution's traffic (the blocked kernels, cut by
//   rows, would read them once per task), and packing them for the blocked
//   kernels would take as much memory again as the network's largest
//   weights;
// - every operation that reads or writes it has a kernel for that layout.
// The last rule is applied until nothing changes: a value turned NCHW may
// leave an operation with no kernel for its other values' layouts.
// Layouts do not change the memory plan: both take the same elements and a
// view at a channel offset starts at the same address.
#pragma once
#include <array>
#include <cstddef>
#include <type_traits>

#include "ctseg/exec/blocked.hpp"
#include "ctseg/model/op_geometry.hpp"
#include "ctseg/plan/graph.hpp"

namespace ctseg::model {

inline constexpr long min_blocked_plane = 64 * 64;

namespace detail {

// Whether op o has a kernel reading its input in layout in_b and writing its
// output in layout out_b (NCHW both: every op). The geometry rules are the
// kernels' own (exec/blocked.hpp); none of them adds a residual.
constexpr bool has_layout_kernel(const plan::op_info& o, bool in_b, bool out_b) {
    if (!in_b && !out_b) return true;
    if (o.residual >= 0) return false;
    switch (o.kind) {
        case plan::op_kind::conv:
            return out_b ? exec::blocked_conv_supported(conv_geometry_of<2>(o))
                         : exec::pointwise_to_nchw_supported(conv_geometry_of<2>(o));  // the classifier head
        case plan::op_kind::conv_transpose:
            return out_b && exec::blocked_conv_transpose_supported(conv_transpose_geometry_of<2>(o));
        case plan::op_kind::max_pool:
            return in_b;  // to either layout
        default:
            return false;
    }
}

}  // namespace detail

// blocked[v]: value v is stored channel-blocked.
template <std::size_t N>
struct value_layouts {
    std::array<bool, N> blocked{};
    constexpr bool any() const {
        for (bool b : blocked)
            if (b) return true;
        return false;
    }
};

template <class Graph>
constexpr auto plan_layouts(const Graph& g, std::size_t rank, bool float_kernels) {
    value_layouts<std::tuple_size_v<std::remove_cvref_t<decltype(g.values)>>> out{};
    if (rank != 2 || !float_kernels) return out;
    auto& b = out.blocked;
    const auto buffer_of = [&](int v) { return std::size_t(g.values[std::size_t(v)].buffer); };
    // Candidates by storage.
    for (std::size_t v = 0; v < g.n_values; ++v) {
        const auto& x = g.values[v];
        if (std::size_t(x.buffer) != v) continue;
        b[v] = int(v) != g.input && int(v) != g.output && x.rank == 2 && x.channels % exec::channel_block == 0 &&
               x.plane() >= min_blocked_plane;
    }
    for (std::size_t v = 0; v < g.n_values; ++v) {
        const auto& x = g.values[v];
        if (x.channels % exec::channel_block != 0 || x.channel_offset % exec::channel_block != 0) b[buffer_of(int(v))] = false;
    }
    // Operations without a kernel for their layouts turn values NCHW.
    for (bool changed = true; changed;) {
        changed = false;
        const auto demote = [&](int v) {
            if (v < 0) return;
            auto& f = b[buffer_of(v)];
            changed = changed || f;
            f = false;
        };
        for (std::size_t i = 0; i < g.n_ops; ++i) {
            const auto& o = g.ops[i];
            if (o.removed) continue;
            const bool in_b = b[buffer_of(o.in)], out_b = b[buffer_of(o.out)];
            if (o.residual >= 0 && b[buffer_of(o.residual)]) demote(o.residual);
            if (detail::has_layout_kernel(o, in_b, out_b)) continue;
            if (in_b && detail::has_layout_kernel(o, false, out_b)) demote(o.in);
            else if (out_b && detail::has_layout_kernel(o, in_b, false)) demote(o.out);
            else {
                demote(o.in);
                demote(o.out);
            }
        }
    }
    // Views take their storage's layout.
    for (std::size_t v = 0; v < g.n_values; ++v) b[v] = b[buffer_of(int(v))];
    return out;
}

}  // namespace ctseg::model
