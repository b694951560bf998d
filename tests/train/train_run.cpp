// A training run for the reproducibility and resume tests (driven by
// resume.py): trains a small network on synthetic discs with the trainer,
// checkpointing every epoch, and writes the final parameter and counter bytes.
//
//   train_run --net {unet2d_small,bn_unet} --threads T --checkpoint DIR --epochs E
//             --optimizer {sgd,adam} --output PARAMS.bin [--crash-after-iteration K]
//
// --crash-after-iteration ends the process abruptly (std::_Exit(137), as a kill
// would: no destructor, no flush) right after that optimizer step.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include "ctseg/nets/unet.hpp"
#include "ctseg/nets/unet3d.hpp"
#include "ctseg/train/trainer.hpp"

using namespace ctseg;

namespace {
struct args {
    std::string net = "bn_unet", checkpoint, output, optimizer = "adam";
    int threads = 1;
    std::size_t epochs = 3, crash_after = 0;
};

// Discs of varying centre and radius: the label is the disc, the image the disc plus a ramp.
template <class B>
train::dataset<float> discs(std::size_t count, unsigned seed) {
    using in = typename B::input_shape;
    using out = typename B::output_shape;
    train::dataset<float> d;
    d.count = count;
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(0.3f, 0.7f);
    for (std::size_t s = 0; s < count; ++s) {
        const float cy = u(rng), cx = u(rng), r = 0.15f + 0.1f * u(rng);
        const long H = long(in::spatial[0]), W = long(in::spatial[1]);
        for (long y = 0; y < H; ++y)
            for (long x = 0; x < W; ++x) {
                const float dy = float(y) / float(H) - cy, dx = float(x) / float(W) - cx;
                d.images.push_back((dy * dy + dx * dx < r * r ? 1.0f : 0.0f) + 0.3f * float(x) / float(W));
            }
        // Labels on the output grid, centred in the input (valid networks shrink it).
        const long h = long(out::spatial[0]), w = long(out::spatial[1]), oy = (H - h) / 2, ox = (W - w) / 2;
        for (long y = 0; y < h; ++y)
            for (long x = 0; x < w; ++x) {
                const float dy = float(y + oy) / float(H) - cy, dx = float(x + ox) / float(W) - cx;
                d.labels.push_back(dy * dy + dx * dx < r * r ? 1 : 0);
            }
    }
    return d;
}

template <class B>
int run(const args& a) {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, std::size_t(a.threads));
    tbb::task_arena arena(a.threads);
    int status = 0;
    arena.execute([&] {
        network<B> net(3);
        train::trainer_options o;
        o.epochs = a.epochs;
        o.batch_size = 3;
        o.seed = 11;
        o.checkpoint_dir = a.checkpoint;
        o.progress = false;
        if (a.optimizer == "sgd") {
            o.optimizer = train::optimizer_kind::sgd;
            o.sgd = {0.05, 0.9, 0, true, 1e-4};
            o.schedule = train::lr_schedule::poly(0.05, 40);
        } else {
            o.optimizer = train::optimizer_kind::adam;
            o.adam.lr = 3e-3;
            o.schedule = train::lr_schedule::cosine(3e-3, 30);
        }
        if (a.crash_after)
            o.on_iteration = [&](std::size_t it) {
                if (it == a.crash_after) std::_Exit(137);
            };
        const auto training = discs<B>(10, 1), validation = discs<B>(4, 2);
        train::trainer<B> t(net, o);
        t.fit(training, &validation);
        std::ofstream f(a.output, std::ios::binary);
        f.write(reinterpret_cast<const char*>(net.parameters().data()), std::streamsize(net.parameters().size_bytes()));
        f.write(reinterpret_cast<const char*>(net.counters().data()), std::streamsize(net.counters().size_bytes()));
        status = f ? 0 : 1;
    });
    return status;
}
}  // namespace

int main(int argc, char** argv) {
    args a;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--net") a.net = v;
        else if (k == "--threads") a.threads = std::stoi(v);
        else if (k == "--checkpoint") a.checkpoint = v;
        else if (k == "--epochs") a.epochs = std::stoul(v);
        else if (k == "--optimizer") a.optimizer = v;
        else if (k == "--output") a.output = v;
        else if (k == "--crash-after-iteration") a.crash_after = std::stoul(v);
        else { std::fprintf(stderr, "train_run: unknown option %s\n", k.c_str()); return 2; }
    }
    try {
        if (a.net == "unet2d_small") return run<bind<nets::unet<2, 4, 2>, shape<1, 92, 108>>>(a);
        // The 3D U-Net's blocks (conv, batch norm, ReLU), bound to 2D tiles.
        return run<bind<nets::unet3d<2, 2, 2, true>, shape<1, 32, 24>>>(a);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "train_run: %s\n", e.what());
        return 1;
    }
}
