// V-Net (Milletari, Navab, Ahmadi 2016): stages of 5x5x5 convolutions with PReLU
// that learn a residual (the stage input is added to its output; the first
// stage repeats its single input channel), down-sampling by 2x2x2 stride-2
// convolutions, up-sampling by stride-2 transposed convolutions, decoder stages
// on [skip, up-sampled] whose residual is the up-sampled features repeated.
// Parameter names follow the reference PyTorch module (enc.<i>.convs.<k>,
// enc.<i>.acts.<k>, down.<i>.0/1, bottom, up.<j>.0/1, dec.<j>, head).
#pragma once
#include <array>
#include <cstddef>
#include <utility>

#include "ctseg/spec.hpp"

namespace ctseg::nets {

namespace detail {
template <std::size_t Channels, class Indices>
struct vstage_body;
template <std::size_t Channels, std::size_t... I>
struct vstage_body<Channels, std::index_sequence<I...>> {
    using type = seq<seq<indexed<"convs", I, conv<Channels, kernel<5>, padding<2>>>, indexed<"acts", I, prelu>>...>;
};
}  // namespace detail

// N convolutions with PReLU at `Channels` features, plus the shortcut.
template <std::size_t Channels, std::size_t N, class Shortcut = identity>
using vstage = residual<typename detail::vstage_body<Channels, std::make_index_sequence<N>>::type, Shortcut>;

namespace detail {
template <std::size_t Level, std::size_t Width, auto Down, std::size_t Bottom, auto Up, bool Last = (Level == Down.size())>
struct vnet_level {
    static constexpr std::size_t w = Width << Level;
    static constexpr std::size_t j = Down.size() - 1 - Level;  // decoder index
    using shortcut = std::conditional_t<Level == 0, repeat_channels<Width>, identity>;
    using below = seq<indexed<"down", Level, sequential<conv<2 * w, kernel<2>, stride<2>>, prelu>>,
                      typename vnet_level<Level + 1, Width, Down, Bottom, Up>::type,
                      indexed<"up", j, sequential<conv_transpose<w, kernel<2>, stride<2>>, prelu>>>;
    using type = seq<indexed<"enc", Level, vstage<w, Down[Level], shortcut>>, skip_concat<below>,
                     indexed<"dec", j, vstage<2 * w, Up[j], seq<slice_channels<w, 2 * w>, repeat_channels<2>>>>>;
};
template <std::size_t Level, std::size_t Width, auto Down, std::size_t Bottom, auto Up>
struct vnet_level<Level, Width, Down, Bottom, Up, true> {
    using type = named<"bottom", vstage<(Width << Level), Bottom>>;
};
}  // namespace detail

// Down: convolutions per encoder stage; Up: per decoder stage (deepest first).
template <std::size_t Classes, std::size_t Width = 16, std::array<std::size_t, 4> Down = std::array<std::size_t, 4>{1, 2, 3, 3}, std::size_t Bottom = 3,
          std::array<std::size_t, 4> Up = std::array<std::size_t, 4>{3, 3, 2, 1}>
using vnet = seq<typename detail::vnet_level<0, Width, Down, Bottom, Up>::type, named<"head", conv<Classes, kernel<1>>>>;

}  // namespace ctseg::nets
