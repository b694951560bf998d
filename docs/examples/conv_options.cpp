// docs/dsl.md, "Convolution options": extents follow PyTorch's formula
//   out = floor((in + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

template <class Layer, class In>
using out_of = typename bind<Layer, In>::output_shape;

// valid (the default): no padding, 3x3 takes one element off each side.
static_assert(std::is_same_v<out_of<conv<8, kernel<3>>, shape<1, 32, 32>>, shape<8, 30, 30>>);
static_assert(std::is_same_v<out_of<conv<8, kernel<3>, valid>, shape<1, 32, 32>>, shape<8, 30, 30>>);
// same: (dilation * (kernel - 1)) / 2 per side, which keeps odd kernels at stride 1.
static_assert(std::is_same_v<out_of<conv<8, kernel<5>, same>, shape<1, 32, 32>>, shape<8, 32, 32>>);
static_assert(std::is_same_v<out_of<conv<8, kernel<3>, dilation<4>, same>, shape<1, 32, 32>>, shape<8, 32, 32>>);
// explicit padding and stride: (32 + 2 - 3) / 2 + 1 = 16.
static_assert(std::is_same_v<out_of<conv<8, kernel<3>, stride<2>, padding<1>>, shape<1, 32, 32>>, shape<8, 16, 16>>);
// one value per dimension, outermost first: a 1x3x3 kernel on a D x H x W volume.
static_assert(std::is_same_v<out_of<conv<8, kernel<1, 3, 3>, padding<0, 1, 1>>, shape<1, 16, 32, 32>>, shape<8, 16, 32, 32>>);
// no_bias drops the bias parameter.
static_assert(bind<conv<8, kernel<3>>, shape<4, 32, 32>>::parameter_count == 8 * 4 * 9 + 8);
static_assert(bind<conv<8, kernel<3>, no_bias>, shape<4, 32, 32>>::parameter_count == 8 * 4 * 9);

// max_pool: the stride defaults to the kernel; the window must tile the input.
static_assert(std::is_same_v<out_of<max_pool<kernel<2>>, shape<4, 32, 48>>, shape<4, 16, 24>>);
static_assert(std::is_same_v<out_of<max_pool<kernel<3>, stride<2>, padding<1>>, shape<4, 33, 33>>, shape<4, 17, 17>>);
static_assert(std::is_same_v<out_of<max_pool<kernel<1, 2, 2>>, shape<4, 5, 32, 48>>, shape<4, 5, 16, 24>>);

int main() {}
