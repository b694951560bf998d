// docs/dsl.md, "Transposed convolution": explicit paddings, and paddings
// solved at compile time from the extent wanted.
//   out = (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

// Explicit, as in PyTorch: ConvTranspose2d(C, 8, 3, stride=2, padding=1, output_padding=1).
using explicit_up = bind<conv_transpose<8, kernel<3>, stride<2>, padding<1>, output_padding<1>>, shape<4, 16, 16>>;
static_assert(std::is_same_v<explicit_up::output_shape, shape<8, 32, 32>>);  // 15*2 - 2 + 2 + 1 + 1

// Derived: the same layer asked for twice the input.
using doubled = bind<conv_transpose<8, kernel<3>, stride<2>, upsample_by<2>>, shape<4, 16, 16>>;
static_assert(std::is_same_v<doubled::output_shape, shape<8, 32, 32>>);
// The paddings the plan solved for (plan internals, shown for illustration).
static_assert(doubled::lowered.ops[0].pad[0] == 1 && doubled::lowered.ops[0].output_pad[0] == 1);

// FCN's x8 up-sampling: kernel 16, stride 8 -> padding 4, output padding 0.
using x8 = bind<conv_transpose<5, kernel<16>, stride<8>, upsample_by<8>, no_bias>, shape<5, 8, 12>>;
static_assert(std::is_same_v<x8::output_shape, shape<5, 64, 96>>);
static_assert(x8::lowered.ops[0].pad[0] == 4 && x8::lowered.ops[0].output_pad[0] == 0);

// match_skip: inside a concat or add, reach the extent of the combinator's input.
// The skip is 27 wide; pooling by 2 (with padding 1) gives 14, and the
// transposed convolution must come back to 27, not 28.
using unet_step = skip_concat<seq<max_pool<kernel<3>, stride<2>, padding<1>>, conv<8, kernel<3>, padding<1>>,
                                  conv_transpose<4, kernel<3>, stride<2>, match_skip>>>;
using odd = bind<unet_step, shape<4, 27, 27>>;
static_assert(std::is_same_v<odd::output_shape, shape<8, 27, 27>>);  // [4 skip channels, 4 up-sampled]

// Per-dimension factors: up-sample H and W only.
using planar = bind<conv_transpose<8, kernel<1, 2, 2>, stride<1, 2, 2>, upsample_by<1, 2, 2>>, shape<4, 5, 16, 16>>;
static_assert(std::is_same_v<planar::output_shape, shape<8, 5, 32, 32>>);

int main() {}
