// FCN-8s: the variants of examples/fcn.
#include "commands.hpp"
#include "ctseg/nets/fcn.hpp"

namespace ctseg::tool {

namespace {
using paper = bind<nets::fcn8s<21>, shape<3, 512, 512>>;
using small = bind<nets::fcn8s<5, nets::per_stage(8, 8, 16, 16, 16), nets::per_stage(1, 1, 2, 2, 2), 32, 3>, shape<3, 64, 96>>;
}  // namespace

std::vector<variant_entry> fcn_variants() { return {entry<paper>("fcn", "paper"), entry<small>("fcn", "small")}; }

}  // namespace ctseg::tool
