// The worked example of docs/data-io.md, which quotes it verbatim
// (check_doc.py). Exits 1 if the mask does not keep the scan's geometry.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "ctseg/data/io.hpp"

namespace fs = std::filesystem;
using namespace ctseg::data;

int main(int argc, char** argv) {
    const fs::path dir = argc > 1 ? fs::path(argv[1]) : fs::temp_directory_path() / "ctseg-data-io-example";
    fs::create_directories(dir);

    // A scan of 40 x 48 x 32 voxels (z y x) of 1.5 x 1 x 1 mm, placed in the
    // world by an sform; values 0..999, stored as int16.
    image<float> scan(1, {40, 48, 32});
    scan.geom.spacing = {1.5, 1.0, 1.0};
    scan.geom.sform_code = 2;  // aligned to another scan
    scan.geom.srow = {{{1.0, 0.0, 0.0, -16.0}, {0.0, 1.0, 0.0, -24.0}, {0.0, 0.0, 1.5, -30.0}}};
    scan.geom.xyzt_units = 2;  // millimetres
    for (std::size_t i = 0; i < scan.values.size(); ++i) scan.values[i] = static_cast<float>(i % 1000);
    write_image(dir / "scan.nii.gz", scan, pixel_type::i16);

    // What the file holds, from its header alone.
    const image_info info = probe_image(dir / "scan.nii.gz");
    std::printf("scan.nii.gz: %zu channel of %s, stored as %s, spacing %g %g %g\n", info.channels,
                extents_text(info.extents).c_str(), std::string(pixel_type_name(info.stored)).c_str(),
                info.geom.spacing[0], info.geom.spacing[1], info.geom.spacing[2]);

    // Threshold into a mask on the same grid and write it: image_like copies
    // the geometry, so the mask lands on the scan in any viewer.
    const image<float> img = read_image<float>(dir / "scan.nii.gz");
    image<std::uint8_t> mask = image_like<std::uint8_t>(img);
    for (std::size_t i = 0; i < img.values.size(); ++i) mask.values[i] = img.values[i] >= 500 ? 1 : 0;
    write_image(dir / "mask.nii.gz", mask, pixel_type::u8);

    // Read back as labels: integers, same grid, same place.
    const image<std::int64_t> labels = read_labels(dir / "mask.nii.gz");
    const bool same_place = labels.geom.srow == img.geom.srow && labels.geom.spacing == img.geom.spacing;
    std::printf("mask.nii.gz: %s, same affine: %s\n", extents_text(labels.extents).c_str(), same_place ? "yes" : "no");

    // Errors are one line naming the file and the numbers.
    try {
        write_image(dir / "mask.png", mask, pixel_type::u8);
    } catch (const ctseg::error& e) {
        std::printf("error: %s\n", e.what());
    }
    try {
        write_image(dir / "scan.nii", img, pixel_type::u8);
    } catch (const ctseg::error& e) {
        std::printf("error: %s\n", e.what());
    }

    // A folder of images, sorted, other files skipped.
    for (const fs::path& p : list_images(dir)) std::printf("found %s\n", p.filename().c_str());
    return same_place ? 0 : 1;
}
