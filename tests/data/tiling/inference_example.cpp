// The worked example of docs/inference.md, built and run as a test; the page
// quotes it verbatim (check_doc.py).
#include <cstdint>
#include <cstdio>
#include <type_traits>
#include <vector>

#include "ctseg/data/metrics.hpp"
#include "ctseg/data/tiling.hpp"
#include "ctseg/nets.hpp"

using namespace ctseg;

// The paper's U-Net, narrower and one level shallower: valid convolutions,
// 8 features, 3 poolings. A 1-channel 124 x 124 input tile gives a
// 36 x 36 output tile: margin (124 - 36) / 2 = 44, pooling stride 8.
using small_unet = bind<nets::unet<2, 8, 3>, shape<1, 124, 124>>;
static_assert(std::is_same_v<small_unet::output_shape, shape<2, 36, 36>>);
static_assert(data::tile_geometry<small_unet>::margin[0] == 44);
static_assert(data::tile_geometry<small_unet>::alignment[0] == 8);

int main() {
    network<small_unet> net(/*seed=*/1);  // or load trained weights (docs/dsl.md)

    // A 100 x 150 image with a bright disc, and its truth.
    data::image<float> img(1, {100, 150});
    data::image<std::int64_t> truth(1, {100, 150});
    img.geom.spacing = truth.geom.spacing = {0.5, 0.5};  // mm
    for (std::size_t y = 0; y < 100; ++y)
        for (std::size_t x = 0; x < 150; ++x) {
            const bool inside = (y - 50.0) * (y - 50.0) + (x - 70.0) * (x - 70.0) < 30.0 * 30.0;
            img.values[y * 150 + x] = inside ? 1.0f : 0.0f;
            truth.values[y * 150 + x] = inside;
        }

    data::tile_options options;
    options.overlap = 0.5;  // step 18, rounded down to 16 (the pooling stride 8)
    options.mirror = true;  // average over the 4 flips
    options.batch = 4;
    options.progress = [](std::size_t done, std::size_t total) { std::printf("\rtile %zu/%zu", done, total); };
    const data::image<float> probs = data::predict_tiled(net, img, options);  // 2 x 100 x 150
    const data::image<std::int64_t> labels = data::argmax_labels(probs);

    const data::segmentation_scores s = data::evaluate(labels, truth, /*classes=*/2);
    std::printf("\nDice %.3f  IoU %.3f  HD95 %.2f mm  pixel error %.3f\n", s.classes[1].dice, s.classes[1].iou,
                s.classes[1].hd95, s.pixel_error);
    return probs.extents == img.extents && s.voxels == 100 * 150 ? 0 : 1;
}
