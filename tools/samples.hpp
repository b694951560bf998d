// Data for the ctseg command: pairing image and label files, normalising
// intensities, mapping labels, cutting volumes into slices, and making the
// network-sized samples of each epoch (random crops, augmented) and of the
// validation set (a fixed grid of tiles).
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "ctseg/data/augment.hpp"
#include "ctseg/data/image.hpp"
#include "ctseg/train/trainer.hpp"

namespace ctseg::tool {

namespace fs = std::filesystem;

// How intensities are scaled before they reach the network, per file and
// channel: zscore (minus the mean, over the standard deviation), minmax (to
// [0, 1]) or none.
enum class normalization { zscore, minmax, none };
normalization parse_normalization(const std::string& name);  // throws usage_error
const char* normalization_name(normalization n);
void normalize(data::image<float>& img, normalization n);

// The file name without its image extension (".nii.gz" counts as one).
std::string stem_of(const fs::path& file);

// A file, or the image files of a folder (sorted by name).
std::vector<fs::path> image_files(const fs::path& path, const char* option);

struct file_pair {
    fs::path image, labels;
};

// Images matched to labels: two files, or two folders whose files are
// matched by stem (image "a.png" takes labels "a.png", "a.tif", "a.nii.gz", ...).
// Every image needs its labels; label files without an image are left alone.
std::vector<file_pair> pair_files(const fs::path& images, const fs::path& labels, const char* images_option,
                                  const char* labels_option);

// A 2D image or a volume with its labels (and border weights when asked).
struct labelled_image {
    std::string name;
    data::image<float> image;
    data::image<std::int64_t> labels;
    data::image<float> weights;  // empty: none
};

// What the network needs of its data and how to prepare it.
struct data_options {
    std::size_t net_rank = 2, channels = 1, classes = 2;
    normalization norm = normalization::zscore;
    label_map labels;
    std::optional<std::int64_t> ignore_label;
    bool border_weights = false;
};

// Reads a pair, normalises the image, maps and checks the labels. For a 2D
// network, a volume is cut into the slices along axis 0 that `slices` selects
// (into `out`) and, when `val_slices` is given, those it selects (into
// `val_out`); 2D images go to `out` whole. For a 3D network, volumes go whole.
void load_pair(const file_pair& pair, const data_options& opt, const slice_selection* slices, const slice_selection* val_slices,
               std::vector<labelled_image>& out, std::vector<labelled_image>* val_out);

// Every label is a class of the network or the ignore label, else an error
// naming the file, the voxel and the value.
void check_labels(const data::image<std::int64_t>& labels, const data_options& opt, const std::string& file);

// The sub-image of `extents` at `origin` (which may lie partly or wholly
// outside: positions beyond the border are mirrored, the edge not repeated).
template <class T>
data::image<T> crop_mirrored(const data::image<T>& src, const std::vector<std::ptrdiff_t>& origin, const std::vector<std::size_t>& extents);

// Network tile geometry: extents of the input and the output tile.
struct tile_shape {
    std::vector<std::size_t> input, output;
    std::size_t channels = 1;  // input channels
};

// The training samples of one epoch: `count` crops, each from an item drawn
// uniformly, at an origin drawn uniformly among those whose output tile lies
// inside the image (or, where the image is smaller than the output tile,
// holds it), augmented, all from (seed, epoch, sample index) alone.
void make_epoch_samples(const std::vector<labelled_image>& items, const tile_shape& tile, std::size_t count, std::uint64_t seed,
                        std::size_t epoch, const data::augment_options& augment, bool augmenting, train::dataset<float>& out);

// The validation samples: each item covered by output tiles without
// overlap except the last along each axis, flush with the border. Output
// positions beyond an image smaller than the tile get `pad_label`.
void make_grid_samples(const std::vector<labelled_image>& items, const tile_shape& tile, std::int64_t pad_label,
                       train::dataset<float>& out);

}  // namespace ctseg::tool
