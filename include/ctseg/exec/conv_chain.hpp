// Depth-first execution of a chain of convolutions, each link's output read
// only by the next (a U-Net block: conv, conv, then perhaps a 1x1 head).
//
// Run layer by layer, every intermediate tensor of a large plane (8 MB for 32
// channels at 256x256) is written to memory and read back by the next layer
// after it has left the caches. Here a task owns a strip of output rows along
// the outermost spatial dim and walks it in bands of a few rows: for each
// band, every link computes just the rows the next link needs, into a small
// per-thread buffer that stays in the core's cache. An intermediate row is
// computed once per strip (rows already held are kept, the buffer slides);
// only the rows at a strip's edges are computed twice, by both strips.
// Results equal layer by layer bit for bit: every output sums the same
// products in the same order.
#pragma once
#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "ctseg/exec/blocked.hpp"
#include "ctseg/exec/conv.hpp"
#include "ctseg/exec/geometry.hpp"
#include "ctseg/exec/parallel.hpp"

namespace ctseg::exec {

// One convolution of a chain. Weights as conv_forward reads them: in place,
// [out][in][k0][k1]..., with `packed_tail` = pack_conv_tail(g, weight) when
// out_channels is not a multiple of the block (required: a chain allocates nothing).
// A float 2D link may read or write channel-blocked tensors (blocked.hpp):
// a blocked output takes `blocked_weight` (pack_blocked_conv); a blocked
// input with an NCHW output is a 1x1 convolution reading `weight` in place.
template <class T, std::size_t R>
struct chain_link {
    conv_geometry<R> g;
    const T* weight = nullptr;
    const T* packed_tail = nullptr;
    epilogue<T, R> ep;  // a residual only on the last link
    const T* blocked_weight = nullptr;
    bool in_blocked = false, out_blocked = false;
};

inline constexpr std::size_t max_chain_links = 4;

namespace detail {

// How a chain is cut: strips per sample, rows per band, the rows each
// intermediate holds, and the working memory of one task.
template <class T, std::size_t R>
struct chain_layout {
    std::size_t links = 0;
    // extent[0]: the input's; extent[j + 1]: link j's output.
    std::array<std::array<index_t, R>, max_chain_links + 1> extent{};
    std::array<index_t, max_chain_links> lo{}, span{}, step{};  // dim 0: first tap, taps' reach, stride
    std::array<index_t, max_chain_links> held{};                  // rows of intermediate j (output of link j)
    std::array<std::size_t, max_chain_links> buffer_at{};         // byte offsets in a task's memory
    index_t band = 1, strips = 1;
    std::size_t scratch_at = 0, bytes = 0;

    // Input rows (dim 0) that link j reads for its output rows [a, b), within the input.
    std::array<index_t, 2> input_rows(std::size_t j, index_t a, index_t b) const {
        return {std::max<index_t>(0, a * step[j] + lo[j]), std::min(extent[j][0], (b - 1) * step[j] + lo[j] + span[j])};
    }
    index_t slice(std::size_t j) const {  // elements of one dim-0 row of extent[j], all dims after the first
        index_t e = 1;
        for (std::size_t d = 1; d < R; ++d) e *= extent[j][d];
        return e;
    }
    // Bytes of the buffer of intermediate j holding `rows` rows (64-byte multiple).
    std::size_t buffer_bytes(std::span<const chain_link<T, R>> chain, std::size_t j, index_t rows) const {
        return task_layout<T, R>::round_up(std::size_t(chain[j].g.out_channels * rows * slice(j + 1)) * sizeof(T));
    }

    chain_layout(std::span<const chain_link<T, R>> chain, const std::array<index_t, R>& in_extent, index_t batch,
                 index_t threads) {
        links = chain.size();
        assert(links >= 1 && links <= max_chain_links);
        extent[0] = in_extent;
        for (std::size_t j = 0; j < links; ++j) {
            const auto& g = chain[j].g;
            for (std::size_t d = 0; d < R; ++d)
                extent[j + 1][d] = (extent[j][d] + 2 * g.pad[d] - g.dilation[d] * (g.kernel[d] - 1) - 1) / g.stride[d] + 1;
            lo[j] = -g.pad[0];
            span[j] = g.dilation[0] * (g.kernel[0] - 1) + 1;
            step[j] = g.stride[0];
        }
        const index_t rows = extent[links][0];
        strips = std::max<index_t>(1, std::min(rows, (threads + batch - 1) / std::max<index_t>(batch, 1)));
        // The rows each intermediate holds for a band of b final rows.
        const auto hold = [&](index_t b) {
            std::array<index_t, max_chain_links> h{};
            index_t need = b;
            for (std::size_t j = links - 1; j-- > 0;) {
                need = std::min(extent[j + 1][0], (need - 1) * step[j + 1] + span[j + 1]);
                h[j] = need;
            }
            return h;
        };
        const auto held_bytes = [&](const std::array<index_t, max_chain_links>& h) {
            std::size_t n = 0;
            for (std::size_t j = 0; j + 1 < links; ++j) n += buffer_bytes(chain, j, h[j]);
            return n;
        };
        // The largest band whose intermediates fit a share of the core's L2
        // next to the links' own working memory.
        constexpr std::size_t budget = 512 * 1024;
        const index_t per_strip = (rows + strips - 1) / strips;
        band = std::max<index_t>(1, std::min<index_t>(per_strip, 16));
        while (band > 1 && held_bytes(hold(band)) > budget) --band;
        held = hold(band);
        std::size_t at = 0;
        for (std::size_t j = 0; j + 1 < links; ++j) {
            buffer_at[j] = at;
            at += buffer_bytes(chain, j, held[j]);
        }
        scratch_at = at;
        // Each link's working memory for any row count it may be given.
        std::size_t most = 0;
        for (std::size_t j = 0; j < links; ++j) {
            const index_t max_rows = j + 1 < links ? held[j] : band;
            for (index_t r = 1; r <= max_rows; ++r) most = std::max(most, serial_scratch_bytes<T, R>(link_plan(chain[j].g, j, r), 1));
        }
        bytes = scratch_at + most;
    }

    // The plan of link j for `count` rows (dim 0) of its output.
    tap_plan<R> link_plan(const conv_geometry<R>& g, std::size_t j, index_t count) const {
        auto e = extent[j + 1];
        e[0] = count;
        return conv_plan<R>(g, e);
    }
};

}  // namespace detail

// Bytes of working memory per thread that conv_chain_forward(chain, batch, in
// of extents `in_extent`, ...) uses, for the calling task arena.
template <class T, std::size_t R>
std::size_t conv_chain_scratch_bytes(std::span<const chain_link<T, R>> chain, index_t batch, const std::array<index_t, R>& in_extent) {
    return detail::chain_layout<T, R>(chain, in_extent, batch, concurrency()).bytes;
}

// out = the chain's links applied one after the other to `in`; rank >= 2. Each
// intermediate tensor is never stored whole. `ws`, when given, holds
// conv_chain_scratch_bytes per thread of the calling arena.
template <class T, std::size_t R>
void conv_chain_forward(std::span<const chain_link<T, R>> chain, index_t batch, tensor_ref<const T, R> in,
                        tensor_ref<T, R> out, const workspace& ws = {}) {
    static_assert(R >= 2, "ctseg: conv_chain_forward: a chain runs on 2D and 3D tensors");
    using layout_t = detail::chain_layout<T, R>;
    const layout_t lay(chain, in.extent, batch, concurrency());
    const std::size_t K = lay.links;
    for (std::size_t d = 0; d < R; ++d) assert(out.extent[d] == lay.extent[K][d]);
    for (std::size_t j = 0; j + 1 < K; ++j) assert(!chain[j].ep.residual && chain[j].out_blocked == chain[j + 1].in_blocked);
    if (batch <= 0) return;
    std::array<detail::weight_source<T>, max_chain_links> weights{};
    std::array<std::vector<T>, max_chain_links> tails;  // stays empty when every packed_tail is given
    for (std::size_t j = 0; j < K; ++j)
        weights[j] = detail::in_place_weights<T, R>(chain[j].g, chain[j].weight, chain[j].packed_tail, tails[j]);
    const index_t rows = lay.extent[K][0];

    parallel_for_each(batch * lay.strips, [&](index_t item) {
        const index_t n = item / lay.strips, strip = item % lay.strips;
        const index_t c0 = strip * rows / lay.strips, c1 = (strip + 1) * rows / lay.strips;
        // The task's memory: the intermediates, then the links' working memory.
        const int slot = thread_slot();
        std::byte* const memory = ws.base && slot >= 0 && slot < ws.slots ? ws.base + std::size_t(slot) * ws.slot_bytes
                                                                          : detail::aligned_scratch<layout_t>(lay.bytes);
        std::byte* const link_memory = memory + lay.scratch_at;
        std::array<T*, max_chain_links> buf{};
        std::array<index_t, max_chain_links> first{}, last{};  // rows [first, last) held, at buffer row 0 on
        for (std::size_t j = 0; j + 1 < K; ++j) buf[j] = reinterpret_cast<T*>(memory + lay.buffer_at[j]);

        tensor_ref<const T, R> src = in;
        src.data = in.data + n * in.batch_stride;
        tensor_ref<T, R> dst = out;
        dst.data = out.data + n * out.batch_stride;
        auto as_input = [](tensor_ref<T, R> v) { return tensor_ref<const T, R>{v.data, v.channels, v.extent, v.batch_stride}; };
        auto buffer_view = [&](std::size_t j) {
            tensor_ref<T, R> v;
            v.data = buf[j];
            v.channels = chain[j].g.out_channels;
            v.extent = lay.extent[j + 1];
            v.extent[0] = lay.held[j];
            v.batch_stride = v.channels * v.plane();
            return v;
        };
        // Link j's output rows [a, b) from its input (held from row in_first),
        // written from row a - out_first of `to`.
        auto run_link = [&](std::size_t j, index_t a, index_t b, tensor_ref<const T, R> from, index_t in_first,
                            tensor_ref<T, R> to, index_t out_first) {
            if constexpr (std::is_same_v<T, float> && R == 2) {
                const chain_link<T, R>& l = chain[j];
                if (l.in_blocked || l.out_blocked) {
                    const plane_view v = plane_of(from, 0, l.in_blocked, in_first, lay.extent[j][0]);
                    const plane_out o = plane_of(to, 0, l.out_blocked, out_first);
                    const auto e = detail::block_epilogue_of(l.ep);
                    if (l.out_blocked) conv_rows_blocked(l.g, v, l.blocked_weight, e, o, a, b);
                    else pointwise_rows_to_nchw(l.g.in_channels, l.g.out_channels, v, l.weight, e, o, a, b);
                    return;
                }
            }
            detail::tap_plan<R> p = lay.link_plan(chain[j].g, j, b - a);
            detail::tap_list shifted;
            for (auto t : p.taps[0]) shifted.push_back(t + a * lay.step[j] - in_first);
            p.taps[0] = shifted;
            p.out_base[0] = a - out_first;
            epilogue<T, R> ep = chain[j].ep;
            if (ep.residual) ep.residual += n * ep.residual_batch_stride;
            detail::run_tap_plan_serial<T, R>(p, 1, from, weights[j], to, ep, link_memory);
        };

        for (index_t c = c0; c < c1; c += lay.band) {
            const index_t d = std::min(c1, c + lay.band);
            // Rows each intermediate must hold for final rows [c, d).
            std::array<std::array<index_t, 2>, max_chain_links> need{};
            need[K - 1] = {c, d};
            for (std::size_t j = K - 1; j > 0; --j) need[j - 1] = lay.input_rows(j, need[j][0], need[j][1]);
            for (std::size_t j = 0; j + 1 < K; ++j) {
                auto view = buffer_view(j);
                // A blocked buffer is a stack of planes of 16 channels each.
                const index_t group = chain[j].out_blocked ? channel_block : 1;
                const index_t slice = lay.slice(j + 1) * group, plane = view.plane() * group, planes = view.channels / group;
                // Slide: drop the rows before need[j][0], keep the rest.
                if (last[j] <= need[j][0]) {
                    first[j] = last[j] = need[j][0];
                } else if (need[j][0] > first[j]) {
                    const index_t drop = need[j][0] - first[j], keep = last[j] - need[j][0];
                    for (index_t ch = 0; ch < planes; ++ch)
                        std::memmove(buf[j] + ch * plane, buf[j] + ch * plane + drop * slice, std::size_t(keep * slice) * sizeof(T));
                    first[j] = need[j][0];
                }
                if (need[j][1] > last[j]) {
                    if (j == 0) run_link(0, last[0], need[0][1], src, 0, view, first[0]);
                    else run_link(j, last[j], need[j][1], as_input(buffer_view(j - 1)), first[j - 1], view, first[j]);
                    last[j] = need[j][1];
                }
                // Past the input's end the next link must read zeros: the
                // rows after the last one held are cleared.
                if (last[j] == lay.extent[j + 1][0])
                    for (index_t ch = 0; ch < planes; ++ch)
                        std::fill(buf[j] + ch * plane + (last[j] - first[j]) * slice, buf[j] + (ch + 1) * plane, T(0));
            }
            if (K == 1) run_link(0, c, d, src, 0, dst, 0);
            else run_link(K - 1, c, d, as_input(buffer_view(K - 2)), first[K - 2], dst, 0);
        }
    });
}

}  // namespace ctseg::exec
