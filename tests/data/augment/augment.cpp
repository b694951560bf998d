// Augmentation: index permutations against naive ones, identities, the
// alignment of image and labels under every transform and their composition,
// determinism, displacement statistics, interpolation exactness, intensity
// formulas and bad input.
#include "ctseg/data/augment.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <set>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <tbb/task_arena.h>

#include "util.hpp"

using namespace ctseg::data;
using augment_test::lcg;
using augment_test::ravel;
using augment_test::unravel;

namespace {

template <class T>
image<T> random_image(std::size_t channels, std::vector<std::size_t> ext, std::uint64_t seed, double lo = 0, double hi = 1) {
    image<T> img(channels, std::move(ext));
    lcg r(seed);
    for (auto& v : img.values) v = static_cast<T>(lo + (hi - lo) * r.uniform());
    return img;
}

// Labels constant on 3^R blocks, values in {-1, 0, ..., 5} (-1 plays the ignore label).
image<std::int64_t> block_labels(const std::vector<std::size_t>& ext, std::uint64_t seed) {
    image<std::int64_t> lab(1, ext);
    for (std::size_t i = 0; i < lab.voxels(); ++i) {
        auto p = unravel(i, ext);
        std::uint64_t h = seed;
        for (auto c : p) h = h * 1000003u + c / 3;
        lcg r(h);
        lab.values[i] = std::int64_t(r.below(7)) - 1;
    }
    return lab;
}

// R channels: channel a holds coordinate a. Cubic and linear interpolation
// reproduce it exactly wherever no tap is mirrored, so after a transform the
// image tells where each output voxel was sampled from.
image<double> coordinate_image(const std::vector<std::size_t>& ext) {
    image<double> img(ext.size(), ext);
    for (std::size_t i = 0; i < img.voxels(); ++i) {
        auto p = unravel(i, ext);
        for (std::size_t a = 0; a < ext.size(); ++a) img.channel(a)[i] = double(p[a]);
    }
    return img;
}

template <class T>
image<T> naive_flip(const image<T>& in, std::size_t axis) {
    image<T> out = in;
    for (std::size_t i = 0; i < in.voxels(); ++i) {
        auto p = unravel(i, in.extents);
        p[axis] = in.extents[axis] - 1 - p[axis];
        for (std::size_t c = 0; c < in.channels; ++c) out.channel(c)[i] = in.channel(c)[ravel(p, in.extents)];
    }
    return out;
}

// numpy.rot90(in, 1, axes=(a, b)), applied k times.
template <class T>
image<T> naive_rot90(image<T> in, int k, std::size_t a, std::size_t b) {
    k = ((k % 4) + 4) % 4;
    for (int t = 0; t < k; ++t) {
        image<T> out = in;
        std::swap(out.extents[a], out.extents[b]);
        for (std::size_t i = 0; i < out.voxels(); ++i) {
            auto p = unravel(i, out.extents);
            auto q = p;
            q[a] = p[b];
            q[b] = in.extents[b] - 1 - p[a];
            for (std::size_t c = 0; c < in.channels; ++c) out.channel(c)[i] = in.channel(c)[ravel(q, in.extents)];
        }
        in = std::move(out);
    }
    return in;
}

template <class T>
bool same_values(const image<T>& a, const image<T>& b) {
    return a.extents == b.extents && a.channels == b.channels && a.values == b.values;
}

// Runs augment over `seeds` and checks, at every output voxel whose source (by
// the map) lies where interpolation is exact (all taps inside): the image
// gives back that source coordinate, and the label is the input label at the
// voxel nearest to the coordinate the image gives. Everywhere: labels come from the input set. Returns the
// smallest fraction of voxels so checked.
double check_alignment(const augment_options& o, const std::vector<std::size_t>& ext, int seeds,
                       std::vector<double> spacing = {}) {
    auto img = coordinate_image(ext);
    img.geom.spacing = spacing;
    const auto lab = block_labels(ext, 7);
    const std::set<std::int64_t> input_labels(lab.values.begin(), lab.values.end());
    image<float> weights = image_like<float>(img);
    for (std::size_t i = 0; i < img.voxels(); ++i) weights.values[i] = float(img.channel(0)[i]);
    double least = 1;
    const std::size_t R = ext.size();
    for (int s = 0; s < seeds; ++s) {
        image<double> out;
        image<std::int64_t> lab_out;
        image<float> w_out;
        const auto t = augment(img, lab, weights, out, lab_out, w_out, o, std::uint64_t(s));
        const sampling_map map(t, ext, spacing);
        BOOST_REQUIRE(lab_out.extents == ext);
        std::size_t checked = 0, wrong_label = 0, wrong_coord = 0, foreign = 0, wrong_weight = 0;
        for (auto v : lab_out.values) foreign += !input_labels.count(v);
        for (std::size_t i = 0; i < out.voxels(); ++i) {
            const auto p = unravel(i, ext);
            std::vector<double> x(R);
            const auto from_map = map.source(p);
            bool inside = true, tie = false;
            std::vector<std::size_t> r(R);
            for (std::size_t a = 0; a < R; ++a) {
                // Where the map samples; mirrored samples are not checked.
                x[a] = out.channel(a)[i];
                inside = inside && from_map[a] >= 1 && from_map[a] < double(ext[a]) - 2;
                const double fr = x[a] - std::floor(x[a]);
                tie = tie || std::abs(fr - 0.5) < 1e-6;
                r[a] = std::size_t(std::floor(x[a] + 0.5));
            }
            if (!inside || tie) continue;
            ++checked;
            for (std::size_t a = 0; a < R; ++a) wrong_coord += std::abs(x[a] - from_map[a]) > 1e-9;
            wrong_label += lab_out.values[i] != lab.values[ravel(r, ext)];
            wrong_weight += std::abs(double(w_out.values[i]) - x[0]) > 1e-4;
        }
        BOOST_TEST(foreign == 0u);
        BOOST_TEST(wrong_coord == 0u);
        BOOST_TEST(wrong_label == 0u);
        BOOST_TEST(wrong_weight == 0u);
        least = std::min(least, double(checked) / double(out.voxels()));
    }
    return least;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(augmentation)

BOOST_AUTO_TEST_CASE(flip_is_the_naive_index_permutation) {
    for (const auto& ext : {std::vector<std::size_t>{7, 5}, std::vector<std::size_t>{4, 6, 3}}) {
        const auto img = random_image<float>(2, ext, 1);
        for (std::size_t a = 0; a < ext.size(); ++a) BOOST_TEST(same_values(flip(img, a), naive_flip(img, a)));
    }
}

BOOST_AUTO_TEST_CASE(rot90_is_numpy_rot90) {
    const auto img2 = random_image<std::int64_t>(2, {5, 8}, 2, 0, 100);
    for (int k = -1; k <= 4; ++k) {
        BOOST_TEST(same_values(rot90(img2, k, 0, 1), naive_rot90(img2, k, 0, 1)));
        BOOST_TEST(same_values(rot90(img2, k, 1, 0), naive_rot90(img2, k, 1, 0)));
    }
    // A hand-checked case: numpy.rot90([[1, 2, 3], [4, 5, 6]]) == [[3, 6], [2, 5], [1, 4]].
    image<int> m(1, {2, 3});
    m.values = {1, 2, 3, 4, 5, 6};
    const auto r = rot90(m, 1, 0, 1);
    BOOST_TEST((r.extents == std::vector<std::size_t>{3, 2}));
    BOOST_TEST((r.values == std::vector<int>{3, 6, 2, 5, 1, 4}));
    const auto img3 = random_image<float>(1, {3, 4, 5}, 3);
    for (auto [a, b] : {std::pair{0, 1}, std::pair{0, 2}, std::pair{1, 2}, std::pair{2, 0}})
        for (int k = 0; k < 4; ++k)
            BOOST_TEST(same_values(rot90(img3, k, std::size_t(a), std::size_t(b)),
                                   naive_rot90(img3, k, std::size_t(a), std::size_t(b))));
}

// The pipeline's flips and quarter turns, as drawn, equal the naive
// permutations in the documented order (turn, then flip), exactly for the
// cubic-interpolated image and for the labels.
BOOST_AUTO_TEST_CASE(drawn_flips_and_quarter_turns_are_exact_permutations) {
    augment_options o;
    o.p_flip = 0.5;
    o.p_rot90 = 0.75;
    std::set<int> ks;
    for (const auto& ext : {std::vector<std::size_t>{6, 6}, std::vector<std::size_t>{6, 9}, std::vector<std::size_t>{3, 5, 5}}) {
        const auto img = random_image<double>(2, ext, 4);
        const auto lab = block_labels(ext, 5);
        for (std::uint64_t seed = 0; seed < 24; ++seed) {
            image<double> out;
            image<std::int64_t> lab_out;
            const auto t = augment(img, lab, out, lab_out, o, seed);
            auto expect = naive_rot90(img, t.rot90_k, t.rot90_axes[0], t.rot90_axes[1]);
            auto expect_lab = naive_rot90(lab, t.rot90_k, t.rot90_axes[0], t.rot90_axes[1]);
            for (std::size_t a = 0; a < ext.size(); ++a)
                if (t.flip[a]) {
                    expect = naive_flip(expect, a);
                    expect_lab = naive_flip(expect_lab, a);
                }
            BOOST_TEST(same_values(out, expect));
            BOOST_TEST(same_values(lab_out, expect_lab));
            if (ext[ext.size() - 2] != ext.back()) BOOST_TEST((t.rot90_k == 0 || t.rot90_k == 2));
            ks.insert(t.rot90_k);
        }
    }
    BOOST_TEST(ks.size() == 4u);  // every quarter turn was drawn
}

BOOST_AUTO_TEST_CASE(zero_rotation_unit_scale_zero_sigma_are_the_identity) {
    for (const auto& ext : {std::vector<std::size_t>{13, 17}, std::vector<std::size_t>{6, 7, 9}}) {
        auto img = random_image<double>(2, ext, 6);
        img.geom.spacing.assign(ext.size(), 0.7);
        img.geom.spacing[0] = 2.3;
        const auto lab = block_labels(ext, 8);
        const std::size_t R = ext.size();
        transform_params t;
        t.rotation = R == 2 ? plane_rotation(2, 0, 1, 0.0) : axis_rotation({0.3, -1, 0.5}, 0.0);
        t.scale.assign(R, 1.0);
        t.displacement = elastic_field(ext, 0.0, 3, 11);
        BOOST_TEST(t.geometric());
        image<double> out;
        image<std::int64_t> lab_out;
        apply_transform(t, img, lab, out, lab_out);
        BOOST_TEST(same_values(out, img));
        BOOST_TEST(same_values(lab_out, lab));
        // The same through the options.
        augment_options o;
        o.p_rotation = o.p_scale = o.p_elastic = 1;
        o.max_rotation_deg = 0;
        o.elastic_sigma = 0;
        augment(img, lab, out, lab_out, o, 3);
        BOOST_TEST(same_values(out, img));
        BOOST_TEST(same_values(lab_out, lab));
        o.elastic = elastic_kind::dense;
        o.dense_magnitude = 0;
        augment(img, lab, out, lab_out, o, 4);
        BOOST_TEST(same_values(out, img));
    }
}

BOOST_AUTO_TEST_CASE(rotation_by_90_degrees_is_rot90) {
    const double quarter = std::numbers::pi / 2;
    const auto img2 = random_image<double>(1, {12, 12}, 9);
    transform_params t;
    t.rotation = plane_rotation(2, 0, 1, quarter);
    image<double> out;
    warp(img2, sampling_map(t, img2.extents), interpolation::cubic, out);
    const auto ref2 = rot90(img2, 1, 0, 1);
    for (std::size_t i = 0; i < out.values.size(); ++i) BOOST_TEST(out.values[i] == ref2.values[i], boost::test_tools::tolerance(1e-9));

    const auto img3 = random_image<double>(1, {8, 8, 8}, 10);
    // About axis k: the plane of the other two axes, in increasing order.
    const std::array<std::array<std::size_t, 2>, 3> planes{{{1, 2}, {0, 2}, {0, 1}}};
    for (std::size_t k = 0; k < 3; ++k) {
        augment_options o;
        o.p_rotation = 1;
        o.rotation_axis = int(k);
        o.max_rotation_deg = 90;
        // Find a drawn angle, then rotate by exactly 90 degrees about the same axis.
        const auto drawn = sample_transform(img3.extents, {}, o, 1);
        BOOST_TEST(drawn.rotation.size() == 9u);
        t.rotation = plane_rotation(3, planes[k][0], planes[k][1], quarter);
        warp(img3, sampling_map(t, img3.extents), interpolation::cubic, out);
        const auto ref3 = rot90(img3, 1, planes[k][0], planes[k][1]);
        double worst = 0;
        for (std::size_t i = 0; i < out.values.size(); ++i) worst = std::max(worst, std::abs(out.values[i] - ref3.values[i]));
        BOOST_TEST(worst < 1e-9);
    }
    // Rodrigues about e0 is the plane rotation of axes (1, 2); the matrix is orthonormal.
    const auto a = axis_rotation({2, 0, 0}, 0.7), b = plane_rotation(3, 1, 2, 0.7);
    for (std::size_t i = 0; i < 9; ++i) BOOST_TEST(a[i] == b[i], boost::test_tools::tolerance(1e-12));
    const auto m = axis_rotation({0.2, -0.5, 0.9}, 1.1);
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 3; ++j) {
            double d = 0;
            for (std::size_t k = 0; k < 3; ++k) d += m[k * 3 + i] * m[k * 3 + j];
            BOOST_TEST(std::abs(d - (i == j)) < 1e-12);
        }
}

// With anisotropic spacing a rotation preserves physical lengths and turns
// physical vectors by the angle.
BOOST_AUTO_TEST_CASE(rotation_acts_in_physical_space) {
    const std::vector<std::size_t> ext{30, 40};
    const std::vector<double> h{2.5, 0.8};
    const double theta = 0.4;
    transform_params t;
    t.rotation = plane_rotation(2, 0, 1, theta);
    const sampling_map map(t, ext, h);
    lcg r(12);
    for (int n = 0; n < 50; ++n) {
        const std::vector<std::size_t> p{r.below(30), r.below(40)};
        const auto x = map.source(p);
        const double c0 = 14.5, c1 = 19.5;
        const double P0 = (double(p[0]) - c0) * h[0], P1 = (double(p[1]) - c1) * h[1];
        const double X0 = (x[0] - c0) * h[0], X1 = (x[1] - c1) * h[1];
        BOOST_TEST(std::hypot(P0, P1) == std::hypot(X0, X1), boost::test_tools::tolerance(1e-9));
        if (std::hypot(P0, P1) < 1) continue;
        double turn = std::atan2(P1, P0) - std::atan2(X1, X0);
        turn = std::remainder(turn, 2 * std::numbers::pi);
        BOOST_TEST(turn == theta, boost::test_tools::tolerance(1e-9));
    }
    // Scaling by 2 about the centre.
    transform_params s;
    s.scale = {2, 2};
    const sampling_map zoom(s, ext);
    const auto x = zoom.source({4, 33});
    BOOST_TEST(x[0] == 14.5 + (4 - 14.5) / 2);
    BOOST_TEST(x[1] == 19.5 + (33 - 19.5) / 2);
}

BOOST_AUTO_TEST_CASE(image_and_labels_stay_aligned_2d) {
    const std::vector<std::size_t> square{64, 64}, oblong{48, 72};
    augment_options elastic;
    elastic.p_elastic = 1;
    augment_options dense = elastic;
    dense.elastic = elastic_kind::dense;
    dense.dense_magnitude = 3;
    dense.dense_smoothing = 5;
    augment_options flips;
    flips.p_flip = 0.5;
    augment_options turns;
    turns.p_rot90 = 1;
    augment_options rotation;
    rotation.p_rotation = 1;
    rotation.max_rotation_deg = 40;
    augment_options scale;
    scale.p_scale = 1;
    scale.scale_min = 0.8;
    scale.scale_max = 1.3;
    scale.anisotropic_scale = true;
    augment_options all = unet_2d_options();
    all.p_rotation = 1;
    all.max_rotation_deg = 30;
    all.p_scale = 1;
    all.scale_min = 0.9;
    all.scale_max = 1.2;
    for (const auto* o : {&elastic, &dense, &flips, &turns, &rotation, &scale, &all})
        for (const auto& ext : {square, oblong}) {
            const double covered = check_alignment(*o, ext, 6);
            BOOST_TEST_MESSAGE("2D alignment: checked fraction " << covered);
            BOOST_TEST(covered > 0.25);
        }
    // Anisotropic spacing changes the rotation, not the alignment.
    BOOST_TEST(check_alignment(all, oblong, 4, {1.0, 0.6}) > 0.25);
}

BOOST_AUTO_TEST_CASE(image_and_labels_stay_aligned_3d) {
    const std::vector<std::size_t> ext{20, 26, 26};
    augment_options elastic;
    elastic.p_elastic = 1;
    elastic.elastic_sigma = 4;
    augment_options dense = elastic;
    dense.elastic = elastic_kind::dense;
    dense.dense_magnitude = 2;
    dense.dense_smoothing = 4;
    augment_options flips;
    flips.p_flip = 0.5;
    augment_options turns;
    turns.p_rot90 = 1;
    augment_options rotation;
    rotation.p_rotation = 1;
    rotation.max_rotation_deg = 30;
    augment_options about_axis = rotation;
    about_axis.rotation_axis = 0;
    augment_options scale;
    scale.p_scale = 1;
    scale.scale_min = 0.8;
    scale.scale_max = 1.25;
    augment_options all = unet_3d_options();
    all.dense_magnitude = 2;
    all.dense_smoothing = 4;
    all.p_rot90 = 0.75;
    all.p_gamma = all.p_contrast = all.p_brightness = 0;  // the image must keep its coordinates
    for (const auto* o : {&elastic, &dense, &flips, &turns, &rotation, &about_axis, &scale, &all}) {
        const double covered = check_alignment(*o, ext, 3);
        BOOST_TEST_MESSAGE("3D alignment: checked fraction " << covered);
        BOOST_TEST(covered > 0.2);
    }
    BOOST_TEST(check_alignment(all, ext, 2, {3.0, 1.0, 1.0}) > 0.2);
}

BOOST_AUTO_TEST_CASE(same_seed_same_result_at_any_thread_count) {
    const std::vector<std::size_t> ext{24, 40, 36};
    const auto img = random_image<float>(2, ext, 13, 0, 10);
    const auto lab = block_labels(ext, 14);
    const auto w = random_image<float>(1, ext, 15);
    augment_options o = unet_3d_options();
    o.dense_smoothing = 4;
    o.p_gamma = o.p_contrast = o.p_brightness = o.p_noise = 1;
    o.noise_sigma = 0.3;
    o.p_rot90 = 1;
    struct result {
        image<float> img, w;
        image<std::int64_t> lab;
    };
    const auto run = [&](int threads, std::uint64_t seed) {
        result r;
        tbb::task_arena arena(threads);
        arena.execute([&] { augment(img, lab, w, r.img, r.lab, r.w, o, seed); });
        return r;
    };
    const auto a = run(1, 42), b = run(2, 42), c = run(2, 42), d = run(2, 43);
    BOOST_TEST(same_values(a.img, b.img));
    BOOST_TEST(same_values(a.lab, b.lab));
    BOOST_TEST(same_values(a.w, b.w));
    BOOST_TEST(same_values(b.img, c.img));
    BOOST_TEST(!same_values(b.img, d.img));
    BOOST_TEST(!same_values(b.img, img));
    // The 2D grid deformation too.
    const auto img2 = random_image<double>(1, {96, 80}, 16);
    const auto lab2 = block_labels({96, 80}, 17);
    image<double> o1, o2;
    image<std::int64_t> l1, l2;
    tbb::task_arena one(1), two(2);
    one.execute([&] { augment(img2, lab2, o1, l1, unet_2d_options(), 5); });
    two.execute([&] { augment(img2, lab2, o2, l2, unet_2d_options(), 5); });
    BOOST_TEST(same_values(o1, o2));
    BOOST_TEST(same_values(l1, l2));
    // In place: the same result.
    auto in_place = img2;
    auto in_place_lab = lab2;
    augment(in_place, in_place_lab, in_place, in_place_lab, unet_2d_options(), 5);
    BOOST_TEST(same_values(in_place, o1));
    BOOST_TEST(same_values(in_place_lab, l1));
}

// Nodes of a 3x3 grid on 129x129 sit on voxels 0, 64, 128, where the field
// equals the node vectors: their components are N(0, sigma^2).
BOOST_AUTO_TEST_CASE(grid_displacements_have_standard_deviation_sigma) {
    const double sigma = 10;
    double sum = 0, sum2 = 0;
    std::size_t n = 0;
    for (std::uint64_t seed = 0; seed < 300; ++seed) {
        const auto f = elastic_field({129, 129}, sigma, 3, seed);
        BOOST_REQUIRE(f.channels == 2u);
        for (std::size_t c = 0; c < 2; ++c)
            for (std::size_t i : {0u, 64u, 128u})
                for (std::size_t j : {0u, 64u, 128u}) {
                    const double v = f.channel(c)[i * 129 + j];
                    sum += v;
                    sum2 += v * v;
                    ++n;
                }
    }
    const double mean = sum / double(n), sd = std::sqrt(sum2 / double(n) - mean * mean);
    BOOST_TEST_MESSAGE("grid displacement: mean " << mean << ", sd " << sd << " over " << n);
    BOOST_TEST(std::abs(mean) < 0.5);
    BOOST_TEST(sd == sigma, boost::test_tools::tolerance(0.04));
}

// The dense field: per-component standard deviation `magnitude` away from the
// borders, and the correlation of neighbours that a Gaussian of the smoothing
// sigma gives white noise.
BOOST_AUTO_TEST_CASE(dense_field_statistics) {
    const double m = 3, s = 3;
    const std::size_t n = 48, margin = 10;
    double sum2 = 0, diff2 = 0;
    std::size_t count = 0;
    for (std::uint64_t seed = 0; seed < 6; ++seed) {
        const auto f = dense_elastic_field({n, n, n}, m, s, seed);
        BOOST_REQUIRE(f.channels == 3u);
        for (std::size_t c = 0; c < 3; ++c)
            for (std::size_t i = margin; i < n - margin; ++i)
                for (std::size_t j = margin; j < n - margin; ++j)
                    for (std::size_t k = margin; k < n - margin; ++k) {
                        const std::size_t at = (i * n + j) * n + k;
                        const double v = f.channel(c)[at], next = f.channel(c)[at + 1];
                        sum2 += v * v;
                        diff2 += (next - v) * (next - v);
                        ++count;
                    }
    }
    const double sd = std::sqrt(sum2 / double(count)), dsd = std::sqrt(diff2 / double(count));
    // Correlation of neighbours: sum g_k g_{k+1} / sum g_k^2 of the kernel.
    const int r = int(std::ceil(3 * s));
    double g2 = 0, gg = 0;
    for (int k = -r; k <= r; ++k) {
        const double a = std::exp(-k * k / (2 * s * s));
        g2 += a * a;
        if (k < r) gg += a * std::exp(-(k + 1) * (k + 1) / (2 * s * s));
    }
    const double expected_dsd = m * std::sqrt(2 * (1 - gg / g2));
    BOOST_TEST_MESSAGE("dense field: sd " << sd << ", neighbour difference sd " << dsd << " (expected " << expected_dsd << ")");
    BOOST_TEST(sd == m, boost::test_tools::tolerance(0.1));
    BOOST_TEST(dsd == expected_dsd, boost::test_tools::tolerance(0.1));
}

// Node values that are a quadratic of the node coordinates are reproduced
// exactly everywhere, the border included (Keys' boundary condition).
BOOST_AUTO_TEST_CASE(grid_interpolation_reproduces_quadratics) {
    for (std::size_t g : {3u, 4u, 6u}) {
        const std::vector<std::size_t> ext{37, 50};
        const auto f = [](double u, double v) { return 1.5 - 0.7 * u + 0.4 * v + 0.3 * u * u - 0.25 * u * v + 0.2 * v * v; };
        image<double> nodes(2, {g, g + 1});
        for (std::size_t i = 0; i < g; ++i)
            for (std::size_t j = 0; j <= g; ++j) {
                nodes.channel(0)[i * (g + 1) + j] = f(double(i), double(j));
                nodes.channel(1)[i * (g + 1) + j] = -2 * f(double(j), double(i));
            }
        const auto field = interpolate_grid(nodes, ext);
        double worst = 0;
        for (std::size_t p = 0; p < ext[0]; ++p)
            for (std::size_t q = 0; q < ext[1]; ++q) {
                const double u = double(p) * double(g - 1) / double(ext[0] - 1), v = double(q) * double(g) / double(ext[1] - 1);
                worst = std::max(worst, std::abs(double(field.channel(0)[p * ext[1] + q]) - f(u, v)));
                worst = std::max(worst, std::abs(double(field.channel(1)[p * ext[1] + q]) + 2 * f(v, u)));
            }
        BOOST_TEST(worst < 1e-4);
    }
    // Two nodes: linear values, reproduced.
    image<double> two(1, {2, 2});
    two.values = {1, 3, 5, 7};
    const auto lin = interpolate_grid(two, {5, 3});
    for (std::size_t p = 0; p < 5; ++p)
        for (std::size_t q = 0; q < 3; ++q) BOOST_TEST(lin.values[p * 3 + q] == float(1 + p + q), boost::test_tools::tolerance(1e-6f));
}

// Cubic convolution reproduces quadratics, linear interpolation linear
// functions, where no tap is mirrored.
BOOST_AUTO_TEST_CASE(interpolation_is_exact_for_low_degree_polynomials) {
    const auto quad2 = [](const double* x) { return 5 + 2 * x[0] - x[1] + 0.3 * x[0] * x[0] - 0.2 * x[0] * x[1] + 0.1 * x[1] * x[1]; };
    const auto quad3 = [](const double* x) {
        return 1 - x[0] + 0.5 * x[2] + 0.05 * x[0] * x[0] + 0.1 * x[1] * x[2] - 0.07 * x[0] * x[2] + 0.02 * x[2] * x[2] + 0.03 * x[1] * x[1];
    };
    for (const auto& ext : {std::vector<std::size_t>{40, 36}, std::vector<std::size_t>{18, 20, 22}}) {
        const std::size_t R = ext.size();
        const auto f = [&](const double* x) { return R == 2 ? quad2(x) : quad3(x); };
        const auto lin = [&](const double* x) { return 3 - 0.5 * x[0] + 0.25 * x[R - 1]; };
        image<double> q(1, ext), l(1, ext);
        for (std::size_t i = 0; i < q.voxels(); ++i) {
            const auto p = unravel(i, ext);
            double x[3];
            for (std::size_t a = 0; a < R; ++a) x[a] = double(p[a]);
            q.values[i] = f(x);
            l.values[i] = lin(x);
        }
        transform_params t;
        t.rotation = R == 2 ? plane_rotation(2, 0, 1, 0.5) : axis_rotation({1, 2, -1}, 0.5);
        t.scale.assign(R, 1.15);
        t.displacement = elastic_field(ext, 2, 3, 1);
        const sampling_map map(t, ext);
        image<double> qo, lo, no;
        warp(q, map, interpolation::cubic, qo);
        warp(l, map, interpolation::linear, lo);
        warp(l, map, interpolation::nearest, no);
        std::size_t cubic_checked = 0, linear_checked = 0;
        double cubic_worst = 0, linear_worst = 0, nearest_worst = 0;
        for (std::size_t i = 0; i < q.voxels(); ++i) {
            const auto p = unravel(i, ext);
            const auto xs = map.source(p);
            const double* x = xs.data();
            bool cubic_inside = true, linear_inside = true;
            std::vector<std::size_t> r(R);
            for (std::size_t a = 0; a < R; ++a) {
                cubic_inside = cubic_inside && x[a] >= 1 && x[a] < double(ext[a]) - 2;
                linear_inside = linear_inside && x[a] >= 0 && x[a] <= double(ext[a]) - 1;
                r[a] = std::size_t(std::floor(x[a] + 0.5));
            }
            if (cubic_inside) {
                ++cubic_checked;
                cubic_worst = std::max(cubic_worst, std::abs(qo.values[i] - f(x)));
            }
            if (linear_inside) {
                ++linear_checked;
                linear_worst = std::max(linear_worst, std::abs(lo.values[i] - lin(x)));
                nearest_worst = std::max(nearest_worst, std::abs(no.values[i] - l.values[ravel(r, ext)]));
            }
        }
        BOOST_TEST(cubic_checked > q.voxels() / 3);
        BOOST_TEST(linear_checked > q.voxels() / 3);
        BOOST_TEST(cubic_worst < 1e-9);
        BOOST_TEST(linear_worst < 1e-9);
        BOOST_TEST(nearest_worst == 0.0);
    }
    // Mirror boundary: sampling at -1.25 reads the mirrored -> 1.25 (linear weights on 1 and 2).
    image<double> row(1, {1, 5});
    row.values = {0, 10, 20, 40, 80};
    transform_params shift;
    shift.displacement = image<float>(2, {1, 5});
    for (std::size_t i = 0; i < 5; ++i) shift.displacement.channel(1)[i] = -float(i) - 1.25f;
    image<double> out;
    warp(row, sampling_map(shift, row.extents), interpolation::linear, out);
    BOOST_TEST(out.values[0] == 12.5);
}

BOOST_AUTO_TEST_CASE(intensity_transforms_follow_their_formulas) {
    auto img = random_image<double>(2, {30, 20}, 18, 2, 7);
    const auto orig = img;
    const std::size_t V = img.voxels();
    std::vector<double> lo(2), hi(2), mean(2);
    for (std::size_t c = 0; c < 2; ++c) {
        const auto* v = orig.channel(c);
        lo[c] = *std::min_element(v, v + V);
        hi[c] = *std::max_element(v, v + V);
        long double s = 0;
        for (std::size_t i = 0; i < V; ++i) s += v[i];
        mean[c] = double(s / V);
    }
    adjust_gamma(img, 1.7);
    for (std::size_t c = 0; c < 2; ++c)
        for (std::size_t i = 0; i < V; ++i) {
            const double e = lo[c] + (hi[c] - lo[c]) * std::pow((orig.channel(c)[i] - lo[c]) / (hi[c] - lo[c]), 1.7);
            BOOST_TEST(img.channel(c)[i] == e, boost::test_tools::tolerance(1e-12));
        }
    img = orig;
    adjust_contrast_brightness(img, 1.3, -0.4);
    for (std::size_t c = 0; c < 2; ++c)
        for (std::size_t i = 0; i < V; ++i)
            BOOST_TEST(img.channel(c)[i] == mean[c] + 1.3 * (orig.channel(c)[i] - mean[c]) - 0.4,
                       boost::test_tools::tolerance(1e-12));

    // Integer images: rounded and clamped.
    image<std::uint8_t> u8(1, {16, 16});
    for (std::size_t i = 0; i < 256; ++i) u8.values[i] = std::uint8_t(i);
    auto g = u8;
    adjust_gamma(g, 2.0);
    for (std::size_t i = 0; i < 256; ++i) BOOST_TEST(int(g.values[i]) == int(std::llround(255 * std::pow(i / 255.0, 2.0))));
    auto c3 = u8;
    adjust_contrast_brightness(c3, 3.0, 10.0);
    for (std::size_t i = 0; i < 256; ++i) {
        const double e = 127.5 + 3 * (double(i) - 127.5) + 10;
        BOOST_TEST(int(c3.values[i]) == int(std::clamp<double>(std::llround(e), 0, 255)));
    }

    // Noise: the standard deviation asked for, the same for the same seed.
    image<double> zero(1, {256, 256}), z2(1, {256, 256}), z3(1, {256, 256});
    add_gaussian_noise(zero, 0.5, 7);
    add_gaussian_noise(z2, 0.5, 7);
    add_gaussian_noise(z3, 0.5, 8);
    double s = 0, s2 = 0;
    for (auto v : zero.values) {
        s += v;
        s2 += v * v;
    }
    const double m = s / 65536, sd = std::sqrt(s2 / 65536 - m * m);
    BOOST_TEST(std::abs(m) < 0.01);
    BOOST_TEST(sd == 0.5, boost::test_tools::tolerance(0.02));
    BOOST_TEST(zero.values == z2.values);
    BOOST_TEST(zero.values != z3.values);

    // In the pipeline: gamma, then contrast and brightness, with the drawn values.
    augment_options o;
    o.p_gamma = o.p_contrast = o.p_brightness = 1;
    o.gamma_min = 0.5;
    o.gamma_max = 2;
    o.contrast = 0.3;
    o.brightness = 1;
    image<double> out;
    image<std::int64_t> lab(1, {30, 20}), lab_out;
    const auto t = augment(orig, lab, out, lab_out, o, 99);
    BOOST_TEST(t.gamma != 1.0);
    BOOST_TEST(t.gamma >= 0.5);
    BOOST_TEST(t.gamma <= 2.0);
    BOOST_TEST(std::abs(t.contrast - 1) <= 0.3);
    BOOST_TEST(std::abs(t.brightness) <= 1.0);
    for (std::size_t c = 0; c < 2; ++c) {
        std::vector<double> gv(V);
        long double gs = 0;
        for (std::size_t i = 0; i < V; ++i) {
            gv[i] = lo[c] + (hi[c] - lo[c]) * std::pow((orig.channel(c)[i] - lo[c]) / (hi[c] - lo[c]), t.gamma);
            gs += gv[i];
        }
        const double gm = double(gs / V);
        for (std::size_t i = 0; i < V; ++i)
            BOOST_TEST(out.channel(c)[i] == gm + t.contrast * (gv[i] - gm) + t.brightness, boost::test_tools::tolerance(1e-10));
    }
}

BOOST_AUTO_TEST_CASE(labels_never_take_new_values) {
    const std::vector<std::size_t> ext{40, 44};
    image<std::int64_t> lab(1, ext);
    lcg r(19);
    const std::vector<std::int64_t> palette{-1, 0, 3, 255, 1000000000000};
    for (auto& v : lab.values) v = palette[r.below(palette.size())];
    const auto img = random_image<float>(1, ext, 20);
    augment_options o = unet_2d_options();
    o.p_rotation = o.p_scale = 1;
    o.max_rotation_deg = 180;
    o.scale_min = 0.5;
    o.scale_max = 2;
    const std::set<std::int64_t> allowed(palette.begin(), palette.end());
    for (std::uint64_t seed = 0; seed < 10; ++seed) {
        image<float> out;
        image<std::int64_t> lab_out;
        augment(img, lab, out, lab_out, o, seed);
        std::size_t foreign = 0;
        for (auto v : lab_out.values) foreign += !allowed.count(v);
        BOOST_TEST(foreign == 0u);
    }
}

BOOST_AUTO_TEST_CASE(bad_input_is_an_error) {
    const auto img = random_image<float>(1, {8, 8}, 21);
    image<std::int64_t> lab(1, {8, 8}), lab_out, wrong(1, {8, 9});
    image<float> out;
    augment_options o;
    o.p_flip = 1.5;
    BOOST_CHECK_THROW(augment(img, lab, out, lab_out, o, 0), ctseg::error);
    o = {};
    o.p_elastic = 1;
    o.elastic_grid = 1;
    BOOST_CHECK_THROW(augment(img, lab, out, lab_out, o, 0), ctseg::error);
    o = {};
    o.p_scale = 1;
    o.scale_min = 0;
    BOOST_CHECK_THROW(augment(img, lab, out, lab_out, o, 0), ctseg::error);
    o = {};
    o.p_gamma = 1;
    o.gamma_min = 2;
    o.gamma_max = 1;
    BOOST_CHECK_THROW(augment(img, lab, out, lab_out, o, 0), ctseg::error);
    BOOST_CHECK_THROW(augment(img, wrong, out, lab_out, augment_options{}, 0), ctseg::error);
    const image<float> four(1, {2, 2, 2, 2});
    image<std::int64_t> lab4(1, {2, 2, 2, 2});
    BOOST_CHECK_THROW(augment(four, lab4, out, lab_out, augment_options{}, 0), ctseg::error);
    transform_params t;
    t.rot90_k = 1;
    BOOST_CHECK_THROW(sampling_map(t, {8, 9}), ctseg::error);  // would change the extents
    t.rot90_k = 0;
    t.displacement = image<float>(2, {8, 9});
    BOOST_CHECK_THROW(sampling_map(t, {8, 8}), ctseg::error);
    auto broken = img;
    broken.values.pop_back();
    BOOST_CHECK_THROW(adjust_gamma(broken, 2.0), ctseg::error);
    BOOST_CHECK_THROW(adjust_gamma(out, -1.0), ctseg::error);
    BOOST_CHECK_THROW(flip(img, 2), ctseg::error);
    BOOST_CHECK_THROW(rot90(img, 1, 0, 0), ctseg::error);
    BOOST_CHECK_THROW(dense_elastic_field({8, 8}, 1, 0, 0), ctseg::error);
    BOOST_CHECK_THROW(image<float>(interpolate_grid(image<double>(1, {1, 3}), {8, 8})), ctseg::error);
    try {
        o = {};
        o.p_noise = -0.5;
        augment(img, lab, out, lab_out, o, 0);
        BOOST_TEST(false);
    } catch (const ctseg::error& e) {
        BOOST_TEST(std::string(e.what()) == "augment: option p_noise = -0.500000, expected in [0, 1]");
    }
}

// Generous bounds on a shared machine; the typical times are printed.
BOOST_AUTO_TEST_CASE(speed) {
    using clock = std::chrono::steady_clock;
    const auto img = random_image<float>(1, {512, 512}, 22);
    const auto lab = block_labels({512, 512}, 23);
    image<float> out;
    image<std::int64_t> lab_out;
    augment(img, lab, out, lab_out, unet_2d_options(), 0);  // warm up the thread pool
    auto t0 = clock::now();
    augment(img, lab, out, lab_out, unet_2d_options(), 1);
    const double ms2 = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    const auto vol = random_image<float>(1, {128, 128, 128}, 24);
    image<std::int64_t> vlab(1, {128, 128, 128}), vlab_out;
    augment_options o = unet_3d_options();
    t0 = clock::now();
    augment(vol, vlab, out, vlab_out, o, 2);
    const double ms3 = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    BOOST_TEST_MESSAGE("512x512 grid elastic + flips + turns: " << ms2 << " ms; 128^3 dense elastic + rotation + scale + "
                                                                   "gray values: " << ms3 << " ms");
    BOOST_TEST(ms2 < 1000.0);
    BOOST_TEST(ms3 < 10000.0);
}

BOOST_AUTO_TEST_SUITE_END()
