// Padding beyond half the window: PyTorch refuses it, and so does the plan.
// expect: ctseg: avg_pool: padding larger than half the window
// expect-path: net/seq[1]
// expect-facts: input<ctseg::shape<8, 16, 16> > | kernel<2> | padding<2>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<conv<8, kernel<3>, padding<1>>, avg_pool<kernel<2>, padding<2>>>;

using model = bind<net, shape<1, 16, 16>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
