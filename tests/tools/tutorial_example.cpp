// The C++ example of docs/tutorial.md, built and run by the tools test on a
// small volume; the page quotes it verbatim.
//   tutorial_example IMAGE.nii.gz MASK.nii.gz EPOCHS RUN_DIR OUT_MASK.nii.gz
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "ctseg/data/io.hpp"
#include "ctseg/data/metrics.hpp"
#include "ctseg/data/tiling.hpp"
#include "ctseg/nets/unet.hpp"
#include "ctseg/train/trainer.hpp"

using namespace ctseg;

// The demo's network: a padded 2D U-Net, 8 features, 3 poolings, 128x128 tiles.
using brain_unet = bind<nets::unet<2, 8, 3, true>, shape<1, 128, 128>>;

int main(int argc, char** argv) {
    if (argc != 6) return 2;
    data::image<float> volume = data::read_image<float>(argv[1]);  // D x H x W (NIfTI z, y, x)
    data::image<std::int64_t> mask = data::read_labels(argv[2]);
    const std::size_t epochs = std::strtoul(argv[3], nullptr, 10);
    const std::size_t D = volume.extents[0], H = volume.extents[1], W = volume.extents[2];

    // Intensities z-scored over the volume; the brain is every voxel above 0.
    double sum = 0, squares = 0;
    for (float v : volume.values) sum += v, squares += double(v) * v;
    const double mean = sum / volume.voxels(), sd = std::sqrt(squares / volume.voxels() - mean * mean);
    for (float& v : volume.values) v = float((v - mean) / sd);
    for (auto& label : mask.values) label = label > 0;

    // Each epoch, one random 128x128 crop per training slice (z not a multiple
    // of 4), drawn from the epoch number alone so that a resumed run sees the same.
    std::vector<std::size_t> training_slices, held_out;
    for (std::size_t z = 0; z < D; ++z) (z % 4 ? training_slices : held_out).push_back(z);
    train::dataset<float> crops;
    auto crops_of_epoch = [&](std::size_t epoch) -> const train::dataset<float>& {
        std::mt19937_64 rng(epoch);
        crops.count = training_slices.size();
        crops.images.resize(crops.count * 128 * 128);
        crops.labels.resize(crops.count * 128 * 128);
        for (std::size_t s = 0; s < crops.count; ++s) {
            const std::size_t z = training_slices[rng() % training_slices.size()];
            const std::size_t y0 = rng() % (H - 127), x0 = rng() % (W - 127);
            for (std::size_t y = 0; y < 128; ++y)
                for (std::size_t x = 0; x < 128; ++x) {
                    const std::size_t from = (z * H + y0 + y) * W + x0 + x, to = (s * 128 + y) * 128 + x;
                    crops.images[to] = volume.values[from];
                    crops.labels[to] = mask.values[from];
                }
        }
        return crops;
    };

    network<brain_unet> net(/*seed=*/1);
    train::trainer_options opt;
    opt.epochs = epochs;
    opt.batch_size = 8;
    opt.adam.lr = 3e-3;
    opt.schedule = train::lr_schedule::poly(3e-3, epochs * ((training_slices.size() + 7) / 8));
    opt.checkpoint_dir = argv[4];  // last.safetensors, best.safetensors, metrics.csv
    train::trainer<brain_unet>(net, opt).fit(crops_of_epoch);

    // Segment the held-out slices (overlap-tile inference over each whole
    // slice) and score them over all their voxels.
    const data::image<std::int64_t> labels = data::argmax_labels(data::predict_slices(net, volume, {}, held_out));
    std::vector<std::uint8_t> scored(volume.voxels(), 0);
    for (std::size_t z : held_out) std::fill_n(scored.begin() + z * H * W, H * W, 1);
    const auto scores = data::evaluate(labels, mask, /*classes=*/2, {}, &scored, /*hausdorff=*/false);
    std::printf("held-out Dice %.4f\n", scores.classes[1].dice);
    data::write_image(argv[5], labels, data::pixel_type::u8);  // with the volume's spacing and orientation
}
