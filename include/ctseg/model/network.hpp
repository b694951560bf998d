// A bound network with its parameters: runs the compile-time plan on the
// kernels. `forward` is const and keeps no state between calls, so several
// threads may run inference on one network at once.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <utility>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ctseg/error.hpp"
#include "ctseg/exec.hpp"
#include "ctseg/model/layouts.hpp"
#include "ctseg/model/op_geometry.hpp"
#include "ctseg/model/state.hpp"
#include "ctseg/plan/bind.hpp"

namespace ctseg {

template <class Bound, class T = float>
class network {
    static_assert(is_bound<Bound>, "ctseg: network<B>: B must be ctseg::bind<Net, shape<...>>");
    static_assert(std::is_floating_point_v<T>, "ctseg: network<B, T>: T must be float or double");

public:
    using bound = Bound;
    using scalar = T;
    using input_shape = typename Bound::input_shape;
    using output_shape = typename Bound::output_shape;
    static constexpr std::size_t rank = Bound::rank;
    static constexpr std::size_t input_size = input_shape::size;     // per batch element
    static constexpr std::size_t output_size = output_shape::size;   // per batch element

    explicit network(std::uint64_t seed = 0)
        : values_(std::size_t(Bound::lowered.param_values)),
          counters_(std::size_t(Bound::lowered.counter_values)),
          prepared_(std::size_t(Bound::graph.prepared_values)),
          packed_(std::size_t(Bound::graph.n_ops)),
          packed_blocked_(std::size_t(Bound::graph.n_ops)) {
        initialize(seed);
    }

    // PyTorch's default initialisation: weights and biases uniform in
    // +-1/sqrt(fan_in); norms start as identity; PReLU slopes 0.25.
    void initialize(std::uint64_t seed) {
        std::mt19937_64 rng(seed);
        constexpr const auto& g = Bound::lowered;
        for (std::size_t i = 0; i < g.n_params; ++i) std::fill_n(values_.begin() + g.params[i].offset, g.params[i].count, T(0));
        for (std::size_t i = 0; i < g.n_ops; ++i) {
            const auto& o = g.ops[i];
            if (o.kind == plan::op_kind::conv || o.kind == plan::op_kind::conv_transpose) {
                const auto& w = g.params[std::size_t(o.weight)];
                long fan_in = w.shape[1];
                for (int d = 2; d < w.rank; ++d) fan_in *= w.shape[std::size_t(d)];
                const double bound = 1.0 / std::sqrt(double(fan_in));
                std::uniform_real_distribution<double> u(-bound, bound);
                for (long k = 0; k < w.count; ++k) values_[std::size_t(w.offset + k)] = T(u(rng));
                if (o.bias >= 0) {
                    const auto& b = g.params[std::size_t(o.bias)];
                    for (long k = 0; k < b.count; ++k) values_[std::size_t(b.offset + k)] = T(u(rng));
                }
            } else if (o.kind == plan::op_kind::batch_norm || o.kind == plan::op_kind::instance_norm) {
                if (o.gamma >= 0) fill(o.gamma, T(1));
                if (o.var >= 0) fill(o.var, T(1));
            } else if (o.act == plan::act_kind::prelu) {
                fill(o.prelu, T(0.25));
            }
        }
        std::fill(counters_.begin(), counters_.end(), 0);
        state_changed();
    }

    // Named views of every parameter and buffer, keyed as PyTorch's state_dict.
    std::vector<model::state_entry<T>> state_entries() {
        constexpr const auto& g = Bound::lowered;
        std::vector<model::state_entry<T>> out;
        out.reserve(g.n_params);
        for (std::size_t i = 0; i < g.n_params; ++i) {
            const auto& p = g.params[i];
            model::state_entry<T> e;
            e.name = std::string(p.name.view());
            e.shape.assign(p.shape.begin(), p.shape.begin() + p.rank);
            e.trainable = p.trainable;
            if (p.counter) e.counter = &counters_[std::size_t(p.offset)];
            else e.values = std::span<T>(values_.data() + p.offset, std::size_t(p.count));
            out.push_back(std::move(e));
        }
        return out;
    }

    // Recomputes what inference derives from the parameters (folded norms,
    // transposed-convolution weights packed per residue class; convolutions
    // read their weights in place, but for a partial last block of output
    // channels, packed here). Loading through interop and
    // the trainer call it; call it after writing parameters yourself.
    void state_changed() {
        fold_norms();
        pack_weights();
    }

    // Time of one operation of a profiled forward pass (fused operations count once).
    struct op_timing {
        std::string_view path;  // the layer that emitted the operation
        std::string_view kind;  // conv, conv_transpose, max_pool, ...
        double seconds = 0;
        double flops = 0;       // 2 x multiply-adds, convolutions only
    };

    // A forward pass that also reports where its time went, operation by operation.
    std::vector<op_timing> profile(exec::index_t batch, const T* input, T* output) const {
        if (batch <= 0) throw error("ctseg: profile: batch size must be positive, got " + std::to_string(batch));
        std::vector<op_timing> timings;
        run_in_arena(batch, input, output, &timings);
        return timings;
    }

    // Runs `batch` samples: input N x C x extents, output N x C' x extents', both
    // contiguous (PyTorch layout).
    void forward(exec::index_t batch, const T* input, T* output) const {
        if (batch <= 0) throw error("ctseg: forward: batch size must be positive, got " + std::to_string(batch));
        run_in_arena(batch, input, output);
    }

    // Bytes of the arena a forward pass of `batch` samples leases in the
    // calling task arena: the planned values (Bound::workspace_bytes per
    // sample) and the kernels' working memory for each of its threads. Kept
    // arenas are reused: a pass allocates nothing else.
    std::size_t arena_bytes(exec::index_t batch) const {
        return arena_elements(batch, kernel_scratch_bytes(batch)) * sizeof(T);
    }

    // Which inner values the forward pass stores channel-blocked (see
    // model/layouts.hpp), by value id of Bound::graph; none when off.
    static constexpr auto layouts = model::plan_layouts(Bound::graph, rank, std::is_same_v<T, float>);
    bool blocked(int value) const { return blocked_layouts_ && layouts.blocked[std::size_t(value)]; }
    // Runs every value NCHW when false (for comparisons; the results agree
    // to rounding). On by default.
    void use_blocked_layouts(bool on) { blocked_layouts_ = on; }

    // Convenience: batch size from the input length.
    std::vector<T> forward(std::span<const T> input) const {
        if (input.empty() || input.size() % input_size != 0)
            throw error("ctseg: forward: input has " + std::to_string(input.size()) + " values, not a multiple of " +
                        std::to_string(input_size) + " (one sample)");
        const auto batch = exec::index_t(input.size() / input_size);
        std::vector<T> out(std::size_t(batch) * output_size);
        forward(batch, input.data(), out.data());
        return out;
    }

    // Every parameter and buffer, laid out as Bound::lowered.params[i].offset says.
    std::span<T> parameters() { return values_; }
    std::span<const T> parameters() const { return values_; }
    // Integer buffers (BatchNorm's num_batches_tracked), by Bound::lowered.params[i].offset.
    std::span<std::int64_t> counters() { return counters_; }
    std::span<const std::int64_t> counters() const { return counters_; }

private:
    struct aligned_delete {
        void operator()(T* p) const { ::operator delete[](p, std::align_val_t{64}); }
    };
    using buffer = std::unique_ptr<T[], aligned_delete>;

    // Arenas of finished forward passes, kept for the next ones: a fresh
    // allocation of tens of megabytes comes from the kernel as untouched pages,
    // and faulting them in on every call costs more than a small layer. One
    // arena per concurrent call; a lease returns its arena when it ends.
    class arena_pool {
    public:
        struct lease {
            arena_pool* pool;
            std::size_t size;
            buffer data;
            T* get() const noexcept { return data.get(); }
            lease(arena_pool* p, std::size_t n, buffer b) : pool(p), size(n), data(std::move(b)) {}
            lease(const lease&) = delete;
            lease& operator=(const lease&) = delete;
            ~lease() {
                if (data) pool->give_back(size, std::move(data));
            }
        };
        lease acquire(std::size_t elements) {
            std::size_t size = elements;
            buffer b = take(size);
            if (!b && elements) b = buffer(static_cast<T*>(::operator new[](elements * sizeof(T), std::align_val_t{64})));
            return {this, size, std::move(b)};
        }

    private:
        // A kept arena of at least `size` elements (size becomes its own), or null.
        buffer take(std::size_t& size) {
            if (size == 0) return nullptr;
            std::lock_guard lock(mutex_);
            for (auto it = free_.begin(); it != free_.end(); ++it)
                if (it->first >= size) {
                    size = it->first;
                    buffer b = std::move(it->second);
                    free_.erase(it);
                    return b;
                }
            return nullptr;
        }
        void give_back(std::size_t elements, buffer b) {
            std::lock_guard lock(mutex_);
            free_.emplace_back(elements, std::move(b));
        }
        std::mutex mutex_;
        std::vector<std::pair<std::size_t, buffer>> free_;
    };
    static constexpr std::size_t R = rank;
    template <class U>
    using ref = exec::tensor_ref<U, R>;

    // Folded norms: scale and shift per channel, or weights scaled in place.
    void fold_norms() {
        constexpr const auto& g = Bound::graph;

        for (std::size_t i = 0; i < g.n_ops; ++i) {
            const auto& o = g.ops[i];
            if (o.removed || o.prepared < 0) continue;
            const std::size_t c = std::size_t(o.out_channels);
            std::vector<double> scale(c), shift(c);
            for (std::size_t k = 0; k < c; ++k) {
                const double s = double(param(o.gamma)[k]) / std::sqrt(double(param(o.var)[k]) + o.eps);
                scale[k] = s;
                shift[k] = double(param(o.beta)[k]) - double(param(o.mean)[k]) * s;
            }
            T* dst = prepared_.data() + o.prepared;
            if (o.folded_norm) {
                const auto& w = g.params[std::size_t(o.weight)];
                const T* src = param(o.weight);
                // conv weights are [out][in][k...]; transposed ones [in][out][k...]
                const long per = w.count / (w.shape[0] * w.shape[1]);
                for (long a = 0; a < w.shape[0]; ++a)
                    for (long b = 0; b < w.shape[1]; ++b) {
                        const std::size_t ch = std::size_t(o.kind == plan::op_kind::conv ? a : b);
                        for (long k = 0; k < per; ++k) {
                            const long idx = (a * w.shape[1] + b) * per + k;
                            dst[idx] = T(double(src[idx]) * scale[ch]);
                        }
                    }
                T* bias = dst + w.count;
                for (std::size_t k = 0; k < c; ++k)
                    bias[k] = T((o.bias >= 0 ? double(param(o.bias)[k]) : 0.0) * scale[k] + shift[k]);
            } else {
                for (std::size_t k = 0; k < c; ++k) { dst[k] = T(scale[k]); dst[c + k] = T(shift[k]); }
            }
        }
    }


    void pack_weights() {
        constexpr const auto& g = Bound::graph;
        for (std::size_t i = 0; i < g.n_ops; ++i) {
            const auto& o = g.ops[i];
            if (o.removed) continue;
            const T* w = o.folded_norm ? prepared_.data() + o.prepared : o.weight >= 0 ? param(o.weight) : nullptr;
            if constexpr (std::is_same_v<T, float> && R == 2) {
                // Blocked outputs read weights packed for the blocked kernels.
                if (layouts.blocked[std::size_t(o.out)]) {
                    if (o.kind == plan::op_kind::conv)
                        packed_blocked_[i] = exec::pack_blocked_conv(model::detail::conv_geometry_of<R>(o), w);
                    else if (o.kind == plan::op_kind::conv_transpose)
                        packed_blocked_[i] = exec::pack_blocked_conv_transpose(model::detail::conv_transpose_geometry_of<R>(o), w);
                }
            }
            if (o.kind == plan::op_kind::conv) {
                packed_[i] = exec::pack_conv_tail<T, R>(model::detail::conv_geometry_of<R>(o), w);
            } else if (o.kind == plan::op_kind::conv_transpose) {
                std::array<exec::index_t, R> extent{};
                for (std::size_t d = 0; d < R; ++d) extent[d] = g.values[std::size_t(o.out)].extent[d];
                packed_[i] = exec::pack_conv_transpose_weights<T, R>(model::detail::conv_transpose_geometry_of<R>(o), extent, w);
            }
        }
    }

    const T* param(int id) const { return values_.data() + Bound::lowered.params[std::size_t(id)].offset; }
    void fill(int id, T v) {
        const auto& p = Bound::lowered.params[std::size_t(id)];
        std::fill_n(values_.begin() + p.offset, p.count, v);
    }

    // A value's view: its storage is the caller's input, the caller's output or
    // a slice of the arena at its planned offset.
    static ref<T> view(int v, exec::index_t batch, const T* input, T* output, T* arena) {
        constexpr const auto& g = Bound::graph;
        const auto& x = g.values[std::size_t(v)];
        const auto& owner = g.values[std::size_t(x.buffer)];
        ref<T> r;
        r.channels = x.channels;
        for (std::size_t i = 0; i < R; ++i) r.extent[i] = x.extent[i];
        const exec::index_t plane = r.plane();
        r.batch_stride = exec::index_t(owner.channels) * plane;
        T* base = x.buffer == g.input ? const_cast<T*>(input)
                  : x.buffer == g.output ? output
                                         : arena + Bound::memory.offset[std::size_t(x.buffer)] * batch;
        r.data = base + exec::index_t(x.channel_offset) * plane;
        return r;
    }

    // The arena of a forward pass: the planned values (Bound::memory), then
    // the kernels' per-thread working memory, one slot per thread of the
    // calling task arena, each as large as the largest operation needs. Both
    // are known before the pass: it allocates nothing else.
    static constexpr std::size_t arena_align = 64 / sizeof(T);  // elements
    static std::size_t values_elements(exec::index_t batch) {
        return (std::size_t(Bound::workspace_elements) * std::size_t(batch) + arena_align - 1) / arena_align * arena_align;
    }
    std::size_t arena_elements(exec::index_t batch, std::size_t slot_bytes) const {
        return values_elements(batch) + (std::size_t(exec::concurrency()) * slot_bytes + sizeof(T) - 1) / sizeof(T);
    }
    static exec::workspace kernel_workspace(exec::index_t batch, T* arena, std::size_t slot_bytes) {
        return {reinterpret_cast<std::byte*>(arena + values_elements(batch)), slot_bytes, exec::concurrency()};
    }
    // Bytes per thread: the most any convolution of the pass needs (a multiple of 64).
    std::size_t kernel_scratch_bytes(exec::index_t batch) const {
        constexpr const auto& g = Bound::graph;
        std::size_t most = 0;
        for (std::size_t i = 0; i < g.n_ops; ++i) {
            const auto& o = g.ops[i];
            if (o.removed || o.chained) continue;
            std::array<exec::index_t, R> extent{};
            for (std::size_t d = 0; d < R; ++d) extent[d] = g.values[std::size_t(o.out)].extent[d];
            if (o.chain_next >= 0)
                most = std::max(most, chain_scratch_bytes(i, batch));
            else if (o.kind == plan::op_kind::conv)
                most = std::max(most, exec::conv_scratch_bytes<T, R>(model::detail::conv_geometry_of<R>(o), batch, extent));
            else if (o.kind == plan::op_kind::conv_transpose)
                most = std::max(most, exec::conv_transpose_scratch_bytes<T, R>(model::detail::conv_transpose_geometry_of<R>(o),
                                                                               batch, extent));
        }
        return most;
    }

    // A pass in an arena leased for it.
    void run_in_arena(exec::index_t batch, const T* input, T* output, std::vector<op_timing>* timings = nullptr) const {
        const std::size_t slot_bytes = kernel_scratch_bytes(batch);
        const auto arena = arenas_->acquire(arena_elements(batch, slot_bytes));
        run(batch, input, output, arena.get(), kernel_workspace(batch, arena.get(), slot_bytes), timings);
    }

    // The weights a (transposed) convolution runs with: folded or as stored.
    const T* weights_of(const plan::op_info& o) const { return o.folded_norm ? prepared_.data() + o.prepared : param(o.weight); }
    // The epilogue of op o; folded norms bring their own bias, after the folded weights.
    exec::epilogue<T, R> epilogue_for(const plan::op_info& o, exec::index_t batch, const T* input, T* output, T* arena) const {
        const T* bias = o.folded_norm ? prepared_.data() + o.prepared + Bound::lowered.params[std::size_t(o.weight)].count
                        : o.bias >= 0 ? param(o.bias)
                                      : nullptr;
        return model::detail::epilogue_of<T, R>(o, bias, o.prelu >= 0 ? param(o.prelu) : nullptr,
                                                o.residual >= 0 ? view(o.residual, batch, input, output, arena) : ref<T>{});
    }

    // The links of the chain of convolutions that starts at op `first`
    // (plan::detail::chain_convolutions); returns their count, the last op in
    // `last`. Without `data`, only their geometry (enough to size the chain's
    // working memory).
    using chain = std::array<exec::chain_link<T, R>, exec::max_chain_links>;
    std::size_t chain_links(std::size_t first, chain& links, std::size_t& last, bool data, exec::index_t batch = 0,
                            const T* input = nullptr, T* output = nullptr, T* arena = nullptr) const {
        constexpr const auto& g = Bound::graph;
        static_assert(plan::max_chain_links <= int(exec::max_chain_links));
        std::size_t n = 0;
        for (int k = int(first); k >= 0; k = g.ops[std::size_t(k)].chain_next) {
            const plan::op_info& o = g.ops[std::size_t(k)];
            auto& l = links[n++];
            l.g = model::detail::conv_geometry_of<R>(o);
            l.in_blocked = blocked(o.in);
            l.out_blocked = blocked(o.out);
            if (data) {
                l.weight = weights_of(o);
                l.packed_tail = packed_[std::size_t(k)].empty() ? nullptr : packed_[std::size_t(k)].data();
                l.blocked_weight = packed_blocked_[std::size_t(k)].data();
                l.ep = epilogue_for(o, batch, input, output, arena);
            }
            last = std::size_t(k);
        }
        return n;
    }
    std::size_t chain_scratch_bytes(std::size_t first, exec::index_t batch) const {
        constexpr const auto& g = Bound::graph;
        chain links;
        std::size_t last = first;
        const std::size_t n = chain_links(first, links, last, false);
        std::array<exec::index_t, R> extent{};
        for (std::size_t d = 0; d < R; ++d) extent[d] = g.values[std::size_t(g.ops[first].in)].extent[d];
        return exec::conv_chain_scratch_bytes<T, R>(std::span<const exec::chain_link<T, R>>(links.data(), n), batch, extent);
    }

    void run(exec::index_t batch, const T* input, T* output, T* arena, const exec::workspace& ws,
             std::vector<op_timing>* timings) const {
        constexpr const auto& g = Bound::graph;
        for (std::size_t i = 0; i < g.n_ops; ++i) {
            const plan::op_info& o = g.ops[i];
            if (o.removed || o.chained) continue;
            const auto started = timings ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
            const ref<const T> in = model::detail::as_const(view(o.in, batch, input, output, arena));
            if (o.chain_next >= 0) {
                chain links;
                std::size_t last = i;
                const std::size_t n = chain_links(i, links, last, true, batch, input, output, arena);
                exec::conv_chain_forward<T, R>(std::span<const exec::chain_link<T, R>>(links.data(), n), batch, in,
                                               view(g.ops[last].out, batch, input, output, arena), ws);
                if (timings) {
                    double flops = 0;
                    for (int k = int(i); k >= 0; k = g.ops[std::size_t(k)].chain_next)
                        flops += double(Bound::lowered.rows[std::size_t(g.ops[std::size_t(k)].row)].flops) * double(batch);
                    timings->push_back({Bound::lowered.rows[std::size_t(o.row)].path.view(), "conv_chain",
                                        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), flops});
                }
                continue;
            }
            const ref<T> out = view(o.out, batch, input, output, arena);
            const exec::epilogue<T, R> ep = epilogue_for(o, batch, input, output, arena);
            if (run_blocked(i, o, batch, in, out, ep)) {
                if (timings) record(o, started, batch, *timings);
                continue;
            }
            switch (o.kind) {
                case plan::op_kind::conv: {
                    exec::conv_forward<T, R>(model::detail::conv_geometry_of<R>(o), batch, in, weights_of(o), out, ep, nullptr,
                                            packed_[i].empty() ? nullptr : packed_[i].data(), ws);
                    break;
                }
                case plan::op_kind::conv_transpose: {
                    const T* w = weights_of(o);
                    exec::conv_transpose_forward<T, R>(model::detail::conv_transpose_geometry_of<R>(o), batch, in, w, out, ep,
                                                       packed_[i].data(), ws);
                    break;
                }
                case plan::op_kind::max_pool:
                    exec::max_pool_forward<T, R>(model::detail::pool_geometry_of<R>(o), batch, in, out);
                    break;
                case plan::op_kind::pointwise:
                    exec::channel_affine<T, R>(batch, in, out, nullptr, nullptr, ep);
                    break;
                case plan::op_kind::batch_norm: {
                    const T* ss = prepared_.data() + o.prepared;
                    exec::channel_affine<T, R>(batch, in, out, ss, ss + o.out_channels, ep);
                    break;
                }
                case plan::op_kind::instance_norm:
                    exec::instance_norm_forward<T, R>(batch, in, out, T(o.eps), o.gamma >= 0 ? param(o.gamma) : nullptr,
                                                      o.beta >= 0 ? param(o.beta) : nullptr, ep);
                    break;
                case plan::op_kind::copy:
                    exec::copy_center_crop<T, R>(batch, in, out);
                    break;
                case plan::op_kind::tile:
                    exec::tile_channels<T, R>(batch, in, o.tile_offset, o.tile_period, out);
                    break;
                case plan::op_kind::softmax:
                    exec::softmax_channels<T, R>(batch, in, out);
                    break;
                case plan::op_kind::argmax:
                    exec::argmax_channels<T, R>(batch, in, out.data, out.batch_stride);
                    break;
            }
            if (timings) record(o, started, batch, *timings);
        }
    }

    // The time of op o since `started`; the plan counts FLOPs per layer, a
    // fused operation carries its convolution's.
    static void record(const plan::op_info& o, std::chrono::steady_clock::time_point started, exec::index_t batch,
                       std::vector<op_timing>& timings) {
        const auto& row = Bound::lowered.rows[std::size_t(o.row)];
        const bool conv_like = o.kind == plan::op_kind::conv || o.kind == plan::op_kind::conv_transpose;
        timings.push_back({row.path.view(), plan::op_kind_name(o.kind),
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
                           conv_like ? double(row.flops) * double(batch) : 0.0});
    }

    // Op i on the blocked kernels when one of its values is blocked; false
    // when it runs NCHW.
    bool run_blocked(std::size_t i, const plan::op_info& o, exec::index_t batch, ref<const T> in, ref<T> out,
                     const exec::epilogue<T, R>& ep) const {
        if constexpr (std::is_same_v<T, float> && R == 2) {
            const bool in_b = blocked(o.in), out_b = blocked(o.out);
            if (!in_b && !out_b) return false;
            switch (o.kind) {
                case plan::op_kind::conv:
                    if (out_b)
                        exec::conv_forward_blocked(model::detail::conv_geometry_of<R>(o), batch, in, in_b, packed_blocked_[i].data(), out, ep);
                    else
                        exec::pointwise_forward_to_nchw(model::detail::conv_geometry_of<R>(o), batch, in, weights_of(o), out, ep);
                    return true;
                case plan::op_kind::conv_transpose:
                    exec::conv_transpose_forward_blocked(model::detail::conv_transpose_geometry_of<R>(o), batch, in, in_b,
                                                         packed_blocked_[i].data(), out, ep);
                    return true;
                case plan::op_kind::max_pool:
                    exec::max_pool_forward_blocked(model::detail::pool_geometry_of<R>(o), batch, in, out, out_b);
                    return true;
                default:
                    break;
            }
            throw error("ctseg: internal: operation " + std::to_string(i) + " (" + plan::op_kind_name(o.kind) +
                        ") has a blocked value but no blocked kernel");
        } else {
            (void)i, (void)o, (void)batch, (void)in, (void)out, (void)ep;
            return false;
        }
    }


    std::vector<T> values_;
    std::vector<std::int64_t> counters_;
    std::vector<T> prepared_;
    // Per op: kernel-ready weights. Transposed convolutions: all, per residue
    // class; convolutions: only a partial last block of output channels.
    std::vector<std::vector<T>> packed_;
    // Per op with a blocked output: its weights packed for the blocked kernels.
    std::vector<std::vector<T>> packed_blocked_;
    bool blocked_layouts_ = true;
    // Shared by copies of the network: each lease is exclusive, so sharing is safe.
    std::shared_ptr<arena_pool> arenas_ = std::make_shared<arena_pool>();
};

// Copies every parameter and buffer of `from` into `to`, key by key: the same
// network bound to another shape (train on small tiles, run on large ones), or
// any two networks with the same state_dict. Checks every key and shape first
// and leaves `to` untouched on a mismatch.
template <class FromBound, class ToBound, class T>
void copy_state(network<FromBound, T>& from, network<ToBound, T>& to) {
    auto src = from.state_entries();
    auto dst = to.state_entries();
    if (src.size() != dst.size())
        throw error("ctseg: copy_state: the source has " + std::to_string(src.size()) + " state entries, the target " +
                    std::to_string(dst.size()));
    for (std::size_t i = 0; i < src.size(); ++i)
        if (src[i].name != dst[i].name || src[i].shape != dst[i].shape || (src[i].counter == nullptr) != (dst[i].counter == nullptr))
            throw error("ctseg: copy_state: entry " + std::to_string(i) + " is '" + src[i].name + "' in the source but '" +
                        dst[i].name + "' in the target, or their shapes differ");
    for (std::size_t i = 0; i < src.size(); ++i) {
        if (src[i].counter) *dst[i].counter = *src[i].counter;
        else std::copy(src[i].values.begin(), src[i].values.end(), dst[i].values.begin());
    }
    to.state_changed();
}

}  // namespace ctseg
