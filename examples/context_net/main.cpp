// Dilated convolutions: a front end and the basic context module.
#include "common/example.hpp"
#include "ctseg/nets/context_net.hpp"

using namespace ctseg;

// The paper's basic context module sees 67x67 input elements.
static_assert(bind<nets::context_module<21>, shape<21, 128, 128>>::receptive_field == std::array<long, 2>{67, 67},
              "context module receptive field 67");

using paper = bind<nets::context_net<21, 64>, shape<3, 512, 512>>;
static_assert(std::is_same_v<paper::output_shape, shape<21, 512, 512>>, "dilation never drops the resolution");
static_assert(paper::receptive_field == std::array<long, 2>{71, 71}, "67 of the context module plus the 3x3 front end");

using small = bind<nets::context_net<4, 8>, shape<1, 70, 90>>;
static_assert(std::is_same_v<small::output_shape, shape<4, 70, 90>>);

int main(int argc, char** argv) {
    return examples::run<examples::variant<"paper", paper>, examples::variant<"small", small>>("context_net", argc, argv);
}
