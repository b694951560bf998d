// Geometry descriptors shared by every kernel. The exec layer knows shapes and
// pointers only: nothing here refers to the DSL.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

namespace ctseg::exec {

using index_t = std::ptrdiff_t;

// A batch of feature maps in NC<spatial> order. Channels of one sample are
// contiguous planes; samples are `batch_stride` elements apart, which lets a
// producer write straight into a channel slice of a wider (concatenated) buffer.
template <class T, std::size_t R>
struct tensor_ref {
    T* data = nullptr;
    index_t channels = 0;
    std::array<index_t, R> extent{};
    index_t batch_stride = 0;  // elements between samples (>= channels * plane())

    constexpr index_t plane() const {
        index_t p = 1;
        for (auto e : extent) p *= e;
        return p;
    }
    constexpr T* channel(index_t n, index_t c) const { return data + n * batch_stride + c * plane(); }
};

enum class activation : std::uint8_t { none, relu, leaky_relu, prelu };

// What a kernel applies to each output element after accumulation, in this order:
//   y = act(acc + bias[c]) + residual[n, residual_offset + c % residual_channels]
// `residual` repeating with a period of `residual_channels` expresses V-Net's
// shortcut that repeats its input over the channels.
template <class T, std::size_t R>
struct epilogue {
    const T* bias = nullptr;              // per output channel, or null
    activation act = activation::none;
    T slope = T(0);                        // leaky_relu negative slope
    const T* prelu_slope = nullptr;        // per output channel (prelu)
    const T* residual = nullptr;           // base of the residual tensor, or null
    index_t residual_batch_stride = 0;
    index_t residual_channels = 0;         // period of the repetition over channels
    index_t residual_offset = 0;           // first residual channel used
    // residual spatial layout equals the output's (same extent, contiguous planes)
};

template <std::size_t R>
struct conv_geometry {
    index_t in_channels = 0, out_channels = 0;
    std::array<index_t, R> kernel{}, stride{}, pad{}, dilation{};
};

// Transposed convolution: out = (in - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_pad + 1
template <std::size_t R>
struct conv_transpose_geometry {
    index_t in_channels = 0, out_channels = 0;
    std::array<index_t, R> kernel{}, stride{}, pad{}, dilation{}, output_pad{};
};

template <std::size_t R>
struct pool_geometry {
    std::array<index_t, R> kernel{}, stride{}, pad{};
};

}  // namespace ctseg::exec
