// Times conv_forward for a 3x3 64->64 convolution on 1x64x256x256 (float) and
// prints GFLOP/s with 1 thread and with all threads.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <random>
#include <vector>

#include <oneapi/tbb/task_arena.h>

#include "ctseg/exec/conv.hpp"

using namespace ctseg::exec;

int main(int argc, char** argv) {
    const index_t C = argc > 1 ? std::atol(argv[1]) : 64;
    const index_t S = argc > 2 ? std::atol(argv[2]) : 256;
    const int reps = argc > 3 ? std::atoi(argv[3]) : 10;
    conv_geometry<2> g;
    g.in_channels = C;
    g.out_channels = C;
    g.kernel = {3, 3};
    g.stride = {1, 1};
    g.pad = {1, 1};
    g.dilation = {1, 1};
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<float> x(static_cast<std::size_t>(C * S * S)), w(static_cast<std::size_t>(C * C * 9));
    std::vector<float> b(static_cast<std::size_t>(C)), y(x.size());
    for (auto& v : x) v = u(rng);
    for (auto& v : w) v = u(rng);
    for (auto& v : b) v = u(rng);
    epilogue<float, 2> ep;
    ep.bias = b.data();
    ep.act = activation::relu;
    tensor_ref<const float, 2> in{x.data(), C, {S, S}, C * S * S};
    tensor_ref<float, 2> out{y.data(), C, {S, S}, C * S * S};
    const double flops = 2.0 * double(C) * double(C) * 9.0 * double(S) * double(S);

    const int max_threads = tbb::this_task_arena::max_concurrency();
    for (int threads : {1, max_threads}) {
        tbb::task_arena arena(threads);
        arena.execute([&] {
            conv_forward<float, 2>(g, 1, in, w.data(), out, ep);  // warm-up
            double best = 1e30;
            for (int r = 0; r < reps; ++r) {
                auto t0 = std::chrono::steady_clock::now();
                conv_forward<float, 2>(g, 1, in, w.data(), out, ep);
                auto t1 = std::chrono::steady_clock::now();
                best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
            }
            std::printf("conv3x3 %ldx%ldx%ld threads=%d: %.3f ms, %.1f GFLOP/s\n", long(C), long(S), long(S), threads,
                        best * 1e3, flops / best * 1e-9);
        });
        if (max_threads == 1) break;
    }
    return 0;
}
