// Networks run end to end: fused plans against unfused ones and against naive
// layer-by-layer references, thread safety of const forward, determinism.
#define BOOST_TEST_MODULE model forward
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include <tbb/task_arena.h>

#include "common.hpp"
#include "ctseg/model/network.hpp"
#include "ctseg/nets.hpp"

using namespace ctseg;

using model_testing::random_values;

namespace {
double max_abs(const std::vector<float>& v) {
    double m = 0;
    for (float x : v) m = std::max(m, double(std::abs(x)));
    return m;
}

template <class A, class B>
double max_diff(const A& a, const B& b) {
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
    return m;
}

constexpr plan::plan_options unfused{false, false, false, false};
// Every convolution pair that may chain does, whatever its size; and the same without chains.
constexpr plan::plan_options all_chains{.chain_min_elements = 1};
constexpr plan::plan_options no_chains{.chain_convolutions = false};

// Sets every tensor whose key satisfies `pick` to values uniform in [lo, hi).
template <class Net, class Pick>
void randomise(Net& net, Pick pick, float lo, float hi, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(lo, hi);
    for (auto& e : net.state_entries())
        if (pick(e.name)) for (auto& x : e.values) x = u(rng);
    net.state_changed();
}

// The values of the tensor with key `name`.
template <class Entries>
const float* values_of(const Entries& entries, const std::string& name) {
    for (auto& e : entries)
        if (e.name == name) return e.values.data();
    BOOST_FAIL("no tensor " + name);
    return nullptr;
}

template <class Net, class In>
void fused_matches_unfused(int batch) {
    using fused_t = network<bind<Net, In>>;
    using plain_t = network<bind<Net, In, unfused>>;
    auto fused = std::make_unique<fused_t>(11);
    auto plain = std::make_unique<plain_t>(0);
    // Non-trivial running statistics, so that folding batch norms is exercised.
    randomise(*fused, [](const std::string& key) { return key.ends_with("running_var"); }, 0.5f, 1.5f, 3);
    randomise(*fused, [](const std::string& key) { return key.ends_with("running_mean"); }, -0.5f, 0.5f, 4);
    copy_state(*fused, *plain);
    const auto x = random_values(std::size_t(batch) * In::size, 5);
    const auto a = fused->forward(x);
    const auto b = plain->forward(x);
    BOOST_REQUIRE_EQUAL(a.size(), b.size());
    BOOST_TEST(max_diff(a, b) <= 1e-5 * std::max(1.0, max_abs(b)));
    BOOST_TEST(max_abs(b) > 0);
}
}  // namespace

BOOST_AUTO_TEST_CASE(fused_plans_compute_what_unfused_plans_compute) {
    fused_matches_unfused<nets::unet<2, 4, 2>, shape<1, 92, 108>>(2);
    fused_matches_unfused<nets::unet<3, 4, 2, true>, shape<2, 32, 24>>(1);
    fused_matches_unfused<nets::unet3d<3, 2, 2>, shape<1, 44, 52, 60>>(1);
    fused_matches_unfused<nets::vnet<2, 2>, shape<1, 16, 32, 48>>(1);
    fused_matches_unfused<nets::fcn8s<5, nets::per_stage(8, 8, 16, 16, 16), nets::per_stage(1, 1, 2, 2, 2), 32, 3>, shape<3, 64, 96>>(2);
    fused_matches_unfused<nets::context_net<4, 8>, shape<1, 70, 90>>(2);
}

namespace {
template <class Bound>
int chains_in() {
    int n = 0;
    for (std::size_t i = 0; i < Bound::graph.n_ops; ++i) {
        const auto& o = Bound::graph.ops[i];
        n += !o.removed && o.chain_next >= 0 && !o.chained;
    }
    return n;
}

// Chained convolutions give the results of the same plan without chains, bit
// for bit, at 1 and 2 threads; their intermediates leave the arena.
template <class Net, class In>
void chained_matches_unchained(int batch, int expected_chains) {
    using chained_b = bind<Net, In, all_chains>;
    using plain_b = bind<Net, In, no_chains>;
    BOOST_TEST(chains_in<chained_b>() == expected_chains);
    BOOST_TEST(chains_in<plain_b>() == 0);
    BOOST_TEST(chained_b::workspace_elements <= plain_b::workspace_elements);
    auto chained = std::make_unique<network<chained_b>>(11);
    auto plain = std::make_unique<network<plain_b>>(0);
    randomise(*chained, [](const std::string& key) { return key.ends_with("running_var"); }, 0.5f, 1.5f, 3);
    randomise(*chained, [](const std::string& key) { return key.ends_with("running_mean"); }, -0.5f, 0.5f, 4);
    copy_state(*chained, *plain);
    const auto x = random_values(std::size_t(batch) * In::size, 5);
    const auto expected = plain->forward(x);
    BOOST_TEST(max_abs(expected) > 0);
    for (int threads : {1, 2}) {
        std::vector<float> got;
        tbb::task_arena(threads).execute([&] { got = chained->forward(x); });
        BOOST_TEST_INFO("threads " << threads);
        BOOST_TEST(got == expected);
    }
}
}  // namespace

BOOST_AUTO_TEST_CASE(chained_convolutions_compute_what_layers_compute) {
    // U-Net: the two convolutions of each of the 2 x depth + 1 blocks, the
    // last decoder block with the 1x1 head.
    chained_matches_unchained<nets::unet<2, 4, 2>, shape<1, 92, 108>>(2, 5);
    chained_matches_unchained<nets::unet<3, 4, 2, true>, shape<2, 32, 24>>(1, 5);
    // 3D U-Net with folded batch norms.
    chained_matches_unchained<nets::unet3d<3, 2, 2>, shape<1, 44, 52, 60>>(1, 5);
    // The context network: ten convolutions in a row, chains of 4, 4 and 2.
    chained_matches_unchained<nets::context_net<4, 8>, shape<1, 70, 90>>(2, 3);
}

BOOST_AUTO_TEST_CASE(large_planes_chain_by_default) {
    // The U-Net benchmark network: its 256 x 256 blocks chain (32 channels
    // of 256 x 256 are 2^21 elements); the smaller levels run layer by layer.
    using bench = bind<nets::unet<2, 32, 4, true>, shape<1, 256, 256>>;
    BOOST_TEST(chains_in<bench>() == 2);
    using small = bind<nets::unet<2, 32, 4, true>, shape<1, 128, 128>>;
    BOOST_TEST(chains_in<small>() == 0);
}

namespace {
// The forward pass with blocked inner tensors against the same network run
// all NCHW (itself checked against naive layers and PyTorch), at 1 and 2
// threads; the blocked results do not depend on the number of threads.
template <class Bound>
void blocked_matches_nchw(int batch) {
    using net_t = network<Bound>;
    static_assert(net_t::layouts.any(), "the case must have blocked values");
    static_assert(!net_t::layouts.blocked[std::size_t(Bound::graph.input)] && !net_t::layouts.blocked[std::size_t(Bound::graph.output)]);
    auto net = std::make_unique<net_t>(21);
    const auto x = random_values(std::size_t(batch) * Bound::input_shape::size, 8);
    net->use_blocked_layouts(false);
    const auto expected = net->forward(x);
    net->use_blocked_layouts(true);
    BOOST_TEST(max_abs(expected) > 0);
    std::vector<float> one, two;
    tbb::task_arena(1).execute([&] { one = net->forward(x); });
    tbb::task_arena(2).execute([&] { two = net->forward(x); });
    BOOST_TEST(max_diff(one, expected) <= 1e-5 * std::max(1.0, max_abs(expected)));
    BOOST_TEST(one == two);
}
}  // namespace

BOOST_AUTO_TEST_CASE(blocked_layouts_compute_what_nchw_computes) {
    // Padded U-Net: the 128 x 160 and 64 x 80 levels blocked (chains,
    // pooling, transposed convolution into the concatenation, the 1x1 head),
    // the 32 x 40 bottom NCHW.
    blocked_matches_nchw<bind<nets::unet<2, 16, 2, true>, shape<1, 128, 160>>>(2);
    // The same without chains: every blocked kernel on whole tensors.
    blocked_matches_nchw<bind<nets::unet<2, 16, 2, true>, shape<1, 128, 160>, no_chains>>(1);
    // Valid convolutions with cropped skips: the crop reads NCHW, so the
    // skip stays NCHW while the convolutions around it run blocked.
    blocked_matches_nchw<bind<nets::unet<2, 16, 2>, shape<1, 140, 140>>>(1);
    // Dilated convolutions (the context network) with batch norms folded.
    blocked_matches_nchw<bind<nets::context_net<4, 16>, shape<1, 130, 128>>>(1);
}

BOOST_AUTO_TEST_CASE(blocked_layouts_where_they_pay) {
    // The U-Net benchmark: blocked on its 256 x 256 to 64 x 64 planes,
    // NCHW from 32 x 32 down, at the network's input and output, and
    // wherever an operation has no blocked kernel (residual adds).
    using bench = bind<nets::unet<2, 32, 4, true>, shape<1, 256, 256>>;
    constexpr auto& g = bench::graph;
    constexpr auto& lay = network<bench>::layouts;
    int blocked = 0;
    for (std::size_t v = 0; v < g.n_values; ++v) {
        const auto& x = g.values[v];
        const bool inner = int(x.buffer) != g.input && int(x.buffer) != g.output;
        BOOST_TEST_INFO("value " << v << " " << x.channels << " x " << x.extent[0] << " x " << x.extent[1]);
        BOOST_TEST(lay.blocked[v] == (inner && x.plane() >= model::min_blocked_plane));
        blocked += lay.blocked[v];
    }
    BOOST_TEST(blocked > 0);
    // V-Net: residual adds run NCHW.
    using v = bind<nets::vnet<2, 2>, shape<1, 16, 32, 48>>;
    BOOST_TEST(!network<v>::layouts.any());
    // Double precision runs NCHW.
    using bench_double = network<bench, double>;
    BOOST_TEST(!bench_double::layouts.any());
}

BOOST_AUTO_TEST_CASE(blocked_relu_keeps_nan) {
    // A NaN input pixel makes NaN exactly the outputs whose 3 x 3 window holds it.
    using bound = bind<seq<conv<16, kernel<3>, padding<1>>, relu, conv<2, kernel<1>>>, shape<1, 128, 130>>;
    static_assert(network<bound>::layouts.any());
    const auto m = std::make_unique<const network<bound>>(1);
    std::vector<float> x(128 * 130, 0.5f);
    x[std::size_t(40 * 130 + 0)] = std::numeric_limits<float>::quiet_NaN();  // on the left border
    const auto y = m->forward(x);
    for (std::size_t c = 0; c < 2; ++c)
        for (int r = 0; r < 128; ++r)
            for (int k = 0; k < 130; ++k) {
                const bool near = r >= 39 && r <= 41 && k <= 1;
                if (std::isnan(y[c * 128 * 130 + std::size_t(r * 130 + k)]) != near)
                    BOOST_FAIL("channel " << c << " row " << r << " column " << k);
            }
}

// ------------------------------------------------------------- naive layers
namespace naive {
struct tensor {
    int n = 0, c = 0;
    std::vector<int> ext;
    std::vector<double> v;
    int plane() const {
        int p = 1;
        for (int e : ext) p *= e;
        return p;
    }
    double& at(int b, int ch, int k) { return v[std::size_t((b * c + ch) * plane() + k)]; }
    double at(int b, int ch, int k) const { return v[std::size_t((b * c + ch) * plane() + k)]; }
};

// Unravels a flat spatial index.
std::vector<int> coords(int k, const std::vector<int>& ext) {
    std::vector<int> r(ext.size());
    for (int d = int(ext.size()) - 1; d >= 0; --d) { r[std::size_t(d)] = k % ext[std::size_t(d)]; k /= ext[std::size_t(d)]; }
    return r;
}

using dims = std::vector<int>;
tensor conv(const tensor& x, const float* w, const float* b, int out, const dims& k, const dims& stride, const dims& pad, const dims& dil) {
    tensor y;
    y.n = x.n;
    y.c = out;
    for (std::size_t d = 0; d < x.ext.size(); ++d) y.ext.push_back((x.ext[d] + 2 * pad[d] - dil[d] * (k[d] - 1) - 1) / stride[d] + 1);
    y.v.assign(std::size_t(y.n * y.c * y.plane()), 0.0);
    int taps = 1;
    for (int e : k) taps *= e;
    for (int n = 0; n < y.n; ++n)
        for (int o = 0; o < out; ++o)
            for (int q = 0; q < y.plane(); ++q) {
                const auto oc = coords(q, y.ext);
                double acc = b ? b[o] : 0.0;
                for (int i = 0; i < x.c; ++i)
                    for (int t = 0; t < taps; ++t) {
                        const auto tc = coords(t, k);
                        int flat = 0;
                        bool inside = true;
                        for (std::size_t d = 0; d < oc.size(); ++d) {
                            const int pos = oc[d] * stride[d] - pad[d] + tc[d] * dil[d];
                            inside &= pos >= 0 && pos < x.ext[d];
                            flat = flat * x.ext[d] + pos;
                        }
                        if (inside) acc += double(w[(o * x.c + i) * taps + t]) * x.at(n, i, flat);
                    }
                y.at(n, o, q) = acc;
            }
    return y;
}
}  // namespace naive

BOOST_AUTO_TEST_CASE(norms_activations_and_outputs_against_naive_layers) {
    // conv (dilated, strided) -> instance norm (affine) -> leaky ReLU -> conv 1x3x3 -> softmax, in 3D.
    using net = seq<named<"a", conv<3, kernel<3>, stride<2>, dilation<2>, padding<2>>>, named<"n", instance_norm<affine, eps<1, 1000>>>,
                    leaky_relu<1, 5>, named<"b", conv<4, kernel<1, 3, 3>, padding<0, 1, 1>>>, softmax>;
    using bound = bind<net, shape<2, 5, 9, 7>>;
    static_assert(std::is_same_v<bound::output_shape, shape<4, 3, 5, 4>>);
    auto m = std::make_unique<network<bound>>(4);
    randomise(*m, [](const std::string& key) { return key.starts_with("n."); }, 0.5f, 1.5f, 9);
    const int batch = 2;
    const auto x = random_values(std::size_t(batch) * bound::input_shape::size, 8);
    const auto y = m->forward(x);

    const auto entries = m->state_entries();
    auto find = [&](const std::string& name) { return values_of(entries, name); };
    naive::tensor t{batch, 2, {5, 9, 7}, std::vector<double>(x.begin(), x.end())};
    t = naive::conv(t, find("a.weight"), find("a.bias"), 3, {3, 3, 3}, {2, 2, 2}, {2, 2, 2}, {2, 2, 2});
    const float* g = find("n.weight");
    const float* be = find("n.bias");
    for (int n = 0; n < t.n; ++n)
        for (int c = 0; c < t.c; ++c) {
            double mean = 0, var = 0;
            for (int k = 0; k < t.plane(); ++k) mean += t.at(n, c, k);
            mean /= t.plane();
            for (int k = 0; k < t.plane(); ++k) var += (t.at(n, c, k) - mean) * (t.at(n, c, k) - mean);
            var /= t.plane();
            for (int k = 0; k < t.plane(); ++k) {
                double v = (t.at(n, c, k) - mean) / std::sqrt(var + 1e-3) * g[c] + be[c];
                t.at(n, c, k) = v > 0 ? v : 0.2 * v;
            }
        }
    t = naive::conv(t, find("b.weight"), find("b.bias"), 4, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1});
    BOOST_TEST(t.ext == std::vector<int>({3, 5, 4}));
    for (int n = 0; n < t.n; ++n)
        for (int k = 0; k < t.plane(); ++k) {
            double hi = -1e300, sum = 0;
            for (int c = 0; c < t.c; ++c) hi = std::max(hi, t.at(n, c, k));
            for (int c = 0; c < t.c; ++c) sum += std::exp(t.at(n, c, k) - hi);
            for (int c = 0; c < t.c; ++c) t.at(n, c, k) = std::exp(t.at(n, c, k) - hi) / sum;
        }
    BOOST_REQUIRE_EQUAL(y.size(), t.v.size());
    BOOST_TEST(max_diff(y, t.v) <= 1e-5);
}

BOOST_AUTO_TEST_CASE(batch_norm_prelu_residual_and_argmax_against_naive_layers) {
    // Standalone batch norm (not after a conv), PReLU, a residual whose shortcut
    // repeats the channels, and argmax, in 2D with odd extents.
    using body = seq<named<"bn", batch_norm<>>, named<"act", prelu>, named<"c", conv<6, kernel<3>, padding<1>>>>;
    using net = seq<residual<body, repeat_channels<3>>, argmax>;
    using bound = bind<net, shape<2, 7, 9>>;
    static_assert(std::is_same_v<bound::output_shape, shape<1, 7, 9>>);
    auto m = std::make_unique<network<bound>>(6);
    randomise(*m, [](const std::string& key) { return key.starts_with("bn.") || key == "act.weight"; }, 0.2f, 1.4f, 2);
    const int batch = 3;
    const auto x = random_values(std::size_t(batch) * bound::input_shape::size, 1);
    const auto y = m->forward(x);

    const auto entries = m->state_entries();
    auto find = [&](const std::string& name) { return values_of(entries, name); };
    naive::tensor t{batch, 2, {7, 9}, std::vector<double>(x.begin(), x.end())};
    const naive::tensor input = t;
    for (int n = 0; n < batch; ++n)
        for (int c = 0; c < 2; ++c)
            for (int k = 0; k < t.plane(); ++k) {
                double v = (t.at(n, c, k) - find("bn.running_mean")[c]) / std::sqrt(double(find("bn.running_var")[c]) + 1e-5) *
                               find("bn.weight")[c] + find("bn.bias")[c];
                t.at(n, c, k) = v > 0 ? v : find("act.weight")[c] * v;
            }
    t = naive::conv(t, find("c.weight"), find("c.bias"), 6, {3, 3}, {1, 1}, {1, 1}, {1, 1});
    int decided = 0;
    for (int n = 0; n < batch; ++n)
        for (int k = 0; k < t.plane(); ++k) {
            int best = 0;
            double top = -1e300, second = -1e300;
            for (int c = 0; c < 6; ++c) {
                const double v = t.at(n, c, k) + input.at(n, c % 2, k);
                if (v > top) { second = top; top = v; best = c; }
                else second = std::max(second, v);
            }
            if (top - second > 1e-4) {  // ties within rounding may go either way
                ++decided;
                BOOST_TEST(y[std::size_t(n * t.plane() + k)] == float(best));
            }
        }
    BOOST_TEST(decided > 150);
}

BOOST_AUTO_TEST_CASE(const_forward_is_thread_safe) {
    using bound = bind<nets::unet<2, 4, 2, true>, shape<1, 32, 40>>;
    const auto m = std::make_unique<const network<bound>>(3);
    std::vector<std::vector<float>> inputs, serial, parallel(6);
    for (unsigned i = 0; i < 6; ++i) {
        inputs.push_back(random_values(2 * bound::input_shape::size, 100 + i));
        serial.push_back(m->forward(inputs.back()));
    }
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < 6; ++i)
        threads.emplace_back([&, i] {
            for (int r = 0; r < 3; ++r) parallel[i] = m->forward(inputs[i]);
        });
    for (auto& t : threads) t.join();
    for (std::size_t i = 0; i < 6; ++i) BOOST_TEST(parallel[i] == serial[i]);
}

BOOST_AUTO_TEST_CASE(results_do_not_depend_on_the_number_of_threads) {
    using bound = bind<nets::unet3d<3, 2, 2>, shape<1, 44, 52, 60>>;
    const auto m = std::make_unique<const network<bound>>(5);
    const auto x = random_values(bound::input_shape::size, 4);
    std::vector<float> one, two;
    tbb::task_arena(1).execute([&] { one = m->forward(x); });
    tbb::task_arena(2).execute([&] { two = m->forward(x); });
    BOOST_TEST(one == two);
}

BOOST_AUTO_TEST_CASE(bad_calls_are_errors) {
    using bound = bind<nets::unet<2, 4, 2, true>, shape<1, 16, 16>>;
    const auto m = std::make_unique<const network<bound>>();
    std::vector<float> x(bound::input_shape::size + 3);
    BOOST_CHECK_THROW(m->forward(x), ctseg::error);
    std::vector<float> y(bound::output_shape::size);
    BOOST_CHECK_THROW(m->forward(0, x.data(), y.data()), ctseg::error);
}

BOOST_AUTO_TEST_CASE(relu_keeps_nan_as_pytorch_does) {
    // Regression: the fused ReLU epilogue turned NaN into 0, hiding broken inputs.
    using bound = bind<seq<conv<2, kernel<1>>, relu>, shape<1, 3, 5>>;
    const auto m = std::make_unique<const network<bound>>(1);
    std::vector<float> x(15, 0.5f);
    x[7] = std::numeric_limits<float>::quiet_NaN();
    const auto y = m->forward(x);
    for (std::size_t c = 0; c < 2; ++c)
        for (std::size_t k = 0; k < 15; ++k) BOOST_TEST(std::isnan(y[c * 15 + k]) == (k == 7), "channel " << c << " position " << k);
}

// copy_state between two bindings of one network: the target then computes what
// the source computes on the common extent; a different state_dict is refused
// before anything is written.
BOOST_AUTO_TEST_CASE(copy_state_between_bindings) {
    using small = bind<nets::unet<2, 4, 1, true>, shape<1, 16, 16>>;
    using large = bind<nets::unet<2, 4, 1, true>, shape<1, 32, 32>>;
    using other = bind<nets::unet<2, 8, 1, true>, shape<1, 16, 16>>;
    network<small> a(1);
    network<large> b(2);
    copy_state(a, b);
    auto ea = a.state_entries();
    auto eb = b.state_entries();
    for (std::size_t i = 0; i < ea.size(); ++i)
        BOOST_TEST(std::equal(ea[i].values.begin(), ea[i].values.end(), eb[i].values.begin()), ea[i].name);
    // The copy computes what the source computes (what inference derives from
    // the parameters is refreshed too).
    network<small> d(5);
    copy_state(a, d);
    std::vector<float> x(small::input_shape::size);
    std::mt19937 rng(4);
    std::normal_distribution<float> nd;
    for (auto& v : x) v = nd(rng);
    BOOST_TEST(a.forward(std::span<const float>(x)) == d.forward(std::span<const float>(x)));
    network<other> c(3);
    const auto before = std::vector<float>(c.parameters().begin(), c.parameters().end());
    BOOST_CHECK_THROW(copy_state(a, c), ctseg::error);
    BOOST_TEST(std::equal(before.begin(), before.end(), c.parameters().begin()));
}
