// Padding a 2x2 pooling window by 2: whole windows would see padding only.
// PyTorch rejects this too.
// expect: ctseg: max_pool: padding must be at most half the window
// expect-path: net/seq[1]
// expect-facts: kernel<2> | padding<2>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<conv<4, kernel<3>, padding<1>>, max_pool<kernel<2>, padding<2>>>;

using model = bind<net, shape<1, 32, 32>>;
constexpr long parameters = model::parameter_count;

int main() { return parameters > 0 ? 0 : 1; }
