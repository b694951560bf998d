#define BOOST_TEST_MODULE exec determinism
#include <boost/test/unit_test.hpp>

#include <oneapi/tbb/task_arena.h>

#include "common.hpp"
#include "ctseg/exec.hpp"

using namespace testing;
namespace ex = ctseg::exec;

namespace {

// Runs f(out) in a one-thread and a two-thread arena and checks bitwise equality.
template <class T, std::size_t R, class F>
void same_in_arenas(index_t batch, index_t C, std::array<index_t, R> e, F&& f) {
    slice_buffer<T, R> y1(batch, C, e, 1, 0), y2(batch, C, e, 1, 0);
    y2.buf = y1.buf;
    tbb::task_arena a1(1), a2(2);
    a1.execute([&] { f(y1.ref()); });
    a2.execute([&] { f(y2.ref()); });
    BOOST_TEST(y1.buf == y2.buf);
}

}  // namespace

BOOST_AUTO_TEST_CASE(kernels_bit_identical_across_thread_counts) {
    const std::array<index_t, 3> e{6, 10, 37};
    const index_t C = 6;
    slice_buffer<double, 3> x(2, C, e, 0, 1);
    epilogue_case<double, 3> ep(5, 2, C, plane_of<3>(e));

    std::vector<double> w(static_cast<std::size_t>(C * C * 27));
    fill(w);
    ex::conv_geometry<3> g;
    g.in_channels = g.out_channels = C;
    g.kernel = {3, 3, 3};
    g.stride = {1, 1, 1};
    g.pad = {1, 1, 1};
    g.dilation = {1, 1, 1};
    same_in_arenas<double, 3>(2, C, e, [&](auto out) { ex::conv_forward<double, 3>(g, 2, x.cref(), w.data(), out, ep.ep); });

    ex::conv_transpose_geometry<3> tg;
    tg.in_channels = tg.out_channels = C;
    tg.kernel = {2, 2, 2};
    tg.stride = {2, 2, 2};
    tg.pad = {0, 0, 0};
    tg.dilation = {1, 1, 1};
    tg.output_pad = {0, 0, 0};
    std::vector<double> tw(static_cast<std::size_t>(C * C * 8));
    fill(tw);
    const std::array<index_t, 3> half{3, 5, 18};
    slice_buffer<double, 3> xh(2, C, half, 0, 0);
    const std::array<index_t, 3> up{6, 10, 36};
    same_in_arenas<double, 3>(2, C, up, [&](auto out) {
        ex::conv_transpose_forward<double, 3>(tg, 2, xh.cref(), tw.data(), out, {});
    });

    std::vector<double> gamma(static_cast<std::size_t>(C)), beta(static_cast<std::size_t>(C));
    fill(gamma);
    fill(beta);
    same_in_arenas<double, 3>(2, C, e, [&](auto out) {
        ex::instance_norm_forward<double, 3>(2, x.cref(), out, 1e-5, gamma.data(), beta.data(), ep.ep);
    });
    same_in_arenas<double, 3>(2, C, e, [&](auto out) { ex::softmax_channels<double, 3>(2, x.cref(), out); });
    same_in_arenas<double, 3>(2, C, e, [&](auto out) {
        ex::channel_affine<double, 3>(2, x.cref(), out, gamma.data(), beta.data(), ep.ep);
    });
    ex::pool_geometry<3> pg;
    pg.kernel = {2, 2, 2};
    pg.stride = {2, 2, 2};
    pg.pad = {0, 0, 0};
    same_in_arenas<double, 3>(2, C, half, [&](auto out) { ex::max_pool_forward<double, 3>(pg, 2, x.cref(), out); });
}
