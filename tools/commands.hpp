// The train and segment commands for one bound network type, and the
// registry entry that names it on the command line. Everything that does not
// depend on the network type lives in commands.cpp; what does is here, and is
// instantiated once per variant by the translation unit of its family
// (nets_*.cpp).
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "ctseg/data/tiling.hpp"
#include "ctseg/interop/state_dict.hpp"
#include "ctseg/model/network.hpp"
#include "ctseg/plan/summary.hpp"
#include "ctseg/train/trainer.hpp"
#include "report.hpp"
#include "samples.hpp"

namespace ctseg::tool {

struct train_request {
    std::string net, variant;
    fs::path images, labels, val_images, val_labels, out;
    std::optional<slice_selection> slices, val_slices;
    data_options data;  // rank, channels and classes come from the variant
    std::size_t epochs = 50, batch = 8, tiles_per_epoch = 0;  // 0: as many as training images (or slices), at least 4 batches
    double lr = 3e-3, momentum = 0.99, weight_decay = 0;
    std::string optimizer = "adam", loss = "dice_ce", schedule = "poly", dice = "all", augment_spec = "none";
    data::augment_options augment;
    std::uint64_t seed = 0;
    bool progress = false;
};

struct segment_request {
    std::string net, variant;
    fs::path weights, input, output, overlay_dir;
    std::optional<slice_selection> slices;
    normalization norm = normalization::zscore;
    double overlap = 0.5;
    bool mirror = false, gaussian = true, probabilities = false, progress = false;
    std::size_t batch = 4;
};

// A variant the command knows: its names, tile geometry and entry points.
struct variant_entry {
    std::string net, variant;
    std::size_t rank = 2, input_channels = 1, classes = 2;
    std::vector<std::size_t> input_tile, output_tile;
    long parameters = 0;
    double flops = 0;
    std::vector<long> receptive_field;
    void (*summary)(std::ostream&) = nullptr;
    void (*train)(const train_request&) = nullptr;
    void (*segment)(const segment_request&) = nullptr;
};

// The variants of each family (one translation unit each).
std::vector<variant_entry> unet2d_variants();
std::vector<variant_entry> unet3d_variants();
std::vector<variant_entry> vnet_variants();
std::vector<variant_entry> fcn_variants();
std::vector<variant_entry> context_net_variants();

// --- type-independent parts (commands.cpp) ---------------------------------

struct training_data {
    std::vector<labelled_image> train_items, val_items;
    train::dataset<float> validation;
    bool validating = false;
    std::optional<std::int64_t> ignore_index;
    std::size_t tiles_per_epoch = 0;
};

// Loads the data, checks or writes RUN_DIR/run.json, builds the validation tiles.
training_data prepare_training(const train_request& rq, const tile_shape& tile);
train::trainer_options trainer_options_for(const train_request& rq, const training_data& d);
// After each epoch: RUN_DIR/curves.svg, and a line on standard output when no progress bar runs.
void epoch_finished(const train_request& rq, const std::vector<train::epoch_record>& history);
void training_finished(const train_request& rq, const std::vector<train::epoch_record>& history, double seconds);

struct segment_job {
    fs::path input, output;
};
std::vector<segment_job> segment_jobs(const segment_request& rq);
// Reads and normalises an input; `raw` keeps the intensities for pictures.
data::image<float> segment_input(const segment_request& rq, const fs::path& file, std::size_t rank, std::size_t channels,
                                 data::image<float>& raw);
std::vector<std::size_t> chosen_slices(const segment_request& rq, const data::image<float>& img, const fs::path& file);
// Labels from the probabilities; writes the mask, probabilities and overlays.
void segment_finished(const segment_request& rq, const segment_job& job, const data::image<float>& raw,
                      const data::image<float>& probabilities, const std::vector<std::size_t>& slices, double seconds);

// --- per network type -------------------------------------------------------

template <class B>
tile_shape tile_of() {
    using in = typename B::input_shape;
    using out = typename B::output_shape;
    return {std::vector<std::size_t>(in::spatial.begin(), in::spatial.end()),
            std::vector<std::size_t>(out::spatial.begin(), out::spatial.end()), in::channels};
}

template <class B>
void train_network(const train_request& request) {
    train_request rq = request;
    rq.data.net_rank = B::rank;
    rq.data.channels = B::input_shape::channels;
    rq.data.classes = B::output_shape::channels;
    const tile_shape tile = tile_of<B>();
    training_data d = prepare_training(rq, tile);
    auto net = std::make_unique<network<B>>(rq.seed);
    train::trainer_options opt = trainer_options_for(rq, d);
    const train::trainer<B>* running = nullptr;
    opt.on_epoch = [&](const train::epoch_record&) { epoch_finished(rq, running->history()); };
    train::trainer<B> trainer(*net, opt);
    running = &trainer;
    train::dataset<float> samples;
    const auto t0 = std::chrono::steady_clock::now();
    trainer.fit(
        [&](std::size_t epoch) -> const train::dataset<float>& {
            make_epoch_samples(d.train_items, tile, d.tiles_per_epoch, rq.seed, epoch, rq.augment, rq.augment_spec != "none", samples);
            return samples;
        },
        d.validating ? &d.validation : nullptr);
    training_finished(rq, trainer.history(), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

template <class B>
void segment_network(const segment_request& rq) {
    auto net = std::make_unique<network<B>>();
    interop::load_state_dict(*net, rq.weights);
    for (const segment_job& job : segment_jobs(rq)) {
        data::image<float> raw;
        const data::image<float> img = segment_input(rq, job.input, B::rank, B::input_shape::channels, raw);
        data::tile_options to;
        to.overlap = rq.overlap;
        to.mirror = rq.mirror;
        to.gaussian = rq.gaussian;
        to.batch = rq.batch;
        progress_bar bar("segmenting " + job.input.filename().string(), rq.progress);
        to.progress = [&](std::size_t done, std::size_t total) { bar.update(done, total); };
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<std::size_t> slices;
        data::image<float> probabilities;
        if constexpr (B::rank == 2) {
            if (img.rank() == 3) {
                slices = chosen_slices(rq, img, job.input);
                probabilities = data::predict_slices(*net, img, to, slices);
            } else {
                probabilities = data::predict_tiled(*net, img, to);
            }
        } else {
            probabilities = data::predict_tiled(*net, img, to);
        }
        bar.finish();
        segment_finished(rq, job, raw, probabilities, slices,
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
}

template <class B>
void print_summary_of(std::ostream& os) {
    print_summary<B>(os);
}

template <class B>
variant_entry entry(std::string net, std::string variant) {
    variant_entry e;
    e.net = std::move(net);
    e.variant = std::move(variant);
    e.rank = B::rank;
    e.input_channels = B::input_shape::channels;
    e.classes = B::output_shape::channels;
    const tile_shape t = tile_of<B>();
    e.input_tile = t.input;
    e.output_tile = t.output;
    e.parameters = long(B::parameter_count);
    e.flops = double(B::flops);
    for (auto r : B::receptive_field) e.receptive_field.push_back(long(r));
    e.summary = &print_summary_of<B>;
    e.train = &train_network<B>;
    e.segment = &segment_network<B>;
    return e;
}

}  // namespace ctseg::tool
