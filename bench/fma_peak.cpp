// FMA peak probe: independent chains of fused multiply-adds on 16-float
// vectors held in registers, timed on 1 thread and on T threads (all hardware
// threads unless given). Prints `peak_gflops_1 X` and `peak_gflops_T Y`.
//
//   fma_peak [THREADS] [SECONDS_PER_MEASURE]
//
// Each thread runs ACC independent accumulators (enough to hide the FMA
// latency on current x86 cores) for a fixed iteration count; the best of a few
// repetitions is reported. FLOPs = 2 per lane per FMA.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

typedef float v16 __attribute__((vector_size(64)));
constexpr int ACC = 12;
constexpr int LANES = 16;

// Keeps the compiler from folding the loop away or across calls.
__attribute__((noinline)) float fma_chains(long iters, float seed) {
    v16 acc[ACC];
    v16 a, b;
    for (int l = 0; l < LANES; ++l) {
        a[l] = 0.999999f;
        b[l] = 1e-7f * seed;
    }
    for (int k = 0; k < ACC; ++k)
        for (int l = 0; l < LANES; ++l) acc[k][l] = seed + float(k + l);
    for (long i = 0; i < iters; ++i) {
#pragma GCC unroll 12
        for (int k = 0; k < ACC; ++k) acc[k] = acc[k] * a + b;  // contracted to one FMA with -march=native
        asm volatile("" : "+v"(a), "+v"(b));  // the multiplier/addend stay opaque
    }
    v16 s = acc[0];
    for (int k = 1; k < ACC; ++k) s += acc[k];
    float r = 0;
    for (int l = 0; l < LANES; ++l) r += s[l];
    return r;
}

double measure(int threads, long iters) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> pool;
    std::vector<float> sink(static_cast<std::size_t>(threads));
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            ready.fetch_add(1);
            while (!go.load(std::memory_order_acquire)) {}
            sink[static_cast<std::size_t>(t)] = fma_chains(iters, 1.0f + float(t));
        });
    while (ready.load() < threads) {}
    const auto t0 = std::chrono::steady_clock::now();
    go.store(true, std::memory_order_release);
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    volatile float keep = 0;
    for (float v : sink) keep = keep + v;
    (void)keep;
    return 2.0 * LANES * ACC * double(iters) * threads / s * 1e-9;
}

double peak(int threads, double seconds) {
    // Calibrate the iteration count to about `seconds` on one thread.
    long iters = 1 << 16;
    for (;;) {
        const auto t0 = std::chrono::steady_clock::now();
        fma_chains(iters, 1.0f);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (s > seconds / 4 || iters > (1L << 40)) {
            iters = std::max(1L, long(double(iters) * seconds / s));
            break;
        }
        iters *= 4;
    }
    double best = 0;
    for (int r = 0; r < 5; ++r) best = std::max(best, measure(threads, iters));
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    int threads = argc > 1 ? std::atoi(argv[1]) : int(std::thread::hardware_concurrency());
    if (threads < 1) threads = 1;
    const double seconds = argc > 2 ? std::atof(argv[2]) : 0.1;
    std::printf("vector_floats %d accumulators %d threads %d\n", LANES, ACC, threads);
    std::printf("peak_gflops_1 %.1f\n", peak(1, seconds));
    std::printf("peak_gflops_T %.1f\n", peak(threads, seconds));
    return 0;
}
