#define BOOST_TEST_MODULE exec pool
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "common.hpp"
#include "ctseg/exec/pool.hpp"

using namespace testing;
namespace ex = ctseg::exec;

namespace {

template <class T, std::size_t R>
void run_case(index_t batch, index_t C, std::array<index_t, R> in, std::array<index_t, R> k, std::array<index_t, R> s,
              std::array<index_t, R> p, bool slices) {
    std::array<index_t, R> oe{};
    for (std::size_t d = 0; d < R; ++d) oe[d] = (in[d] + 2 * p[d] - k[d]) / s[d] + 1;
    slice_buffer<T, R> x(batch, C, in, slices ? 2 : 0, slices ? 1 : 0);
    slice_buffer<T, R> y(batch, C, oe, slices ? 1 : 0, slices ? 3 : 0);
    const index_t oplane = plane_of<R>(oe);
    std::vector<double> ref(static_cast<std::size_t>(batch * C * oplane));
    for (index_t n = 0; n < batch; ++n)
        for (index_t c = 0; c < C; ++c)
            for_each_index<R>(oe, [&](const std::array<index_t, R>& o, index_t opos) {
                double m = -std::numeric_limits<double>::infinity();
                for_each_index<R>(k, [&](const std::array<index_t, R>& kk, index_t) {
                    std::array<index_t, R> xi{};
                    for (std::size_t d = 0; d < R; ++d) {
                        xi[d] = o[d] * s[d] - p[d] + kk[d];
                        if (xi[d] < 0 || xi[d] >= in[d]) return;
                    }
                    m = std::max(m, double(x.at(n, c, flat<R>(xi, in))));
                });
                ref[std::size_t((n * C + c) * oplane + opos)] = m;
            });
    ex::pool_geometry<R> g;
    g.kernel = k;
    g.stride = s;
    g.pad = p;
    const auto before = y.buf;
    ex::max_pool_forward<T, R>(g, batch, x.cref(), y.ref());
    check(y, before, ref, "max_pool R=" + std::to_string(R));
}

template <class T>
void all_cases() {
    run_case<T, 1>(2, 3, {17}, {2}, {2}, {0}, true);
    run_case<T, 1>(1, 2, {16}, {3}, {2}, {1}, false);
    run_case<T, 2>(2, 3, {9, 11}, {2, 2}, {2, 2}, {0, 0}, true);
    run_case<T, 2>(1, 4, {13, 12}, {3, 3}, {2, 2}, {1, 1}, false);
    run_case<T, 2>(2, 2, {8, 15}, {3, 2}, {1, 3}, {1, 0}, true);
    run_case<T, 2>(1, 3, {7, 300}, {2, 2}, {2, 2}, {0, 0}, false);
    run_case<T, 3>(2, 3, {5, 7, 9}, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, true);
    run_case<T, 3>(1, 2, {4, 9, 10}, {1, 2, 2}, {1, 2, 2}, {0, 0, 0}, false);
    run_case<T, 3>(1, 2, {6, 7, 8}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, true);
}

}  // namespace

BOOST_AUTO_TEST_CASE(max_pool_float) { all_cases<float>(); }
BOOST_AUTO_TEST_CASE(max_pool_double) { all_cases<double>(); }

// A NaN anywhere in a window wins, in the 2-wide stride-2 path (even and odd
// positions, vector-length rows) and in the general path, as in PyTorch.
BOOST_AUTO_TEST_CASE(max_pool_propagates_nan) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (const index_t k : {2, 3}) {
        std::vector<float> x(70, 1.0f), y(35, 0.0f);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i % 7);
        x[1] = nan;   // window 0 (odd position)
        x[36] = nan;  // window 18 (even position)
        x[69] = nan;  // last window
        ex::pool_geometry<1> g;
        g.kernel = {k};
        g.stride = {2};
        g.pad = {0};
        const index_t ow = (70 - k) / 2 + 1;
        ex::max_pool_forward<float, 1>(g, 1, {x.data(), 1, {70}, 70}, {y.data(), 1, {ow}, ow});
        for (index_t o = 0; o < ow; ++o) {
            bool has_nan = false;
            float m = -std::numeric_limits<float>::infinity();
            for (index_t j = 0; j < k; ++j) {
                const float v = x[std::size_t(2 * o + j)];
                has_nan = has_nan || v != v;
                m = std::max(m, v);
            }
            BOOST_TEST_CONTEXT("kernel " << k << ", output " << o) {
                if (has_nan) BOOST_TEST(std::isnan(y[std::size_t(o)]));
                else BOOST_TEST(y[std::size_t(o)] == m);
            }
        }
    }
}
