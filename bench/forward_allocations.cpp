// Heap allocations of unet2d/bench forward passes (1x1x256x256) after the
// first, at 1 and T threads, counted by replacing the global operator new
// (every standard container allocates through it), and the bytes of the arena
// each pass leases. bench/performance.py reports them.
//
//     forward_allocations [T] [passes]
// prints, per thread count, "threads T passes P allocations A arena_bytes B".
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include <tbb/task_arena.h>

#include "../tests/support/counting_new.hpp"
#include "ctseg/model/network.hpp"
#include "ctseg/nets.hpp"

int main(int argc, char** argv) {
    using namespace ctseg;
    using bench = bind<nets::unet<2, 32, 4, true>, shape<1, 256, 256>>;  // examples/unet2d's "bench" variant
    const auto positive = [&](int i, int fallback) {
        if (argc <= i) return fallback;
        char* end = nullptr;
        const long v = std::strtol(argv[i], &end, 10);
        if (*argv[i] == '\0' || *end != '\0' || v < 1 || v > 1000) {
            std::fprintf(stderr, "forward_allocations: argument %d ('%s') must be a whole number in [1, 1000]\n", i, argv[i]);
            std::exit(2);
        }
        return int(v);
    };
    const int threads = positive(1, 2), passes = positive(2, 5);
    const auto net = std::make_unique<const network<bench>>(1);
    std::vector<float> x(bench::input_shape::size, 0.5f), y(bench::output_shape::size);
    for (int t : {1, threads}) {
        long counted = 0;
        std::size_t arena = 0;
        tbb::task_arena(t).execute([&] {
            net->forward(1, x.data(), y.data());  // leases the arena
            const long before = allocation_count();
            for (int i = 0; i < passes; ++i) net->forward(1, x.data(), y.data());
            counted = allocation_count() - before;
            arena = net->arena_bytes(1);
        });
        std::printf("threads %d passes %d allocations %ld arena_bytes %zu\n", t, passes, counted, arena);
        if (t == threads) break;
    }
    return 0;
}
