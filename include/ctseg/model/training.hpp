// Training-mode passes of a bound network: a forward pass that keeps every
// intermediate tensor (the tape) and uses batch statistics in batch norms, and
// the backward pass that accumulates parameter gradients. Both run the
// network as written (Bound::lowered), without the inference fusions.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ctseg/error.hpp"
#include "ctseg/exec.hpp"
#include "ctseg/exec/backward.hpp"
#include "ctseg/model/network.hpp"
#include "ctseg/model/op_geometry.hpp"

namespace ctseg {

namespace model::detail {
// Per-batch-element offsets of every stored tensor: each value owning storage
// gets its own (nothing is reused: backward reads them all).
template <class G>
struct tape_layout {
    std::array<long, std::tuple_size_v<decltype(G{}.values)>> offset{};
    long total = 0;
};
template <class G>
constexpr tape_layout<G> lay_out_tape(const G& g) {
    tape_layout<G> t;
    for (std::size_t v = 0; v < g.n_values; ++v) {
        t.offset[v] = -1;
        if (g.values[v].buffer != int(v) || int(v) == g.input) continue;
        t.offset[v] = t.total;
        t.total += (long(g.values[v].channels) * g.values[v].plane() + 15) / 16 * 16;
    }
    return t;
}
}  // namespace model::detail

// The stored tensors of one training forward pass, for one batch size.
template <class Bound, class T = float>
class tape {
public:
    static constexpr auto layout = model::detail::lay_out_tape(Bound::lowered);

    explicit tape(exec::index_t batch)
        : batch_(batch), values_(std::size_t(layout.total * batch)), stats_(2 * statistic_count() * std::size_t(batch > 0 ? 1 : 0)) {
        if (batch <= 0) throw error("ctseg: tape: batch size must be positive, got " + std::to_string(batch));
    }
    exec::index_t batch() const { return batch_; }
    // The network's output (logits), N x C x extents, contiguous.
    std::span<const T> output() const {
        const long o = layout.offset[std::size_t(Bound::lowered.output)];
        return {values_.data() + o * batch_, std::size_t(Bound::output_shape::size) * std::size_t(batch_)};
    }

    std::vector<T>& storage() { return values_; }
    const std::vector<T>& storage() const { return values_; }
    std::vector<T>& statistics() { return stats_; }
    const std::vector<T>& statistics() const { return stats_; }
    const T* input = nullptr;  // the caller's input of the last forward pass

    // Batch-norm statistics saved for backward: mean and 1/std per channel.
    static constexpr std::size_t statistic_count() {
        std::size_t n = 0;
        for (std::size_t i = 0; i < Bound::lowered.n_ops; ++i)
            if (Bound::lowered.ops[i].kind == plan::op_kind::batch_norm) n += std::size_t(Bound::lowered.ops[i].out_channels);
        return n;
    }

private:
    exec::index_t batch_;
    std::vector<T> values_;
    std::vector<T> stats_;
};

namespace model::detail {
template <class Bound, class T, class Storage>
exec::tensor_ref<T, Bound::rank> tape_view(int v, exec::index_t batch, const T* input, Storage* base) {
    constexpr const auto& g = Bound::lowered;
    constexpr auto& lay = tape<Bound, std::remove_const_t<T>>::layout;
    const auto& x = g.values[std::size_t(v)];
    const auto& owner = g.values[std::size_t(x.buffer)];
    exec::tensor_ref<T, Bound::rank> r;
    r.channels = x.channels;
    for (std::size_t i = 0; i < Bound::rank; ++i) r.extent[i] = x.extent[i];
    const exec::index_t plane = r.plane();
    r.batch_stride = exec::index_t(owner.channels) * plane;
    T* at = x.buffer == g.input ? const_cast<T*>(input) : base + lay.offset[std::size_t(x.buffer)] * batch;
    r.data = at + exec::index_t(x.channel_offset) * plane;
    return r;
}
}  // namespace model::detail

// Training forward pass: every intermediate tensor is kept in `t`; batch norms
// normalise with the batch statistics and update their running statistics
// (momentum 0.1, unbiased variance) and num_batches_tracked, as PyTorch's train().
template <class Bound, class T>
void forward_train(network<Bound, T>& net, const T* input, tape<Bound, T>& t) {
    constexpr const auto& g = Bound::lowered;
    constexpr std::size_t R = Bound::rank;
    using namespace model::detail;
    const exec::index_t batch = t.batch();
    t.input = input;
    T* base = t.storage().data();
    T* params = net.parameters().data();
    auto param = [&](int id) { return params + g.params[std::size_t(id)].offset; };
    std::size_t stat = 0;
    for (std::size_t i = 0; i < g.n_ops; ++i) {
        const plan::op_info& o = g.ops[i];
        const auto out = tape_view<Bound, T>(o.out, batch, input, base);
        const auto in = as_const(tape_view<Bound, T>(o.in, batch, input, base));
        const auto ep = epilogue_of<T, R>(o, o.bias >= 0 ? param(o.bias) : nullptr, o.prelu >= 0 ? param(o.prelu) : nullptr,
                                          o.residual >= 0 ? tape_view<Bound, T>(o.residual, batch, input, base) : out);
        switch (o.kind) {
            case plan::op_kind::conv:
                exec::conv_forward<T, R>(conv_geometry_of<R>(o), batch, in, param(o.weight), out, ep);
                break;
            case plan::op_kind::conv_transpose:
                exec::conv_transpose_forward<T, R>(conv_transpose_geometry_of<R>(o), batch, in, param(o.weight), out, ep);
                break;
            case plan::op_kind::max_pool:
                exec::max_pool_forward<T, R>(pool_geometry_of<R>(o), batch, in, out);
                break;
            case plan::op_kind::pointwise:
                exec::channel_affine<T, R>(batch, in, out, nullptr, nullptr, ep);
                break;
            case plan::op_kind::batch_norm: {
                T* mean = t.statistics().data() + stat;
                T* invstd = mean + tape<Bound, T>::statistic_count();
                exec::batch_norm_train_forward<T, R>(batch, in, out, param(o.gamma), param(o.beta), T(o.eps), T(0.1), param(o.mean),
                                                     param(o.var), mean, invstd);
                stat += std::size_t(o.out_channels);
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
            case plan::op_kind::argmax:
                throw error("ctseg: forward_train: softmax and argmax are output operations; train the network on its logits");
        }
    }
    for (std::size_t i = 0; i < g.n_params; ++i)
        if (g.params[i].counter) net.counters()[std::size_t(g.params[i].offset)] += 1;
    net.state_changed();
}

// Backward pass of the last forward_train on `t`: `doutput` is the gradient of
// the loss with respect to the output (N x C x extents). Parameter gradients are
// ADDED to `dparams`, laid out as net.parameters() (buffers get none).
template <class Bound, class T>
void backward(const network<Bound, T>& net, const tape<Bound, T>& t, const T* doutput, std::span<T> dparams) {
    constexpr const auto& g = Bound::lowered;
    constexpr std::size_t R = Bound::rank;
    using namespace model::detail;
    if (dparams.size() != net.parameters().size())
        throw error("ctseg: backward: the gradient has " + std::to_string(dparams.size()) + " values, the network " +
                    std::to_string(net.parameters().size()));
    const exec::index_t batch = t.batch();
    const T* base = t.storage().data();
    std::vector<T> grads(t.storage().size(), T(0));
    std::vector<T> dinput;  // gradient w.r.t. the network input: computed, then dropped
    dinput.assign(std::size_t(Bound::input_shape::size) * std::size_t(batch), T(0));
    const T* params = net.parameters().data();
    auto param = [&](int id) { return params + g.params[std::size_t(id)].offset; };
    auto dparam = [&](int id) { return dparams.data() + g.params[std::size_t(id)].offset; };
    auto value = [&](int v) { return as_const(tape_view<Bound, const T>(v, batch, t.input, base)); };
    auto grad = [&](int v) {
        return g.values[std::size_t(v)].buffer == g.input ? tape_view<Bound, T>(v, batch, dinput.data(), static_cast<T*>(nullptr))
                                                            : tape_view<Bound, T>(v, batch, nullptr, grads.data());
    };
    {
        auto dy = grad(g.output);
        for (exec::index_t n = 0; n < batch; ++n)
            for (exec::index_t c = 0; c < dy.channels; ++c) {
                const T* src = doutput + (n * dy.channels + c) * dy.plane();
                T* dst = dy.channel(n, c);
                for (exec::index_t k = 0; k < dy.plane(); ++k) dst[k] += src[k];
            }
    }
    std::size_t stat = tape<Bound, T>::statistic_count();
    for (std::size_t i = g.n_ops; i-- > 0;) {
        const plan::op_info& o = g.ops[i];
        const auto dy = as_const(grad(o.out));
        const auto dx = grad(o.in);
        const auto x = value(o.in);
        switch (o.kind) {
            case plan::op_kind::conv: {
                const auto geo = conv_geometry_of<R>(o);
                exec::conv_backward_weights<T, R>(geo, batch, x, dy, dparam(o.weight), o.bias >= 0 ? dparam(o.bias) : nullptr);
                exec::conv_backward_data<T, R>(geo, batch, dy, param(o.weight), dx);
                break;
            }
            case plan::op_kind::conv_transpose: {
                const auto geo = conv_transpose_geometry_of<R>(o);
                exec::conv_transpose_backward_weights<T, R>(geo, batch, x, dy, dparam(o.weight), o.bias >= 0 ? dparam(o.bias) : nullptr);
                exec::conv_transpose_backward_data<T, R>(geo, batch, dy, param(o.weight), dx);
                break;
            }
            case plan::op_kind::max_pool:
                exec::max_pool_backward<T, R>(pool_geometry_of<R>(o), batch, x, dy, dx);
                break;
            case plan::op_kind::pointwise:
                if (o.residual >= 0) {
                    exec::activation_backward<T, R>(batch, exec::activation::none, T(0), nullptr, x, dy, dx, nullptr);
                    exec::residual_backward<T, R>(batch, dy, o.residual_offset, o.residual_period, grad(o.residual));
                } else {
                    exec::activation_backward<T, R>(batch, activation_of(o.act), T(o.slope), o.prelu >= 0 ? param(o.prelu) : nullptr, x, dy,
                                                    dx, o.prelu >= 0 ? dparam(o.prelu) : nullptr);
                }
                break;
            case plan::op_kind::batch_norm: {
                stat -= std::size_t(o.out_channels);
                const T* mean = t.statistics().data() + stat;
                const T* invstd = mean + tape<Bound, T>::statistic_count();
                exec::batch_norm_backward<T, R>(batch, x, dy, param(o.gamma), mean, invstd, dx, dparam(o.gamma), dparam(o.beta));
                break;
            }
            case plan::op_kind::instance_norm:
                exec::instance_norm_backward<T, R>(batch, x, dy, T(o.eps), o.gamma >= 0 ? param(o.gamma) : nullptr, dx,
                                                   o.gamma >= 0 ? dparam(o.gamma) : nullptr, o.beta >= 0 ? dparam(o.beta) : nullptr);
                break;
            case plan::op_kind::copy:
                exec::copy_center_crop_backward<T, R>(batch, dy, dx);
                break;
            case plan::op_kind::tile:
                exec::tile_channels_backward<T, R>(batch, dy, o.tile_offset, o.tile_period, dx);
                break;
            case plan::op_kind::softmax:
            case plan::op_kind::argmax:
                throw error("ctseg: backward: softmax and argmax are output operations; train the network on its logits");
        }
    }
}

}  // namespace ctseg
