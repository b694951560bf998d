// The layer vocabulary. These are plain tag types: what they compute is the
// business of plan/ (shapes, checks) and exec/ (kernels).
#pragma once
#include <cstddef>

#include "ctseg/spec/options.hpp"

namespace ctseg {

// Convolution with OutChannels filters. Options: kernel<...> (required),
// stride<...>, dilation<...>, padding<...> | same | valid (default valid), no_bias.
template <std::size_t OutChannels, class... Options>
struct conv {
    static constexpr std::size_t out_channels = OutChannels;
};

// Transposed convolution. Options: kernel<...> (required), stride<...>,
// dilation<...>, and either padding<...> with output_padding<...>, or one of
// upsample_by<...> / match_skip, from which both paddings are derived; no_bias.
template <std::size_t OutChannels, class... Options>
struct conv_transpose {
    static constexpr std::size_t out_channels = OutChannels;
};

// Max pooling. Options: kernel<...> (required), stride<...> (default: the
// kernel), padding<...>. Pooling that would drop input elements is an error.
template <class... Options>
struct max_pool {};

struct relu {};
// Leaky ReLU with negative slope Num / Den (PyTorch's default is 1/100).
template <std::size_t Num = 1, std::size_t Den = 100>
struct leaky_relu {};
// PReLU with one learned slope per channel (PyTorch's PReLU(num_parameters=C)).
struct prelu {};

// Batch normalisation (PyTorch BatchNorm{1,2,3}d with affine parameters and
// running statistics). Options: eps<Num, Den> (default 1e-5).
template <class... Options>
struct batch_norm {};
// Instance normalisation (PyTorch InstanceNorm defaults: no affine, no running
// statistics). Options: eps<Num, Den>, affine.
template <class... Options>
struct instance_norm {};

// Output operations over the channels.
struct softmax {};
struct argmax {};

// Shortcut helpers: repeat the channels K times (torch.Tensor.repeat over dim 1),
// or keep channels [Begin, End).
template <std::size_t K>
struct repeat_channels {};
template <std::size_t Begin, std::size_t End>
struct slice_channels {};

struct identity {};

}  // namespace ctseg
