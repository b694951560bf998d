// A decoder asks a 2x2, stride-2 transposed convolution for x3 up-sampling: its
// output is 2*in - 2p + op with op < 2, so no padding gives 3*16 = 48.
// expect: ctseg: conv_transpose: no padding and output padding (below the stride) make this kernel and stride produce the requested extent
// expect-path: net/seq[1]/up
// expect-facts: input<ctseg::shape<32, 16, 16> | kernel<2> | stride<2> | requested_extent<48> | upsample_by<3>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"encoder", seq<conv<32, kernel<3>, padding<1>>, relu, max_pool<kernel<3>>>>,
                named<"up", conv_transpose<16, kernel<2>, stride<2>, upsample_by<3>>>,
                named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 48, 48>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
