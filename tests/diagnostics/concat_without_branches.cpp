// A multi-scale head whose list of branches comes out empty: concat<Heads...>
// with no heads, only the crop policy.
// expect: ctseg: concat<> needs at least one branch
// expect-path: net/seq[1]
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

template <class... Heads>
using multi_scale = concat<crop_center, Heads...>;

using net = seq<named<"conv1", conv<16, kernel<3>, padding<1>>>, multi_scale<>, named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
