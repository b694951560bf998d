// Front end and basic context module of dilated convolutions: the variants of
// examples/context_net.
#include "commands.hpp"
#include "ctseg/nets/context_net.hpp"

namespace ctseg::tool {

namespace {
using paper = bind<nets::context_net<21, 64>, shape<3, 512, 512>>;
using small = bind<nets::context_net<4, 8>, shape<1, 70, 90>>;
}  // namespace

std::vector<variant_entry> context_net_variants() {
    return {entry<paper>("context_net", "paper"), entry<small>("context_net", "small")};
}

}  // namespace ctseg::tool
