// A residual written as add<Body>, as if add summed the body with its input;
// the shortcut must be a branch of its own: add<Body, identity> (residual<Body>).
// expect: ctseg: add<> needs at least two branches
// expect-path: net/seq[1]
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"stem", conv<16, kernel<3>, padding<1>>>,
                add<seq<named<"conv1", conv<16, kernel<3>, padding<1>>>, relu, named<"conv2", conv<16, kernel<3>, padding<1>>>>>,
                relu, named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
