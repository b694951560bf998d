// A transposed convolution given both an explicit padding and upsample_by,
// which derives the padding itself.
// expect: ctseg: conv_transpose: give only one of padding<...>, upsample_by<...> and match_skip
// expect-path: net/seq[2]/up
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"down", conv<32, kernel<3>, stride<2>, padding<1>>>, relu,
                named<"up", conv_transpose<16, kernel<4>, stride<2>, padding<1>, upsample_by<2>>>,
                named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
