// FCN-8s, every variant of the reference model.
#include "common/example.hpp"
#include "ctseg/nets/fcn.hpp"

using namespace ctseg;

using paper = bind<nets::fcn8s<21>, shape<3, 512, 512>>;
static_assert(std::is_same_v<paper::output_shape, shape<21, 512, 512>>, "FCN-8s predicts at the input's resolution");

using small = bind<nets::fcn8s<5, nets::per_stage(8, 8, 16, 16, 16), nets::per_stage(1, 1, 2, 2, 2), 32, 3>, shape<3, 64, 96>>;
static_assert(std::is_same_v<small::output_shape, shape<5, 64, 96>>);

int main(int argc, char** argv) {
    return examples::run<examples::variant<"paper", paper>, examples::variant<"small", small>>("fcn", argc, argv);
}
