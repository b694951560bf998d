// The padded U-Net from ctseg::nets with three poolings on a 100x100 tile:
// 100 -> 50 -> 25, and the third 2x2 pooling cannot tile 25 rows.
// expect: ctseg: max_pool: the window does not tile the input
// expect-path: net/seq[0]/seq[1]/concat[1]/seq[1]/seq[1]/concat[1]/seq[1]/seq[1]/concat[1]/seq[0]
// expect-facts: input<ctseg::shape<32, 25, 25> | kernel<2>
#include "ctseg/nets/unet.hpp"
#include "ctseg/plan/bind.hpp"

using model = ctseg::bind<ctseg::nets::unet<2, 8, 3, true>, ctseg::shape<1, 100, 100>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
