// Shared helpers for the exec kernel tests: random buffers, channel-slice
// views, every epilogue variant and a plain reference epilogue.
#pragma once
#include <array>
#include <cmath>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "ctseg/exec/geometry.hpp"

namespace testing {

using ctseg::exec::activation;
using ctseg::exec::epilogue;
using ctseg::exec::index_t;
using ctseg::exec::tensor_ref;

inline std::mt19937& rng() {
    static std::mt19937 g(12345);
    return g;
}

template <class T>
void fill(std::vector<T>& v, double lo = -1.0, double hi = 1.0) {
    std::uniform_real_distribution<double> u(lo, hi);
    for (auto& x : v) x = T(u(rng()));
}

template <std::size_t R>
index_t plane_of(const std::array<index_t, R>& e) {
    index_t p = 1;
    for (auto x : e) p *= x;
    return p;
}

// A buffer of `batch` samples with `total` channels each; the view covers
// channels [offset, offset + channels).
template <class T, std::size_t R>
struct slice_buffer {
    std::vector<T> buf;
    index_t batch, total, offset, channels;
    std::array<index_t, R> extent;

    slice_buffer(index_t n, index_t c, std::array<index_t, R> e, index_t extra_before, index_t extra_after)
        : buf(std::size_t(n * (c + extra_before + extra_after) * plane_of<R>(e))),
          batch(n), total(c + extra_before + extra_after), offset(extra_before), channels(c), extent(e) {
        fill(buf);
    }
    index_t plane() const { return plane_of<R>(extent); }
    tensor_ref<T, R> ref() { return {buf.data() + offset * plane(), channels, extent, total * plane()}; }
    tensor_ref<const T, R> cref() const { return {buf.data() + offset * plane(), channels, extent, total * plane()}; }
    T at(index_t n, index_t c, index_t pos) const { return buf[std::size_t((n * total + offset + c) * plane() + pos)]; }
};

// Owns the arrays an epilogue points to. Variant:
//  0 none, 1 bias, 2 bias+relu, 3 leaky, 4 bias+prelu, 5 bias+relu+residual
//  repeated with an offset, 6 residual (no repetition, no activation), 7
//  leaky+residual with a period of 1.
template <class T, std::size_t R>
struct epilogue_case {
    std::vector<T> bias, prelu, residual;
    epilogue<T, R> ep;
    int variant;
    static constexpr int count = 8;

    epilogue_case(int v, index_t batch, index_t channels, index_t plane) : variant(v) {
        bias.resize(std::size_t(channels));
        prelu.resize(std::size_t(channels));
        fill(bias);
        fill(prelu, 0.0, 0.5);
        if (v == 1 || v == 2 || v == 4 || v == 5) ep.bias = bias.data();
        if (v == 2 || v == 5) ep.act = activation::relu;
        if (v == 3 || v == 7) {
            ep.act = activation::leaky_relu;
            ep.slope = T(0.1);
        }
        if (v == 4) {
            ep.act = activation::prelu;
            ep.prelu_slope = prelu.data();
        }
        if (v >= 5) {
            index_t period = v == 5 ? (channels > 1 ? (channels + 1) / 2 : 1) : v == 6 ? channels : 1;
            index_t offset = v == 5 ? 1 : v == 7 ? 2 : 0;
            index_t total = period + offset + 1;
            residual.resize(std::size_t(batch * total * plane));
            fill(residual);
            ep.residual = residual.data();
            ep.residual_batch_stride = total * plane;
            ep.residual_channels = period;
            ep.residual_offset = offset;
        }
    }

    double apply(double acc, index_t n, index_t c, index_t pos, index_t plane) const {
        double y = acc + (ep.bias ? double(ep.bias[c]) : 0.0);
        if (ep.act == activation::relu) y = y > 0 ? y : 0;
        if (ep.act == activation::leaky_relu) y = y >= 0 ? y : y * double(ep.slope);
        if (ep.act == activation::prelu) y = y >= 0 ? y : y * double(ep.prelu_slope[c]);
        if (ep.residual)
            y += double(ep.residual[std::size_t(n * ep.residual_batch_stride +
                                                (ep.residual_offset + c % ep.residual_channels) * plane + pos)]);
        return y;
    }
};

template <class T>
double tolerance() {
    return sizeof(T) == 4 ? 1e-5 : 1e-12;
}

// Compares the view of `got` against ref (n, c, pos order) and checks that the
// channels outside the view kept their values from `before`.
template <class T, std::size_t R>
void check(const slice_buffer<T, R>& got, const std::vector<T>& before, const std::vector<double>& ref,
           const std::string& what) {
    double maxref = 0, maxerr = 0;
    for (double r : ref) maxref = std::max(maxref, std::abs(r));
    const index_t plane = got.plane();
    bool outside_ok = true;
    for (index_t n = 0; n < got.batch; ++n)
        for (index_t c = 0; c < got.total; ++c)
            for (index_t p = 0; p < plane; ++p) {
                const std::size_t i = std::size_t((n * got.total + c) * plane + p);
                const index_t cc = c - got.offset;
                if (cc >= 0 && cc < got.channels) {
                    double r = ref[std::size_t((n * got.channels + cc) * plane + p)];
                    double e = std::abs(double(got.buf[i]) - r);
                    if (!(e <= maxerr)) maxerr = std::isnan(e) ? 1e300 : e;
                } else if (!(got.buf[i] == before[i])) {
                    outside_ok = false;
                }
            }
    const double rel = maxerr / std::max(maxref, 1e-30);
    BOOST_TEST_INFO(what << " max rel err " << rel);
    BOOST_TEST(rel <= tolerance<T>());
    BOOST_TEST_INFO(what);
    BOOST_TEST(outside_ok);
}

// Iterates over every multi-index of `e` in row-major order.
template <std::size_t R, class F>
void for_each_index(const std::array<index_t, R>& e, F&& f) {
    const index_t total = plane_of<R>(e);
    std::array<index_t, R> i{};
    for (index_t k = 0; k < total; ++k) {
        index_t q = k;
        for (std::size_t d = R; d-- > 0;) { i[d] = q % e[d]; q /= e[d]; }
        f(i, k);
    }
}

template <std::size_t R>
index_t flat(const std::array<index_t, R>& i, const std::array<index_t, R>& e) {
    index_t p = 0;
    for (std::size_t d = 0; d < R; ++d) p = p * e[d] + i[d];
    return p;
}

}  // namespace testing
