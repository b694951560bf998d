// docs/dsl.md, "A first network": a network type, bound to a tile, checked at
// compile time and run.
#include <cstdio>
#include <vector>

#include "ctseg/model/network.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

// Two padded 3x3 convolutions with ReLU, then a 1x1 classifier to 3 classes.
using tiny = seq<named<"conv1", conv<16, kernel<3>, padding<1>>>, relu,
                 named<"conv2", conv<16, kernel<3>, padding<1>>>, relu,
                 named<"head", conv<3, kernel<1>>>>;

// The same type bound to a 1-channel 64x64 tile.
using tiny_64 = bind<tiny, shape<1, 64, 64>>;

static_assert(std::is_same_v<tiny_64::output_shape, shape<3, 64, 64>>);
static_assert(tiny_64::parameter_count == (16 * 1 * 9 + 16) + (16 * 16 * 9 + 16) + (3 * 16 + 3));
static_assert(tiny_64::receptive_field == std::array<long, 2>{5, 5});

int main() {
    network<tiny_64> net(/*seed=*/42);              // PyTorch-style random initialisation
    std::vector<float> x(2 * tiny_64::input_shape::size, 0.5f);  // a batch of 2 samples
    std::vector<float> y = net.forward(x);          // 2 x 3 x 64 x 64 logits
    std::printf("%zu outputs, first %.6f\n", y.size(), double(y[0]));
}
