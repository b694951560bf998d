// What the ctseg command shows: progress bars, the training curves as SVG,
// pictures of masks over images.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "ctseg/data/image.hpp"
#include "ctseg/train/trainer.hpp"

namespace ctseg::tool {

namespace fs = std::filesystem;

// Writes `text` to `file` through a temporary and a rename.
void write_text(const fs::path& file, const std::string& text);

// Whether progress bars are drawn: standard error is a terminal, or forced.
bool progress_wanted(bool forced);

// One line on standard error, redrawn: "label [#####.....] 12/40 00:07 left".
class progress_bar {
public:
    progress_bar(std::string label, bool enabled);
    void update(std::size_t done, std::size_t total);
    void finish();  // ends the line (if one was drawn)

private:
    std::string label_;
    bool enabled_, drawn_ = false;
    std::chrono::steady_clock::time_point start_, last_;
};

// The loss curves (training, validation) and the validation Dice per epoch,
// as an SVG picture of two panels.
std::string curves_svg(const std::vector<train::epoch_record>& history, const std::string& title);

// An RGB picture of a 2D image (channel 0, or 3 channels as colour; grey
// levels stretched between the 0.5th and 99.5th percentiles) with each class
// above 0 of `labels` tinted in its colour and outlined.
data::image<std::uint8_t> overlay_picture(const data::image<float>& image, const data::image<std::int64_t>& labels);

}  // namespace ctseg::tool
