// Output padding meant to reach an odd extent, written as 2 with stride 2
// (PyTorch also requires output_padding < stride).
// expect: ctseg: conv_transpose: output_padding must be smaller than the stride or the dilation
// expect-path: net/seq[2]/up
// expect-facts: input<ctseg::shape<32, 32, 32> | kernel<3> | stride<2> | padding<1> | output_padding<2>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"down", conv<32, kernel<3>, stride<2>, padding<1>>>, relu,
                named<"up", conv_transpose<16, kernel<3>, stride<2>, padding<1>, output_padding<2>>>,
                named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
