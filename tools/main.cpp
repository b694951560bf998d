// ctseg: train, run and score the seed segmentation networks from the command
// line. `ctseg --help` lists the commands; `ctseg COMMAND --help` their options.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <tbb/global_control.h>

#include "cli.hpp"
#include "commands.hpp"
#include "ctseg/data/io.hpp"
#include "ctseg/data/metrics.hpp"
#include "report.hpp"
#include "samples.hpp"

using namespace ctseg;
using namespace ctseg::tool;

namespace {

constexpr const char* main_help = R"(usage: ctseg COMMAND [OPTIONS]

Semantic segmentation with networks that are C++ types.

commands:
  info       list the networks and variants; a variant's layer table; an image file's header
  train      train a variant on images and label images (checkpoints, metrics.csv, curves.svg)
  segment    segment images or volumes with trained weights (overlap-tile inference)
  evaluate   Dice, IoU, HD95 and pixel error of predicted label images against the truth

Run `ctseg COMMAND --help` for the options of a command.
)";

constexpr const char* info_help = R"(usage: ctseg info                              list networks and variants
       ctseg info --net N --variant V          the variant's compile-time layer table
       ctseg info FILE...                      extents, channels, stored type, spacing of image files
)";

constexpr const char* train_help = R"(usage: ctseg train --net N --variant V --images PATH --labels PATH --out RUN_DIR [options]

PATH is an image or volume file, or a folder whose images are matched to the
label images of the --labels folder by file name (without extension). A 2D
network given volumes trains on their slices along axis 0 (for NIfTI: z).
Every epoch draws new random tile-sized crops (mirrored beyond the border)
from (--seed, epoch), so a run started again with the same command resumes
exactly where it stopped. RUN_DIR receives run.json, last.safetensors,
best.safetensors (lowest validation loss; training loss without validation),
their .optim.safetensors, metrics.csv and curves.svg.

data:
  --slices SPEC          slices of volumes to train on (default all); SPEC is a
                         comma-separated union of all, N, A-B, every:K, every:K+O,
                         not-every:K, not-every:K+O (e.g. not-every:4)
  --val-slices SPEC      validate on these slices of the training volumes
  --val-images PATH      validate on other images (with --val-labels PATH)
  --label-map SPEC       map label values first: FROM=TO with FROM a value, a range
                         A-B or * (any other value), e.g. 0=0,1-255=1
  --ignore-label K       label of voxels the loss and the scores skip
  --normalize M          zscore (default: per file and channel, minus mean over
                         standard deviation), minmax (to [0, 1]) or none
  --border-weights       weigh the cross-entropy with the U-Net border weight map
  --augment LIST         none (default), or flip, rot90, elastic, rotate, scale,
                         intensity, noise, unet (= elastic,flip,rot90), comma-separated
optimisation:
  --epochs N             epochs (default 50)
  --tiles-per-epoch N    crops per epoch (default: the number of training images
                         or slices, at least 4 batches)
  --batch N              tiles per step (default 8)
  --optimizer O          adam (default), adamw or sgd
  --lr X                 learning rate (default 0.003)
  --momentum X           SGD momentum (default 0.99)
  --weight-decay X       weight decay (default 0)
  --schedule S           poly (default), cosine or constant
  --loss L               dice_ce (default), ce or dice
  --dice D               all (default: Dice term over every class) or present
                         (per tile, over the classes it contains)
  --seed S               initial weights, crops, augmentation (default 0)
other:
  --threads N            worker threads (default: all cores)
  --progress             draw the progress line even when stderr is not a terminal
)";

constexpr const char* segment_help = R"(usage: ctseg segment --weights W --input PATH --output PATH [options]

Segments an image or volume (or every image of a folder, written under the
same names into the --output folder) by overlap-tile inference. The mask is
written in the format of the output's extension with the input's spacing and
NIfTI orientation. A 2D network segments a volume slice by slice along axis 0.
The network, variant and normalisation default to those of run.json next to
the weights.

  --net N --variant V    the network (default: from run.json)
  --normalize M          zscore, minmax or none (default: from run.json, else zscore)
  --slices SPEC          only these slices of a volume (the others are labelled 0);
                         SPEC as for train (e.g. every:4)
  --overlap X            overlap of neighbouring tiles, in [0, 1) (default 0.5)
  --mirror               average over mirrored copies (test-time augmentation)
  --uniform              blend tiles uniformly instead of with a Gaussian
  --batch N              tiles per forward pass (default 4)
  --overlay DIR          PNG pictures of the mask over the image (volumes: the
                         selected slices, or five)
  --probabilities        also write the class probabilities (float32) next to the
                         mask as NAME_probabilities: a 2D image's as a stack of one
                         slice per class (.tif for PNG), a volume's as channels
  --threads N            worker threads (default: all cores)
  --progress             draw the progress line even when stderr is not a terminal
)";

constexpr const char* evaluate_help = R"(usage: ctseg evaluate --pred PATH --truth PATH [options]

Scores label images against the truth: per class Dice, IoU and HD95 (95th
percentile of the surface distances, in units of the spacing), and the pixel
error. Dice, IoU and the pixel error are computed over all voxels of all files
(or selected slices) at once; HD95 is the mean over files (or slices). Folders
are matched by file name (without extension).

  --classes K            number of classes (default: the largest label + 1)
  --ignore-label K       truth label of voxels not scored
  --label-map SPEC       map the values of both first (e.g. 0=0,1-255=1)
  --slices SPEC          score only these slices of volumes, each as a 2D image
  --no-hd95              skip the Hausdorff distances
  --json FILE            also write the scores as JSON
)";

std::vector<variant_entry> all_variants() {
    std::vector<variant_entry> all;
    for (auto family : {&unet2d_variants, &unet3d_variants, &vnet_variants, &fcn_variants, &context_net_variants})
        for (auto& e : family()) all.push_back(std::move(e));
    return all;
}

const variant_entry& find_variant(const std::vector<variant_entry>& all, const std::string& net, const std::string& variant) {
    std::string nets, variants;
    for (const auto& e : all) {
        if (nets.find(e.net + ",") == std::string::npos && nets.find(e.net) == std::string::npos)
            nets += (nets.empty() ? "" : ", ") + e.net;
        if (e.net == net) {
            if (e.variant == variant) return e;
            variants += (variants.empty() ? "" : ", ") + e.variant;
        }
    }
    if (variants.empty()) throw usage_error("unknown network '" + net + "' (known: " + nets + ")");
    throw usage_error("network " + net + " has no variant '" + variant + "' (known: " + variants + ")");
}

std::string thousands(long v) {
    std::string s = std::to_string(v);
    for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(std::size_t(i), ",");
    return s;
}

std::optional<tbb::global_control> thread_limit(const arguments& a) {
    if (!a.has("threads")) return std::nullopt;
    return std::optional<tbb::global_control>(std::in_place, tbb::global_control::max_allowed_parallelism,
                                              std::size_t(a.integer("threads", 1, 1, 4096)));
}

std::string choice(const arguments& a, const std::string& name, const std::string& fallback, std::initializer_list<const char*> allowed) {
    const std::string v = a.text(name, fallback);
    std::string list;
    for (const char* x : allowed) {
        if (v == x) return v;
        list += (list.empty() ? "" : ", ") + std::string(x);
    }
    throw usage_error("--" + name + " must be one of " + list + ", got '" + v + "'");
}

// --- info ------------------------------------------------------------------

void info_file(const fs::path& file) {
    const data::image_info info = data::probe_image(file);
    const auto format = data::format_of(file);
    const char* format_text = !format ? "?"
                              : *format == data::file_format::png        ? "PNG"
                              : *format == data::file_format::tiff       ? "TIFF"
                              : *format == data::file_format::nifti      ? "NIfTI-1"
                              : *format == data::file_format::nifti_gz   ? "NIfTI-1, gzip"
                                                                         : "NumPy .npy";
    std::printf("%s\n  format    %s\n  extents   %s (%s)\n  channels  %zu\n  stored    %s\n", file.c_str(), format_text,
                data::extents_text(info.extents).c_str(), info.extents.size() == 3 ? "D x H x W; NIfTI z y x" : "H x W",
                info.channels, std::string(data::pixel_type_name(info.stored)).c_str());
    std::string spacing;
    for (double s : info.geom.spacing) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", s);
        spacing += (spacing.empty() ? "" : " x ") + std::string(buf);
    }
    std::printf("  spacing   %s\n", spacing.empty() ? "(none)" : spacing.c_str());
    if (*format == data::file_format::nifti || *format == data::file_format::nifti_gz)
        std::printf("  qform     code %d\n  sform     code %d\n", info.geom.qform_code, info.geom.sform_code);
}

int info(int argc, char** argv) {
    arguments a("info", argc, argv, 2, {{"net", true}, {"variant", true}});
    if (a.help()) {
        std::fputs(info_help, stdout);
        return 0;
    }
    if (!a.positional().empty()) {
        if (a.has("net") || a.has("variant")) throw usage_error("ctseg info: give image files or --net/--variant, not both");
        for (const auto& f : a.positional()) info_file(f);
        return 0;
    }
    const auto all = all_variants();
    if (a.has("net") || a.has("variant")) {
        find_variant(all, a.required("net"), a.required("variant")).summary(std::cout);
        return 0;
    }
    std::printf("%-12s %-8s %-16s %-16s %12s %10s  %s\n", "network", "variant", "input tile", "output tile", "parameters", "GFLOP",
                "receptive field");
    for (const auto& e : all) {
        const std::string in = std::to_string(e.input_channels) + "x" + by_x(e.input_tile),
                          out = std::to_string(e.classes) + "x" + by_x(e.output_tile);
        std::printf("%-12s %-8s %-16s %-16s %12s %10.2f  %s\n", e.net.c_str(), e.variant.c_str(), in.c_str(), out.c_str(),
                    thousands(e.parameters).c_str(), e.flops * 1e-9, by_x(e.receptive_field).c_str());
    }
    std::printf("(tiles: channels x extents, slowest axis first; GFLOP per tile)\n");
    return 0;
}

// --- train -----------------------------------------------------------------

int train_command(int argc, char** argv) {
    arguments a("train", argc, argv, 2,
                {{"net", true},          {"variant", true},       {"images", true},     {"labels", true},     {"val-images", true},
                 {"val-labels", true},   {"out", true},           {"epochs", true},     {"batch", true},      {"lr", true},
                 {"optimizer", true},    {"momentum", true},      {"weight-decay", true}, {"loss", true},     {"dice", true},
                 {"schedule", true},     {"augment", true},       {"border-weights", false}, {"ignore-label", true},
                 {"label-map", true},    {"slices", true},        {"val-slices", true}, {"normalize", true},  {"seed", true},
                 {"threads", true},      {"tiles-per-epoch", true}, {"progress", false}});
    if (a.help()) {
        std::fputs(train_help, stdout);
        return 0;
    }
    if (!a.positional().empty()) throw usage_error("ctseg train: unexpected argument '" + a.positional()[0] + "'");
    train_request rq;
    rq.net = a.required("net");
    rq.variant = a.required("variant");
    rq.images = a.required("images");
    rq.labels = a.required("labels");
    rq.out = a.required("out");
    rq.val_images = a.text("val-images");
    rq.val_labels = a.text("val-labels");
    if (rq.val_images.empty() != rq.val_labels.empty()) throw usage_error("ctseg train: --val-images and --val-labels go together");
    rq.epochs = std::size_t(a.integer("epochs", 50, 1, 1000000));
    rq.batch = std::size_t(a.integer("batch", 8, 1, 4096));
    rq.tiles_per_epoch = std::size_t(a.integer("tiles-per-epoch", 0, 1, 100000000));
    rq.lr = a.real("lr", 3e-3, 1e-12, 10);
    rq.momentum = a.real("momentum", 0.99, 0, 1);
    rq.weight_decay = a.real("weight-decay", 0, 0, 10);
    rq.optimizer = choice(a, "optimizer", "adam", {"adam", "adamw", "sgd"});
    rq.loss = choice(a, "loss", "dice_ce", {"dice_ce", "ce", "dice"});
    rq.dice = choice(a, "dice", "all", {"all", "present"});
    rq.schedule = choice(a, "schedule", "poly", {"poly", "cosine", "constant"});
    rq.seed = std::uint64_t(a.integer("seed", 0, 0, std::numeric_limits<long>::max()));
    rq.progress = progress_wanted(a.has("progress"));
    if (a.has("slices")) rq.slices = slice_selection(a.text("slices"));
    if (a.has("val-slices")) rq.val_slices = slice_selection(a.text("val-slices"));
    if (a.has("label-map")) rq.data.labels = label_map(a.text("label-map"));
    if (a.has("ignore-label")) rq.data.ignore_label = a.optional_integer("ignore-label");
    rq.data.norm = parse_normalization(a.text("normalize", "zscore"));
    rq.data.border_weights = a.has("border-weights");
    const auto all = all_variants();
    const variant_entry& e = find_variant(all, rq.net, rq.variant);
    rq.augment_spec = a.text("augment", "none");
    rq.augment = parse_augment(rq.augment_spec, e.rank);
    if (e.rank == 3 && (rq.slices || rq.val_slices)) throw usage_error("ctseg train: --slices and --val-slices are for 2D networks");
    const auto threads = thread_limit(a);
    e.train(rq);
    return 0;
}

// --- segment ---------------------------------------------------------------

int segment_command(int argc, char** argv) {
    arguments a("segment", argc, argv, 2,
                {{"net", true}, {"variant", true}, {"weights", true}, {"input", true}, {"output", true}, {"normalize", true},
                 {"slices", true}, {"overlap", true}, {"mirror", false}, {"uniform", false}, {"batch", true}, {"overlay", true},
                 {"probabilities", false}, {"threads", true}, {"progress", false}});
    if (a.help()) {
        std::fputs(segment_help, stdout);
        return 0;
    }
    if (!a.positional().empty()) throw usage_error("ctseg segment: unexpected argument '" + a.positional()[0] + "'");
    segment_request rq;
    rq.weights = a.required("weights");
    rq.input = a.required("input");
    rq.output = a.required("output");
    if (!fs::is_regular_file(rq.weights)) throw error("--weights " + rq.weights.string() + ": no such file");
    // Defaults from the run that wrote the weights.
    nlohmann::json run;
    const fs::path run_file = rq.weights.parent_path() / "run.json";
    if (fs::is_regular_file(run_file)) {
        try {
            std::ifstream in(run_file);
            run = nlohmann::json::parse(in);
        } catch (const std::exception& e) {
            throw error(run_file.string() + ": not a readable run file: " + std::string(e.what()).substr(0, 120));
        }
    }
    auto from_run = [&](const char* key) -> std::string {
        return run.is_object() && run.contains(key) && run[key].is_string() ? run[key].get<std::string>() : std::string();
    };
    rq.net = a.text("net", from_run("net"));
    rq.variant = a.text("variant", from_run("variant"));
    if (rq.net.empty() || rq.variant.empty())
        throw usage_error("ctseg segment: --net and --variant are required (no run.json next to the weights)");
    const std::string norm = a.text("normalize", from_run("normalize"));
    rq.norm = parse_normalization(norm.empty() ? "zscore" : norm);
    if (a.has("slices")) rq.slices = slice_selection(a.text("slices"));
    rq.overlap = a.real("overlap", 0.5, 0, 0.99);
    rq.mirror = a.has("mirror");
    rq.gaussian = !a.has("uniform");
    rq.batch = std::size_t(a.integer("batch", 4, 1, 4096));
    rq.overlay_dir = a.text("overlay");
    rq.probabilities = a.has("probabilities");
    rq.progress = progress_wanted(a.has("progress"));
    const auto all = all_variants();
    const variant_entry& e = find_variant(all, rq.net, rq.variant);
    if (e.rank == 3 && rq.slices) throw usage_error("ctseg segment: --slices is for 2D networks");
    const auto threads = thread_limit(a);
    const auto t0 = std::chrono::steady_clock::now();
    e.segment(rq);
    std::printf("segmentation took %.2f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return 0;
}

// --- evaluate --------------------------------------------------------------

data::image<std::int64_t> plane(const data::image<std::int64_t>& v, std::size_t z) {
    const std::size_t H = v.extents[1], W = v.extents[2];
    data::image<std::int64_t> s(1, {H, W});
    if (v.geom.spacing.size() == 3) s.geom.spacing = {v.geom.spacing[1], v.geom.spacing[2]};
    std::copy_n(v.values.data() + z * H * W, H * W, s.values.data());
    return s;
}

nlohmann::json number_json(double v) {
    if (std::isnan(v)) return nullptr;
    if (std::isinf(v)) return "inf";
    return v;
}

int evaluate_command(int argc, char** argv) {
    arguments a("evaluate", argc, argv, 2,
                {{"pred", true}, {"truth", true}, {"classes", true}, {"ignore-label", true}, {"label-map", true}, {"slices", true},
                 {"json", true}, {"no-hd95", false}});
    if (a.help()) {
        std::fputs(evaluate_help, stdout);
        return 0;
    }
    if (!a.positional().empty()) throw usage_error("ctseg evaluate: unexpected argument '" + a.positional()[0] + "'");
    const fs::path pred = a.required("pred"), truth = a.required("truth");
    const std::optional<std::int64_t> ignore = a.optional_integer("ignore-label");
    const label_map map = a.has("label-map") ? label_map(a.text("label-map")) : label_map();
    const std::optional<slice_selection> slices =
        a.has("slices") ? std::optional<slice_selection>(slice_selection(a.text("slices"))) : std::nullopt;
    const bool hd95 = !a.has("no-hd95");
    std::optional<long> classes;
    if (a.has("classes")) classes = a.integer("classes", 2, 1, 1 << 20);

    struct loaded {
        fs::path pred, truth;
        data::image<std::int64_t> p, t;
    };
    std::vector<loaded> files;
    std::int64_t largest = 0;
    // Every truth file needs its prediction; other files of a --pred folder
    // (probabilities, say) are left alone.
    for (const auto& pair : pair_files(truth, pred, "--truth", "--pred")) {
        loaded l{pair.labels, pair.image, data::read_labels(pair.labels), data::read_labels(pair.image)};
        if (l.p.extents != l.t.extents)
            throw error(l.pred.string() + ": extents " + data::extents_text(l.p.extents) + " differ from the truth " + l.truth.string() +
                        " (" + data::extents_text(l.t.extents) + ")");
        for (auto* img : {&l.p, &l.t})
            for (auto& v : img->values) {
                v = map(v);
                if (!(ignore && v == *ignore)) largest = std::max(largest, v);
            }
        if (slices && l.t.rank() != 3)
            throw error(l.truth.string() + ": --slices selects slices of volumes; this image is " + data::extents_text(l.t.extents));
        files.push_back(std::move(l));
    }
    const std::size_t K = classes ? std::size_t(*classes) : std::size_t(largest + 1);
    data::score_accumulator acc(K, ignore, hd95);
    std::size_t parts = 0;
    for (const auto& l : files) {
        try {
            if (slices) {
                for (std::size_t z : slices->select(l.t.extents[0], l.truth.string())) {
                    acc.add(plane(l.p, z), plane(l.t, z));
                    ++parts;
                }
            } else {
                acc.add(l.p, l.t);
                ++parts;
            }
        } catch (const error& e) {
            throw error(l.pred.string() + " vs " + l.truth.string() + ": " + e.what());
        }
    }
    const data::segmentation_scores s = acc.result();
    std::printf("%zu file(s)%s, %zu voxels scored, %zu classes%s\n", files.size(),
                slices ? (", " + std::to_string(parts) + " slices").c_str() : "", s.voxels, K,
                ignore ? (", ignore label " + std::to_string(*ignore)).c_str() : "");
    std::printf("%5s %14s %14s %9s %9s %9s\n", "class", "truth voxels", "predicted", "Dice", "IoU", "HD95");
    auto cell = [](double v) {
        char buf[32];
        if (std::isnan(v)) return std::string("-");
        if (std::isinf(v)) return std::string("inf");
        std::snprintf(buf, sizeof buf, "%.4f", v);
        return std::string(buf);
    };
    for (std::size_t c = 0; c < K; ++c) {
        const auto& x = s.classes[c];
        std::printf("%5zu %14zu %14zu %9s %9s %9s\n", c, x.truth_voxels, x.predicted_voxels, cell(x.dice).c_str(), cell(x.iou).c_str(),
                    cell(x.hd95).c_str());
    }
    std::printf("pixel error %s\n", cell(s.pixel_error).c_str());
    if (K > 1) std::printf("mean Dice over classes 1..%zu: %s\n", K - 1, cell(s.mean_dice()).c_str());
    if (a.has("json")) {
        nlohmann::json j;
        j["files"] = files.size();
        j["slices"] = slices ? nlohmann::json(parts) : nlohmann::json(nullptr);
        j["voxels"] = s.voxels;
        j["wrong"] = s.wrong;
        j["pixel_error"] = number_json(s.pixel_error);
        j["mean_dice"] = number_json(s.mean_dice());
        j["classes"] = nlohmann::json::array();
        for (std::size_t c = 0; c < K; ++c) {
            const auto& x = s.classes[c];
            j["classes"].push_back({{"class", c},
                                    {"truth_voxels", x.truth_voxels},
                                    {"predicted_voxels", x.predicted_voxels},
                                    {"intersection", x.intersection},
                                    {"dice", number_json(x.dice)},
                                    {"iou", number_json(x.iou)},
                                    {"hd95", number_json(x.hd95)}});
        }
        write_text(a.text("json"), j.dump(2) + "\n");
    }
    return 0;
}

std::string one_line(std::string s) {
    for (auto& c : s)
        if (c == '\n' || c == '\r') c = ' ';
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        if (argc < 2) throw usage_error("no command given (ctseg --help lists them)");
        const std::string command = argv[1];
        if (command == "--help" || command == "-h" || command == "help") {
            std::fputs(main_help, stdout);
            return 0;
        }
        if (command == "info") return info(argc, argv);
        if (command == "train") return train_command(argc, argv);
        if (command == "segment") return segment_command(argc, argv);
        if (command == "evaluate") return evaluate_command(argc, argv);
        throw usage_error("unknown command '" + command + "' (commands: info, train, segment, evaluate; ctseg --help)");
    } catch (const usage_error& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "ctseg: error: %s\n", one_line(e.what()).c_str());
        return 2;
    } catch (const std::bad_alloc&) {
        std::fflush(stdout);
        std::fprintf(stderr, "ctseg: error: out of memory\n");
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "ctseg: error: %s\n", one_line(e.what()).c_str());
    }
    return 1;
}
