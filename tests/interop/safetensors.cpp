#define BOOST_TEST_MODULE interop safetensors
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctseg/interop/safetensors.hpp"
#include "test_util.hpp"

using namespace ctseg::interop;
using ctseg_test::expect_error;
using ctseg_test::from_hex;
using ctseg_test::read_bytes;
using ctseg_test::temp_dir;
using ctseg_test::to_bytes;
using ctseg_test::write_bytes;

namespace {

// Written by a few lines of Python with struct and json only (no safetensors
// library): tensors laid out b, a, c in the data, header unpadded, keys unsorted:
//   a F32 [2, 2] [[1.5, -2], [0.25, 8]] at [24, 40]
//   b I64 [3] [-1, 2, 3] at [0, 24]
//   c U8 [] 200 at [40, 41]
//   __metadata__ {"format": "pt", "note": "hand made"}
constexpr const char* st_independent =
    "f4000000000000007b2262223a207b226474797065223a2022493634222c20227368617065223a205b335d2c20226461"
    "74615f6f666673657473223a205b302c2032345d7d2c20225f5f6d657461646174615f5f223a207b22666f726d617422"
    "3a20227074222c20226e6f7465223a202268616e64206d616465227d2c202261223a207b226474797065223a20224633"
    "32222c20227368617065223a205b322c20325d2c2022646174615f6f666673657473223a205b32342c2034305d7d2c20"
    "2263223a207b226474797065223a20225538222c20227368617065223a205b5d2c2022646174615f6f66667365747322"
    "3a205b34302c2034315d7d7dffffffffffffffff020000000000000003000000000000000000c03f000000c00000803e"
    "00000041c8";

// A safetensors file with this header text (unpadded) and data.
std::vector<std::byte> make_st(const std::string& header, const std::vector<std::byte>& data) {
    std::vector<std::byte> out;
    for (std::size_t i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>((header.size() >> (8 * i)) & 0xff));
    ctseg_test::append(out, to_bytes(header));
    ctseg_test::append(out, data);
    return out;
}

std::vector<std::byte> zeros(std::size_t n) { return std::vector<std::byte>(n); }

// A tensor of this dtype and shape with varied (valid) contents.
host_tensor sample(dtype type, std::vector<std::int64_t> shape, unsigned seed) {
    host_tensor t = host_tensor::zeros(type, std::move(shape));
    for (std::size_t i = 0; i < t.bytes.size(); ++i)
        t.bytes[i] = static_cast<std::byte>(type == dtype::boolean ? ((i + seed) % 2) : (i * 29 + seed) & 0xff);
    return t;
}

}  // namespace

BOOST_AUTO_TEST_CASE(reads_a_file_from_an_independent_writer) {
    temp_dir dir;
    write_bytes(dir / "ind.safetensors", from_hex(st_independent));
    const auto f = read_safetensors(dir / "ind.safetensors");
    BOOST_REQUIRE_EQUAL(f.tensors.size(), 3u);
    const auto& a = f.tensors.at("a");
    BOOST_TEST((a.type == dtype::f32));
    BOOST_TEST(a.shape == (std::vector<std::int64_t>{2, 2}));
    auto av = a.as<float>();
    BOOST_TEST(std::vector<float>(av.begin(), av.end()) == (std::vector<float>{1.5f, -2.0f, 0.25f, 8.0f}),
               boost::test_tools::per_element());
    const auto& b = f.tensors.at("b");
    BOOST_TEST((b.type == dtype::i64));
    BOOST_TEST(b.shape == (std::vector<std::int64_t>{3}));
    auto bv = b.as<std::int64_t>();
    BOOST_TEST(std::vector<std::int64_t>(bv.begin(), bv.end()) == (std::vector<std::int64_t>{-1, 2, 3}),
               boost::test_tools::per_element());
    const auto& c = f.tensors.at("c");
    BOOST_TEST((c.type == dtype::u8));
    BOOST_TEST(c.shape.empty());
    BOOST_TEST(c.as<std::uint8_t>()[0] == 200);
    BOOST_TEST((f.metadata == std::map<std::string, std::string>{{"format", "pt"}, {"note", "hand made"}}));

    // Written back, the same tensors and metadata come out again.
    write_safetensors(dir / "copy.safetensors", f.tensors, f.metadata);
    const auto g = read_safetensors(dir / "copy.safetensors");
    BOOST_TEST((g.tensors == f.tensors));
    BOOST_TEST((g.metadata == f.metadata));
}

BOOST_AUTO_TEST_CASE(writes_the_documented_layout) {
    temp_dir dir;
    const std::vector<float> one{1.0f};
    write_safetensors(dir / "one.safetensors", {{"a", host_tensor::from(one, {1})}});
    // {"a":{"data_offsets":[0,4],"dtype":"F32","shape":[1]}} is 54 bytes, padded to 56.
    const std::string header = R"({"a":{"data_offsets":[0,4],"dtype":"F32","shape":[1]}})";
    BOOST_TEST(header.size() == 54u);
    const std::vector<std::byte> expected = make_st(header + "  ", to_bytes(std::string("\x00\x00\x80\x3f", 4)));
    BOOST_TEST((read_bytes(dir / "one.safetensors") == expected));

    // Several tensors: keys sorted, data in key order, header a multiple of 8.
    std::map<std::string, host_tensor> tensors{{"z", sample(dtype::i16, {3}, 1)},
                                               {"b", sample(dtype::f64, {2, 1}, 2)},
                                               {"m", sample(dtype::u8, {5}, 3)}};
    write_safetensors(dir / "many.safetensors", tensors, {{"format", "pt"}});
    const auto bytes = read_bytes(dir / "many.safetensors");
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < 8; ++i) n |= std::to_integer<std::uint64_t>(bytes[i]) << (8 * i);
    BOOST_TEST(n % 8 == 0u);
    const std::string text(reinterpret_cast<const char*>(bytes.data()) + 8, n);
    const auto j = nlohmann::json::parse(text);
    BOOST_TEST(j["__metadata__"]["format"] == "pt");
    BOOST_TEST(j["b"]["data_offsets"] == nlohmann::json::array({0, 16}));
    BOOST_TEST(j["m"]["data_offsets"] == nlohmann::json::array({16, 21}));
    BOOST_TEST(j["z"]["data_offsets"] == nlohmann::json::array({21, 27}));
    BOOST_TEST(j["z"]["dtype"] == "I16");
    BOOST_TEST(j["b"]["shape"] == nlohmann::json::array({2, 1}));
    BOOST_TEST(bytes.size() == 8 + n + 27);
    // Only spaces follow the closing brace.
    BOOST_TEST(text.find_last_not_of(' ') == text.rfind('}'));
    BOOST_TEST(text.size() - 1 - text.rfind('}') < 8u);
}

BOOST_AUTO_TEST_CASE(round_trips_every_dtype) {
    temp_dir dir;
    std::map<std::string, host_tensor> tensors;
    unsigned seed = 0;
    for (dtype type : all_dtypes) {
        const std::string name(dtype_name(type));
        tensors[name + ".matrix"] = sample(type, {3, 4}, ++seed);
        tensors[name + ".scalar"] = sample(type, {}, ++seed);
        tensors[name + ".empty"] = sample(type, {0, 7}, ++seed);
        tensors[name + ".4d"] = sample(type, {2, 1, 3, 2}, ++seed);
    }
    const std::map<std::string, std::string> metadata{{"format", "pt"}, {"epoch", "12"}, {"unicode", "\xc3\xa9t\xc3\xa9"}};
    write_safetensors(dir / "all.safetensors", tensors, metadata);
    const auto f = read_safetensors(dir / "all.safetensors");
    BOOST_TEST(f.tensors.size() == tensors.size());
    for (const auto& [name, t] : tensors) {
        BOOST_TEST_CONTEXT("tensor " << name) {
            BOOST_REQUIRE(f.tensors.contains(name));
            BOOST_TEST((f.tensors.at(name) == t));
        }
    }
    BOOST_TEST((f.metadata == metadata));

    // One dtype per file, too, and an empty file.
    for (dtype type : all_dtypes) {
        write_safetensors(dir / "one.safetensors", {{"x", sample(type, {5}, 7)}});
        BOOST_TEST((read_safetensors(dir / "one.safetensors").tensors.at("x") == sample(type, {5}, 7)));
    }
    write_safetensors(dir / "none.safetensors", {});
    const auto none = read_safetensors(dir / "none.safetensors");
    BOOST_TEST(none.tensors.empty());
    BOOST_TEST(none.metadata.empty());
    BOOST_TEST(dir.listing() == (std::vector<std::string>{"all.safetensors", "none.safetensors", "one.safetensors"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(rejects_short_files_and_bad_header_lengths) {
    temp_dir dir;
    write_bytes(dir / "w.safetensors", to_bytes("abc"));
    expect_error([&] { read_safetensors(dir / "w.safetensors"); }, {"w.safetensors", "3 bytes", "8-byte"});
    write_bytes(dir / "w.safetensors", {});
    expect_error([&] { read_safetensors(dir / "w.safetensors"); }, {"w.safetensors", "0 bytes"});

    auto bytes = make_st("{}", {});
    bytes[0] = std::byte{200};
    write_bytes(dir / "w.safetensors", bytes);
    expect_error([&] { read_safetensors(dir / "w.safetensors"); }, {"w.safetensors", "header length 200", "the 2 bytes"});
    bytes[0] = std::byte{0};
    bytes[7] = std::byte{0x80};
    write_bytes(dir / "w.safetensors", bytes);
    expect_error([&] { read_safetensors(dir / "w.safetensors"); }, {"w.safetensors", "header length 9223372036854775808"});

    auto cut = from_hex(st_independent);
    cut.resize(cut.size() - 3);
    write_bytes(dir / "cut.safetensors", cut);
    expect_error([&] { read_safetensors(dir / "cut.safetensors"); },
                 {"cut.safetensors", "tensor 'a'", "[24, 40]", "38-byte data section"});
    cut.resize(100);
    write_bytes(dir / "cut.safetensors", cut);
    expect_error([&] { read_safetensors(dir / "cut.safetensors"); }, {"cut.safetensors", "header length 244"});

    expect_error([&] { read_safetensors(dir / "absent.safetensors"); }, {"absent.safetensors", "No such file"});
}

BOOST_AUTO_TEST_CASE(rejects_malformed_headers) {
    temp_dir dir;
    auto check = [&](const std::string& header, std::size_t data, std::initializer_list<std::string_view> parts) {
        write_bytes(dir / "m.safetensors", make_st(header, zeros(data)));
        expect_error([&] { read_safetensors(dir / "m.safetensors"); }, parts);
    };
    check(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})", 8, {"m.safetensors", "not valid JSON"});
    check("\xff\xfe", 0, {"m.safetensors", "not valid JSON"});
    check(R"([1, 2])", 0, {"m.safetensors", "array, not an object"});
    check(R"({"a": [0, 8]})", 8, {"m.safetensors", "tensor 'a'", "not an object"});
    check(R"({"a": {"shape": [2], "data_offsets": [0, 8]}})", 8, {"m.safetensors", "tensor 'a'", "'dtype'"});
    check(R"({"a": {"dtype": "F32", "data_offsets": [0, 8]}})", 8, {"m.safetensors", "tensor 'a'", "'shape'"});
    check(R"({"a": {"dtype": "F32", "shape": [2]}})", 8, {"m.safetensors", "tensor 'a'", "'data_offsets'"});
    check(R"({"a": {"dtype": 3, "shape": [2], "data_offsets": [0, 8]}})", 8, {"m.safetensors", "tensor 'a'", "'dtype'"});
    check(R"({"a": {"dtype": "U16", "shape": [2], "data_offsets": [0, 4]}})", 4, {"m.safetensors", "tensor 'a'", "'U16'"});
    check(R"({"a": {"dtype": "f32", "shape": [2], "data_offsets": [0, 8]}})", 8, {"m.safetensors", "tensor 'a'", "'f32'"});
    check(R"({"a": {"dtype": "F32", "shape": [2, -3], "data_offsets": [0, 8]}})", 8,
          {"m.safetensors", "tensor 'a'", "negative dimension -3"});
    check(R"({"a": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}})", 8, {"m.safetensors", "tensor 'a'", "integers"});
    check(R"({"a": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}})", 8, {"m.safetensors", "tensor 'a'", "'shape'"});
    check(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})", 8, {"m.safetensors", "tensor 'a'", "'data_offsets'"});
    check(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [-4, 4]}})", 8,
          {"m.safetensors", "tensor 'a'", "'data_offsets'"});
    check(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", 8, {"m.safetensors", "tensor 'a'", "[8, 0]"});
    check(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
          8, {"m.safetensors", "repeats the key 'a'"});
    check(R"({"__metadata__": [1]})", 0, {"m.safetensors", "'__metadata__'", "not an object"});
    check(R"({"__metadata__": {"epoch": 3}})", 0, {"m.safetensors", "__metadata__ 'epoch'", "not a string"});
    check(R"({"a": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 8]}})", 8,
          {"m.safetensors", "tensor 'a'", "too large"});
}

BOOST_AUTO_TEST_CASE(rejects_bad_offsets) {
    temp_dir dir;
    auto check = [&](const std::string& header, std::size_t data, std::initializer_list<std::string_view> parts) {
        write_bytes(dir / "o.safetensors", make_st(header, zeros(data)));
        expect_error([&] { read_safetensors(dir / "o.safetensors"); }, parts);
    };
    // Size disagrees with shape and dtype.
    check(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})", 12,
          {"o.safetensors", "tensor 'w'", "[0, 12]", "hold 12 bytes", "[2, 2] of F32 needs 16"});
    // Past the end of the data.
    check(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 8,
          {"o.safetensors", "tensor 'w'", "[4, 12]", "8-byte data section"});
    // Overlapping.
    check(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
          12, {"o.safetensors", "tensor 'b'", "[4, 12]", "overlap tensor 'a' [0, 8]"});
    check(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
          8, {"o.safetensors", "tensor 'b'", "overlap tensor 'a'"});
    // A gap between tensors, or before the first.
    check(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]}})",
          16, {"o.safetensors", "tensor 'b'", "[12, 16]", "bytes [8, 12)"});
    check(R"({"a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})", 2, {"o.safetensors", "tensor 'a'", "bytes [0, 1)"});
    // Data not covered at the end.
    check(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 11,
          {"o.safetensors", "cover 8 of the 11 data bytes", "3 trailing"});
    check("{}", 4, {"o.safetensors", "cover 0 of the 4 data bytes"});
    // Booleans other than 0 and 1.
    auto bytes = make_st(R"({"flags": {"dtype": "BOOL", "shape": [3], "data_offsets": [0, 3]}})", to_bytes(std::string("\x01\x00\x05", 3)));
    write_bytes(dir / "o.safetensors", bytes);
    expect_error([&] { read_safetensors(dir / "o.safetensors"); }, {"o.safetensors", "tensor 'flags'", "element 2", "value 5"});

    // Valid: zero-sized tensors anywhere, padding spaces, unknown fields ignored.
    write_bytes(dir / "ok.safetensors",
                make_st(R"({"e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [4, 4]}, "a": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4], "extra": 1}})"
                        "      ",
                        zeros(4)));
    const auto f = read_safetensors(dir / "ok.safetensors");
    BOOST_TEST(f.tensors.size() == 2u);
    BOOST_TEST(f.tensors.at("e").bytes.empty());
    BOOST_TEST(f.tensors.at("a").as<std::int32_t>()[0] == 0);
}

BOOST_AUTO_TEST_CASE(write_errors_leave_nothing_behind) {
    temp_dir dir;
    const std::vector<float> v{1, 2, 3, 4};
    const auto good = host_tensor::from(v, {2, 2});
    write_safetensors(dir / "w.safetensors", {{"good", good}});
    const auto before = read_bytes(dir / "w.safetensors");

    host_tensor bad = good;
    bad.bytes.resize(12);
    expect_error([&] { write_safetensors(dir / "w.safetensors", {{"good", good}, {"bad", bad}}); },
                 {"w.safetensors", "tensor 'bad'", "12 bytes", "[2, 2] of F32 needs 16"});
    host_tensor negative = good;
    negative.shape = {-2, -2};
    expect_error([&] { write_safetensors(dir / "w.safetensors", {{"neg", negative}}); },
                 {"w.safetensors", "tensor 'neg'", "[-2, -2]"});
    expect_error([&] { write_safetensors(dir / "w.safetensors", {{"__metadata__", good}}); },
                 {"w.safetensors", "'__metadata__'"});
    expect_error([&] { write_safetensors(dir / "w.safetensors", {{"bad\xff", good}}); }, {"w.safetensors", "UTF-8"});
    expect_error([&] { write_safetensors(dir / "nowhere" / "x.safetensors", {{"good", good}}); },
                 {"x.safetensors", "No such file or directory"});
    BOOST_TEST((read_bytes(dir / "w.safetensors") == before));
    BOOST_TEST(dir.listing() == std::vector<std::string>{"w.safetensors"}, boost::test_tools::per_element());
}
