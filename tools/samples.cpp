#include "samples.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <system_error>

#include <tbb/parallel_for.h>

#include "ctseg/data/border_weights.hpp"
#include "ctseg/data/io.hpp"
#include "ctseg/data/tiling.hpp"

namespace ctseg::tool {

namespace {
std::string joined(const std::vector<std::size_t>& v) {
    std::string s;
    for (auto x : v) s += (s.empty() ? "" : ", ") + std::to_string(x);
    return s;
}
}  // namespace

normalization parse_normalization(const std::string& name) {
    if (name == "zscore") return normalization::zscore;
    if (name == "minmax") return normalization::minmax;
    if (name == "none") return normalization::none;
    throw usage_error("--normalize must be zscore, minmax or none, got '" + name + "'");
}

const char* normalization_name(normalization n) {
    switch (n) {
        case normalization::zscore: return "zscore";
        case normalization::minmax: return "minmax";
        case normalization::none: return "none";
    }
    return "?";
}

void normalize(data::image<float>& img, normalization n) {
    if (n == normalization::none) return;
    const std::size_t V = img.voxels();
    for (std::size_t c = 0; c < img.channels; ++c) {
        float* v = img.channel(c);
        double scale = 1, shift = 0;
        if (n == normalization::zscore) {
            double sum = 0, sq = 0;
            for (std::size_t i = 0; i < V; ++i) sum += v[i];
            const double mean = sum / double(V);
            for (std::size_t i = 0; i < V; ++i) sq += (v[i] - mean) * (v[i] - mean);
            const double sd = std::sqrt(sq / double(V));
            shift = mean;
            scale = sd > 0 ? 1 / sd : 1;  // a constant channel becomes 0
        } else {
            const auto [lo, hi] = std::minmax_element(v, v + V);
            shift = *lo;
            scale = *hi > *lo ? 1 / (double(*hi) - double(*lo)) : 1;
        }
        for (std::size_t i = 0; i < V; ++i) v[i] = float((v[i] - shift) * scale);
    }
}

std::string stem_of(const fs::path& file) {
    std::string name = file.filename().string();
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    for (const char* ext : {".nii.gz", ".nii", ".png", ".tiff", ".tif", ".npy"}) {
        const std::string e = ext;
        if (lower.size() > e.size() && lower.ends_with(e)) return name.substr(0, name.size() - e.size());
    }
    return file.stem().string();
}

std::vector<fs::path> image_files(const fs::path& path, const char* option) {
    std::error_code ec;
    const auto st = fs::status(path, ec);
    if (ec || !fs::exists(st)) throw error(std::string(option) + " " + path.string() + ": no such file or folder");
    if (fs::is_directory(st)) return data::list_images(path);
    if (!data::is_image_file(path))
        throw error(path.string() + ": not an image file name (supported: " + std::string(data::supported_image_extensions) + ")");
    return {path};
}

std::vector<file_pair> pair_files(const fs::path& images, const fs::path& labels, const char* images_option,
                                  const char* labels_option) {
    const auto image_list = image_files(images, images_option);
    const auto label_list = image_files(labels, labels_option);
    const bool image_folder = fs::is_directory(images), label_folder = fs::is_directory(labels);
    if (image_folder != label_folder)
        throw error(std::string(images_option) + " " + images.string() + " and " + labels_option + " " + labels.string() +
                    " must both be files or both be folders");
    if (!image_folder) return {{image_list[0], label_list[0]}};
    std::vector<file_pair> pairs;
    for (const auto& img : image_list) {
        const std::string stem = stem_of(img);
        const fs::path* match = nullptr;
        for (const auto& lab : label_list) {
            if (stem_of(lab) != stem) continue;
            if (match)
                throw error(std::string(labels_option) + " " + labels.string() + ": two files match " + img.filename().string() +
                            " of " + images_option + ": " + match->filename().string() + " and " + lab.filename().string());
            match = &lab;
        }
        if (!match)
            throw error(std::string(labels_option) + " " + labels.string() + ": no file for " + img.filename().string() + " of " +
                        images_option + " (looked for '" + stem + ".*')");
        pairs.push_back({img, *match});
    }
    return pairs;
}

void check_labels(const data::image<std::int64_t>& labels, const data_options& opt, const std::string& file) {
    const auto K = std::int64_t(opt.classes);
    const std::size_t V = labels.voxels();
    for (std::size_t i = 0; i < V; ++i) {
        const std::int64_t v = labels.values[i];
        if ((v >= 0 && v < K) || (opt.ignore_label && v == *opt.ignore_label)) continue;
        std::size_t rest = i;
        std::vector<std::size_t> at(labels.rank());
        for (std::size_t a = labels.rank(); a-- > 0;) {
            at[a] = rest % labels.extents[a];
            rest /= labels.extents[a];
        }
        throw error(file + ": label " + std::to_string(v) + " at voxel (" + joined(at) + ") is not a class of the network (0 to " +
                    std::to_string(K - 1) + ")" + (opt.ignore_label ? " nor the ignore label " + std::to_string(*opt.ignore_label) : "") +
                    "; map it with --label-map (e.g. " + std::to_string(v) + "=1)");
    }
}

namespace {

data::image<float> plane_of(const data::image<float>& v, std::size_t z) {
    const std::size_t H = v.extents[1], W = v.extents[2], D = v.extents[0];
    data::image<float> s(v.channels, {H, W});
    if (v.geom.spacing.size() == 3) s.geom.spacing = {v.geom.spacing[1], v.geom.spacing[2]};
    for (std::size_t c = 0; c < v.channels; ++c) std::copy_n(v.values.data() + (c * D + z) * H * W, H * W, s.channel(c));
    return s;
}

data::image<std::int64_t> plane_of(const data::image<std::int64_t>& v, std::size_t z) {
    const std::size_t H = v.extents[1], W = v.extents[2];
    data::image<std::int64_t> s(1, {H, W});
    if (v.geom.spacing.size() == 3) s.geom.spacing = {v.geom.spacing[1], v.geom.spacing[2]};
    std::copy_n(v.values.data() + z * H * W, H * W, s.values.data());
    return s;
}

void add_weights(labelled_image& item, const data_options& opt) {
    if (!opt.border_weights) return;
    data::border_weight_options o;
    o.ignore_label = opt.ignore_label;
    item.weights = data::border_weights_from_labels(item.labels, o);
}

}  // namespace

void load_pair(const file_pair& pair, const data_options& opt, const slice_selection* slices, const slice_selection* val_slices,
               std::vector<labelled_image>& out, std::vector<labelled_image>* val_out) {
    const std::string image_file = pair.image.string(), label_file = pair.labels.string();
    data::image<float> img = data::read_image<float>(pair.image);
    data::image<std::int64_t> lab = data::read_labels(pair.labels);
    if (img.extents != lab.extents)
        throw error(label_file + ": labels of extents " + data::extents_text(lab.extents) + " for image " + image_file + " of extents " +
                    data::extents_text(img.extents));
    if (img.channels != opt.channels)
        throw error(image_file + ": has " + std::to_string(img.channels) + " channel(s), the network takes " +
                    std::to_string(opt.channels));
    if (img.rank() != 2 && img.rank() != 3)
        throw error(image_file + ": extents " + data::extents_text(img.extents) + ", expected a 2D image or a 3D volume");
    if (opt.net_rank == 3 && img.rank() != 3)
        throw error(image_file + ": a 3D network needs volumes, this image is " + data::extents_text(img.extents));
    normalize(img, opt.norm);
    if (!opt.labels.identity())
        for (auto& v : lab.values) v = opt.labels(v);
    check_labels(lab, opt, label_file);

    if (opt.net_rank == 2 && img.rank() == 3) {
        const std::size_t D = img.extents[0];
        auto add = [&](const slice_selection& sel, std::vector<labelled_image>& to) {
            for (std::size_t z : sel.select(D, image_file)) {
                labelled_image item{image_file + "[z=" + std::to_string(z) + "]", plane_of(img, z), plane_of(lab, z), {}};
                add_weights(item, opt);
                to.push_back(std::move(item));
            }
        };
        add(slices ? *slices : slice_selection(), out);
        if (val_slices && val_out) add(*val_slices, *val_out);
        return;
    }
    if (slices || val_slices)
        throw error(image_file + ": --slices and --val-slices select slices of volumes for a 2D network; this input is " +
                    data::extents_text(img.extents) + (opt.net_rank == 3 ? " for a 3D network" : ""));
    labelled_image item{image_file, std::move(img), std::move(lab), {}};
    add_weights(item, opt);
    out.push_back(std::move(item));
}

template <class T>
data::image<T> crop_mirrored(const data::image<T>& src, const std::vector<std::ptrdiff_t>& origin, const std::vector<std::size_t>& extents) {
    const std::size_t R = src.rank();
    if (origin.size() != R || extents.size() != R || R < 1 || R > 3)
        throw error("crop_mirrored: origin and extents of rank " + std::to_string(origin.size()) + " for an image of rank " +
                    std::to_string(R));
    data::image<T> out(src.channels, extents);
    out.geom.spacing = src.geom.spacing;
    const std::size_t lead = 3 - R;
    std::array<std::size_t, 3> E{1, 1, 1}, O{1, 1, 1};
    std::array<std::vector<std::size_t>, 3> index{std::vector<std::size_t>{0}, std::vector<std::size_t>{0}, std::vector<std::size_t>{0}};
    for (std::size_t a = 0; a < R; ++a) {
        E[lead + a] = src.extents[a];
        O[lead + a] = extents[a];
        auto& ix = index[lead + a];
        ix.resize(extents[a]);
        for (std::size_t i = 0; i < extents[a]; ++i) ix[i] = data::mirror_index(origin[a] + std::ptrdiff_t(i), src.extents[a]);
    }
    T* dst = out.values.data();
    for (std::size_t c = 0; c < src.channels; ++c)
        for (std::size_t z = 0; z < O[0]; ++z)
            for (std::size_t y = 0; y < O[1]; ++y) {
                const T* row = src.values.data() + ((c * E[0] + index[0][z]) * E[1] + index[1][y]) * E[2];
                for (std::size_t x = 0; x < O[2]; ++x) *dst++ = row[index[2][x]];
            }
    return out;
}

template data::image<float> crop_mirrored(const data::image<float>&, const std::vector<std::ptrdiff_t>&, const std::vector<std::size_t>&);
template data::image<std::int64_t> crop_mirrored(const data::image<std::int64_t>&, const std::vector<std::ptrdiff_t>&,
                                                 const std::vector<std::size_t>&);

namespace {

// SplitMix64: a well-mixed 64-bit value of its input, so that neighbouring
// (seed, epoch, sample) triples give unrelated streams.
std::uint64_t mix(std::uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void check_tile(const std::vector<labelled_image>& items, const tile_shape& tile, const char* what) {
    if (items.empty()) throw error(std::string("no ") + what + " images");
    for (const auto& it : items)
        if (it.image.rank() != tile.input.size())
            throw error(it.name + ": extents " + data::extents_text(it.image.extents) + " for a network of rank " +
                        std::to_string(tile.input.size()));
}

// Copies one sample (input-sized image, output-sized labels and weights) into slot s.
void store(train::dataset<float>& out, std::size_t s, const data::image<float>& img, const data::image<std::int64_t>& lab,
           const data::image<float>* w) {
    std::copy(img.values.begin(), img.values.end(), out.images.begin() + std::ptrdiff_t(s * img.values.size()));
    std::copy(lab.values.begin(), lab.values.end(), out.labels.begin() + std::ptrdiff_t(s * lab.values.size()));
    if (w) std::copy(w->values.begin(), w->values.end(), out.weights.begin() + std::ptrdiff_t(s * w->values.size()));
}

void size_dataset(train::dataset<float>& out, std::size_t count, const tile_shape& tile, bool weights) {
    const std::size_t in = data::image<float>::voxels_of(tile.input), o = data::image<float>::voxels_of(tile.output);
    out.count = count;
    out.images.assign(count * tile.channels * in, 0.0f);
    out.labels.assign(count * o, 0);
    out.weights.assign(weights ? count * o : 0, 0.0f);
}

}  // namespace

void make_epoch_samples(const std::vector<labelled_image>& items, const tile_shape& tile, std::size_t count, std::uint64_t seed,
                        std::size_t epoch, const data::augment_options& augment, bool augmenting, train::dataset<float>& out) {
    check_tile(items, tile, "training");
    const std::size_t R = tile.input.size();
    const bool weights = !items[0].weights.values.empty();
    size_dataset(out, count, tile, weights);
    tbb::parallel_for(std::size_t{0}, count, [&](std::size_t s) {
        std::mt19937_64 rng(mix(mix(mix(seed) ^ epoch) ^ s));
        const labelled_image& item = items[std::size_t(rng() % items.size())];
        std::vector<std::ptrdiff_t> in_origin(R), margin(R);
        for (std::size_t a = 0; a < R; ++a) {
            const auto E = std::ptrdiff_t(item.image.extents[a]), So = std::ptrdiff_t(tile.output[a]);
            margin[a] = (std::ptrdiff_t(tile.input[a]) - So) / 2;
            const std::ptrdiff_t lo = std::min<std::ptrdiff_t>(0, E - So), span = std::abs(E - So) + 1;
            in_origin[a] = lo + std::ptrdiff_t(rng() % std::uint64_t(span)) - margin[a];
        }
        data::image<float> img = crop_mirrored(item.image, in_origin, tile.input);
        data::image<std::int64_t> lab = crop_mirrored(item.labels, in_origin, tile.input);
        data::image<float> w;
        if (weights) w = crop_mirrored(item.weights, in_origin, tile.input);
        if (augmenting) {
            const std::uint64_t aug_seed = rng();
            data::image<float> img2, w2;
            data::image<std::int64_t> lab2;
            if (weights) data::augment(img, lab, w, img2, lab2, w2, augment, aug_seed);
            else data::augment(img, lab, img2, lab2, augment, aug_seed);
            img = std::move(img2);
            lab = std::move(lab2);
            w = std::move(w2);
        }
        // The output tile sits `margin` voxels inside the input tile.
        lab = crop_mirrored(lab, margin, tile.output);
        if (weights) w = crop_mirrored(w, margin, tile.output);
        store(out, s, img, lab, weights ? &w : nullptr);
    });
}

void make_grid_samples(const std::vector<labelled_image>& items, const tile_shape& tile, std::int64_t pad_label,
                       train::dataset<float>& out) {
    check_tile(items, tile, "validation");
    const std::size_t R = tile.input.size();
    struct placement {
        std::size_t item;
        std::vector<std::size_t> origin;  // of the output tile
    };
    std::vector<placement> tiles;
    for (std::size_t k = 0; k < items.size(); ++k) {
        std::vector<std::vector<std::size_t>> axes(R);
        for (std::size_t a = 0; a < R; ++a) axes[a] = data::tile_origins(items[k].image.extents[a], tile.output[a], 0.0, 1);
        std::vector<std::size_t> pick(R, 0);
        while (true) {
            placement p{k, std::vector<std::size_t>(R)};
            for (std::size_t a = 0; a < R; ++a) p.origin[a] = axes[a][pick[a]];
            tiles.push_back(std::move(p));
            std::size_t a = R;
            while (a-- > 0 && ++pick[a] == axes[a].size()) pick[a] = 0;
            if (a == std::size_t(-1)) break;
        }
    }
    const bool weights = !items[0].weights.values.empty();
    size_dataset(out, tiles.size(), tile, weights);
    tbb::parallel_for(std::size_t{0}, tiles.size(), [&](std::size_t s) {
        const labelled_image& item = items[tiles[s].item];
        std::vector<std::ptrdiff_t> in_origin(R), out_origin(R);
        for (std::size_t a = 0; a < R; ++a) {
            out_origin[a] = std::ptrdiff_t(tiles[s].origin[a]);
            in_origin[a] = out_origin[a] - (std::ptrdiff_t(tile.input[a]) - std::ptrdiff_t(tile.output[a])) / 2;
        }
        const data::image<float> img = crop_mirrored(item.image, in_origin, tile.input);
        data::image<std::int64_t> lab = crop_mirrored(item.labels, out_origin, tile.output);
        data::image<float> w;
        if (weights) w = crop_mirrored(item.weights, out_origin, tile.output);
        // Mirrored positions beyond the image are not scored.
        const std::size_t lead = 3 - R;
        std::array<std::size_t, 3> O{1, 1, 1}, limit{1, 1, 1};
        for (std::size_t a = 0; a < R; ++a) {
            O[lead + a] = tile.output[a];
            limit[lead + a] = item.image.extents[a] - tiles[s].origin[a];
        }
        for (std::size_t z = 0; z < O[0]; ++z)
            for (std::size_t y = 0; y < O[1]; ++y)
                for (std::size_t x = 0; x < O[2]; ++x)
                    if (z >= limit[0] || y >= limit[1] || x >= limit[2]) lab.values[(z * O[1] + y) * O[2] + x] = pad_label;
        store(out, s, img, lab, weights ? &w : nullptr);
    });
}

}  // namespace ctseg::tool
