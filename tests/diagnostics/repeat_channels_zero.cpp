// A shortcut that widens the input to the body's width by repeating it
// Width / InChannels times; with 3 input channels and Width 2 that is 0.
// expect: ctseg: repeat_channels<0>
// expect-path: net/add[1]
#include <cstddef>

#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

template <std::size_t Width, std::size_t InChannels>
using first_stage = residual<seq<named<"conv", conv<Width, kernel<5>, padding<2>>>, prelu>, repeat_channels<Width / InChannels>>;

using net = first_stage<2, 3>;

using model = bind<net, shape<3, 32, 32>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
