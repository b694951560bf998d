// Sparse labels: kept slices against a naive per-voxel rule, masks, errors,
// and the sparse labels through augmentation and the loss's ignore_index.
#include "ctseg/data/sparse.hpp"

#include <cmath>
#include <set>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "ctseg/data/augment.hpp"
#include "ctseg/train/losses.hpp"
#include "util.hpp"

using namespace ctseg::data;
using augment_test::lcg;
using augment_test::unravel;

namespace {

image<std::int64_t> random_labels(std::size_t channels, const std::vector<std::size_t>& ext, std::uint64_t seed) {
    image<std::int64_t> lab(channels, ext);
    lcg r(seed);
    for (auto& v : lab.values) v = std::int64_t(r.below(3));
    return lab;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sparse_annotation)

BOOST_AUTO_TEST_CASE(every_kth_slice_lists_the_slices) {
    BOOST_TEST((every_kth_slice(10, 3) == std::vector<std::size_t>{0, 3, 6, 9}));
    BOOST_TEST((every_kth_slice(10, 4, 2) == std::vector<std::size_t>{2, 6}));
    BOOST_TEST((every_kth_slice(5, 1) == std::vector<std::size_t>{0, 1, 2, 3, 4}));
    BOOST_CHECK_THROW(every_kth_slice(10, 0), ctseg::error);
    BOOST_CHECK_THROW(every_kth_slice(10, 2, 10), ctseg::error);
}

BOOST_AUTO_TEST_CASE(kept_voxels_lie_on_a_chosen_slice) {
    const std::vector<std::size_t> ext{9, 7, 8};
    auto lab = random_labels(2, ext, 1);
    lab.geom.spacing = {2, 1, 1};
    const std::vector<slice_set> sets{{0, {1, 4, 7}}, {2, {5}}};
    const auto sparse = sparse_labels(lab, sets, 255);
    BOOST_TEST(sparse.geom.spacing == lab.geom.spacing);
    const std::size_t V = lab.voxels();
    std::size_t kept = 0;
    for (std::size_t i = 0; i < V; ++i) {
        const auto p = unravel(i, ext);
        const bool on = p[0] == 1 || p[0] == 4 || p[0] == 7 || p[2] == 5;
        kept += on;
        for (std::size_t c = 0; c < 2; ++c) BOOST_TEST(sparse.channel(c)[i] == (on ? lab.channel(c)[i] : 255));
    }
    // 3 slices of 7x8 along axis 0, plus slice 5 of axis 2 outside them: 6 x 7.
    BOOST_TEST(kept == 3u * 56 + 6 * 7);
    const auto mask = annotated_mask(sparse, 255);
    std::size_t marked = 0;
    for (std::size_t i = 0; i < mask.values.size(); ++i) {
        BOOST_TEST(mask.values[i] == (sparse.values[i] != 255 ? 1 : 0));
        marked += mask.values[i];
    }
    BOOST_TEST(marked == 2 * kept);
    // One axis, every other slice, default ignore -1.
    const auto single = sparse_labels(lab, 1, every_kth_slice(7, 2, 1));
    for (std::size_t i = 0; i < V; ++i) {
        const auto p = unravel(i, ext);
        BOOST_TEST(single.values[i] == (p[1] % 2 == 1 ? lab.values[i] : -1));
    }
}

BOOST_AUTO_TEST_CASE(bad_slices_are_an_error) {
    const auto lab = random_labels(1, {4, 5}, 2);
    BOOST_CHECK_THROW(sparse_labels(lab, 2, {0}), ctseg::error);
    BOOST_CHECK_THROW(sparse_labels(lab, 1, {5}), ctseg::error);
    auto broken = lab;
    broken.values.pop_back();
    BOOST_CHECK_THROW(sparse_labels(broken, 0, {0}), ctseg::error);
    BOOST_CHECK_THROW(annotated_mask(broken), ctseg::error);
}

// Through augmentation the ignore label stays the ignore label, and the loss
// with ignore_index averages cross-entropy over the annotated voxels only.
BOOST_AUTO_TEST_CASE(sparse_labels_through_augmentation_and_the_loss) {
    const std::vector<std::size_t> ext{10, 16, 16};
    const auto dense = random_labels(1, ext, 3);
    const auto sparse = sparse_labels(dense, 0, {2, 7});
    image<float> img(1, ext);
    for (std::size_t i = 0; i < img.voxels(); ++i) img.values[i] = float(dense.values[i]);
    augment_options o = unet_3d_options();
    o.dense_smoothing = 3;
    image<float> img_out;
    image<std::int64_t> lab_out;
    augment(img, sparse, img_out, lab_out, o, 4);
    std::size_t annotated = 0;
    for (auto v : lab_out.values) {
        BOOST_TEST((v == -1 || (v >= 0 && v < 3)));
        annotated += v != -1;
    }
    BOOST_TEST(annotated > 0u);
    BOOST_TEST(annotated < lab_out.values.size());

    // logits: 3 classes x plane, arbitrary values.
    const std::size_t P = img.voxels();
    std::vector<double> logits(3 * P);
    lcg r(5);
    for (auto& z : logits) z = r.uniform() * 4 - 2;
    ctseg::train::loss_options<double> lo;
    lo.kind = ctseg::train::loss_kind::ce;
    lo.ignore_index = -1;
    const auto loss = ctseg::train::compute_loss(logits.data(), sparse.values.data(), {1, 3, P}, lo);
    double sum = 0;
    std::size_t n = 0;
    for (std::size_t i = 0; i < P; ++i) {
        if (sparse.values[i] == -1) continue;
        const double m = std::max({logits[i], logits[P + i], logits[2 * P + i]});
        const double lse = m + std::log(std::exp(logits[i] - m) + std::exp(logits[P + i] - m) + std::exp(logits[2 * P + i] - m));
        sum += lse - logits[std::size_t(sparse.values[i]) * P + i];
        ++n;
    }
    BOOST_TEST(n == 2u * 256);
    BOOST_TEST(loss.ce == sum / double(n), boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_SUITE_END()
