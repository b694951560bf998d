// One level of a U-Net in the paper's style (valid 3x3 convolutions), but the
// skip connection leaves out crop_center: the encoder features are 568x568 while
// the up-sampled decoder features are 560x560.
// expect: ctseg: concat: branches differ in spatial size
// expect-path: net/seq[1]
// expect-facts: branch<0, ctseg::shape<64, 568, 568> | branch<1, ctseg::shape<64, 560, 560>
#include <cstddef>

#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

template <std::size_t Width>
using double_conv = seq<named<"conv1", conv<Width, kernel<3>>>, relu, named<"conv2", conv<Width, kernel<3>>>, relu>;

using net = seq<named<"down", double_conv<64>>,
                skip_concat<seq<max_pool<kernel<2>>, named<"bottom", double_conv<128>>,
                                named<"up", conv_transpose<64, kernel<2>, stride<2>>>>>,
                named<"dec", double_conv<64>>, named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 572, 572>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
