// A pooling stride computed from the down-sampling factor of the stage
// (stride<Factor / 2>); with Factor = 1 it is stride<0>.
// expect: ctseg: max_pool: window and stride values must be at least 1
// expect-path: net/seq[2]
// expect-facts: kernel<2> | stride<0>
#include <cstddef>

#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

template <std::size_t Factor>
using pool = max_pool<kernel<2>, stride<Factor / 2>>;

using net = seq<named<"conv1", conv<16, kernel<3>, padding<1>>>, relu, pool<1>, named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
