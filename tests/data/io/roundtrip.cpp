// Round trips through every format, stored type and rank (values exact),
// geometry, value conversions and their errors, extension dispatch,
// list_images and atomic writes.
#define BOOST_TEST_MODULE data io roundtrip
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include "ctseg/data/io.hpp"
#include "io_test_util.hpp"

using namespace ctseg::data;
using io_test::expect_error;
using io_test::pattern;
using io_test::pattern_image;
using io_test::temp_dir;

namespace {

struct shape_case {
    std::size_t channels;
    std::vector<std::size_t> extents;
};

template <class T>
void round_trip(const std::filesystem::path& path, const shape_case& sc, pixel_type stored) {
    BOOST_TEST_CONTEXT(path.filename().string()
                       << " " << sc.channels << " x " << extents_text(sc.extents) << " " << pixel_type_name(stored)) {
        const auto img = pattern_image<T>(sc.channels, sc.extents);
        write_image(path, img, stored);

        const image_info info = probe_image(path);
        BOOST_TEST(info.channels == sc.channels);
        BOOST_TEST(info.extents == sc.extents);
        BOOST_TEST(pixel_type_name(info.stored) == pixel_type_name(stored));
        BOOST_TEST(info.geom.spacing.size() == sc.extents.size());

        const auto back = read_image<T>(path);
        BOOST_TEST(back.channels == sc.channels);
        BOOST_TEST(back.extents == sc.extents);
        BOOST_TEST(back.values.size() == img.values.size());
        std::size_t wrong = 0, first = 0;
        for (std::size_t i = 0; i < std::min(back.values.size(), img.values.size()); ++i)
            if (std::memcmp(&back.values[i], &img.values[i], sizeof(T)) != 0 && wrong++ == 0) first = i;
        BOOST_TEST(wrong == 0u, wrong << " values differ, first at " << first);

        // The same values as double.
        const auto as_double = read_image<double>(path);
        bool same = as_double.values.size() == img.values.size();
        for (std::size_t i = 0; same && i < img.values.size(); ++i)
            same = as_double.values[i] == static_cast<double>(img.values[i]);
        BOOST_TEST(same);
    }
}

template <class T>
void round_trip_all(const temp_dir& dir, const std::vector<std::string>& extensions, pixel_type stored,
                    const std::vector<shape_case>& shapes) {
    for (const auto& ext : extensions)
        for (std::size_t k = 0; k < shapes.size(); ++k)
            round_trip<T>(dir / ("img" + std::to_string(k) + "_" + std::string(pixel_type_name(stored)) + ext),
                          shapes[k], stored);
}

const std::vector<shape_case> grey_2d = {{1, {7, 11}}, {1, {1, 300}}};
const std::vector<shape_case> rgb_2d = {{3, {5, 9}}};
const std::vector<shape_case> grey_3d = {{1, {4, 6, 5}}, {1, {2, 1, 70}}};
const std::vector<shape_case> rgb_3d = {{3, {3, 4, 5}}};
const std::vector<shape_case> multi_3d = {{2, {3, 4, 5}}};

}  // namespace

BOOST_AUTO_TEST_SUITE(round_trips)

BOOST_AUTO_TEST_CASE(png_u8_u16_grey_rgb) {
    temp_dir d;
    for (const auto* shapes : {&grey_2d, &rgb_2d}) {
        round_trip_all<std::uint8_t>(d, {".png", ".PNG"}, pixel_type::u8, *shapes);
        round_trip_all<std::uint16_t>(d, {".png"}, pixel_type::u16, *shapes);
    }
    // A larger image exercises libpng's row filters on the full u16 range.
    round_trip<std::uint16_t>(d / "big.png", {1, {256, 257}}, pixel_type::u16);
}

BOOST_AUTO_TEST_CASE(tiff_every_type_2d_3d) {
    temp_dir d;
    for (const auto* shapes : {&grey_2d, &rgb_2d, &grey_3d, &rgb_3d}) {
        round_trip_all<std::uint8_t>(d, {".tif", ".tiff"}, pixel_type::u8, *shapes);
        round_trip_all<std::uint16_t>(d, {".tif"}, pixel_type::u16, *shapes);
        round_trip_all<std::int16_t>(d, {".tif"}, pixel_type::i16, *shapes);
        round_trip_all<std::int32_t>(d, {".tif"}, pixel_type::i32, *shapes);
        round_trip_all<float>(d, {".tif"}, pixel_type::f32, *shapes);
        round_trip_all<double>(d, {".tif"}, pixel_type::f64, *shapes);
    }
    // Several strips per page.
    round_trip<std::uint16_t>(d / "strips.tif", {1, {3, 300, 200}}, pixel_type::u16);
}

BOOST_AUTO_TEST_CASE(nifti_every_type_2d_3d_channels) {
    temp_dir d;
    for (const auto* shapes : {&grey_2d, &grey_3d, &multi_3d}) {
        const std::vector<std::string> ext = {".nii", ".nii.gz"};
        round_trip_all<std::uint8_t>(d, ext, pixel_type::u8, *shapes);
        round_trip_all<std::uint16_t>(d, ext, pixel_type::u16, *shapes);
        round_trip_all<std::int16_t>(d, ext, pixel_type::i16, *shapes);
        round_trip_all<std::int32_t>(d, ext, pixel_type::i32, *shapes);
        round_trip_all<float>(d, ext, pixel_type::f32, *shapes);
        round_trip_all<double>(d, ext, pixel_type::f64, *shapes);
    }
}

BOOST_AUTO_TEST_CASE(npy_every_type_2d_3d_channels) {
    temp_dir d;
    for (const auto* shapes : {&grey_2d, &grey_3d, &multi_3d}) {
        round_trip_all<std::uint8_t>(d, {".npy"}, pixel_type::u8, *shapes);
        round_trip_all<std::int16_t>(d, {".npy"}, pixel_type::i16, *shapes);
        round_trip_all<std::int32_t>(d, {".npy"}, pixel_type::i32, *shapes);
        round_trip_all<float>(d, {".npy"}, pixel_type::f32, *shapes);
        round_trip_all<double>(d, {".npy"}, pixel_type::f64, *shapes);
    }
}

// Values in one type stored as another, read back in a third.
BOOST_AUTO_TEST_CASE(stored_type_differs_from_element_type) {
    temp_dir d;
    image<float> img(1, {2, 3});
    img.values = {0, 1, 2, 250, 255, 7};
    for (const char* name : {"a.png", "a.tif", "a.nii.gz", "a.npy"}) {
        write_image(d / name, img, pixel_type::u8);
        BOOST_TEST(pixel_type_name(probe_image(d / name).stored) == "u8");
        const auto back = read_image<std::int32_t>(d / name);
        BOOST_TEST(back.values == (std::vector<std::int32_t>{0, 1, 2, 250, 255, 7}));
        const auto labels = read_labels(d / name);
        BOOST_TEST(labels.values == (std::vector<std::int64_t>{0, 1, 2, 250, 255, 7}));
    }
    image<std::int64_t> labels(1, {2, 2, 2});
    labels.values = {0, 1, 2, 3, -1, 4, 5, 32767};
    write_image(d / "l.nii.gz", labels, pixel_type::i16);
    BOOST_TEST(read_labels(d / "l.nii.gz").values == labels.values);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(geometry_handling)

BOOST_AUTO_TEST_CASE(nifti_geometry_round_trip) {
    temp_dir d;
    auto img = pattern_image<float>(1, {3, 4, 5});
    geometry& g = img.geom;
    g.spacing = {2.5, 1.25, 0.75};  // z y x
    g.qform_code = 1;
    g.quatern = {0.25, -0.5, 0.125, -10.5, 20.25, 30};
    g.qfac = -1;
    g.sform_code = 2;
    g.srow = {{{0.75, 0.1, 0, -12.5}, {0, 1.25, 0.2, 7}, {0.3, 0, 2.5, 99.5}}};
    g.xyzt_units = 2 | 8;  // mm, s
    for (const char* name : {"g.nii", "g.nii.gz"}) {
        write_image(d / name, img, pixel_type::f32);
        for (const auto& got : {probe_image(d / name).geom, read_image<float>(d / name).geom}) {
            BOOST_TEST(got.spacing == g.spacing);
            BOOST_TEST(got.qform_code == 1);
            BOOST_TEST(got.sform_code == 2);
            for (std::size_t i = 0; i < 6; ++i) BOOST_TEST(got.quatern[i] == g.quatern[i]);
            BOOST_TEST(got.qfac == -1);
            for (std::size_t r = 0; r < 3; ++r)
                for (std::size_t c = 0; c < 4; ++c)
                    BOOST_TEST(got.srow[r][c] == static_cast<double>(static_cast<float>(g.srow[r][c])));
            BOOST_TEST(got.xyzt_units == 10);
        }
    }
    // A mask made from the image keeps its geometry.
    auto mask = image_like<std::uint8_t>(read_image<float>(d / "g.nii.gz"));
    write_image(d / "mask.nii.gz", mask, pixel_type::u8);
    const auto mg = probe_image(d / "mask.nii.gz").geom;
    BOOST_TEST(mg.spacing == g.spacing);
    BOOST_TEST(mg.sform_code == 2);
    BOOST_TEST(mg.srow[2][3] == 99.5);

    // 2D: spacing {dy, dx}.
    image<std::uint8_t> flat(1, {2, 3});
    flat.geom.spacing = {0.5, 4};
    write_image(d / "flat.nii", flat, pixel_type::u8);
    BOOST_TEST(probe_image(d / "flat.nii").geom.spacing == (std::vector<double>{0.5, 4}));
    BOOST_TEST(probe_image(d / "flat.nii").extents == (std::vector<std::size_t>{2, 3}));
}

BOOST_AUTO_TEST_CASE(formats_without_geometry_read_spacing_one) {
    temp_dir d;
    auto img = pattern_image<std::uint8_t>(1, {2, 3, 4});
    img.geom.spacing = {5, 6, 7};
    for (const char* name : {"v.tif", "v.npy"}) {
        write_image(d / name, img, pixel_type::u8);
        BOOST_TEST(read_image<std::uint8_t>(d / name).geom.spacing == (std::vector<double>{1, 1, 1}));
    }
}

BOOST_AUTO_TEST_CASE(bad_geometry_is_refused) {
    temp_dir d;
    auto img = pattern_image<std::uint8_t>(1, {2, 3, 4});
    img.geom.spacing = {1, 2};
    expect_error([&] { write_image(d / "x.nii", img, pixel_type::u8); }, {"x.nii", "2 spacings for 3 axes"});
    img.geom.spacing = {1, 0, 2};
    expect_error([&] { write_image(d / "x.nii", img, pixel_type::u8); }, {"x.nii", "spacing 0"});
    BOOST_TEST(!std::filesystem::exists(d / "x.nii"));
}

// scl_slope / scl_inter scale the stored values; patched into a file
// written by the library (offsets 112 and 116 of the NIfTI-1 header).
BOOST_AUTO_TEST_CASE(nifti_scaling) {
    temp_dir d;
    image<std::int16_t> img(1, {2, 2, 2});
    img.values = {0, 1, 2, 3, -4, 5, 6, 100};
    write_image(d / "s.nii", img, pixel_type::i16);
    auto bytes = io_test::read_bytes(d / "s.nii");
    const float slope = 0.5f, inter = -1.0f;
    std::memcpy(bytes.data() + 112, &slope, 4);
    std::memcpy(bytes.data() + 116, &inter, 4);
    io_test::write_bytes(d / "s.nii", bytes);
    BOOST_TEST(pixel_type_name(probe_image(d / "s.nii").stored) == "i16");
    const auto f = read_image<float>(d / "s.nii");
    for (std::size_t i = 0; i < img.values.size(); ++i) BOOST_TEST(f.values[i] == img.values[i] * 0.5f - 1.0f);
    // 1 * 0.5 - 1 = -0.5 is no label.
    expect_error([&] { read_labels(d / "s.nii"); }, {"s.nii", "(z, y, x) = (0, 0, 1)", "-0.5", "not an integer"});
    // Slope 2, intercept 1: integers again.
    const float two = 2.0f, one = 1.0f;
    std::memcpy(bytes.data() + 112, &two, 4);
    std::memcpy(bytes.data() + 116, &one, 4);
    io_test::write_bytes(d / "s.nii", bytes);
    const auto l = read_labels(d / "s.nii");
    for (std::size_t i = 0; i < img.values.size(); ++i) BOOST_TEST(l.values[i] == img.values[i] * 2 + 1);
    // Slope 0 means unscaled.
    const float zero = 0.0f;
    std::memcpy(bytes.data() + 112, &zero, 4);
    io_test::write_bytes(d / "s.nii", bytes);
    BOOST_TEST(read_image<std::int16_t>(d / "s.nii").values == img.values);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(value_checks)

BOOST_AUTO_TEST_CASE(write_range_is_checked_against_stored_type) {
    temp_dir d;
    image<double> img(1, {2, 3});
    img.values = {0, 1, 2, 3, 256, 5};
    expect_error([&] { write_image(d / "r.png", img, pixel_type::u8); },
                 {"r.png", "(y, x) = (1, 1)", "256", "u8", "0..255"});
    img.values[4] = -1;
    expect_error([&] { write_image(d / "r.tif", img, pixel_type::u16); }, {"r.tif", "-1", "u16"});
    img.values[4] = 1.5;
    expect_error([&] { write_image(d / "r.nii", img, pixel_type::i32); }, {"r.nii", "1.5", "not an integer"});
    img.values[4] = std::nan("");
    expect_error([&] { write_image(d / "r.nii", img, pixel_type::i16); }, {"r.nii", "nan", "not finite"});
    img.values[4] = 1e300;
    expect_error([&] { write_image(d / "r.nii", img, pixel_type::f32); }, {"r.nii", "1e+300", "f32"});
    image<std::int32_t> big(1, {1, 2});
    big.values = {16777217, 0};
    expect_error([&] { write_image(d / "r.tif", big, pixel_type::f32); }, {"r.tif", "16777217", "not exactly"});
    image<std::int16_t> multi(2, {2, 2, 2});
    multi.values.assign(16, 0);
    multi.values[9] = 300;
    expect_error([&] { write_image(d / "m.nii", multi, pixel_type::u8); },
                 {"m.nii", "(c, z, y, x) = (1, 0, 0, 1)", "300"});
    // Nothing was written.
    BOOST_TEST(d.listing().empty());
    // A NaN is a float value like any other.
    img.values[4] = std::nan("");
    write_image(d / "nan.nii", img, pixel_type::f32);
    BOOST_TEST(std::isnan(read_image<float>(d / "nan.nii").values[4]));
}

BOOST_AUTO_TEST_CASE(read_conversion_is_checked) {
    temp_dir d;
    image<std::uint16_t> img(1, {2, 2});
    img.values = {0, 255, 256, 3};
    write_image(d / "w.png", img, pixel_type::u16);
    expect_error([&] { read_image<std::uint8_t>(d / "w.png"); }, {"w.png", "(y, x) = (1, 0)", "256", "u8"});
    BOOST_TEST(read_image<float>(d / "w.png").values == (std::vector<float>{0, 255, 256, 3}));

    image<float> f(1, {1, 3});
    f.values = {1, 2.25, 3};
    write_image(d / "f.npy", f, pixel_type::f32);
    expect_error([&] { read_labels(d / "f.npy"); }, {"f.npy", "label voxel (y, x) = (0, 1)", "2.25", "not an integer"});
    write_image(d / "f.tif", f, pixel_type::f32);
    expect_error([&] { read_image<std::int32_t>(d / "f.tif"); }, {"f.tif", "2.25"});

    image<std::uint8_t> rgb(3, {2, 2});
    write_image(d / "rgb.png", rgb, pixel_type::u8);
    expect_error([&] { read_labels(d / "rgb.png"); }, {"rgb.png", "1 channel", "has 3"});
}

BOOST_AUTO_TEST_CASE(format_limits_on_write) {
    temp_dir d;
    auto vol = pattern_image<std::uint8_t>(1, {2, 3, 4});
    expect_error([&] { write_image(d / "v.png", vol, pixel_type::u8); }, {"v.png", "2D images only"});
    auto two = pattern_image<std::uint8_t>(2, {3, 4});
    expect_error([&] { write_image(d / "v.png", two, pixel_type::u8); }, {"v.png", "1 (grey) or 3 (RGB)"});
    expect_error([&] { write_image(d / "v.tif", two, pixel_type::u8); }, {"v.tif", "1 (grey) or 3 (RGB)"});
    expect_error([&] { write_image(d / "v.nii", two, pixel_type::u8); }, {"v.nii", "2D image must have 1 channel"});
    expect_error([&] { write_image(d / "v.npy", two, pixel_type::u8); }, {"v.npy", "no .npy form"});
    auto grey = pattern_image<std::uint8_t>(1, {3, 4});
    expect_error([&] { write_image(d / "v.png", grey, pixel_type::f32); }, {"v.png", "u8 or u16", "f32"});
    expect_error([&] { write_image(d / "v.npy", grey, pixel_type::u16); }, {"v.npy", "not u16"});
    image<std::uint8_t> bad(1, {2, 2});
    bad.values.resize(3);
    expect_error([&] { write_image(d / "v.tif", bad, pixel_type::u8); }, {"v.tif", "holds 3 values", "need 4"});
    image<std::uint8_t> empty(1, {0, 2});
    expect_error([&] { write_image(d / "v.tif", empty, pixel_type::u8); }, {"v.tif", "empty"});
    image<std::uint8_t> flat(1, {5});
    expect_error([&] { write_image(d / "v.nii", flat, pixel_type::u8); }, {"v.nii", "rank 1"});
    expect_error([&] { write_image(d / "v.jpg", grey, pixel_type::u8); },
                 {"v.jpg", "'.jpg'", ".png .tif .tiff .nii .nii.gz .npy"});
    BOOST_TEST(d.listing().empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(files_and_names)

BOOST_AUTO_TEST_CASE(extension_dispatch) {
    BOOST_TEST(is_image_file("a.png"));
    BOOST_TEST(is_image_file("dir.x/A.TIFF"));
    BOOST_TEST(is_image_file("a.tif"));
    BOOST_TEST(is_image_file("brain.nii.gz"));
    BOOST_TEST(is_image_file("brain.NII"));
    BOOST_TEST(is_image_file("x.npy"));
    BOOST_TEST(!is_image_file("a.gz"));
    BOOST_TEST(!is_image_file("a.jpg"));
    BOOST_TEST(!is_image_file(".png"));
    BOOST_TEST(!is_image_file("png"));
    BOOST_TEST(!is_image_file("a.png/"));
    expect_error([] { probe_image("x.bmp"); }, {"x.bmp", "unknown image file extension '.bmp'", ".nii.gz"});
    expect_error([] { read_image<float>("noext"); }, {"noext", "unknown image file extension (supported"});
    expect_error([] { read_labels("a.gz"); }, {"a.gz", "'.gz'"});
}

BOOST_AUTO_TEST_CASE(list_images_sorted_and_filtered) {
    temp_dir d;
    const auto img = pattern_image<std::uint8_t>(1, {2, 2});
    for (const char* name : {"b.png", "a.nii.gz", "C.TIF", "c.npy", ".hidden.png"})
        write_image(d / name, img, pixel_type::u8);
    io_test::write_bytes(d / "notes.txt", {});
    std::filesystem::create_directory(d / "folder.png");
    std::filesystem::create_symlink(d / "b.png", d / "link.png");
    std::filesystem::create_symlink(d / "nowhere.png", d / "dangling.png");
    const auto files = list_images(d.path);
    std::vector<std::string> names;
    for (const auto& f : files) names.push_back(f.filename().string());
    BOOST_TEST(names == (std::vector<std::string>{"C.TIF", "a.nii.gz", "b.png", "c.npy", "link.png"}),
               boost::test_tools::per_element());
    BOOST_TEST(files[0].parent_path() == d.path);

    temp_dir empty;
    io_test::write_bytes(empty / "readme.md", {});
    expect_error([&] { list_images(empty.path); }, {empty.path.string(), "no image files", ".nii.gz"});
    expect_error([&] { list_images(d / "missing"); }, {"missing", "does not exist"});
    expect_error([&] { list_images(d / "b.png"); }, {"b.png", "not a directory"});
}

BOOST_AUTO_TEST_CASE(writes_are_atomic) {
    temp_dir d;
    const auto first = pattern_image<std::uint8_t>(1, {4, 4});
    for (const char* name : {"t.png", "t.tif", "t.nii", "t.nii.gz", "t.npy"}) {
        write_image(d / name, first, pixel_type::u8);
        const auto before = io_test::read_bytes(d / name);
        // A failing write leaves the old file and no temporary.
        auto bad = image_like<int>(first);
        bad.values[5] = 999;
        expect_error([&] { write_image(d / name, bad, pixel_type::u8); }, {name, "999"});
        BOOST_TEST((io_test::read_bytes(d / name) == before));
        // A new write replaces it whole.
        auto second = first;
        second.values[5] = 77;
        write_image(d / name, second, pixel_type::u8);
        BOOST_TEST(read_image<std::uint8_t>(d / name).values == second.values);
    }
    BOOST_TEST(d.listing() == (std::vector<std::string>{"t.nii", "t.nii.gz", "t.npy", "t.png", "t.tif"}),
               boost::test_tools::per_element());
    expect_error([&] { write_image(d / "no_such_dir" / "x.png", first, pixel_type::u8); }, {"no_such_dir/x.png"});
}

// .nii.gz is compressed, .nii is not; both are recognised by content.
BOOST_AUTO_TEST_CASE(nifti_compression_follows_the_name) {
    temp_dir d;
    image<std::uint8_t> zeros(1, {20, 20, 20});
    write_image(d / "z.nii.gz", zeros, pixel_type::u8);
    write_image(d / "z.nii", zeros, pixel_type::u8);
    const auto gz = io_test::read_bytes(d / "z.nii.gz");
    const auto plain = io_test::read_bytes(d / "z.nii");
    BOOST_TEST(plain.size() == 352u + 8000u);
    BOOST_TEST(gz.size() < 1000u);
    BOOST_TEST((gz[0] == std::byte{0x1f} && gz[1] == std::byte{0x8b}));
    // Swapped names still read.
    std::filesystem::rename(d / "z.nii.gz", d / "swapped.nii");
    std::filesystem::rename(d / "z.nii", d / "swapped.nii.gz");
    BOOST_TEST(read_image<std::uint8_t>(d / "swapped.nii").values == zeros.values);
    BOOST_TEST(read_image<std::uint8_t>(d / "swapped.nii.gz").values == zeros.values);
}

BOOST_AUTO_TEST_SUITE_END()
