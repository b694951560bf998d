// A residual block whose convolutions forgot padding<1>: the body shrinks the
// 64x64 features to 60x60, so they cannot be added to the identity shortcut.
// expect: ctseg: add (residual or fusion): branches differ in spatial size
// expect-path: net/seq[1]/block1
// expect-facts: branch<0, ctseg::shape<32, 60, 60> | branch<1, ctseg::shape<32, 64, 64>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"stem", seq<conv<32, kernel<3>, padding<1>>, relu>>,
                named<"block1", residual<seq<named<"conv1", conv<32, kernel<3>>>, relu, named<"conv2", conv<32, kernel<3>>>>>>,
                relu, named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
