// Google Benchmark micro-benchmarks of ctseg's exec kernels (float, batch 1).
// Each reports FLOP/s (2 x multiply-adds; comparisons for pooling) through the
// "FLOPS" counter. Run: meson test -C build --benchmark --suite micro, or the
// executable build/bench/kernels_micro directly (--benchmark_filter=...).
#include <cstddef>
#include <random>
#include <span>
#include <vector>

#include <benchmark/benchmark.h>

#include "ctseg/exec/backward_conv.hpp"
#include "ctseg/exec/blocked.hpp"
#include "ctseg/exec/conv.hpp"
#include "ctseg/exec/conv_chain.hpp"
#include "ctseg/exec/conv_transpose.hpp"
#include "ctseg/exec/pool.hpp"

using namespace ctseg::exec;

namespace {

std::vector<float> random_vec(index_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = u(rng);
    return v;
}

template <std::size_t R>
std::array<index_t, R> filled(index_t v) {
    std::array<index_t, R> a;
    a.fill(v);
    return a;
}

template <class T, std::size_t R>
tensor_ref<T, R> ref(T* data, index_t channels, index_t size) {
    tensor_ref<T, R> t{data, channels, filled<R>(size), 0};
    t.batch_stride = channels * t.plane();
    return t;
}

template <std::size_t R>
conv_geometry<R> conv_geom(index_t ic, index_t oc, index_t k) {
    conv_geometry<R> g;
    g.in_channels = ic;
    g.out_channels = oc;
    g.kernel = filled<R>(k);
    g.stride = filled<R>(1);
    g.pad = filled<R>(k / 2);
    g.dilation = filled<R>(1);
    return g;
}

index_t ipow(index_t b, std::size_t e) {
    index_t r = 1;
    for (std::size_t i = 0; i < e; ++i) r *= b;
    return r;
}

void set_flops(benchmark::State& state, double flops_per_iter) {
    state.counters["FLOPS"] =
        benchmark::Counter(flops_per_iter * double(state.iterations()), benchmark::Counter::kIsRate);
}

// "Same" convolution C_in -> C_out, kernel k^R, spatial size S^R, bias + ReLU;
// weights read in place, or packed once beforehand (pack_conv_weights).
template <std::size_t R>
void BM_conv_forward(benchmark::State& state, index_t ic, index_t oc, index_t k, index_t S, bool packed = false) {
    const auto g = conv_geom<R>(ic, oc, k);
    const index_t plane = ipow(S, R), taps = ipow(k, R);
    auto x = random_vec(ic * plane, 1), w = random_vec(oc * ic * taps, 2), b = random_vec(oc, 3);
    std::vector<float> y(static_cast<std::size_t>(oc * plane));
    epilogue<float, R> ep;
    ep.bias = b.data();
    ep.act = activation::relu;
    const auto in = ref<const float, R>(x.data(), ic, S);
    const auto out = ref<float, R>(y.data(), oc, S);
    const std::vector<float> wpk = packed ? pack_conv_weights<float, R>(g, w.data()) : std::vector<float>{};
    for (auto _ : state) {
        conv_forward<float, R>(g, 1, in, w.data(), out, ep, packed ? wpk.data() : nullptr);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    set_flops(state, 2.0 * double(ic) * double(oc) * double(taps) * double(plane));
}

// The same 2D convolution on channel-blocked tensors ([C/16][H][W][16],
// exec/blocked.hpp), as networks run their large planes.
void BM_conv_forward_blocked(benchmark::State& state, index_t ic, index_t oc, index_t k, index_t S) {
    const auto g = conv_geom<2>(ic, oc, k);
    const index_t plane = S * S, taps = k * k;
    auto x = random_vec(ic * plane, 1), w = random_vec(oc * ic * taps, 2), b = random_vec(oc, 3);
    std::vector<float> y(static_cast<std::size_t>(oc * plane));
    epilogue<float, 2> ep;
    ep.bias = b.data();
    ep.act = activation::relu;
    const auto packed = pack_blocked_conv(g, w.data());
    for (auto _ : state) {
        conv_forward_blocked(g, 1, ref<const float, 2>(x.data(), ic, S), true, packed.data(), ref<float, 2>(y.data(), oc, S), ep);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    set_flops(state, 2.0 * double(ic) * double(oc) * double(taps) * double(plane));
}

// The last decoder block of unet2d/bench: 3x3 ic -> oc, 3x3 oc -> oc (bias +
// ReLU), 1x1 oc -> 2, at S x S; layer by layer through conv_forward, or
// depth first through conv_chain_forward (no intermediate stored whole).
void BM_decoder_block(benchmark::State& state, index_t ic, index_t oc, index_t S, bool chained) {
    const std::array<conv_geometry<2>, 3> g = {conv_geom<2>(ic, oc, 3), conv_geom<2>(oc, oc, 3), conv_geom<2>(oc, 2, 1)};
    const index_t plane = S * S;
    auto x = random_vec(ic * plane, 1);
    std::array<std::vector<float>, 3> w, b, tail, y;
    std::array<epilogue<float, 2>, 3> ep;
    std::array<chain_link<float, 2>, 3> links;
    double flops = 0;
    for (std::size_t j = 0; j < 3; ++j) {
        const index_t taps = g[j].kernel[0] * g[j].kernel[1];
        w[j] = random_vec(g[j].out_channels * g[j].in_channels * taps, unsigned(2 + j));
        b[j] = random_vec(g[j].out_channels, unsigned(5 + j));
        tail[j] = pack_conv_tail<float, 2>(g[j], w[j].data());
        y[j].resize(static_cast<std::size_t>(g[j].out_channels * plane));
        ep[j].bias = b[j].data();
        ep[j].act = j < 2 ? activation::relu : activation::none;
        links[j] = {g[j], w[j].data(), tail[j].empty() ? nullptr : tail[j].data(), ep[j]};
        flops += 2.0 * double(g[j].in_channels * g[j].out_channels * taps * plane);
    }
    for (auto _ : state) {
        if (chained) {
            conv_chain_forward<float, 2>(std::span<const chain_link<float, 2>>(links), 1, ref<const float, 2>(x.data(), ic, S),
                                         ref<float, 2>(y[2].data(), 2, S));
        } else {
            const float* in = x.data();
            for (std::size_t j = 0; j < 3; ++j) {
                conv_forward<float, 2>(g[j], 1, ref<const float, 2>(in, g[j].in_channels, S),
                                       w[j].data(), ref<float, 2>(y[j].data(), g[j].out_channels, S), ep[j], nullptr,
                                       tail[j].empty() ? nullptr : tail[j].data());
                in = y[j].data();
            }
        }
        benchmark::DoNotOptimize(y[2].data());
        benchmark::ClobberMemory();
    }
    set_flops(state, flops);
}

// Transposed convolution kernel 2^R stride 2: S^R -> (2S)^R.
template <std::size_t R>
void BM_conv_transpose_forward(benchmark::State& state, index_t ic, index_t oc, index_t S) {
    conv_transpose_geometry<R> g;
    g.in_channels = ic;
    g.out_channels = oc;
    g.kernel = filled<R>(2);
    g.stride = filled<R>(2);
    g.pad = filled<R>(0);
    g.dilation = filled<R>(1);
    g.output_pad = filled<R>(0);
    const index_t plane = ipow(S, R), taps = ipow(2, R);
    auto x = random_vec(ic * plane, 1), w = random_vec(ic * oc * taps, 2), b = random_vec(oc, 3);
    std::vector<float> y(static_cast<std::size_t>(oc * plane * taps));
    epilogue<float, R> ep;
    ep.bias = b.data();
    const auto in = ref<const float, R>(x.data(), ic, S);
    const auto out = ref<float, R>(y.data(), oc, 2 * S);
    for (auto _ : state) {
        conv_transpose_forward<float, R>(g, 1, in, w.data(), out, ep);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    set_flops(state, 2.0 * double(ic) * double(oc) * double(taps) * double(plane));
}

// Max pooling kernel 2^R stride 2 over C channels of S^R.
template <std::size_t R>
void BM_max_pool_forward(benchmark::State& state, index_t C, index_t S) {
    pool_geometry<R> g;
    g.kernel = filled<R>(2);
    g.stride = filled<R>(2);
    g.pad = filled<R>(0);
    auto x = random_vec(C * ipow(S, R), 1);
    std::vector<float> y(static_cast<std::size_t>(C * ipow(S / 2, R)));
    const auto in = ref<const float, R>(x.data(), C, S);
    const auto out = ref<float, R>(y.data(), C, S / 2);
    for (auto _ : state) {
        max_pool_forward<float, R>(g, 1, in, out);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    // One comparison per input element; also report the bytes moved.
    set_flops(state, double(C) * double(ipow(S, R)));
    state.SetBytesProcessed(state.iterations() * int64_t(sizeof(float)) * int64_t(x.size() + y.size()));
}

// dx += conv^T(dy): the gradient of the input of a "same" convolution.
template <std::size_t R>
void BM_conv_backward_data(benchmark::State& state, index_t ic, index_t oc, index_t k, index_t S) {
    const auto g = conv_geom<R>(ic, oc, k);
    const index_t plane = ipow(S, R), taps = ipow(k, R);
    auto dy = random_vec(oc * plane, 1), w = random_vec(oc * ic * taps, 2);
    std::vector<float> dx(static_cast<std::size_t>(ic * plane));
    const auto dyr = ref<const float, R>(dy.data(), oc, S);
    const auto dxr = ref<float, R>(dx.data(), ic, S);
    for (auto _ : state) {
        conv_backward_data<float, R>(g, 1, dyr, w.data(), dxr);
        benchmark::DoNotOptimize(dx.data());
        benchmark::ClobberMemory();
    }
    set_flops(state, 2.0 * double(ic) * double(oc) * double(taps) * double(plane));
}

// dweight += correlation(x, dy), dbias += sum(dy).
template <std::size_t R>
void BM_conv_backward_weights(benchmark::State& state, index_t ic, index_t oc, index_t k, index_t S) {
    const auto g = conv_geom<R>(ic, oc, k);
    const index_t plane = ipow(S, R), taps = ipow(k, R);
    auto x = random_vec(ic * plane, 1), dy = random_vec(oc * plane, 2);
    std::vector<float> dw(static_cast<std::size_t>(oc * ic * taps)), db(static_cast<std::size_t>(oc));
    const auto xr = ref<const float, R>(x.data(), ic, S);
    const auto dyr = ref<const float, R>(dy.data(), oc, S);
    for (auto _ : state) {
        conv_backward_weights<float, R>(g, 1, xr, dyr, dw.data(), db.data());
        benchmark::DoNotOptimize(dw.data());
        benchmark::ClobberMemory();
    }
    set_flops(state, 2.0 * double(ic) * double(oc) * double(taps) * double(plane));
}

// BENCHMARK_CAPTURE pastes the function name into an identifier: no template-ids there.
void conv_forward_2d(benchmark::State& s, index_t ic, index_t oc, index_t k, index_t S) { BM_conv_forward<2>(s, ic, oc, k, S); }
void conv_forward_2d_packed(benchmark::State& s, index_t ic, index_t oc, index_t k, index_t S) { BM_conv_forward<2>(s, ic, oc, k, S, true); }
void conv_forward_2d_blocked(benchmark::State& s, index_t ic, index_t oc, index_t k, index_t S) { BM_conv_forward_blocked(s, ic, oc, k, S); }
void conv_forward_3d(benchmark::State& s, index_t ic, index_t oc, index_t k, index_t S) { BM_conv_forward<3>(s, ic, oc, k, S); }
void conv_transpose_forward_2d(benchmark::State& s, index_t ic, index_t oc, index_t S) { BM_conv_transpose_forward<2>(s, ic, oc, S); }
void decoder_block_layers(benchmark::State& s, index_t ic, index_t oc, index_t S) { BM_decoder_block(s, ic, oc, S, false); }
void decoder_block_chained(benchmark::State& s, index_t ic, index_t oc, index_t S) { BM_decoder_block(s, ic, oc, S, true); }
void conv_transpose_forward_3d(benchmark::State& s, index_t ic, index_t oc, index_t S) { BM_conv_transpose_forward<3>(s, ic, oc, S); }
void max_pool_forward_2d(benchmark::State& s, index_t C, index_t S) { BM_max_pool_forward<2>(s, C, S); }
void max_pool_forward_3d(benchmark::State& s, index_t C, index_t S) { BM_max_pool_forward<3>(s, C, S); }
void conv_backward_data_2d(benchmark::State& s, index_t ic, index_t oc, index_t k, index_t S) { BM_conv_backward_data<2>(s, ic, oc, k, S); }
void conv_backward_weights_2d(benchmark::State& s, index_t ic, index_t oc, index_t k, index_t S) { BM_conv_backward_weights<2>(s, ic, oc, k, S); }

}  // namespace

BENCHMARK_CAPTURE(conv_forward_2d, 3x3_64to64_128x128, 64, 64, 3, 128)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(conv_forward_2d_packed, 3x3_64to64_128x128, 64, 64, 3, 128)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
// Wide rows (a ring of input rows), short rows (several channel blocks per
// call) and rows shorter than a vector pair (rows run flat), as in unet2d/bench.
BENCHMARK_CAPTURE(conv_forward_2d, 3x3_32to32_256x256, 32, 32, 3, 256)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
// The large planes channel-blocked, as unet2d/bench runs them.
BENCHMARK_CAPTURE(conv_forward_2d_blocked, 3x3_32to32_256x256, 32, 32, 3, 256)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(conv_forward_2d_blocked, 3x3_64to64_128x128, 64, 64, 3, 128)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(conv_forward_2d, 3x3_256to256_32x32, 256, 256, 3, 32)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(conv_forward_2d, 3x3_512to512_16x16, 512, 512, 3, 16)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(conv_forward_2d, 1x1_256to256_32x32, 256, 256, 1, 32)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(conv_forward_3d, 3x3x3_32to32_32cubed, 32, 32, 3, 32)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
// Depth first against layer by layer (plan::plan_options::chain_convolutions).
BENCHMARK_CAPTURE(decoder_block_layers, 64to32to32to2_256x256, 64, 32, 256)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(decoder_block_chained, 64to32to32to2_256x256, 64, 32, 256)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(conv_transpose_forward_2d, 2x2s2_128to64_64x64, 128, 64, 64)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(conv_transpose_forward_3d, 2x2x2s2_64to32_16cubed, 64, 32, 16)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(max_pool_forward_2d, 2x2s2_64ch_256x256, 64, 256)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(max_pool_forward_3d, 2x2x2s2_32ch_64cubed, 32, 64)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(conv_backward_data_2d, 3x3_64to64_128x128, 64, 64, 3, 128)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(conv_backward_weights_2d, 3x3_64to64_128x128, 64, 64, 3, 128)
    ->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
