#define BOOST_TEST_MODULE exec norm
#include <boost/test/unit_test.hpp>

#include <oneapi/tbb/task_arena.h>

#include "common.hpp"
#include "ctseg/exec/norm.hpp"

using namespace testing;
namespace ex = ctseg::exec;

namespace {

template <class T, std::size_t R>
void norm_case(index_t batch, index_t C, std::array<index_t, R> e, bool affine, int variant, bool in_place,
               double offset = 0.0) {
    slice_buffer<T, R> x(batch, C, e, 1, 1);
    for (auto& v : x.buf) v = T(double(v) * 3.0 + offset);
    std::vector<T> gamma(static_cast<std::size_t>(C)), beta(static_cast<std::size_t>(C));
    fill(gamma);
    fill(beta);
    const T* g = affine ? gamma.data() : nullptr;
    const T* b = affine ? beta.data() : nullptr;
    const index_t plane = plane_of<R>(e);
    const double eps = 1e-5;
    epilogue_case<T, R> ep(variant, batch, C, plane);
    std::vector<double> ref(static_cast<std::size_t>(batch * C * plane));
    for (index_t n = 0; n < batch; ++n)
        for (index_t c = 0; c < C; ++c) {
            double m = 0, v = 0;
            for (index_t p = 0; p < plane; ++p) m += double(x.at(n, c, p));
            m /= double(plane);
            for (index_t p = 0; p < plane; ++p) v += (double(x.at(n, c, p)) - m) * (double(x.at(n, c, p)) - m);
            v /= double(plane);
            for (index_t p = 0; p < plane; ++p) {
                double y = (double(x.at(n, c, p)) - m) / std::sqrt(v + eps);
                if (affine) y = y * double(gamma[std::size_t(c)]) + double(beta[std::size_t(c)]);
                ref[std::size_t((n * C + c) * plane + p)] = ep.apply(y, n, c, p, plane);
            }
        }
    const std::string what = "instance_norm variant=" + std::to_string(variant);
    if (in_place) {
        const auto before = x.buf;
        ex::instance_norm_forward<T, R>(batch, x.cref(), x.ref(), T(eps), g, b, ep.ep);
        check(x, before, ref, what + " in place");
    } else {
        slice_buffer<T, R> y(batch, C, e, 2, 0);
        const auto before = y.buf;
        ex::instance_norm_forward<T, R>(batch, x.cref(), y.ref(), T(eps), g, b, ep.ep);
        check(y, before, ref, what);
    }
}

template <class T>
void all_cases() {
    for (int v = 0; v < epilogue_case<T, 2>::count; ++v) {
        norm_case<T, 2>(2, 3, {9, 11}, v % 2 == 0, v, v % 3 == 0);
        norm_case<T, 3>(2, 2, {4, 5, 6}, v % 2 == 1, v, v % 3 == 1);
    }
    norm_case<T, 1>(1, 2, {1001}, true, 2, false, 50.0);  // large mean
}

}  // namespace

BOOST_AUTO_TEST_CASE(instance_norm_float) { all_cases<float>(); }
BOOST_AUTO_TEST_CASE(instance_norm_double) { all_cases<double>(); }
