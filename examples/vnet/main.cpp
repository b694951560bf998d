// V-Net on volumes, every variant of the reference model.
#include "common/example.hpp"
#include "ctseg/nets/vnet.hpp"

using namespace ctseg;

using paper = bind<nets::vnet<2, 16>, shape<1, 64, 128, 128>>;
static_assert(std::is_same_v<paper::output_shape, shape<2, 64, 128, 128>>, "V-Net keeps the volume's extent");

using small = bind<nets::vnet<2, 2>, shape<1, 16, 32, 48>>;
static_assert(std::is_same_v<small::output_shape, shape<2, 16, 32, 48>>);

int main(int argc, char** argv) {
    return examples::run<examples::variant<"paper", paper>, examples::variant<"small", small>>("vnet", argc, argv);
}
