// Layout probe: how fast a 3x3 convolution (stride 1, padding 1, bias, ReLU)
// runs when the activations are stored channel-blocked, 16 channels of a
// pixel next to each other ([C / 16][H][W][16]), against ctseg's NCHW kernel
// (exec::conv_forward) on the same shapes, data and threads, in the same run.
//
//   layout_probe [THREADS] [REPS]
//
// The blocked side is a plain direct convolution: per call 12 output pixels of
// one row times 32 output channels held in 24 vector accumulators; for each
// input channel and tap it loads two vectors of weights (packed [out / 32][in
// / 16][tap][16 in][32 out]) and broadcasts one input value per pixel. Its
// input is already blocked and zero-bordered and its output stays blocked: it
// shows what a network whose inner tensors are all blocked would gain on its
// large planes, where the NCHW kernel's many short row streams (one per
// channel) bound it. A third column times the library's blocked kernel
// (exec::conv_forward_blocked, which networks run on these planes) on an
// unpadded blocked input. Every blocked result is checked against the NCHW
// one; a mismatch exits with status 1.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

#include "ctseg/exec/blocked.hpp"
#include "ctseg/exec/conv.hpp"

namespace {

using ctseg::exec::index_t;
typedef float v16 __attribute__((vector_size(64)));
constexpr index_t lanes = 16, pixels = 12, out_block = 32;

// A 64-byte aligned float array.
struct aligned_floats {
    std::vector<float> store;
    float* data = nullptr;
    explicit aligned_floats(std::size_t n) : store(n + lanes, 0.0f) {
        data = reinterpret_cast<float*>((reinterpret_cast<std::uintptr_t>(store.data()) + 63) / 64 * 64);
    }
};

// y[j][0..31] = relu(bias + sum over input blocks, taps and channels of
// x[tap pixel j][c] * w[c][0..31]) for `pixels` pixels of one output row.
__attribute__((noinline)) void blocked_kernel(const float* x, index_t in_blocks, index_t block_stride, const index_t* tap_at,
                                              const float* w, const float* bias, float* y, index_t y_half) {
    v16 a0[pixels], a1[pixels];
    for (index_t j = 0; j < pixels; ++j) a0[j] = a1[j] = v16{};
    for (index_t cb = 0; cb < in_blocks; ++cb) {
        const float* xb = x + cb * block_stride;
        for (int t = 0; t < 9; ++t) {
            const float* xt = xb + tap_at[t];
            for (index_t c = 0; c < lanes; ++c, w += out_block) {
                const v16 w0 = *reinterpret_cast<const v16*>(w), w1 = *reinterpret_cast<const v16*>(w + lanes);
                for (index_t j = 0; j < pixels; ++j) {
                    const float v = xt[j * lanes + c];
                    a0[j] += w0 * v;
                    a1[j] += w1 * v;
                }
            }
        }
    }
    const v16 b0 = *reinterpret_cast<const v16*>(bias), b1 = *reinterpret_cast<const v16*>(bias + lanes), zero{};
    for (index_t j = 0; j < pixels; ++j) {
        const v16 r0 = a0[j] + b0, r1 = a1[j] + b1;
        *reinterpret_cast<v16*>(y + j * lanes) = r0 > zero ? r0 : zero;
        *reinterpret_cast<v16*>(y + y_half + j * lanes) = r1 > zero ? r1 : zero;
    }
}

template <class F>
double median_seconds(int reps, F&& f) {
    f();
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

// Returns false when the blocked result differs from the NCHW one.
bool probe(index_t IC, index_t OC, index_t S, int threads, int reps) {
    const index_t H = S, W = S;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> x(static_cast<std::size_t>(IC * H * W)), w(static_cast<std::size_t>(OC * IC * 9)),
        bias(static_cast<std::size_t>(OC));
    for (auto& v : x) v = u(rng);
    for (auto& v : w) v = u(rng) / std::sqrt(float(IC * 9));
    for (auto& v : bias) v = u(rng);

    // NCHW: ctseg's kernel, weights read in place as a network does.
    // in, out channels; kernel, stride, padding, dilation per dim.
    const ctseg::exec::conv_geometry<2> g{IC, OC, {3, 3}, {1, 1}, {1, 1}, {1, 1}};
    std::vector<float> y(std::size_t(OC * H * W));
    ctseg::exec::epilogue<float, 2> ep;
    ep.bias = bias.data();
    ep.act = ctseg::exec::activation::relu;
    const ctseg::exec::tensor_ref<const float, 2> in{x.data(), IC, {H, W}, IC * H * W};
    const ctseg::exec::tensor_ref<float, 2> out{y.data(), OC, {H, W}, OC * H * W};
    const auto tail = ctseg::exec::pack_conv_tail<float, 2>(g, w.data());

    // Blocked: input [IC / 16][H + 2][Wp][16] with a zero border, output
    // [OC / 16][H][Wo][16] with rows padded to whole calls.
    const index_t ib = IC / lanes, ob = OC / lanes, Wo = (W + pixels - 1) / pixels * pixels, Wp = Wo + 2;
    aligned_floats xb(std::size_t(ib * (H + 2) * Wp * lanes)), wb(w.size()), yb(std::size_t(ob * H * Wo * lanes));
    for (index_t c = 0; c < IC; ++c)
        for (index_t i = 0; i < H; ++i)
            for (index_t j = 0; j < W; ++j)
                xb.data[(((c / lanes) * (H + 2) + i + 1) * Wp + j + 1) * lanes + c % lanes] = x[std::size_t((c * H + i) * W + j)];
    for (index_t p = 0; p < OC / out_block; ++p)
        for (index_t cb = 0; cb < ib; ++cb)
            for (index_t t = 0; t < 9; ++t)
                for (index_t c = 0; c < lanes; ++c)
                    for (index_t o = 0; o < out_block; ++o)
                        wb.data[(((p * ib + cb) * 9 + t) * lanes + c) * out_block + o] =
                            w[std::size_t(((p * out_block + o) * IC + cb * lanes + c) * 9 + t)];
    aligned_floats bb(bias.size());
    std::copy(bias.begin(), bias.end(), bb.data);
    index_t tap_at[9];
    for (index_t t = 0; t < 9; ++t) tap_at[t] = ((t / 3) * Wp + t % 3) * lanes;
    const index_t block_stride = (H + 2) * Wp * lanes, y_half = H * Wo * lanes;
    const auto blocked = [&] {
        tbb::parallel_for(index_t(0), H * (OC / out_block), [&](index_t item) {
            const index_t row = item / (OC / out_block), p = item % (OC / out_block);
            for (index_t x0 = 0; x0 < Wo; x0 += pixels)
                blocked_kernel(xb.data + (row * Wp + x0) * lanes, ib, block_stride, tap_at, wb.data + p * ib * 9 * lanes * out_block,
                               bb.data + p * out_block, yb.data + (2 * p * H * Wo + row * Wo + x0) * lanes, y_half);
        });
    };

    // The library's blocked kernel: input blocked without a border.
    std::vector<float> xl(x.size()), yl(y.size());
    ctseg::exec::to_blocked(1, in, {xl.data(), IC, {H, W}, IC * H * W});
    const auto wl = ctseg::exec::pack_blocked_conv(g, w.data());
    const auto library = [&] {
        ctseg::exec::conv_forward_blocked(g, 1, {xl.data(), IC, {H, W}, IC * H * W}, true, wl.data(),
                                          {yl.data(), OC, {H, W}, OC * H * W}, ep);
    };
    tbb::task_arena arena(threads);
    // Two rounds, the sides alternating; each side keeps its better median
    // (a first round can pay for clocks and caches settling).
    double t_nchw = 1e30, t_blocked = 1e30, t_library = 1e30;
    arena.execute([&] {
        for (int round = 0; round < 2; ++round) {
            t_nchw = std::min(t_nchw, median_seconds(reps, [&] {
                ctseg::exec::conv_forward<float, 2>(g, 1, in, w.data(), out, ep, nullptr, tail.empty() ? nullptr : tail.data());
            }));
            t_blocked = std::min(t_blocked, median_seconds(reps, blocked));
            t_library = std::min(t_library, median_seconds(reps, library));
        }
    });
    double worst = 0;
    for (index_t c = 0; c < OC; ++c)
        for (index_t i = 0; i < H; ++i)
            for (index_t j = 0; j < W; ++j)
                worst = std::max(worst, double(std::abs(y[std::size_t((c * H + i) * W + j)] -
                                                        yb.data[(((c / lanes) * H + i) * Wo + j) * lanes + c % lanes])));
    const double gflop = 2.0 * double(IC * OC * 9) * double(H * W) * 1e-9;
    std::vector<float> yl_nchw(y.size());
    ctseg::exec::from_blocked(1, {yl.data(), OC, {H, W}, OC * H * W}, {yl_nchw.data(), OC, {H, W}, OC * H * W});
    for (std::size_t i = 0; i < y.size(); ++i) worst = std::max(worst, double(std::abs(y[i] - yl_nchw[i])));
    std::printf("%4ld -> %4ld at %4ldx%-4ld  NCHW %7.3f ms %6.1f GFLOP/s   blocked %7.3f ms %6.1f GFLOP/s   %.2fx   library blocked %6.1f GFLOP/s   max diff %.1e\n",
                long(IC), long(OC), long(H), long(W), t_nchw * 1e3, gflop / t_nchw, t_blocked * 1e3, gflop / t_blocked,
                t_nchw / t_blocked, gflop / t_library, worst);
    return worst <= 1e-3;
}

}  // namespace

int main(int argc, char** argv) {
    // A positive integer argument, or the default when absent; 0 when malformed.
    const auto count = [&](int i, long fallback) -> long {
        if (argc <= i) return fallback;
        char* end = nullptr;
        const long v = std::strtol(argv[i], &end, 10);
        return end != argv[i] && *end == '\0' && v > 0 && v < 100000 ? v : 0;
    };
    const int threads = int(count(1, ctseg::exec::concurrency())), reps = int(count(2, 20));
    if (argc > 3 || threads < 1 || reps < 1) {
        std::string given;
        for (int i = 1; i < argc; ++i) given += std::string(i > 1 ? " " : "") + "'" + argv[i] + "'";
        std::fprintf(stderr, "layout_probe: usage: layout_probe [THREADS] [REPS], both positive integers (got %s)\n",
                     given.empty() ? "nothing" : given.c_str());
        return 2;
    }
    std::printf("3x3 convolution, stride 1, padding 1, bias + ReLU; %d thread(s), better of 2 alternating medians of %d runs\n",
                threads, reps);
    // The large-plane convolutions of unet2d/bench (width 32, depth 4, 256x256 input).
    const index_t shapes[][3] = {{32, 32, 256}, {64, 32, 256}, {32, 64, 128}, {64, 64, 128}, {128, 64, 128}, {64, 128, 64}, {256, 128, 64}};
    bool ok = true;
    for (const auto& s : shapes) ok = probe(s[0], s[1], s[2], threads, reps) && ok;
    if (!ok) std::fprintf(stderr, "layout_probe: the blocked results differ from the NCHW ones\n");
    return ok ? 0 : 1;
}
