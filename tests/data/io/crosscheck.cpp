// The library against independent readers and writers (crosscheck.py:
// PIL, tifffile, nibabel, NumPy): files they write, read here; files written
// here, read by them; the real MNI template ch2.nii.gz (mricron-data) read
// here and by nibabel, and a mask written from it keeping its affine.
#define BOOST_TEST_MODULE data io crosscheck
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ctseg/data/io.hpp"
#include "io_test_util.hpp"

using namespace ctseg::data;
using io_test::expect_error;
using io_test::pattern;
using io_test::pattern_image;
using io_test::temp_dir;
using json = nlohmann::json;

namespace {

namespace fs = std::filesystem;

const fs::path ch2_path = "/usr/share/mricron/templates/ch2.nii.gz";

std::string crosscheck_script() {
    const char* s = std::getenv("CTSEG_IO_CROSSCHECK");
    return s ? s : "";
}

// Runs crosscheck.py; fails the test unless it exits 0. Returns its output.
std::string run_script(const std::string& args) {
    std::string out;
    const int rc = io_test::run_command(io_test::shell_quote(io_test::python()) + " " +
                                            io_test::shell_quote(crosscheck_script()) + " " + args + " 2>&1",
                                        out);
    BOOST_TEST(rc == 0, "crosscheck.py " << args << " exited " << rc << ":\n" << out);
    return out;
}

struct needs_python {
    std::string modules;
    boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
        boost::test_tools::assertion_result r(!crosscheck_script().empty() && io_test::python_has(modules));
        if (!r) r.message() << "skipped: CTSEG_TEST_PYTHON cannot import " << modules;
        return r;
    }
};

struct needs_ch2 {
    boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
        boost::test_tools::assertion_result r(fs::exists(ch2_path));
        if (!r) r.message() << "skipped: " << ch2_path << " is missing (install mricron-data)";
        return r;
    }
};

pixel_type kind_of(const std::string& k) {
    const auto t = pixel_type_from_name(k);
    if (!t) throw std::runtime_error("unknown kind " + k);
    return *t;
}

// The pattern of the given stored kind, as T.
template <class T>
std::vector<T> expected_values(pixel_type kind, std::size_t n) {
    std::vector<T> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        switch (kind) {
            case pixel_type::u8: v[i] = static_cast<T>(pattern<std::uint8_t>(i)); break;
            case pixel_type::u16: v[i] = static_cast<T>(pattern<std::uint16_t>(i)); break;
            case pixel_type::i16: v[i] = static_cast<T>(pattern<std::int16_t>(i)); break;
            case pixel_type::i32: v[i] = static_cast<T>(pattern<std::int32_t>(i)); break;
            case pixel_type::f32: v[i] = static_cast<T>(pattern<float>(i)); break;
            case pixel_type::f64: v[i] = static_cast<T>(pattern<double>(i)); break;
        }
    }
    return v;
}

}  // namespace

BOOST_AUTO_TEST_CASE(files_written_by_python_read_here,
                     *boost::unit_test::precondition(needs_python{"numpy, nibabel, tifffile, PIL"})) {
    temp_dir d;
    run_script("write " + io_test::shell_quote(d.path.string()));
    std::ifstream f(d / "manifest.json");
    const json manifest = json::parse(f);
    BOOST_TEST(manifest.size() >= 25u);
    for (const auto& e : manifest) {
        const std::string name = e["name"];
        const fs::path p = d / name;
        BOOST_TEST_CONTEXT(name) {
            const pixel_type kind = kind_of(e["kind"]);
            const std::vector<std::size_t> shape = e["shape"];
            const std::vector<std::size_t> extents(shape.begin() + 1, shape.end());
            const image_info info = probe_image(p);
            BOOST_TEST(info.channels == shape[0]);
            BOOST_TEST(info.extents == extents, "extents " << extents_text(info.extents));
            BOOST_TEST(pixel_type_name(info.stored) == pixel_type_name(kind));
            const auto img = read_image<double>(p);
            BOOST_TEST(img.channels == shape[0]);
            BOOST_TEST(img.extents == extents);
            std::vector<double> want;
            if (e.contains("values")) {
                want = e["values"].get<std::vector<double>>();
                const std::vector<std::int64_t> labels = e["labels"];
                BOOST_TEST(read_labels(p).values == labels);
            } else {
                want = expected_values<double>(kind, img.values.size());
            }
            if (e.contains("slope")) {
                const double slope = e["slope"], inter = e["inter"];
                for (auto& v : want) v = v * slope + inter;
            }
            std::size_t wrong = 0;
            for (std::size_t i = 0; i < std::min(want.size(), img.values.size()); ++i)
                wrong += img.values[i] != want[i];
            BOOST_TEST(want.size() == img.values.size());
            BOOST_TEST(wrong == 0u, wrong << " of " << want.size() << " values differ");
            if (e.contains("zooms")) {
                std::vector<double> zooms = e["zooms"];
                std::reverse(zooms.begin(), zooms.end());  // nibabel: x y z; the library: z y x
                BOOST_TEST(img.geom.spacing == zooms, boost::test_tools::per_element());
            }
            if (e.contains("affine")) {
                const std::vector<std::vector<double>> affine = e["affine"];
                BOOST_TEST(img.geom.sform_code == 2);
                for (std::size_t r = 0; r < 3; ++r)
                    for (std::size_t c = 0; c < 4; ++c) BOOST_TEST(img.geom.srow[r][c] == affine[r][c]);
                BOOST_TEST(img.geom.quatern[2] == static_cast<double>(static_cast<float>(std::sqrt(0.5))));
            }
            if (e.contains("xyzt_units")) BOOST_TEST(img.geom.xyzt_units == e["xyzt_units"].get<int>());
        }
    }
}

BOOST_AUTO_TEST_CASE(files_written_here_read_by_python,
                     *boost::unit_test::precondition(needs_python{"numpy, nibabel, tifffile, PIL"})) {
    temp_dir d;
    json manifest = json::array();
    auto add = [&](const std::string& name, pixel_type kind, std::size_t channels, std::vector<std::size_t> extents,
                   const geometry& g = {}) {
        auto write_as = [&](auto tag) {
            using T = decltype(tag);
            auto img = pattern_image<T>(channels, extents);
            img.geom = g;
            write_image(d / name, img, kind);
        };
        switch (kind) {
            case pixel_type::u8: write_as(std::uint8_t{}); break;
            case pixel_type::u16: write_as(std::uint16_t{}); break;
            case pixel_type::i16: write_as(std::int16_t{}); break;
            case pixel_type::i32: write_as(std::int32_t{}); break;
            case pixel_type::f32: write_as(float{}); break;
            case pixel_type::f64: write_as(double{}); break;
        }
        std::vector<std::size_t> shape{channels};
        shape.insert(shape.end(), extents.begin(), extents.end());
        json e = {{"name", name}, {"kind", std::string(pixel_type_name(kind))}, {"shape", shape}};
        manifest.push_back(e);
        return manifest.size() - 1;
    };
    add("grey8.png", pixel_type::u8, 1, {13, 17});
    add("grey16.png", pixel_type::u16, 1, {12, 31});
    add("rgb8.png", pixel_type::u8, 3, {7, 9});
    for (auto t :
         {pixel_type::u8, pixel_type::u16, pixel_type::i16, pixel_type::i32, pixel_type::f32, pixel_type::f64}) {
        add("stack_" + std::string(pixel_type_name(t)) + ".tif", t, 1, {5, 9, 7});
        add("flat_" + std::string(pixel_type_name(t)) + ".tif", t, 1, {9, 7});
    }
    add("rgb_stack.tif", pixel_type::u16, 3, {2, 5, 4});
    add("rgb.tif", pixel_type::u8, 3, {5, 4});

    // NIfTI with the affine of crosscheck.py both as sform (code 2) and as
    // qform (code 1: a quarter turn about z).
    geometry g;
    g.spacing = {2.0, 0.75, 0.5};
    g.sform_code = 2;
    g.srow = {{{0.0, -0.75, 0.0, 12.5}, {0.5, 0.0, 0.0, -30.25}, {0.0, 0.0, 2.0, 7.0}}};
    g.qform_code = 1;
    g.quatern = {0, 0, std::sqrt(0.5), 12.5, -30.25, 7.0};
    g.xyzt_units = 2 | 8;
    const json affine = {{0.0, -0.75, 0.0, 12.5}, {0.5, 0.0, 0.0, -30.25}, {0.0, 0.0, 2.0, 7.0}, {0.0, 0.0, 0.0, 1.0}};
    for (auto t : {pixel_type::u8, pixel_type::u16, pixel_type::i16, pixel_type::i32, pixel_type::f32, pixel_type::f64})
        for (const char* ext : {".nii", ".nii.gz"}) {
            const auto i = add("vol_" + std::string(pixel_type_name(t)) + ext, t, 1, {4, 6, 5}, g);
            manifest[i]["affine"] = affine;
            manifest[i]["zooms"] = {0.5, 0.75, 2.0};
            manifest[i]["sform_code"] = 2;
            manifest[i]["qform_code"] = 1;
            manifest[i]["xyzt_units"] = 10;
        }
    // The qform alone gives the same affine.
    geometry q = g;
    q.sform_code = 0;
    const auto qi = add("qform_only.nii.gz", pixel_type::f32, 1, {4, 6, 5}, q);
    manifest[qi]["affine_close"] = affine;
    manifest[qi]["sform_code"] = 0;
    manifest[qi]["qform_code"] = 1;
    add("channels.nii.gz", pixel_type::i16, 3, {2, 4, 5}, g);
    geometry flat;
    flat.spacing = {4.0, 0.25};
    const auto fi = add("flat.nii", pixel_type::u8, 1, {6, 5}, flat);
    manifest[fi]["zooms"] = {0.25, 4.0};

    add("grey.npy", pixel_type::u8, 1, {9, 8});
    add("vol.npy", pixel_type::i16, 1, {3, 9, 8});
    add("channels.npy", pixel_type::f32, 2, {3, 4, 5});
    add("vol64.npy", pixel_type::f64, 1, {2, 4, 4});
    add("vol32.npy", pixel_type::i32, 1, {2, 4, 4});

    std::ofstream(d / "manifest.json") << manifest.dump();
    const std::string out = run_script("check " + io_test::shell_quote(d.path.string()));
    BOOST_TEST(out.find("0 problems") != std::string::npos, out);
}

BOOST_AUTO_TEST_CASE(ch2_template, *boost::unit_test::precondition(needs_ch2{})) {
    const auto img = read_image<std::uint8_t>(ch2_path);
    BOOST_TEST(img.channels == 1u);
    BOOST_TEST(img.extents == (std::vector<std::size_t>{181, 217, 181}));
    BOOST_TEST(img.geom.spacing == (std::vector<double>{1, 1, 1}));
    BOOST_TEST(img.geom.sform_code == 4);  // MNI
    BOOST_TEST(img.geom.srow[0][3] == -90);
    BOOST_TEST(img.geom.srow[1][3] == -125);
    BOOST_TEST(img.geom.srow[2][3] == -71);
    BOOST_TEST(img.geom.srow[0][0] == 1);
    BOOST_TEST(img.geom.srow[1][1] == 1);
    BOOST_TEST(img.geom.srow[2][2] == 1);
    const auto info = probe_image(ch2_path);
    BOOST_TEST(pixel_type_name(info.stored) == "u8");
    BOOST_TEST(info.extents == img.extents);

    // Truncated copies are errors.
    temp_dir d;
    const auto bytes = io_test::read_bytes(ch2_path);
    for (std::size_t len : {std::size_t{100}, bytes.size() / 3, bytes.size() - 10}) {
        io_test::write_bytes(d / "cut.nii.gz", {bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(len)});
        expect_error([&] { read_image<float>(d / "cut.nii.gz"); }, {"cut.nii.gz", "truncated"});
    }
}

BOOST_AUTO_TEST_CASE(ch2_against_nibabel, *boost::unit_test::precondition(needs_ch2{}) *
                                              boost::unit_test::precondition(needs_python{"numpy, nibabel"})) {
    const auto img = read_image<std::uint8_t>(ch2_path);
    const json ref = json::parse(run_script("nifti " + io_test::shell_quote(ch2_path.string())));
    BOOST_TEST(ref["shape"] == json({181, 217, 181}));
    double sum = 0;
    for (auto v : img.values) sum += v;
    BOOST_TEST(sum == ref["sum"].get<double>());
    for (const auto& p : ref["probes"]) {
        const std::size_t x = p[0], y = p[1], z = p[2];
        BOOST_TEST(static_cast<double>(img.values[(z * 217 + y) * 181 + x]) == p[3].get<double>(),
                   "voxel x y z = " << x << " " << y << " " << z);
    }
    // A mask computed from the image keeps its affine and zooms, compressed or not.
    temp_dir d;
    auto mask = image_like<std::uint8_t>(img);
    std::size_t inside = 0;
    for (std::size_t i = 0; i < img.values.size(); ++i) inside += mask.values[i] = img.values[i] > 80;
    for (const char* name : {"mask.nii.gz", "mask.nii"}) {
        write_image(d / name, mask, pixel_type::u8);
        const json m = json::parse(run_script("nifti " + io_test::shell_quote((d / name).string())));
        BOOST_TEST(m["affine"] == ref["affine"]);
        BOOST_TEST(m["zooms"] == ref["zooms"]);
        BOOST_TEST(m["shape"] == ref["shape"]);
        BOOST_TEST(m["sform_code"] == ref["sform_code"]);
        BOOST_TEST(m["qform_code"] == ref["qform_code"]);
        BOOST_TEST(m["sum"].get<double>() == static_cast<double>(inside));
    }
}
