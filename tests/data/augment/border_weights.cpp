// U-Net border weights against a brute-force reference (all pairwise
// distances), the touching-cells case, and connected components against a
// naive depth-first flood fill.
#include "ctseg/data/border_weights.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "util.hpp"

using namespace ctseg::data;
using augment_test::lcg;
using augment_test::ravel;
using augment_test::unravel;

namespace {

// w = w_c + w0 exp(-(d1 + d2)^2 / (2 sigma^2)) on background, by brute force:
// for every background voxel, the distance to every voxel of every object.
std::vector<double> brute_force_weights(const std::vector<std::int64_t>& objects, const std::vector<std::int64_t>& cls,
                                        const std::vector<bool>& ignored, const std::vector<std::size_t>& ext,
                                        std::vector<double> h, double w0, double sigma, bool balance) {
    const std::size_t V = objects.size();
    if (h.empty()) h.assign(ext.size(), 1.0);
    std::map<std::int64_t, double> count;
    double kept = 0;
    for (std::size_t i = 0; i < V; ++i)
        if (!ignored[i]) {
            count[cls[i]] += 1;
            kept += 1;
        }
    std::vector<double> w(V, 0.0);
    for (std::size_t i = 0; i < V; ++i) {
        if (ignored[i]) continue;
        w[i] = balance ? kept / (double(count.size()) * count[cls[i]]) : 1.0;
        if (objects[i] != 0) continue;
        std::map<std::int64_t, double> nearest;
        const auto p = unravel(i, ext);
        for (std::size_t j = 0; j < V; ++j) {
            if (objects[j] <= 0) continue;
            const auto q = unravel(j, ext);
            double d2 = 0;
            for (std::size_t a = 0; a < ext.size(); ++a) {
                const double d = (double(p[a]) - double(q[a])) * h[a];
                d2 += d * d;
            }
            auto [it, fresh] = nearest.try_emplace(objects[j], std::sqrt(d2));
            if (!fresh) it->second = std::min(it->second, std::sqrt(d2));
        }
        if (nearest.size() < 2) continue;
        std::vector<double> ds;
        for (const auto& kv : nearest) ds.push_back(kv.second);
        std::sort(ds.begin(), ds.end());
        const double s = ds[0] + ds[1];
        w[i] += w0 * std::exp(-s * s / (2 * sigma * sigma));
    }
    return w;
}

// Random axis-aligned boxes of ids 1..n (later boxes overwrite earlier ones).
image<std::int64_t> random_boxes(const std::vector<std::size_t>& ext, int n, std::uint64_t seed) {
    image<std::int64_t> img(1, ext);
    lcg r(seed);
    for (int k = 1; k <= n; ++k) {
        std::vector<std::size_t> lo(ext.size()), hi(ext.size());
        for (std::size_t a = 0; a < ext.size(); ++a) {
            lo[a] = r.below(ext[a]);
            hi[a] = std::min(ext[a] - 1, lo[a] + 1 + r.below(std::max<std::size_t>(2, ext[a] / 4)));
        }
        for (std::size_t i = 0; i < img.voxels(); ++i) {
            const auto p = unravel(i, ext);
            bool in = true;
            for (std::size_t a = 0; a < ext.size(); ++a) in = in && p[a] >= lo[a] && p[a] <= hi[a];
            if (in) img.values[i] = k;
        }
    }
    return img;
}

// Naive components: depth-first flood fill from each unvisited voxel in C
// order, neighbours enumerated by coordinates. Ids in order of first voxel.
std::vector<std::int64_t> naive_components(const image<std::int64_t>& lab, bool full, std::int64_t ignore) {
    const auto& ext = lab.extents;
    const std::size_t V = lab.voxels(), R = ext.size();
    std::vector<std::int64_t> id(V, 0);
    std::int64_t next = 0;
    for (std::size_t s = 0; s < V; ++s) {
        if (id[s] || lab.values[s] == 0 || lab.values[s] == ignore) continue;
        id[s] = ++next;
        std::vector<std::size_t> stack{s};
        while (!stack.empty()) {
            const std::size_t cur = stack.back();
            stack.pop_back();
            const auto p = unravel(cur, ext);
            for (std::size_t j = 0; j < V; ++j) {
                if (id[j] || lab.values[j] != lab.values[cur]) continue;
                const auto q = unravel(j, ext);
                std::size_t far = 0, diff = 0;
                for (std::size_t a = 0; a < R; ++a) {
                    const auto d = std::max(p[a], q[a]) - std::min(p[a], q[a]);
                    far += d > 1;
                    diff += d == 1;
                }
                if (far || diff == 0 || (!full && diff > 1)) continue;
                id[j] = next;
                stack.push_back(j);
            }
        }
    }
    return id;
}

void check_against_brute_force(const image<std::int64_t>& inst, const border_weight_options& o) {
    const auto w = border_weights_from_instances(inst, o);
    const std::size_t V = inst.voxels();
    std::vector<std::int64_t> cls(V);
    std::vector<bool> ignored(V);
    for (std::size_t i = 0; i < V; ++i) {
        ignored[i] = o.ignore_label && inst.values[i] == *o.ignore_label;
        cls[i] = inst.values[i] > 0;
    }
    auto objects = inst.values;
    for (std::size_t i = 0; i < V; ++i)
        if (ignored[i]) objects[i] = 0;
    const auto ref = brute_force_weights(objects, cls, ignored, inst.extents, inst.geom.spacing, o.w0, o.sigma, o.class_balance);
    BOOST_REQUIRE(w.values.size() == V);
    BOOST_TEST(w.extents == inst.extents);
    double worst = 0, biggest = 0;
    for (std::size_t i = 0; i < V; ++i) {
        worst = std::max(worst, std::abs(double(w.values[i]) - ref[i]) / std::max(1.0, ref[i]));
        biggest = std::max(biggest, ref[i]);
    }
    BOOST_TEST(worst < 2e-6);
    BOOST_TEST(biggest > 1.5);  // the border term was exercised
}

}  // namespace

BOOST_AUTO_TEST_SUITE(border_weight_maps)

BOOST_AUTO_TEST_CASE(instances_2d_match_brute_force) {
    for (std::uint64_t seed = 1; seed <= 4; ++seed) {
        auto inst = random_boxes({36, 30}, 6, seed);
        border_weight_options o;
        check_against_brute_force(inst, o);
        o.sigma = 1.5;  // the truncation radius (8.5) is smaller than the image
        check_against_brute_force(inst, o);
        o.class_balance = false;
        o.w0 = 4;
        inst.geom.spacing = {1.0, 0.6};
        check_against_brute_force(inst, o);
    }
}

BOOST_AUTO_TEST_CASE(instances_3d_match_brute_force) {
    for (std::uint64_t seed = 5; seed <= 6; ++seed) {
        auto inst = random_boxes({12, 14, 11}, 5, seed);
        border_weight_options o;
        o.sigma = 2;
        check_against_brute_force(inst, o);
        inst.geom.spacing = {2.5, 1.0, 0.8};
        check_against_brute_force(inst, o);
    }
}

BOOST_AUTO_TEST_CASE(ignored_voxels_weigh_nothing) {
    auto inst = random_boxes({30, 30}, 5, 9);
    for (std::size_t i = 0; i < 30; ++i) inst.values[i * 30 + 7] = -1;
    border_weight_options o;
    o.ignore_label = -1;
    check_against_brute_force(inst, o);
    const auto w = border_weights_from_instances(inst, o);
    for (std::size_t i = 0; i < 30; ++i) BOOST_TEST(w.values[i * 30 + 7] == 0.0f);
}

// Two cells one background pixel apart: on the gap d1 = d2 = 1, so
// w = w_c + w0 exp(-4 / (2 sigma^2)), about w_c + w0.
BOOST_AUTO_TEST_CASE(gap_between_touching_cells_weighs_about_w0_plus_wc) {
    image<std::int64_t> inst(1, {20, 21});
    for (std::size_t i = 5; i < 15; ++i)
        for (std::size_t j = 0; j < 21; ++j) {
            if (j >= 3 && j <= 9) inst.values[i * 21 + j] = 1;
            if (j >= 11 && j <= 17) inst.values[i * 21 + j] = 2;
        }
    const border_weight_options o;  // w0 10, sigma 5
    const auto w = border_weights_from_instances(inst, o);
    double fg = 0;
    for (auto v : inst.values) fg += v > 0;
    const double wc_bg = 420.0 / (2 * (420.0 - fg)), wc_fg = 420.0 / (2 * fg);
    const double gap = wc_bg + 10 * std::exp(-4.0 / 50);
    for (std::size_t i = 5; i < 15; ++i) {
        BOOST_TEST(double(w.values[i * 21 + 10]) == gap, boost::test_tools::tolerance(1e-6));
        BOOST_TEST(double(w.values[i * 21 + 10]) > wc_bg + 0.9 * 10);
        BOOST_TEST(double(w.values[i * 21 + 5]) == wc_fg, boost::test_tools::tolerance(1e-6));  // object: w_c only
    }
    // Far from both cells (a corner) the border term has all but vanished.
    BOOST_TEST(double(w.values[0]) < wc_bg + 0.1);
    // w_c averages to 1.
    double sum = 0;
    for (std::size_t i = 0; i < 420; ++i) sum += inst.values[i] > 0 ? wc_fg : wc_bg;
    BOOST_TEST(sum / 420 == 1.0, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(one_object_gets_no_border_term) {
    image<std::int64_t> inst(1, {10, 10});
    inst.values[55] = 3;
    border_weight_options o;
    o.class_balance = false;
    const auto w = border_weights_from_instances(inst, o);
    for (auto v : w.values) BOOST_TEST(v == 1.0f);
}

BOOST_AUTO_TEST_CASE(connected_components_match_naive_flood_fill) {
    for (const auto& ext : {std::vector<std::size_t>{17, 23}, std::vector<std::size_t>{7, 9, 8}})
        for (std::uint64_t seed = 0; seed < 3; ++seed) {
            image<std::int64_t> lab(1, ext);
            lcg r(seed + 30);
            for (auto& v : lab.values) v = std::int64_t(r.below(4)) - (r.below(10) == 0 ? 5 : 0);  // -5..3: -5 ignored
            for (bool full : {false, true}) {
                std::size_t count = 0;
                const auto cc = connected_components(lab, full ? connectivity::full : connectivity::face, 0, -5, &count);
                const auto ref = naive_components(lab, full, -5);
                BOOST_TEST(cc.values == ref);
                BOOST_TEST(count == std::size_t(*std::max_element(ref.begin(), ref.end())));
                BOOST_TEST(count > 5u);
            }
        }
    // Two pixels meeting at a corner: two objects under face, one under full connectivity.
    image<std::int64_t> diag(1, {2, 2});
    diag.values = {1, 0, 0, 1};
    std::size_t n = 0;
    connected_components(diag, connectivity::face, 0, std::nullopt, &n);
    BOOST_TEST(n == 2u);
    connected_components(diag, connectivity::full, 0, std::nullopt, &n);
    BOOST_TEST(n == 1u);
}

// Semantic labels: objects are the components, w_c balances every class.
BOOST_AUTO_TEST_CASE(semantic_labels_match_brute_force) {
    image<std::int64_t> lab(1, {28, 26});
    lcg r(40);
    for (int k = 0; k < 8; ++k) {
        const std::size_t i0 = r.below(24), j0 = r.below(22), cls = 1 + r.below(2);
        for (std::size_t i = i0; i < i0 + 4; ++i)
            for (std::size_t j = j0; j < j0 + 4; ++j) lab.values[i * 26 + j] = std::int64_t(cls);
    }
    border_weight_options o;
    o.sigma = 3;
    for (auto c : {connectivity::face, connectivity::full}) {
        o.connect = c;
        const auto w = border_weights_from_labels(lab, o);
        const auto objects = naive_components(lab, c == connectivity::full, -1000);
        std::vector<bool> ignored(lab.voxels(), false);
        const auto ref = brute_force_weights(objects, lab.values, ignored, lab.extents, {}, o.w0, o.sigma, true);
        double worst = 0;
        for (std::size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::abs(double(w.values[i]) - ref[i]) / ref[i]);
        BOOST_TEST(worst < 2e-6);
    }
}

BOOST_AUTO_TEST_CASE(bad_input_is_an_error) {
    image<std::int64_t> inst(1, {4, 4});
    inst.values[3] = -2;
    BOOST_CHECK_THROW(border_weights_from_instances(inst), ctseg::error);
    inst.values[3] = 1;
    border_weight_options o;
    o.sigma = 0;
    BOOST_CHECK_THROW(border_weights_from_instances(inst, o), ctseg::error);
    o = {};
    o.w0 = -1;
    BOOST_CHECK_THROW(border_weights_from_instances(inst, o), ctseg::error);
    image<std::int64_t> two(2, {4, 4});
    BOOST_CHECK_THROW(border_weights_from_labels(two), ctseg::error);
    inst.geom.spacing = {1, 0};
    BOOST_CHECK_THROW(border_weights_from_instances(inst), ctseg::error);
}

BOOST_AUTO_TEST_SUITE_END()
