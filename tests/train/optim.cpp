// Optimizers: hand-computed steps, state names, resuming from saved state,
// argument checks.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <oneapi/tbb/task_arena.h>

#include "ctseg/train/optim.hpp"
#include "test_util.hpp"

using namespace ctseg::train;
using ctseg_train_test::error_of;

namespace tt = boost::test_tools;

namespace {

// One scalar parameter p with gradient g.
struct scalar {
    double p, g;
    std::vector<param_ref<double>> refs() { return {{"w", {1}, std::span<double>(&p, 1), std::span<const double>(&g, 1)}}; }
};

// A few random tensors and their gradients.
struct model {
    std::vector<std::vector<double>> values, grads;
    std::vector<std::string> keys{"a.weight", "a.bias", "b"};
    std::vector<std::vector<std::int64_t>> shapes{{3, 2, 5}, {3}, {40000}};

    explicit model(unsigned seed) {
        std::mt19937_64 rng(seed);
        std::normal_distribution<double> normal;
        for (const auto& s : shapes) {
            std::size_t n = 1;
            for (auto d : s) n *= static_cast<std::size_t>(d);
            values.emplace_back(n);
            grads.emplace_back(n);
            for (auto& v : values.back()) v = normal(rng);
        }
    }
    void new_grads(unsigned seed) {
        std::mt19937_64 rng(seed);
        std::normal_distribution<double> normal;
        for (auto& g : grads)
            for (auto& v : g) v = normal(rng);
    }
    std::vector<param_ref<double>> refs() {
        std::vector<param_ref<double>> r;
        for (std::size_t j = 0; j < keys.size(); ++j) r.push_back({keys[j], shapes[j], values[j], grads[j]});
        return r;
    }
};

// Runs `steps` steps on a model with fresh gradients each step.
template <class Opt>
void run(Opt& opt, model& m, int first, int steps) {
    for (int s = first; s < first + steps; ++s) {
        m.new_grads(100 + static_cast<unsigned>(s));
        opt.step();
    }
}

// Continuous run of 3 steps == 2 steps, save (params, state, step count),
// load into a fresh optimizer, 1 more step.
template <class Opt, class Options>
void check_resume(const Options& o) {
    model a(1), b(1);
    Opt oa(a.refs(), o), ob(b.refs(), o);
    run(oa, a, 0, 3);
    run(ob, b, 0, 2);
    model c = b;  // parameters as saved
    Opt oc(c.refs(), o);
    auto from = ob.state();
    auto to = oc.state();
    BOOST_TEST_REQUIRE(from.size() == to.size());
    for (std::size_t i = 0; i < from.size(); ++i) {
        BOOST_TEST(from[i].name == to[i].name);
        std::copy(from[i].data.begin(), from[i].data.end(), to[i].data.begin());
    }
    oc.set_step_count(ob.step_count());
    run(oc, c, 2, 1);
    BOOST_TEST(c.values == a.values);
    BOOST_TEST(oc.step_count() == 3);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(optim)

BOOST_AUTO_TEST_CASE(sgd_by_hand) {
    sgd_options o;
    o.lr = 0.1;
    scalar plain{1.0, 0.5};
    sgd<double> s0(plain.refs(), o);
    s0.step();
    BOOST_TEST(plain.p == 0.95, tt::tolerance(1e-15));
    BOOST_TEST(s0.state().empty());

    o.weight_decay = 0.2;  // d = 0.5 + 0.2 * 1 = 0.7
    scalar wd{1.0, 0.5};
    sgd<double> s1(wd.refs(), o);
    s1.step();
    BOOST_TEST(wd.p == 0.93, tt::tolerance(1e-15));

    o.weight_decay = 0;
    o.momentum = 0.9;
    scalar mom{1.0, 0.5};
    sgd<double> s2(mom.refs(), o);
    s2.step();  // buf = 0.5, p = 0.95
    BOOST_TEST(mom.p == 0.95, tt::tolerance(1e-15));
    s2.step();  // buf = 0.45 + 0.5 = 0.95, p = 0.855
    BOOST_TEST(mom.p == 0.855, tt::tolerance(1e-15));
    BOOST_TEST(s2.state().at(0).name == "w.momentum_buffer");
    BOOST_TEST(s2.state().at(0).data[0] == 0.95, tt::tolerance(1e-15));

    o.dampening = 0.5;
    scalar damp{1.0, 0.5};
    sgd<double> s3(damp.refs(), o);
    s3.step();  // buf = 0.5 (no dampening on the first step), p = 0.95
    s3.step();  // buf = 0.45 + 0.25 = 0.7, p = 0.88
    BOOST_TEST(damp.p == 0.88, tt::tolerance(1e-15));

    o.dampening = 0;
    o.nesterov = true;
    scalar nest{1.0, 0.5};
    sgd<double> s4(nest.refs(), o);
    s4.step();  // buf = 0.5, d = 0.5 + 0.45 = 0.95, p = 0.905
    BOOST_TEST(nest.p == 0.905, tt::tolerance(1e-15));
    s4.step();  // buf = 0.95, d = 0.5 + 0.855 = 1.355, p = 0.7695
    BOOST_TEST(nest.p == 0.7695, tt::tolerance(1e-15));
    BOOST_TEST(s4.step_count() == 2);
}

BOOST_AUTO_TEST_CASE(adam_by_hand) {
    // Step 1: m_hat = g, v_hat = g^2, so p -= lr g / (|g| + eps).
    adam_options o;
    o.lr = 0.01;
    o.eps = 1e-3;
    scalar a{2.0, -0.5};
    adam<double> opt(a.refs(), o);
    opt.step();
    BOOST_TEST(a.p == 2.0 + 0.01 * 0.5 / (0.5 + 1e-3), tt::tolerance(1e-14));
    auto st = opt.state();
    BOOST_TEST(st.size() == 2u);
    BOOST_TEST(st[0].name == "w.exp_avg");
    BOOST_TEST(st[1].name == "w.exp_avg_sq");
    BOOST_TEST(st[0].data[0] == 0.1 * -0.5, tt::tolerance(1e-15));
    BOOST_TEST(st[1].data[0] == 0.001 * 0.25, tt::tolerance(1e-15));

    // Step 2 with the same gradient: m = -0.5 (0.09 + 0.1) = -0.095,
    // v = 0.25 (0.000999 + 0.001); bias corrections 0.19 and 0.001999.
    const double p1 = a.p;
    opt.step();
    const double m = -0.5 * 0.19, v = 0.25 * (0.999 * 0.001 + 0.001);
    const double expected = p1 - 0.01 / 0.19 * m / (std::sqrt(v) / std::sqrt(1 - 0.999 * 0.999) + 1e-3);
    BOOST_TEST(a.p == expected, tt::tolerance(1e-14));

    // Adam: weight decay joins the gradient; AdamW: p *= 1 - lr wd first.
    o.weight_decay = 0.1;
    scalar b{2.0, -0.5};
    adam<double> coupled(b.refs(), o);
    coupled.step();  // g = -0.5 + 0.2 = -0.3
    BOOST_TEST(b.p == 2.0 + 0.01 * 0.3 / (0.3 + 1e-3), tt::tolerance(1e-14));
    scalar c{2.0, -0.5};
    adamw<double> decoupled(c.refs(), o);
    decoupled.step();
    BOOST_TEST(c.p == 2.0 * (1 - 0.001) + 0.01 * 0.5 / (0.5 + 1e-3), tt::tolerance(1e-14));
    BOOST_TEST(decoupled.options().decoupled_weight_decay);
    BOOST_TEST(adamw_options().weight_decay == 1e-2);
}

BOOST_AUTO_TEST_CASE(set_lr_applies_to_the_next_step) {
    sgd_options o;
    o.lr = 0.1;
    scalar s{1.0, 1.0};
    sgd<double> opt(s.refs(), o);
    opt.set_lr(0.5);
    BOOST_TEST(opt.lr() == 0.5);
    opt.step();
    BOOST_TEST(s.p == 0.5, tt::tolerance(1e-15));
    BOOST_TEST(!error_of([&] { opt.set_lr(-1); }).empty());
}

BOOST_AUTO_TEST_CASE(resume_from_state) {
    sgd_options s;
    s.lr = 0.05;
    s.momentum = 0.9;
    s.weight_decay = 1e-3;
    check_resume<sgd<double>>(s);
    s.nesterov = true;
    check_resume<sgd<double>>(s);
    adam_options a;
    a.weight_decay = 1e-2;
    check_resume<adam<double>>(a);
    check_resume<adamw<double>>(a);
}

BOOST_AUTO_TEST_CASE(independent_of_thread_count) {
    adam_options a;
    model m1(4), mn(4);
    adam<double> o1(m1.refs(), a), on(mn.refs(), a);
    tbb::task_arena one(1);
    one.execute([&] { run(o1, m1, 0, 3); });
    run(on, mn, 0, 3);
    BOOST_TEST(m1.values == mn.values);
}

BOOST_AUTO_TEST_CASE(float_parameters) {
    std::vector<float> p{1.0f, -2.0f}, g{0.5f, 0.25f};
    std::vector<param_ref<float>> refs{{"x", {2}, p, g}};
    sgd_options o;
    o.lr = 0.1;
    o.momentum = 0.9;
    sgd<float> opt(refs, o);
    opt.step();
    BOOST_TEST(p[0] == 0.95f, tt::tolerance(1e-6f));
    BOOST_TEST(p[1] == -2.025f, tt::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(bad_arguments) {
    std::vector<double> v(6), g(6), g5(5);
    BOOST_TEST(error_of([&] { sgd<double>({{"x", {2, 3}, v, g5}}, {}); }).find("'x'") != std::string::npos);
    BOOST_TEST(error_of([&] { sgd<double>({{"x", {2, 2}, v, g}}, {}); }).find("[2, 2]") != std::string::npos);
    BOOST_TEST(error_of([&] { adam<double>({{"x", {6}, v, g}, {"x", {6}, v, g}}, {}); }).find("twice") !=
               std::string::npos);
    sgd_options nest;
    nest.nesterov = true;
    BOOST_TEST(error_of([&] { sgd<double>({{"x", {6}, v, g}}, nest); }).find("Nesterov") != std::string::npos);
    adam_options bad;
    bad.beta1 = 1.0;
    BOOST_TEST(error_of([&] { adam<double>({{"x", {6}, v, g}}, bad); }).find("betas") != std::string::npos);
    sgd_options neg;
    neg.lr = -0.1;
    BOOST_TEST(!error_of([&] { sgd<double>({{"x", {6}, v, g}}, neg); }).empty());
}

BOOST_AUTO_TEST_SUITE_END()
