// sparse3d: the semi-automated setting of the 3D U-Net paper on a real brain
// MRI. Only every 16th axial slice of the Colin27 T1 volume is annotated (AAL
// atlas, four classes); a 3D U-Net trained on that sparse annotation predicts
// the dense volume, and its Dice on the unannotated slices is compared with a
// 2D U-Net trained on the annotated slices and with plain linear interpolation
// of the labels between them. docs/sparse3d.md describes the setting, the
// recipe and the measured results.
//
//   sparse3d run [--minutes M] [--minutes-2d M] [--threads T] [--out DIR] [--seed S] [--quick]
//                [--iterations-3d N] [--iterations-2d N] [--augment none|rs|elastic]
//                [--coordinates zyx|yx|none] [--dice-all-classes] [--lr-3d LR] [--lr-2d LR]
//                [--eval-every N] [--skip-2d] [--data DIR]
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "ctseg/data/augment.hpp"
#include "ctseg/data/io.hpp"
#include "ctseg/data/metrics.hpp"
#include "ctseg/data/sparse.hpp"
#include "ctseg/data/tiling.hpp"
#include "ctseg/error.hpp"
#include "ctseg/interop.hpp"
#include "ctseg/model/network.hpp"
#include "ctseg/spec.hpp"
#include "ctseg/train/trainer.hpp"

using namespace ctseg;

namespace {

constexpr std::size_t classes = 4;  // background, left cerebrum, right cerebrum, cerebellum
constexpr std::int64_t ignore_label = 255;

// ---------------------------------------------------------------------------
// The networks: padded U-Nets with batch norm, for 2D slices and 3D volumes.

template <std::size_t W>
using conv_bn_relu_twice = sequential<conv<W, kernel<3>, padding<1>>, batch_norm<>, relu,
                                      conv<W, kernel<3>, padding<1>>, batch_norm<>, relu>;

template <std::size_t Level, std::size_t Depth, std::size_t Width, bool Bottom = (Level == Depth)>
struct unet_level {
    static constexpr std::size_t w = Width << Level;
    using type = seq<indexed<"down", Level, conv_bn_relu_twice<w>>,
                     skip_concat<seq<max_pool<kernel<2>>, typename unet_level<Level + 1, Depth, Width>::type,
                                     indexed<"up", Depth - 1 - Level, conv_transpose<w, kernel<2>, stride<2>>>>>,
                     indexed<"dec", Depth - 1 - Level, conv_bn_relu_twice<w>>>;
};
template <std::size_t Level, std::size_t Depth, std::size_t Width>
struct unet_level<Level, Depth, Width, true> {
    using type = named<"bottom", conv_bn_relu_twice<(Width << Depth)>>;
};
template <std::size_t Classes, std::size_t Width, std::size_t Depth>
using bn_unet = seq<typename unet_level<0, Depth, Width>::type, named<"head", conv<Classes, kernel<1>>>>;

// Input channels: the normalised intensity and the normalised z, y, x
// position (zero unless --coordinates gives them).
constexpr std::size_t in_channels = 4;

// 3D: width 8, depth 4, trained on 64^3 windows of the 2 mm volume.
using net3d = bn_unet<classes, 8, 4>;
constexpr std::array<std::size_t, 3> window3 = {64, 64, 64};
// 2D: width 16, depth 4, one 1 mm axial slice (217 x 181) on a 224 x 192 canvas.
constexpr std::array<std::size_t, 2> canvas2 = {224, 192};
using net2d = bind<bn_unet<classes, 16, 4>, shape<in_channels, canvas2[0], canvas2[1]>>;

// ---------------------------------------------------------------------------
// Volumes: extents {z, y, x}, C-order, NIfTI x fastest.

struct grid3 {
    std::size_t d = 0, h = 0, w = 0;
    std::size_t size() const { return d * h * w; }
    std::size_t at(std::size_t z, std::size_t y, std::size_t x) const { return (z * h + y) * w + x; }
};

struct subject {
    grid3 g;                           // 1 mm grid
    data::geometry geom;               // of the T1 volume, kept on the written predictions
    std::vector<float> image;          // normalised intensity (zero mean, unit variance)
    std::vector<std::int64_t> labels;  // 0..3 everywhere: for evaluation only
    std::vector<std::int64_t> sparse;  // 0..3 on the annotated slices, ignore_label elsewhere: for training
    float background = 0;              // normalised value of intensity 0 (the canvas padding)
};

// AAL codes to the four classes: odd codes 1-89 left cerebrum, even 2-90 right
// cerebrum, 91-116 cerebellum (vermis included).
std::int64_t class_of_aal(std::int64_t code, const std::filesystem::path& file) {
    if (code == 0) return 0;
    if (code >= 1 && code <= 90) return code % 2 == 1 ? 1 : 2;
    if (code >= 91 && code <= 116) return 3;
    throw error(file.string() + ": label " + std::to_string(code) + " is not an AAL code (0-116)");
}

// The Colin27 T1 volume and the AAL atlas on its grid (Debian's mricron-data),
// with the annotated axial slices.
subject load_subject(const std::filesystem::path& dir, std::size_t every, std::size_t offset, std::vector<std::size_t>& annotated) {
    const auto t1_file = dir / "ch2.nii.gz", atlas_file = dir / "aal.nii.gz";
    for (const auto& f : {t1_file, atlas_file})
        if (!std::filesystem::exists(f))
            throw error(f.string() + ": not found; the Colin27 T1 template and the AAL atlas come with Debian's mricron-data "
                                     "(apt-get install mricron-data) or give their folder with --data DIR");
    const auto img = data::read_image<float>(t1_file);
    const auto aal = data::read_labels(atlas_file);
    if (img.channels != 1 || img.extents.size() != 3)
        throw error(t1_file.string() + ": expected one 3D volume, got " + std::to_string(img.channels) + " channel(s) of " +
                    data::extents_text(img.extents));
    if (aal.extents != img.extents)
        throw error(atlas_file.string() + ": extents " + data::extents_text(aal.extents) + " differ from " + t1_file.string() + " (" +
                    data::extents_text(img.extents) + ")");
    subject s;
    s.g = {img.extents[0], img.extents[1], img.extents[2]};
    if (s.g.d < 2 || s.g.h < 2 || s.g.w < 2)
        throw error(t1_file.string() + ": volume " + data::extents_text(img.extents) + " is too small (2 voxels per axis at least)");
    s.geom = img.geom;
    double sum = 0, sq = 0;
    for (float v : img.values) {
        sum += v;
        sq += double(v) * v;
    }
    const double n = double(img.values.size()), mean = sum / n, sd = std::sqrt(std::max(1e-12, sq / n - mean * mean));
    s.image.resize(img.values.size());
    for (std::size_t i = 0; i < s.image.size(); ++i) s.image[i] = float((img.values[i] - mean) / sd);
    s.background = float(-mean / sd);
    data::image<std::int64_t> labels = data::image_like<std::int64_t>(aal);
    for (std::size_t i = 0; i < labels.values.size(); ++i) labels.values[i] = class_of_aal(aal.values[i], atlas_file);
    annotated = data::every_kth_slice(s.g.d, every, offset);
    s.sparse = data::sparse_labels(labels, 0, annotated, ignore_label).values;
    s.labels = std::move(labels.values);
    return s;
}

// Normalised position of 1 mm index u (possibly fractional, possibly outside)
// on an axis of n voxels: -1 at the first voxel, +1 at the last.
float position(double u, std::size_t n) { return float(2.0 * u / double(n - 1) - 1.0); }

// ---------------------------------------------------------------------------
// Scores: Dice per class.

struct scores {
    std::array<double, classes> dice{};
    double mean_brain() const { return (dice[1] + dice[2] + dice[3]) / 3; }
};

// Dice per class over the voxels where `evaluated` is 1 (the periodic check
// during training; the final table uses data::score_accumulator).
scores dice_where(const std::vector<std::int64_t>& pred, const subject& s, const std::vector<std::uint8_t>& evaluated) {
    std::array<std::size_t, classes> truth{}, predicted{}, both{};
    for (std::size_t i = 0; i < pred.size(); ++i) {
        if (!evaluated[i]) continue;
        const auto t = std::size_t(s.labels[i]), p = std::size_t(pred[i]);
        ++truth[t];
        ++predicted[p];
        if (t == p) ++both[t];
    }
    scores r;
    for (std::size_t c = 0; c < classes; ++c)
        r.dice[c] = truth[c] + predicted[c] ? 2.0 * double(both[c]) / double(truth[c] + predicted[c]) : NAN;
    return r;
}

// ---------------------------------------------------------------------------
// Baseline (b): linear interpolation of the one-hot labels along z between
// annotated slices (the nearest annotated slice outside them), argmax.

std::vector<std::int64_t> interpolate_labels(const subject& s, const std::vector<std::size_t>& annotated) {
    std::vector<std::int64_t> pred(s.g.size());
    const std::size_t plane = s.g.h * s.g.w;
    tbb::parallel_for(std::size_t(0), s.g.d, [&](std::size_t z) {
        // za <= z <= zb: the annotated slices around z (both the nearest one outside them).
        std::size_t za = annotated.front(), zb = annotated.back();
        for (std::size_t a : annotated) {
            if (a <= z) za = a;
            if (a >= z && zb >= a) zb = a;
        }
        if (z < annotated.front()) zb = za;
        if (z > annotated.back()) za = zb;
        const double t = zb == za ? 0.0 : (double(z) - double(za)) / (double(zb) - double(za));
        const std::int64_t* la = s.sparse.data() + za * plane;
        const std::int64_t* lb = s.sparse.data() + zb * plane;
        for (std::size_t i = 0; i < plane; ++i) {
            std::array<double, classes> p{};
            p[std::size_t(la[i])] += 1 - t;
            p[std::size_t(lb[i])] += t;
            pred[z * plane + i] = std::int64_t(std::max_element(p.begin(), p.end()) - p.begin());
        }
    });
    return pred;
}

// ---------------------------------------------------------------------------
// The 3D model works at 2 mm: the 1 mm volume averaged over 2 x 2 x 2 blocks.

struct coarse_volume {
    grid3 g;                   // 2 mm grid
    std::vector<float> image;  // block means of the normalised intensity
};

coarse_volume downsample(const subject& s) {
    coarse_volume c;
    c.g = {(s.g.d + 1) / 2, (s.g.h + 1) / 2, (s.g.w + 1) / 2};
    c.image.resize(c.g.size());
    for (std::size_t z = 0; z < c.g.d; ++z)
        for (std::size_t y = 0; y < c.g.h; ++y)
            for (std::size_t x = 0; x < c.g.w; ++x) {
                double sum = 0;
                for (std::size_t dz = 0; dz < 2; ++dz)
                    for (std::size_t dy = 0; dy < 2; ++dy)
                        for (std::size_t dx = 0; dx < 2; ++dx)  // the last 1 mm voxel stands in past the edge
                            sum += s.image[s.g.at(std::min(2 * z + dz, s.g.d - 1), std::min(2 * y + dy, s.g.h - 1),
                                                  std::min(2 * x + dx, s.g.w - 1))];
                c.image[c.g.at(z, y, x)] = float(sum / 8);
            }
    return c;
}

// One 3D sample: a window of the 2 mm grid whose first voxel is the
// 2 mm voxel `origin` (the window may reach outside the volume: background
// intensity there), with the coordinate channels (1 mm positions of the 2 mm
// voxel centres: 2k + 0.5), and the labels of the annotated slices (each 2 mm
// voxel takes the label of one of the 2 x 2 annotated 1 mm voxels it covers,
// drawn by `rng`; ignore elsewhere).
void place3(const subject& s, const coarse_volume& c, const std::vector<std::size_t>& annotated, std::array<std::ptrdiff_t, 3> origin,
            std::array<std::size_t, 3> window, std::mt19937_64* rng, float* image, std::int64_t* labels) {
    const std::size_t D = window[0], H = window[1], W = window[2], V = D * H * W;
    for (std::size_t a = 0; a < D; ++a)
        for (std::size_t b = 0; b < H; ++b)
            for (std::size_t e = 0; e < W; ++e) {
                const auto k = std::ptrdiff_t(a) + origin[0], j = std::ptrdiff_t(b) + origin[1], i = std::ptrdiff_t(e) + origin[2];
                const std::size_t v = (a * H + b) * W + e;
                const bool inside = k >= 0 && j >= 0 && i >= 0 && std::size_t(k) < c.g.d && std::size_t(j) < c.g.h &&
                                    std::size_t(i) < c.g.w;
                image[v] = inside ? c.image[c.g.at(std::size_t(k), std::size_t(j), std::size_t(i))] : s.background;
                image[V + v] = position(2.0 * double(k) + 0.5, s.g.d);
                image[2 * V + v] = position(2.0 * double(j) + 0.5, s.g.h);
                image[3 * V + v] = position(2.0 * double(i) + 0.5, s.g.w);
            }
    if (!labels) return;
    std::fill_n(labels, V, ignore_label);
    for (std::size_t z : annotated) {
        const std::ptrdiff_t a = std::ptrdiff_t(z / 2) - origin[0];
        if (a < 0 || a >= std::ptrdiff_t(D)) continue;
        for (std::size_t b = 0; b < H; ++b)
            for (std::size_t e = 0; e < W; ++e) {
                const auto j = std::ptrdiff_t(b) + origin[1], i = std::ptrdiff_t(e) + origin[2];
                if (j < 0 || i < 0 || std::size_t(j) >= c.g.h || std::size_t(i) >= c.g.w) continue;
                const std::size_t pick = rng ? std::size_t((*rng)() % 4) : 0;
                const std::size_t y = std::min(2 * std::size_t(j) + pick / 2, s.g.h - 1),
                                  x = std::min(2 * std::size_t(i) + pick % 2, s.g.w - 1);
                labels[(std::size_t(a) * H + b) * W + e] = s.sparse[s.g.at(z, y, x)];
            }
    }
}

// A random window origin along one axis of n voxels for a window of m: inside
// the volume when the window is smaller, holding the volume when larger.
std::ptrdiff_t random_origin(std::size_t n, std::size_t m, std::mt19937_64& rng) {
    const std::ptrdiff_t lo = std::min<std::ptrdiff_t>(0, std::ptrdiff_t(n) - std::ptrdiff_t(m)),
                         hi = std::max<std::ptrdiff_t>(0, std::ptrdiff_t(n) - std::ptrdiff_t(m));
    return lo + std::ptrdiff_t(rng() % std::uint64_t(hi - lo + 1));
}

// One 2D sample: 1 mm axial slice z on the canvas at `shift`.
void place2(const subject& s, std::size_t z, std::array<std::size_t, 2> shift, float* image, std::int64_t* labels) {
    constexpr std::size_t H = canvas2[0], W = canvas2[1], V = H * W;
    for (std::size_t b = 0; b < H; ++b)
        for (std::size_t e = 0; e < W; ++e) {
            const auto j = std::ptrdiff_t(b) - std::ptrdiff_t(shift[0]), i = std::ptrdiff_t(e) - std::ptrdiff_t(shift[1]);
            const bool inside = j >= 0 && i >= 0 && std::size_t(j) < s.g.h && std::size_t(i) < s.g.w;
            const std::size_t v = b * W + e, src = inside ? s.g.at(z, std::size_t(j), std::size_t(i)) : 0;
            image[v] = inside ? s.image[src] : s.background;
            image[V + v] = position(double(z), s.g.d);
            image[2 * V + v] = position(double(j), s.g.h);
            image[3 * V + v] = position(double(i), s.g.w);
            if (labels) labels[v] = inside ? s.sparse[src] : ignore_label;
        }
}

// ---------------------------------------------------------------------------
// Training within a wall-clock budget. Timed steps of a throw-away copy turn
// the budget into an iteration count, which fixes the learning-rate schedule
// (poly decay to zero at the last iteration); should the machine slow down
// later, training stops at the budget all the same. Given an iteration count
// (--iterations-3d/-2d) there is neither probe nor stop, and the run depends on
// the seed alone (and is the same for any thread count).

struct budget_result {
    std::size_t iterations = 0, done = 0;
    double seconds = 0, seconds_per_iteration = 0;
    double final_loss = NAN;
    bool stopped = false;  // at the budget, before the last iteration
};

struct out_of_time {};

template <class Bound>
budget_result train_within(network<Bound>& net, train::trainer_options opt, std::size_t samples_per_epoch,
                           const std::function<void(std::size_t epoch, train::dataset<float>&)>& make_epoch,
                           double budget_s, std::optional<std::size_t> iterations, double lr, const char* name,
                           const std::function<void(std::size_t epochs_done)>& after_epoch = {}) {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(clock::now() - t0).count(); };
    const std::size_t per_epoch = (samples_per_epoch + opt.batch_size - 1) / opt.batch_size;
    budget_result r;
    const bool timed = !iterations;
    if (timed) {
        // Two warm-up steps (allocation), then ten timed ones.
        constexpr std::size_t warm = 2, timed_steps = 10;
        network<Bound> probe(opt.seed + 1000);
        train::trainer_options po = opt;
        po.epochs = (warm + timed_steps + per_epoch - 1) / per_epoch;
        po.progress = false;
        po.checkpoint_dir.clear();
        po.schedule.reset();
        std::vector<clock::time_point> stamps;
        po.on_iteration = [&](std::size_t it) {
            stamps.push_back(clock::now());
            if (it == warm + timed_steps) throw out_of_time{};
        };
        train::dataset<float> d;
        train::trainer<Bound> t(probe, po);
        try {
            t.fit([&](std::size_t epoch) -> const train::dataset<float>& {
                make_epoch(epoch, d);
                return d;
            });
        } catch (const out_of_time&) {
        }
        r.seconds_per_iteration = std::chrono::duration<double>(stamps.back() - stamps[warm - 1]).count() / double(stamps.size() - warm);
        // 10% headroom: the machine may be busier later.
        const double left = budget_s - elapsed();
        iterations = std::max<std::size_t>(1, std::size_t(0.9 * std::max(0.0, left) / r.seconds_per_iteration));
    }
    const std::size_t epochs = (*iterations + per_epoch - 1) / per_epoch;
    r.iterations = epochs * per_epoch;
    std::printf("%s: %zu iterations (%zu epochs of %zu samples, batch %zu)", name, r.iterations, epochs, samples_per_epoch,
                opt.batch_size);
    if (timed) std::printf(", %.2f s per iteration measured", r.seconds_per_iteration);
    std::printf("\n");
    std::fflush(stdout);
    opt.epochs = epochs;
    opt.adam.lr = lr;
    opt.schedule = train::lr_schedule::poly(lr, r.iterations);
    auto user_hook = opt.on_iteration;
    opt.on_iteration = [&](std::size_t it) {
        if (user_hook) user_hook(it);
        r.done = it;
        if (timed && it < r.iterations && elapsed() > budget_s) throw out_of_time{};
    };
    train::trainer<Bound> t(net, opt);
    train::dataset<float> data;
    try {
        t.fit([&](std::size_t epoch) -> const train::dataset<float>& {
            if (after_epoch && epoch > 1) after_epoch(epoch - 1);
            make_epoch(epoch, data);
            return data;
        });
    } catch (const out_of_time&) {
        r.stopped = true;
        std::fprintf(stderr, "\n");
        std::printf("%s: stopped at the budget after %zu of %zu iterations (the machine got slower than measured)\n", name, r.done,
                    r.iterations);
    }
    r.final_loss = t.history().empty() ? NAN : t.history().back().train_loss;
    r.seconds = elapsed();
    return r;
}

// ---------------------------------------------------------------------------

struct options {
    double minutes = 20, minutes_2d = 5;
    long threads = 2;
    std::uint64_t seed = 1;
    std::filesystem::path out = "sparse3d-out", data = "/usr/share/mricron/templates";
    bool quick = false;
    std::optional<std::size_t> iterations_3d, iterations_2d;
    std::size_t every = 16, offset = 8;
    double lr3 = 3e-3, lr2 = 3e-3;
    bool skip_2d = false;
    std::size_t eval_every = 0;
    std::string coordinates = "none";  // position channels given: zyx, yx or none (the others stay zero)
    std::string augment = "elastic";   // 3D windows: none, rs (rotation, scaling, gray values) or elastic (rs + deformation)
    bool dice_present = true;
};

// Zeroes the position channels the options leave out (1: z, 2: y, 3: x).
void drop_coordinates(const options& o, float* sample, std::size_t voxels) {
    if (o.coordinates == "zyx") return;
    std::fill_n(sample + voxels, voxels, 0.0f);
    if (o.coordinates == "none") std::fill_n(sample + 2 * voxels, 2 * voxels, 0.0f);
}

// The whole of `text` read by `read` (std::stol, std::stod), or nothing when it
// is not a number or has anything after one.
template <class Read>
auto whole_number(const std::string& text, Read&& read) -> std::optional<decltype(read(text, nullptr))> {
    std::size_t used = 0;
    try {
        const auto v = read(text, &used);
        if (used == text.size()) return v;
    } catch (const std::exception&) {
    }
    return std::nullopt;
}
constexpr auto read_long = [](const std::string& t, std::size_t* used) { return std::stol(t, used); };
constexpr auto read_double = [](const std::string& t, std::size_t* used) { return std::stod(t, used); };

long parse_count(std::string_view flag, const std::string& text, long lo, long hi) {
    const auto v = whole_number(text, read_long);
    if (!v || *v < lo || *v > hi)
        throw error(std::string(flag) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                    "], got '" + text + "'");
    return *v;
}

double parse_minutes(std::string_view flag, const std::string& text) {
    const auto v = whole_number(text, read_double);
    if (!v || !(*v > 0 && *v <= 24 * 60))
        throw error(std::string(flag) + " must be a number of minutes in (0, 1440], got '" + text + "'");
    return *v;
}

double parse_rate(std::string_view flag, const std::string& text) {
    const auto v = whole_number(text, read_double);
    if (!v || !(*v > 0 && *v < 1))
        throw error(std::string(flag) + " must be a learning rate in (0, 1), got '" + text + "'");
    return *v;
}

options parse(int argc, char** argv) {
    if (argc < 2 || std::string_view(argv[1]) != "run")
        throw error("usage: sparse3d run [--minutes M] [--minutes-2d M] [--threads T] [--out DIR] [--seed S] [--quick] "
                    "[--iterations-3d N] [--iterations-2d N] [--augment none|rs|elastic] [--coordinates zyx|yx|none] "
                    "[--dice-all-classes] [--lr-3d LR] "
                    "[--lr-2d LR] [--eval-every N] [--skip-2d] [--data DIR]");
    options o;
    bool minutes_given = false, minutes_2d_given = false;
    for (int i = 2; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (flag == "--quick") {
            o.quick = true;
            continue;
        }
        if (flag == "--dice-all-classes") {
            o.dice_present = false;
            continue;
        }
        if (flag == "--skip-2d") {
            o.skip_2d = true;
            continue;
        }
        if (i + 1 >= argc) throw error(std::string(flag) + " needs a value");
        const std::string value = argv[++i];
        if (flag == "--minutes") o.minutes = parse_minutes(flag, value), minutes_given = true;
        else if (flag == "--minutes-2d") o.minutes_2d = parse_minutes(flag, value), minutes_2d_given = true;
        else if (flag == "--threads") o.threads = parse_count(flag, value, 1, 1024);
        else if (flag == "--seed") o.seed = std::uint64_t(parse_count(flag, value, 0, 1L << 40));
        else if (flag == "--out") o.out = value;
        else if (flag == "--data") o.data = value;
        else if (flag == "--iterations-3d") o.iterations_3d = std::size_t(parse_count(flag, value, 1, 1L << 30));
        else if (flag == "--iterations-2d") o.iterations_2d = std::size_t(parse_count(flag, value, 1, 1L << 30));
        else if (flag == "--lr-3d") o.lr3 = parse_rate(flag, value);
        else if (flag == "--lr-2d") o.lr2 = parse_rate(flag, value);
        else if (flag == "--eval-every") o.eval_every = std::size_t(parse_count(flag, value, 0, 1000000));
        else if (flag == "--augment") {
            if (value != "none" && value != "rs" && value != "elastic")
                throw error("--augment must be none, rs or elastic, got '" + value + "'");
            o.augment = value;
        } else if (flag == "--coordinates") {
            if (value != "zyx" && value != "yx" && value != "none")
                throw error("--coordinates must be zyx, yx or none, got '" + value + "'");
            o.coordinates = value;
        } else
            throw error("unknown option " + std::string(flag));
    }
    if (o.quick) {
        if (!minutes_given) o.minutes = 1;
        if (!minutes_2d_given) o.minutes_2d = 0.5;
    }
    return o;
}


// The 3D prediction: class probabilities of the whole 2 mm volume by
// overlap-tile inference (Gaussian-weighted 64^3 tiles), upsampled
// trilinearly to the 1 mm grid (2 mm voxel k covers 1 mm voxels 2k and 2k + 1,
// so 1 mm voxel u lies at 2 mm coordinate (u - 0.5) / 2), argmax.
template <class Bound>
std::vector<std::int64_t> predict3(const network<Bound>& net, const options& o, const subject& s, const coarse_volume& c) {
    data::image<float> input(in_channels, {c.g.d, c.g.h, c.g.w});
    place3(s, c, {}, {0, 0, 0}, {c.g.d, c.g.h, c.g.w}, nullptr, input.values.data(), nullptr);
    drop_coordinates(o, input.values.data(), c.g.size());
    const data::image<float> prob = data::predict_tiled(net, input);
    const std::vector<float>& prob2 = prob.values;
    std::vector<std::int64_t> pred3(s.g.size());
    tbb::parallel_for(std::size_t(0), s.g.d, [&](std::size_t z) {
        auto axis = [](std::size_t u1, std::size_t n2, std::size_t& lo, std::size_t& hi, double& t) {
            const double u = std::clamp((double(u1) - 0.5) / 2.0, 0.0, double(n2 - 1));
            lo = std::size_t(u);
            hi = std::min(lo + 1, n2 - 1);
            t = u - double(lo);
        };
        std::size_t z0, z1, y0, y1, x0, x1;
        double tz, ty, tx;
        axis(z, c.g.d, z0, z1, tz);
        for (std::size_t y = 0; y < s.g.h; ++y) {
            axis(y, c.g.h, y0, y1, ty);
            for (std::size_t x = 0; x < s.g.w; ++x) {
                axis(x, c.g.w, x0, x1, tx);
                std::size_t best = 0;
                double best_p = -1;
                for (std::size_t q = 0; q < classes; ++q) {
                    const float* p = prob2.data() + q * c.g.size();
                    auto lerp = [](double a, double b, double t) { return a + (b - a) * t; };
                    auto row = [&](std::size_t zz, std::size_t yy) { return lerp(p[c.g.at(zz, yy, x0)], p[c.g.at(zz, yy, x1)], tx); };
                    const double v = lerp(lerp(row(z0, y0), row(z0, y1), ty), lerp(row(z1, y0), row(z1, y1), ty), tz);
                    if (v > best_p) best_p = v, best = q;
                }
                pred3[s.g.at(z, y, x)] = std::int64_t(best);
            }
        }
    });
    return pred3;
}

// What one method produced: a dense 1 mm label volume and how long it took.
struct method_result {
    std::string name, key;  // table row, file and CSV key
    std::vector<std::int64_t> prediction;
    budget_result fit;      // training (none for interpolation)
    double seconds = 0;     // training and prediction
};

train::trainer_options common_training_options(const options& o) {
    train::trainer_options opt;
    opt.loss = train::loss_kind::dice_ce;
    opt.dice_over = o.dice_present ? train::dice_average::present_classes : train::dice_average::all_classes;
    opt.ignore_index = ignore_label;
    opt.optimizer = train::optimizer_kind::adam;
    opt.seed = o.seed;
    opt.progress = true;
    return opt;
}

// The 3D U-Net, trained on random CD x CH x CW windows of the 2 mm volume.
method_result run3d(const options& o, const subject& s, const std::vector<std::size_t>& annotated,
                    const std::vector<std::uint8_t>& evaluated) {
    using clock = std::chrono::steady_clock;
    using train_net = bind<net3d, shape<in_channels, window3[0], window3[1], window3[2]>>;
    constexpr std::size_t V3 = train_net::input_shape::plane, samples_per_epoch = 4;
    const auto t0 = clock::now();
    const coarse_volume c = downsample(s);
    std::printf("3d: U-Net of %zu parameters on %zu x %zu x %zu windows of the %zu x %zu x %zu volume at 2 mm\n",
                std::size_t(train_net::parameter_count), window3[0], window3[1], window3[2], c.g.d, c.g.h, c.g.w);
    train::trainer_options opt = common_training_options(o);
    opt.batch_size = 1;
    auto model3 = std::make_unique<network<train_net>>(o.seed);
    // Augmentation of the windows: rotation about a random axis, scaling,
    // gray values and (elastic) a smooth deformation; no flips, which would
    // put a hemisphere's anatomy on the other side.
    std::optional<data::augment_options> augment;
    if (o.augment != "none") {
        data::augment_options a;
        a.p_rotation = 1;
        a.max_rotation_deg = 15;
        a.p_scale = 1;
        a.scale_min = 0.85;
        a.scale_max = 1.15;
        a.image_interpolation = data::interpolation::linear;
        a.p_gamma = 0.3;
        a.gamma_min = 0.7;
        a.gamma_max = 1.5;
        a.p_contrast = 0.3;
        a.contrast = 0.25;
        a.p_brightness = 0.3;
        a.brightness = 0.1;
        if (o.augment == "elastic") {
            a.p_elastic = 1;
            a.elastic = data::elastic_kind::grid;
            a.elastic_grid = 4;
            a.elastic_sigma = 2;
        }
        augment = a;
    }
    const std::size_t warped_channels = o.coordinates == "none" ? 1 : in_channels;
    data::image<float> window(warped_channels, {window3[0], window3[1], window3[2]}), window_out;
    data::image<std::int64_t> window_labels(1, {window3[0], window3[1], window3[2]}), window_labels_out;
    auto make3 = [&](std::size_t epoch, train::dataset<float>& d) {
        std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ull + epoch * 7919 + 3);
        d.count = samples_per_epoch;
        d.images.resize(samples_per_epoch * train_net::input_shape::size);
        d.labels.resize(samples_per_epoch * V3);
        d.weights.clear();
        for (std::size_t n = 0; n < samples_per_epoch; ++n) {
            const std::array<std::ptrdiff_t, 3> origin = {random_origin(c.g.d, window3[0], rng), random_origin(c.g.h, window3[1], rng),
                                                          random_origin(c.g.w, window3[2], rng)};
            float* image = d.images.data() + n * train_net::input_shape::size;
            std::int64_t* labels = d.labels.data() + n * V3;
            place3(s, c, annotated, origin, window3, &rng, image, labels);
            drop_coordinates(o, image, V3);
            if (augment) {
                // Only the channels that carry something are resampled.
                std::copy_n(image, warped_channels * V3, window.values.begin());
                std::copy_n(labels, V3, window_labels.values.begin());
                data::augment(window, window_labels, window_out, window_labels_out, *augment, rng());
                std::copy_n(window_out.values.begin(), warped_channels * V3, image);
                std::copy_n(window_labels_out.values.begin(), V3, labels);
            }
        }
    };
    auto report = [&](std::size_t epochs_done) {
        if (!o.eval_every || epochs_done % o.eval_every != 0) return;
        const scores e = dice_where(predict3(*model3, o, s, c), s, evaluated);
        std::fprintf(stderr, "\n");
        std::printf("3d: [%.0f s] after epoch %zu: Dice %.4f %.4f %.4f mean %.4f\n",
                    std::chrono::duration<double>(clock::now() - t0).count(), epochs_done, e.dice[1], e.dice[2], e.dice[3],
                    e.mean_brain());
        std::fflush(stdout);
    };
    method_result r{"3D U-Net (sparse)", "unet3d", {}, {}, 0};
    r.fit = train_within(*model3, opt, samples_per_epoch, make3, o.minutes * 60, o.iterations_3d, o.lr3, "3d", report);
    r.prediction = predict3(*model3, o, s, c);
    r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
    return r;
}

// The 2D U-Net, trained on the annotated 1 mm slices and applied to every slice.
method_result run2d(const options& o, const subject& s, const std::vector<std::size_t>& annotated) {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    constexpr std::size_t V2 = net2d::input_shape::size / in_channels;
    const std::array<std::size_t, 2> slack = {canvas2[0] - s.g.h, canvas2[1] - s.g.w};
    train::trainer_options opt = common_training_options(o);
    opt.batch_size = 4;
    const std::size_t samples2 = 4 * annotated.size();
    auto make2 = [&](std::size_t epoch, train::dataset<float>& d) {
        std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ull + epoch * 7919 + 5);
        d.count = samples2;
        d.images.resize(samples2 * net2d::input_shape::size);
        d.labels.resize(samples2 * V2);
        d.weights.clear();
        for (std::size_t n = 0; n < samples2; ++n) {
            const std::array<std::size_t, 2> shift = {std::size_t(rng() % (slack[0] + 1)), std::size_t(rng() % (slack[1] + 1))};
            place2(s, annotated[n % annotated.size()], shift, d.images.data() + n * net2d::input_shape::size, d.labels.data() + n * V2);
            drop_coordinates(o, d.images.data() + n * net2d::input_shape::size, V2);
        }
    };
    auto model2 = std::make_unique<network<net2d>>(o.seed + 1);
    method_result r{"2D U-Net (slices)", "unet2d", {}, {}, 0};
    r.fit = train_within(*model2, opt, samples2, make2, o.minutes_2d * 60, o.iterations_2d, o.lr2, "2d");
    // Every axial slice, by overlap-tile inference (one tile covers a slice).
    data::image<float> volume(in_channels, {s.g.d, s.g.h, s.g.w});
    for (std::size_t z = 0; z < s.g.d; ++z)
        for (std::size_t y = 0; y < s.g.h; ++y)
            for (std::size_t x = 0; x < s.g.w; ++x) {
                const std::size_t v = s.g.at(z, y, x);
                volume.channel(0)[v] = s.image[v];
                volume.channel(1)[v] = position(double(z), s.g.d);
                volume.channel(2)[v] = position(double(y), s.g.h);
                volume.channel(3)[v] = position(double(x), s.g.w);
            }
    drop_coordinates(o, volume.values.data(), s.g.size());
    r.prediction = data::argmax_labels(data::predict_slices(*model2, volume)).values;
    r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
    return r;
}

std::string fixed(double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

int run(const options& o) {
    std::vector<std::size_t> annotated;
    const subject s = load_subject(o.data, o.every, o.offset, annotated);
    std::vector<std::uint8_t> evaluated(s.g.size(), 1);  // the voxels of the unannotated slices
    const std::size_t plane = s.g.h * s.g.w;
    for (std::size_t z : annotated) std::fill_n(evaluated.begin() + std::ptrdiff_t(z * plane), plane, std::uint8_t{0});
    std::printf("volume %zu x %zu x %zu (z y x, 1 mm), %zu annotated axial slices (z = %zu + %zu k), %zu evaluated; %ld thread(s)\n",
                s.g.d, s.g.h, s.g.w, annotated.size(), o.offset, o.every, s.g.d - annotated.size(), o.threads);
    std::fflush(stdout);

    std::vector<method_result> results;
    results.push_back(run3d(o, s, annotated, evaluated));
    if (!o.skip_2d) results.push_back(run2d(o, s, annotated));
    {
        const auto t0 = std::chrono::steady_clock::now();
        method_result r{"interpolation", "interpolation", interpolate_labels(s, annotated), {}, 0};
        r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        results.push_back(std::move(r));
    }

    // Dice per class over the voxels of the unannotated slices.
    data::image<std::int64_t> truth(1, {s.g.d, s.g.h, s.g.w});
    truth.values = s.labels;
    truth.geom = s.geom;
    std::filesystem::create_directories(o.out);
    std::string csv = "method,dice_background,dice_left_cerebrum,dice_right_cerebrum,dice_cerebellum,mean_dice_brain,"
                      "iterations,train_seconds,total_seconds\n";
    std::printf("\nDice on the %zu unannotated axial slices (1 mm grid)\n", s.g.d - annotated.size());
    std::printf("%-20s %14s %14s %11s %8s %11s %9s\n", "method", "left cerebrum", "right cerebrum", "cerebellum", "mean",
                "iterations", "train s");
    for (auto& r : results) {
        data::image<std::int64_t> pred = data::image_like<std::int64_t>(truth);
        pred.values = std::move(r.prediction);
        data::score_accumulator acc(classes, std::nullopt, /*hausdorff*/ false);
        const auto sc = acc.add(pred, truth, &evaluated);
        const double mean = (sc.classes[1].dice + sc.classes[2].dice + sc.classes[3].dice) / 3;
        std::printf("%-20s %14.4f %14.4f %11.4f %8.4f %11s %9s\n", r.name.c_str(), sc.classes[1].dice, sc.classes[2].dice,
                    sc.classes[3].dice, mean, r.fit.iterations ? std::to_string(r.fit.done).c_str() : "-",
                    r.fit.iterations ? fixed(r.fit.seconds, 1).c_str() : "-");
        csv += r.key;
        for (std::size_t c = 0; c < classes; ++c) csv += "," + fixed(sc.classes[c].dice, 6);
        csv += "," + fixed(mean, 6) + "," + std::to_string(r.fit.done) + "," + fixed(r.fit.seconds, 1) + "," + fixed(r.seconds, 1) + "\n";
        data::write_image(o.out / ("prediction_" + r.key + ".nii.gz"), pred, data::pixel_type::u8);
    }
    {
        data::image<std::int64_t> sparse = data::image_like<std::int64_t>(truth);
        sparse.values = s.sparse;
        data::write_image(o.out / "annotation.nii.gz", sparse, data::pixel_type::u8);
    }
    interop::write_file_atomically(o.out / "results.csv", std::as_bytes(std::span(csv)));
    std::printf("\nwrote %s: results.csv, annotation.nii.gz (255: not annotated), prediction_{", o.out.string().c_str());
    for (std::size_t i = 0; i < results.size(); ++i) std::printf("%s%s", i ? "," : "", results[i].key.c_str());
    std::printf("}.nii.gz (0 background, 1 left cerebrum, 2 right cerebrum, 3 cerebellum)\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const options o = parse(argc, argv);
        tbb::global_control limit(tbb::global_control::max_allowed_parallelism, std::size_t(o.threads));
        tbb::task_arena arena{int(o.threads)};
        int rc = 0;
        arena.execute([&] { rc = run(o); });
        return rc;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sparse3d: %s\n", e.what());
        return 1;
    }
}
