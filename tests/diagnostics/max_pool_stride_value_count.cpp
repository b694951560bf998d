// Overlapping 3x3 pooling on a volume whose stride was written for 2D.
// expect: ctseg: max_pool: stride or padding has a different number of values than the input has spatial dimensions
// expect-path: net/seq[2]
// expect-facts: input<ctseg::shape<16, 33, 65, 65> | stride<2, 2>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"conv1", conv<16, kernel<3>, padding<1>>>, relu, max_pool<kernel<3>, stride<2, 2>>,
                named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 33, 65, 65>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
