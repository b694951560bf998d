// Learning-rate schedules against their closed forms; identity initialisation.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstddef>
#include <numbers>
#include <random>
#include <vector>

#include "ctseg/train/init.hpp"
#include "ctseg/train/schedule.hpp"
#include "test_util.hpp"

using namespace ctseg::train;
using ctseg_train_test::error_of;

namespace tt = boost::test_tools;

BOOST_AUTO_TEST_SUITE(schedule)

BOOST_AUTO_TEST_CASE(constant) {
    const auto s = lr_schedule::constant(0.02);
    BOOST_TEST(s.lr_at(0) == 0.02);
    BOOST_TEST(s.lr_at(123456) == 0.02);
    BOOST_TEST((s.kind() == schedule_kind::constant));
}

BOOST_AUTO_TEST_CASE(step) {
    const auto s = lr_schedule::step(0.1, 3, 0.5);
    const double expected[] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125};
    for (std::size_t t = 0; t < 10; ++t) BOOST_TEST(s.lr_at(t) == expected[t], tt::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(cosine) {
    const auto s = lr_schedule::cosine(0.1, 10, 0.001);
    BOOST_TEST(s.lr_at(0) == 0.1, tt::tolerance(1e-15));
    BOOST_TEST(s.lr_at(5) == 0.0505, tt::tolerance(1e-14));   // cos(pi/2) = 0
    BOOST_TEST(s.lr_at(10) == 0.001, tt::tolerance(1e-14));   // cos(pi) = -1
    BOOST_TEST(s.lr_at(20) == 0.1, tt::tolerance(1e-14));     // periodic, as the closed form
    // cos(pi/5) = (1 + sqrt 5) / 4
    BOOST_TEST(s.lr_at(2) == 0.001 + 0.099 * (1 + (1 + std::sqrt(5.0)) / 4) / 2, tt::tolerance(1e-14));
    BOOST_TEST(lr_schedule::cosine(1.0, 4).lr_at(1) == (1 + std::numbers::sqrt2 / 2) / 2, tt::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(poly) {
    const auto s = lr_schedule::poly(0.01, 100);
    BOOST_TEST(s.lr_at(0) == 0.01);
    BOOST_TEST(s.lr_at(50) == 0.01 * std::pow(0.5, 0.9), tt::tolerance(1e-15));
    BOOST_TEST(s.lr_at(99) == 0.01 * std::pow(0.01, 0.9), tt::tolerance(1e-14));
    BOOST_TEST(s.lr_at(100) == 0.0);
    BOOST_TEST(s.lr_at(1000) == 0.0);
    BOOST_TEST(lr_schedule::poly(1.0, 4, 2.0).lr_at(1) == 0.5625, tt::tolerance(1e-15));  // (3/4)^2
}

BOOST_AUTO_TEST_CASE(bad_arguments) {
    BOOST_TEST(!error_of([] { lr_schedule::step(0.1, 0, 0.5); }).empty());
    BOOST_TEST(!error_of([] { lr_schedule::cosine(0.1, 0); }).empty());
    BOOST_TEST(!error_of([] { lr_schedule::poly(0.1, 0); }).empty());
    BOOST_TEST(!error_of([] { lr_schedule::poly(0.1, 10, 0.0); }).empty());
    BOOST_TEST(!error_of([] { lr_schedule::constant(-1.0); }).empty());
    BOOST_TEST(!error_of([] { lr_schedule::constant(std::nan("")); }).empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(init)

BOOST_AUTO_TEST_CASE(identity_2d_is_identity) {
    // C 3, kernel 3x3, applied with dilation 2 and 'same' padding.
    const std::size_t C = 3, K = 3, H = 5, W = 6, dil = 2;
    std::vector<double> w(C * C * K * K, 7.0), b(C, 7.0);
    const std::size_t kernel[] = {K, K};
    identity_init(std::span<double>(w), std::span<double>(b), C, kernel);
    double sum = 0;
    for (double v : w) sum += v;
    BOOST_TEST(sum == 3.0);
    for (double v : b) BOOST_TEST(v == 0.0);
    std::mt19937 rng(1);
    std::normal_distribution<double> normal;
    std::vector<double> x(C * H * W);
    for (auto& v : x) v = normal(rng);
    for (std::size_t o = 0; o < C; ++o)
        for (std::size_t y = 0; y < H; ++y)
            for (std::size_t xx = 0; xx < W; ++xx) {
                double acc = b[o];
                for (std::size_t i = 0; i < C; ++i)
                    for (std::size_t ky = 0; ky < K; ++ky)
                        for (std::size_t kx = 0; kx < K; ++kx) {
                            const auto sy = static_cast<std::ptrdiff_t>(y + ky * dil) - static_cast<std::ptrdiff_t>(dil);
                            const auto sx = static_cast<std::ptrdiff_t>(xx + kx * dil) - static_cast<std::ptrdiff_t>(dil);
                            if (sy < 0 || sx < 0 || sy >= std::ptrdiff_t(H) || sx >= std::ptrdiff_t(W)) continue;
                            acc += w[((o * C + i) * K + ky) * K + kx] * x[(i * H + std::size_t(sy)) * W + std::size_t(sx)];
                        }
                BOOST_TEST(acc == x[(o * H + y) * W + xx]);
            }
}

BOOST_AUTO_TEST_CASE(identity_3d_and_raw_arrays) {
    std::vector<float> w(2 * 2 * 3 * 1 * 5, 1.0f);
    const std::size_t kernel[] = {3, 1, 5};
    identity_init(w.data(), static_cast<float*>(nullptr), 2, kernel);
    // centre (1, 0, 2) -> 1 * 5 + 2 = 7 of 15 taps
    for (std::size_t o = 0; o < 2; ++o)
        for (std::size_t i = 0; i < 2; ++i)
            for (std::size_t t = 0; t < 15; ++t)
                BOOST_TEST(w[(o * 2 + i) * 15 + t] == ((o == i && t == 7) ? 1.0f : 0.0f));
}

BOOST_AUTO_TEST_CASE(bad_arguments) {
    std::vector<double> w(2 * 2 * 4), b(2);
    const std::size_t even[] = {2, 2};
    BOOST_TEST(error_of([&] { identity_init(std::span<double>(w), std::span<double>(b), 2, even); }).find("2x2") !=
               std::string::npos);
    const std::size_t k3[] = {3, 3};
    BOOST_TEST(error_of([&] { identity_init(std::span<double>(w), std::span<double>(b), 2, k3); }).find("36") !=
               std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
