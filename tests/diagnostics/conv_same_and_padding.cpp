// Two padding policies on one convolution: which one was meant?
// expect: ctseg: conv: give only one of padding<...>, same and valid
// expect-path: net/seq[0]/conv1
// expect-facts:
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"conv1", conv<8, kernel<3>, same, padding<2>>>, relu>;

using model = bind<net, shape<1, 32, 32>>;
constexpr long parameters = model::parameter_count;

int main() { return parameters > 0 ? 0 : 1; }
