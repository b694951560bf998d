// A small program that uses ctseg the way an outside project would: through
// dependency('ctseg'), either as a subproject or from an installed copy found
// with pkg-config. It binds a padded two-level U-Net to a 32x32 tile, checks
// the compile-time shapes and runs inference.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <type_traits>
#include <vector>

#include "ctseg/model/network.hpp"
#include "ctseg/nets/unet.hpp"

using net = ctseg::bind<ctseg::nets::unet<2, 4, 2, true>, ctseg::shape<1, 32, 32>>;

static_assert(std::is_same_v<net::input_shape, ctseg::shape<1, 32, 32>>);
static_assert(std::is_same_v<net::output_shape, ctseg::shape<2, 32, 32>>, "a padded U-Net keeps the tile's extents");
static_assert(net::rank == 2);
// 1->4->4 | 4->8->8 | 8->16->16 | up 16->8, 16->8->8 | up 8->4, 8->4->4 | 4->2.
static_assert(net::parameter_count == 7402);

namespace {

int failures = 0;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "FAIL: %s\n", what);
        ++failures;
    }
}

}  // namespace

int main() {
    using model_t = ctseg::network<net>;
    static_assert(model_t::input_size == 32 * 32 && model_t::output_size == 2 * 32 * 32);

    model_t model(42);
    check(model.parameters().size() >= std::size_t(net::parameter_count), "parameter storage covers the parameter count");

    // One constant sample and a batch of two copies of it.
    const std::vector<float> x(model_t::input_size, 0.5f);
    std::vector<float> x2(x);
    x2.insert(x2.end(), x.begin(), x.end());

    const std::vector<float> y = model.forward(std::span<const float>(x));
    check(y.size() == model_t::output_size, "output has 2*32*32 values");
    bool finite = true, nonzero = false;
    double sum = 0;
    for (float v : y) {
        finite = finite && std::isfinite(v);
        nonzero = nonzero || v != 0.0f;
        sum += double(v);
    }
    check(finite, "every output value is finite");
    check(nonzero, "random weights give a non-zero output");

    check(model.forward(std::span<const float>(x)) == y, "inference is deterministic");
    const std::vector<float> y2 = model.forward(std::span<const float>(x2));
    check(y2.size() == 2 * model_t::output_size, "a batch of two gives two outputs");
    check(std::vector<float>(y2.begin(), y2.begin() + long(y.size())) == y &&
              std::vector<float>(y2.begin() + long(y.size()), y2.end()) == y,
          "each batch element matches the single-sample output");

    // All weights zero and the head's biases set: every pixel of class c must
    // be exactly head.bias[c].
    for (float& p : model.parameters()) p = 0.0f;
    bool head_found = false;
    for (auto& e : model.state_entries()) {
        if (e.name == "head.bias" && e.values.size() == 2) {
            e.values[0] = 0.25f;
            e.values[1] = -1.5f;
            head_found = true;
        }
    }
    check(head_found, "state entry 'head.bias' with 2 values");
    model.state_changed();
    const std::vector<float> z = model.forward(std::span<const float>(x));
    bool bias_only = z.size() == model_t::output_size;
    for (std::size_t i = 0; bias_only && i < z.size(); ++i) bias_only = z[i] == (i < 32 * 32 ? 0.25f : -1.5f);
    check(bias_only, "zero weights: output equals the head bias per class");

    std::printf("ctseg consumer: output %zu values, sum %.6f, %ld parameters, %s\n", y.size(), sum,
                long(net::parameter_count), failures ? "FAILED" : "OK");
    return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
