// Multi-scale context aggregation by dilated convolutions (Yu & Koltun 2016):
// the basic context module, 3x3 convolutions with dilations 1, 1, 2, 4, 8, 16, 1
// (padding = dilation, so the resolution never drops), ReLU after each, then a
// 1x1 convolution; here behind a small two-convolution front end. Parameter
// names follow the reference PyTorch module (front.<k>, context.<i>, final).
#pragma once
#include <array>
#include <cstddef>
#include <utility>

#include "ctseg/spec.hpp"

namespace ctseg::nets {

inline constexpr std::array<std::size_t, 7> context_dilations{1, 1, 2, 4, 8, 16, 1};

namespace detail {
template <std::size_t Channels, class Indices>
struct context_layers;
template <std::size_t Channels, std::size_t... I>
struct context_layers<Channels, std::index_sequence<I...>> {
    using type = seq<seq<indexed<"context", I, conv<Channels, kernel<3>, dilation<context_dilations[I]>, padding<context_dilations[I]>>>,
                         relu>...>;
};
}  // namespace detail

// The seven dilated layers of the basic context module (receptive field 67).
template <std::size_t Channels>
using context_module = typename detail::context_layers<Channels, std::make_index_sequence<context_dilations.size()>>::type;

template <std::size_t Classes = 21, std::size_t FrontWidth = 64>
using context_net = seq<named<"front", sequential<conv<FrontWidth, kernel<3>, padding<1>>, relu, conv<Classes, kernel<3>, padding<1>>, relu>>,
                        context_module<Classes>, named<"final", conv<Classes, kernel<1>>>>;

}  // namespace ctseg::nets
