// Segmentation metrics against hand-computed cases and a brute-force
// Hausdorff distance over surface voxel pairs.
#define BOOST_TEST_MODULE data metrics
#include <boost/test/unit_test.hpp>

#include "error_text.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ctseg/data/metrics.hpp"

using namespace ctseg;
using data::image;

namespace {

image<std::int64_t> labels(std::vector<std::size_t> ext, std::vector<std::int64_t> v) {
    image<std::int64_t> img(1, std::move(ext));
    BOOST_REQUIRE_EQUAL(img.values.size(), v.size());
    img.values = std::move(v);
    return img;
}

// The hand case: 3 x 4, classes 0..2.
const std::vector<std::int64_t> truth_values{0, 0, 1, 1,
                                             0, 1, 1, 2,
                                             0, 0, 2, 2};
const std::vector<std::int64_t> pred_values{0, 1, 1, 1,
                                            0, 0, 1, 2,
                                            0, 0, 2, 1};

// Coordinates of voxel v, slowest axis first.
std::vector<long> coords(std::size_t v, const std::vector<std::size_t>& ext) {
    std::vector<long> c(ext.size());
    for (std::size_t a = ext.size(); a-- > 0;) {
        c[a] = long(v % ext[a]);
        v /= ext[a];
    }
    return c;
}

// Surface by coordinates: an object voxel one of whose 2R face neighbours is
// outside the grid or not in the object.
std::vector<std::size_t> naive_surface(const std::vector<std::uint8_t>& obj, const std::vector<std::size_t>& ext) {
    std::vector<std::size_t> out;
    for (std::size_t v = 0; v < obj.size(); ++v) {
        if (!obj[v]) continue;
        const auto c = coords(v, ext);
        bool surface = false;
        for (std::size_t a = 0; a < ext.size(); ++a)
            for (long d : {-1L, 1L}) {
                auto n = c;
                n[a] += d;
                if (n[a] < 0 || n[a] >= long(ext[a])) { surface = true; continue; }
                std::size_t idx = 0;
                for (std::size_t b = 0; b < ext.size(); ++b) idx = idx * ext[b] + std::size_t(n[b]);
                if (!obj[idx]) surface = true;
            }
        if (surface) out.push_back(v);
    }
    return out;
}

double percentile95(std::vector<double> d) {
    std::sort(d.begin(), d.end());
    const double pos = 0.95 * double(d.size() - 1);
    const auto i = std::size_t(pos);
    if (i + 1 >= d.size()) return d.back();
    return d[i] * (1 - (pos - double(i))) + d[i + 1] * (pos - double(i));
}

// HD95 by every pair of surface voxels.
double brute_hd95(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b, const std::vector<std::size_t>& ext,
                  const std::vector<double>& spacing) {
    const auto sa = naive_surface(a, ext), sb = naive_surface(b, ext);
    if (sa.empty() && sb.empty()) return std::numeric_limits<double>::quiet_NaN();
    if (sa.empty() || sb.empty()) return std::numeric_limits<double>::infinity();
    auto directed = [&](const std::vector<std::size_t>& from, const std::vector<std::size_t>& to) {
        std::vector<double> d;
        for (auto u : from) {
            const auto cu = coords(u, ext);
            double best = std::numeric_limits<double>::infinity();
            for (auto w : to) {
                const auto cw = coords(w, ext);
                double s = 0;
                for (std::size_t k = 0; k < ext.size(); ++k) s += std::pow(double(cu[k] - cw[k]) * spacing[k], 2);
                best = std::min(best, std::sqrt(s));
            }
            d.push_back(best);
        }
        return percentile95(d);
    };
    return std::max(directed(sa, sb), directed(sb, sa));
}

// Random smooth-ish blobs: a voxel is in class k when a few random spheres say so.
image<std::int64_t> random_blobs(const std::vector<std::size_t>& ext, std::size_t classes, unsigned seed) {
    std::mt19937 rng(seed);
    image<std::int64_t> img(1, ext, 0);
    for (std::size_t k = 1; k < classes; ++k)
        for (int s = 0; s < 3; ++s) {
            std::vector<double> centre(ext.size());
            for (std::size_t a = 0; a < ext.size(); ++a) centre[a] = std::uniform_real_distribution<double>(0, double(ext[a]))(rng);
            const double r = std::uniform_real_distribution<double>(1.5, 4.0)(rng);
            for (std::size_t v = 0; v < img.voxels(); ++v) {
                const auto c = coords(v, ext);
                double d = 0;
                for (std::size_t a = 0; a < ext.size(); ++a) d += (double(c[a]) - centre[a]) * (double(c[a]) - centre[a]);
                if (d <= r * r) img.values[v] = std::int64_t(k);
            }
        }
    return img;
}

std::vector<std::uint8_t> object(const image<std::int64_t>& img, std::int64_t k, const std::vector<std::uint8_t>* keep = nullptr) {
    std::vector<std::uint8_t> o(img.voxels());
    for (std::size_t v = 0; v < o.size(); ++v) o[v] = img.values[v] == k && (!keep || (*keep)[v]);
    return o;
}

}  // namespace

BOOST_AUTO_TEST_CASE(hand_computed_dice_iou_error) {
    const auto s = data::evaluate(labels({3, 4}, pred_values), labels({3, 4}, truth_values), 3);
    BOOST_REQUIRE_EQUAL(s.classes.size(), 3u);
    // truth / predicted / both: class 0: 5 / 5 / 4; class 1: 4 / 5 / 3; class 2: 3 / 2 / 2.
    BOOST_TEST(s.classes[0].truth_voxels == 5u);
    BOOST_TEST(s.classes[0].predicted_voxels == 5u);
    BOOST_TEST(s.classes[0].intersection == 4u);
    BOOST_TEST(s.classes[1].truth_voxels == 4u);
    BOOST_TEST(s.classes[1].predicted_voxels == 5u);
    BOOST_TEST(s.classes[1].intersection == 3u);
    BOOST_TEST(s.classes[2].truth_voxels == 3u);
    BOOST_TEST(s.classes[2].predicted_voxels == 2u);
    BOOST_TEST(s.classes[2].intersection == 2u);
    const auto tol = boost::test_tools::tolerance(1e-12);
    BOOST_TEST(s.classes[0].dice == 0.8, tol);
    BOOST_TEST(s.classes[0].iou == 4.0 / 6.0, tol);
    BOOST_TEST(s.classes[1].dice == 6.0 / 9.0, tol);
    BOOST_TEST(s.classes[1].iou == 0.5, tol);
    BOOST_TEST(s.classes[2].dice == 0.8, tol);
    BOOST_TEST(s.classes[2].iou == 2.0 / 3.0, tol);
    BOOST_TEST(s.voxels == 12u);
    BOOST_TEST(s.wrong == 3u);
    BOOST_TEST(s.pixel_error == 0.25, tol);
    BOOST_TEST(s.mean_dice() == (6.0 / 9.0 + 0.8) / 2, tol);
    BOOST_TEST(s.mean_dice(false) == (0.8 + 6.0 / 9.0 + 0.8) / 3, tol);
    BOOST_TEST(s.mean_iou() == (0.5 + 2.0 / 3.0) / 2, tol);
    // Class 2: truth (1,3) (2,2) (2,3), prediction (1,3) (2,2); every voxel of both is
    // on the surface. Distances truth -> prediction: 0, 0, 1; back: 0, 0.
    // 95th percentiles: 0.9 (rank 1.9 of 0 0 1) and 0: HD95 = 0.9.
    BOOST_TEST(s.classes[2].hd95 == 0.9, tol);
}

BOOST_AUTO_TEST_CASE(ignore_label_and_mask) {
    auto truth = labels({3, 4}, truth_values);
    truth.values[1] = 255;  // (0,1): truth 0, predicted 1, now ignored
    const auto tol = boost::test_tools::tolerance(1e-12);
    const auto s = data::evaluate(labels({3, 4}, pred_values), truth, 3, 255);
    BOOST_TEST(s.voxels == 11u);
    BOOST_TEST(s.wrong == 2u);
    BOOST_TEST(s.classes[0].truth_voxels == 4u);
    BOOST_TEST(s.classes[1].predicted_voxels == 4u);
    BOOST_TEST(s.classes[0].dice == 8.0 / 9.0, tol);
    BOOST_TEST(s.classes[1].dice == 6.0 / 8.0, tol);
    BOOST_TEST(s.pixel_error == 2.0 / 11.0, tol);
    // Without the ignore label, 255 is out of range.
    const std::string m = message_of([&] { data::evaluate(labels({3, 4}, pred_values), truth, 3); });
    BOOST_TEST(contains(m, "truth label 255"), m);
    BOOST_TEST(contains(m, "[0, 3)"), m);

    // Mask: rows 0 and 1 only.
    std::vector<std::uint8_t> mask(12, 0);
    std::fill(mask.begin(), mask.begin() + 8, 1);
    const auto r = data::evaluate(labels({3, 4}, pred_values), labels({3, 4}, truth_values), 3, {}, &mask);
    BOOST_TEST(r.voxels == 8u);
    BOOST_TEST(r.wrong == 2u);
    BOOST_TEST(r.classes[0].dice == 4.0 / 6.0, tol);
    BOOST_TEST(r.classes[1].dice == 6.0 / 8.0, tol);
    BOOST_TEST(r.classes[2].dice == 1.0, tol);
    BOOST_TEST(r.classes[2].hd95 == 0.0);  // (1,3) in both
}

BOOST_AUTO_TEST_CASE(empty_class_conventions) {
    // Class 2 in neither, class 3 in the truth only, class 1 predicted only.
    const auto truth = labels({2, 3}, {0, 0, 3, 0, 0, 3});
    const auto pred = labels({2, 3}, {0, 1, 0, 0, 0, 0});
    const auto s = data::evaluate(pred, truth, 4);
    BOOST_TEST(std::isnan(s.classes[2].dice));
    BOOST_TEST(std::isnan(s.classes[2].iou));
    BOOST_TEST(std::isnan(s.classes[2].hd95));
    BOOST_TEST(s.classes[3].dice == 0.0);
    BOOST_TEST(s.classes[3].iou == 0.0);
    BOOST_TEST((std::isinf(s.classes[3].hd95) && s.classes[3].hd95 > 0));
    BOOST_TEST(s.classes[1].dice == 0.0);
    BOOST_TEST((std::isinf(s.classes[1].hd95) && s.classes[1].hd95 > 0));
    // Mean Dice over defined classes only: classes 1 and 3 (0 each).
    BOOST_TEST(s.mean_dice() == 0.0);
    // Everything masked out: nothing defined.
    std::vector<std::uint8_t> none(6, 0);
    const auto e = data::evaluate(pred, truth, 4, {}, &none);
    BOOST_TEST(e.voxels == 0u);
    BOOST_TEST(std::isnan(e.pixel_error));
    BOOST_TEST(std::isnan(e.mean_dice()));
}

BOOST_AUTO_TEST_CASE(hd95_hand_case_with_spacing) {
    // One voxel each, 3 columns apart at 2 mm per column: 6 mm.
    auto truth = labels({2, 5}, {1, 0, 0, 0, 0, 0, 0, 0, 0, 0});
    auto pred = labels({2, 5}, {0, 0, 0, 1, 0, 0, 0, 0, 0, 0});
    truth.geom.spacing = {1.0, 2.0};
    BOOST_TEST(data::evaluate(pred, truth, 2).classes[1].hd95 == 6.0, boost::test_tools::tolerance(1e-12));
    // The prediction's spacing is used when the truth has none.
    truth.geom.spacing.clear();
    pred.geom.spacing = {1.0, 0.5};
    BOOST_TEST(data::evaluate(pred, truth, 2).classes[1].hd95 == 1.5, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(hd95_matches_brute_force_with_anisotropic_spacing) {
    const std::vector<std::size_t> ext3{12, 14, 10};
    const std::vector<double> sp3{2.5, 0.7, 1.1};
    for (unsigned seed = 1; seed <= 3; ++seed) {
        auto truth = random_blobs(ext3, 3, seed);
        auto pred = random_blobs(ext3, 3, seed + 100);
        truth.geom.spacing = sp3;
        pred.geom.spacing = sp3;
        const auto s = data::evaluate(pred, truth, 3);
        for (std::int64_t k = 0; k < 3; ++k) {
            const double want = brute_hd95(object(pred, k), object(truth, k), ext3, sp3);
            BOOST_TEST_CONTEXT("seed " << seed << " class " << k) {
                BOOST_TEST(std::isfinite(want));
                BOOST_TEST(s.classes[std::size_t(k)].hd95 == want, boost::test_tools::tolerance(1e-9));
            }
        }
        // Held-out slices: a mask of slices 3..7 restricts the objects too.
        std::vector<std::uint8_t> mask(truth.voxels(), 0);
        for (std::size_t v = 0; v < mask.size(); ++v) mask[v] = v / (14 * 10) >= 3 && v / (14 * 10) <= 7;
        const auto m = data::evaluate(pred, truth, 3, {}, &mask);
        for (std::int64_t k = 1; k < 3; ++k)
            BOOST_TEST(m.classes[std::size_t(k)].hd95 == brute_hd95(object(pred, k, &mask), object(truth, k, &mask), ext3, sp3),
                       boost::test_tools::tolerance(1e-9));
    }
    const std::vector<std::size_t> ext2{17, 23};
    const std::vector<double> sp2{0.4, 1.7};
    auto truth = random_blobs(ext2, 2, 7);
    auto pred = random_blobs(ext2, 2, 8);
    truth.geom.spacing = sp2;
    const auto s = data::evaluate(pred, truth, 2);
    BOOST_TEST(s.classes[1].hd95 == brute_hd95(object(pred, 1), object(truth, 1), ext2, sp2), boost::test_tools::tolerance(1e-9));
    // The public helpers agree with the brute force as well.
    BOOST_TEST(data::hausdorff95(object(pred, 1), object(truth, 1), ext2, sp2) ==
                   brute_hd95(object(pred, 1), object(truth, 1), ext2, sp2),
               boost::test_tools::tolerance(1e-9));
    const auto surf = data::surface_voxels(object(truth, 1), ext2);
    std::vector<std::uint8_t> want(surf.size(), 0);
    for (auto v : naive_surface(object(truth, 1), ext2)) want[v] = 1;
    BOOST_TEST(surf == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(accumulator_equals_evaluate_on_the_concatenation) {
    const std::vector<std::size_t> ext{6, 7};
    std::mt19937 rng(3);
    std::uniform_int_distribution<int> label(0, 3), coin(0, 4);
    std::vector<image<std::int64_t>> preds, truths;
    std::vector<std::vector<std::uint8_t>> masks;
    for (int i = 0; i < 2; ++i) {
        image<std::int64_t> p(1, ext), t(1, ext);
        std::vector<std::uint8_t> m(p.voxels());
        for (std::size_t v = 0; v < p.voxels(); ++v) {
            p.values[v] = label(rng) % 3;
            t.values[v] = coin(rng) == 0 ? -1 : label(rng) % 3;  // -1: ignored
            m[v] = coin(rng) != 0;
        }
        preds.push_back(p);
        truths.push_back(t);
        masks.push_back(m);
    }
    data::score_accumulator acc(3, -1);
    const auto s0 = acc.add(preds[0], truths[0], &masks[0]);
    const auto s1 = acc.add(preds[1], truths[1], &masks[1]);
    BOOST_TEST(acc.images() == 2u);
    const auto total = acc.result();
    // Concatenated along axis 0: 12 x 7.
    image<std::int64_t> p(1, {12, 7}), t(1, {12, 7});
    std::vector<std::uint8_t> m;
    for (int i = 0; i < 2; ++i) {
        std::copy(preds[std::size_t(i)].values.begin(), preds[std::size_t(i)].values.end(), p.values.begin() + i * 42);
        std::copy(truths[std::size_t(i)].values.begin(), truths[std::size_t(i)].values.end(), t.values.begin() + i * 42);
        m.insert(m.end(), masks[std::size_t(i)].begin(), masks[std::size_t(i)].end());
    }
    const auto whole = data::evaluate(p, t, 3, -1, &m);
    BOOST_TEST(total.voxels == whole.voxels);
    BOOST_TEST(total.voxels == s0.voxels + s1.voxels);
    BOOST_TEST(total.wrong == whole.wrong);
    BOOST_TEST(total.pixel_error == whole.pixel_error);
    for (std::size_t k = 0; k < 3; ++k) {
        BOOST_TEST(total.classes[k].truth_voxels == whole.classes[k].truth_voxels);
        BOOST_TEST(total.classes[k].predicted_voxels == whole.classes[k].predicted_voxels);
        BOOST_TEST(total.classes[k].intersection == whole.classes[k].intersection);
        BOOST_TEST(total.classes[k].dice == whole.classes[k].dice);
        BOOST_TEST(total.classes[k].iou == whole.classes[k].iou);
        // HD95: the mean of the per-image values.
        BOOST_TEST(std::isfinite(s0.classes[k].hd95));
        BOOST_TEST(total.classes[k].hd95 == (s0.classes[k].hd95 + s1.classes[k].hd95) / 2, boost::test_tools::tolerance(1e-12));
    }
    // Dice over all voxels is not the mean of per-image Dice in general; here it is checked from the counts.
    const auto& c1 = whole.classes[1];
    BOOST_TEST(total.classes[1].dice == 2.0 * double(c1.intersection) / double(c1.truth_voxels + c1.predicted_voxels),
               boost::test_tools::tolerance(1e-12));
    // An image with the class in the truth only makes the accumulated HD95 infinite.
    acc.add(labels({1, 2}, {0, 0}), labels({1, 2}, {0, 2}));
    BOOST_TEST(std::isinf(acc.result().classes[2].hd95));
    BOOST_TEST(std::isfinite(acc.result().classes[0].hd95));
    // No Hausdorff distances asked: NaN.
    data::score_accumulator plain(3, -1, false);
    plain.add(preds[0], truths[0]);
    BOOST_TEST(std::isnan(plain.result().classes[1].hd95));
    BOOST_TEST(std::isnan(plain.add(preds[0], truths[0]).classes[1].hd95));
}

BOOST_AUTO_TEST_CASE(bad_input_names_the_numbers) {
    const auto truth = labels({3, 4}, truth_values);
    std::string m = message_of([&] { data::evaluate(labels({3, 5}, std::vector<std::int64_t>(15, 0)), truth, 3); });
    BOOST_TEST(contains(m, "3x5"), m);
    BOOST_TEST(contains(m, "3x4"), m);
    auto bad = labels({3, 4}, pred_values);
    bad.values[6] = 3;
    m = message_of([&] { data::evaluate(bad, truth, 3); });
    BOOST_TEST(contains(m, "predicted label 3 at voxel 6"), m);
    BOOST_TEST(contains(m, "[0, 3)"), m);
    bad.values[6] = -2;
    m = message_of([&] { data::evaluate(bad, truth, 3, -1); });
    BOOST_TEST(contains(m, "predicted label -2"), m);
    auto bad_truth = truth;
    bad_truth.values[0] = 7;
    m = message_of([&] { data::evaluate(labels({3, 4}, pred_values), bad_truth, 3, 255); });
    BOOST_TEST(contains(m, "truth label 7"), m);
    BOOST_TEST(contains(m, "ignore label 255"), m);
    std::vector<std::uint8_t> short_mask(11, 1);
    m = message_of([&] { data::evaluate(labels({3, 4}, pred_values), truth, 3, {}, &short_mask); });
    BOOST_TEST(contains(m, "11 entries"), m);
    BOOST_TEST(contains(m, "12 voxels"), m);
    auto p2 = labels({3, 4}, pred_values), t2 = truth;
    p2.geom.spacing = {1.0, 2.0};
    t2.geom.spacing = {1.0, 3.0};
    m = message_of([&] { data::evaluate(p2, t2, 3); });
    BOOST_TEST(contains(m, "spacing"), m);
    t2.geom.spacing = {1.0};
    m = message_of([&] { data::evaluate(labels({3, 4}, pred_values), t2, 3); });
    BOOST_TEST(contains(m, "1 entries for rank 2"), m);
    image<std::int64_t> two_channels(2, {3, 4});
    m = message_of([&] { data::evaluate(two_channels, truth, 3); });
    BOOST_TEST(contains(m, "prediction has 2"), m);
    m = message_of([&] {
        data::score_accumulator none(0);
        (void)none;
    });
    BOOST_TEST(contains(m, "got 0"), m);
}
