// Compile-time constants of the seed networks against independent numbers:
// PyTorch's parameter counts for the reference modules, FLOPs and receptive
// fields worked out by hand, and properties the memory plan must satisfy.
#define BOOST_TEST_MODULE plan networks
#include <boost/test/unit_test.hpp>

#include <set>

#include "ctseg/nets.hpp"
#include "ctseg/plan/bind.hpp"

using namespace ctseg;

using unet_paper = bind<nets::unet<2, 64, 4>, shape<1, 572, 572>>;
using unet_small = bind<nets::unet<2, 4, 2>, shape<1, 92, 108>>;
using unet_padded = bind<nets::unet<2, 8, 3, true>, shape<1, 64, 80>>;
using unet_bench = bind<nets::unet<2, 32, 4, true>, shape<1, 256, 256>>;
using unet3d_paper = bind<nets::unet3d<3, 32, 3>, shape<3, 116, 132, 132>>;
using unet3d_small = bind<nets::unet3d<3, 2, 2>, shape<1, 44, 52, 60>>;
using unet3d_bench = bind<nets::unet3d<3, 16, 3, true>, shape<1, 64, 64, 64>>;
using vnet_paper = bind<nets::vnet<2, 16>, shape<1, 64, 128, 128>>;
using vnet_small = bind<nets::vnet<2, 2>, shape<1, 16, 32, 48>>;
using fcn_paper = bind<nets::fcn8s<21>, shape<3, 512, 512>>;
using fcn_small = bind<nets::fcn8s<5, nets::per_stage(8, 8, 16, 16, 16), nets::per_stage(1, 1, 2, 2, 2), 32, 3>, shape<3, 64, 96>>;
using context_paper = bind<nets::context_net<21, 64>, shape<3, 512, 512>>;
using context_small = bind<nets::context_net<4, 8>, shape<1, 70, 90>>;

// Output shapes as the papers and the reference modules give them.
static_assert(std::is_same_v<unet_paper::output_shape, shape<2, 388, 388>>);
static_assert(std::is_same_v<unet3d_paper::output_shape, shape<3, 28, 44, 44>>);
static_assert(std::is_same_v<unet_small::output_shape, shape<2, 52, 68>>);
static_assert(std::is_same_v<unet3d_small::output_shape, shape<3, 4, 12, 20>>);
static_assert(std::is_same_v<fcn_paper::output_shape, shape<21, 512, 512>>);
static_assert(std::is_same_v<vnet_paper::output_shape, shape<2, 64, 128, 128>>);

// Parameter counts printed by PyTorch for the reference modules
// (sum(p.numel() for p in model.parameters())).
static_assert(unet_paper::parameter_count == 31'030'658);
static_assert(unet_small::parameter_count == 7'402);
static_assert(unet_padded::parameter_count == 120'690);
static_assert(unet_bench::parameter_count == 7'759'554);
static_assert(unet3d_paper::parameter_count == 19'075'523);
static_assert(unet3d_small::parameter_count == 18'187);
static_assert(unet3d_bench::parameter_count == 4'770'691);
static_assert(vnet_paper::parameter_count == 65'175'314);
static_assert(vnet_small::parameter_count == 1'019'348);
static_assert(fcn_paper::parameter_count == 134'489'759);
static_assert(fcn_small::parameter_count == 26'807);
static_assert(context_paper::parameter_count == 42'301);
static_assert(context_small::parameter_count == 1'428);

// Receptive fields: the context module's 67 from Yu & Koltun; hand sums of
// (kernel-1) * dilation * jump otherwise.
static_assert(bind<nets::context_module<21>, shape<21, 100, 100>>::receptive_field == std::array<long, 2>{67, 67});
static_assert(context_paper::receptive_field == std::array<long, 2>{71, 71});
// conv3, conv3, pool2, conv3 (jump 2): 1 + 2 + 2 + 1 + 4 = 10
using small_chain = seq<conv<4, kernel<3>>, conv<4, kernel<3>>, max_pool<kernel<2>>, conv<4, kernel<3>>>;
static_assert(bind<small_chain, shape<1, 20, 20>>::receptive_field == std::array<long, 2>{10, 10});
// anisotropic 1x3x3 then 3x1x1: 3 x 3 x 3
using aniso = seq<conv<2, kernel<1, 3, 3>>, conv<2, kernel<3, 1, 1>>>;
static_assert(bind<aniso, shape<1, 5, 6, 7>>::receptive_field == std::array<long, 3>{3, 3, 3});
static_assert(std::is_same_v<bind<aniso, shape<1, 5, 6, 7>>::output_shape, shape<2, 3, 4, 5>>);

// FLOPs of one 3x3 64->64 convolution at 256x256, by hand: 2 * 64 * 9 * 64 * 65536.
using one_conv = conv<64, kernel<3>, padding<1>>;
static_assert(bind<one_conv, shape<64, 256, 256>>::flops == 2L * 64 * 9 * 64 * 65536);
// The unet2d bench variant: 24.07 GFLOP of convolutions (PyTorch hook count, 2 per MAC).
static_assert(unet_bench::flops > 24'000'000'000L && unet_bench::flops < 24'200'000'000L);

// The same template in 2D and 3D: the rank follows the input.
using two_level = nets::unet<2, 4, 2, true>;
static_assert(std::is_same_v<bind<two_level, shape<1, 16, 24>>::output_shape, shape<2, 16, 24>>);
static_assert(std::is_same_v<bind<two_level, shape<1, 8, 16, 24>>::output_shape, shape<2, 8, 16, 24>>);

// Transposed convolution paddings derived at compile time: FCN's x2 and x8.
template <class B>
constexpr int count_ops(plan::op_kind k) {
    int n = 0;
    for (std::size_t i = 0; i < B::graph.n_ops; ++i) n += !B::graph.ops[i].removed && B::graph.ops[i].kind == k;
    return n;
}

namespace {
template <class B>
void check_memory_plan() {
    constexpr const auto& g = B::graph;
    constexpr const auto& m = B::memory;
    // Live ranges recomputed from the operation list.
    std::vector<int> first(g.n_values, 1 << 30), last(g.n_values, -1);
    int step = 0;
    for (std::size_t i = 0; i < g.n_ops; ++i) {
        if (g.ops[i].removed) continue;
        for (int v : {g.ops[i].in, g.ops[i].out, g.ops[i].residual}) {
            if (v < 0) continue;
            const auto s = std::size_t(g.values[std::size_t(v)].buffer);
            first[s] = std::min(first[s], step);
            last[s] = std::max(last[s], step);
        }
        // The links of a chain of convolutions run as one step.
        if (g.ops[i].chain_next < 0) ++step;
    }
    long total = 0;
    std::vector<std::size_t> arena;
    for (std::size_t v = 0; v < g.n_values; ++v) {
        if (g.values[v].streamed) {
            // Written by one link of a chain, read only by the next one; not in the arena.
            int writers = 0, readers = 0, writer = -1, reader = -1;
            for (std::size_t i = 0; i < g.n_ops; ++i) {
                if (g.ops[i].removed) continue;
                if (g.ops[i].out == int(v)) { ++writers; writer = int(i); }
                if (g.ops[i].in == int(v) || g.ops[i].residual == int(v)) { ++readers; reader = int(i); }
            }
            BOOST_TEST(writers == 1);
            BOOST_TEST(readers == 1);
            BOOST_TEST((writer >= 0 && g.ops[std::size_t(writer)].chain_next == reader && g.ops[std::size_t(reader)].in == int(v)));
            BOOST_TEST(m.offset[v] == -1);
            continue;
        }
        if (g.values[v].buffer != int(v) || last[v] < 0 || int(v) == g.input || int(v) == g.output) continue;
        BOOST_TEST(m.offset[v] >= 0);
        BOOST_TEST(m.offset[v] % 16 == 0);
        BOOST_TEST(m.offset[v] + m.size[v] <= m.arena);
        BOOST_TEST(m.size[v] >= long(g.values[v].channels) * g.values[v].plane());
        total += m.size[v];
        arena.push_back(v);
    }
    for (std::size_t a = 0; a < arena.size(); ++a)
        for (std::size_t b = a + 1; b < arena.size(); ++b) {
            const auto x = arena[a], y = arena[b];
            const bool live_together = first[x] <= last[y] && first[y] <= last[x];
            const bool overlap = m.offset[x] < m.offset[y] + m.size[y] && m.offset[y] < m.offset[x] + m.size[x];
            BOOST_TEST(!(live_together && overlap), "storages " << x << " and " << y << " overlap while both live");
        }
    BOOST_TEST(B::workspace_elements <= total);
    BOOST_TEST(B::template workspace_bytes<float> == B::workspace_elements * 4);
}
}  // namespace

BOOST_AUTO_TEST_CASE(memory_plans_never_overlap_live_storage) {
    check_memory_plan<unet_paper>();
    check_memory_plan<unet_small>();
    check_memory_plan<unet_padded>();
    check_memory_plan<unet3d_small>();
    check_memory_plan<vnet_small>();
    check_memory_plan<fcn_small>();
    check_memory_plan<context_small>();
    // Chains of every size (the default chains only large planes).
    constexpr plan::plan_options all_chains{.chain_min_elements = 1};
    check_memory_plan<bind<nets::unet<2, 4, 2>, shape<1, 92, 108>, all_chains>>();
    check_memory_plan<bind<nets::unet3d<3, 2, 2>, shape<1, 44, 52, 60>, all_chains>>();
    check_memory_plan<bind<nets::context_net<4, 8>, shape<1, 70, 90>, all_chains>>();
}

BOOST_AUTO_TEST_CASE(memory_is_reused) {
    // The arena is far smaller than keeping every intermediate tensor.
    long all = 0;
    constexpr const auto& g = unet_paper::lowered;
    for (std::size_t v = 0; v < g.n_values; ++v)
        if (g.values[v].buffer == int(v)) all += long(g.values[v].channels) * g.values[v].plane();
    BOOST_TEST(unet_paper::workspace_elements * 3 < all);
}

BOOST_AUTO_TEST_CASE(fusion_decisions) {
    // conv + bias + ReLU become one kernel: no standalone activation is left in U-Net.
    BOOST_TEST(count_ops<unet_bench>(plan::op_kind::pointwise) == 0);
    // Batch norms fold into the convolutions at inference.
    BOOST_TEST(count_ops<unet3d_small>(plan::op_kind::batch_norm) == 0);
    using unfolded = bind<nets::unet3d<3, 2, 2>, shape<1, 44, 52, 60>, plan::plan_options{false, false, false}>;
    BOOST_TEST(count_ops<unfolded>(plan::op_kind::batch_norm) == 10);
    // Padded U-Net: encoder features and up-convolutions write into their slice
    // of the concatenation, so no copy is left.
    BOOST_TEST(count_ops<unet_padded>(plan::op_kind::copy) == 0);
    // The paper U-Net crops its skips: one copy per level, the up-convolution writes in place.
    BOOST_TEST(count_ops<unet_paper>(plan::op_kind::copy) == 4);
    // V-Net: the PReLU and the residual (its repeated shortcut included) run in the conv epilogue.
    BOOST_TEST(count_ops<vnet_small>(plan::op_kind::pointwise) == 0);
    BOOST_TEST(count_ops<vnet_small>(plan::op_kind::tile) == 0);
    // FCN: each score fusion is done by a convolution's epilogue.
    BOOST_TEST(count_ops<fcn_small>(plan::op_kind::pointwise) == 0);
}

BOOST_AUTO_TEST_CASE(parameter_names_follow_pytorch) {
    constexpr const auto& g = vnet_small::lowered;
    std::set<std::string> names;
    for (std::size_t i = 0; i < g.n_params; ++i) names.insert(std::string(g.params[i].name.view()));
    BOOST_TEST(names.size() == g.n_params);  // unique
    for (const char* key : {"enc.0.convs.0.weight", "enc.0.acts.0.weight", "down.0.0.weight", "down.0.1.weight", "bottom.convs.2.bias",
                            "up.0.0.weight", "up.3.1.weight", "dec.3.convs.0.weight", "head.bias"})
        BOOST_TEST(names.count(key) == 1, key);
    constexpr const auto& u3 = unet3d_small::lowered;
    std::set<std::string> bn;
    for (std::size_t i = 0; i < u3.n_params; ++i) bn.insert(std::string(u3.params[i].name.view()));
    for (const char* key : {"down.0.1.running_mean", "down.0.1.running_var", "down.0.1.num_batches_tracked", "bottom.4.weight", "dec.1.3.weight"})
        BOOST_TEST(bn.count(key) == 1, key);
}

BOOST_AUTO_TEST_CASE(unnamed_layers_are_named_by_position) {
    // As torch.nn.Sequential(Conv2d, Sequential(Conv2d, ReLU), BatchNorm2d) names them.
    using net = seq<conv<4, kernel<3>>, seq<conv<4, kernel<3>>, relu>, batch_norm<>, named<"head", seq<conv<2, kernel<1>>, prelu>>>;
    using bound = bind<net, shape<1, 12, 12>>;
    constexpr const auto& g = bound::lowered;
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < g.n_params; ++i) keys.emplace_back(g.params[i].name.view());
    const std::vector<std::string> want{"0.weight", "0.bias", "1.0.weight", "1.0.bias", "2.weight", "2.bias", "2.running_mean",
                                        "2.running_var", "2.num_batches_tracked", "head.0.weight", "head.0.bias", "head.1.weight"};
    BOOST_TEST(keys == want, boost::test_tools::per_element());
}
