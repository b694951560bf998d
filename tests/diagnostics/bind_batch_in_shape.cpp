// The batch size written into the shape, as in PyTorch's (N, C, D, H, W): four
// spatial extents. The batch is the only runtime dimension and is not part of
// the shape: shape<1, 64, 128, 128>.
// expect: ctseg: bind<Net, Shape>: ctseg runs 1D, 2D and 3D inputs (1 to 3 spatial extents)
// expect-facts: ctseg::shape<2, 1, 64, 128, 128>
#include "ctseg/nets/unet3d.hpp"
#include "ctseg/plan/bind.hpp"

using model = ctseg::bind<ctseg::nets::unet3d<3>, ctseg::shape<2, 1, 64, 128, 128>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
