// V-Net on volumes: the variants of examples/vnet.
#include "commands.hpp"
#include "ctseg/nets/vnet.hpp"

namespace ctseg::tool {

namespace {
using paper = bind<nets::vnet<2, 16>, shape<1, 64, 128, 128>>;
using small = bind<nets::vnet<2, 2>, shape<1, 16, 32, 48>>;
}  // namespace

std::vector<variant_entry> vnet_variants() { return {entry<paper>("vnet", "paper"), entry<small>("vnet", "small")}; }

}  // namespace ctseg::tool
