// U-Net on 2D images, every variant of the reference model.
#include "common/example.hpp"
#include "ctseg/nets/unet.hpp"

using namespace ctseg;

// The paper's tile: 572x572 in, 388x388 out (valid convolutions, cropped skips).
using paper = bind<nets::unet<2, 64, 4>, shape<1, 572, 572>>;
static_assert(std::is_same_v<paper::output_shape, shape<2, 388, 388>>, "U-Net paper tile: 572x572 -> 388x388");
static_assert(paper::parameter_count == 31'030'658);

using small = bind<nets::unet<2, 4, 2>, shape<1, 92, 108>>;
static_assert(std::is_same_v<small::output_shape, shape<2, 52, 68>>);

using padded = bind<nets::unet<2, 8, 3, true>, shape<1, 64, 80>>;
static_assert(std::is_same_v<padded::output_shape, shape<2, 64, 80>>);

using bench = bind<nets::unet<2, 32, 4, true>, shape<1, 256, 256>>;
static_assert(std::is_same_v<bench::output_shape, shape<2, 256, 256>>);

int main(int argc, char** argv) {
    return examples::run<examples::variant<"paper", paper>, examples::variant<"small", small>,
                         examples::variant<"padded", padded>, examples::variant<"bench", bench>>("unet2d", argc, argv);
}
