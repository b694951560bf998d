#include "commands.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <system_error>

#include <nlohmann/json.hpp>

#include "ctseg/data/io.hpp"

namespace ctseg::tool {

namespace {

void make_directories(const fs::path& dir, const char* option) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec || !fs::is_directory(dir))
        throw error(std::string(option) + " " + dir.string() + ": cannot create the folder" + (ec ? ": " + ec.message() : std::string()));
}

// What a run was started with: a resumed run must be started the same way
// (only --epochs may grow), or it would not continue the same training.
nlohmann::json settings_of(const train_request& rq) {
    nlohmann::json s;
    s["net"] = rq.net;
    s["variant"] = rq.variant;
    s["classes"] = rq.data.classes;
    s["input_channels"] = rq.data.channels;
    s["normalize"] = normalization_name(rq.data.norm);
    s["images"] = rq.images.string();
    s["labels"] = rq.labels.string();
    s["val_images"] = rq.val_images.string();
    s["val_labels"] = rq.val_labels.string();
    s["slices"] = rq.slices ? rq.slices->spec() : "all";
    s["val_slices"] = rq.val_slices ? rq.val_slices->spec() : "";
    s["label_map"] = rq.data.labels.spec();
    s["ignore_label"] = rq.data.ignore_label ? nlohmann::json(*rq.data.ignore_label) : nlohmann::json(nullptr);
    s["border_weights"] = rq.data.border_weights;
    s["batch"] = rq.batch;
    s["tiles_per_epoch"] = rq.tiles_per_epoch;
    s["lr"] = rq.lr;
    s["momentum"] = rq.momentum;
    s["weight_decay"] = rq.weight_decay;
    s["optimizer"] = rq.optimizer;
    s["loss"] = rq.loss;
    s["dice"] = rq.dice;
    s["schedule"] = rq.schedule;
    s["augment"] = rq.augment_spec;
    s["seed"] = rq.seed;
    s["epochs"] = rq.epochs;
    return s;
}

void check_or_write_run_file(const train_request& rq) {
    const fs::path file = rq.out / "run.json";
    const nlohmann::json now = settings_of(rq);
    if (fs::exists(file)) {
        nlohmann::json before;
        try {
            std::ifstream in(file);
            before = nlohmann::json::parse(in);
        } catch (const std::exception& e) {
            throw error(file.string() + ": not a readable run file: " + std::string(e.what()).substr(0, 120));
        }
        for (const auto& [key, value] : now.items()) {
            if (key == "epochs") continue;
            if (!before.contains(key) || before[key] != value)
                throw error(file.string() + ": this run was started with " + key + " = " +
                            (before.contains(key) ? before[key].dump() : std::string("(unset)")) + ", now " + value.dump() +
                            "; resume with the same options (only --epochs may change) or train into another --out");
        }
    } else if (fs::exists(rq.out / "last.safetensors")) {
        throw error(rq.out.string() + ": holds checkpoints but no run.json; train into another --out");
    }
    write_text(file, now.dump(2) + "\n");
}

}  // namespace

training_data prepare_training(const train_request& rq, const tile_shape& tile) {
    make_directories(rq.out, "--out");
    check_or_write_run_file(rq);
    training_data d;
    const auto pairs = pair_files(rq.images, rq.labels, "--images", "--labels");
    const bool separate_validation = !rq.val_images.empty();
    const slice_selection* slices = rq.slices ? &*rq.slices : nullptr;
    const slice_selection* val_slices = rq.val_slices ? &*rq.val_slices : nullptr;
    for (const auto& p : pairs)
        load_pair(p, rq.data, slices, separate_validation ? nullptr : val_slices, d.train_items, separate_validation ? nullptr : &d.val_items);
    if (separate_validation)
        for (const auto& p : pair_files(rq.val_images, rq.val_labels, "--val-images", "--val-labels"))
            load_pair(p, rq.data, val_slices, nullptr, d.val_items, nullptr);
    if (d.train_items.empty()) throw error("--images " + rq.images.string() + ": no training images");
    d.tiles_per_epoch = rq.tiles_per_epoch ? rq.tiles_per_epoch : std::max(d.train_items.size(), 4 * rq.batch);
    d.ignore_index = rq.data.ignore_label;
    d.validating = !d.val_items.empty();
    if (d.validating) {
        // Tiles of images smaller than the output tile overhang them; the
        // overhang is scored by no one: it gets the ignore label.
        bool overhang = false;
        for (const auto& it : d.val_items)
            for (std::size_t a = 0; a < tile.output.size(); ++a) overhang = overhang || it.image.extents[a] < tile.output[a];
        if (overhang && !d.ignore_index) d.ignore_index = -1;
        make_grid_samples(d.val_items, tile, d.ignore_index.value_or(-1), d.validation);
    }
    std::printf("training %s/%s (tile %zux%s -> %zux%s) on %zu %s of %zu file(s)", rq.net.c_str(), rq.variant.c_str(), tile.channels,
                by_x(tile.input).c_str(), rq.data.classes, by_x(tile.output).c_str(), d.train_items.size(),
                d.train_items[0].name.ends_with("]") ? "slices" : "images", pairs.size());
    if (d.validating) std::printf(", validating on %zu (%zu tiles)", d.val_items.size(), d.validation.count);
    std::printf("\n%zu tiles per epoch, batch %zu, %zu epochs, %s lr %g (%s), loss %s, augment %s, seed %llu\n", d.tiles_per_epoch,
                rq.batch, rq.epochs, rq.optimizer.c_str(), rq.lr, rq.schedule.c_str(), rq.loss.c_str(), rq.augment_spec.c_str(),
                (unsigned long long)rq.seed);
    std::fflush(stdout);
    return d;
}

train::trainer_options trainer_options_for(const train_request& rq, const training_data& d) {
    train::trainer_options o;
    o.epochs = rq.epochs;
    o.batch_size = rq.batch;
    o.loss = rq.loss == "ce" ? train::loss_kind::ce : rq.loss == "dice" ? train::loss_kind::dice : train::loss_kind::dice_ce;
    o.dice_over = rq.dice == "present" ? train::dice_average::present_classes : train::dice_average::all_classes;
    o.ignore_index = d.ignore_index;
    o.optimizer = rq.optimizer == "sgd" ? train::optimizer_kind::sgd : rq.optimizer == "adamw" ? train::optimizer_kind::adamw
                                                                                              : train::optimizer_kind::adam;
    o.sgd.lr = rq.lr;
    o.sgd.momentum = rq.momentum;
    o.sgd.weight_decay = rq.weight_decay;
    o.adam.lr = rq.lr;
    o.adam.weight_decay = rq.weight_decay;
    o.adam.decoupled_weight_decay = rq.optimizer == "adamw";
    const std::size_t iterations = rq.epochs * ((d.tiles_per_epoch + rq.batch - 1) / rq.batch);
    if (rq.schedule == "poly") o.schedule = train::lr_schedule::poly(rq.lr, iterations);
    else if (rq.schedule == "cosine") o.schedule = train::lr_schedule::cosine(rq.lr, iterations);
    o.seed = rq.seed;
    o.checkpoint_dir = rq.out;
    o.resume = true;
    o.progress = rq.progress;
    return o;
}

void epoch_finished(const train_request& rq, const std::vector<train::epoch_record>& history) {
    write_text(rq.out / "curves.svg", curves_svg(history, rq.net + "/" + rq.variant + ": " + rq.out.filename().string()));
    if (rq.progress || history.empty()) return;
    const auto& r = history.back();
    std::printf("epoch %zu/%zu  train loss %.4f", r.epoch, rq.epochs, r.train_loss);
    if (!std::isnan(r.val_loss)) std::printf("  validation loss %.4f  Dice %.4f", r.val_loss, r.val_dice);
    std::printf("  lr %.3g  %.1f s\n", r.lr, r.seconds);
    std::fflush(stdout);
}

void training_finished(const train_request& rq, const std::vector<train::epoch_record>& history, double seconds) {
    write_text(rq.out / "curves.svg", curves_svg(history, rq.net + "/" + rq.variant + ": " + rq.out.filename().string()));
    if (history.empty()) {
        std::printf("no epoch to train\n");
        return;
    }
    const auto& r = history.back();
    std::printf("trained to epoch %zu in %.1f s: train loss %.4f", r.epoch, seconds, r.train_loss);
    if (!std::isnan(r.val_dice)) std::printf(", validation Dice %.4f", r.val_dice);
    std::printf("\nweights %s (and best.safetensors), metrics.csv, curves.svg in %s\n", (rq.out / "last.safetensors").c_str(),
                rq.out.c_str());
    std::fflush(stdout);
}

// ---------------------------------------------------------------------------

std::vector<segment_job> segment_jobs(const segment_request& rq) {
    std::error_code ec;
    if (!fs::exists(rq.input, ec)) throw error("--input " + rq.input.string() + ": no such file or folder");
    std::vector<segment_job> jobs;
    if (fs::is_directory(rq.input)) {
        if (fs::exists(rq.output) && !fs::is_directory(rq.output))
            throw error("--output " + rq.output.string() + ": must be a folder when --input is a folder");
        make_directories(rq.output, "--output");
        if (fs::equivalent(rq.input, rq.output, ec))
            throw error("--output " + rq.output.string() + ": is the --input folder; the masks would replace the images");
        for (const auto& f : data::list_images(rq.input)) jobs.push_back({f, rq.output / f.filename()});
    } else {
        if (!data::is_image_file(rq.input))
            throw error("--input " + rq.input.string() + ": not an image file name (supported: " +
                        std::string(data::supported_image_extensions) + ")");
        if (!data::is_image_file(rq.output))
            throw error("--output " + rq.output.string() + ": not an image file name (supported: " +
                        std::string(data::supported_image_extensions) + ")");
        if (fs::exists(rq.output, ec) && fs::equivalent(rq.input, rq.output, ec))
            throw error("--output " + rq.output.string() + ": is the --input file; the mask would replace the image");
        if (rq.output.has_parent_path()) make_directories(rq.output.parent_path(), "--output");
        jobs.push_back({rq.input, rq.output});
    }
    if (!rq.overlay_dir.empty()) make_directories(rq.overlay_dir, "--overlay");
    return jobs;
}

data::image<float> segment_input(const segment_request& rq, const fs::path& file, std::size_t rank, std::size_t channels,
                                 data::image<float>& raw) {
    raw = data::read_image<float>(file);
    if (raw.channels != channels)
        throw error(file.string() + ": has " + std::to_string(raw.channels) + " channel(s), the network takes " + std::to_string(channels));
    const bool fits = raw.rank() == rank || (rank == 2 && raw.rank() == 3);
    if (!fits)
        throw error(file.string() + ": extents " + data::extents_text(raw.extents) + " for a " + std::to_string(rank) +
                    "D network (it takes " + (rank == 2 ? "2D images, or volumes slice by slice" : "volumes") + ")");
    if (rq.slices && !(rank == 2 && raw.rank() == 3))
        throw error(file.string() + ": --slices selects slices of volumes for a 2D network; this input is " +
                    data::extents_text(raw.extents));
    data::image<float> img = raw;
    normalize(img, rq.norm);
    return img;
}

std::vector<std::size_t> chosen_slices(const segment_request& rq, const data::image<float>& img, const fs::path& file) {
    if (!rq.slices) return {};
    return rq.slices->select(img.extents[0], file.string());
}

namespace {

data::image<float> plane(const data::image<float>& v, std::size_t z) {
    const std::size_t D = v.extents[0], H = v.extents[1], W = v.extents[2];
    data::image<float> s(v.channels, {H, W});
    for (std::size_t c = 0; c < v.channels; ++c) std::copy_n(v.values.data() + (c * D + z) * H * W, H * W, s.channel(c));
    return s;
}

data::image<std::int64_t> plane(const data::image<std::int64_t>& v, std::size_t z) {
    const std::size_t H = v.extents[1], W = v.extents[2];
    data::image<std::int64_t> s(1, {H, W});
    std::copy_n(v.values.data() + z * H * W, H * W, s.values.data());
    return s;
}

std::string lower_name(const fs::path& p) {
    std::string n = p.filename().string();
    for (auto& c : n) c = char(std::tolower(static_cast<unsigned char>(c)));
    return n;
}

}  // namespace

void segment_finished(const segment_request& rq, const segment_job& job, const data::image<float>& raw,
                      const data::image<float>& probabilities, const std::vector<std::size_t>& slices, double seconds) {
    const data::image<std::int64_t> labels = data::argmax_labels(probabilities);
    const bool png = lower_name(job.output).ends_with(".png");
    const data::pixel_type mask_type = probabilities.channels <= 256 ? data::pixel_type::u8 : png ? data::pixel_type::u16 : data::pixel_type::i16;
    data::write_image(job.output, labels, mask_type);
    std::string extra;
    if (rq.probabilities) {
        // A 2D image's probabilities become a stack of one slice per class
        // (PNG holds no floats, TIFF no 2-channel images); a volume's keep
        // the classes as channels (TIFF holds no such volume: .npy instead).
        const std::string stem = stem_of(job.output);
        std::string ext = job.output.filename().string().substr(stem.size());
        const std::string lower = lower_name(job.output);
        const bool tiff = lower.ends_with(".tif") || lower.ends_with(".tiff");
        data::image<float> stacked;
        if (probabilities.rank() == 2) {
            stacked = data::image<float>(1, {probabilities.channels, probabilities.extents[0], probabilities.extents[1]});
            stacked.values = probabilities.values;
            if (probabilities.geom.spacing.size() == 2)
                stacked.geom.spacing = {1.0, probabilities.geom.spacing[0], probabilities.geom.spacing[1]};
            if (png) ext = ".tif";
        } else if (tiff) {
            ext = ".npy";
        }
        const fs::path file = job.output.parent_path() / (stem + "_probabilities" + ext);
        data::write_image(file, probabilities.rank() == 2 ? stacked : probabilities, data::pixel_type::f32);
        extra += ", probabilities " + file.string();
    }
    if (!rq.overlay_dir.empty()) {
        const std::string stem = stem_of(job.input);
        if (labels.rank() == 2) {
            data::write_image(rq.overlay_dir / (stem + ".png"), overlay_picture(raw, labels), data::pixel_type::u8);
        } else {
            std::vector<std::size_t> shown = slices;
            const std::size_t D = labels.extents[0];
            if (shown.empty())
                for (std::size_t i = 1; i <= 5; ++i) shown.push_back(std::min(D - 1, i * D / 6));
            for (std::size_t z : shown) {
                char name[32];
                std::snprintf(name, sizeof name, "_z%03zu.png", z);
                data::write_image(rq.overlay_dir / (stem + name), overlay_picture(plane(raw, z), plane(labels, z)), data::pixel_type::u8);
            }
        }
        extra += ", pictures in " + rq.overlay_dir.string();
    }
    std::printf("%s (%s", job.input.c_str(), data::extents_text(raw.extents).c_str());
    if (!slices.empty()) std::printf(", %zu slices", slices.size());
    std::printf(") -> %s in %.2f s%s\n", job.output.c_str(), seconds, extra.c_str());
    std::fflush(stdout);
}

}  // namespace ctseg::tool
