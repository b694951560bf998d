// A 3D decoder whose up-sampling layer was copied from the 2D model:
// kernel<2, 2> on a (depth, height, width) volume.
// expect: ctseg: conv_transpose: the kernel has a different number of extents than the input has spatial dimensions
// expect-path: net/seq[2]/up
// expect-facts: input<ctseg::shape<32, 8, 16, 16> | kernel<2, 2> | input_rank<3>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"down", conv<32, kernel<2>, stride<2>>>, relu,
                named<"up", conv_transpose<16, kernel<2, 2>, stride<2>>>,
                named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 16, 32, 32>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
