#define BOOST_TEST_MODULE exec conv
#include <boost/test/unit_test.hpp>

#include <oneapi/tbb/task_arena.h>

#include "common.hpp"
#include "ctseg/exec/conv.hpp"

using namespace testing;
namespace ex = ctseg::exec;

namespace {

template <std::size_t R>
struct conv_case {
    index_t batch, ic, oc;
    std::array<index_t, R> in, kernel, stride, pad, dilation;
};

template <std::size_t R>
std::array<index_t, R> out_extent(const conv_case<R>& k) {
    std::array<index_t, R> o{};
    for (std::size_t d = 0; d < R; ++d)
        o[d] = (k.in[d] + 2 * k.pad[d] - k.dilation[d] * (k.kernel[d] - 1) - 1) / k.stride[d] + 1;
    return o;
}

template <class T, std::size_t R>
std::vector<double> reference(const conv_case<R>& k, const slice_buffer<T, R>& x, const std::vector<T>& w,
                              const epilogue_case<T, R>& ep) {
    const auto oe = out_extent(k);
    const index_t oplane = plane_of<R>(oe), ntaps = plane_of<R>(k.kernel);
    std::vector<double> y(static_cast<std::size_t>(k.batch * k.oc * oplane));
    for (index_t n = 0; n < k.batch; ++n)
        for (index_t oc = 0; oc < k.oc; ++oc)
            for_each_index<R>(oe, [&](const std::array<index_t, R>& o, index_t opos) {
                double acc = 0;
                for (index_t ic = 0; ic < k.ic; ++ic)
                    for_each_index<R>(k.kernel, [&](const std::array<index_t, R>& kk, index_t t) {
                        std::array<index_t, R> xi{};
                        for (std::size_t d = 0; d < R; ++d) {
                            xi[d] = o[d] * k.stride[d] - k.pad[d] + kk[d] * k.dilation[d];
                            if (xi[d] < 0 || xi[d] >= k.in[d]) return;
                        }
                        acc += double(x.at(n, ic, flat<R>(xi, k.in))) * double(w[std::size_t((oc * k.ic + ic) * ntaps + t)]);
                    });
                y[std::size_t((n * k.oc + oc) * oplane + opos)] = ep.apply(acc, n, oc, opos, oplane);
            });
    return y;
}

template <class T, std::size_t R>
void run_case(const conv_case<R>& k, int variant, bool slices) {
    const auto oe = out_extent(k);
    slice_buffer<T, R> x(k.batch, k.ic, k.in, slices ? 2 : 0, slices ? 1 : 0);
    slice_buffer<T, R> y(k.batch, k.oc, oe, slices ? 3 : 0, slices ? 2 : 0);
    std::vector<T> w(static_cast<std::size_t>(k.oc * k.ic * plane_of<R>(k.kernel)));
    fill(w);
    epilogue_case<T, R> ep(variant, k.batch, k.oc, plane_of<R>(oe));
    ex::conv_geometry<R> g;
    g.in_channels = k.ic;
    g.out_channels = k.oc;
    g.kernel = k.kernel;
    g.stride = k.stride;
    g.pad = k.pad;
    g.dilation = k.dilation;
    const auto before = y.buf;
    const auto expected = reference(k, x, w, ep);
    std::string what = "R=" + std::to_string(R) + " ic=" + std::to_string(k.ic) + " oc=" + std::to_string(k.oc) +
                       " variant=" + std::to_string(variant) + " T=" + (sizeof(T) == 4 ? "float" : "double");
    // Weights read in place (the last, partial block of output channels from a packed copy).
    ex::conv_forward<T, R>(g, k.batch, x.cref(), w.data(), y.ref(), ep.ep);
    check(y, before, expected, what + " weights in place");
    // The same from pack_conv_weights.
    y.buf = before;
    const auto packed = ex::pack_conv_weights<T, R>(g, w.data());
    ex::conv_forward<T, R>(g, k.batch, x.cref(), w.data(), y.ref(), ep.ep, packed.data());
    check(y, before, expected, what + " packed weights");
}

template <class T>
void all_cases() {
    const std::vector<conv_case<1>> c1 = {
        {2, 3, 5, {37}, {3}, {1}, {1}, {1}},
        {1, 4, 7, {50}, {5}, {2}, {2}, {2}},
        {3, 2, 3, {9}, {1}, {1}, {0}, {1}},
    };
    const std::vector<conv_case<2>> c2 = {
        {2, 3, 5, {11, 13}, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
        {1, 6, 9, {17, 41}, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
        {2, 5, 4, {12, 19}, {3, 5}, {2, 3}, {1, 2}, {1, 1}},
        {1, 4, 6, {15, 16}, {3, 3}, {1, 1}, {2, 2}, {2, 2}},
        {2, 7, 3, {9, 10}, {1, 1}, {1, 1}, {0, 0}, {1, 1}},
        {1, 3, 5, {10, 11}, {1, 1}, {2, 2}, {0, 0}, {1, 1}},
        {1, 2, 3, {8, 9}, {2, 2}, {2, 2}, {0, 0}, {1, 1}},
        {2, 3, 2, {7, 120}, {3, 3}, {1, 1}, {1, 1}, {1, 1}},
        {1, 3, 4, {6, 7}, {7, 7}, {1, 1}, {3, 3}, {1, 1}},
        {1, 2, 13, {5, 6}, {3, 3}, {1, 3}, {2, 0}, {1, 2}},
    };
    const std::vector<conv_case<3>> c3 = {
        {2, 3, 5, {5, 7, 9}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}},
        {1, 4, 6, {4, 9, 11}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}},
        {2, 2, 3, {6, 8, 7}, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}},
        {1, 3, 4, {7, 6, 9}, {5, 5, 5}, {1, 1, 1}, {2, 2, 2}, {1, 1, 1}},
        {1, 5, 3, {3, 4, 5}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}},
        {1, 3, 2, {9, 8, 10}, {3, 3, 3}, {2, 1, 3}, {1, 2, 0}, {2, 1, 1}},
    };
    int i = 0;
    for (auto& k : c1) {
        run_case<T, 1>(k, i % 8, i % 2 == 0);
        ++i;
    }
    for (auto& k : c2)
        for (int v = 0; v < 8; ++v) run_case<T, 2>(k, v, (v + i) % 2 == 0);
    for (auto& k : c3)
        for (int v = 0; v < 8; v += (sizeof(T) == 4 ? 1 : 3)) run_case<T, 3>(k, v, v % 2 == 1);
}

}  // namespace

BOOST_AUTO_TEST_CASE(conv_float) { all_cases<float>(); }
BOOST_AUTO_TEST_CASE(conv_double) { all_cases<double>(); }

BOOST_AUTO_TEST_CASE(conv_larger_channels) {
    // Several output-channel blocks and long rows (exercises every run length).
    run_case<float, 2>({1, 17, 13, {19, 203}, {3, 3}, {1, 1}, {1, 1}, {1, 1}}, 5, true);
    run_case<double, 2>({2, 9, 11, {7, 77}, {3, 3}, {1, 1}, {1, 1}, {1, 1}}, 2, false);
    run_case<float, 2>({1, 16, 33, {31, 29}, {1, 1}, {1, 1}, {0, 0}, {1, 1}}, 1, true);
}

BOOST_AUTO_TEST_CASE(conv_thread_count_invariance) {
    const index_t C = 12;
    const std::array<index_t, 2> e{33, 70};
    slice_buffer<float, 2> x(1, C, e, 0, 0);
    slice_buffer<float, 2> y1(1, C, e, 0, 0), y2(1, C, e, 0, 0);
    std::vector<float> w(static_cast<std::size_t>(C * C * 9));
    fill(w);
    epilogue_case<float, 2> ep(5, 1, C, plane_of<2>(e));
    ex::conv_geometry<2> g;
    g.in_channels = g.out_channels = C;
    g.kernel = {3, 3};
    g.stride = {1, 1};
    g.pad = {1, 1};
    g.dilation = {1, 1};
    tbb::task_arena a1(1), a2(2);
    a1.execute([&] { ex::conv_forward<float, 2>(g, 1, x.cref(), w.data(), y1.ref(), ep.ep); });
    a2.execute([&] { ex::conv_forward<float, 2>(g, 1, x.cref(), w.data(), y2.ref(), ep.ep); });
    BOOST_TEST(y1.buf == y2.buf);
}
