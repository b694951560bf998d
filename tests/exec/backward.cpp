#define BOOST_TEST_MODULE exec backward
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <oneapi/tbb/task_arena.h>

#include "common.hpp"
#include "ctseg/exec.hpp"

using namespace testing;
namespace ex = ctseg::exec;

namespace {

constexpr double fd_h = 1e-6;
constexpr double fd_tol = 1e-6;

// Central difference of loss() w.r.t. v[i].
double central(double& v, const std::function<double()>& loss) {
    const double keep = v;
    v = keep + fd_h;
    const double lp = loss();
    v = keep - fd_h;
    const double lm = loss();
    v = keep;
    return (lp - lm) / (2 * fd_h);
}

void expect_close(const std::vector<double>& got, const std::vector<double>& ref, double tol, const std::string& what) {
    BOOST_TEST_REQUIRE(got.size() == ref.size());
    double maxref = 0, maxerr = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
        maxref = std::max(maxref, std::abs(ref[i]));
        const double e = std::abs(got[i] - ref[i]);
        if (!(e <= maxerr)) maxerr = std::isnan(e) ? 1e300 : e;
    }
    const double rel = maxerr / std::max(maxref, 1e-30);
    BOOST_TEST_INFO(what << ": max rel err " << rel << " (max |ref| " << maxref << ")");
    BOOST_TEST(rel <= tol);
    BOOST_TEST_INFO(what << ": reference is not all zero");
    BOOST_TEST(maxref > 0);
}

// Values of the view of a slice buffer in (n, c, pos) order.
template <class T, std::size_t R>
std::vector<double> values(const slice_buffer<T, R>& b) {
    std::vector<double> v;
    for (index_t n = 0; n < b.batch; ++n)
        for (index_t c = 0; c < b.channels; ++c)
            for (index_t p = 0; p < b.plane(); ++p) v.push_back(double(b.at(n, c, p)));
    return v;
}

// Index in b.buf of (n, c, pos) of the view.
template <class T, std::size_t R>
std::size_t at_index(const slice_buffer<T, R>& b, index_t n, index_t c, index_t p) {
    return std::size_t((n * b.total + b.offset + c) * b.plane() + p);
}

// The channels outside the view kept their values.
template <class T, std::size_t R>
bool outside_kept(const slice_buffer<T, R>& b, const std::vector<T>& before) {
    for (index_t n = 0; n < b.batch; ++n)
        for (index_t c = 0; c < b.total; ++c) {
            if (c >= b.offset && c < b.offset + b.channels) continue;
            for (index_t p = 0; p < b.plane(); ++p) {
                const std::size_t i = std::size_t((n * b.total + c) * b.plane() + p);
                if (!(b.buf[i] == before[i])) return false;
            }
        }
    return true;
}

// sum r . y over the view.
template <std::size_t R>
double project(const slice_buffer<double, R>& r, const slice_buffer<double, R>& y) {
    double s = 0;
    for (index_t n = 0; n < y.batch; ++n)
        for (index_t c = 0; c < y.channels; ++c)
            for (index_t p = 0; p < y.plane(); ++p) s += r.at(n, c, p) * y.at(n, c, p);
    return s;
}

// Finite differences of `loss` w.r.t. every element of the view of b.
template <std::size_t R>
std::vector<double> fd_view(slice_buffer<double, R>& b, const std::function<double()>& loss) {
    std::vector<double> g;
    for (index_t n = 0; n < b.batch; ++n)
        for (index_t c = 0; c < b.channels; ++c)
            for (index_t p = 0; p < b.plane(); ++p) g.push_back(central(b.buf[at_index(b, n, c, p)], loss));
    return g;
}

std::vector<double> fd_vec(std::vector<double>& v, const std::function<double()>& loss) {
    std::vector<double> g;
    for (auto& x : v) g.push_back(central(x, loss));
    return g;
}

std::vector<double> diff(const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> d(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
    return d;
}

template <std::size_t R>
std::array<index_t, R> conv_out(const ex::conv_geometry<R>& g, const std::array<index_t, R>& in) {
    std::array<index_t, R> o{};
    for (std::size_t d = 0; d < R; ++d)
        o[d] = (in[d] + 2 * g.pad[d] - g.dilation[d] * (g.kernel[d] - 1) - 1) / g.stride[d] + 1;
    return o;
}
template <std::size_t R>
std::array<index_t, R> convt_out(const ex::conv_transpose_geometry<R>& g, const std::array<index_t, R>& in) {
    std::array<index_t, R> o{};
    for (std::size_t d = 0; d < R; ++d)
        o[d] = (in[d] - 1) * g.stride[d] - 2 * g.pad[d] + g.dilation[d] * (g.kernel[d] - 1) + g.output_pad[d] + 1;
    return o;
}

// Naive references: the correlation y[b][o] += w(a, b, k) x[a][o s + k d - p]
// visited term by term, for the weight gradient and the data gradients.
template <std::size_t R, class F>
void for_each_term(const std::array<index_t, R>& out_e, const std::array<index_t, R>& in_e,
                   const std::array<index_t, R>& kernel, const std::array<index_t, R>& stride,
                   const std::array<index_t, R>& pad, const std::array<index_t, R>& dil, F&& f) {
    for_each_index<R>(out_e, [&](const std::array<index_t, R>& o, index_t op) {
        for_each_index<R>(kernel, [&](const std::array<index_t, R>& k, index_t kf) {
            std::array<index_t, R> i{};
            for (std::size_t d = 0; d < R; ++d) {
                i[d] = o[d] * stride[d] + k[d] * dil[d] - pad[d];
                if (i[d] < 0 || i[d] >= in_e[d]) return;
            }
            f(op, kf, flat<R>(i, in_e));
        });
    });
}

// ---------------------------------------------------------------- convolution

template <std::size_t R>
void check_conv(const ex::conv_geometry<R>& g, index_t batch, std::array<index_t, R> ein, bool fd) {
    const auto eout = conv_out(g, ein);
    const index_t IC = g.in_channels, OC = g.out_channels;
    index_t K = 1;
    for (auto k : g.kernel) K *= k;
    slice_buffer<double, R> x(batch, IC, ein, 1, 1), y(batch, OC, eout, 0, 2), dy(batch, OC, eout, 2, 0);
    slice_buffer<double, R> dx(batch, IC, ein, 0, 1);
    std::vector<double> w(std::size_t(OC * IC * K)), bias(static_cast<std::size_t>(OC)), dw(w.size()), db(bias.size());
    fill(w);
    fill(bias);
    fill(dw);
    fill(db);
    const auto dx0 = dx.buf;
    const auto dw0 = dw, db0 = db;
    ex::conv_backward_data<double, R>(g, batch, dy.cref(), w.data(), dx.ref());
    ex::conv_backward_weights<double, R>(g, batch, x.cref(), dy.cref(), dw.data(), db.data());
    BOOST_TEST(outside_kept(dx, dx0));
    slice_buffer<double, R> dxz = dx;
    dxz.buf = dx0;
    const auto gx = diff(values(dx), values(dxz));
    const auto gw = diff(dw, dw0), gb = diff(db, db0);

    // Naive references.
    std::vector<double> rx(gx.size(), 0.0), rw(w.size(), 0.0), rb(bias.size(), 0.0);
    const index_t ip = plane_of<R>(ein), opl = plane_of<R>(eout);
    for (index_t n = 0; n < batch; ++n)
        for (index_t oc = 0; oc < OC; ++oc) {
            for (index_t p = 0; p < opl; ++p) rb[std::size_t(oc)] += dy.at(n, oc, p);
            for (index_t ic = 0; ic < IC; ++ic)
                for_each_term<R>(eout, ein, g.kernel, g.stride, g.pad, g.dilation, [&](index_t op, index_t kf, index_t xi) {
                    const double gy = dy.at(n, oc, op);
                    rw[std::size_t((oc * IC + ic) * K + kf)] += gy * x.at(n, ic, xi);
                    rx[std::size_t((n * IC + ic) * ip + xi)] += gy * w[std::size_t((oc * IC + ic) * K + kf)];
                });
        }
    expect_close(gx, rx, 1e-12, "conv dx vs naive");
    expect_close(gw, rw, 1e-12, "conv dw vs naive");
    expect_close(gb, rb, 1e-12, "conv db vs naive");

    if (fd) {
        ex::epilogue<double, R> ep;
        ep.bias = bias.data();
        auto loss = [&] {
            ex::conv_forward<double, R>(g, batch, x.cref(), w.data(), y.ref(), ep);
            return project(dy, y);
        };
        expect_close(gx, fd_view(x, loss), fd_tol, "conv dx vs finite differences");
        expect_close(gw, fd_vec(w, loss), fd_tol, "conv dw vs finite differences");
        expect_close(gb, fd_vec(bias, loss), fd_tol, "conv db vs finite differences");
    }

    // Accumulation: twice from zero is twice once.
    slice_buffer<double, R> a1 = dx, a2 = dx;
    std::fill(a1.buf.begin(), a1.buf.end(), 0.0);
    a2.buf = a1.buf;
    std::vector<double> w1(w.size(), 0.0), w2 = w1, b1(bias.size(), 0.0), b2 = b1;
    ex::conv_backward_data<double, R>(g, batch, dy.cref(), w.data(), a1.ref());
    ex::conv_backward_weights<double, R>(g, batch, x.cref(), dy.cref(), w1.data(), b1.data());
    for (int k = 0; k < 2; ++k) {
        ex::conv_backward_data<double, R>(g, batch, dy.cref(), w.data(), a2.ref());
        ex::conv_backward_weights<double, R>(g, batch, x.cref(), dy.cref(), w2.data(), b2.data());
    }
    bool doubled = true;
    for (std::size_t i = 0; i < a1.buf.size(); ++i) doubled = doubled && a2.buf[i] == 2 * a1.buf[i];
    for (std::size_t i = 0; i < w1.size(); ++i) doubled = doubled && w2[i] == 2 * w1[i];
    for (std::size_t i = 0; i < b1.size(); ++i) doubled = doubled && b2[i] == 2 * b1[i];
    BOOST_TEST(doubled);
}

template <std::size_t R>
ex::conv_geometry<R> conv_geom(index_t ic, index_t oc, std::array<index_t, R> k, std::array<index_t, R> s,
                               std::array<index_t, R> p, std::array<index_t, R> d) {
    ex::conv_geometry<R> g;
    g.in_channels = ic;
    g.out_channels = oc;
    g.kernel = k;
    g.stride = s;
    g.pad = p;
    g.dilation = d;
    return g;
}

// ------------------------------------------------------- transposed convolution

template <std::size_t R>
void check_conv_transpose(const ex::conv_transpose_geometry<R>& g, index_t batch, std::array<index_t, R> ein, bool fd) {
    const auto eout = convt_out(g, ein);
    const index_t IC = g.in_channels, OC = g.out_channels;
    index_t K = 1;
    for (auto k : g.kernel) K *= k;
    slice_buffer<double, R> x(batch, IC, ein, 2, 1), y(batch, OC, eout, 1, 0), dy(batch, OC, eout, 0, 1);
    slice_buffer<double, R> dx(batch, IC, ein, 1, 0);
    std::vector<double> w(std::size_t(IC * OC * K)), bias(static_cast<std::size_t>(OC)), dw(w.size()), db(bias.size());
    fill(w);
    fill(bias);
    fill(dw);
    fill(db);
    const auto dx0 = dx.buf;
    const auto dw0 = dw, db0 = db;
    ex::conv_transpose_backward_data<double, R>(g, batch, dy.cref(), w.data(), dx.ref());
    ex::conv_transpose_backward_weights<double, R>(g, batch, x.cref(), dy.cref(), dw.data(), db.data());
    BOOST_TEST(outside_kept(dx, dx0));
    slice_buffer<double, R> dxz = dx;
    dxz.buf = dx0;
    const auto gx = diff(values(dx), values(dxz));
    const auto gw = diff(dw, dw0), gb = diff(db, db0);

    // Naive: y[oc][i s + k d - p] += x[ic][i] w[ic][oc][k].
    std::vector<double> rx(gx.size(), 0.0), rw(w.size(), 0.0), rb(bias.size(), 0.0);
    const index_t ip = plane_of<R>(ein), opl = plane_of<R>(eout);
    for (index_t n = 0; n < batch; ++n)
        for (index_t oc = 0; oc < OC; ++oc) {
            for (index_t p = 0; p < opl; ++p) rb[std::size_t(oc)] += dy.at(n, oc, p);
            for (index_t ic = 0; ic < IC; ++ic)
                for_each_term<R>(ein, eout, g.kernel, g.stride, g.pad, g.dilation, [&](index_t xp, index_t kf, index_t yp) {
                    const double gy = dy.at(n, oc, yp);
                    rw[std::size_t((ic * OC + oc) * K + kf)] += gy * x.at(n, ic, xp);
                    rx[std::size_t((n * IC + ic) * ip + xp)] += gy * w[std::size_t((ic * OC + oc) * K + kf)];
                });
        }
    expect_close(gx, rx, 1e-12, "conv_transpose dx vs naive");
    expect_close(gw, rw, 1e-12, "conv_transpose dw vs naive");
    expect_close(gb, rb, 1e-12, "conv_transpose db vs naive");

    if (fd) {
        ex::epilogue<double, R> ep;
        ep.bias = bias.data();
        auto loss = [&] {
            ex::conv_transpose_forward<double, R>(g, batch, x.cref(), w.data(), y.ref(), ep);
            return project(dy, y);
        };
        expect_close(gx, fd_view(x, loss), fd_tol, "conv_transpose dx vs finite differences");
        expect_close(gw, fd_vec(w, loss), fd_tol, "conv_transpose dw vs finite differences");
        expect_close(gb, fd_vec(bias, loss), fd_tol, "conv_transpose db vs finite differences");
    }

    slice_buffer<double, R> a1 = dx, a2 = dx;
    std::fill(a1.buf.begin(), a1.buf.end(), 0.0);
    a2.buf = a1.buf;
    std::vector<double> w1(w.size(), 0.0), w2 = w1;
    ex::conv_transpose_backward_data<double, R>(g, batch, dy.cref(), w.data(), a1.ref());
    ex::conv_transpose_backward_weights<double, R>(g, batch, x.cref(), dy.cref(), w1.data(), nullptr);
    for (int k = 0; k < 2; ++k) {
        ex::conv_transpose_backward_data<double, R>(g, batch, dy.cref(), w.data(), a2.ref());
        ex::conv_transpose_backward_weights<double, R>(g, batch, x.cref(), dy.cref(), w2.data(), nullptr);
    }
    bool doubled = true;
    for (std::size_t i = 0; i < a1.buf.size(); ++i) doubled = doubled && a2.buf[i] == 2 * a1.buf[i];
    for (std::size_t i = 0; i < w1.size(); ++i) doubled = doubled && w2[i] == 2 * w1[i];
    BOOST_TEST(doubled);
}

template <std::size_t R>
ex::conv_transpose_geometry<R> convt_geom(index_t ic, index_t oc, std::array<index_t, R> k, std::array<index_t, R> s,
                                          std::array<index_t, R> p, std::array<index_t, R> d,
                                          std::array<index_t, R> op) {
    ex::conv_transpose_geometry<R> g;
    g.in_channels = ic;
    g.out_channels = oc;
    g.kernel = k;
    g.stride = s;
    g.pad = p;
    g.dilation = d;
    g.output_pad = op;
    return g;
}

}  // namespace

BOOST_AUTO_TEST_CASE(conv_backward_2d) {
    check_conv<2>(conv_geom<2>(3, 5, {3, 2}, {2, 1}, {1, 0}, {1, 2}), 2, {7, 11}, true);
    check_conv<2>(conv_geom<2>(2, 3, {1, 1}, {1, 1}, {0, 0}, {1, 1}), 3, {5, 19}, true);       // pointwise
    check_conv<2>(conv_geom<2>(2, 2, {2, 3}, {1, 3}, {1, 2}, {3, 1}), 2, {6, 13}, true);       // stride > kernel span
    check_conv<2>(conv_geom<2>(20, 19, {3, 3}, {1, 1}, {1, 1}, {1, 1}), 2, {6, 37}, false);    // several channel groups
    check_conv<2>(conv_geom<2>(17, 9, {3, 3}, {2, 2}, {1, 1}, {1, 1}), 3, {9, 40}, false);
}

BOOST_AUTO_TEST_CASE(conv_backward_3d_and_1d) {
    check_conv<3>(conv_geom<3>(2, 3, {2, 3, 3}, {1, 2, 2}, {0, 1, 2}, {2, 1, 1}), 2, {5, 6, 9}, true);
    check_conv<3>(conv_geom<3>(3, 2, {3, 1, 2}, {2, 1, 1}, {1, 0, 1}, {1, 1, 3}), 2, {5, 4, 7}, true);
    check_conv<3>(conv_geom<3>(18, 12, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}), 2, {4, 5, 21}, false);
    check_conv<1>(conv_geom<1>(3, 4, {5}, {2}, {3}, {2}), 2, {23}, true);
}

BOOST_AUTO_TEST_CASE(conv_transpose_backward_2d) {
    check_conv_transpose<2>(convt_geom<2>(3, 4, {3, 2}, {2, 3}, {1, 0}, {1, 2}, {1, 2}), 2, {4, 5}, true);
    check_conv_transpose<2>(convt_geom<2>(4, 3, {2, 2}, {2, 2}, {0, 0}, {1, 1}, {0, 0}), 2, {5, 7}, true);
    check_conv_transpose<2>(convt_geom<2>(2, 3, {3, 3}, {1, 2}, {1, 1}, {2, 3}, {1, 2}), 2, {4, 5}, true);  // output_pad >= stride
    check_conv_transpose<2>(convt_geom<2>(19, 20, {2, 2}, {2, 2}, {0, 0}, {1, 1}, {0, 1}), 2, {5, 19}, false);
}

BOOST_AUTO_TEST_CASE(conv_transpose_backward_3d) {
    check_conv_transpose<3>(convt_geom<3>(2, 3, {2, 2, 3}, {2, 2, 1}, {0, 1, 1}, {1, 1, 2}, {1, 0, 0}), 2, {3, 4, 3},
                            true);
    check_conv_transpose<3>(convt_geom<3>(3, 2, {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}, {0, 1, 1}), 2, {2, 3, 4},
                            true);
}

// ---------------------------------------------------------------- max pooling

namespace {

template <std::size_t R>
void check_pool(std::array<index_t, R> k, std::array<index_t, R> s, std::array<index_t, R> p, index_t batch,
                std::array<index_t, R> ein) {
    ex::pool_geometry<R> g;
    g.kernel = k;
    g.stride = s;
    g.pad = p;
    std::array<index_t, R> eout{};
    for (std::size_t d = 0; d < R; ++d) eout[d] = (ein[d] + 2 * p[d] - k[d]) / s[d] + 1;
    const index_t C = 3;
    slice_buffer<double, R> x(batch, C, ein, 1, 0), y(batch, C, eout, 0, 1), dy(batch, C, eout, 1, 1),
        dx(batch, C, ein, 0, 2);
    const auto dx0 = dx.buf;
    ex::max_pool_backward<double, R>(g, batch, x.cref(), dy.cref(), dx.ref());
    BOOST_TEST(outside_kept(dx, dx0));
    slice_buffer<double, R> dxz = dx;
    dxz.buf = dx0;
    const auto gx = diff(values(dx), values(dxz));
    auto loss = [&] {
        ex::max_pool_forward<double, R>(g, batch, x.cref(), y.ref());
        return project(dy, y);
    };
    expect_close(gx, fd_view(x, loss), fd_tol, "max_pool dx vs finite differences");
}

}  // namespace

BOOST_AUTO_TEST_CASE(max_pool_backward_fd) {
    check_pool<2>({3, 2}, {2, 2}, {1, 1}, 2, {7, 9});
    check_pool<2>({2, 2}, {2, 2}, {0, 0}, 2, {8, 11});
    check_pool<3>({2, 3, 2}, {1, 2, 2}, {0, 1, 0}, 2, {4, 5, 6});
    check_pool<1>({3}, {1}, {1}, 2, {10});
}

BOOST_AUTO_TEST_CASE(max_pool_backward_ties_go_to_first) {
    // All equal: each window's gradient goes to its first valid position.
    ex::pool_geometry<2> g;
    g.kernel = {3, 3};
    g.stride = {2, 2};
    g.pad = {1, 1};
    std::vector<double> x(5 * 5, 1.0), dy(3 * 3), dx(25, 0.0);
    for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = double(1 << i);
    ex::max_pool_backward<double, 2>(g, 1, {x.data(), 1, {5, 5}, 25}, {dy.data(), 1, {3, 3}, 9}, {dx.data(), 1, {5, 5}, 25});
    std::vector<double> ref(25, 0.0);
    for (index_t oh = 0; oh < 3; ++oh)
        for (index_t ow = 0; ow < 3; ++ow) {
            const index_t h = std::max<index_t>(0, oh * 2 - 1), w = std::max<index_t>(0, ow * 2 - 1);
            ref[std::size_t(h * 5 + w)] += dy[std::size_t(oh * 3 + ow)];
        }
    BOOST_TEST(dx == ref);
}

// ----------------------------------------------------------------- activations

namespace {

template <std::size_t R>
void check_activation(ex::activation act, index_t batch, std::array<index_t, R> e) {
    const index_t C = 4;
    slice_buffer<double, R> pre(batch, C, e, 1, 0), y(batch, C, e, 0, 0), dy(batch, C, e, 0, 1), dx(batch, C, e, 1, 1);
    std::vector<double> prelu(static_cast<std::size_t>(C)), dslope(static_cast<std::size_t>(C));
    fill(prelu, 0.05, 0.5);
    fill(dslope);
    const auto dslope0 = dslope;
    const double slope = 0.1;
    const auto dx0 = dx.buf;
    ex::activation_backward<double, R>(batch, act, slope, prelu.data(), pre.cref(), dy.cref(), dx.ref(), dslope.data());
    BOOST_TEST(outside_kept(dx, dx0));
    slice_buffer<double, R> dxz = dx;
    dxz.buf = dx0;
    const auto gx = diff(values(dx), values(dxz));
    ex::epilogue<double, R> ep;
    ep.act = act;
    ep.slope = slope;
    ep.prelu_slope = prelu.data();
    auto loss = [&] {
        ex::channel_affine<double, R>(batch, pre.cref(), y.ref(), nullptr, nullptr, ep);
        return project(dy, y);
    };
    expect_close(gx, fd_view(pre, loss), fd_tol, "activation dx vs finite differences");
    if (act == ex::activation::prelu)
        expect_close(diff(dslope, dslope0), fd_vec(prelu, loss), fd_tol, "prelu slope vs finite differences");
    else
        BOOST_TEST(dslope == dslope0);
}

}  // namespace

BOOST_AUTO_TEST_CASE(activation_backward_fd) {
    for (auto act : {ex::activation::none, ex::activation::relu, ex::activation::leaky_relu, ex::activation::prelu}) {
        check_activation<2>(act, 2, {5, 7});
        check_activation<3>(act, 3, {2, 3, 5});
    }
}

BOOST_AUTO_TEST_CASE(relu_backward_at_zero) {
    std::vector<double> pre{-1.0, 0.0, 2.0, 0.0}, dy{1.0, 2.0, 3.0, 4.0}, dx(4, 10.0);
    ex::activation_backward<double, 1>(1, ex::activation::relu, 0.0, nullptr, {pre.data(), 1, {4}, 4},
                                       {dy.data(), 1, {4}, 4}, {dx.data(), 1, {4}, 4}, nullptr);
    BOOST_TEST(dx == (std::vector<double>{10.0, 10.0, 13.0, 10.0}), boost::test_tools::per_element());
    std::vector<double> s{0.25}, ds{1.0}, dx2(4, 0.0);
    ex::activation_backward<double, 1>(1, ex::activation::prelu, 0.0, s.data(), {pre.data(), 1, {4}, 4},
                                       {dy.data(), 1, {4}, 4}, {dx2.data(), 1, {4}, 4}, ds.data());
    BOOST_TEST(dx2 == (std::vector<double>{0.25, 0.5, 3.0, 1.0}), boost::test_tools::per_element());
    BOOST_TEST(ds[0] == 1.0 - 1.0);  // sum of dy * pre over pre <= 0: -1 + 0 + 0
}

// ------------------------------------------------------------- normalisations

BOOST_AUTO_TEST_CASE(batch_norm_train_fd) {
    const index_t batch = 3, C = 3;
    const std::array<index_t, 2> e{4, 5};
    slice_buffer<double, 2> x(batch, C, e, 1, 0), y(batch, C, e, 0, 1), dy(batch, C, e, 1, 1), dx(batch, C, e, 0, 1);
    std::vector<double> gamma(3), beta(3), rm(3), rv(3, 1.0), sm(3), si(3), dg(3), db(3);
    fill(gamma, 0.5, 1.5);
    fill(beta);
    fill(dg);
    fill(db);
    const double eps = 1e-5;
    auto loss = [&] {
        std::vector<double> a(3), b(3, 1.0), c(3), d(3);
        ex::batch_norm_train_forward<double, 2>(batch, x.cref(), y.ref(), gamma.data(), beta.data(), eps, 0.1, a.data(),
                                                b.data(), c.data(), d.data());
        return project(dy, y);
    };
    ex::batch_norm_train_forward<double, 2>(batch, x.cref(), y.ref(), gamma.data(), beta.data(), eps, 0.1, rm.data(),
                                            rv.data(), sm.data(), si.data());
    const auto dx0 = dx.buf;
    const auto dg0 = dg, db0 = db;
    ex::batch_norm_backward<double, 2>(batch, x.cref(), dy.cref(), gamma.data(), sm.data(), si.data(), dx.ref(),
                                       dg.data(), db.data());
    BOOST_TEST(outside_kept(dx, dx0));
    slice_buffer<double, 2> dxz = dx;
    dxz.buf = dx0;
    expect_close(diff(values(dx), values(dxz)), fd_view(x, loss), fd_tol, "batch_norm dx vs finite differences");
    expect_close(diff(dg, dg0), fd_vec(gamma, loss), fd_tol, "batch_norm dgamma vs finite differences");
    expect_close(diff(db, db0), fd_vec(beta, loss), fd_tol, "batch_norm dbeta vs finite differences");
}

BOOST_AUTO_TEST_CASE(batch_norm_running_statistics) {
    const index_t batch = 2, C = 2;
    const std::array<index_t, 1> e{3};
    // channel 0: 1 2 3 | 4 5 6 ; channel 1: 0 0 0 | 0 0 6
    std::vector<double> x{1, 2, 3, 0, 0, 0, 4, 5, 6, 0, 0, 6}, y(12);
    std::vector<double> rm{0.5, -1.0}, rv{2.0, 1.0}, sm(2), si(2);
    ex::batch_norm_train_forward<double, 1>(batch, {x.data(), C, e, 6}, {y.data(), C, e, 6}, nullptr, nullptr, 1e-5, 0.1,
                                            rm.data(), rv.data(), sm.data(), si.data());
    // channel 0: mean 3.5, biased var 17.5 / 6, unbiased 3.5; channel 1: mean 1, biased var 5, unbiased 6.
    BOOST_TEST(sm[0] == 3.5, boost::test_tools::tolerance(1e-14));
    BOOST_TEST(sm[1] == 1.0, boost::test_tools::tolerance(1e-14));
    BOOST_TEST(si[0] == 1.0 / std::sqrt(17.5 / 6 + 1e-5), boost::test_tools::tolerance(1e-14));
    BOOST_TEST(si[1] == 1.0 / std::sqrt(5.0 + 1e-5), boost::test_tools::tolerance(1e-14));
    BOOST_TEST(rm[0] == 0.9 * 0.5 + 0.1 * 3.5, boost::test_tools::tolerance(1e-14));
    BOOST_TEST(rm[1] == 0.9 * -1.0 + 0.1 * 1.0, boost::test_tools::tolerance(1e-14));
    BOOST_TEST(rv[0] == 0.9 * 2.0 + 0.1 * 3.5, boost::test_tools::tolerance(1e-14));
    BOOST_TEST(rv[1] == 0.9 * 1.0 + 0.1 * 6.0, boost::test_tools::tolerance(1e-14));
    BOOST_TEST(y[0] == (1 - 3.5) * si[0], boost::test_tools::tolerance(1e-14));
    BOOST_TEST(y[11] == (6 - 1.0) * si[1], boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(instance_norm_backward_fd) {
    for (bool affine : {true, false}) {
        const index_t batch = 2, C = 3;
        const std::array<index_t, 3> e{2, 3, 4};
        slice_buffer<double, 3> x(batch, C, e, 0, 1), y(batch, C, e, 1, 0), dy(batch, C, e, 0, 0),
            dx(batch, C, e, 1, 1);
        std::vector<double> gamma(3), beta(3), dg(3), db(3);
        fill(gamma, 0.5, 1.5);
        fill(beta);
        fill(dg);
        fill(db);
        const double eps = 1e-5;
        auto loss = [&] {
            ex::instance_norm_forward<double, 3>(batch, x.cref(), y.ref(), eps, affine ? gamma.data() : nullptr,
                                                 affine ? beta.data() : nullptr, {});
            return project(dy, y);
        };
        const auto dx0 = dx.buf;
        const auto dg0 = dg, db0 = db;
        ex::instance_norm_backward<double, 3>(batch, x.cref(), dy.cref(), eps, affine ? gamma.data() : nullptr,
                                              dx.ref(), dg.data(), affine ? db.data() : nullptr);
        BOOST_TEST(outside_kept(dx, dx0));
        slice_buffer<double, 3> dxz = dx;
        dxz.buf = dx0;
        expect_close(diff(values(dx), values(dxz)), fd_view(x, loss), fd_tol, "instance_norm dx vs finite differences");
        if (affine) {
            expect_close(diff(dg, dg0), fd_vec(gamma, loss), fd_tol, "instance_norm dgamma vs finite differences");
            expect_close(diff(db, db0), fd_vec(beta, loss), fd_tol, "instance_norm dbeta vs finite differences");
        } else {
            BOOST_TEST(db == db0);
        }
    }
}

// ------------------------------------------------------------ crop and tiling

BOOST_AUTO_TEST_CASE(crop_tile_residual_backward) {
    const index_t batch = 2, C = 3;
    {
        const std::array<index_t, 3> big{5, 8, 9}, small{2, 5, 6};
        slice_buffer<double, 3> dy(batch, C, small, 1, 0), dx(batch, C, big, 0, 1), y(batch, C, small, 0, 0),
            x(batch, C, big, 1, 1);
        const auto dx0 = dx.buf;
        ex::copy_center_crop_backward<double, 3>(batch, dy.cref(), dx.ref());
        BOOST_TEST(outside_kept(dx, dx0));
        slice_buffer<double, 3> dxz = dx;
        dxz.buf = dx0;
        auto loss = [&] {
            ex::copy_center_crop<double, 3>(batch, x.cref(), y.ref());
            return project(dy, y);
        };
        expect_close(diff(values(dx), values(dxz)), fd_view(x, loss), fd_tol, "crop backward vs finite differences");
    }
    {
        const std::array<index_t, 2> e{3, 7};
        const index_t period = 2, offset = 1, OC = 5;
        slice_buffer<double, 2> dy(batch, OC, e, 0, 1), dx(batch, 4, e, 1, 0), x(batch, 4, e, 0, 0),
            y(batch, OC, e, 0, 0);
        const auto dx0 = dx.buf;
        ex::tile_channels_backward<double, 2>(batch, dy.cref(), offset, period, dx.ref());
        slice_buffer<double, 2> dxz = dx;
        dxz.buf = dx0;
        auto loss = [&] {
            ex::tile_channels<double, 2>(batch, x.cref(), offset, period, y.ref());
            return project(dy, y);
        };
        const auto fd = fd_view(x, loss);
        expect_close(diff(values(dx), values(dxz)), fd, fd_tol, "tile backward vs finite differences");

        // The residual backward is the same map; a period of 0 means 1.
        slice_buffer<double, 2> r1 = dxz, r2 = dxz;
        ex::residual_backward<double, 2>(batch, dy.cref(), offset, period, r1.ref());
        BOOST_TEST(r1.buf == dx.buf);
        ex::residual_backward<double, 2>(batch, dy.cref(), 0, 0, r2.ref());
        slice_buffer<double, 2> r3 = dxz;
        ex::tile_channels_backward<double, 2>(batch, dy.cref(), 0, 1, r3.ref());
        BOOST_TEST(r2.buf == r3.buf);
    }
}

// ------------------------------------------------------------------ determinism

namespace {

// Runs f(state) in arenas of 1, 2, 7 and 16 threads from the same initial state and
// checks that the final states are bit-identical.
template <class F>
void same_in_arenas(const std::vector<std::vector<float>>& init, F&& f, const std::string& what) {
    std::vector<std::vector<std::vector<float>>> runs;
    for (int threads : {1, 2, 7, 16}) {
        auto s = init;
        tbb::task_arena arena(threads);
        arena.execute([&] { f(s); });
        runs.push_back(std::move(s));
    }
    BOOST_TEST_INFO(what);
    BOOST_TEST((runs[0] == runs[1] && runs[0] == runs[2] && runs[0] == runs[3]));
}

std::vector<float> rand_f(index_t n) {
    std::vector<float> v(static_cast<std::size_t>(n));
    fill(v);
    return v;
}

}  // namespace

BOOST_AUTO_TEST_CASE(bit_identical_across_thread_counts) {
    using F = float;
    const index_t batch = 3;
    {
        const auto g = conv_geom<2>(20, 19, {3, 3}, {1, 1}, {1, 1}, {1, 1});
        const std::array<index_t, 2> e{24, 45};
        const index_t pl = plane_of<2>(e);
        const auto x = rand_f(batch * 20 * pl), dy = rand_f(batch * 19 * pl), w = rand_f(19 * 20 * 9);
        same_in_arenas({rand_f(batch * 20 * pl), rand_f(19 * 20 * 9), rand_f(19)}, [&](auto& s) {
            ex::conv_backward_data<F, 2>(g, batch, {dy.data(), 19, e, 19 * pl}, w.data(), {s[0].data(), 20, e, 20 * pl});
            ex::conv_backward_weights<F, 2>(g, batch, {x.data(), 20, e, 20 * pl}, {dy.data(), 19, e, 19 * pl}, s[1].data(),
                                            s[2].data());
        }, "conv backward 2d");
    }
    {
        const auto g = conv_geom<3>(3, 5, {3, 3, 3}, {2, 1, 2}, {1, 1, 1}, {1, 2, 1});
        const std::array<index_t, 3> e{9, 8, 17};
        const auto eo = conv_out(g, e);
        const index_t pl = plane_of<3>(e), po = plane_of<3>(eo);
        const auto x = rand_f(batch * 3 * pl), dy = rand_f(batch * 5 * po), w = rand_f(5 * 3 * 27);
        same_in_arenas({rand_f(batch * 3 * pl), rand_f(5 * 3 * 27), rand_f(5)}, [&](auto& s) {
            ex::conv_backward_data<F, 3>(g, batch, {dy.data(), 5, eo, 5 * po}, w.data(), {s[0].data(), 3, e, 3 * pl});
            ex::conv_backward_weights<F, 3>(g, batch, {x.data(), 3, e, 3 * pl}, {dy.data(), 5, eo, 5 * po}, s[1].data(),
                                            s[2].data());
        }, "conv backward 3d");
    }
    {
        const auto g = convt_geom<2>(6, 4, {2, 2}, {2, 2}, {0, 0}, {1, 1}, {1, 0});
        const std::array<index_t, 2> e{13, 20};
        const auto eo = convt_out(g, e);
        const index_t pl = plane_of<2>(e), po = plane_of<2>(eo);
        const auto x = rand_f(batch * 6 * pl), dy = rand_f(batch * 4 * po), w = rand_f(6 * 4 * 4);
        same_in_arenas({rand_f(batch * 6 * pl), rand_f(6 * 4 * 4), rand_f(4)}, [&](auto& s) {
            ex::conv_transpose_backward_data<F, 2>(g, batch, {dy.data(), 4, eo, 4 * po}, w.data(),
                                                   {s[0].data(), 6, e, 6 * pl});
            ex::conv_transpose_backward_weights<F, 2>(g, batch, {x.data(), 6, e, 6 * pl}, {dy.data(), 4, eo, 4 * po},
                                                      s[1].data(), s[2].data());
        }, "conv_transpose backward");
    }
    {
        ex::pool_geometry<2> g;
        g.kernel = {3, 3};
        g.stride = {2, 2};
        g.pad = {1, 1};
        const std::array<index_t, 2> e{21, 30}, eo{11, 15};
        const index_t C = 4, pl = plane_of<2>(e), po = plane_of<2>(eo);
        const auto x = rand_f(batch * C * pl), dy = rand_f(batch * C * po);
        same_in_arenas({rand_f(batch * C * pl)}, [&](auto& s) {
            ex::max_pool_backward<F, 2>(g, batch, {x.data(), C, e, C * pl}, {dy.data(), C, eo, C * po},
                                        {s[0].data(), C, e, C * pl});
        }, "max_pool backward");
    }
    {
        const std::array<index_t, 2> e{150, 130};  // several reduction chunks per plane
        const index_t C = 3, pl = plane_of<2>(e);
        const auto x = rand_f(batch * C * pl), dy = rand_f(batch * C * pl), slope = rand_f(C), gamma = rand_f(C),
                   beta = rand_f(C);
        const tensor_ref<const F, 2> xr{x.data(), C, e, C * pl}, dyr{dy.data(), C, e, C * pl};
        same_in_arenas({rand_f(batch * C * pl), rand_f(C)}, [&](auto& s) {
            ex::activation_backward<F, 2>(batch, ex::activation::prelu, F(0), slope.data(), xr, dyr,
                                          {s[0].data(), C, e, C * pl}, s[1].data());
        }, "prelu backward");
        same_in_arenas({rand_f(batch * C * pl), rand_f(C), rand_f(C), rand_f(C), rand_f(C), rand_f(C), rand_f(C),
                        rand_f(C), rand_f(batch * C * pl)},
                       [&](auto& s) {
            ex::batch_norm_train_forward<F, 2>(batch, xr, {s[0].data(), C, e, C * pl}, gamma.data(), beta.data(),
                                               F(1e-5), F(0.1), s[1].data(), s[2].data(), s[3].data(), s[4].data());
            ex::batch_norm_backward<F, 2>(batch, xr, dyr, gamma.data(), s[3].data(), s[4].data(),
                                          {s[8].data(), C, e, C * pl}, s[5].data(), s[6].data());
        }, "batch_norm train forward and backward");
        same_in_arenas({rand_f(batch * C * pl), rand_f(C), rand_f(C)}, [&](auto& s) {
            ex::instance_norm_backward<F, 2>(batch, xr, dyr, F(1e-5), gamma.data(), {s[0].data(), C, e, C * pl},
                                             s[1].data(), s[2].data());
        }, "instance_norm backward");
        same_in_arenas({rand_f(batch * 1 * pl)}, [&](auto& s) {
            ex::tile_channels_backward<F, 2>(batch, dyr, 0, 1, {s[0].data(), 1, e, pl});
        }, "tile backward");
    }
}
