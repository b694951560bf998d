// Two layers given the same name: both would be saved as "enc.conv.weight",
// and a state_dict could not tell them apart.
// expect: ctseg: two parameters have the same state_dict key
// expect-path: enc.conv.weight
// expect-facts:
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"enc", seq<named<"conv", conv<4, kernel<3>>>, relu, named<"conv", conv<4, kernel<3>>>>>, named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 16, 16>>;
constexpr long parameters = model::parameter_count;

int main() { return parameters > 0 ? 0 : 1; }
