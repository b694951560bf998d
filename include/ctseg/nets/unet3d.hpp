// 3D U-Net (Cicek et al. 2016): valid 3x3x3 convolutions, each followed by
// batch norm and ReLU; the first convolution of an analysis block has half the
// channels of the second; up-convolutions keep the channels; 1x1x1 classifier.
// Parameter names follow the reference PyTorch module (down.<i>.<k>, bottom.<k>,
// up.<j>, dec.<j>.<k>, head).
#pragma once
#include <cstddef>

#include "ctseg/spec.hpp"

namespace ctseg::nets {

template <std::size_t Mid, std::size_t Out, std::size_t Pad>
using conv_bn_block = sequential<conv<Mid, kernel<3>, padding<Pad>>, batch_norm<>, relu,
                                 conv<Out, kernel<3>, padding<Pad>>, batch_norm<>, relu>;

namespace detail {
template <std::size_t Level, std::size_t Depth, std::size_t Width, bool Padded, bool Bottom = (Level == Depth)>
struct unet3d_level {
    static constexpr std::size_t pad = Padded ? 1 : 0;
    static constexpr std::size_t w = Width << Level;
    using below = seq<max_pool<kernel<2>>, typename unet3d_level<Level + 1, Depth, Width, Padded>::type,
                      indexed<"up", Depth - 1 - Level, conv_transpose<4 * w, kernel<2>, stride<2>>>>;
    using skip = std::conditional_t<Padded, skip_concat<below>, skip_concat<below, crop_center>>;
    using type = seq<indexed<"down", Level, conv_bn_block<w, 2 * w, pad>>, skip,
                     indexed<"dec", Depth - 1 - Level, conv_bn_block<2 * w, 2 * w, pad>>>;
};
template <std::size_t Level, std::size_t Depth, std::size_t Width, bool Padded>
struct unet3d_level<Level, Depth, Width, Padded, true> {
    static constexpr std::size_t c = 2 * (Width << (Depth - 1));
    using type = named<"bottom", conv_bn_block<c, 2 * c, Padded ? 1 : 0>>;
};
}  // namespace detail

template <std::size_t Classes, std::size_t Width = 32, std::size_t Depth = 3, bool Padded = false>
using unet3d = seq<typename detail::unet3d_level<0, Depth, Width, Padded>::type, named<"head", conv<Classes, kernel<1>>>>;

}  // namespace ctseg::nets
