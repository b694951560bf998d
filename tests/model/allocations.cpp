// A forward pass allocates nothing beyond its arena (the planned values and
// the kernels' per-thread working memory) and the weights: after the first
// pass has leased the arena, later passes make no heap allocation at all,
// whatever the number of threads. Counted by replacing the global operator
// new, through which every standard container allocates.
#define BOOST_TEST_MODULE model allocations
#include <boost/test/unit_test.hpp>

#include <memory>
#include <vector>

#include <tbb/task_arena.h>

#include "../support/counting_new.hpp"
#include "common.hpp"
#include "ctseg/exec/conv.hpp"
#include "ctseg/model/network.hpp"
#include "ctseg/nets.hpp"

using namespace ctseg;

using model_testing::random_values;

namespace {
// Heap allocations made by `passes` forward passes after a first one, in an
// arena of `threads` threads.
template <class Bound>
long allocations_after_first_pass(int threads, int batch, int passes = 3) {
    const auto net = std::make_unique<const network<Bound>>(7);
    const auto x = random_values(std::size_t(batch) * Bound::input_shape::size, 11);
    std::vector<float> y(std::size_t(batch) * Bound::output_shape::size);
    long counted = -1;
    tbb::task_arena(threads).execute([&] {
        net->forward(batch, x.data(), y.data());
        const long before = allocation_count();
        for (int i = 0; i < passes; ++i) net->forward(batch, x.data(), y.data());
        counted = allocation_count() - before;
    });
    return counted;
}
}  // namespace

// The counter sees the allocations it must see (else every check below would pass trivially).
BOOST_AUTO_TEST_CASE(the_counter_counts) {
    const long before = allocation_count();
    auto v = std::make_unique<std::vector<float>>(1000);
    BOOST_TEST(allocation_count() - before == 2);
    using bound = bind<nets::unet<2, 4, 1, true>, shape<1, 16, 16>>;
    const network<bound> net(1);
    const auto x = random_values(bound::input_shape::size, 3);
    const long first = allocation_count();
    const auto y = net.forward(x);  // allocates its result (and the arena, the first time)
    BOOST_TEST(allocation_count() - first >= 2);
}

// 2D U-Net: convolutions (one with a partial last block of output channels,
// the 2-class head), transposed convolutions, max pooling, concatenation.
BOOST_AUTO_TEST_CASE(unet2d_forward_allocates_nothing) {
    using bound = bind<nets::unet<2, 8, 2, true>, shape<1, 64, 48>>;
    for (int threads : {1, 2})
        for (int batch : {1, 2}) {
            BOOST_TEST_CONTEXT("threads " << threads << ", batch " << batch) {
                BOOST_TEST(allocations_after_first_pass<bound>(threads, batch) == 0);
            }
        }
}

// The same with every convolution pair chained (depth first, band buffers in
// the arena); the last chain ends in the 2-class head.
BOOST_AUTO_TEST_CASE(chained_unet2d_forward_allocates_nothing) {
    using bound = bind<nets::unet<2, 8, 2, true>, shape<1, 64, 48>, plan::plan_options{.chain_min_elements = 1}>;
    static_assert(bound::graph.ops[0].chain_next >= 0, "the first convolution starts a chain");
    for (int threads : {1, 2})
        for (int batch : {1, 2}) {
            BOOST_TEST_CONTEXT("threads " << threads << ", batch " << batch) {
                BOOST_TEST(allocations_after_first_pass<bound>(threads, batch) == 0);
            }
        }
}

// 3D U-Net with batch norm folded into the convolutions, unpadded (crops).
BOOST_AUTO_TEST_CASE(unet3d_forward_allocates_nothing) {
    using bound = bind<nets::unet3d<3, 2, 2>, shape<1, 44, 44, 44>>;
    for (int threads : {1, 2}) {
        BOOST_TEST_CONTEXT("threads " << threads) { BOOST_TEST(allocations_after_first_pass<bound>(threads, 1) == 0); }
    }
}

// Norm, PReLU, a residual with channel tiling, strided dilated convolution, argmax.
BOOST_AUTO_TEST_CASE(other_operations_allocate_nothing) {
    using body = seq<named<"bn", batch_norm<>>, named<"act", prelu>, named<"c", conv<6, kernel<3>, padding<1>>>>;
    using net1 = seq<residual<body, repeat_channels<3>>, argmax>;
    using net2 = seq<named<"a", conv<3, kernel<3>, stride<2>, dilation<2>, padding<2>>>, named<"n", instance_norm<affine, eps<1, 1000>>>,
                     relu, named<"p", conv<5, kernel<1>>>>;
    for (int threads : {1, 2}) {
        BOOST_TEST_CONTEXT("threads " << threads) {
            BOOST_TEST((allocations_after_first_pass<bind<net1, shape<2, 7, 9>>>(threads, 2)) == 0);
            BOOST_TEST((allocations_after_first_pass<bind<net2, shape<2, 33, 31>>>(threads, 1)) == 0);
            BOOST_TEST((allocations_after_first_pass<bind<net2, shape<2, 9, 10, 11>>>(threads, 1)) == 0);
        }
    }
}

// The kernel on its own: with the tail packed and a workspace given, a
// convolution allocates nothing, not even on its first call.
BOOST_AUTO_TEST_CASE(conv_forward_with_workspace_allocates_nothing) {
    namespace ex = ctseg::exec;
    ex::conv_geometry<2> g;
    g.in_channels = 5;
    g.out_channels = 7;
    g.kernel = {3, 3};
    g.stride = {1, 1};
    g.pad = {1, 1};
    g.dilation = {1, 1};
    const ex::index_t H = 20, W = 37;
    const auto x = random_values(std::size_t(5 * H * W), 1);
    const auto w = random_values(std::size_t(7 * 5 * 9), 2);
    std::vector<float> y(std::size_t(7 * H * W)), reference(y.size());
    const auto tail = ex::pack_conv_tail<float, 2>(g, w.data());
    ex::tensor_ref<const float, 2> in{x.data(), 5, {H, W}, 5 * H * W};
    ex::epilogue<float, 2> ep;
    ex::conv_forward<float, 2>(g, 1, in, w.data(), {reference.data(), 7, {H, W}, 7 * H * W}, ep);
    for (int threads : {1, 2})
        tbb::task_arena(threads).execute([&] {
            const std::size_t bytes = ex::conv_scratch_bytes<float, 2>(g, 1, {H, W});
            std::vector<std::byte> memory(bytes * std::size_t(threads) + 64);
            auto* base = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(memory.data()) + 63) / 64 * 64);
            const long before = allocation_count();
            ex::conv_forward<float, 2>(g, 1, in, w.data(), {y.data(), 7, {H, W}, 7 * H * W}, ep, nullptr, tail.data(),
                                       {base, bytes, threads});
            BOOST_TEST(allocation_count() - before == 0);
            BOOST_TEST(y == reference);
        });
}
