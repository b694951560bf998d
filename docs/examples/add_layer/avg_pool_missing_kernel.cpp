// An average pooling whose window was left out.
// expect: ctseg: avg_pool: no kernel<...> option given
// expect-path: net/seq[2]
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<conv<8, kernel<3>, padding<1>>, relu, avg_pool<stride<2>>, conv<2, kernel<1>>>;

using model = bind<net, shape<1, 32, 32>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
