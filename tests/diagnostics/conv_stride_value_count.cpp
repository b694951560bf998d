// An anisotropic volume (thick slices) down-sampled in-plane only: the stride
// is written for height and width, stride<2, 2>, but a 3D input needs one value
// per dimension, stride<1, 2, 2> (or a single value for all three).
// expect: ctseg: conv: stride, dilation or padding has a different number of values than the input has spatial dimensions
// expect-path: net/seq[2]/down
// expect-facts: input<ctseg::shape<16, 24, 128, 128> | stride<2, 2>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"conv1", conv<16, kernel<1, 3, 3>, padding<0, 1, 1>>>, relu,
                named<"down", conv<32, kernel<1, 2, 2>, stride<2, 2>>>, relu,
                named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 24, 128, 128>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
