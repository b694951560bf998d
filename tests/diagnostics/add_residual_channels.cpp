// A ResNet-style block whose body widens the features from 32 to 64 channels
// while the shortcut is still the identity (32 channels).
// expect: ctseg: add (residual or fusion): branches differ in channels
// expect-path: net/seq[1]/block1
// expect-facts: branch<0, ctseg::shape<64, 64, 64> | branch<1, ctseg::shape<32, 64, 64>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"stem", seq<conv<32, kernel<3>, padding<1>>, batch_norm<>, relu>>,
                named<"block1", residual<seq<named<"conv1", conv<64, kernel<3>, padding<1>>>, batch_norm<>, relu,
                                             named<"conv2", conv<64, kernel<3>, padding<1>>>, batch_norm<>>>>,
                relu, named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
