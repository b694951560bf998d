// Overlap-tile inference against one pass of the same weights over the whole
// mirrored image, mirroring against a naive reflection, the tile grid, the
// importance map, slice-wise prediction and bad input.
#define BOOST_TEST_MODULE data tiling
#include <boost/test/unit_test.hpp>

#include "error_text.hpp"

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "ctseg/data/tiling.hpp"
#include "ctseg/nets.hpp"

using namespace ctseg;
using data::image;

namespace {

// A 2-channel input: the valid U-Net of depth 2 maps 48 -> 8 (margin 20, pooling stride 4).
using net2d = nets::unet<2, 4, 2, false>;
using tile2d = bind<net2d, shape<2, 48, 48>>;
static_assert(std::is_same_v<tile2d::output_shape, shape<2, 8, 8>>);
static_assert(data::tile_geometry<tile2d>::margin == std::array<std::size_t, 2>{20, 20});
static_assert(data::tile_geometry<tile2d>::alignment == std::array<std::size_t, 2>{4, 4});
// The paper's U-Net: 572 -> 388, margin 92, pooling stride 16.
using paper = bind<nets::unet<2, 64, 4>, shape<1, 572, 572>>;
static_assert(data::tile_geometry<paper>::output == std::array<std::size_t, 2>{388, 388});
static_assert(data::tile_geometry<paper>::margin == std::array<std::size_t, 2>{92, 92});
static_assert(data::tile_geometry<paper>::alignment == std::array<std::size_t, 2>{16, 16});

// A tiny 3D U-Net of depth 1: 20 -> 4 (margin 8, pooling stride 2).
using net3d = nets::unet3d<2, 2, 1, false>;
using tile3d = bind<net3d, shape<1, 20, 20, 20>>;
static_assert(std::is_same_v<tile3d::output_shape, shape<2, 4, 4, 4>>);

// Reflection by walking: fold back at either end until inside.
std::size_t naive_reflect(long i, std::size_t n) {
    if (n == 1) return 0;
    const long last = long(n) - 1;
    while (i < 0 || i > last) {
        if (i < 0) i = -i;
        if (i > last) i = 2 * last - i;
    }
    return std::size_t(i);
}

// Mirror padding by the naive reflection, any rank.
image<float> naive_pad(const image<float>& in, const std::vector<std::size_t>& before, const std::vector<std::size_t>& after) {
    const std::size_t R = in.rank();
    std::vector<std::size_t> ext(R);
    for (std::size_t a = 0; a < R; ++a) ext[a] = in.extents[a] + before[a] + after[a];
    image<float> out(in.channels, ext);
    std::vector<std::size_t> idx(R, 0);
    for (std::size_t v = 0; v < out.voxels(); ++v) {
        std::size_t rest = v, src = 0, stride = 1;
        for (std::size_t a = R; a-- > 0;) {
            const std::size_t i = rest % ext[a];
            rest /= ext[a];
            src += naive_reflect(long(i) - long(before[a]), in.extents[a]) * stride;
            stride *= in.extents[a];
        }
        for (std::size_t c = 0; c < in.channels; ++c) out.channel(c)[v] = in.channel(c)[src];
    }
    return out;
}

image<float> random_image(std::size_t c, std::vector<std::size_t> ext, unsigned seed) {
    image<float> img(c, std::move(ext));
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    for (auto& x : img.values) x = nd(rng);
    return img;
}

// Reverses the axes set in `pattern` (bit a: spatial axis a) of every channel.
image<float> flip(const image<float>& in, unsigned pattern) {
    image<float> out = in;
    const std::size_t R = in.rank();
    for (std::size_t v = 0; v < in.voxels(); ++v) {
        std::size_t rest = v, src = 0, stride = 1;
        for (std::size_t a = R; a-- > 0;) {
            std::size_t i = rest % in.extents[a];
            rest /= in.extents[a];
            if ((pattern >> a) & 1u) i = in.extents[a] - 1 - i;
            src += i * stride;
            stride *= in.extents[a];
        }
        for (std::size_t c = 0; c < in.channels; ++c) out.channel(c)[v] = in.channel(c)[src];
    }
    return out;
}

// Softmax over channels of logits (C x ext), cropped to the first `keep` voxels per axis.
image<float> softmax_crop(const std::vector<float>& logits, std::size_t classes, const std::vector<std::size_t>& ext,
                          const std::vector<std::size_t>& keep) {
    image<float> full(classes, ext);
    full.values = logits;
    const std::size_t V = full.voxels();
    for (std::size_t v = 0; v < V; ++v) {
        double top = -1e300, sum = 0;
        for (std::size_t k = 0; k < classes; ++k) top = std::max(top, double(full.channel(k)[v]));
        for (std::size_t k = 0; k < classes; ++k) sum += std::exp(double(full.channel(k)[v]) - top);
        for (std::size_t k = 0; k < classes; ++k) full.channel(k)[v] = float(std::exp(double(full.channel(k)[v]) - top) / sum);
    }
    image<float> out(classes, keep);
    for (std::size_t v = 0; v < out.voxels(); ++v) {
        std::size_t rest = v, src = 0, stride = 1;
        for (std::size_t a = keep.size(); a-- > 0;) {
            src += (rest % keep[a]) * stride;
            rest /= keep[a];
            stride *= ext[a];
        }
        for (std::size_t k = 0; k < classes; ++k) out.channel(k)[v] = full.channel(k)[src];
    }
    return out;
}

// The reference: the network bound to the whole padded image (input `Whole`),
// run once on the image mirrored by `margin` before and by margin + (covered -
// extent) after, softmax, cropped; with `mirror`, the mean over all flips of the
// padded image, each flipped back.
template <class Whole, class TileNet>
image<float> whole_image_probabilities(TileNet& tile_net, const image<float>& img, std::size_t margin, bool mirror) {
    auto whole = std::make_unique<network<Whole>>();
    copy_state(tile_net, *whole);
    constexpr std::size_t R = Whole::rank, K = Whole::output_shape::channels;
    std::vector<std::size_t> before(R, margin), after(R), out_ext(R);
    for (std::size_t a = 0; a < R; ++a) {
        out_ext[a] = Whole::output_shape::spatial[a];
        after[a] = margin + out_ext[a] - img.extents[a];
        BOOST_REQUIRE_EQUAL(img.extents[a] + before[a] + after[a], Whole::input_shape::spatial[a]);
    }
    const image<float> padded = naive_pad(img, before, after);
    image<float> mean(K, img.extents, 0.0f);
    const unsigned flips = mirror ? 1u << R : 1u;
    for (unsigned f = 0; f < flips; ++f) {
        const image<float> in = flip(padded, f);
        std::vector<float> logits = whole->forward(std::span<const float>(in.values));
        image<float> out(K, out_ext);
        out.values = std::move(logits);
        out = flip(out, f);
        const image<float> p = softmax_crop(out.values, K, out_ext, img.extents);
        for (std::size_t i = 0; i < mean.values.size(); ++i) mean.values[i] += p.values[i] / float(flips);
    }
    return mean;
}

double max_diff(const image<float>& a, const image<float>& b) {
    BOOST_REQUIRE_EQUAL(a.channels, b.channels);
    BOOST_REQUIRE(a.extents == b.extents);
    double m = 0;
    for (std::size_t i = 0; i < a.values.size(); ++i) m = std::max(m, std::abs(double(a.values[i]) - double(b.values[i])));
    return m;
}

}  // namespace

BOOST_AUTO_TEST_CASE(mirror_index_reflects_without_repeating_the_edge) {
    // Hand-written: extent 4 extended is ... 2 1 0 | 0 1 2 3 | 2 1 0 1 ... without the repeated edge.
    const std::vector<std::pair<long, std::size_t>> hand{{-1, 1}, {-2, 2}, {-3, 3}, {-4, 2}, {-6, 0}, {-7, 1},
                                                         {4, 2},  {5, 1},  {6, 0},  {7, 1},  {9, 3}, {10, 2}};
    for (auto [i, want] : hand) BOOST_TEST(data::mirror_index(i, 4) == want, "i = " << i);
    for (std::size_t n = 1; n <= 7; ++n)
        for (long i = -40; i <= 40; ++i) BOOST_TEST(data::mirror_index(i, n) == naive_reflect(i, n), "n = " << n << ", i = " << i);
    BOOST_CHECK_THROW(data::mirror_index(0, 0), ctseg::error);
}

BOOST_AUTO_TEST_CASE(mirror_pad_matches_naive_reflection) {
    // Padding larger than the image: reflection repeats.
    const image<float> img = random_image(2, {3, 2}, 1);
    const image<float> a = data::mirror_pad(img, {5, 7}, {9, 4});
    const image<float> b = naive_pad(img, {5, 7}, {9, 4});
    BOOST_TEST(a.extents == (std::vector<std::size_t>{17, 13}), boost::test_tools::per_element());
    BOOST_TEST(max_diff(a, b) == 0.0);
    const image<float> vol = random_image(1, {2, 3, 4}, 2);
    BOOST_TEST(max_diff(data::mirror_pad(vol, {3, 1, 6}, {2, 5, 0}), naive_pad(vol, {3, 1, 6}, {2, 5, 0})) == 0.0);
}

BOOST_AUTO_TEST_CASE(tile_grid_covers_every_voxel) {
    for (std::size_t extent = 1; extent <= 70; ++extent)
        for (std::size_t tile : {1, 3, 4, 8, 13})
            for (double overlap : {0.0, 0.25, 0.5, 0.75, 0.9})
                for (std::size_t align : {1, 2, 4, 16}) {
                    const auto o = data::tile_origins(extent, tile, overlap, align);
                    const std::size_t eff = align > tile ? 1 : align;
                    BOOST_TEST_CONTEXT("extent " << extent << " tile " << tile << " overlap " << overlap << " align " << align) {
                        BOOST_REQUIRE(!o.empty());
                        BOOST_TEST(o.front() == 0u);
                        std::vector<int> covered(extent, 0);
                        for (std::size_t i = 0; i < o.size(); ++i) {
                            BOOST_TEST(o[i] % eff == 0u);
                            if (i) {
                                BOOST_TEST(o[i] > o[i - 1]);
                                BOOST_TEST(o[i] - o[i - 1] <= tile);  // no gap
                            }
                            for (std::size_t k = o[i]; k < std::min(extent, o[i] + tile); ++k) covered[k] = 1;
                        }
                        BOOST_TEST(std::count(covered.begin(), covered.end(), 0) == 0);
                        if (extent > tile) {
                            // Last tile flush with the border, or past it by less than the alignment.
                            BOOST_TEST(o.back() + tile >= extent);
                            BOOST_TEST(o.back() + tile - extent < eff);
                            // The step honours the overlap where the alignment allows it.
                            const auto step = std::size_t(std::floor(double(tile) * (1 - overlap)));
                            if (step >= eff && o.size() > 2) BOOST_TEST(o[1] - o[0] <= step);
                        } else {
                            BOOST_TEST(o.size() == 1u);
                        }
                    }
                }
    // Alignment 1: exactly flush, the overlap as asked where it is integral.
    BOOST_TEST(data::tile_origins(20, 8, 0.5, 1) == (std::vector<std::size_t>{0, 4, 8, 12}), boost::test_tools::per_element());
    BOOST_TEST(data::tile_origins(21, 8, 0.0, 1) == (std::vector<std::size_t>{0, 8, 13}), boost::test_tools::per_element());
    BOOST_TEST(data::tile_origins(21, 8, 0.0, 4) == (std::vector<std::size_t>{0, 8, 16}), boost::test_tools::per_element());
    BOOST_CHECK_THROW(data::tile_origins(20, 8, 1.0, 1), ctseg::error);
    BOOST_CHECK_THROW(data::tile_origins(20, 8, -0.1, 1), ctseg::error);
}

BOOST_AUTO_TEST_CASE(importance_map_is_a_clamped_gaussian) {
    const std::vector<std::size_t> tile{8, 5};
    data::tile_options opt;
    const auto w = data::importance_map(tile, opt);
    BOOST_REQUIRE_EQUAL(w.size(), 40u);
    // exp(-(j - c)^2 / (2 sigma^2)) per axis, scaled so each axis peaks at 1.
    auto axis = [](std::size_t n, double j, double frac) {
        const double c = (double(n) - 1) / 2, s = frac * double(n);
        const double peak = n % 2 ? 1.0 : std::exp(-0.25 / (2 * s * s));
        return std::exp(-(j - c) * (j - c) / (2 * s * s)) / peak;
    };
    double top = 0;
    for (std::size_t y = 0; y < 8; ++y)
        for (std::size_t x = 0; x < 5; ++x) {
            const double want = std::max(1e-3, axis(8, double(y), 0.125) * axis(5, double(x), 0.125));
            BOOST_TEST(w[y * 5 + x] == want, boost::test_tools::tolerance(1e-12));
            top = std::max(top, w[y * 5 + x]);
        }
    BOOST_TEST(top == 1.0, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(w[0] == 1e-3, boost::test_tools::tolerance(1e-12));  // the corner is clamped
    opt.min_weight = 1e-9;
    BOOST_TEST(data::importance_map(tile, opt)[0] < 1e-3);
    opt.gaussian = false;
    for (double x : data::importance_map(tile, opt)) BOOST_TEST(x == 1.0);
    opt.gaussian = true;
    opt.sigma_fraction = 0;
    BOOST_CHECK_THROW(data::importance_map(tile, opt), ctseg::error);
    opt.sigma_fraction = 0.125;
    opt.min_weight = 0;
    BOOST_CHECK_THROW(data::importance_map(tile, opt), ctseg::error);
}

BOOST_AUTO_TEST_CASE(tiled_2d_equals_one_pass_over_the_whole_image) {
    auto net = std::make_unique<network<tile2d>>(7);
    const image<float> img = random_image(2, {50, 70}, 3);
    // Overlap 0: origins 0, 8, ..., 40, 44 and 0, ..., 56, 64 -> covered 52 x 72.
    using whole = bind<net2d, shape<2, 92, 112>>;
    static_assert(std::is_same_v<whole::output_shape, shape<2, 52, 72>>);
    const image<float> ref = whole_image_probabilities<whole>(*net, img, 20, false);
    for (double overlap : {0.0, 0.5})
        for (bool gaussian : {false, true}) {
            data::tile_options opt;
            opt.overlap = overlap;
            opt.gaussian = gaussian;
            opt.batch = 3;
            const image<float> got = data::predict_tiled(*net, img, opt);
            BOOST_TEST(got.channels == 2u);
            BOOST_TEST(max_diff(got, ref) < 5e-6, "overlap " << overlap << " gaussian " << gaussian);
        }
    // The probabilities sum to 1 and are not all alike (the test would see a constant output).
    const image<float> got = data::predict_tiled(*net, img);
    double lo = 1, hi = 0;
    for (std::size_t v = 0; v < got.voxels(); ++v) {
        BOOST_TEST(got.channel(0)[v] + got.channel(1)[v] == 1.0f, boost::test_tools::tolerance(1e-5f));
        lo = std::min(lo, double(got.channel(0)[v]));
        hi = std::max(hi, double(got.channel(0)[v]));
    }
    BOOST_TEST(hi - lo > 1e-3);
}

BOOST_AUTO_TEST_CASE(test_time_mirroring_equals_mean_of_flipped_whole_image_runs) {
    auto net = std::make_unique<network<tile2d>>(8);
    const image<float> img = random_image(2, {50, 70}, 4);
    using whole = bind<net2d, shape<2, 92, 112>>;
    const image<float> ref = whole_image_probabilities<whole>(*net, img, 20, true);
    data::tile_options opt;
    opt.mirror = true;
    opt.batch = 7;
    BOOST_TEST(max_diff(data::predict_tiled(*net, img, opt), ref) < 5e-6);
    // Without mirroring the result differs: the flips matter.
    BOOST_TEST(max_diff(data::predict_tiled(*net, img), ref) > 1e-4);
}

BOOST_AUTO_TEST_CASE(tiled_3d_equals_one_pass_over_the_whole_volume) {
    auto net = std::make_unique<network<tile3d>>(9);
    // Batch norm statistics other than the identity, so folding is exercised too.
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(0.5f, 1.5f);
    for (auto& e : net->state_entries())
        if (e.name.find("running_var") != std::string::npos || e.name.find("running_mean") != std::string::npos)
            for (auto& x : e.values) x = u(rng) - (e.name.find("mean") != std::string::npos ? 1.0f : 0.0f);
    net->state_changed();
    const image<float> vol = random_image(1, {9, 11, 10}, 6);
    // Output tile 4, step 2: covered 10 x 12 x 10.
    using whole = bind<net3d, shape<1, 26, 28, 26>>;
    static_assert(std::is_same_v<whole::output_shape, shape<2, 10, 12, 10>>);
    data::tile_options opt;
    opt.batch = 16;
    BOOST_TEST(max_diff(data::predict_tiled(*net, vol, opt), whole_image_probabilities<whole>(*net, vol, 8, false)) < 5e-6);
    opt.mirror = true;
    BOOST_TEST(max_diff(data::predict_tiled(*net, vol, opt), whole_image_probabilities<whole>(*net, vol, 8, true)) < 5e-6);
}

BOOST_AUTO_TEST_CASE(blending_is_the_weighted_mean_of_tile_probabilities) {
    // Alignment 1 puts tiles off the pooling grid, so overlapping tiles disagree
    // and the weights matter. Reference: every tile cut from the padded image and
    // run alone, softmax, weighted by the test's own Gaussian (sigma = S' / 8,
    // floor 1e-3) or uniformly, divided by the summed weights.
    auto net = std::make_unique<network<tile2d>>(16);
    const image<float> img = random_image(2, {19, 13}, 14);
    for (bool gaussian : {true, false}) {
        data::tile_options opt;
        opt.alignment = 1;
        opt.overlap = 0.6;
        opt.gaussian = gaussian;
        const auto oy = data::tile_origins(19, 8, 0.6, 1), ox = data::tile_origins(13, 8, 0.6, 1);
        BOOST_TEST(oy == (std::vector<std::size_t>{0, 3, 6, 9, 11}), boost::test_tools::per_element());
        const image<float> padded = naive_pad(img, {20, 20}, {20, 20});
        std::vector<double> sum(2 * 19 * 13, 0.0), wsum(19 * 13, 0.0);
        for (auto y0 : oy)
            for (auto x0 : ox) {
                image<float> tile(2, {48, 48});
                for (std::size_t c = 0; c < 2; ++c)
                    for (std::size_t y = 0; y < 48; ++y)
                        for (std::size_t x = 0; x < 48; ++x)
                            tile.channel(c)[y * 48 + x] = padded.channel(c)[(y0 + y) * 53 + x0 + x];
                const image<float> p = softmax_crop(net->forward(std::span<const float>(tile.values)), 2, {8, 8}, {8, 8});
                for (std::size_t y = 0; y < 8; ++y)
                    for (std::size_t x = 0; x < 8; ++x) {
                        auto g = [](double j) { return std::exp(-(j - 3.5) * (j - 3.5) / 2) / std::exp(-0.125); };
                        const double w = gaussian ? std::max(1e-3, g(double(y)) * g(double(x))) : 1.0;
                        const std::size_t v = (y0 + y) * 13 + x0 + x;
                        for (std::size_t k = 0; k < 2; ++k) sum[k * 247 + v] += w * p.channel(k)[y * 8 + x];
                        wsum[v] += w;
                    }
            }
        const image<float> got = data::predict_tiled(*net, img, opt);
        double worst = 0, spread = 0;
        for (std::size_t k = 0; k < 2; ++k)
            for (std::size_t v = 0; v < 247; ++v) {
                worst = std::max(worst, std::abs(double(got.channel(k)[v]) - sum[k * 247 + v] / wsum[v]));
                spread = std::max(spread, std::abs(double(got.channel(k)[v]) - 0.5));
            }
        BOOST_TEST(worst < 1e-5, "gaussian " << gaussian);
        BOOST_TEST(spread > 1e-3);
    }
    // Off the pooling grid the result is not the whole-image pass: alignment matters.
    data::tile_options off;
    off.alignment = 1;
    off.overlap = 0;
    const image<float> big = random_image(2, {50, 70}, 3);
    using whole = bind<net2d, shape<2, 92, 112>>;
    BOOST_TEST(max_diff(data::predict_tiled(*net, big, off), whole_image_probabilities<whole>(*net, big, 20, false)) > 2e-5);
}

BOOST_AUTO_TEST_CASE(images_smaller_than_the_tile_and_its_margin) {
    auto net = std::make_unique<network<tile2d>>(10);
    // 3 x 5 is smaller than the margin (20): one tile, the input mirrored many times over.
    const image<float> img = random_image(2, {3, 5}, 7);
    const image<float> padded = naive_pad(img, {20, 20}, {25, 23});
    const image<float> ref = softmax_crop(net->forward(std::span<const float>(padded.values)), 2, {8, 8}, {3, 5});
    BOOST_TEST(max_diff(data::predict_tiled(*net, img), ref) < 1e-6);
    // 1 x 1: every input voxel is the one image voxel.
    const image<float> dot = random_image(2, {1, 1}, 8);
    const image<float> dot_pad = naive_pad(dot, {20, 20}, {27, 27});
    BOOST_TEST(max_diff(data::predict_tiled(*net, dot),
                        softmax_crop(net->forward(std::span<const float>(dot_pad.values)), 2, {8, 8}, {1, 1})) < 1e-6);
    // 3D: 1 x 2 x 3 in a 20^3 tile.
    auto net3 = std::make_unique<network<tile3d>>(11);
    const image<float> vol = random_image(1, {1, 2, 3}, 9);
    const image<float> vol_pad = naive_pad(vol, {8, 8, 8}, {11, 10, 9});
    BOOST_TEST(max_diff(data::predict_tiled(*net3, vol),
                        softmax_crop(net3->forward(std::span<const float>(vol_pad.values)), 2, {4, 4, 4}, {1, 2, 3})) < 1e-6);
}

BOOST_AUTO_TEST_CASE(padded_network_whose_tile_covers_the_image_equals_forward) {
    using padded = bind<nets::unet<3, 4, 2, true>, shape<1, 32, 32>>;
    static_assert(std::is_same_v<padded::output_shape, shape<3, 32, 32>>);
    static_assert(data::tile_geometry<padded>::margin == std::array<std::size_t, 2>{0, 0});
    auto net = std::make_unique<network<padded>>(12);
    const image<float> img = random_image(1, {32, 32}, 10);
    const auto ref = softmax_crop(net->forward(std::span<const float>(img.values)), 3, {32, 32}, {32, 32});
    BOOST_TEST(max_diff(data::predict_tiled(*net, img), ref) < 1e-6);
    // Smaller image: mirrored after its end up to the tile, cropped.
    const image<float> small = random_image(1, {20, 28}, 11);
    const image<float> small_pad = naive_pad(small, {0, 0}, {12, 4});
    BOOST_TEST(max_diff(data::predict_tiled(*net, small),
                        softmax_crop(net->forward(std::span<const float>(small_pad.values)), 3, {32, 32}, {20, 28})) < 1e-6);
}

BOOST_AUTO_TEST_CASE(batching_and_progress) {
    auto net = std::make_unique<network<tile2d>>(13);
    const image<float> img = random_image(2, {30, 21}, 12);
    data::tile_options opt;
    const image<float> one = data::predict_tiled(*net, img, opt);
    std::vector<std::pair<std::size_t, std::size_t>> calls;
    opt.batch = 5;
    opt.mirror = true;
    opt.progress = [&](std::size_t done, std::size_t total) { calls.emplace_back(done, total); };
    data::predict_tiled(*net, img, opt);
    const std::size_t tiles = data::tile_origins(30, 8, 0.5, 4).size() * data::tile_origins(21, 8, 0.5, 4).size();
    BOOST_TEST(tiles == 7u * 5u);
    BOOST_REQUIRE(!calls.empty());
    BOOST_TEST(calls.back().first == tiles);
    for (std::size_t i = 0; i < calls.size(); ++i) {
        BOOST_TEST(calls[i].second == tiles);
        if (i) BOOST_TEST(calls[i].first > calls[i - 1].first);
    }
    // 140 samples of (tile, flip) in batches of 5, 4 flips per tile: 28 calls.
    BOOST_TEST(calls.size() == 28u);
    opt.mirror = false;
    opt.progress = nullptr;
    BOOST_TEST(max_diff(data::predict_tiled(*net, img, opt), one) < 1e-6);
    // Geometry follows the input.
    image<float> geo = img;
    geo.geom.spacing = {0.5, 2.0};
    geo.geom.sform_code = 2;
    const image<float> p = data::predict_tiled(*net, geo);
    BOOST_TEST(p.geom.spacing == geo.geom.spacing, boost::test_tools::per_element());
    BOOST_TEST(p.geom.sform_code == 2);
}

BOOST_AUTO_TEST_CASE(predict_slices_equals_tiled_slices) {
    auto net = std::make_unique<network<tile2d>>(14);
    const image<float> vol = random_image(2, {3, 20, 30}, 13);
    const image<float> all = data::predict_slices(*net, vol);
    BOOST_TEST(all.channels == 2u);
    BOOST_TEST(all.extents == vol.extents, boost::test_tools::per_element());
    const std::vector<std::size_t> some{2, 0};
    std::size_t last_done = 0, last_total = 0;
    data::tile_options opt;
    opt.progress = [&](std::size_t d, std::size_t t) { last_done = d; last_total = t; };
    const image<float> picked = data::predict_slices(*net, vol, opt, some);
    const std::size_t per_slice = data::tile_origins(20, 8, 0.5, 4).size() * data::tile_origins(30, 8, 0.5, 4).size();
    BOOST_TEST(last_done == 2 * per_slice);
    BOOST_TEST(last_total == 2 * per_slice);
    const std::size_t plane = 20 * 30;
    for (std::size_t z = 0; z < 3; ++z) {
        image<float> slice(2, {20, 30});
        for (std::size_t c = 0; c < 2; ++c) std::copy_n(vol.channel(c) + z * plane, plane, slice.channel(c));
        const image<float> want = data::predict_tiled(*net, slice);
        for (std::size_t k = 0; k < 2; ++k)
            for (std::size_t i = 0; i < plane; ++i) {
                BOOST_TEST(all.channel(k)[z * plane + i] == want.channel(k)[i]);
                BOOST_TEST(picked.channel(k)[z * plane + i] == (z == 1 ? 0.0f : want.channel(k)[i]));
            }
    }
    const std::vector<std::size_t> bad{1, 3};
    const std::string m = message_of([&] { data::predict_slices(*net, vol, {}, bad); });
    BOOST_TEST(contains(m, "slice index 3"), m);
    BOOST_TEST(contains(m, "depth 3"), m);
    const std::string r = message_of([&] { data::predict_slices(*net, random_image(2, {20, 30}, 1)); });
    BOOST_TEST(contains(r, "rank 2"), r);
}

BOOST_AUTO_TEST_CASE(argmax_takes_the_first_largest) {
    image<float> p(3, {2, 2});
    // voxel:        0     1     2     3
    p.values = {0.2f, 0.5f, 0.4f, 0.1f,   // class 0
                0.7f, 0.5f, 0.2f, 0.3f,   // class 1
                0.1f, 0.0f, 0.4f, 0.6f};  // class 2
    p.geom.spacing = {3, 4};
    const auto labels = data::argmax_labels(p);
    BOOST_TEST(labels.channels == 1u);
    BOOST_TEST(labels.values == (std::vector<std::int64_t>{1, 0, 0, 2}), boost::test_tools::per_element());
    BOOST_TEST(labels.geom.spacing == p.geom.spacing, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(bad_input_names_the_numbers) {
    auto net = std::make_unique<network<tile2d>>(15);
    std::string m = message_of([&] { data::predict_tiled(*net, random_image(1, {30, 30}, 1)); });
    BOOST_TEST(contains(m, "1 channels"), m);
    BOOST_TEST(contains(m, "expects 2"), m);
    m = message_of([&] { data::predict_tiled(*net, random_image(2, {4, 30, 30}, 1)); });
    BOOST_TEST(contains(m, "rank 3"), m);
    BOOST_TEST(contains(m, "4x30x30"), m);
    BOOST_TEST(contains(m, "network of rank 2"), m);
    m = message_of([&] { data::predict_tiled(*net, random_image(2, {0, 30}, 1)); });
    BOOST_TEST(contains(m, "0x30"), m);
    image<float> short_values = random_image(2, {10, 10}, 1);
    short_values.values.pop_back();
    m = message_of([&] { data::predict_tiled(*net, short_values); });
    BOOST_TEST(contains(m, "199 values"), m);
    data::tile_options opt;
    opt.batch = 0;
    m = message_of([&] { data::predict_tiled(*net, random_image(2, {10, 10}, 1), opt); });
    BOOST_TEST(contains(m, "batch"), m);
    opt.batch = 1;
    opt.overlap = 1;
    m = message_of([&] { data::predict_tiled(*net, random_image(2, {10, 10}, 1), opt); });
    BOOST_TEST(contains(m, "overlap"), m);
    // A 2x2 valid convolution: 8 -> 7, the output cannot be centred.
    using odd = bind<named<"c", conv<2, kernel<2>>>, shape<1, 8, 8>>;
    auto odd_net = std::make_unique<network<odd>>();
    m = message_of([&] { data::predict_tiled(*odd_net, random_image(1, {10, 10}, 1)); });
    BOOST_TEST(contains(m, "output tile 7x7"), m);
    BOOST_TEST(contains(m, "input tile 8x8"), m);
    // A strided network's output is not on the input grid.
    using strided = bind<named<"c", conv<2, kernel<2>, stride<2>>>, shape<1, 8, 8>>;
    auto strided_net = std::make_unique<network<strided>>();
    m = message_of([&] { data::predict_tiled(*strided_net, random_image(1, {10, 10}, 1)); });
    BOOST_TEST(contains(m, "stride"), m);
    m = message_of([&] { data::argmax_labels(image<float>(0, {2, 2})); });
    BOOST_TEST(contains(m, "0 channels"), m);
}
