// FCN-8s (Long, Shelhamer, Darrell 2015) on a VGG-style backbone: five stages of
// 3x3 convolutions and 2x2 max pooling, fc6/fc7 as convolutions, 1x1 score
// layers, and transposed convolutions whose padding is derived at compile time
// so that each fusion adds maps of equal size (x2 to pool4, x2 to pool3, then x8).
// Parameter names follow the reference PyTorch module (stages.<i>.<k>, fc6,
// fc7, score_fr, score_pool4, score_pool3, upscore2, upscore_pool4, upscore8).
#pragma once
#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "ctseg/spec.hpp"

namespace ctseg::nets {

// Per-stage values as a template argument, e.g. fcn8s<5, per_stage(8, 8, 16, 16, 16), ...>.
template <class... V>
constexpr std::array<std::size_t, sizeof...(V)> per_stage(V... v) {
    return {std::size_t(v)...};
}

namespace detail {
template <std::size_t Width, class Indices>
struct vgg_stage;
template <std::size_t Width, std::size_t... J>
struct vgg_stage<Width, std::index_sequence<J...>> {
    using type = sequential<std::conditional_t<J % 2 == 0, conv<Width, kernel<3>, padding<1>>, relu>..., max_pool<kernel<2>>>;
};
template <std::size_t I, auto Widths, auto Convs>
using stage = indexed<"stages", I, typename vgg_stage<Widths[I], std::make_index_sequence<2 * Convs[I]>>::type>;
}  // namespace detail

template <std::size_t Classes = 21, std::array<std::size_t, 5> Widths = std::array<std::size_t, 5>{64, 128, 256, 512, 512},
          std::array<std::size_t, 5> Convs = std::array<std::size_t, 5>{2, 2, 3, 3, 3}, std::size_t FC = 4096, std::size_t FC6Kernel = 7>
using fcn8s = seq<
    detail::stage<0, Widths, Convs>, detail::stage<1, Widths, Convs>, detail::stage<2, Widths, Convs>,
    add<seq<detail::stage<3, Widths, Convs>,
            add<seq<detail::stage<4, Widths, Convs>,
                    named<"fc6", conv<FC, kernel<FC6Kernel>, padding<FC6Kernel / 2>>>, relu,
                    named<"fc7", conv<FC, kernel<1>>>, relu,
                    named<"score_fr", conv<Classes, kernel<1>>>,
                    named<"upscore2", conv_transpose<Classes, kernel<4>, stride<2>, match_skip, no_bias>>>,
                named<"score_pool4", conv<Classes, kernel<1>>>>,
            named<"upscore_pool4", conv_transpose<Classes, kernel<4>, stride<2>, match_skip, no_bias>>>,
        named<"score_pool3", conv<Classes, kernel<1>>>>,
    named<"upscore8", conv_transpose<Classes, kernel<16>, stride<8>, upsample_by<8>, no_bias>>>;

}  // namespace ctseg::nets
