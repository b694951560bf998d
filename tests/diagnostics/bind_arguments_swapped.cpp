// bind's arguments in the wrong order: the shape first, the network second.
// expect: ctseg: bind<Net, Shape>: the input must be written ctseg::shape<channels, extents...>
#include "ctseg/nets/unet.hpp"
#include "ctseg/plan/bind.hpp"

using model = ctseg::bind<ctseg::shape<1, 572, 572>, ctseg::nets::unet<2>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
