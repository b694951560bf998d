// A skip connection whose body down-samples twice (64 -> 32 -> 16) but
// up-samples once: match_skip asks one 2x2 stride-2 transposed convolution to
// go from 16 back to the skip's 64.
// expect: ctseg: conv_transpose: no padding and output padding (below the stride) make this kernel and stride produce the requested extent
// expect-path: net/seq[1]/concat[1]/seq[3]
// expect-facts: input<ctseg::shape<64, 16, 16> | kernel<2> | stride<2> | requested_extent<64> | ctseg::shape<16, 64, 64>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<conv<16, kernel<3>, padding<1>>,
                skip_concat<seq<conv<32, kernel<2>, stride<2>>, relu, conv<64, kernel<2>, stride<2>>,
                                conv_transpose<16, kernel<2>, stride<2>, match_skip>>>,
                conv<2, kernel<1>>>;

using model = bind<net, shape<1, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
