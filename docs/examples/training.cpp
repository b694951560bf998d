// Training a small padded U-Net on synthetic discs with the trainer:
// checkpoints, a CSV of the metrics, and resuming where a run stopped.
#include <cstdio>

#include "ctseg/nets/unet.hpp"
#include "ctseg/train/trainer.hpp"

using namespace ctseg;

using disc_unet = bind<nets::unet</*classes*/ 2, /*width*/ 4, /*depth*/ 2, /*padded*/ true>, shape<1, 32, 32>>;

// Eight 32x32 images of a bright disc; the label is the disc.
train::dataset<float> discs() {
    train::dataset<float> d;
    d.count = 8;
    for (std::size_t s = 0; s < d.count; ++s)
        for (int y = 0; y < 32; ++y)
            for (int x = 0; x < 32; ++x) {
                const int dx = x - 8 - 2 * int(s), dy = y - 20 + int(s);
                const bool inside = dx * dx + dy * dy < 36;
                d.images.push_back(inside ? 1.0f : 0.0f);
                d.labels.push_back(inside ? 1 : 0);
            }
    return d;
}

int main() {
    network<disc_unet> net(/*seed*/ 1);          // PyTorch's default initialisation
    train::trainer_options opt;
    opt.epochs = 100;
    opt.batch_size = 4;
    opt.loss = train::loss_kind::dice_ce;
    opt.optimizer = train::optimizer_kind::adam;
    opt.adam.lr = 1e-2;
    opt.schedule = train::lr_schedule::poly(1e-2, /*iterations*/ 200);
    opt.checkpoint_dir = "training-run";     // last.*, best.*, metrics.csv
    train::trainer<disc_unet> trainer(net, opt);
    const auto data = discs();
    const auto& history = trainer.fit(data, &data);
    std::printf("epoch %zu: train loss %.4f, validation Dice %.3f\n", history.back().epoch, history.back().train_loss,
                history.back().val_dice);
}
