// A convolution written with its padding but without its kernel size.
// expect: ctseg: conv: no kernel<...> option given
// expect-path: net/seq[1]/conv2
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"conv1", conv<32, kernel<3>, padding<1>>>, named<"conv2", conv<32, padding<1>>>, relu,
                named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
