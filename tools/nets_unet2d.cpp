// U-Net on 2D images: the variants of examples/unet2d, and `brain`, the
// network of scripts/demo.sh (skull stripping of an MRI volume, slice by slice).
#include "commands.hpp"
#include "ctseg/nets/unet.hpp"

namespace ctseg::tool {

namespace {
using paper = bind<nets::unet<2, 64, 4>, shape<1, 572, 572>>;
using small = bind<nets::unet<2, 4, 2>, shape<1, 92, 108>>;
using padded = bind<nets::unet<2, 8, 3, true>, shape<1, 64, 80>>;
using bench = bind<nets::unet<2, 32, 4, true>, shape<1, 256, 256>>;
// Width 8, depth 3, padded convolutions: 128x128 crops train quickly on a CPU
// and, the network being fully convolutional, the weights segment whole slices.
using brain = bind<nets::unet<2, 8, 3, true>, shape<1, 128, 128>>;
static_assert(std::is_same_v<brain::output_shape, shape<2, 128, 128>>);
}  // namespace

std::vector<variant_entry> unet2d_variants() {
    return {entry<paper>("unet2d", "paper"), entry<small>("unet2d", "small"), entry<padded>("unet2d", "padded"),
            entry<bench>("unet2d", "bench"), entry<brain>("unet2d", "brain")};
}

}  // namespace ctseg::tool
