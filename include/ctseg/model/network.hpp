// A bound network with its parameters: runs the compile-time plan on the
// kernels. `forward` is const and keeps no state between calls, so several
// threads may run inference on one network at once.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "ctseg/error.hpp"
#include "ctseg/exec.hpp"
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
          prepared_(std::size_t(Bound::graph.prepared_values)) {
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

    // Recomputes what inference derives from the parameters (folded norms).
    // Loading through interop calls it; call it after writing parameters yourself.
    void state_changed() {
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

    // Runs `batch` samples: input N x C x extents, output N x C' x extents', both
    // contiguous (PyTorch layout).
    void forward(exec::index_t batch, const T* input, T* output) const {
        if (batch <= 0) throw error("ctseg: forward: batch size must be positive, got " + std::to_string(batch));
        const std::size_t arena_size = std::size_t(Bound::workspace_elements) * std::size_t(batch);
        std::unique_ptr<T[], aligned_delete> arena(
            arena_size ? static_cast<T*>(::operator new[](arena_size * sizeof(T), std::align_val_t{64})) : nullptr);
        run(batch, input, output, arena.get());
    }

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
    static constexpr std::size_t R = rank;
    template <class U>
    using ref = exec::tensor_ref<U, R>;

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

    void run(exec::index_t batch, const T* input, T* output, T* arena) const {
        constexpr const auto& g = Bound::graph;
        for (std::size_t i = 0; i < g.n_ops; ++i) {
            const plan::op_info& o = g.ops[i];
            if (o.removed) continue;
            const ref<T> out = view(o.out, batch, input, output, arena);
            const ref<const T> in = model::detail::as_const(view(o.in, batch, input, output, arena));
            // Folded norms bring their own bias, after the folded weights.
            const T* bias = o.folded_norm ? prepared_.data() + o.prepared + Bound::lowered.params[std::size_t(o.weight)].count
                            : o.bias >= 0 ? param(o.bias)
                                          : nullptr;
            const exec::epilogue<T, R> ep = model::detail::epilogue_of<T, R>(
                o, bias, o.prelu >= 0 ? param(o.prelu) : nullptr, o.residual >= 0 ? view(o.residual, batch, input, output, arena) : out);
            switch (o.kind) {
                case plan::op_kind::conv: {
                    const T* w = o.folded_norm ? prepared_.data() + o.prepared : param(o.weight);
                    exec::conv_forward<T, R>(model::detail::conv_geometry_of<R>(o), batch, in, w, out, ep);
                    break;
                }
                case plan::op_kind::conv_transpose: {
                    const T* w = o.folded_norm ? prepared_.data() + o.prepared : param(o.weight);
                    exec::conv_transpose_forward<T, R>(model::detail::conv_transpose_geometry_of<R>(o), batch, in, w, out, ep);
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
                case plan::op_kind::argmax: {
                    std::vector<std::int64_t> labels(std::size_t(batch * out.plane()));
                    exec::argmax_channels<T, R>(batch, in, labels.data());
                    for (exec::index_t n = 0; n < batch; ++n)
                        for (exec::index_t k = 0; k < out.plane(); ++k)
                            out.channel(n, 0)[k] = T(labels[std::size_t(n * out.plane() + k)]);
                    break;
                }
            }
        }
    }

    std::vector<T> values_;
    std::vector<std::int64_t> counters_;
    std::vector<T> prepared_;
};

}  // namespace ctseg
