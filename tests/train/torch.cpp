// Losses and optimizer steps against PyTorch (fixtures written by
// tests/torch/train_fixtures.py; the fixture directory is the first argument
// after `--`).
#define BOOST_TEST_MODULE train torch
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ctseg/interop/npy.hpp"
#include "ctseg/train/losses.hpp"
#include "ctseg/train/optim.hpp"
#include "test_util.hpp"

using namespace ctseg;
using namespace ctseg::train;
using ctseg_train_test::rel_err;
namespace fs = std::filesystem;

namespace {

fs::path fixtures() {
    const auto& mts = boost::unit_test::framework::master_test_suite();
    BOOST_TEST_REQUIRE(mts.argc >= 2, "usage: test_train_torch [boost args] -- FIXTURE_DIR");
    return fs::path(mts.argv[mts.argc - 1]);
}

template <class T>
std::vector<T> load(const fs::path& p) {
    return interop::read_npy_as<T>(p).values;
}

struct loss_case {
    loss_shape shape;
    std::vector<double> logits, weight;
    std::vector<std::int64_t> target, target_ignore;
    std::int64_t ignore = 0;
};

loss_case load_case(const fs::path& d) {
    loss_case c;
    auto l = interop::read_npy_as<double>(d / "logits.npy");
    BOOST_TEST_REQUIRE(l.shape.size() >= 3u);
    c.shape.n = static_cast<std::size_t>(l.shape[0]);
    c.shape.c = static_cast<std::size_t>(l.shape[1]);
    c.shape.plane = 1;
    for (std::size_t i = 2; i < l.shape.size(); ++i) c.shape.plane *= static_cast<std::size_t>(l.shape[i]);
    c.logits = std::move(l.values);
    c.weight = load<double>(d / "weight.npy");
    c.target = load<std::int64_t>(d / "target.npy");
    c.target_ignore = load<std::int64_t>(d / "target_ignore.npy");
    c.ignore = load<std::int64_t>(d / "ignore.npy").at(0);
    BOOST_TEST_REQUIRE(c.target.size() == c.shape.n * c.shape.plane);
    return c;
}

// Every loss, with and without weight and ignore label, in T against the
// float64 fixtures.
template <class T>
void check_losses(const std::string& name, double tol) {
    const fs::path d = fixtures() / "loss" / name;
    const loss_case c = load_case(d);
    const std::vector<T> logits(c.logits.begin(), c.logits.end()), weight(c.weight.begin(), c.weight.end());
    for (loss_kind k : {loss_kind::ce, loss_kind::dice, loss_kind::dice_ce})
        for (bool w : {false, true})
            for (bool ign : {false, true}) {
                const std::string stem =
                    std::string(loss_name(k)) + (w ? "_weight" : "") + (ign ? "_ignore" : "");
                loss_options<T> opt;
                opt.kind = k;
                opt.weight = w ? weight.data() : nullptr;
                if (ign) opt.ignore_index = c.ignore;
                std::vector<T> grad(logits.size());
                const double v = compute_loss(logits.data(), (ign ? c.target_ignore : c.target).data(), c.shape,
                                              opt, grad.data())
                                     .total;
                const double ref = load<double>(d / (stem + "_value.npy")).at(0);
                const auto ref_grad = load<double>(d / (stem + "_grad.npy"));
                BOOST_TEST_REQUIRE(ref_grad.size() == grad.size());
                BOOST_TEST_INFO(name << " " << stem << " value " << v << " torch " << ref);
                BOOST_TEST(std::abs(v - ref) <= tol * std::abs(ref));
                BOOST_TEST_INFO(name << " " << stem << " gradient");
                BOOST_TEST(rel_err(grad, ref_grad) <= tol);
            }
}

// Parameters of the optimizer fixtures (PARAMS in train_fixtures.py).
const std::vector<std::pair<std::string, std::vector<std::int64_t>>> param_specs = {
    {"conv.weight", {4, 3, 3, 3}}, {"conv.bias", {4}}, {"norm.weight", {6}}};

template <class Opt, class Options>
void check_optimizer(const std::string& name, const Options& o, double lr) {
    const fs::path d = fixtures() / "optim" / name;
    std::map<std::string, std::vector<double>> values, grads;
    std::vector<param_ref<double>> refs;
    for (const auto& [key, shape] : param_specs) {
        values[key] = load<double>(d / (key + ".param.npy"));
        grads[key].resize(values[key].size());
        refs.push_back({key, shape, values[key], grads[key]});
    }
    Opt opt(refs, o);
    BOOST_TEST(opt.lr() == lr);
    for (int step = 1; step <= 2; ++step) {
        if (step == 2) opt.set_lr(lr / 2);
        for (const auto& [key, shape] : param_specs) {
            const auto g = load<double>(d / (key + ".grad" + std::to_string(step) + ".npy"));
            BOOST_TEST_REQUIRE(g.size() == grads[key].size());
            std::copy(g.begin(), g.end(), grads[key].begin());
        }
        opt.step();
        for (const auto& [key, shape] : param_specs) {
            const auto ref = load<double>(d / (key + ".after" + std::to_string(step) + ".npy"));
            BOOST_TEST_INFO(name << " step " << step << " " << key);
            BOOST_TEST(rel_err(values[key], ref) <= 1e-6);
        }
    }
    BOOST_TEST(opt.step_count() == 2);
    auto state = opt.state();
    std::size_t files = 0;
    for (const auto& e : fs::directory_iterator(d)) {
        const std::string f = e.path().filename().string();
        if (f.find("momentum_buffer") != std::string::npos || f.find("exp_avg") != std::string::npos) ++files;
    }
    BOOST_TEST(state.size() == files);
    for (const auto& s : state) {
        const auto ref = load<double>(d / (s.name + ".npy"));
        BOOST_TEST_INFO(name << " state " << s.name);
        BOOST_TEST(rel_err(s.data, ref) <= 1e-6);
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(losses_2d_double) { check_losses<double>("2d", 1e-6); }
BOOST_AUTO_TEST_CASE(losses_3d_double) { check_losses<double>("3d", 1e-6); }
// The logits are rounded to float, so these agree only to float precision.
BOOST_AUTO_TEST_CASE(losses_2d_float) { check_losses<float>("2d", 1e-4); }
BOOST_AUTO_TEST_CASE(losses_3d_float) { check_losses<float>("3d", 1e-4); }

BOOST_AUTO_TEST_CASE(sgd_steps) {
    sgd_options o;
    o.lr = 0.1;
    o.momentum = 0.9;
    o.weight_decay = 1e-4;
    check_optimizer<sgd<double>>("sgd", o, 0.1);
    o.nesterov = true;
    check_optimizer<sgd<double>>("sgd_nesterov", o, 0.1);
    o.nesterov = false;
    o.momentum = 0;
    check_optimizer<sgd<double>>("sgd_nomomentum", o, 0.1);
}

BOOST_AUTO_TEST_CASE(adam_steps) {
    adam_options o;
    o.lr = 1e-2;
    o.beta1 = 0.9;
    o.beta2 = 0.999;
    o.eps = 1e-8;
    o.weight_decay = 1e-2;
    check_optimizer<adam<double>>("adam", o, 1e-2);
    check_optimizer<adamw<double>>("adamw", o, 1e-2);
}
