// `affine` is an instance_norm option; batch_norm always has affine parameters.
// expect: ctseg: batch_norm: an option is given twice or is not a batch_norm option
// expect-path: net/seq[1]/bn
// expect-facts: affine
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"conv", conv<4, kernel<3>, padding<1>>>, named<"bn", batch_norm<affine>>, relu>;

using model = bind<net, shape<1, 16, 16, 16>>;
constexpr long parameters = model::parameter_count;

int main() { return parameters > 0 ? 0 : 1; }
