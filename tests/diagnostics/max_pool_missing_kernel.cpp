// A pooling layer given a stride but no window.
// expect: ctseg: max_pool: no kernel<...> option given
// expect-path: net/seq[2]
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"conv1", conv<16, kernel<3>, padding<1>>>, relu, max_pool<stride<2>>,
                named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
