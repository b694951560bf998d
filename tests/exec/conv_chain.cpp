#define BOOST_TEST_MODULE exec conv_chain
#include <boost/test/unit_test.hpp>

#include <oneapi/tbb/task_arena.h>

#include "common.hpp"
#include "ctseg/exec/conv.hpp"
#include "ctseg/exec/conv_chain.hpp"

using namespace testing;
namespace ex = ctseg::exec;

namespace {

template <std::size_t R>
struct link_case {
    index_t oc;
    std::array<index_t, R> kernel, stride, pad, dilation;
};

template <std::size_t R>
std::array<index_t, R> out_extent(const std::array<index_t, R>& in, const link_case<R>& k) {
    std::array<index_t, R> o{};
    for (std::size_t d = 0; d < R; ++d) o[d] = (in[d] + 2 * k.pad[d] - k.dilation[d] * (k.kernel[d] - 1) - 1) / k.stride[d] + 1;
    return o;
}

// A plain convolution in double: x is [batch][ic][in], w [oc][ic][taps].
template <class T, std::size_t R>
std::vector<double> naive_conv(const std::vector<double>& x, index_t batch, index_t ic, const std::array<index_t, R>& in,
                               const link_case<R>& k, const std::vector<T>& w, const epilogue_case<T, R>& ep) {
    const auto oe = out_extent<R>(in, k);
    const index_t iplane = plane_of<R>(in), oplane = plane_of<R>(oe), ntaps = plane_of<R>(k.kernel);
    std::vector<double> y(std::size_t(batch * k.oc * oplane));
    for (index_t n = 0; n < batch; ++n)
        for (index_t oc = 0; oc < k.oc; ++oc)
            for_each_index<R>(oe, [&](const std::array<index_t, R>& o, index_t opos) {
                double acc = 0;
                for (index_t c = 0; c < ic; ++c)
                    for_each_index<R>(k.kernel, [&](const std::array<index_t, R>& kk, index_t t) {
                        std::array<index_t, R> xi{};
                        for (std::size_t d = 0; d < R; ++d) {
                            xi[d] = o[d] * k.stride[d] - k.pad[d] + kk[d] * k.dilation[d];
                            if (xi[d] < 0 || xi[d] >= in[d]) return;
                        }
                        acc += x[std::size_t((n * ic + c) * iplane + flat<R>(xi, in))] * double(w[std::size_t((oc * ic + c) * ntaps + t)]);
                    });
                y[std::size_t((n * k.oc + oc) * oplane + opos)] = ep.apply(acc, n, oc, opos, oplane);
            });
    return y;
}

// Runs a chain on `in` (batch, ic) with the epilogue variants given (the
// intermediate links' without a residual) at 1, 2 and 3 threads, with and
// without a workspace; checks it against naive convolutions one after the
// other, and bit for bit against conv_forward layer by layer.
template <class T, std::size_t R>
void run_chain(index_t batch, index_t ic, const std::array<index_t, R>& in, const std::vector<link_case<R>>& ks,
               const std::vector<int>& variants) {
    const std::size_t K = ks.size();
    std::vector<std::array<index_t, R>> extent{in};
    std::vector<index_t> channels{ic};
    for (auto& k : ks) {
        extent.push_back(out_extent<R>(extent.back(), k));
        channels.push_back(k.oc);
    }
    slice_buffer<T, R> x(batch, ic, in, 1, 2);
    std::vector<std::vector<T>> w(K), tails(K);
    std::vector<epilogue_case<T, R>> eps;
    for (std::size_t j = 0; j < K; ++j) {
        w[j].resize(std::size_t(ks[j].oc * channels[j] * plane_of<R>(ks[j].kernel)));
        fill(w[j], -0.5, 0.5);
        eps.emplace_back(variants[j], batch, ks[j].oc, plane_of<R>(extent[j + 1]));
        BOOST_REQUIRE(j + 1 == K || !eps.back().ep.residual);
    }
    std::vector<ex::chain_link<T, R>> links(K);
    std::vector<ex::conv_geometry<R>> gs(K);
    for (std::size_t j = 0; j < K; ++j) {
        auto& g = gs[j];
        g.in_channels = channels[j];
        g.out_channels = ks[j].oc;
        g.kernel = ks[j].kernel;
        g.stride = ks[j].stride;
        g.pad = ks[j].pad;
        g.dilation = ks[j].dilation;
        tails[j] = ex::pack_conv_tail<T, R>(g, w[j].data());
        links[j] = {g, w[j].data(), tails[j].empty() ? nullptr : tails[j].data(), eps[j].ep};
    }
    // The reference: naive convolutions, rounded to T between links as the kernels store them.
    std::vector<double> ref(std::size_t(batch * ic * plane_of<R>(in)));
    for (index_t n = 0; n < batch; ++n)
        for (index_t c = 0; c < ic; ++c)
            for (index_t p = 0; p < plane_of<R>(in); ++p) ref[std::size_t((n * ic + c) * plane_of<R>(in) + p)] = double(x.at(n, c, p));
    for (std::size_t j = 0; j < K; ++j) {
        ref = naive_conv<T, R>(ref, batch, channels[j], extent[j], ks[j], w[j], eps[j]);
        if (j + 1 < K)
            for (auto& v : ref) v = double(T(v));
    }
    // Layer by layer with conv_forward.
    std::vector<std::vector<T>> mids(K);
    tensor_ref<const T, R> cur = x.cref();
    for (std::size_t j = 0; j < K; ++j) {
        mids[j].resize(std::size_t(batch * ks[j].oc * plane_of<R>(extent[j + 1])));
        tensor_ref<T, R> o{mids[j].data(), ks[j].oc, extent[j + 1], ks[j].oc * plane_of<R>(extent[j + 1])};
        ex::conv_forward<T, R>(gs[j], batch, cur, w[j].data(), o, eps[j].ep);
        cur = {o.data, o.channels, o.extent, o.batch_stride};
    }
    std::string what = "R=" + std::to_string(R) + " links=" + std::to_string(K) + " ic=" + std::to_string(ic) +
                       " extent0=" + std::to_string(in[0]) + " T=" + (sizeof(T) == 4 ? "float" : "double");
    for (int threads : {1, 2, 3})
        for (bool with_workspace : {false, true}) {
            tbb::task_arena arena(threads);
            slice_buffer<T, R> y(batch, ks.back().oc, extent.back(), 2, 1);
            const auto before = y.buf;
            arena.execute([&] {
                const std::span<const ex::chain_link<T, R>> chain(links);
                std::vector<std::byte> memory;
                ex::workspace ws;
                if (with_workspace) {
                    const std::size_t slot = ex::conv_chain_scratch_bytes<T, R>(chain, batch, in);
                    BOOST_TEST(slot % 64 == 0u);
                    memory.assign(slot * std::size_t(ex::concurrency()) + 64, std::byte{0x7f});
                    auto* base = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(memory.data()) + 63) / 64 * 64);
                    ws = {base, slot, ex::concurrency()};
                }
                ex::conv_chain_forward<T, R>(chain, batch, x.cref(), y.ref(), ws);
            });
            const std::string w_what = what + " threads=" + std::to_string(threads) + (with_workspace ? " workspace" : "");
            check(y, before, ref, w_what);
            bool same = true;
            for (index_t n = 0; n < batch; ++n)
                for (index_t c = 0; c < ks.back().oc; ++c)
                    for (index_t p = 0; p < y.plane(); ++p)
                        same = same && y.at(n, c, p) == mids.back()[std::size_t((n * ks.back().oc + c) * y.plane() + p)];
            BOOST_TEST_INFO(w_what);
            BOOST_TEST(same, "the chain differs from conv_forward layer by layer");
        }
}

}  // namespace

BOOST_AUTO_TEST_CASE(chain_2d) {
    using L = link_case<2>;
    // A U-Net block: two padded 3x3 convolutions.
    run_chain<float, 2>(1, 3, {37, 23}, {L{5, {3, 3}, {1, 1}, {1, 1}, {1, 1}}, L{4, {3, 3}, {1, 1}, {1, 1}, {1, 1}}}, {2, 5});
    // Dilated middle link, then a 1x1 head with a residual.
    run_chain<float, 2>(2, 4, {45, 19},
                        {L{6, {3, 3}, {1, 1}, {1, 1}, {1, 1}}, L{5, {3, 3}, {1, 1}, {2, 2}, {2, 2}}, L{2, {1, 1}, {1, 1}, {0, 0}, {1, 1}}},
                        {4, 1, 6});
    // A strided second link; unpadded links that shrink the rows.
    run_chain<float, 2>(1, 3, {31, 17}, {L{4, {3, 3}, {1, 1}, {1, 1}, {1, 1}}, L{6, {3, 3}, {2, 2}, {1, 1}, {1, 1}}}, {3, 7});
    run_chain<double, 2>(2, 2, {40, 30}, {L{3, {3, 3}, {1, 1}, {0, 0}, {1, 1}}, L{5, {5, 5}, {1, 1}, {0, 0}, {1, 1}}}, {2, 0});
    // Four links down a tall image: many bands per strip, each sliding the intermediates.
    run_chain<float, 2>(1, 2, {150, 9},
                        {L{3, {3, 3}, {1, 1}, {1, 1}, {1, 1}}, L{4, {3, 1}, {1, 1}, {1, 0}, {1, 1}},
                         L{3, {5, 3}, {1, 1}, {2, 1}, {1, 1}}, L{2, {3, 3}, {1, 1}, {1, 1}, {1, 1}}},
                        {2, 3, 4, 5});
    // Wide rows of many channels: few rows per band.
    run_chain<float, 2>(1, 8, {40, 300}, {L{32, {3, 3}, {1, 1}, {1, 1}, {1, 1}}, L{8, {3, 3}, {1, 1}, {1, 1}, {1, 1}}}, {2, 2});
}

BOOST_AUTO_TEST_CASE(chain_3d) {
    using L = link_case<3>;
    run_chain<float, 3>(2, 2, {9, 6, 7}, {L{3, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}}, L{2, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}}},
                        {2, 6});
    run_chain<double, 3>(1, 3, {11, 5, 6},
                         {L{4, {3, 1, 3}, {2, 1, 1}, {1, 0, 1}, {1, 1, 1}}, L{3, {3, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}},
                          L{5, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}}},
                         {4, 2, 5});
}

// A single link is a plain convolution run in bands.
BOOST_AUTO_TEST_CASE(chain_single_link) {
    using L = link_case<2>;
    run_chain<float, 2>(3, 5, {21, 33}, {L{7, {3, 3}, {1, 1}, {1, 1}, {1, 1}}}, {5});
}
