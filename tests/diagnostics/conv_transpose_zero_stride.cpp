// An up-sampling layer whose stride is computed from the total factor of the
// decoder stage (stride<Factor / 2>); with Factor = 1 it is stride<0>.
// expect: ctseg: conv_transpose: kernel, stride and dilation values must be at least 1
// expect-path: net/seq[2]/up
// expect-facts: kernel<2> | stride<0>
#include <cstddef>

#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

template <std::size_t Factor>
using up = named<"up", conv_transpose<16, kernel<2>, stride<Factor / 2>>>;

using net = seq<named<"down", conv<32, kernel<2>, stride<2>>>, relu, up<1>, named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
