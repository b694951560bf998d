// Positive control: the corrected forms of the mistakes in this directory, and
// the seed networks, bound with the same headers and flags. This must compile;
// if it does not, the harness (compiler, flags, include path) is broken, not a
// diagnostic.
// expect: compiles
#include <cstddef>
#include <type_traits>

#include "ctseg/nets/context_net.hpp"
#include "ctseg/nets/unet.hpp"
#include "ctseg/nets/unet3d.hpp"
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

template <std::size_t Width>
using double_conv = seq<named<"conv1", conv<Width, kernel<3>>>, relu, named<"conv2", conv<Width, kernel<3>>>, relu>;

// A valid-convolution U-Net level with crop_center (cf. concat_valid_unet_without_crop.cpp).
using unet_level = seq<named<"down", double_conv<64>>,
                       skip_concat<seq<max_pool<kernel<2>>, named<"bottom", double_conv<128>>,
                                       named<"up", conv_transpose<64, kernel<2>, stride<2>>>>,
                                   crop_center>,
                       named<"dec", double_conv<64>>, named<"head", conv<2, kernel<1>>>>;
using unet_level_model = bind<unet_level, shape<1, 572, 572>>;
static_assert(std::is_same_v<unet_level_model::output_shape, shape<2, 556, 556>>);

// A residual block that widens its features, with a 1x1 projection shortcut
// (cf. add_residual_channels.cpp), and one with padded convolutions (cf. add_residual_spatial.cpp).
using resnet = seq<named<"stem", conv<32, kernel<3>, padding<1>>>, relu,
                   named<"block1", residual<seq<conv<64, kernel<3>, padding<1>>, batch_norm<>, relu, conv<64, kernel<3>, padding<1>>>,
                                            conv<64, kernel<1>>>>,
                   named<"block2", residual<seq<conv<64, kernel<3>, padding<1>>, relu, conv<64, kernel<3>, padding<1>>>>>,
                   relu, named<"head", conv<2, kernel<1>>>>;
using resnet_model = bind<resnet, shape<1, 64, 64>>;
static_assert(std::is_same_v<resnet_model::output_shape, shape<2, 64, 64>>);

// The padded U-Net on a tile its three poolings divide (cf. max_pool_odd_extent.cpp).
using padded_unet = bind<nets::unet<2, 8, 3, true>, shape<1, 96, 96>>;
static_assert(std::is_same_v<padded_unet::output_shape, shape<2, 96, 96>>);

// x3 up-sampling with a kernel and stride of 3, and x2 with match_skip inside a skip
// connection (cf. conv_transpose_upsample_unreachable.cpp, conv_transpose_match_skip_unreachable.cpp).
using upsampling = seq<conv<16, kernel<3>, padding<1>>,
                       skip_concat<seq<conv<32, kernel<2>, stride<2>>, relu, conv<64, kernel<2>, stride<2>>,
                                       conv_transpose<32, kernel<2>, stride<2>>, conv_transpose<16, kernel<2>, stride<2>, match_skip>>>,
                       max_pool<kernel<3>>, conv_transpose<16, kernel<3>, stride<3>, upsample_by<3>>, conv<2, kernel<1>>>;
using upsampling_model = bind<upsampling, shape<1, 48, 48>>;
static_assert(std::is_same_v<upsampling_model::output_shape, shape<2, 48, 48>>);

// Dilated convolutions padded by their dilation (cf. conv_dilation_beyond_input.cpp).
using context = bind<nets::context_net<2, 8>, shape<3, 24, 24>>;
static_assert(std::is_same_v<context::output_shape, shape<2, 24, 24>>);

// An anisotropic volume: per-dimension kernel, padding and stride (cf. conv_2d_kernel_on_3d_input.cpp,
// conv_stride_value_count.cpp, max_pool_window_rank.cpp).
using anisotropic = seq<conv<16, kernel<1, 3, 3>, padding<0, 1, 1>>, relu, conv<32, kernel<1, 2, 2>, stride<1, 2, 2>>, relu,
                        max_pool<kernel<1, 2, 2>>, conv_transpose<16, kernel<1, 4, 4>, stride<1, 4, 4>, upsample_by<1, 4, 4>>,
                        conv<2, kernel<1>>>;
using anisotropic_model = bind<anisotropic, shape<1, 24, 128, 128>>;
static_assert(std::is_same_v<anisotropic_model::output_shape, shape<2, 24, 128, 128>>);

// A V-Net style shortcut slicing within range (cf. slice_channels_out_of_range.cpp).
using vnet_stage = seq<concat<conv<16, kernel<3>, padding<1>>, conv<16, kernel<3>, padding<1>>>,
                       residual<seq<conv<32, kernel<5>, padding<2>>, prelu>, seq<slice_channels<16, 32>, repeat_channels<2>>>,
                       leaky_relu<1, 10>, conv<2, kernel<1>>>;
using vnet_stage_model = bind<vnet_stage, shape<1, 32, 32>>;
static_assert(std::is_same_v<vnet_stage_model::output_shape, shape<2, 32, 32>>);

// Seed networks.
using paper_unet = bind<nets::unet<2>, shape<1, 572, 572>>;
static_assert(std::is_same_v<paper_unet::output_shape, shape<2, 388, 388>>);
using unet3d = bind<nets::unet3d<3, 4, 2>, shape<1, 44, 44, 44>>;
static_assert(unet3d::output_shape::rank == 3);

constexpr long parameters = unet_level_model::parameter_count + resnet_model::parameter_count + padded_unet::parameter_count +
                            upsampling_model::parameter_count + context::parameter_count + anisotropic_model::parameter_count +
                            vnet_stage_model::parameter_count + paper_unet::parameter_count + unet3d::parameter_count;
constexpr long workspace = unet_level_model::workspace_elements + resnet_model::workspace_elements + padded_unet::workspace_elements +
                           upsampling_model::workspace_elements + context::workspace_elements + anisotropic_model::workspace_elements +
                           vnet_stage_model::workspace_elements + paper_unet::workspace_elements + unet3d::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
