// A squeeze-and-excitation style gate whose squeezed width is computed from the
// block width: with Width = 8 the reduction conv<Width / 16> has no output
// channels at all.
// expect: ctseg: conv: zero output channels
// expect-path: net/seq[1]/add[0]/seq[0]/squeeze
#include <cstddef>

#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

template <std::size_t Width>
using squeeze_excite = residual<seq<named<"squeeze", conv<Width / 16, kernel<1>>>, relu, named<"excite", conv<Width, kernel<1>>>>>;

using net = seq<named<"stem", conv<8, kernel<3>, padding<1>>>, squeeze_excite<8>, named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
