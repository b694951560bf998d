// 2D pooling reused on a volume: max_pool<kernel<2, 2>> on (depth, height,
// width). kernel<2> pools 2x2x2; kernel<1, 2, 2> pools in-plane only.
// expect: ctseg: max_pool: the window has a different number of extents than the input has spatial dimensions
// expect-path: net/seq[2]
// expect-facts: input<ctseg::shape<16, 32, 64, 64> | kernel<2, 2> | input_rank<3>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"conv1", conv<16, kernel<3>, padding<1>>>, relu, max_pool<kernel<2, 2>>,
                named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 32, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
