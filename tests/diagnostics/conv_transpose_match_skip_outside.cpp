// An encoder-decoder without skip connections that still uses match_skip: the
// transposed convolution sits in a plain seq, so there is no skip to match.
// expect: ctseg: conv_transpose: match_skip used outside a concat or add
// expect-path: net/seq[2]/up
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"down", conv<32, kernel<2>, stride<2>>>, relu,
                named<"up", conv_transpose<16, kernel<2>, stride<2>, match_skip>>,
                named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
