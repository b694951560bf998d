// Direct convolution (cross-correlation, PyTorch semantics) in NC<spatial>
// layout, for any spatial rank.
//
// The work is organised as a generic "tap engine" also used by the transposed
// convolution: outputs on a regular sub-grid, each one a sum over input
// channels and over a dense grid of taps whose input coordinate per dimension
// is `o * in_step + a[tap]`. A task owns a set of output rows (all dims but the
// innermost) of one sample and a group of output-channel blocks. It copies the
// input rows it needs into a zero-padded buffer (a ring of the rows the
// current output row reads, or all of its rows), with the innermost dimension
// split into `in_step` phases so that every tap reads a contiguous run. The
// micro-kernel keeps an (output channels x innermost run) block of
// accumulators in vector registers and broadcasts the weights, read in place
// or packed; results go from the registers through the epilogue to the output.
#pragma once
#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "ctseg/exec/geometry.hpp"
#include "ctseg/exec/parallel.hpp"
#include "ctseg/exec/simd.hpp"

namespace ctseg::exec {
namespace detail {

// The tap offsets of one dim: kept inline up to `inline_taps` (every usual
// kernel), so that planning a convolution allocates nothing; longer lists go
// to the heap.
class tap_list {
public:
    static constexpr std::size_t inline_taps = 16;
    tap_list() = default;
    tap_list(std::initializer_list<index_t> v) {
        for (auto a : v) push_back(a);
    }
    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    const index_t* begin() const { return data(); }
    const index_t* end() const { return data() + size_; }
    index_t operator[](std::size_t i) const { return data()[i]; }
    void push_back(index_t a) {
        if (size_ < inline_taps) {
            inline_[size_] = a;
        } else {
            if (size_ == inline_taps) heap_.assign(inline_.begin(), inline_.end());
            heap_.push_back(a);
        }
        ++size_;
    }

private:
    const index_t* data() const { return size_ <= inline_taps ? inline_.data() : heap_.data(); }
    std::array<index_t, inline_taps> inline_{};
    std::vector<index_t> heap_;
    std::size_t size_ = 0;
};

// Output coordinate (per dim) = o * out_step + out_base, o in [0, count).
// Input coordinate of tap t = o * in_step + taps[t]; outside the input reads 0.
template <std::size_t R>
struct tap_plan {
    index_t in_channels = 0, out_channels = 0;
    std::array<index_t, R> count{}, in_step{}, out_step{}, out_base{};
    std::array<tap_list, R> taps;
    // out_channels counts virtual channels v = (c * fold_rows + y) * fold + x:
    // real channel c, with the innermost output coordinate shifted by x and
    // the output row (dim R - 2) by y, and dropped where that falls outside
    // the output. Lets residue classes of a transposed convolution share one
    // pass, so that output rows are written whole and the input is read once.
    // fold_rows > 1 takes fold * fold_rows dividing the block of output
    // channels (a block holds whole real channels) and out_base = 0 along R - 2.
    index_t fold = 1, fold_rows = 1;

    index_t tap_count() const {
        index_t t = 1;
        for (auto& v : taps) t *= index_t(v.size());
        return t;
    }
};

template <class T>
struct blocking {
    static constexpr int lanes = simd<T>::lanes;
    static constexpr int ocb = 4;                                   // output channels per block
    static constexpr int nv = simd<T>::registers >= 32 ? 6 : 3;    // vectors along the row
};

// Packed weights: [oc block][ic][tap][ocb], zero for channels past the end.
// get(oc, ic, tap) reads the caller's layout.
template <class T, class Get>
std::vector<T> pack_weights(index_t oc_count, index_t ic_count, index_t ntaps, Get&& get) {
    constexpr index_t B = blocking<T>::ocb;
    const index_t nb = (oc_count + B - 1) / B;
    std::vector<T> w(std::size_t(nb * ic_count * ntaps * B), T(0));
    parallel_for_each(nb, [&](index_t b) {
        for (index_t ic = 0; ic < ic_count; ++ic)
            for (index_t t = 0; t < ntaps; ++t)
                for (index_t o = 0; o < B; ++o) {
                    const index_t oc = b * B + o;
                    if (oc < oc_count) w[std::size_t(((b * ic_count + ic) * ntaps + t) * B + o)] = get(oc, ic, t);
                }
    });
    return w;
}

// Where the micro-kernel reads the weight of virtual output channel v at step
// k = ic * taps + t: w[(v / OCB) * block_stride + (v % OCB) * channel_stride +
// k * k_stride]. Packed weights (pack_weights): block_stride = ic * taps *
// OCB, channel_stride = 1, k_stride = OCB. Weights in place, [out][in][taps]
// as a convolution stores them: block_stride = OCB * ic * taps, channel_stride
// = ic * taps, k_stride = 1, with the last block, when partial, read from a
// packed copy `tail` (its missing channels zero, nothing read past the array).
template <class T>
struct weight_source {
    const T* w = nullptr;
    index_t block_stride = 0, channel_stride = 1, k_stride = 1;
    const T* tail = nullptr;  // packed block `tail_block`, or null
    index_t tail_block = -1;

    static weight_source packed(const T* w, index_t ic, index_t taps, index_t ocb) { return {w, ic * taps * ocb, 1, ocb}; }
};

// acc[o][v] = sum_ic sum_t weight(o, ic * ntaps + t) * in[ic * ic_stride + off[t] + v * L + lane]
// for NB blocks of OCB output channels, weight(b * OCB + o, k) at
// w[b * wstride + o * cs + k * ks] (see weight_source).
// Short runs (small NV) take several blocks so that every input vector loaded
// feeds enough FMAs to keep both FMA pipes busy.
template <class T, int OCB, int NB, int NV>
__attribute__((noinline)) void micro_kernel(const T* in, index_t nic, index_t ic_stride, const index_t* off, index_t ntaps,
                         const T* w, index_t wstride, index_t cs, index_t ks, typename simd<T>::V (&acc)[NB * OCB][NV]) {
    using S = simd<T>;
    constexpr int L = S::lanes;
    // Accumulated in a local array indexed only by constants, and not
    // inlined: the accumulators stay in registers whatever the caller does
    // with `acc` (inlined, GCC may merge the two arrays and keep them in memory).
    typename S::V r[NB * OCB][NV];
    for (int o = 0; o < NB * OCB; ++o)
        for (int v = 0; v < NV; ++v) r[o][v] = S::splat(T(0));
    // One pointer per block, advanced by ks per step; the block's channels at
    // multiples of cs from it (few address registers even with weights in place).
    const T* wb[NB];
    for (int b = 0; b < NB; ++b) wb[b] = w + b * wstride;
    for (index_t ic = 0; ic < nic; ++ic) {
        const T* p = in + ic * ic_stride;
        for (index_t t = 0; t < ntaps; ++t) {
            const T* q = p + off[t];
            if constexpr (NB == 1) {
                // One weight vector per channel, the inputs loaded one at a time.
                for (int v = 0; v < NV; ++v) {
                    typename S::V x = S::load(q + v * L);
                    S::pin(x);
                    for (int o = 0; o < OCB; ++o) r[o][v] = S::fma(x, S::splat(wb[0][o * cs]), r[o][v]);
                }
            } else {
                // All NV inputs held, each broadcast weight used NV times.
                typename S::V x[NV];
                for (int v = 0; v < NV; ++v) {
                    x[v] = S::load(q + v * L);
                    S::pin(x[v]);
                }
                for (int b = 0; b < NB; ++b)
                    for (int o = 0; o < OCB; ++o) {
                        const typename S::V wv = S::splat(wb[b][o * cs]);
                        for (int v = 0; v < NV; ++v) r[b * OCB + o][v] = S::fma(x[v], wv, r[b * OCB + o][v]);
                    }
            }
            for (int b = 0; b < NB; ++b) wb[b] += ks;
        }
    }
    for (int o = 0; o < NB * OCB; ++o)
        for (int v = 0; v < NV; ++v) acc[o][v] = r[o][v];
}

// How a run of `vectors` output vectors is cut into micro-kernel calls: as
// few chunks as possible of at most NVMAX vectors, their sizes differing by
// at most one (6 + 6 + 4 -> 6 + 5 + 5, 6 + 2 -> 4 + 4), and how many blocks of
// output channels each call takes so that it holds about NVMAX * OCB
// accumulators.
template <int NVMAX>
struct run_split {
    index_t chunks = 0;
    int nv_hi = 0;       // the first `hi` chunks have nv_hi vectors, the rest nv_hi - 1
    index_t hi = 0;
    int blocks = 1;      // output-channel blocks per call

    explicit run_split(index_t vectors) {
        if (vectors <= 0) return;
        chunks = (vectors + NVMAX - 1) / NVMAX;
        nv_hi = int((vectors + chunks - 1) / chunks);
        hi = vectors - index_t(nv_hi - 1) * chunks;
        blocks = std::max(1, NVMAX / nv_hi);
    }
    int nv(index_t chunk) const { return chunk < hi ? nv_hi : nv_hi - 1; }
    index_t first(index_t chunk) const {  // index of the chunk's first vector
        return chunk < hi ? chunk * nv_hi : hi * nv_hi + (chunk - hi) * (nv_hi - 1);
    }
};

// A per-thread buffer of at least `bytes` bytes, 64-byte aligned (vector
// loads never straddle a cache line more than the data does), one per Use,
// that keeps its capacity: once grown, later calls allocate nothing. Safe
// because a task body never waits (no other task runs on its thread while it
// uses the buffer).
template <class Use>
inline std::byte* aligned_scratch(std::size_t bytes) {
    thread_local std::vector<std::byte> buf;
    if (buf.size() < bytes + 64) buf.resize(bytes + 64);
    return reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(buf.data()) + 63) / 64 * 64);
}
struct task_memory_use;

// How a tap plan is cut into tasks, and the working memory of one task.
template <class T, std::size_t R>
struct task_layout {
    static constexpr int L = simd<T>::lanes;
    static constexpr int OCB = blocking<T>::ocb;
    static constexpr int NVMAX = blocking<T>::nv;
    static constexpr std::size_t I = R - 1;  // innermost dim
    static constexpr std::size_t H = R - 2;  // row dim split among tasks

    bool runs = false;  // every count positive
    index_t ntaps = 0, nic = 0, nblocks = 0;
    std::array<index_t, R> amin{}, amax{};  // tap extents per dim
    index_t s = 1;                          // innermost input step: phases
    index_t OW = 0, idx_max = 0;
    bool flat = false;
    index_t M = 0, rowlen = 0;
    index_t planes = 1, rows = 0, box_other = 1, span_h = 1;
    run_split<NVMAX> split{0};
    bool rows_first = false;
    index_t hc = 1, nchunks = 1, groups = 1, per_group = 1;
    bool one_tap = false;
    // Per task: buffer elements (T), tap offsets and outer rows (index_t);
    // flat_tail: zeros after the last row, which the flat path's vectors read past.
    index_t buffer_elements = 0, offset_entries = 1, outer_entries = 1, flat_tail = 0;

    index_t items(index_t batch) const { return batch * planes * nchunks * groups; }
    static constexpr std::size_t round_up(std::size_t bytes) { return (bytes + 63) / 64 * 64; }
    // Bytes of one task's working memory, as three 64-byte aligned arrays.
    std::size_t scratch_bytes() const {
        return round_up(std::size_t(buffer_elements) * sizeof(T)) + round_up(std::size_t(offset_entries) * sizeof(index_t)) +
               round_up(std::size_t(outer_entries) * sizeof(index_t));
    }

    task_layout(const tap_plan<R>& p, index_t batch, index_t threads) {
        static_assert(R >= 2);
        for (auto c : p.count)
            if (c <= 0) return;
        runs = batch > 0;
        ntaps = p.tap_count();
        nic = ntaps > 0 ? p.in_channels : 0;
        nblocks = (p.out_channels + OCB - 1) / OCB;
        for (std::size_t d = 0; d < R; ++d) {
            if (p.taps[d].empty()) continue;
            amin[d] = *std::min_element(p.taps[d].begin(), p.taps[d].end());
            amax[d] = *std::max_element(p.taps[d].begin(), p.taps[d].end());
        }
        // Innermost dim: phase split.
        s = p.in_step[I];
        OW = p.count[I];
        for (auto a : p.taps[I]) idx_max = std::max(idx_max, (a - amin[I]) / s);
        // Short rows waste vector lanes; with unit steps a chunk of rows can run
        // as one flat sequence over rows of the padded width (the positions past
        // the row end are computed and dropped).
        const index_t row_vecs = (OW + L - 1) / L;
        const double row_eff = double(OW) / double(row_vecs * L) * std::min(1.0, double(row_vecs) / 2.0);
        const double flat_eff = double(OW) / double(OW + idx_max);
        flat = s == 1 && p.in_step[H] == 1 && flat_eff > row_eff;
        M = flat ? OW + idx_max : row_vecs * L + idx_max;
        rowlen = s * M;
        // Outer planes (dims < H), row chunks along H, output-channel groups.
        // A chunk has few enough rows that its copy of the input stays in L2 and,
        // where a block of weights is large (several taps), enough outputs that
        // every weight read feeds many FMAs; then there are enough tasks for all
        // threads, split into groups of output channels only where the rows run
        // out (every group copies the same input rows).
        for (std::size_t d = 0; d < H; ++d) planes *= p.count[d];
        rows = p.count[H];
        const index_t want = threads > 1 ? 4 * threads : 1;
        const index_t base = std::max<index_t>(batch, 1) * planes;
        for (std::size_t d = 0; d < H; ++d) box_other *= amax[d] - amin[d] + 1;  // input rows per H row from the dims before H
        span_h = amax[H] - amin[H] + 1;  // input rows per output row along H
        // Row by row (each chunk of input rows reused across the output-channel
        // blocks) where a chunk of input is larger than a block of weights;
        // else block by block (each block's weights reused across all rows). Row
        // by row the buffer is a ring of the rows the current output row reads,
        // each input row copied once per task.
        split = run_split<NVMAX>(flat ? 0 : row_vecs);
        const double chunk_bytes = double(nic) * double(box_other * span_h) * double(split.nv_hi * L + idx_max) * double(sizeof(T));
        const double block_bytes = double(nic) * double(ntaps) * double(OCB) * double(sizeof(T));
        rows_first = !flat && chunk_bytes >= block_bytes;
        const auto box_rows = [&](index_t h) { return (h - 1) * p.in_step[H] + span_h; };
        const auto input_bytes = [&](index_t h) {  // the buffer block by block
            return double(nic) * double(box_other * box_rows(h)) * double(rowlen) * double(sizeof(T));
        };
        constexpr double input_budget = 384.0 * 1024.0;   // bytes, well inside a core's L2
        const index_t min_outputs = ntaps > 1 ? 128 : 1;  // output positions per chunk
        const index_t tasks_per_base = std::max<index_t>(1, (want + base - 1) / base);
        hc = (rows + tasks_per_base - 1) / tasks_per_base;
        while (!rows_first && hc > 1 && input_bytes(hc) > input_budget) --hc;
        hc = std::min(rows, std::max(hc, (min_outputs + OW - 1) / OW));
        nchunks = (rows + hc - 1) / hc;
        hc = (rows + nchunks - 1) / nchunks;
        if (threads > 1 && base * nchunks < threads)
            groups = std::min(nblocks, (2 * threads + base * nchunks - 1) / (base * nchunks));
        per_group = (nblocks + groups - 1) / groups;
        groups = (nblocks + per_group - 1) / per_group;
        one_tap = ntaps == 1 && nic > 1;
        // The buffer: [ic][outer row][ring row][phase][M], then the flat tail.
        flat_tail = flat ? NVMAX * L + M : 0;
        if (nic > 0) buffer_elements = nic * box_other * (rows_first ? span_h : box_rows(hc)) * rowlen + flat_tail;
        offset_entries = std::max<index_t>(one_tap ? nic : ntaps, 1);
        outer_entries = box_other;
    }
};

// One task of a tap plan cut as `lay` says: item `item` of lay.items(batch).
// `memory` holds lay.scratch_bytes() bytes (64-byte aligned), or is null for
// the calling thread's own growing buffers.
template <class T, std::size_t R>
void run_tap_task(const tap_plan<R>& p, const task_layout<T, R>& lay, index_t item, tensor_ref<const T, R> in,
                  const weight_source<T>& wsrc, tensor_ref<T, R> out, const epilogue<T, R>& ep, std::byte* memory) {
    using S = simd<T>;
    using layout = task_layout<T, R>;
    constexpr int L = layout::L;
    constexpr int OCB = layout::OCB;
    constexpr int NVMAX = layout::NVMAX;
    constexpr std::size_t I = layout::I;
    constexpr std::size_t H = layout::H;

    const index_t ntaps = lay.ntaps, nic = lay.nic, OC = p.out_channels, nblocks = lay.nblocks;
    const index_t in_plane = in.plane(), out_plane = out.plane();
    const auto& amin = lay.amin;
    const index_t s = lay.s, OW = lay.OW, M = lay.M, rowlen = lay.rowlen;
    const bool flat = lay.flat, rows_first = lay.rows_first;
    const index_t planes = lay.planes, rows = lay.rows, box_other = lay.box_other, span_h = lay.span_h;
    const auto& split = lay.split;
    const index_t hc = lay.hc, nchunks = lay.nchunks, groups = lay.groups, per_group = lay.per_group;
    const auto& amax = lay.amax;
    assert(p.fold_rows == 1 || (p.fold > 1 && OCB % (p.fold * p.fold_rows) == 0 && p.out_base[H] == 0));
    index_t r = item;
    const index_t g = r % groups; r /= groups;
    const index_t ch = r % nchunks; r /= nchunks;
    const index_t pl = r % planes; r /= planes;
    const index_t n = r;
    const index_t h0 = ch * hc, h1 = std::min(rows, h0 + hc);

    // Output indices of the outer planes.
    std::array<index_t, R> o{};
    {
        index_t q = pl;
        for (std::size_t d = H; d-- > 0;) { o[d] = q % p.count[d]; q /= p.count[d]; }
    }
    // The input rows of the task, zero-padded, in a buffer
    // [ic][outer row][H row][phase][M]: the outer rows are the input rows
    // of the dims before H that the taps reach, the H rows a ring of
    // `ring` rows of the box [lo[H], lo[H] + ext_h) (box row y in slot
    // y % ring). Rows outside the input are zeros.
    std::array<index_t, R> lo{}, ext{};
    const index_t outer_rows = box_other;
    for (std::size_t d = 0; d < H; ++d) {
        lo[d] = o[d] * p.in_step[d] + amin[d];
        ext[d] = amax[d] - amin[d] + 1;
    }
    lo[H] = h0 * p.in_step[H] + amin[H];
    const index_t ext_h = (h1 - 1 - h0) * p.in_step[H] + span_h;
    const index_t ring = rows_first ? span_h : ext_h;
    const index_t ic_stride = outer_rows * ring * rowlen;
    const T* const src_n = in.data + n * in.batch_stride;
    const index_t W = in.extent[I];

    // The task's working memory: the input rows, the tap offsets, and the
    // input row (of a plane) of each outer row at H = 0, -1 outside.
    std::byte* const at = memory ? memory : aligned_scratch<task_memory_use>(lay.scratch_bytes());
    const std::size_t off_at = layout::round_up(std::size_t(lay.buffer_elements) * sizeof(T));
    const std::size_t outer_at = off_at + layout::round_up(std::size_t(lay.offset_entries) * sizeof(index_t));
    T* const buf = reinterpret_cast<T*>(at);
    index_t* const off = reinterpret_cast<index_t*>(at + off_at);
    index_t* const outer_src = reinterpret_cast<index_t*>(at + outer_at);
    if (nic > 0) {
        std::fill_n(buf + nic * ic_stride, lay.flat_tail, T(0));
        std::fill_n(outer_src, outer_rows, index_t(-1));
        for (index_t ob = 0; ob < outer_rows; ++ob) {
            index_t q = ob, row = 0;
            std::array<index_t, R> x{};
            bool inside = true;
            for (std::size_t d = H; d-- > 0;) { x[d] = lo[d] + q % ext[d]; q /= ext[d]; }
            for (std::size_t d = 0; d < H; ++d) {
                inside = inside && x[d] >= 0 && x[d] < in.extent[d];
                row = row * in.extent[d] + x[d];
            }
            if (inside) outer_src[ob] = row * in.extent[H];
        }
    }
    // f(source or null, destination) for the box rows y in [y0, y1) of channel ic.
    auto for_rows = [&](index_t ic, index_t y0, index_t y1, auto&& f) {
        for (index_t y = y0; y < y1; ++y) {
            const index_t xh = lo[H] + y;
            for (index_t ob = 0; ob < outer_rows; ++ob) {
                const index_t src = outer_src[ob];
                f(src >= 0 && xh >= 0 && xh < in.extent[H] ? src_n + ic * in_plane + (src + xh) * W : nullptr,
                  buf + ic * ic_stride + (ob * ring + y % ring) * rowlen);
            }
        }
    };
    // Fills box rows [y0, y1) of every channel. One channel's rows are a
    // short stream the hardware prefetcher barely learns: the rows of
    // channels a few ahead are prefetched.
    constexpr index_t line = index_t(64 / sizeof(T));
    auto prefetch = [&](const T* src, T*) {
        if (src)
            for (index_t e = 0; e < W; e += line) __builtin_prefetch(src + e, 0, 2);
    };
    auto copy_rows = [&](index_t y0, index_t y1) {
        constexpr index_t ahead = 2;
        for (index_t ic = 0; ic < std::min(ahead, nic); ++ic) for_rows(ic, y0, y1, prefetch);
        for (index_t ic = 0; ic < nic; ++ic) {
            if (ic + ahead < nic) for_rows(ic + ahead, y0, y1, prefetch);
            for_rows(ic, y0, y1, [&](const T* src, T* dst) {
                if (!src) {
                    std::fill(dst, dst + rowlen, T(0));
                    return;
                }
                for (index_t ph = 0; ph < s; ++ph) {
                    T* dp = dst + ph * M;
                    // x = m * s + amin + ph in [0, W) for m in [m0, m1)
                    const index_t x0 = amin[I] + ph;
                    const index_t m0 = std::min(M, x0 >= 0 ? 0 : (-x0 + s - 1) / s);
                    const index_t m1 = std::max(m0, x0 < W ? std::min(M, (W - 1 - x0) / s + 1) : 0);
                    std::fill(dp, dp + m0, T(0));
                    if (s == 1) {
                        std::copy(src + x0 + m0, src + x0 + m1, dp + m0);
                    } else {
                        for (index_t m = m0; m < m1; ++m) dp[m] = src[x0 + m * s];
                    }
                    std::fill(dp + m1, dp + M, T(0));
                }
            });
        }
    };

    // Buffer offsets of the taps (row-major over dims) for output row h.
    // A single tap (pointwise, transposed convolutions): the micro-kernel
    // runs one loop over the input channels, their offsets as its taps
    // (with one tap the weight step ic * taps + t is the channel either way).
    const bool one_tap = lay.one_tap;
    auto tap_offsets = [&](index_t h) {
        for (index_t t = 0; t < ntaps; ++t) {
            index_t q = t, ob = 0, y = 0, inner = 0, obstride = 1;
            for (std::size_t d = R; d-- > 0;) {
                const index_t nt = index_t(p.taps[d].size());
                const index_t a = p.taps[d][std::size_t(q % nt)];
                q /= nt;
                if (d == I) {
                    inner = ((a - amin[I]) % s) * M + (a - amin[I]) / s;
                } else if (d == H) {
                    y = h * p.in_step[H] + a - lo[H];
                } else {
                    ob += (o[d] * p.in_step[d] + a - lo[d]) * obstride;
                    obstride *= ext[d];
                }
            }
            off[t] = (ob * ring + y % ring) * rowlen + inner;
        }
        if (one_tap)
            for (index_t ic = nic; ic-- > 0;) off[ic] = off[0] + ic * ic_stride;
    };
    const index_t k_channels = one_tap ? 1 : nic, k_taps = one_tap ? nic : nic > 0 ? ntaps : 0;

    alignas(64) T tmp[NVMAX * L];
    auto row_position = [&](index_t h) {
        index_t rp = 0;
        for (std::size_t d = 0; d < I; ++d) rp = rp * out.extent[d] + (d == H ? h : o[d]) * p.out_step[d] + p.out_base[d];
        return rp * out.extent[I];
    };
    typename S::V acc[NVMAX * OCB][NVMAX];  // [channel of the call][vector]
    const index_t b0 = g * per_group, b1 = std::min(nblocks, b0 + per_group);
    // Stores `count` outputs of channel c from plane position pos, given
    // as vectors vec(j) of L outputs each, through the epilogue.
    auto store_vectors = [&](index_t c, index_t pos, index_t count, int nvec, auto&& vec) {
        const auto ce = make_channel_epilogue(ep, n, c, out_plane);
        T* dst = out.data + n * out.batch_stride + c * out_plane + pos;
        for (int j = 0; j < nvec; ++j) {
            const index_t i = index_t(j) * L;
            if (i + L <= count) {
                S::store(dst + i, ce.template vector<S>(vec(j), ce.residual ? ce.residual + pos + i : nullptr));
            } else if (i < count) {
                S::store(tmp, vec(j));
                ce.apply(tmp, dst + i, count - i, pos + i);
            }
        }
    };
    // Of virtual channel vc: its real channel, and the shift of its output
    // row h in plane positions (-1 when the row falls outside the output).
    const index_t per_real = p.fold * p.fold_rows;
    const auto row_shift = [&](index_t vc, index_t h) -> index_t {
        if (p.fold_rows == 1) return 0;
        const index_t y = (vc / p.fold) % p.fold_rows;
        return h * p.out_step[H] + p.out_base[H] + y < out.extent[H] ? y * out.extent[I] : -1;
    };
    index_t row = 0;  // the output row of the stores of `accumulate`
    // acc = the micro-kernel over nb blocks from blk and nv vectors from ib;
    // or, for outputs that are contiguous in a row (`to` not into_acc),
    // straight from the registers through the epilogue to the `count`
    // outputs from plane position pos of every channel (with stride-2
    // residues folded: of every pair of virtual channels, interleaved).
    // Instantiated for every nv up to NVMAX with the block counts run_split
    // picks (NVMAX / nv for its longer chunks and NVMAX / (nv + 1) for the
    // shorter ones) and with one block for the group's last blocks.
    enum class sink { into_acc, contiguous, interleaved_pairs };
    auto accumulate = [&](const T* ib, index_t blk, int nb, int nv, sink to = sink::into_acc, index_t pos = 0,
                          index_t count = 0) {
        const bool from_tail = blk == wsrc.tail_block;
        const T* wb = from_tail ? wsrc.tail : wsrc.w + blk * wsrc.block_stride;
        const index_t wstride = from_tail ? 0 : wsrc.block_stride, cs = from_tail ? 1 : wsrc.channel_stride,
                      ks = from_tail ? OCB : wsrc.k_stride;
        assert(!from_tail || nb == 1);
        auto call = [&]<int NB, int NV>() {
            typename S::V a[NB * OCB][NV];
            micro_kernel<T, OCB, NB, NV>(ib, k_channels, ic_stride, off, k_taps, wb, wstride, cs, ks, a);
            if (to == sink::contiguous) {
                for (int oo = 0; oo < NB * OCB && blk * OCB + oo < OC; ++oo)
                    store_vectors(blk * OCB + oo, pos, count, NV, [&](int j) { return a[oo][j]; });
            } else if (to == sink::interleaved_pairs) {
                for (int oo = 0; oo + 1 < NB * OCB && blk * OCB + oo < OC; oo += 2) {
                    const index_t vc = blk * OCB + oo, shift = row_shift(vc, row);
                    if (shift < 0) continue;
                    typename S::V first_half[NV], second_half[NV];
                    for (int v = 0; v < NV; ++v) interleave<T>(a[oo][v], a[oo + 1][v], first_half[v], second_half[v]);
                    store_vectors(vc / per_real, pos + shift, count, 2 * NV,
                                  [&](int j) { return j % 2 ? second_half[j / 2] : first_half[j / 2]; });
                }
            } else {
                for (int oo = 0; oo < NB * OCB; ++oo)
                    for (int v = 0; v < NV; ++v) acc[oo][v] = a[oo][v];
            }
        };
        auto with_nv = [&]<int NV>() {
            constexpr int longer = NVMAX / NV, shorter = std::max(1, NVMAX / (NV + 1));
            if (nb == longer) call.template operator()<longer, NV>();
            else if (nb == shorter) call.template operator()<shorter, NV>();
            else { assert(nb == 1); call.template operator()<1, NV>(); }
        };
        [&]<int... K>(std::integer_sequence<int, K...>) {
            ((nv == K + 1 ? (with_nv.template operator()<K + 1>(), 0) : 0), ...);
        }(std::make_integer_sequence<int, NVMAX>{});
    };
    // Blocks per call from blk: `most`, or one at the group's end and for a
    // packed tail block.
    const auto blocks_at = [&](index_t blk, int most) {
        const bool tail_inside = wsrc.tail_block >= blk && wsrc.tail_block < blk + most;
        return b1 - blk >= most && !tail_inside ? most : 1;
    };
    // f(ce, dst, shift, vc) for each virtual output channel vc of a call
    // left in acc, its nv vectors in tmp: ce its epilogue, dst its output
    // plane, shift its innermost output offset.
    const auto each_channel_in_tmp = [&](index_t blk, int nb, int nv, auto&& f) {
        for (int oo = 0; oo < nb * OCB; ++oo) {
            const index_t vc = blk * OCB + oo;
            if (vc >= OC) break;
            const index_t c = vc / per_real;
            for (int v = 0; v < nv; ++v) S::store(tmp + v * L, acc[oo][v]);
            f(make_channel_epilogue(ep, n, c, out_plane), out.data + n * out.batch_stride + c * out_plane,
              p.out_base[I] + vc % p.fold, vc);
        }
    };
    if (flat) {
        if (nic > 0) copy_rows(0, ext_h);
        tap_offsets(h0);
        const index_t run = (h1 - h0) * M;
        const run_split<NVMAX> run_parts((run + L - 1) / L);
        for (index_t blk = b0; blk < b1;) {
            const int nb = blocks_at(blk, run_parts.blocks);
            for (index_t k = 0; k < run_parts.chunks; ++k) {
                const int nv = run_parts.nv(k);
                const index_t j0 = run_parts.first(k) * L;
                const index_t rem = std::min<index_t>(nv * L, run - j0);
                accumulate(nic > 0 ? buf + j0 : nullptr, blk, nb, nv);
                if (p.fold == 2 && p.out_step[I] == 2) {
                    // Pairs of innermost residues: interleaved, then stored contiguously.
                    alignas(64) T second[NVMAX * L], pairs[2 * NVMAX * L];
                    for (int oo = 0; oo + 1 < nb * OCB; oo += 2) {
                        const index_t vc = blk * OCB + oo;
                        if (vc >= OC) break;
                        for (int v = 0; v < nv; ++v) {
                            S::store(tmp + v * L, acc[oo][v]);
                            S::store(second + v * L, acc[oo + 1][v]);
                        }
                        const index_t c = vc / per_real;
                        const auto ce = make_channel_epilogue(ep, n, c, out_plane);
                        T* dst = out.data + n * out.batch_stride + c * out_plane;
                        for (index_t i = 0; i < rem;) {
                            const index_t j = j0 + i, r = j / M, ow = j - r * M;
                            const index_t len = std::min(rem - i, M - ow);
                            const index_t valid = std::min(len, OW - ow), shift = row_shift(vc, h0 + r);
                            const index_t first = 2 * ow + p.out_base[I];
                            const index_t cnt = std::min(2 * valid, out.extent[I] - first);
                            if (shift >= 0 && cnt > 0) {
                                for (index_t e = 0; e < valid; ++e) {
                                    pairs[2 * e] = tmp[i + e];
                                    pairs[2 * e + 1] = second[i + e];
                                }
                                const index_t pos = row_position(h0 + r) + shift + first;
                                ce.apply(pairs, dst + pos, cnt, pos);
                            }
                            i += len;
                        }
                    }
                    continue;
                }
                each_channel_in_tmp(blk, nb, nv, [&](const channel_epilogue<T>& ce, T* dst, index_t shift, index_t vc) {
                    index_t i = 0;
                    while (i < rem) {
                        // One output row segment at a time.
                        const index_t j = j0 + i, r = j / M, ow = j - r * M;
                        const index_t len = std::min(rem - i, M - ow);
                        const index_t rows_shift = row_shift(vc, h0 + r);
                        const index_t valid = rows_shift < 0 ? 0 : std::max<index_t>(0, std::min(len, OW - ow));
                        const index_t rp = row_position(h0 + r) + std::max<index_t>(rows_shift, 0);
                        if (p.out_step[I] == 1) {
                            const index_t pos = rp + ow + shift;
                            const index_t cnt = std::min(valid, out.extent[I] - ow - shift);
                            if (cnt > 0) ce.apply(tmp + i, dst + pos, cnt, pos);
                        } else {
                            for (index_t e = 0; e < valid; ++e) {
                                const index_t oi = (ow + e) * p.out_step[I] + shift;
                                if (oi >= out.extent[I]) break;
                                dst[rp + oi] = ce(tmp[i + e], rp + oi);
                            }
                        }
                        i += len;
                    }
                });
            }
            blk += nb;
        }
        return;
    }
    // Transposed convolutions fold the stride's residues of the innermost
    // dim into neighbouring virtual channels of one block.
    constexpr index_t max_fold = 4;
    const bool interleaved = p.fold > 1 && p.fold <= max_fold && p.out_step[I] == p.fold && OCB % p.fold == 0;
    alignas(64) T inter[NVMAX * L * max_fold];
    // One micro-kernel call and its stores: blocks [blk, blk + nb), row h, chunk k.
    auto run_chunk = [&](index_t blk, int nb, index_t h, index_t k) {
        // Row by row the taps' offsets hold the row; block by block they are h0's.
        const T* rowbase = nic <= 0 ? nullptr : buf + (rows_first ? 0 : (h - h0) * p.in_step[H] * rowlen);
        const index_t rowpos = row_position(h);
        const int nv = split.nv(k);
        const index_t ow0 = split.first(k) * L;
        const index_t rem = std::min<index_t>(nv * L, OW - ow0);
        if (p.out_step[I] == 1 && p.fold == 1) {
            const index_t first = ow0 + p.out_base[I];
            accumulate(rowbase ? rowbase + ow0 : nullptr, blk, nb, nv, sink::contiguous, rowpos + first,
                       std::min(rem, out.extent[I] - first));
            return;
        }
        if (interleaved && p.fold == 2) {
            const index_t first = ow0 * 2 + p.out_base[I];
            row = h;
            accumulate(rowbase ? rowbase + ow0 : nullptr, blk, nb, nv, sink::interleaved_pairs, rowpos + first,
                       std::min(rem * 2, out.extent[I] - first));
            return;
        }
        accumulate(rowbase ? rowbase + ow0 : nullptr, blk, nb, nv);
        if (interleaved) {
            // The fold residues of one channel are neighbours in the
            // output row: interleave them, then store contiguously.
            const index_t f = p.fold;
            for (int oo = 0; oo < nb * OCB; oo += int(f)) {
                const index_t vc = blk * OCB + oo;
                if (vc >= OC) break;
                const index_t shift = row_shift(vc, h);
                if (shift < 0) continue;
                const index_t c = vc / per_real, first = ow0 * f + p.out_base[I];
                for (index_t r = 0; r < f; ++r) {
                    for (int v = 0; v < nv; ++v) S::store(tmp + v * L, acc[oo + r][v]);
                    for (index_t i = 0; i < rem; ++i) inter[i * f + r] = tmp[i];
                }
                const index_t cnt = std::min(rem * f, out.extent[I] - first);
                const auto ce = make_channel_epilogue(ep, n, c, out_plane);
                T* dst = out.data + n * out.batch_stride + c * out_plane;
                ce.apply(inter, dst + rowpos + shift + first, cnt, rowpos + shift + first);
            }
            return;
        }
        each_channel_in_tmp(blk, nb, nv, [&](const channel_epilogue<T>& ce, T* dst, index_t shift, index_t vc) {
            const index_t rows_shift = row_shift(vc, h);
            if (rows_shift < 0) return;
            const index_t rowpos = row_position(h) + rows_shift;
            if (!ce.residual) {
                ce.apply(tmp, tmp, rem, 0);
                const index_t step = p.out_step[I];
                const index_t cnt = std::min(rem, (out.extent[I] - 1 - shift - ow0 * step) / step + 1);
                T* d0 = dst + rowpos + ow0 * step + shift;
                for (index_t i = 0; i < cnt; ++i) d0[i * step] = tmp[i];
            } else {
                for (index_t i = 0; i < rem; ++i) {
                    const index_t oi = (ow0 + i) * p.out_step[I] + shift;
                    if (oi >= out.extent[I]) break;
                    dst[rowpos + oi] = ce(tmp[i], rowpos + oi);
                }
            }
        });
    };
    const auto nb_at = [&](index_t blk) { return blocks_at(blk, split.blocks); };
    if (rows_first) {
        index_t copied = 0;  // box rows copied so far
        for (index_t h = h0; h < h1; ++h) {
            const index_t first = (h - h0) * p.in_step[H], needed = first + span_h;
            if (nic > 0) copy_rows(std::max(copied, first), needed);
            copied = needed;
            tap_offsets(h);
            for (index_t k = 0; k < split.chunks; ++k)
                for (index_t blk = b0; blk < b1; blk += nb_at(blk)) run_chunk(blk, nb_at(blk), h, k);
        }
    } else {
        if (nic > 0) copy_rows(0, ext_h);
        tap_offsets(h0);
        for (index_t blk = b0; blk < b1; blk += nb_at(blk))
            for (index_t h = h0; h < h1; ++h)
                for (index_t k = 0; k < split.chunks; ++k) run_chunk(blk, nb_at(blk), h, k);
    }
}

// Runs a tap plan; R >= 2. The weights' taps in the plan's tap order
// (row-major over dims). The tasks run in parallel, each with its thread's
// slot of `ws` (when given) as working memory.
template <class T, std::size_t R>
void run_tap_plan(const tap_plan<R>& p, index_t batch, tensor_ref<const T, R> in, const weight_source<T>& wsrc,
                  tensor_ref<T, R> out, const epilogue<T, R>& ep, const workspace& ws = {}) {
    const task_layout<T, R> lay(p, batch, concurrency());
    if (!lay.runs) return;
    assert(!ws.base || ws.slot_bytes >= lay.scratch_bytes());
    parallel_for_each(lay.items(batch), [&](index_t item) {
        const int slot = thread_slot();
        std::byte* memory = ws.base && slot >= 0 && slot < ws.slots ? ws.base + std::size_t(slot) * ws.slot_bytes : nullptr;
        run_tap_task<T, R>(p, lay, item, in, wsrc, out, ep, memory);
    });
}

// The same on the calling thread alone, cut for one thread; `memory` as in
// run_tap_task, of serial_scratch_bytes(p, batch) bytes.
template <class T, std::size_t R>
void run_tap_plan_serial(const tap_plan<R>& p, index_t batch, tensor_ref<const T, R> in, const weight_source<T>& wsrc,
                         tensor_ref<T, R> out, const epilogue<T, R>& ep, std::byte* memory) {
    const task_layout<T, R> lay(p, batch, 1);
    if (!lay.runs) return;
    for (index_t item = 0, n = lay.items(batch); item < n; ++item) run_tap_task<T, R>(p, lay, item, in, wsrc, out, ep, memory);
}
template <class T, std::size_t R>
std::size_t serial_scratch_bytes(const tap_plan<R>& p, index_t batch) {
    return task_layout<T, R>(p, batch, 1).scratch_bytes();
}

// Views of rank R as rank R + 1 with a leading extent-1 dimension.
template <class T, std::size_t R>
tensor_ref<T, R + 1> lift(tensor_ref<T, R> t) {
    tensor_ref<T, R + 1> u;
    u.data = t.data;
    u.channels = t.channels;
    u.extent[0] = 1;
    for (std::size_t d = 0; d < R; ++d) u.extent[d + 1] = t.extent[d];
    u.batch_stride = t.batch_stride;
    return u;
}
// The same epilogue for a view of rank To (its fields do not depend on the rank).
template <std::size_t To, class T, std::size_t R>
epilogue<T, To> with_rank(const epilogue<T, R>& e) {
    epilogue<T, To> u;
    u.bias = e.bias;
    u.act = e.act;
    u.slope = e.slope;
    u.prelu_slope = e.prelu_slope;
    u.residual = e.residual;
    u.residual_batch_stride = e.residual_batch_stride;
    u.residual_channels = e.residual_channels;
    u.residual_offset = e.residual_offset;
    return u;
}
template <std::size_t R>
tap_plan<R + 1> lift(const tap_plan<R>& p) {
    tap_plan<R + 1> u;
    u.in_channels = p.in_channels;
    u.out_channels = p.out_channels;
    u.count[0] = 1;
    u.in_step[0] = 1;
    u.out_step[0] = 1;
    u.out_base[0] = 0;
    u.taps[0] = {0};
    for (std::size_t d = 0; d < R; ++d) {
        u.count[d + 1] = p.count[d];
        u.in_step[d + 1] = p.in_step[d];
        u.out_step[d + 1] = p.out_step[d];
        u.out_base[d + 1] = p.out_base[d];
        u.taps[d + 1] = p.taps[d];
    }
    u.fold = p.fold;
    u.fold_rows = p.fold_rows;
    return u;
}

template <class T, std::size_t R>
void run_any_rank(const tap_plan<R>& p, index_t batch, tensor_ref<const T, R> in, const weight_source<T>& w,
                  tensor_ref<T, R> out, const epilogue<T, R>& ep, const workspace& ws = {}) {
    if constexpr (R >= 2)
        run_tap_plan<T, R>(p, batch, in, w, out, ep, ws);
    else
        run_tap_plan<T, R + 1>(lift(p), batch, lift(in), w, lift(out), with_rank<R + 1>(ep), ws);
}
// The same with weights from pack_weights.
template <class T, std::size_t R>
void run_any_rank(const tap_plan<R>& p, index_t batch, tensor_ref<const T, R> in, const T* wpk,
                  tensor_ref<T, R> out, const epilogue<T, R>& ep, const workspace& ws = {}) {
    run_any_rank<T, R>(p, batch, in, weight_source<T>::packed(wpk, p.in_channels, p.tap_count(), blocking<T>::ocb), out, ep, ws);
}
// What one task of run_any_rank(p, batch, ...) needs as working memory.
template <class T, std::size_t R>
std::size_t scratch_bytes_any_rank(const tap_plan<R>& p, index_t batch) {
    if constexpr (R >= 2)
        return task_layout<T, R>(p, batch, concurrency()).scratch_bytes();
    else
        return task_layout<T, R + 1>(lift(p), batch, concurrency()).scratch_bytes();
}

template <std::size_t R>
bool is_pointwise(const conv_geometry<R>& g) {
    for (std::size_t d = 0; d < R; ++d)
        if (g.kernel[d] != 1 || g.stride[d] != 1 || g.pad[d] != 0) return false;
    return true;
}

// A pointwise (1x1, stride 1, no padding) convolution seen as rank 2: the
// plane split as [rows][cols] with cols a product of trailing extents.
template <std::size_t R>
std::array<index_t, 2> pointwise_extent(const std::array<index_t, R>& extent) {
    index_t plane = 1, cols = 1;
    for (auto e : extent) plane *= e;
    for (std::size_t d = R; d-- > 0;) {
        cols *= extent[d];
        if (cols >= 64) break;
    }
    return {cols > 0 ? plane / cols : 0, cols};
}
inline tap_plan<2> pointwise_plan(index_t ic, index_t oc, const std::array<index_t, 2>& extent) {
    tap_plan<2> p;
    p.in_channels = ic;
    p.out_channels = oc;
    p.count = extent;
    p.in_step = {1, 1};
    p.out_step = {1, 1};
    p.out_base = {0, 0};
    p.taps = {tap_list{0}, tap_list{0}};
    return p;
}

// The tap plan of a convolution (not pointwise) with output extents `out_extent`.
template <std::size_t R>
tap_plan<R> conv_plan(const conv_geometry<R>& g, const std::array<index_t, R>& out_extent) {
    tap_plan<R> p;
    p.in_channels = g.in_channels;
    p.out_channels = g.out_channels;
    for (std::size_t d = 0; d < R; ++d) {
        p.count[d] = out_extent[d];
        p.in_step[d] = g.stride[d];
        p.out_step[d] = 1;
        p.out_base[d] = 0;
        for (index_t k = 0; k < g.kernel[d]; ++k) p.taps[d].push_back(k * g.dilation[d] - g.pad[d]);
    }
    return p;
}

template <class T, std::size_t R>
void conv_pointwise(index_t ic, index_t oc, index_t batch, tensor_ref<const T, R> in, const weight_source<T>& w,
                    tensor_ref<T, R> out, const epilogue<T, R>& ep, const workspace& ws) {
    const auto extent = pointwise_extent<R>(out.extent);
    tensor_ref<const T, 2> i2{in.data, in.channels, extent, in.batch_stride};
    tensor_ref<T, 2> o2{out.data, out.channels, extent, out.batch_stride};
    run_tap_plan<T, 2>(pointwise_plan(ic, oc, extent), batch, i2, w, o2, with_rank<2>(ep), ws);
}

}  // namespace detail

// The weights [out][in][k0][k1]... rearranged for the micro-kernel. A caller
// that runs one convolution many times (a network) packs once per weight
// change and passes the result to conv_forward.
template <class T, std::size_t R>
std::vector<T> pack_conv_weights(const conv_geometry<R>& g, const T* weight) {
    index_t ntaps = 1;
    for (std::size_t d = 0; d < R; ++d) ntaps *= g.kernel[d];
    const index_t IC = g.in_channels;
    return detail::pack_weights<T>(g.out_channels, IC, ntaps, [&](index_t oc, index_t ic, index_t t) {
        return weight[(oc * IC + ic) * ntaps + t];
    });
}

// The last, partial block of output channels (out_channels % 4 of them) of
// the weights [out][in][k0][k1]... packed for the micro-kernel; empty when the
// blocks are whole. Reading the other weights in place, the kernel takes this
// block from here so that it never reads past the weight array.
template <class T, std::size_t R>
std::vector<T> pack_conv_tail(const conv_geometry<R>& g, const T* weight) {
    constexpr index_t B = detail::blocking<T>::ocb;
    index_t ntaps = 1;
    for (std::size_t d = 0; d < R; ++d) ntaps *= g.kernel[d];
    const index_t IC = g.in_channels, OC = g.out_channels, last = OC / B;
    if (OC % B == 0) return {};
    return detail::pack_weights<T>(OC - last * B, IC, ntaps, [&](index_t oc, index_t ic, index_t t) {
        return weight[((last * B + oc) * IC + ic) * ntaps + t];
    });
}

namespace detail {
// The weights [out][in][k0][k1]... read in place, the partial last block of
// output channels from `packed_tail` (pack_conv_tail(g, weight)); packed into
// `tail` when not given.
template <class T, std::size_t R>
weight_source<T> in_place_weights(const conv_geometry<R>& g, const T* weight, const T* packed_tail, std::vector<T>& tail) {
    constexpr index_t B = blocking<T>::ocb;
    index_t ntaps = 1;
    for (std::size_t d = 0; d < R; ++d) ntaps *= g.kernel[d];
    const index_t IC = g.in_channels, OC = g.out_channels;
    weight_source<T> w{weight, B * IC * ntaps, IC * ntaps, 1};
    if (OC % B != 0) {
        if (!packed_tail) {
            tail = pack_conv_tail<T, R>(g, weight);
            packed_tail = tail.data();
        }
        w.tail = packed_tail;
        w.tail_block = OC / B;
    }
    return w;
}
}  // namespace detail

// Bytes of working memory per thread that conv_forward(g, batch, ...) with
// output extents `out_extent` uses, for the calling task arena.
template <class T, std::size_t R>
std::size_t conv_scratch_bytes(const conv_geometry<R>& g, index_t batch, const std::array<index_t, R>& out_extent) {
    if (detail::is_pointwise(g))
        return detail::task_layout<T, 2>(detail::pointwise_plan(g.in_channels, g.out_channels, detail::pointwise_extent<R>(out_extent)),
                                         batch, concurrency())
            .scratch_bytes();
    return detail::scratch_bytes_any_rank<T, R>(detail::conv_plan<R>(g, out_extent), batch);
}

// out = epilogue(conv(in, weight)); weight is [out][in][k0][k1]...; zero padding
// g.pad on both sides of every dim. out.extent must be
// floor((in + 2 pad - dilation (k - 1) - 1) / stride) + 1. The weights are
// read in place, with `packed_tail` (pack_conv_tail(g, weight), packed here
// when not given) for a partial last block of output channels; `packed`, when
// given, is pack_conv_weights(g, weight) and read instead (one contiguous
// stream per block of output channels). `ws`, when given, holds
// conv_scratch_bytes per thread of the calling arena. A caller that runs one
// convolution many times passes `packed_tail` and `ws`: the call then
// allocates nothing.
template <class T, std::size_t R>
void conv_forward(const conv_geometry<R>& g, index_t batch, tensor_ref<const T, R> in, const T* weight,
                  tensor_ref<T, R> out, const epilogue<T, R>& ep, const T* packed = nullptr,
                  const T* packed_tail = nullptr, const workspace& ws = {}) {
    assert(in.channels >= g.in_channels && out.channels >= g.out_channels);
    const bool pointwise = detail::is_pointwise(g);
    index_t ntaps = 1;
    for (std::size_t d = 0; d < R; ++d) {
        assert(out.extent[d] == (in.extent[d] + 2 * g.pad[d] - g.dilation[d] * (g.kernel[d] - 1) - 1) / g.stride[d] + 1);
        ntaps *= g.kernel[d];
    }
    if (batch <= 0 || g.out_channels <= 0) return;
    const index_t IC = g.in_channels, OC = g.out_channels;
    constexpr index_t B = detail::blocking<T>::ocb;
    std::vector<T> tail;
    const detail::weight_source<T> w = packed ? detail::weight_source<T>::packed(packed, IC, ntaps, B)
                                              : detail::in_place_weights<T, R>(g, weight, packed_tail, tail);
    if (pointwise) {
        detail::conv_pointwise<T, R>(IC, OC, batch, in, w, out, ep, ws);
        return;
    }
    detail::run_any_rank<T, R>(detail::conv_plan<R>(g, out.extent), batch, in, w, out, ep, ws);
}

}  // namespace ctseg::exec
