// docs/dsl.md, "Binding and compile-time constants": one network type, bound
// in 2D and in 3D; every property of the bound network is a constant.
#include "ctseg/nets/unet.hpp"
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

template <std::size_t W>
using block = seq<conv<W, kernel<3>, padding<1>>, relu>;

// A one-level U-Net: no extent is written anywhere, so the rank comes from the shape.
using mini = seq<block<8>,
                 skip_concat<seq<max_pool<kernel<2>>, block<16>, conv_transpose<8, kernel<2>, stride<2>>>>,
                 block<8>,
                 conv<2, kernel<1>>>;

using mini_2d = bind<mini, shape<1, 64, 64>>;      // C, H, W
using mini_3d = bind<mini, shape<1, 16, 64, 64>>;  // C, D, H, W

static_assert(mini_2d::rank == 2 && mini_3d::rank == 3);
static_assert(std::is_same_v<mini_2d::output_shape, shape<2, 64, 64>>);
static_assert(std::is_same_v<mini_3d::output_shape, shape<2, 16, 64, 64>>);

// Trainable parameters: 3x3 kernels have 9 taps in 2D and 27 in 3D.
//   8*1*9+8 + 16*8*9+16 + 16*8*2*2+8 + 8*16*9+8 + 2*8+2
static_assert(mini_2d::parameter_count == 2946);
static_assert(mini_3d::parameter_count == 8210);

// FLOPs per batch element: 2 per multiply-add of a convolution, plus the
// element-wise work of the other layers (one per element for ReLU, one per
// window element for pooling).
static_assert(mini_2d::flops == 13'680'640);

// Receptive field of one output element, per dimension.
static_assert(mini_2d::receptive_field == std::array<long, 2>{10, 10});
static_assert(mini_3d::receptive_field == std::array<long, 3>{10, 10, 10});

// Intermediate storage per batch element: the 16-channel concatenation (live
// from the first convolution to the decoder block) plus the largest tensor live
// beside it, the decoder block's 8 x 64 x 64 output.
static_assert(mini_2d::workspace_bytes<float> == (16 + 8) * 64 * 64 * 4);
static_assert(mini_2d::workspace_bytes<double> == 2 * mini_2d::workspace_bytes<float>);

// 11 operations lowered; after fusion 6 kernels run: three conv+ReLU, the
// pooling, the transposed convolution and the classifier (the concatenation
// is done in place: its producers write into their channel slices).
static_assert(mini_2d::lowered.n_ops == 11 && mini_2d::live_ops == 6);

// The passes can be switched off, e.g. to compare against the unfused plan:
// then all 11 operations run.
using mini_unfused = bind<mini, shape<1, 64, 64>,
                          plan::plan_options{.fold_norms = false, .fuse_epilogues = false, .concat_in_place = false}>;
static_assert(mini_unfused::live_ops == 11);
static_assert(std::is_same_v<mini_unfused::output_shape, mini_2d::output_shape>);

// The seed networks are templates of the same kind.
static_assert(std::is_same_v<bind<nets::unet<2, 8, 3, true>, shape<1, 64, 80>>::output_shape, shape<2, 64, 80>>);
static_assert(std::is_same_v<bind<nets::unet<2, 8, 3, true>, shape<1, 32, 64, 80>>::output_shape, shape<2, 32, 64, 80>>);

// Constants are usable wherever a constant is: array bounds, template arguments.
float logits[mini_2d::output_shape::size];

int main() {}
