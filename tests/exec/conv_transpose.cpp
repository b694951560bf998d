#define BOOST_TEST_MODULE exec conv_transpose
#include <boost/test/unit_test.hpp>

#include <oneapi/tbb/task_arena.h>

#include "common.hpp"
#include "ctseg/exec/conv_transpose.hpp"

using namespace testing;
namespace ex = ctseg::exec;

namespace {

template <std::size_t R>
struct tcase {
    index_t batch, ic, oc;
    std::array<index_t, R> in, kernel, stride, pad, dilation, output_pad;
};

template <std::size_t R>
std::array<index_t, R> out_extent(const tcase<R>& k) {
    std::array<index_t, R> o{};
    for (std::size_t d = 0; d < R; ++d)
        o[d] = (k.in[d] - 1) * k.stride[d] - 2 * k.pad[d] + k.dilation[d] * (k.kernel[d] - 1) + k.output_pad[d] + 1;
    return o;
}

// Scatter formulation, accumulated in double.
template <class T, std::size_t R>
std::vector<double> reference(const tcase<R>& k, const slice_buffer<T, R>& x, const std::vector<T>& w,
                              const epilogue_case<T, R>& ep) {
    const auto oe = out_extent(k);
    const index_t oplane = plane_of<R>(oe), ntaps = plane_of<R>(k.kernel);
    std::vector<double> acc(std::size_t(k.batch * k.oc * oplane), 0.0);
    for (index_t n = 0; n < k.batch; ++n)
        for (index_t ic = 0; ic < k.ic; ++ic)
            for_each_index<R>(k.in, [&](const std::array<index_t, R>& i, index_t ipos) {
                const double xv = double(x.at(n, ic, ipos));
                for_each_index<R>(k.kernel, [&](const std::array<index_t, R>& kk, index_t t) {
                    std::array<index_t, R> o{};
                    for (std::size_t d = 0; d < R; ++d) {
                        o[d] = i[d] * k.stride[d] - k.pad[d] + kk[d] * k.dilation[d];
                        if (o[d] < 0 || o[d] >= oe[d]) return;
                    }
                    for (index_t oc = 0; oc < k.oc; ++oc)
                        acc[std::size_t((n * k.oc + oc) * oplane + flat<R>(o, oe))] +=
                            xv * double(w[std::size_t((ic * k.oc + oc) * ntaps + t)]);
                });
            });
    for (index_t n = 0; n < k.batch; ++n)
        for (index_t oc = 0; oc < k.oc; ++oc)
            for (index_t p = 0; p < oplane; ++p) {
                auto& a = acc[std::size_t((n * k.oc + oc) * oplane + p)];
                a = ep.apply(a, n, oc, p, oplane);
            }
    return acc;
}

template <class T, std::size_t R>
void run_case(const tcase<R>& k, int variant, bool slices) {
    const auto oe = out_extent(k);
    slice_buffer<T, R> x(k.batch, k.ic, k.in, slices ? 1 : 0, slices ? 2 : 0);
    slice_buffer<T, R> y(k.batch, k.oc, oe, slices ? 2 : 0, slices ? 1 : 0);
    std::vector<T> w(static_cast<std::size_t>(k.oc * k.ic * plane_of<R>(k.kernel)));
    fill(w);
    epilogue_case<T, R> ep(variant, k.batch, k.oc, plane_of<R>(oe));
    ex::conv_transpose_geometry<R> g;
    g.in_channels = k.ic;
    g.out_channels = k.oc;
    g.kernel = k.kernel;
    g.stride = k.stride;
    g.pad = k.pad;
    g.dilation = k.dilation;
    g.output_pad = k.output_pad;
    const auto before = y.buf;
    ex::conv_transpose_forward<T, R>(g, k.batch, x.cref(), w.data(), y.ref(), ep.ep);
    std::string what = "R=" + std::to_string(R) + " ic=" + std::to_string(k.ic) + " oc=" + std::to_string(k.oc) +
                       " variant=" + std::to_string(variant) + " T=" + (sizeof(T) == 4 ? "float" : "double");
    check(y, before, reference(k, x, w, ep), what);
}

template <class T>
void all_cases() {
    const std::vector<tcase<1>> c1 = {
        {2, 3, 5, {13}, {2}, {2}, {0}, {1}, {0}},
        {1, 4, 3, {9}, {4}, {2}, {1}, {1}, {1}},
        {1, 2, 3, {7}, {3}, {1}, {1}, {2}, {0}},
    };
    const std::vector<tcase<2>> c2 = {
        {2, 3, 5, {6, 7}, {2, 2}, {2, 2}, {0, 0}, {1, 1}, {0, 0}},     // U-Net up
        {1, 5, 4, {5, 9}, {4, 4}, {2, 2}, {1, 1}, {1, 1}, {0, 0}},     // FCN x2
        {1, 3, 2, {3, 4}, {16, 16}, {8, 8}, {4, 4}, {1, 1}, {0, 0}},   // FCN x8
        {2, 4, 3, {5, 6}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}},     // output_padding
        {1, 3, 6, {7, 5}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {0, 0}},
        {1, 2, 3, {4, 5}, {3, 2}, {3, 2}, {1, 0}, {2, 1}, {2, 1}},     // dilation, anisotropic
        {1, 3, 2, {4, 5}, {1, 1}, {3, 2}, {0, 0}, {1, 1}, {0, 1}},     // stride > kernel
        {1, 6, 9, {9, 40}, {2, 2}, {2, 2}, {0, 0}, {1, 1}, {0, 0}},
    };
    const std::vector<tcase<3>> c3 = {
        {2, 3, 4, {3, 4, 5}, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}, {0, 0, 0}},   // V-Net up
        {1, 2, 3, {3, 3, 4}, {1, 2, 2}, {1, 2, 2}, {0, 0, 0}, {1, 1, 1}, {0, 0, 0}},
        {1, 2, 3, {3, 4, 3}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, {1, 0, 1}},
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

BOOST_AUTO_TEST_CASE(conv_transpose_float) { all_cases<float>(); }
BOOST_AUTO_TEST_CASE(conv_transpose_double) { all_cases<double>(); }

BOOST_AUTO_TEST_CASE(conv_transpose_thread_count_invariance) {
    const index_t C = 8;
    const std::array<index_t, 2> e{17, 23};
    ex::conv_transpose_geometry<2> g;
    g.in_channels = g.out_channels = C;
    g.kernel = {4, 4};
    g.stride = {2, 2};
    g.pad = {1, 1};
    g.dilation = {1, 1};
    g.output_pad = {0, 0};
    const std::array<index_t, 2> oe{34, 46};
    slice_buffer<float, 2> x(1, C, e, 0, 0);
    slice_buffer<float, 2> y1(1, C, oe, 0, 0), y2(1, C, oe, 0, 0);
    std::vector<float> w(static_cast<std::size_t>(C * C * 16));
    fill(w);
    epilogue_case<float, 2> ep(2, 1, C, plane_of<2>(oe));
    tbb::task_arena a1(1), a2(2);
    a1.execute([&] { ex::conv_transpose_forward<float, 2>(g, 1, x.cref(), w.data(), y1.ref(), ep.ep); });
    a2.execute([&] { ex::conv_transpose_forward<float, 2>(g, 1, x.cref(), w.data(), y2.ref(), ep.ep); });
    BOOST_TEST(y1.buf == y2.buf);
}
