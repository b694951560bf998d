// A 2D decoder whose up-sampling factor was copied from an anisotropic 3D
// model: upsample_by<1, 2, 2> has three values for a two-dimensional input.
// expect: ctseg: conv_transpose: stride, dilation, padding or upsample_by has a different number of values than the input has spatial dimensions
// expect-path: net/seq[2]/up
// expect-facts: input<ctseg::shape<32, 32, 32> | stride<2> | upsample_by<1, 2, 2>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"down", conv<32, kernel<2>, stride<2>>>, relu,
                named<"up", conv_transpose<16, kernel<2>, stride<2>, upsample_by<1, 2, 2>>>,
                named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
