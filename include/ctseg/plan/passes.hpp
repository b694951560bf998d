// Compile-time passes over a lowered graph: fusion, in-place concatenation and
// the static memory plan. All constexpr; the results are constants of the plan.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>

#include "ctseg/plan/graph.hpp"

namespace ctseg::plan {

struct plan_options {
    bool fold_norms = true;        // batch norm folded into the preceding convolution (inference)
    bool fuse_epilogues = true;    // activation and residual add applied by the producing kernel
    bool concat_in_place = true;   // producers write straight into their slice of a concatenation
    bool chain_convolutions = true;  // convolutions on large planes run depth first (conv_chain_forward)
    // Chains form where an intermediate tensor holds at least this many
    // elements per sample (8 MiB of float): smaller ones stay in the
    // last-level cache between layers, and layer by layer is as fast.
    long chain_min_elements = 1L << 21;
};

inline constexpr int max_chain_links = 4;

namespace detail {
template <class G>
constexpr int readers(const G& g, int v) {
    int n = v == g.output ? 1 : 0;
    for (std::size_t i = 0; i < g.n_ops; ++i) {
        const op_info& o = g.ops[i];
        if (o.removed) continue;
        n += (o.in == v) + (o.residual == v);
    }
    return n;
}
template <class G>
constexpr int reader_of(const G& g, int v) {
    for (std::size_t i = 0; i < g.n_ops; ++i)
        if (!g.ops[i].removed && (g.ops[i].in == v || g.ops[i].residual == v)) return int(i);
    return -1;
}
template <class G>
constexpr int producer_of(const G& g, int v) {
    for (std::size_t i = 0; i < g.n_ops; ++i)
        if (!g.ops[i].removed && g.ops[i].out == v) return int(i);
    return -1;
}
// Index of the last operation writing v (or a slice of it); -1 for the input.
template <class G>
constexpr int last_write(const G& g, int v) {
    int last = -1;
    for (std::size_t i = 0; i < g.n_ops; ++i) {
        const op_info& o = g.ops[i];
        if (!o.removed && (o.out == v || (o.out != v && g.values[std::size_t(o.out)].buffer == v))) last = int(i);
    }
    return last;
}
// Whether another value lives in v's storage (a slice of it).
template <class G>
constexpr bool storage_shared(const G& g, int v) {
    for (std::size_t w = 0; w < g.n_values; ++w)
        if (int(w) != v && g.values[w].buffer == v) return true;
    return false;
}
constexpr bool has_epilogue(op_kind k) {
    return k == op_kind::conv || k == op_kind::conv_transpose || k == op_kind::pointwise ||
           k == op_kind::batch_norm || k == op_kind::instance_norm;
}

// A shortcut that only repeats or slices channels is read through the residual's
// (offset, period) instead of being materialised.
template <class G>
constexpr void fuse_channel_tiling(G& g) {
    for (std::size_t i = 0; i < g.n_ops; ++i) {
        op_info& o = g.ops[i];
        if (o.removed) continue;
        if (o.kind == op_kind::tile) {
            const int p = producer_of(g, o.in);
            if (p < 0 || g.ops[std::size_t(p)].kind != op_kind::tile || readers(g, o.in) != 1) continue;
            op_info& t = g.ops[std::size_t(p)];
            if (o.tile_offset != 0 || o.tile_period != g.values[std::size_t(o.in)].channels) continue;
            o.in = t.in;
            o.tile_offset = t.tile_offset;
            o.tile_period = t.tile_period;
            o.in_channels = t.in_channels;
            t.removed = true;
        } else if (o.residual >= 0) {
            const int p = producer_of(g, o.residual);
            if (p < 0 || g.ops[std::size_t(p)].kind != op_kind::tile || readers(g, o.residual) != 1) continue;
            op_info& t = g.ops[std::size_t(p)];
            const int width = g.values[std::size_t(o.residual)].channels;
            if (o.residual_offset != 0 || o.residual_period != width || width % t.tile_period != 0) continue;
            o.residual = t.in;
            o.residual_offset = t.tile_offset;
            o.residual_period = t.tile_period;
            t.removed = true;
        }
    }
}

template <class G>
constexpr void fuse_epilogues(G& g, const plan_options& opt) {
    for (std::size_t i = 0; i < g.n_ops; ++i) {
        op_info& p = g.ops[i];
        if (p.removed || !has_epilogue(p.kind)) continue;
        for (;;) {
            const int v = p.out;
            if (readers(g, v) != 1 || v == g.output) break;
            const int j = reader_of(g, v);
            if (j < 0) break;
            op_info& c = g.ops[std::size_t(j)];
            const bool convolution = p.kind == op_kind::conv || p.kind == op_kind::conv_transpose;
            if (c.kind == op_kind::batch_norm && c.in == v && opt.fold_norms && convolution && p.act == act_kind::none &&
                p.residual < 0 && !p.folded_norm) {
                p.folded_norm = true;
                p.gamma = c.gamma; p.beta = c.beta; p.mean = c.mean; p.var = c.var; p.eps = c.eps;
            } else if (c.kind == op_kind::pointwise && c.in == v && c.act != act_kind::none && c.residual < 0 &&
                       p.act == act_kind::none && p.residual < 0 && opt.fuse_epilogues) {
                p.act = c.act; p.slope = c.slope; p.prelu = c.prelu;
            } else if (c.kind == op_kind::pointwise && c.act == act_kind::none && c.residual >= 0 && p.residual < 0 &&
                       opt.fuse_epilogues && c.in == v && last_write(g, c.residual) < int(i)) {
                p.residual = c.residual; p.residual_offset = c.residual_offset; p.residual_period = c.residual_period;
            } else if (c.kind == op_kind::pointwise && c.act == act_kind::none && c.residual == v && c.in != v &&
                       p.residual < 0 && opt.fuse_epilogues && c.residual_offset == 0 &&
                       c.residual_period == g.values[std::size_t(v)].channels &&
                       g.values[std::size_t(c.in)].channels == g.values[std::size_t(v)].channels &&
                       last_write(g, c.in) < int(i)) {
                p.residual = c.in; p.residual_offset = 0; p.residual_period = g.values[std::size_t(c.in)].channels;
            } else {
                break;
            }
            p.out = c.out;
            c.removed = true;
        }
    }
}

// A branch of a concatenation computed by an operation of its own writes into its
// slice of the concatenated storage; the copy disappears.
template <class G>
constexpr void concat_in_place(G& g) {
    for (std::size_t i = 0; i < g.n_ops; ++i) {
        op_info& c = g.ops[i];
        if (c.removed || c.kind != op_kind::copy) continue;
        const int v = c.in;
        value_info& src = g.values[std::size_t(v)];
        const value_info& dst = g.values[std::size_t(c.out)];
        if (v == g.input || v == g.output || src.buffer != v || src.extent != dst.extent) continue;
        const int p = producer_of(g, v);
        if (storage_shared(g, v) || p < 0 || g.ops[std::size_t(p)].kind == op_kind::copy) continue;
        src.buffer = dst.buffer;
        src.channel_offset = dst.channel_offset;
        c.removed = true;
    }
}

// A convolution whose large output only the next convolution reads streams
// it to that convolution: the pair (and longer chains, up to max_chain_links)
// runs depth first and the intermediate tensor leaves the memory plan.
// Intermediate links carry no residual (it would be read at their rows).
template <class G>
constexpr void chain_convolutions(G& g, long min_elements) {
    for (std::size_t i = 0; i < g.n_ops; ++i) {
        if (g.ops[i].removed || g.ops[i].chained || g.ops[i].kind != op_kind::conv) continue;
        int links = 1;
        for (std::size_t at = i; links < max_chain_links;) {
            op_info& p = g.ops[at];
            const int v = p.out;
            const value_info& x = g.values[std::size_t(v)];
            if (x.rank < 2 || v == g.output || x.buffer != v || p.residual >= 0 || readers(g, v) != 1 ||
                long(x.channels) * x.plane() < min_elements)
                break;
            // The reader must be the next operation: the chain runs as one
            // step, and nothing else may run between its links.
            const int j = reader_of(g, v);
            std::size_t next = at + 1;
            while (next < g.n_ops && g.ops[next].removed) ++next;
            if (j < 0 || std::size_t(j) != next || g.ops[next].kind != op_kind::conv || g.ops[next].in != v) break;
            if (storage_shared(g, v)) break;
            p.chain_next = j;
            g.ops[std::size_t(j)].chained = true;
            g.values[std::size_t(v)].streamed = true;
            at = std::size_t(j);
            ++links;
        }
    }
}

// The network's result is written straight into the caller's tensor when it
// owns its storage; otherwise a final copy is added.
template <class G>
constexpr void route_output(G& g) {
    const value_info& o = g.values[std::size_t(g.output)];
    const bool shared = o.buffer != g.output || o.channel_offset != 0 || g.output == g.input || storage_shared(g, g.output);
    if (!shared) return;
    const int v = g.add_value(o.channels, o.rank, o.extent, o.receptive, o.jump);
    op_info& c = g.add_op(op_kind::copy, g.output, v, -1);
    c.in_channels = c.out_channels = o.channels;
    g.output = v;
}

inline constexpr long alignment_elements = 16;  // 64 bytes of float

// Storage offsets (per batch element) from liveness: storages whose live ranges
// overlap never overlap in memory. Largest first, lowest fitting offset.
template <std::size_t N>
struct memory_plan {
    std::array<long, N> offset{};   // per value (owners only), -1 if not in the arena
    std::array<long, N> size{};
    std::array<int, N> first{}, last{};
    long arena = 0;                 // elements per batch element
};

template <class G>
constexpr auto plan_memory(const G& g) {
    constexpr std::size_t N = std::tuple_size_v<decltype(g.values)>;
    memory_plan<N> m;
    for (std::size_t v = 0; v < N; ++v) { m.offset[v] = -1; m.first[v] = 1 << 30; m.last[v] = -1; }
    int step = 0;
    for (std::size_t i = 0; i < g.n_ops; ++i) {
        const op_info& o = g.ops[i];
        if (o.removed) continue;
        for (int v : {o.in, o.out, o.residual}) {
            if (v < 0) continue;
            const std::size_t s = std::size_t(g.values[std::size_t(v)].buffer);
            m.first[s] = std::min(m.first[s], step);
            m.last[s] = std::max(m.last[s], step);
        }
        // A chain's links run as one step: what any link reads or writes is live throughout.
        const bool chain_goes_on = o.chain_next >= 0;
        if (!chain_goes_on) ++step;
    }
    std::array<int, N> order{};
    std::size_t n = 0;
    for (std::size_t v = 0; v < g.n_values; ++v) {
        if (int(v) == g.input || int(v) == g.output || g.values[v].buffer != int(v) || g.values[v].streamed || m.last[v] < 0)
            continue;
        const long raw = long(g.values[v].channels) * g.values[v].plane();
        m.size[v] = (raw + alignment_elements - 1) / alignment_elements * alignment_elements;
        order[n++] = int(v);
    }
    std::sort(order.begin(), order.begin() + long(n), [&](int a, int b) {
        return m.size[std::size_t(a)] != m.size[std::size_t(b)] ? m.size[std::size_t(a)] > m.size[std::size_t(b)] : a < b;
    });
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t a = std::size_t(order[i]);
        long at = 0;
        for (bool moved = true; moved;) {
            moved = false;
            for (std::size_t j = 0; j < i; ++j) {
                const std::size_t b = std::size_t(order[j]);
                const bool live_together = m.first[a] <= m.last[b] && m.first[b] <= m.last[a];
                const bool overlap = at < m.offset[b] + m.size[b] && m.offset[b] < at + m.size[a];
                if (live_together && overlap) { at = m.offset[b] + m.size[b]; moved = true; }
            }
        }
        m.offset[a] = at;
        m.arena = std::max(m.arena, at + m.size[a]);
    }
    return m;
}

template <class G>
constexpr void assign_prepared(G& g) {
    g.prepared_values = 0;
    for (std::size_t i = 0; i < g.n_ops; ++i) {
        op_info& o = g.ops[i];
        if (o.removed) continue;
        if (o.folded_norm) {
            o.prepared = g.prepared_values;
            g.prepared_values += g.params[std::size_t(o.weight)].count + o.out_channels;
        } else if (o.kind == op_kind::batch_norm) {
            o.prepared = g.prepared_values;
            g.prepared_values += 2L * o.out_channels;
        }
    }
}
}  // namespace detail

template <class G>
constexpr G optimise(G g, const plan_options& opt) {
    if (opt.fuse_epilogues) detail::fuse_channel_tiling(g);
    detail::fuse_epilogues(g, opt);
    if (opt.concat_in_place) detail::concat_in_place(g);
    detail::route_output(g);
    if (opt.chain_convolutions) detail::chain_convolutions(g, opt.chain_min_elements);
    detail::assign_prepared(g);
    return g;
}

}  // namespace ctseg::plan
