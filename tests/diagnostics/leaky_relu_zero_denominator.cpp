// A slope of 0.1 meant as leaky_relu<1, 10>, typed with a zero denominator.
// expect: ctseg: leaky_relu<Num, Den>: zero denominator
// expect-path: net/seq[1]
#include "ctseg/plan/bind.hpp"
#include "ctseg/spec.hpp"

using namespace ctseg;

using net = seq<named<"conv1", conv<16, kernel<3>, padding<1>>>, leaky_relu<1, 0>, named<"head", conv<2, kernel<1>>>>;

using model = bind<net, shape<1, 64, 64>>;
constexpr long parameters = model::parameter_count;
constexpr long workspace = model::workspace_elements;

int main() { return parameters > 0 && workspace > 0 ? 0 : 1; }
