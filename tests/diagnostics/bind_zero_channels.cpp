// The input channels computed from a configuration that has none: zero channels.
// expect: ctseg: bind<Net, Shape>: zero channels or a zero extent in the input shape
// expect-facts: ctseg::shape<0, 64, 64>
#include <cstddef>

#include "ctseg/nets/unet.hpp"
#include "ctseg/plan/bind.hpp"

constexpr std::size_t modalities = 0;  // e.g. the number of extra input images

using model = ctseg::bind<ctseg::nets::unet<2, 8, 2, true>, ctseg::shape<modalities, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
