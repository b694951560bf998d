// 3D U-Net on volumes (N x C x D x H x W), every variant of the reference model.
#include "common/example.hpp"
#include "ctseg/nets/unet3d.hpp"

using namespace ctseg;

// The paper's tile: 132x132x116 in, 44x44x28 out (D x H x W here: 116x132x132 -> 28x44x44).
using paper = bind<nets::unet3d<3, 32, 3>, shape<3, 116, 132, 132>>;
static_assert(std::is_same_v<paper::output_shape, shape<3, 28, 44, 44>>, "3D U-Net paper tile: 132x132x116 -> 44x44x28");

using small = bind<nets::unet3d<3, 2, 2>, shape<1, 44, 52, 60>>;
using bench = bind<nets::unet3d<3, 16, 3, true>, shape<1, 64, 64, 64>>;
static_assert(std::is_same_v<bench::output_shape, shape<3, 64, 64, 64>>);

int main(int argc, char** argv) {
    return examples::run<examples::variant<"paper", paper>, examples::variant<"small", small>,
                         examples::variant<"bench", bench>>("unet3d", argc, argv);
}
