// A block written for 2D slices reused on a volume: kernel<3, 3> on a
// (depth, height, width) input. kernel<3> would mean 3x3x3 here.
// expect: ctseg: conv: the kernel has a different number of extents than the input has spatial dimensions
// expect-path: net/seq[0]/conv1
// expect-facts: input<ctseg::shape<1, 32, 64, 64> | kernel<3, 3> | input_rank<3>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"conv1", conv<16, kernel<3, 3>, padding<1>>>, batch_norm<>, relu, named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 32, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
