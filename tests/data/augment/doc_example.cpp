// The worked example of docs/augmentation.md (its ```cpp blocks are quoted
// verbatim from this file; the 'data augment docs' test checks it and runs
// this program).
#include <cstdint>
#include <cstdio>

#include "ctseg/data/augment.hpp"
#include "ctseg/data/border_weights.hpp"
#include "ctseg/data/sparse.hpp"

using namespace ctseg::data;

// Two cells, one background pixel apart, on a 96 x 96 image: instance ids 1, 2.
image<std::int64_t> two_cells() {
    image<std::int64_t> cells(1, {96, 96});
    for (std::size_t y = 30; y < 66; ++y)
        for (std::size_t x = 20; x < 76; ++x) cells.values[y * 96 + x] = x < 47 ? 1 : x > 47 ? 2 : 0;
    return cells;
}

int main() {
    // 2D, as in U-Net: border weights from the instances, then the same
    // elastic deformation for image, labels and weights.
    const image<std::int64_t> instances = two_cells();
    image<float> img(1, instances.extents);
    image<std::int64_t> labels = image_like<std::int64_t>(instances);
    for (std::size_t i = 0; i < img.voxels(); ++i) {
        labels.values[i] = instances.values[i] > 0;  // classes: 0 background, 1 cell
        img.values[i] = labels.values[i] ? 0.8f : 0.2f;
    }
    const image<float> weights = border_weights_from_instances(instances);  // w0 = 10, sigma = 5 px

    augment_options opt = unet_2d_options();  // 3x3 grid, sigma 10 px; flips; quarter turns
    opt.p_rotation = 0.5;
    opt.max_rotation_deg = 15;
    opt.p_gamma = 0.3;
    opt.gamma_min = 0.7;
    opt.gamma_max = 1.5;

    std::vector<float> batch_images, batch_weights;
    std::vector<std::int64_t> batch_labels;
    for (std::uint64_t sample = 0; sample < 4; ++sample) {
        image<float> img_aug, w_aug;
        image<std::int64_t> lab_aug;
        const std::uint64_t seed = 1000 * /*epoch*/ 0 + sample;  // same seed, same result
        augment(img, labels, weights, img_aug, lab_aug, w_aug, opt, seed);
        batch_images.insert(batch_images.end(), img_aug.values.begin(), img_aug.values.end());
        batch_labels.insert(batch_labels.end(), lab_aug.values.begin(), lab_aug.values.end());
        batch_weights.insert(batch_weights.end(), w_aug.values.begin(), w_aug.values.end());
    }
    // batch_*: N x C x H x W, N x H x W, N x H x W: train::dataset<float>'s
    // images, labels and weights (the weights feed the cross-entropy).

    // 3D, as in 3D U-Net: labels on every 8th slice along z only, -1 elsewhere.
    image<float> volume(1, {64, 64, 64});
    image<std::int64_t> dense = image_like<std::int64_t>(volume);
    for (std::size_t i = 0; i < volume.voxels(); ++i) {
        const std::size_t z = i / 4096, y = i / 64 % 64, x = i % 64;
        const bool inside = (z - 32.0) * (z - 32.0) + (y - 32.0) * (y - 32.0) + (x - 32.0) * (x - 32.0) < 400;
        dense.values[i] = inside;
        volume.values[i] = inside ? 1.0f : 0.0f;
    }
    const image<std::int64_t> sparse = sparse_labels(dense, /*axis*/ 0, every_kth_slice(64, 8), /*ignore*/ -1);
    const image<std::uint8_t> annotated = annotated_mask(sparse, -1);

    image<float> vol_aug;
    image<std::int64_t> sparse_aug;
    const transform_params drawn = augment(volume, sparse, vol_aug, sparse_aug, unet_3d_options(), /*seed*/ 7);
    // sparse_aug holds 0, 1 and -1 only: train with trainer_options::ignore_index = -1.

    std::size_t kept = 0;
    for (auto a : annotated.values) kept += a;
    std::printf("2D batch: %zu values; 3D: %zu of %zu voxels annotated; drawn rotation: %s\n", batch_images.size(), kept,
                annotated.values.size(), drawn.rotation.empty() ? "none" : "yes");
    // What the test checks: every sample came back, 8 of 64 slices kept, and
    // the augmented sparse labels hold no value but -1, 0 and 1.
    bool ok = batch_images.size() == 4 * 96 * 96 && batch_labels.size() == batch_weights.size() && kept == 8 * 64 * 64;
    for (auto v : sparse_aug.values) ok = ok && v >= -1 && v <= 1;
    return ok ? 0 : 1;
}
