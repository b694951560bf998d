// An option that belongs to transposed convolutions, given to a plain one: it
// would otherwise be ignored without a word.
// expect: ctseg: conv: an option is given twice or is not a conv option
// expect-path: net/seq[1]/up
// expect-facts: upsample_by<2>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"conv1", conv<8, kernel<3>, padding<1>>>, named<"up", conv<8, kernel<3>, padding<1>, upsample_by<2>>>>;

using model = bind<net, shape<1, 32, 32>>;
constexpr long parameters = model::parameter_count;

int main() { return parameters > 0 ? 0 : 1; }
