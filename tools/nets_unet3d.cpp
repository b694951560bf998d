// 3D U-Net on volumes: the variants of examples/unet3d.
#include "commands.hpp"
#include "ctseg/nets/unet3d.hpp"

namespace ctseg::tool {

namespace {
using paper = bind<nets::unet3d<3, 32, 3>, shape<3, 116, 132, 132>>;
using small = bind<nets::unet3d<3, 2, 2>, shape<1, 44, 52, 60>>;
using bench = bind<nets::unet3d<3, 16, 3, true>, shape<1, 64, 64, 64>>;
}  // namespace

std::vector<variant_entry> unet3d_variants() {
    return {entry<paper>("unet3d", "paper"), entry<small>("unet3d", "small"), entry<bench>("unet3d", "bench")};
}

}  // namespace ctseg::tool
