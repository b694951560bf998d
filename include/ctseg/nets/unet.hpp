// U-Net (Ronneberger, Fischer, Brox 2015). The paper's form uses valid 3x3
// convolutions and centre-crops the encoder features before concatenating them
// with the up-sampled decoder features; the padded form keeps extents.
// Parameter names follow the reference PyTorch module: down.<i>.conv1,
// bottom.conv2, up.<j>, dec.<j>.conv1, head.
#pragma once
#include <cstddef>

#include "ctseg/spec.hpp"

namespace ctseg::nets {

template <std::size_t Width, std::size_t Pad>
using double_conv = seq<named<"conv1", conv<Width, kernel<3>, padding<Pad>>>, relu,
                        named<"conv2", conv<Width, kernel<3>, padding<Pad>>>, relu>;

namespace detail {
template <std::size_t Level, std::size_t Depth, std::size_t Width, bool Padded, bool Bottom = (Level == Depth)>
struct unet_level {
    static constexpr std::size_t pad = Padded ? 1 : 0;
    static constexpr std::size_t w = Width << Level;
    using below = seq<max_pool<kernel<2>>, typename unet_level<Level + 1, Depth, Width, Padded>::type,
                      indexed<"up", Depth - 1 - Level, conv_transpose<w, kernel<2>, stride<2>>>>;
    using skip = std::conditional_t<Padded, skip_concat<below>, skip_concat<below, crop_center>>;
    using type = seq<indexed<"down", Level, double_conv<w, pad>>, skip, indexed<"dec", Depth - 1 - Level, double_conv<w, pad>>>;
};
template <std::size_t Level, std::size_t Depth, std::size_t Width, bool Padded>
struct unet_level<Level, Depth, Width, Padded, true> {
    using type = named<"bottom", double_conv<(Width << Depth), Padded ? 1 : 0>>;
};
}  // namespace detail

// U-Net with `Depth` poolings, `Width` features at the first level (doubling at
// each level) and a 1x1 classifier to `Classes` maps. The input channels come
// from the shape the network is bound to.
template <std::size_t Classes, std::size_t Width = 64, std::size_t Depth = 4, bool Padded = false>
using unet = seq<typename detail::unet_level<0, Depth, Width, Padded>::type, named<"head", conv<Classes, kernel<1>>>>;

}  // namespace ctseg::nets
