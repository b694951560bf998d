// What examples/pooled/main.cpp would hold to give the avg_pool of
// avg_pool.patch a PyTorch equivalence case (docs/architecture.md): a network
// using the layer, with the parameter names of the reference module.
#include "common/example.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using pooled_net = seq<named<"conv", conv<4, kernel<3>, padding<1>>>, relu, avg_pool<kernel<3>, stride<2>, padding<1>>,
                       named<"head", conv<2, kernel<1>>>>;

using small = bind<pooled_net, shape<1, 9, 13>>;
static_assert(std::is_same_v<small::output_shape, shape<2, 5, 7>>);

int main(int argc, char** argv) {
    return examples::run<examples::variant<"small", small>>("pooled", argc, argv);
}
