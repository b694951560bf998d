// Losses: hand-computed cases, finite differences of the gradients, label
// validation, determinism, hard Dice.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <oneapi/tbb/task_arena.h>

#include "ctseg/train/losses.hpp"
#include "test_util.hpp"

using namespace ctseg::train;
using ctseg_train_test::error_of;
using ctseg_train_test::rel_err;

namespace {

constexpr loss_kind all_kinds[] = {loss_kind::ce, loss_kind::dice, loss_kind::dice_ce};

struct problem {
    loss_shape shape;
    std::vector<double> logits, weight;
    std::vector<std::int64_t> target;
};

// Random logits, labels in [0, C) with about a fifth set to `ignore` (if any).
problem random_problem(loss_shape s, std::optional<std::int64_t> ignore, unsigned seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal(0.0, 1.5);
    std::uniform_real_distribution<double> unif(0.0, 1.0);
    problem p;
    p.shape = s;
    p.logits.resize(s.n * s.c * s.plane);
    for (auto& v : p.logits) v = normal(rng);
    p.target.resize(s.n * s.plane);
    p.weight.resize(s.n * s.plane);
    for (std::size_t i = 0; i < p.target.size(); ++i) {
        p.target[i] = static_cast<std::int64_t>(rng() % s.c);
        if (ignore && unif(rng) < 0.2) p.target[i] = *ignore;
        p.weight[i] = 0.5 + 2.0 * unif(rng);
    }
    return p;
}

// The analytic gradient of the loss against central differences of its value.
void check_gradient(const problem& p, const loss_options<double>& opt, const std::string& what) {
    std::vector<double> grad(p.logits.size());
    compute_loss(p.logits.data(), p.target.data(), p.shape, opt, grad.data());
    std::vector<double> fd(p.logits.size());
    std::vector<double> x = p.logits;
    const double h = 1e-6;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double x0 = x[i];
        x[i] = x0 + h;
        const double up = compute_loss(x.data(), p.target.data(), p.shape, opt).total;
        x[i] = x0 - h;
        const double down = compute_loss(x.data(), p.target.data(), p.shape, opt).total;
        x[i] = x0;
        fd[i] = (up - down) / (2 * h);
    }
    BOOST_TEST_INFO(what);
    BOOST_TEST(rel_err(grad, fd) < 1e-7);
}

void check_finite_differences(const problem& p, loss_kind kind, bool use_weight, std::optional<std::int64_t> ignore) {
    loss_options<double> opt;
    opt.kind = kind;
    opt.weight = use_weight ? p.weight.data() : nullptr;
    opt.ignore_index = ignore;
    check_gradient(p, opt, std::string("loss ") + loss_name(kind) + (use_weight ? " weighted" : "") + (ignore ? " ignore" : ""));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(losses)

BOOST_AUTO_TEST_CASE(one_pixel_two_classes) {
    // logits (ln 3, 0): p = (3/4, 1/4); target 0.
    const double z[] = {std::log(3.0), 0.0};
    const std::int64_t t[] = {0};
    const loss_shape s{1, 2, 1};
    double g[2];
    loss_options<double> opt;
    opt.kind = loss_kind::ce;
    auto v = compute_loss(z, t, s, opt, g);
    BOOST_TEST(v.total == std::log(4.0 / 3.0), boost::test_tools::tolerance(1e-14));
    BOOST_TEST(g[0] == -0.25, boost::test_tools::tolerance(1e-14));
    BOOST_TEST(g[1] == 0.25, boost::test_tools::tolerance(1e-14));

    const double w[] = {2.0};
    opt.weight = w;
    v = compute_loss(z, t, s, opt, g);
    BOOST_TEST(v.total == 2 * std::log(4.0 / 3.0), boost::test_tools::tolerance(1e-14));
    BOOST_TEST(g[0] == -0.5, boost::test_tools::tolerance(1e-14));

    // Dice: class 0: I = 3/4, P = 3/4, G = 1; class 1: I = 0, P = 1/4, G = 0.
    opt.weight = nullptr;
    opt.kind = loss_kind::dice;
    const double e = 1e-5;
    const double d0 = (1.5 + e) / (1.75 + e), d1 = e / (0.25 + e);
    v = compute_loss(z, t, s, opt, g);
    BOOST_TEST(v.total == 1 - (d0 + d1) / 2, boost::test_tools::tolerance(1e-14));
    BOOST_TEST(v.dice == v.total);
    BOOST_TEST(v.ce == 0.0);
    // dL/dp_c = -(2 g_c - D_c) / (2 den_c); dL/dz = p (a - a.p)
    const double a0 = -(2 - d0) / (2 * (1.75 + e)), a1 = -(0 - d1) / (2 * (0.25 + e));
    const double dot = 0.75 * a0 + 0.25 * a1;
    BOOST_TEST(g[0] == 0.75 * (a0 - dot), boost::test_tools::tolerance(1e-12));
    BOOST_TEST(g[1] == 0.25 * (a1 - dot), boost::test_tools::tolerance(1e-12));
    BOOST_TEST(g[0] + g[1] == 0.0, boost::test_tools::tolerance(1e-14));

    opt.kind = loss_kind::dice_ce;
    v = compute_loss(z, t, s, opt, g);
    BOOST_TEST(v.total == std::log(4.0 / 3.0) + 1 - (d0 + d1) / 2, boost::test_tools::tolerance(1e-14));
    BOOST_TEST(v.ce == std::log(4.0 / 3.0), boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(equal_logits_give_log_c) {
    const std::vector<double> z(2 * 5 * 3, 0.7);  // N 2, C 5, plane 3
    const std::vector<std::int64_t> t = {0, 1, 2, 3, 4, 0};
    loss_options<double> opt;
    opt.kind = loss_kind::ce;
    BOOST_TEST(compute_loss(z.data(), t.data(), {2, 5, 3}, opt).total == std::log(5.0),
               boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(all_ignored_contributes_nothing) {
    const double z[] = {1.0, -2.0, 0.5, 3.0};  // N 1, C 2, plane 2
    const std::int64_t t[] = {-1, -1};
    for (loss_kind k : all_kinds) {
        loss_options<double> opt;
        opt.kind = k;
        opt.ignore_index = -1;
        double g[4] = {9, 9, 9, 9};
        // ce: 0 / max(1, 0); dice: (0 + eps) / (0 + eps) = 1 for every class.
        BOOST_TEST(compute_loss(z, t, {1, 2, 2}, opt, g).total == 0.0);
        for (double v : g) BOOST_TEST(v == 0.0);
    }
}

BOOST_AUTO_TEST_CASE(ignored_pixels_do_not_change_the_loss) {
    // Appending ignored pixels changes nothing (values and gradient elsewhere).
    auto p = random_problem({1, 3, 6}, std::nullopt, 7);
    problem q;
    q.shape = {1, 3, 9};
    for (std::size_t c = 0; c < 3; ++c) {
        for (std::size_t i = 0; i < 6; ++i) q.logits.push_back(p.logits[c * 6 + i]);
        for (std::size_t i = 0; i < 3; ++i) q.logits.push_back(10.0 * double(c + i));
    }
    q.target = p.target;
    q.weight = p.weight;
    for (int i = 0; i < 3; ++i) {
        q.target.push_back(255);
        q.weight.push_back(5.0);
    }
    for (loss_kind k : all_kinds) {
        loss_options<double> po, qo;
        po.kind = qo.kind = k;
        po.weight = p.weight.data();
        qo.weight = q.weight.data();
        qo.ignore_index = 255;
        std::vector<double> gp(p.logits.size()), gq(q.logits.size());
        const double vp = compute_loss(p.logits.data(), p.target.data(), p.shape, po, gp.data()).total;
        const double vq = compute_loss(q.logits.data(), q.target.data(), q.shape, qo, gq.data()).total;
        BOOST_TEST(vp == vq, boost::test_tools::tolerance(1e-13));
        for (std::size_t c = 0; c < 3; ++c)
            for (std::size_t i = 0; i < 9; ++i) {
                if (i < 6)
                    BOOST_TEST(gq[c * 9 + i] == gp[c * 6 + i], boost::test_tools::tolerance(1e-12));
                else
                    BOOST_TEST(gq[c * 9 + i] == 0.0);
            }
    }
}

BOOST_AUTO_TEST_CASE(near_perfect_prediction) {
    // Large logits on the target class: ce -> 0 and dice -> 0, no overflow.
    const std::int64_t t[] = {0, 1, 2, 1};
    std::vector<double> z(3 * 4, -500.0);
    for (std::size_t i = 0; i < 4; ++i) z[static_cast<std::size_t>(t[i]) * 4 + i] = 500.0;
    loss_options<double> opt;
    std::vector<double> g(z.size());
    const auto v = compute_loss(z.data(), t, {1, 3, 4}, opt, g.data());
    BOOST_TEST(v.ce == 0.0, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(std::abs(v.dice) < 1e-12);
    for (double x : g) BOOST_TEST(std::isfinite(x));
}

BOOST_AUTO_TEST_CASE(finite_differences) {
    for (auto ignore : {std::optional<std::int64_t>{}, std::optional<std::int64_t>{-1}})
        for (loss_kind k : all_kinds)
            for (bool w : {false, true}) {
                check_finite_differences(random_problem({2, 3, 5}, ignore, 11), k, w, ignore);
                check_finite_differences(random_problem({1, 4, 7}, ignore, 12), k, w, ignore);
            }
}

BOOST_AUTO_TEST_CASE(label_out_of_range) {
    const std::vector<double> z(2 * 4 * 5, 0.0);
    std::vector<std::int64_t> t(2 * 5, 1);
    t[5 + 3] = 4;
    loss_options<double> opt;
    std::string msg = error_of([&] { compute_loss(z.data(), t.data(), {2, 4, 5}, opt); });
    BOOST_TEST_INFO(msg);
    BOOST_TEST(msg.find("label 4") != std::string::npos);
    BOOST_TEST(msg.find("n = 1") != std::string::npos);
    BOOST_TEST(msg.find("index = 3") != std::string::npos);
    BOOST_TEST(msg.find("C = 4") != std::string::npos);
    BOOST_TEST(msg.find('\n') == std::string::npos);

    t[5 + 3] = -1;
    msg = error_of([&] { compute_loss(z.data(), t.data(), {2, 4, 5}, opt); });
    BOOST_TEST(msg.find("label -1") != std::string::npos);
    opt.ignore_index = 255;
    msg = error_of([&] { compute_loss(z.data(), t.data(), {2, 4, 5}, opt); });
    BOOST_TEST(msg.find("ignore label 255") != std::string::npos);
    opt.ignore_index = -1;
    BOOST_TEST(error_of([&] { compute_loss(z.data(), t.data(), {2, 4, 5}, opt); }).empty());

    // Hard Dice validates the same way.
    t[0] = 9;
    msg = error_of([&] { dice_per_class(z.data(), t.data(), {2, 4, 5}, opt.ignore_index); });
    BOOST_TEST(msg.find("label 9") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(bad_shapes) {
    const std::vector<double> z(12, 0.0);
    const std::vector<std::int64_t> t(4, 0);
    loss_options<double> opt;
    BOOST_TEST(!error_of([&] { compute_loss(z.data(), t.data(), {0, 3, 4}, opt); }).empty());
    BOOST_TEST(!error_of([&] { compute_loss(z.data(), t.data(), {1, 0, 4}, opt); }).empty());
    BOOST_TEST(!error_of([&] {
                    compute_loss(std::span<const double>(z), std::span<const std::int64_t>(t), {1, 4, 4}, opt);
                }).empty());
    std::vector<double> g(12);
    BOOST_TEST(compute_loss(std::span<const double>(z), std::span<const std::int64_t>(t), {1, 3, 4}, opt,
                            std::span<double>(g))
                   .total > 0);
}

BOOST_AUTO_TEST_CASE(independent_of_thread_count) {
    // Several reduction blocks per sample.
    auto p = random_problem({2, 3, 5000}, std::int64_t{-1}, 3);
    for (loss_kind k : all_kinds) {
        loss_options<double> opt;
        opt.kind = k;
        opt.ignore_index = -1;
        opt.weight = p.weight.data();
        std::vector<double> g1(p.logits.size()), gn(p.logits.size());
        double v1 = 0, vn = 0;
        tbb::task_arena one(1);
        one.execute([&] { v1 = compute_loss(p.logits.data(), p.target.data(), p.shape, opt, g1.data()).total; });
        vn = compute_loss(p.logits.data(), p.target.data(), p.shape, opt, gn.data()).total;
        BOOST_TEST(v1 == vn);
        BOOST_TEST(g1 == gn);
    }
}

BOOST_AUTO_TEST_CASE(float_matches_double) {
    auto p = random_problem({2, 4, 30}, std::int64_t{7}, 5);
    std::vector<float> zf(p.logits.begin(), p.logits.end()), wf(p.weight.begin(), p.weight.end());
    std::vector<double> zd(zf.begin(), zf.end()), wd(wf.begin(), wf.end());
    for (loss_kind k : all_kinds) {
        loss_options<float> of;
        loss_options<double> od;
        of.kind = od.kind = k;
        of.ignore_index = od.ignore_index = 7;
        of.weight = wf.data();
        od.weight = wd.data();
        std::vector<float> gf(zf.size());
        std::vector<double> gd(zd.size());
        const double vf = compute_loss(zf.data(), p.target.data(), p.shape, of, gf.data()).total;
        const double vd = compute_loss(zd.data(), p.target.data(), p.shape, od, gd.data()).total;
        BOOST_TEST(vf == vd, boost::test_tools::tolerance(1e-12));  // both accumulate in double
        BOOST_TEST(rel_err(gf, gd) < 1e-6);
    }
}

BOOST_AUTO_TEST_CASE(hard_dice) {
    // N 1, C 3, plane 6; predictions (argmax) 0 0 1 1 2 0, target 0 1 1 1 255 2.
    const double z[] = {
        5, 5, 0, 0, 0, 5,  // class 0
        0, 0, 5, 5, 0, 0,  // class 1
        0, 0, 0, 0, 5, 0,  // class 2
    };
    const std::int64_t t[] = {0, 1, 1, 1, 255, 2};
    dice_counts c(3);
    c.add(z, t, {1, 3, 6}, std::int64_t{255});
    // class 0: tp 1, fp 2 (pixels 1, 5), fn 0; class 1: tp 2, fn 1; class 2: fn 1.
    BOOST_TEST(c.tp == (std::vector<std::int64_t>{1, 2, 0}));
    BOOST_TEST(c.fp == (std::vector<std::int64_t>{2, 0, 0}));
    BOOST_TEST(c.fn == (std::vector<std::int64_t>{0, 1, 1}));
    const auto d = dice_per_class(z, t, {1, 3, 6}, std::int64_t{255});
    BOOST_TEST(d[0] == 2.0 / 4.0);
    BOOST_TEST(d[1] == 4.0 / 5.0);
    BOOST_TEST(d[2] == 0.0);

    // Ties go to the first class; a class absent everywhere is NaN.
    const double tie[] = {1, 1, 1, 1};  // N 1, C 2, plane 2
    const std::int64_t t0[] = {0, 0};
    const auto dt = dice_per_class(tie, t0, {1, 2, 2});
    BOOST_TEST(dt[0] == 1.0);
    BOOST_TEST(std::isnan(dt[1]));

    dice_counts c2(3);
    c2.add(z, t, {1, 3, 6}, std::int64_t{255});
    c.merge(c2);
    BOOST_TEST(c.dice() == d);
    dice_counts wrong(2);
    BOOST_TEST(!error_of([&] { wrong.add(z, t, {1, 3, 6}, std::int64_t{255}); }).empty());
}

// Dice averaged over the classes present in each sample's non-ignored target,
// computed the naive way: softmax, per-class sums, then the mean over present
// classes, sample by sample.
static double naive_present_dice(const std::vector<double>& z, const std::vector<std::int64_t>& t, const loss_shape& s,
                                 std::optional<std::int64_t> ignore) {
    double total = 0;
    for (std::size_t n = 0; n < s.n; ++n) {
        std::vector<double> inter(s.c, 0), prob(s.c, 0), gt(s.c, 0);
        for (std::size_t i = 0; i < s.plane; ++i) {
            const std::int64_t y = t[n * s.plane + i];
            if (ignore && y == *ignore) continue;
            double norm = 0;
            std::vector<double> e(s.c);
            for (std::size_t k = 0; k < s.c; ++k) norm += e[k] = std::exp(z[(n * s.c + k) * s.plane + i]);
            for (std::size_t k = 0; k < s.c; ++k) {
                const double p = e[k] / norm;
                prob[k] += p;
                if (std::size_t(y) == k) {
                    inter[k] += p;
                    gt[k] += 1;
                }
            }
        }
        double sum = 0;
        int present = 0;
        for (std::size_t k = 0; k < s.c; ++k)
            if (gt[k] > 0) {
                sum += (2 * inter[k] + dice_eps) / (prob[k] + gt[k] + dice_eps);
                ++present;
            }
        if (present > 0) total += 1 - sum / present;
    }
    return total / double(s.n);
}

BOOST_AUTO_TEST_CASE(dice_over_present_classes) {
    // N 3, C 4, plane 9: sample 0 has every class, sample 1 lacks classes 1
    // and 3 (some pixels of class 3 are ignored, so it is absent all the same),
    // sample 2 is entirely ignored.
    auto p = random_problem({3, 4, 9}, std::int64_t{-1}, 21);
    for (std::size_t i = 0; i < 4; ++i) p.target[i] = std::int64_t(i);
    for (std::size_t i = 9; i < 18; ++i) p.target[i] = i % 3 == 0 ? -1 : (i % 2 == 0 ? 0 : 2);
    for (std::size_t i = 18; i < 27; ++i) p.target[i] = -1;
    for (loss_kind k : {loss_kind::dice, loss_kind::dice_ce}) {
        loss_options<double> opt;
        opt.kind = k;
        opt.ignore_index = -1;
        opt.dice_over = dice_average::present_classes;
        const auto v = compute_loss(p.logits.data(), p.target.data(), p.shape, opt);
        BOOST_TEST(v.dice == naive_present_dice(p.logits, p.target, p.shape, opt.ignore_index),
                   boost::test_tools::tolerance(1e-13));
        // Differs from the mean over every class (sample 1 lacks two classes).
        opt.dice_over = dice_average::all_classes;
        BOOST_TEST(std::abs(compute_loss(p.logits.data(), p.target.data(), p.shape, opt).dice - v.dice) > 1e-3);
    }

    // The logits of an absent class get a gradient only through the softmax of
    // the present classes; with two classes, one absent everywhere, the loss
    // is 1 - D of the present class alone (hand-computed).
    {
        const double z[] = {std::log(3.0), 0.0};  // p = (3/4, 1/4), target 0
        const std::int64_t t[] = {0};
        loss_options<double> opt;
        opt.kind = loss_kind::dice;
        opt.dice_over = dice_average::present_classes;
        const double e = dice_eps;
        BOOST_TEST(compute_loss(z, t, {1, 2, 1}, opt).total == 1 - (1.5 + e) / (1.75 + e),
                   boost::test_tools::tolerance(1e-14));
    }

    // Finite differences, with and without ignored pixels and weights, on
    // problems where some classes are absent from some samples.
    for (auto ignore : {std::optional<std::int64_t>{}, std::optional<std::int64_t>{-1}})
        for (unsigned seed : {31u, 32u}) {
            auto q = random_problem({2, 5, 6}, ignore, seed);
            for (auto& y : q.target)
                if (y == 4 || (seed == 32u && y == 1)) y = 0;  // class 4 (and 1) absent
            q.target[6] = 4;                                     // ... except class 4 once in sample 1
            for (loss_kind k : {loss_kind::dice, loss_kind::dice_ce})
                for (bool w : {false, true}) {
                    loss_options<double> opt;
                    opt.kind = k;
                    opt.weight = w ? q.weight.data() : nullptr;
                    opt.ignore_index = ignore;
                    opt.dice_over = dice_average::present_classes;
                    check_gradient(q, opt, std::string("present-class dice, ") + loss_name(k) + (w ? " weighted" : "") +
                                               (ignore ? " ignore" : ""));
                    if (k == loss_kind::dice)
                        BOOST_TEST(compute_loss(q.logits.data(), q.target.data(), q.shape, opt).total ==
                                       naive_present_dice(q.logits, q.target, q.shape, ignore),
                                   boost::test_tools::tolerance(1e-13));
                }
        }

    // Independent of the thread count, like the other losses.
    auto r = random_problem({2, 3, 5000}, std::int64_t{-1}, 33);
    for (auto& y : r.target)
        if (y == 2 && &y < r.target.data() + 5000) y = 0;  // class 2 absent from sample 0
    loss_options<double> opt;
    opt.ignore_index = -1;
    opt.dice_over = dice_average::present_classes;
    std::vector<double> g1(r.logits.size()), gn(r.logits.size());
    double v1 = 0;
    tbb::task_arena one(1);
    one.execute([&] { v1 = compute_loss(r.logits.data(), r.target.data(), r.shape, opt, g1.data()).total; });
    BOOST_TEST(v1 == compute_loss(r.logits.data(), r.target.data(), r.shape, opt, gn.data()).total);
    BOOST_TEST(g1 == gn);
}

BOOST_AUTO_TEST_SUITE_END()
