// A transposed convolution given the padding of the convolution it mirrors
// on a tiny 2x2 feature map: (2-1)*2 - 2*3 + (2-1) + 1 = -2, no output at all.
// expect: ctseg: conv_transpose: output_padding must be smaller than the stride or the dilation, and the output extent positive
// expect-path: net/seq[2]/up
// expect-facts: input<ctseg::shape<64, 2, 2> | kernel<2> | stride<2> | padding<3>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"down", conv<64, kernel<7>, stride<2>, padding<3>>>, relu,
                named<"up", conv_transpose<16, kernel<2>, stride<2>, padding<3>>>,
                named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 4, 4>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
