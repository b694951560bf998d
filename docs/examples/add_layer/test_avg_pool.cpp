// The tests of docs/architecture.md, "Adding a layer", for the avg_pool of
// avg_pool.patch: the kernel against a naive reference (as tests/exec/pool.cpp
// would hold it), the compile-time facts (tests/plan), and the layer run by a
// network (tests/model). check.sh builds it against a patched copy of include/.
#define BOOST_TEST_MODULE avg_pool
#include <boost/test/unit_test.hpp>

#include "common.hpp"  // tests/exec/common.hpp
#include "ctseg/exec/pool.hpp"
#include "ctseg/model/network.hpp"
#include "ctseg/spec.hpp"

using namespace testing;
namespace ex = ctseg::exec;

namespace {

// The kernel against the definition, computed in double: the mean over the
// whole window, padded positions counting as zeros.
template <class T, std::size_t R>
void avg_case(index_t batch, index_t C, std::array<index_t, R> in, std::array<index_t, R> k, std::array<index_t, R> s,
              std::array<index_t, R> p) {
    std::array<index_t, R> oe{};
    for (std::size_t d = 0; d < R; ++d) oe[d] = (in[d] + 2 * p[d] - k[d]) / s[d] + 1;
    slice_buffer<T, R> x(batch, C, in, 1, 2);  // views of a channel slice, as inside a concatenation
    slice_buffer<T, R> y(batch, C, oe, 2, 1);
    const index_t oplane = plane_of<R>(oe);
    std::vector<double> ref(std::size_t(batch * C * oplane));
    for (index_t n = 0; n < batch; ++n)
        for (index_t c = 0; c < C; ++c)
            for_each_index<R>(oe, [&](const std::array<index_t, R>& o, index_t opos) {
                double sum = 0;
                for_each_index<R>(k, [&](const std::array<index_t, R>& kk, index_t) {
                    std::array<index_t, R> xi{};
                    for (std::size_t d = 0; d < R; ++d) {
                        xi[d] = o[d] * s[d] - p[d] + kk[d];
                        if (xi[d] < 0 || xi[d] >= in[d]) return;
                    }
                    sum += double(x.at(n, c, flat<R>(xi, in)));
                });
                ref[std::size_t((n * C + c) * oplane + opos)] = sum / double(plane_of<R>(k));
            });
    ex::pool_geometry<R> g;
    g.kernel = k;
    g.stride = s;
    g.pad = p;
    const auto before = y.buf;
    ex::avg_pool_forward<T, R>(g, batch, x.cref(), y.ref());
    check(y, before, ref, "avg_pool R=" + std::to_string(R));
}

template <class T>
void avg_cases() {
    avg_case<T, 1>(2, 3, {16}, {2}, {2}, {0});
    avg_case<T, 1>(1, 2, {15}, {3}, {2}, {1});
    avg_case<T, 2>(2, 3, {8, 12}, {2, 2}, {2, 2}, {0, 0});
    avg_case<T, 2>(1, 4, {13, 11}, {3, 3}, {2, 2}, {1, 1});
    avg_case<T, 2>(2, 2, {8, 15}, {3, 2}, {1, 1}, {1, 0});
    avg_case<T, 3>(2, 3, {4, 6, 8}, {2, 2, 2}, {2, 2, 2}, {0, 0, 0});
    avg_case<T, 3>(1, 2, {5, 7, 9}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1});
}

}  // namespace

BOOST_AUTO_TEST_CASE(avg_pool_float) { avg_cases<float>(); }
BOOST_AUTO_TEST_CASE(avg_pool_double) { avg_cases<double>(); }

// Compile-time facts of the bound layer.
using namespace ctseg;
using pooled = seq<conv<4, kernel<3>, padding<1>>, relu, avg_pool<kernel<3>, stride<2>, padding<1>>, conv<2, kernel<1>>>;
using pooled_2d = bind<pooled, shape<1, 9, 13>>;
static_assert(std::is_same_v<pooled_2d::output_shape, shape<2, 5, 7>>);       // (9 + 2 - 3) / 2 + 1 = 5
static_assert(pooled_2d::receptive_field == std::array<long, 2>{5, 5});        // 3, then 3 taps one apart
static_assert(std::is_same_v<bind<avg_pool<kernel<2>>, shape<3, 4, 6, 8>>::output_shape, shape<3, 2, 3, 4>>);

// The layer as a network runs it (model/network.hpp's new case).
BOOST_AUTO_TEST_CASE(avg_pool_in_a_network) {
    using layer = bind<avg_pool<kernel<2>, stride<1>>, shape<2, 3, 4>>;  // 3x4 -> 2x3
    network<layer, double> net;
    std::vector<double> x(2 * 3 * 4);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = double(i);
    const auto y = net.forward(x);
    BOOST_TEST(y.size() == 2u * 2 * 3);
    // channel 0, position (0, 0): mean of x[0], x[1], x[4], x[5]
    BOOST_TEST(y[0] == (0.0 + 1 + 4 + 5) / 4);
    // channel 1, position (1, 2): mean of x[12 + 6], x[12 + 7], x[12 + 10], x[12 + 11]
    BOOST_TEST(y[6 + 5] == (18.0 + 19 + 22 + 23) / 4);
}
