// An option written as if it were a layer: padding<1> between two convolutions
// instead of inside them.
// expect: ctseg: this type is not a ctseg layer or topology
// expect-path: net/seq[1]
// expect-facts: ctseg::padding<1>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"conv1", conv<16, kernel<3>>>, padding<1>, relu, named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
