// docs/dsl.md, "Branches": concat / skip_concat (with crop_center) and
// add / residual with channel shortcuts.
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

template <class Layer, class In>
using out_of = typename bind<Layer, In>::output_shape;

// concat: every branch sees the input; outputs are stacked along the channels.
using inception = concat<conv<8, kernel<1>>, conv<8, kernel<3>, padding<1>>, max_pool<kernel<3>, stride<1>, padding<1>>>;
static_assert(std::is_same_v<out_of<inception, shape<4, 20, 20>>, shape<20, 20, 20>>);  // 8 + 8 + 4

// skip_concat<Body> = concat<identity, Body>: [features, Body(features)].
// With valid convolutions Body shrinks the tile; crop_center cuts the
// features to Body's extent, centred (the extra element of an odd surplus is
// dropped at the high end).
using body = seq<max_pool<kernel<2>>, conv<16, kernel<3>>, conv<16, kernel<3>>, conv_transpose<8, kernel<2>, stride<2>>>;
static_assert(std::is_same_v<out_of<body, shape<8, 64, 64>>, shape<8, 56, 56>>);
static_assert(std::is_same_v<out_of<skip_concat<body, crop_center>, shape<8, 64, 64>>, shape<16, 56, 56>>);
// The same with explicit concat: the policy comes first.
static_assert(std::is_same_v<out_of<concat<crop_center, identity, body>, shape<8, 64, 64>>, shape<16, 56, 56>>);

// add: branches must agree in channels and extents; the result has that shape.
using fused = add<conv<4, kernel<3>, padding<1>>, conv<4, kernel<1>>>;
static_assert(std::is_same_v<out_of<fused, shape<2, 10, 10>>, shape<4, 10, 10>>);

// residual<Body, Shortcut = identity> = add<Body, Shortcut>.
using res = residual<seq<conv<8, kernel<3>, padding<1>>, relu, conv<8, kernel<3>, padding<1>>>>;
static_assert(std::is_same_v<out_of<res, shape<8, 16, 16>>, shape<8, 16, 16>>);

// A narrower input widened by repetition (V-Net's first stage: 1 channel -> 16):
// shortcut channel c is input channel c % 1.
using widen = residual<seq<conv<16, kernel<5>, padding<2>>, prelu>, repeat_channels<16>>;
static_assert(std::is_same_v<out_of<widen, shape<1, 8, 8, 8>>, shape<16, 8, 8, 8>>);

// A slice of the channels, repeated: channels [4, 8) twice, as V-Net's decoder
// shortcut takes the up-sampled half of [skip, up-sampled].
using half = residual<conv<8, kernel<3>, padding<1>>, seq<slice_channels<4, 8>, repeat_channels<2>>>;
static_assert(std::is_same_v<out_of<half, shape<8, 12, 12>>, shape<8, 12, 12>>);

// Output operations over the channels.
static_assert(std::is_same_v<out_of<seq<conv<3, kernel<1>>, softmax>, shape<8, 12, 12>>, shape<3, 12, 12>>);
static_assert(std::is_same_v<out_of<seq<conv<3, kernel<1>>, argmax>, shape<8, 12, 12>>, shape<1, 12, 12>>);

int main() {}
