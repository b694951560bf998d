// docs/dsl.md, "Names": how the state_dict keys are formed. Prints every key
// with its shape, as PyTorch's state_dict of the equivalent module would.
#include <cstdio>

#include "ctseg/model/network.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

// class Block(nn.Module):                 # conv -> BN -> ReLU
//     def __init__(self, cin, cout):
//         super().__init__()
//         self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
//         self.bn = nn.BatchNorm2d(cout)
template <std::size_t C>
using block = seq<named<"conv", conv<C, kernel<3>, padding<1>, no_bias>>, named<"bn", batch_norm<>>, relu>;

// class Net(nn.Module):
//     self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
//     self.blocks = nn.ModuleList([Block(8, 16), Block(16, 16)])
//     self.head = nn.Conv2d(16, 2, 1)
using net = seq<named<"stem", sequential<conv<8, kernel<3>, padding<1>>, relu, conv<8, kernel<3>, padding<1>>>>,
                indexed<"blocks", 0, block<16>>,
                named<"blocks.1", block<16>>,     // the same naming, spelled out
                named<"head", conv<2, kernel<1>>>>;

int main() {
    network<bind<net, shape<1, 32, 32>>> model;
    for (const auto& e : model.state_entries()) {
        std::printf("%-34s [", e.name.c_str());
        for (std::size_t i = 0; i < e.shape.size(); ++i) std::printf("%s%lld", i ? ", " : "", (long long)e.shape[i]);
        std::printf("]%s\n", e.counter ? " int64 counter" : e.trainable ? "" : " buffer");
    }
}
