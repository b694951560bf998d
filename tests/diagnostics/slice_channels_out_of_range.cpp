// A V-Net style decoder stage whose shortcut keeps the up-sampled half of the
// concatenated features, but the range is written for 64 channels while the
// concatenation has 32.
// expect: ctseg: slice_channels<Begin, End>: the range is empty or beyond the input's channels
// expect-path: net/seq[1]/add[1]/seq[0]
// expect-facts: input<ctseg::shape<32, 32, 32> | channel_range<32, 64>
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<concat<named<"skip", conv<16, kernel<3>, padding<1>>>, named<"up", conv<16, kernel<3>, padding<1>>>>,
                residual<seq<named<"conv", conv<64, kernel<5>, padding<2>>>, prelu>,
                         seq<slice_channels<32, 64>, repeat_channels<2>>>,
                named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 32, 32>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
