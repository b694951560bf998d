// Training end to end: a small U-Net overfits a fixed batch (the loss goes to
// nearly zero), and the network-level backward pass agrees with finite
// differences in double precision on networks mixing every trainable layer.
#define BOOST_TEST_MODULE train overfit
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <random>

#include "ctseg/nets/unet.hpp"
#include "ctseg/nets/context_net.hpp"
#include "ctseg/nets/fcn.hpp"
#include "ctseg/nets/vnet.hpp"
#include "ctseg/train/init.hpp"
#include "ctseg/train/trainer.hpp"

using namespace ctseg;

BOOST_AUTO_TEST_CASE(small_unet_overfits_a_fixed_batch) {
    using B = bind<nets::unet<2, 4, 2, true>, shape<1, 32, 32>>;
    network<B> net(1);
    train::dataset<float> d;
    d.count = 8;
    std::mt19937 rng(5);
    std::normal_distribution<float> noise(0.0f, 0.1f);
    for (std::size_t s = 0; s < d.count; ++s)
        for (int y = 0; y < 32; ++y)
            for (int x = 0; x < 32; ++x) {
                const float cx = 8.0f + 2.0f * float(s), cy = 20.0f - float(s);
                const bool inside = (float(x) - cx) * (float(x) - cx) + (float(y) - cy) * (float(y) - cy) < 36.0f;
                d.images.push_back((inside ? 1.0f : 0.0f) + noise(rng));
                d.labels.push_back(inside ? 1 : 0);
            }
    train::trainer_options o;
    o.epochs = 300;
    o.batch_size = 4;
    o.adam.lr = 1e-2;
    o.progress = false;
    train::trainer<B> t(net, o);
    const auto& h = t.fit(d, &d);
    BOOST_TEST(h.front().train_loss > 1.0);
    BOOST_TEST(h.back().train_loss < 0.03);
    BOOST_TEST(h.back().val_dice > 0.99);
}

namespace {
// Loss of a fixed projection of the output: L = sum(r * y).
template <class B>
double projected_loss(network<B, double>& net, const std::vector<double>& x, const std::vector<double>& r) {
    tape<B, double> t(1);
    forward_train(net, x.data(), t);
    double l = 0;
    for (std::size_t i = 0; i < r.size(); ++i) l += r[i] * t.output()[i];
    return l;
}

template <class B>
void check_network_gradients(unsigned seed) {
    network<B, double> net(seed);
    std::mt19937 rng(seed);
    std::normal_distribution<double> nd;
    for (auto& e : net.state_entries())
        if (e.name.ends_with("acts.0.weight") || e.name.ends_with(".1.weight")) for (auto& v : e.values) v = 0.1 + 0.2 * std::abs(nd(rng));
    std::vector<double> x(B::input_shape::size), r(B::output_shape::size);
    for (auto& v : x) v = nd(rng);
    for (auto& v : r) v = nd(rng);
    // Analytic gradient. Batch norm statistics come from the batch, so running
    // statistics do not enter; the forward pass still updates them, harmlessly.
    tape<B, double> t(1);
    forward_train(net, x.data(), t);
    std::vector<double> grads(net.parameters().size(), 0.0);
    backward(net, t, r.data(), std::span<double>(grads));
    constexpr const auto& g = B::lowered;
    int checked = 0;
    for (std::size_t i = 0; i < g.n_params; ++i) {
        const auto& p = g.params[i];
        if (!p.trainable || p.counter) continue;
        for (long k : {0L, p.count / 2, p.count - 1}) {
            double& w = net.parameters()[std::size_t(p.offset + k)];
            const double keep = w, h = 1e-6;
            w = keep + h;
            const double up = projected_loss(net, x, r);
            w = keep - h;
            const double down = projected_loss(net, x, r);
            w = keep;
            const double fd = (up - down) / (2 * h), an = grads[std::size_t(p.offset + k)];
            BOOST_TEST(std::abs(fd - an) <= 1e-5 * std::max(1.0, std::abs(fd)), p.name.view() << "[" << k << "]: finite difference " << fd << ", backward " << an);
            ++checked;
        }
    }
    BOOST_TEST(checked > 20);
}
}  // namespace

BOOST_AUTO_TEST_CASE(network_backward_matches_finite_differences) {
    // 2D: valid U-Net (cropped skips, max pooling, transposed convolution).
    check_network_gradients<bind<nets::unet<2, 2, 1>, shape<1, 20, 22>>>(1);
    // 3D: conv, batch norm, PReLU, residual with repeated channels, strided conv,
    // leaky ReLU, instance norm, concatenation, dilation, anisotropic kernels.
    using body = seq<named<"c0", conv<6, kernel<1, 3, 3>, padding<0, 1, 1>>>, named<"bn", batch_norm<>>, named<"acts.0", prelu>>;
    using net = seq<named<"stem", conv<2, kernel<3>, padding<1>>>, residual<body, repeat_channels<3>>, leaky_relu<1, 10>,
                    skip_concat<seq<named<"down", conv<4, kernel<2>, stride<2>>>, named<"in", instance_norm<affine>>,
                                    named<"up", conv_transpose<3, kernel<2>, stride<2>>>>>,
                    named<"dil", conv<2, kernel<3>, dilation<2>, padding<2>>>>;
    check_network_gradients<bind<net, shape<1, 4, 6, 8>>>(2);
}

BOOST_AUTO_TEST_CASE(identity_initialised_context_module_passes_its_input_through) {
    // Yu & Koltun initialise the context module as the identity: with ReLU after
    // every layer, its output is then relu(input) exactly.
    using B = bind<nets::context_module<4>, shape<4, 23, 19>>;
    network<B> net(3);
    BOOST_TEST(train::identity_init_layers(net, "context.") == 7u);
    std::mt19937 rng(4);
    std::normal_distribution<float> nd;
    std::vector<float> x(2 * B::input_shape::size);
    for (auto& v : x) v = nd(rng);
    const auto y = net.forward(x);
    for (std::size_t i = 0; i < x.size(); ++i) BOOST_TEST(y[i] == std::max(x[i], 0.0f));
}

namespace {
// The function training differentiates (the network as written, unfused) is
// the one inference computes with its fused kernels.
template <class B>
void training_graph_computes_the_fused_function() {
    network<B> net(7);
    std::mt19937 rng(8);
    std::normal_distribution<float> nd;
    std::vector<float> x(2 * B::input_shape::size);
    for (auto& v : x) v = nd(rng);
    const auto fused = net.forward(x);
    tape<B> t(2);
    forward_train(net, x.data(), t);
    double worst = 0, scale = 0;
    for (std::size_t i = 0; i < fused.size(); ++i) {
        worst = std::max(worst, double(std::abs(fused[i] - t.output()[i])));
        scale = std::max(scale, double(std::abs(fused[i])));
    }
    BOOST_TEST(scale > 0);
    BOOST_TEST(worst <= 1e-5 * scale, "fused inference and the training graph differ by " << worst << " (scale " << scale << ")");
}
}  // namespace

BOOST_AUTO_TEST_CASE(fused_inference_equals_the_training_graph) {
    training_graph_computes_the_fused_function<bind<nets::unet<2, 4, 2>, shape<1, 92, 108>>>();
    training_graph_computes_the_fused_function<bind<nets::vnet<2, 2>, shape<1, 16, 32, 48>>>();
    training_graph_computes_the_fused_function<bind<nets::fcn8s<5, nets::per_stage(8, 8, 16, 16, 16), nets::per_stage(1, 1, 2, 2, 2), 32, 3>,
                                                     shape<3, 64, 96>>>();
    training_graph_computes_the_fused_function<bind<nets::context_net<4, 8>, shape<1, 70, 90>>>();
}

BOOST_AUTO_TEST_CASE(default_initialisation_is_pytorchs) {
    // PyTorch: weights kaiming_uniform(a = sqrt(5)) and biases uniform, both
    // within +-1/sqrt(fan_in), fan_in = weight.size(1) * kernel taps (for a
    // transposed convolution, [in, out, k...], that is out * taps); norms start
    // as the identity, PReLU slopes at 0.25.
    using net = seq<named<"c", conv<64, kernel<3, 5>>>, named<"bn", batch_norm<>>, named<"a", prelu>,
                    named<"t", conv_transpose<48, kernel<2>, stride<2>>>>;
    using B = bind<net, shape<40, 16, 16>>;
    network<B> n(9);
    for (auto& e : n.state_entries()) {
        double bound = 0;
        if (e.name.starts_with("c.")) bound = 1 / std::sqrt(40.0 * 15);
        else if (e.name.starts_with("t.")) bound = 1 / std::sqrt(48.0 * 4);
        if (bound > 0) {
            double sum = 0, sq = 0, top = 0;
            for (float v : e.values) {
                sum += v;
                sq += double(v) * v;
                top = std::max(top, double(std::abs(v)));
            }
            const double count = double(e.values.size()), mean = sum / count, sd = std::sqrt(sq / count - mean * mean);
            BOOST_TEST(top <= bound, e.name);
            if (e.name.ends_with("weight")) {
                // uniform(-b, b): standard deviation b / sqrt(3), mean 0
                BOOST_TEST(std::abs(sd - bound / std::sqrt(3.0)) < 0.05 * bound, e.name << " sd " << sd);
                BOOST_TEST(std::abs(mean) < 0.05 * bound, e.name << " mean " << mean);
            }
        }
        if (e.name == "bn.weight" || e.name == "bn.running_var")
            for (float v : e.values) BOOST_TEST(v == 1.0f);
        if (e.name == "bn.bias" || e.name == "bn.running_mean")
            for (float v : e.values) BOOST_TEST(v == 0.0f);
        if (e.name == "a.weight")
            for (float v : e.values) BOOST_TEST(v == 0.25f);
    }
    // Different seeds give different weights; the same seed the same.
    network<B> same(9), other(10);
    BOOST_TEST(std::equal(n.parameters().begin(), n.parameters().end(), same.parameters().begin()));
    BOOST_TEST(!std::equal(n.parameters().begin(), n.parameters().end(), other.parameters().begin()));
}

// Regression: the optimizer writes the parameters after the last forward pass
// of an epoch; inference after fit (and the epoch's validation) must see the
// new values, not the weights packed or norms folded before that step.
BOOST_AUTO_TEST_CASE(inference_after_fit_uses_the_final_parameters) {
    using B = bind<seq<conv<4, kernel<3>, padding<1>>, batch_norm<>, relu, conv<2, kernel<1>>>, shape<1, 8, 8>>;
    network<B> net(3);
    train::dataset<float> d;
    d.count = 4;
    std::mt19937 rng(9);
    std::normal_distribution<float> nd;
    for (std::size_t i = 0; i < d.count * 64; ++i) {
        d.images.push_back(nd(rng));
        d.labels.push_back(d.images.back() > 0 ? 1 : 0);
    }
    train::trainer_options o;
    o.epochs = 2;
    o.batch_size = 2;
    o.adam.lr = 0.1;
    o.progress = false;
    train::trainer<B> t(net, o);
    t.fit(d);
    // An independent copy made from the state dict alone.
    network<B> copy(0);
    copy_state(net, copy);
    const auto a = net.forward(std::span<const float>(d.images));
    const auto b = copy.forward(std::span<const float>(d.images));
    BOOST_REQUIRE_EQUAL(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) BOOST_TEST(a[i] == b[i], "output " << i << ": " << a[i] << " vs " << b[i]);
}
