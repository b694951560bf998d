#define BOOST_TEST_MODULE exec pointwise
#include <boost/test/unit_test.hpp>

#include <oneapi/tbb/task_arena.h>

#include "common.hpp"
#include "ctseg/exec/pointwise.hpp"

using namespace testing;
namespace ex = ctseg::exec;

namespace {

// mode: 0 scale and shift, 1 shift only, 2 scale only, 3 neither.
template <class T, std::size_t R>
void affine_case(index_t batch, index_t C, std::array<index_t, R> e, int mode, int variant, bool in_place) {
    slice_buffer<T, R> x(batch, C, e, 1, 2);
    std::vector<T> scale(static_cast<std::size_t>(C)), shift(static_cast<std::size_t>(C));
    fill(scale);
    fill(shift);
    const T* sc = (mode == 0 || mode == 2) ? scale.data() : nullptr;
    const T* sh = (mode == 0 || mode == 1) ? shift.data() : nullptr;
    const index_t plane = plane_of<R>(e);
    epilogue_case<T, R> ep(variant, batch, C, plane);
    std::vector<double> ref(static_cast<std::size_t>(batch * C * plane));
    for (index_t n = 0; n < batch; ++n)
        for (index_t c = 0; c < C; ++c)
            for (index_t p = 0; p < plane; ++p) {
                double v = double(x.at(n, c, p)) * (sc ? double(sc[c]) : 1.0) + (sh ? double(sh[c]) : 0.0);
                ref[std::size_t((n * C + c) * plane + p)] = ep.apply(v, n, c, p, plane);
            }
    const std::string what = "channel_affine mode=" + std::to_string(mode) + " variant=" + std::to_string(variant);
    if (in_place) {
        const auto before = x.buf;
        ex::channel_affine<T, R>(batch, x.cref(), x.ref(), sc, sh, ep.ep);
        check(x, before, ref, what + " in place");
    } else {
        slice_buffer<T, R> y(batch, C, e, 0, 1);
        const auto before = y.buf;
        ex::channel_affine<T, R>(batch, x.cref(), y.ref(), sc, sh, ep.ep);
        check(y, before, ref, what);
    }
}

template <class T>
void affine_all() {
    for (int mode = 0; mode < 4; ++mode)
        for (int v = 0; v < epilogue_case<T, 2>::count; ++v) {
            affine_case<T, 2>(2, 5, {7, 9}, mode, v, (mode + v) % 2 == 0);
            affine_case<T, 3>(2, 3, {3, 5, 4}, mode, v, (mode + v) % 2 == 1);
        }
    affine_case<T, 1>(3, 2, {40000}, 0, 5, true);  // several chunks per plane
}

}  // namespace

BOOST_AUTO_TEST_CASE(channel_affine_float) { affine_all<float>(); }
BOOST_AUTO_TEST_CASE(channel_affine_double) { affine_all<double>(); }

BOOST_AUTO_TEST_CASE(tile_channels_test) {
    const std::array<index_t, 3> e{3, 4, 5};
    const index_t plane = plane_of<3>(e);
    slice_buffer<double, 3> x(2, 4, e, 1, 1);
    slice_buffer<double, 3> y(2, 7, e, 2, 1);
    std::vector<double> ref(static_cast<std::size_t>(2 * 7 * plane));
    for (index_t n = 0; n < 2; ++n)
        for (index_t c = 0; c < 7; ++c)
            for (index_t p = 0; p < plane; ++p) ref[std::size_t((n * 7 + c) * plane + p)] = x.at(n, 1 + c % 3, p);
    const auto before = y.buf;
    ex::tile_channels<double, 3>(2, x.cref(), 1, 3, y.ref());
    check(y, before, ref, "tile_channels");
}

template <class T, std::size_t R>
void crop_case(std::array<index_t, R> in, std::array<index_t, R> out) {
    slice_buffer<T, R> x(2, 3, in, 1, 0);
    slice_buffer<T, R> y(2, 3, out, 2, 4);  // a channel slice of a concat buffer
    const index_t oplane = plane_of<R>(out);
    std::vector<double> ref(static_cast<std::size_t>(2 * 3 * oplane));
    for (index_t n = 0; n < 2; ++n)
        for (index_t c = 0; c < 3; ++c)
            for_each_index<R>(out, [&](const std::array<index_t, R>& o, index_t opos) {
                std::array<index_t, R> xi{};
                for (std::size_t d = 0; d < R; ++d) xi[d] = o[d] + (in[d] - out[d]) / 2;
                ref[std::size_t((n * 3 + c) * oplane + opos)] = x.at(n, c, flat<R>(xi, in));
            });
    const auto before = y.buf;
    ex::copy_center_crop<T, R>(2, x.cref(), y.ref());
    check(y, before, ref, "copy_center_crop");
}

BOOST_AUTO_TEST_CASE(copy_center_crop_test) {
    crop_case<float, 2>({13, 17}, {8, 10});
    crop_case<float, 2>({9, 9}, {9, 9});
    crop_case<double, 3>({7, 8, 9}, {4, 5, 9});
    crop_case<double, 1>({21}, {12});
}

template <class T, std::size_t R>
void softmax_case(index_t batch, index_t C, std::array<index_t, R> e, bool in_place) {
    slice_buffer<T, R> x(batch, C, e, 2, 1);
    for (auto& v : x.buf) v *= T(30);  // large logits: needs the max subtraction
    const index_t plane = plane_of<R>(e);
    std::vector<double> ref(static_cast<std::size_t>(batch * C * plane));
    std::vector<std::int64_t> lref(static_cast<std::size_t>(batch * plane));
    for (index_t n = 0; n < batch; ++n)
        for (index_t p = 0; p < plane; ++p) {
            double m = -1e300, s = 0;
            index_t arg = 0;
            for (index_t c = 0; c < C; ++c)
                if (double(x.at(n, c, p)) > m) {
                    m = double(x.at(n, c, p));
                    arg = c;
                }
            lref[std::size_t(n * plane + p)] = arg;
            for (index_t c = 0; c < C; ++c) s += std::exp(double(x.at(n, c, p)) - m);
            for (index_t c = 0; c < C; ++c)
                ref[std::size_t((n * C + c) * plane + p)] = std::exp(double(x.at(n, c, p)) - m) / s;
        }
    std::vector<std::int64_t> labels(std::size_t(batch * plane), -1);
    ex::argmax_channels<T, R>(batch, x.cref(), labels.data());
    BOOST_TEST(labels == lref);
    if (in_place) {
        const auto before = x.buf;
        ex::softmax_channels<T, R>(batch, x.cref(), x.ref());
        check(x, before, ref, "softmax in place");
    } else {
        slice_buffer<T, R> y(batch, C, e, 1, 1);
        const auto before = y.buf;
        ex::softmax_channels<T, R>(batch, x.cref(), y.ref());
        check(y, before, ref, "softmax");
    }
}

BOOST_AUTO_TEST_CASE(softmax_argmax) {
    softmax_case<float, 2>(2, 5, {9, 13}, false);
    softmax_case<double, 2>(2, 3, {40, 41}, true);
    softmax_case<float, 3>(1, 4, {5, 6, 7}, true);
    softmax_case<double, 3>(2, 2, {3, 4, 5}, false);
    softmax_case<float, 1>(1, 1, {10}, false);
}

BOOST_AUTO_TEST_CASE(argmax_first_max_wins) {
    // Ties: the first channel holding the maximum wins.
    std::vector<float> x = {1, 2, 3, 3,   // c0
                            3, 2, 1, 3,   // c1
                            3, 2, 3, 0};  // c2
    std::vector<std::int64_t> l(4);
    ex::argmax_channels<float, 1>(1, {x.data(), 3, {4}, 12}, l.data());
    BOOST_TEST(l == (std::vector<std::int64_t>{1, 0, 0, 0}), boost::test_tools::per_element());
}
