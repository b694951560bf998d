// A context module of dilated 3x3 convolutions written with valid padding on a
// small 24x24 tile: by the dilation-8 layer the features are 10x10 while the
// dilated kernel spans 8*(3-1)+1 = 17 elements.
// expect: ctseg: conv: the dilated kernel (dilation*(kernel-1)+1) reaches beyond the padded input
// expect-path: net/seq[8]/context.3
// expect-facts: input<ctseg::shape<8, 10, 10> | kernel<3> | dilation<8> | padding_of<0>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"front", conv<8, kernel<3>, padding<1>>>, relu,
                indexed<"context", 0, conv<8, kernel<3>, dilation<1>>>, relu,
                indexed<"context", 1, conv<8, kernel<3>, dilation<2>>>, relu,
                indexed<"context", 2, conv<8, kernel<3>, dilation<4>>>, relu,
                indexed<"context", 3, conv<8, kernel<3>, dilation<8>>>, relu,
                named<"final", conv<2, kernel<1>>>>;

using model = bind<net, shape<3, 24, 24>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
