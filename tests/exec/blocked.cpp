#define BOOST_TEST_MODULE exec blocked
#include <boost/test/unit_test.hpp>

#include <oneapi/tbb/task_arena.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "common.hpp"
#include "ctseg/exec/blocked.hpp"
#include "ctseg/exec/conv_chain.hpp"

using namespace testing;
namespace ex = ctseg::exec;

// Channel-blocked kernels against plain double-precision loops over NCHW
// data: inputs are made NCHW, converted with a naive index formula (not the
// library's), run, and the blocked outputs read back with the same formula.

namespace {

constexpr index_t B = ex::channel_block;

// Index of (n, c, pos) in a blocked buffer of `total` channels per sample.
std::size_t blocked_index(index_t n, index_t c, index_t pos, index_t total, index_t plane) {
    return std::size_t(n * total * plane + (c / B * plane + pos) * B + c % B);
}

std::vector<float> blocked_copy(const std::vector<float>& nchw, index_t batch, index_t channels, index_t plane) {
    std::vector<float> b(nchw.size());
    for (index_t n = 0; n < batch; ++n)
        for (index_t c = 0; c < channels; ++c)
            for (index_t p = 0; p < plane; ++p)
                b[blocked_index(n, c, p, channels, plane)] = nchw[std::size_t((n * channels + c) * plane + p)];
    return b;
}

double act(double y, int variant, const std::vector<float>& prelu, index_t c) {
    if (variant == 2) return y > 0 ? y : 0;
    if (variant == 3) return y >= 0 ? y : 0.1 * y;
    if (variant == 4) return y >= 0 ? y : y * double(prelu[std::size_t(c)]);
    return y;
}

// The epilogue variants a blocked kernel takes (no residual): 0 none, 1
// bias, 2 bias + relu, 3 leaky relu, 4 bias + prelu.
ex::epilogue<float, 2> epilogue_for(int variant, const std::vector<float>& bias, const std::vector<float>& prelu) {
    ex::epilogue<float, 2> e;
    if (variant == 1 || variant == 2 || variant == 4) e.bias = bias.data();
    if (variant == 2) e.act = ex::activation::relu;
    if (variant == 3) {
        e.act = ex::activation::leaky_relu;
        e.slope = 0.1f;
    }
    if (variant == 4) {
        e.act = ex::activation::prelu;
        e.prelu_slope = prelu.data();
    }
    return e;
}

std::vector<float> unblocked(const std::vector<float>& b, index_t batch, index_t channels, index_t plane) {
    std::vector<float> x(b.size());
    for (index_t n = 0; n < batch; ++n)
        for (index_t c = 0; c < channels; ++c)
            for (index_t p = 0; p < plane; ++p) x[std::size_t((n * channels + c) * plane + p)] = b[blocked_index(n, c, p, channels, plane)];
    return x;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& ref, const std::string& what) {
    double maxref = 1e-30, maxerr = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
        maxref = std::max(maxref, std::abs(ref[i]));
        const double e = std::abs(double(got[i]) - ref[i]);
        maxerr = std::isnan(e) ? 1e300 : std::max(maxerr, e);
    }
    BOOST_TEST_INFO(what << " max rel err " << maxerr / maxref);
    BOOST_TEST(maxerr / maxref <= 2e-6);
}

struct conv_case {
    index_t ic, oc, h, w, k, pad, dil;
    index_t oh() const { return h + 2 * pad - dil * (k - 1); }
    index_t ow() const { return w + 2 * pad - dil * (k - 1); }
};

// A plain stride-1 convolution in double of NCHW x, w [oc][ic][k][k], with
// the epilogue variant.
std::vector<double> naive_conv(const conv_case& k, index_t batch, const std::vector<double>& x, const std::vector<float>& w,
                               const std::vector<float>& bias, const std::vector<float>& prelu, int variant) {
    const index_t oh = k.oh(), ow = k.ow();
    std::vector<double> ref(std::size_t(batch * k.oc * oh * ow));
    for (index_t n = 0; n < batch; ++n)
        for (index_t o = 0; o < k.oc; ++o)
            for (index_t y = 0; y < oh; ++y)
                for (index_t xx = 0; xx < ow; ++xx) {
                    double acc = 0;
                    for (index_t i = 0; i < k.ic; ++i)
                        for (index_t ky = 0; ky < k.k; ++ky)
                            for (index_t kx = 0; kx < k.k; ++kx) {
                                const index_t iy = y - k.pad + ky * k.dil, ix = xx - k.pad + kx * k.dil;
                                if (iy < 0 || iy >= k.h || ix < 0 || ix >= k.w) continue;
                                acc += x[std::size_t(((n * k.ic + i) * k.h + iy) * k.w + ix)] *
                                       double(w[std::size_t(((o * k.ic + i) * k.k + ky) * k.k + kx)]);
                            }
                    if (variant == 1 || variant == 2 || variant == 4) acc += double(bias[std::size_t(o)]);
                    ref[std::size_t(((n * k.oc + o) * oh + y) * ow + xx)] = act(acc, variant, prelu, o);
                }
    return ref;
}

// Runs one convolution blocked (input in the given layout) and compares with
// the naive result, for 1 and 2 threads.
void check_conv(const conv_case& k, bool in_blocked, int variant) {
    const index_t batch = 2, oh = k.oh(), ow = k.ow();
    std::vector<float> x(std::size_t(batch * k.ic * k.h * k.w)), w(std::size_t(k.oc * k.ic * k.k * k.k)),
        bias(std::size_t(k.oc)), prelu(std::size_t(k.oc));
    fill(x);
    fill(w);
    fill(bias);
    fill(prelu, 0.0, 0.5);
    const auto ref = naive_conv(k, batch, std::vector<double>(x.begin(), x.end()), w, bias, prelu, variant);
    const ex::conv_geometry<2> g{k.ic, k.oc, {k.k, k.k}, {1, 1}, {k.pad, k.pad}, {k.dil, k.dil}};
    BOOST_REQUIRE(ex::blocked_conv_supported(g));
    const auto packed = ex::pack_blocked_conv(g, w.data());
    const std::vector<float> xin = in_blocked ? blocked_copy(x, batch, k.ic, k.h * k.w) : x;
    for (int threads : {1, 2}) {
        std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
        tbb::task_arena(threads).execute([&] {
            ex::conv_forward_blocked(g, batch, {xin.data(), k.ic, {k.h, k.w}, k.ic * k.h * k.w}, in_blocked, packed.data(),
                                     {y.data(), k.oc, {oh, ow}, k.oc * oh * ow}, epilogue_for(variant, bias, prelu));
        });
        std::ostringstream what;
        what << "conv " << k.ic << "->" << k.oc << " " << k.h << "x" << k.w << " k" << k.k << " pad " << k.pad << " dil " << k.dil
             << (in_blocked ? " blocked" : " nchw") << " in, epilogue " << variant << ", " << threads << " thread(s)";
        expect_close(unblocked(y, batch, k.oc, oh * ow), ref, what.str());
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(conv_matches_naive) {
    // Widths below, at and above the pixels of one call; borders of 1, 2 and
    // 0 columns; channel counts in part blocks (NCHW input) and in whole ones.
    const conv_case cases[] = {
        {16, 16, 5, 3, 3, 1, 1},  {32, 32, 7, 13, 3, 1, 1}, {16, 48, 9, 30, 3, 1, 1}, {32, 16, 6, 12, 3, 2, 2},
        {48, 32, 8, 17, 5, 0, 1}, {16, 32, 4, 25, 1, 0, 1}, {32, 32, 3, 2, 3, 1, 1},  {16, 16, 1, 40, 3, 1, 1},
        // Tall enough that border columns take several calls down the column.
        {16, 32, 30, 9, 3, 1, 1}, {32, 16, 29, 14, 3, 2, 2}, {16, 16, 26, 6, 5, 1, 1},
    };
    for (const auto& k : cases)
        for (int variant = 0; variant < 5; ++variant) check_conv(k, true, variant);
    const conv_case nchw_cases[] = {{1, 32, 9, 29, 3, 1, 1}, {3, 16, 6, 14, 3, 1, 1}, {20, 32, 5, 13, 3, 2, 2}, {32, 32, 5, 11, 3, 1, 1}};
    for (const auto& k : nchw_cases)
        for (int variant : {0, 2, 4}) check_conv(k, false, variant);
}

BOOST_AUTO_TEST_CASE(conv_transpose_matches_naive) {
    struct ct_case {
        index_t ic, oc, h, w, s;
    };
    const ct_case cases[] = {{16, 16, 3, 5, 2}, {32, 32, 4, 13, 2}, {64, 48, 5, 7, 2}, {16, 32, 3, 4, 3}, {5, 16, 4, 15, 2}};
    for (const auto& k : cases)
        for (bool in_blocked : {true, false}) {
            if (in_blocked && k.ic % B) continue;
            for (int variant : {0, 2, 4}) {
                const index_t batch = 2, oh = k.h * k.s, ow = k.w * k.s;
                std::vector<float> x(std::size_t(batch * k.ic * k.h * k.w)), w(std::size_t(k.ic * k.oc * k.s * k.s)),
                    bias(std::size_t(k.oc)), prelu(std::size_t(k.oc));
                fill(x);
                fill(w);
                fill(bias);
                fill(prelu, 0.0, 0.5);
                std::vector<double> ref(std::size_t(batch * k.oc * oh * ow), 0.0);
                for (index_t n = 0; n < batch; ++n)
                    for (index_t o = 0; o < k.oc; ++o)
                        for (index_t y = 0; y < oh; ++y)
                            for (index_t xx = 0; xx < ow; ++xx) {
                                double acc = 0;
                                for (index_t i = 0; i < k.ic; ++i)
                                    acc += double(x[std::size_t(((n * k.ic + i) * k.h + y / k.s) * k.w + xx / k.s)]) *
                                           double(w[std::size_t(((i * k.oc + o) * k.s + y % k.s) * k.s + xx % k.s)]);
                                if (variant != 0) acc += double(bias[std::size_t(o)]);
                                ref[std::size_t(((n * k.oc + o) * oh + y) * ow + xx)] = act(acc, variant, prelu, o);
                            }
                ex::conv_transpose_geometry<2> g;
                g.in_channels = k.ic;
                g.out_channels = k.oc;
                g.kernel = g.stride = {k.s, k.s};
                g.dilation = {1, 1};
                BOOST_REQUIRE(ex::blocked_conv_transpose_supported(g));
                const auto packed = ex::pack_blocked_conv_transpose(g, w.data());
                const std::vector<float> xin = in_blocked ? blocked_copy(x, batch, k.ic, k.h * k.w) : x;
                std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
                tbb::task_arena(2).execute([&] {
                    ex::conv_transpose_forward_blocked(g, batch, {xin.data(), k.ic, {k.h, k.w}, k.ic * k.h * k.w}, in_blocked,
                                                       packed.data(), {y.data(), k.oc, {oh, ow}, k.oc * oh * ow},
                                                       epilogue_for(variant, bias, prelu));
                });
                std::ostringstream what;
                what << "conv_transpose " << k.ic << "->" << k.oc << " " << k.h << "x" << k.w << " stride " << k.s
                     << (in_blocked ? " blocked" : " nchw") << " in, epilogue " << variant;
                expect_close(unblocked(y, batch, k.oc, oh * ow), ref, what.str());
            }
        }
}

BOOST_AUTO_TEST_CASE(pointwise_to_nchw_matches_naive) {
    for (index_t oc : {1, 2, 5})
        for (int variant : {0, 1, 2, 4}) {
            const index_t batch = 2, ic = 32, h = 5, wd = 19;
            std::vector<float> x(std::size_t(batch * ic * h * wd)), w(static_cast<std::size_t>(oc * ic)),
                bias(static_cast<std::size_t>(oc)), prelu(static_cast<std::size_t>(oc));
            fill(x);
            fill(w);
            fill(bias);
            fill(prelu, 0.0, 0.5);
            std::vector<double> ref(std::size_t(batch * oc * h * wd));
            for (index_t n = 0; n < batch; ++n)
                for (index_t o = 0; o < oc; ++o)
                    for (index_t p = 0; p < h * wd; ++p) {
                        double acc = variant == 1 || variant == 2 || variant == 4 ? double(bias[std::size_t(o)]) : 0.0;
                        for (index_t i = 0; i < ic; ++i)
                            acc += double(x[std::size_t((n * ic + i) * h * wd + p)]) * double(w[std::size_t(o * ic + i)]);
                        ref[std::size_t((n * oc + o) * h * wd + p)] = act(acc, variant, prelu, o);
                    }
            const auto xb = blocked_copy(x, batch, ic, h * wd);
            std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
            const ex::conv_geometry<2> g{ic, oc, {1, 1}, {1, 1}, {0, 0}, {1, 1}};
            tbb::task_arena(2).execute([&] {
                ex::pointwise_forward_to_nchw(g, batch, {xb.data(), ic, {h, wd}, ic * h * wd}, w.data(),
                                              {y.data(), oc, {h, wd}, oc * h * wd}, epilogue_for(variant, bias, prelu));
            });
            expect_close(y, ref, "1x1 to NCHW, " + std::to_string(oc) + " outputs, epilogue " + std::to_string(variant));
        }
}

BOOST_AUTO_TEST_CASE(max_pool_matches_naive) {
    struct pool_case {
        index_t c, h, w, k, s, pad;
    };
    const pool_case cases[] = {{16, 8, 10, 2, 2, 0}, {32, 9, 11, 2, 2, 0}, {16, 7, 9, 3, 2, 1}, {48, 5, 131, 2, 2, 0}};
    for (const auto& k : cases)
        for (bool out_blocked : {true, false}) {
            const index_t batch = 2, oh = (k.h + 2 * k.pad - k.k) / k.s + 1, ow = (k.w + 2 * k.pad - k.k) / k.s + 1;
            std::vector<float> x(std::size_t(batch * k.c * k.h * k.w));
            fill(x);
            x[7] = std::numeric_limits<float>::quiet_NaN();  // propagates, as in PyTorch
            std::vector<double> ref(std::size_t(batch * k.c * oh * ow));
            for (index_t n = 0; n < batch; ++n)
                for (index_t c = 0; c < k.c; ++c)
                    for (index_t y = 0; y < oh; ++y)
                        for (index_t xx = 0; xx < ow; ++xx) {
                            double m = -std::numeric_limits<double>::infinity();
                            for (index_t ky = 0; ky < k.k; ++ky)
                                for (index_t kx = 0; kx < k.k; ++kx) {
                                    const index_t iy = y * k.s - k.pad + ky, ix = xx * k.s - k.pad + kx;
                                    if (iy < 0 || iy >= k.h || ix < 0 || ix >= k.w) continue;
                                    const double v = x[std::size_t(((n * k.c + c) * k.h + iy) * k.w + ix)];
                                    if (v > m || std::isnan(v)) m = v;
                                    if (std::isnan(m)) break;
                                }
                            ref[std::size_t(((n * k.c + c) * oh + y) * ow + xx)] = m;
                        }
            const auto xb = blocked_copy(x, batch, k.c, k.h * k.w);
            std::vector<float> y(ref.size(), -1.0f);
            ex::pool_geometry<2> g{{k.k, k.k}, {k.s, k.s}, {k.pad, k.pad}};
            tbb::task_arena(2).execute([&] {
                ex::max_pool_forward_blocked(g, batch, {xb.data(), k.c, {k.h, k.w}, k.c * k.h * k.w},
                                             {y.data(), k.c, {oh, ow}, k.c * oh * ow}, out_blocked);
            });
            bool same = true;
            for (index_t n = 0; n < batch; ++n)
                for (index_t c = 0; c < k.c; ++c)
                    for (index_t p = 0; p < oh * ow; ++p) {
                        const double r = ref[std::size_t((n * k.c + c) * oh * ow + p)];
                        const float v = out_blocked ? y[blocked_index(n, c, p, k.c, oh * ow)] : y[std::size_t((n * k.c + c) * oh * ow + p)];
                        same = same && (std::isnan(r) ? std::isnan(v) : double(v) == r);
                    }
            BOOST_TEST_INFO("max pool " << k.c << " channels " << k.h << "x" << k.w << " k" << k.k << " s" << k.s << " pad " << k.pad
                                        << (out_blocked ? " to blocked" : " to NCHW"));
            BOOST_TEST(same);
        }
}

BOOST_AUTO_TEST_CASE(layout_conversions_round_trip) {
    const index_t batch = 2, c = 32, h = 3, w = 7, plane = h * w;
    std::vector<float> x(std::size_t(batch * c * plane)), b(x.size()), back(x.size());
    fill(x);
    ex::to_blocked(batch, {x.data(), c, {h, w}, c * plane}, {b.data(), c, {h, w}, c * plane});
    BOOST_TEST(b == blocked_copy(x, batch, c, plane));
    ex::from_blocked(batch, {b.data(), c, {h, w}, c * plane}, {back.data(), c, {h, w}, c * plane});
    BOOST_TEST(back == x);
}

// Chains of convolutions with blocked links (a U-Net's first block from a
// 1-channel image; its last block from a blocked concatenation to a 2-class
// head) against naive convolutions one after the other, with bands of rows
// small enough that every intermediate slides.
BOOST_AUTO_TEST_CASE(chain_with_blocked_links_matches_naive) {
    struct chain_case {
        index_t ic;
        bool in_blocked;
        std::vector<conv_case> links;  // ic, h, w filled in from the previous link
        bool head;                     // the last link a 1x1 to NCHW
    };
    const index_t H = 37, W = 29;
    const chain_case cases[] = {
        {1, false, {{0, 32, 0, 0, 3, 1, 1}, {0, 32, 0, 0, 3, 1, 1}}, false},
        {64, true, {{0, 32, 0, 0, 3, 1, 1}, {0, 16, 0, 0, 3, 2, 2}, {0, 2, 0, 0, 1, 0, 1}}, true},
        {16, true, {{0, 48, 0, 0, 5, 2, 1}, {0, 3, 0, 0, 1, 0, 1}}, true},
    };
    for (const auto& cc : cases)
        for (int threads : {1, 2}) {
            const index_t batch = 2;
            std::vector<float> x(std::size_t(batch * cc.ic * H * W));
            fill(x);
            std::vector<double> ref(x.begin(), x.end());
            std::vector<std::vector<float>> ws, bs, ps;
            std::vector<std::vector<float>> packed;
            std::vector<ex::chain_link<float, 2>> links;
            index_t ic = cc.ic, h = H, w = W;
            for (std::size_t j = 0; j < cc.links.size(); ++j) {
                conv_case k = cc.links[j];
                k.ic = ic;
                k.h = h;
                k.w = w;
                ws.emplace_back(std::size_t(k.oc * k.ic * k.k * k.k));
                bs.emplace_back(std::size_t(k.oc));
                ps.emplace_back(std::size_t(k.oc));
                fill(ws.back(), -0.3, 0.3);
                fill(bs.back());
                fill(ps.back(), 0.0, 0.5);
                const int variant = j % 2 ? 4 : 2;
                ref = naive_conv(k, batch, ref, ws.back(), bs.back(), ps.back(), variant);
                ex::chain_link<float, 2> l;
                l.g = {k.ic, k.oc, {k.k, k.k}, {1, 1}, {k.pad, k.pad}, {k.dil, k.dil}};
                l.weight = ws.back().data();
                l.ep = epilogue_for(variant, bs.back(), ps.back());
                l.in_blocked = j == 0 ? cc.in_blocked : links.back().out_blocked;
                l.out_blocked = !(cc.head && j + 1 == cc.links.size());
                packed.push_back(l.out_blocked ? ex::pack_blocked_conv(l.g, l.weight) : std::vector<float>{});
                l.blocked_weight = packed.back().data();
                links.push_back(l);
                ic = k.oc;
                h = k.oh();
                w = k.ow();
            }
            const std::vector<float> xin = cc.in_blocked ? blocked_copy(x, batch, cc.ic, H * W) : x;
            std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
            tbb::task_arena(threads).execute([&] {
                ex::conv_chain_forward<float, 2>(links, batch, {xin.data(), cc.ic, {H, W}, cc.ic * H * W},
                                                 {y.data(), ic, {h, w}, ic * h * w});
            });
            const std::vector<float> got = links.back().out_blocked ? unblocked(y, batch, ic, h * w) : y;
            expect_close(got, ref, "chain from " + std::to_string(cc.ic) + " channels, " + std::to_string(cc.links.size()) +
                                       " links, " + std::to_string(threads) + " thread(s)");
        }
}
