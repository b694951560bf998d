#define BOOST_TEST_MODULE interop npy
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "ctseg/interop/npy.hpp"
#include "test_util.hpp"

using namespace ctseg::interop;
using ctseg_test::expect_error;
using ctseg_test::from_hex;
using ctseg_test::read_bytes;
using ctseg_test::temp_dir;
using ctseg_test::to_bytes;
using ctseg_test::write_bytes;

namespace {

// Files written by NumPy 1.24 (np.save / np.lib.format.write_array) from
// base = np.arange(6).reshape(2, 3):
//   np_f64 (base*0.5-1) '<f8', np_f32 (base*0.25-0.5) '<f4', np_f16 (base*0.5) '<f2',
//   np_i64 (base-3)*10**12, np_i32 (base-3)*10**5, np_i16 (base-3)*1000, np_i8 base-3,
//   np_u8 base*40, np_bool base%2==1, np_scalar_f32 2.5 with shape (),
//   np_1d_i64 [7, 8, 9], np_empty_f32 zeros (0, 4), np_v2_f32 / np_v3_f32 the
//   f32 array in format 2.0 / 3.0, np_fortran_f32 np.asfortranarray of it,
//   np_big_f32 as '>f4', np_object np.array([1, "a"], dtype=object).
// np_f64
constexpr const char* np_f64 =
    "934e554d5059010076007b276465736372273a20273c6638272c2027666f727472616e5f6f72646572273a2046616c73"
    "652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020200a000000000000f0bf000000000000e0bf"
    "0000000000000000000000000000e03f000000000000f03f000000000000f83f";
// np_f32
constexpr const char* np_f32 =
    "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73"
    "652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020200a000000bf000080be000000000000803e"
    "0000003f0000403f";
// np_f16
constexpr const char* np_f16 =
    "934e554d5059010076007b276465736372273a20273c6632272c2027666f727472616e5f6f72646572273a2046616c73"
    "652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020200a00000038003c003e00400041";
// np_i64
constexpr const char* np_i64 =
    "934e554d5059010076007b276465736372273a20273c6938272c2027666f727472616e5f6f72646572273a2046616c73"
    "652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020200a00d0108245fdffff00e0b5562efeffff"
    "00f05a2b17ffffff00000000000000000010a5d4e800000000204aa9d1010000";
// np_i32
constexpr const char* np_i32 =
    "934e554d5059010076007b276465736372273a20273c6934272c2027666f727472616e5f6f72646572273a2046616c73"
    "652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020200a206cfbffc0f2fcff6079feff00000000"
    "a0860100400d0300";
// np_i16
constexpr const char* np_i16 =
    "934e554d5059010076007b276465736372273a20273c6932272c2027666f727472616e5f6f72646572273a2046616c73"
    "652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020200a48f430f818fc0000e803d007";
// np_i8
constexpr const char* np_i8 =
    "934e554d5059010076007b276465736372273a20277c6931272c2027666f727472616e5f6f72646572273a2046616c73"
    "652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020200afdfeff000102";
// np_u8
constexpr const char* np_u8 =
    "934e554d5059010076007b276465736372273a20277c7531272c2027666f727472616e5f6f72646572273a2046616c73"
    "652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020200a00285078a0c8";
// np_bool
constexpr const char* np_bool =
    "934e554d5059010076007b276465736372273a20277c6231272c2027666f727472616e5f6f72646572273a2046616c73"
    "652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020200a000100010001";
// np_scalar_f32
constexpr const char* np_scalar_f32 =
    "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73"
    "652c20277368617065273a2028292c207d20202020202020202020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020200a00002040";
// np_1d_i64
constexpr const char* np_1d_i64 =
    "934e554d5059010076007b276465736372273a20273c6938272c2027666f727472616e5f6f72646572273a2046616c73"
    "652c20277368617065273a2028332c292c207d2020202020202020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020200a07000000000000000800000000000000"
    "0900000000000000";
// np_empty_f32
constexpr const char* np_empty_f32 =
    "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73"
    "652c20277368617065273a2028302c2034292c207d202020202020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020200a";
// np_v2_f32
constexpr const char* np_v2_f32 =
    "934e554d50590200740000007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a204661"
    "6c73652c20277368617065273a2028322c2033292c207d20202020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020200a000000bf000080be000000000000803e"
    "0000003f0000403f";
// np_v3_f32
constexpr const char* np_v3_f32 =
    "934e554d50590300740000007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a204661"
    "6c73652c20277368617065273a2028322c2033292c207d20202020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020200a000000bf000080be000000000000803e"
    "0000003f0000403f";
// np_fortran_f32
constexpr const char* np_fortran_f32 =
    "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2054727565"
    "2c20277368617065273a2028322c2033292c207d20202020202020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020200a000000bf0000803e000080be0000003f"
    "000000000000403f";
// np_big_f32
constexpr const char* np_big_f32 =
    "934e554d5059010076007b276465736372273a20273e6634272c2027666f727472616e5f6f72646572273a2046616c73"
    "652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020200abf000000be800000000000003e800000"
    "3f0000003f400000";
// np_object
constexpr const char* np_object =
    "934e554d5059010076007b276465736372273a20277c4f272c2027666f727472616e5f6f72646572273a2046616c7365"
    "2c20277368617065273a2028322c292c207d202020202020202020202020202020202020202020202020202020202020"
    "202020202020202020202020202020202020202020202020202020202020200a8003636e756d70792e636f72652e6d75"
    "6c746961727261790a5f7265636f6e7374727563740a7100636e756d70790a6e6461727261790a71014b008571024301"
    "627103877104527105284b014b02857106636e756d70790a64747970650a710758020000004f38710889888771095271"
    "0a284b0358010000007c710b4e4e4e4affffffff4affffffff4b3f74710c62895d710d284b01580100000061710e6574"
    "710f622e";

// An .npy file with the given header dictionary (padded like NumPy's) and data.
std::vector<std::byte> make_npy(const std::string& dict, const std::vector<std::byte>& data, unsigned major = 1) {
    const std::size_t len_size = major == 1 ? 2 : 4;
    std::string h = dict;
    while ((8 + len_size + h.size() + 1) % 64 != 0) h += ' ';
    h += '\n';
    std::vector<std::byte> out = to_bytes("\x93NUMPY");
    out.push_back(static_cast<std::byte>(major));
    out.push_back(std::byte{0});
    for (std::size_t i = 0; i < len_size; ++i) out.push_back(static_cast<std::byte>((h.size() >> (8 * i)) & 0xff));
    ctseg_test::append(out, to_bytes(h));
    ctseg_test::append(out, data);
    return out;
}

std::vector<std::byte> zeros(std::size_t n) { return std::vector<std::byte>(n); }

template <class T>
std::vector<T> values_of(const host_tensor& t) {
    auto s = t.as<T>();
    return {s.begin(), s.end()};
}

const std::vector<std::int64_t> shape23{2, 3};

}  // namespace

BOOST_AUTO_TEST_CASE(reads_numpy_files_of_every_dtype) {
    temp_dir dir;
    auto load = [&](const char* hex, const std::string& name) {
        write_bytes(dir / name, from_hex(hex));
        return read_npy(dir / name);
    };
    {
        auto t = load(np_f64, "f64.npy");
        BOOST_TEST((t.type == dtype::f64));
        BOOST_TEST(t.shape == shape23);
        BOOST_TEST(values_of<double>(t) == (std::vector<double>{-1, -0.5, 0, 0.5, 1, 1.5}), boost::test_tools::per_element());
    }
    {
        auto t = load(np_f32, "f32.npy");
        BOOST_TEST((t.type == dtype::f32));
        BOOST_TEST(t.shape == shape23);
        BOOST_TEST(values_of<float>(t) == (std::vector<float>{-0.5f, -0.25f, 0, 0.25f, 0.5f, 0.75f}),
                   boost::test_tools::per_element());
    }
    {
        auto t = load(np_f16, "f16.npy");
        BOOST_TEST((t.type == dtype::f16));
        BOOST_TEST(t.shape == shape23);
        const std::vector<std::uint16_t> bits{0x0000, 0x3800, 0x3c00, 0x3e00, 0x4000, 0x4100};
        BOOST_REQUIRE_EQUAL(t.bytes.size(), 12u);
        for (std::size_t i = 0; i < bits.size(); ++i) {
            const auto v = static_cast<std::uint16_t>(std::to_integer<unsigned>(t.bytes[2 * i]) |
                                                      (std::to_integer<unsigned>(t.bytes[2 * i + 1]) << 8));
            BOOST_TEST(v == bits[i]);
        }
    }
    {
        auto t = load(np_i64, "i64.npy");
        BOOST_TEST((t.type == dtype::i64));
        const std::int64_t e = 1000000000000;
        BOOST_TEST(values_of<std::int64_t>(t) == (std::vector<std::int64_t>{-3 * e, -2 * e, -e, 0, e, 2 * e}),
                   boost::test_tools::per_element());
    }
    {
        auto t = load(np_i32, "i32.npy");
        BOOST_TEST((t.type == dtype::i32));
        BOOST_TEST(values_of<std::int32_t>(t) == (std::vector<std::int32_t>{-300000, -200000, -100000, 0, 100000, 200000}),
                   boost::test_tools::per_element());
    }
    {
        auto t = load(np_i16, "i16.npy");
        BOOST_TEST((t.type == dtype::i16));
        BOOST_TEST(values_of<std::int16_t>(t) == (std::vector<std::int16_t>{-3000, -2000, -1000, 0, 1000, 2000}),
                   boost::test_tools::per_element());
    }
    {
        auto t = load(np_i8, "i8.npy");
        BOOST_TEST((t.type == dtype::i8));
        BOOST_TEST(values_of<std::int8_t>(t) == (std::vector<std::int8_t>{-3, -2, -1, 0, 1, 2}),
                   boost::test_tools::per_element());
    }
    {
        auto t = load(np_u8, "u8.npy");
        BOOST_TEST((t.type == dtype::u8));
        BOOST_TEST(values_of<std::uint8_t>(t) == (std::vector<std::uint8_t>{0, 40, 80, 120, 160, 200}),
                   boost::test_tools::per_element());
    }
    {
        auto t = load(np_bool, "bool.npy");
        BOOST_TEST((t.type == dtype::boolean));
        auto v = t.as<bool>();
        BOOST_TEST((std::vector<bool>(v.begin(), v.end()) == std::vector<bool>{false, true, false, true, false, true}));
    }
    {
        auto t = load(np_scalar_f32, "scalar.npy");
        BOOST_TEST(t.shape.empty());
        BOOST_TEST(t.numel() == 1);
        BOOST_TEST(t.as<float>()[0] == 2.5f);
    }
    {
        auto t = load(np_1d_i64, "1d.npy");
        BOOST_TEST(t.shape == (std::vector<std::int64_t>{3}));
        BOOST_TEST(values_of<std::int64_t>(t) == (std::vector<std::int64_t>{7, 8, 9}), boost::test_tools::per_element());
    }
    {
        auto t = load(np_empty_f32, "empty.npy");
        BOOST_TEST(t.shape == (std::vector<std::int64_t>{0, 4}));
        BOOST_TEST(t.bytes.empty());
    }
    for (const char* hex : {np_v2_f32, np_v3_f32}) {
        auto t = load(hex, "versioned.npy");
        BOOST_TEST((t.type == dtype::f32));
        BOOST_TEST(t.shape == shape23);
        BOOST_TEST(values_of<float>(t) == (std::vector<float>{-0.5f, -0.25f, 0, 0.25f, 0.5f, 0.75f}),
                   boost::test_tools::per_element());
    }
}

// Reading a NumPy file and writing it back gives NumPy's bytes exactly.
BOOST_AUTO_TEST_CASE(writes_the_bytes_numpy_writes) {
    temp_dir dir;
    for (const char* hex : {np_f64, np_f32, np_f16, np_i64, np_i32, np_i16, np_i8, np_u8, np_bool, np_scalar_f32,
                            np_1d_i64, np_empty_f32}) {
        const auto original = from_hex(hex);
        write_bytes(dir / "in.npy", original);
        write_npy(dir / "out.npy", read_npy(dir / "in.npy"));
        BOOST_TEST((read_bytes(dir / "out.npy") == original));
    }
}

BOOST_AUTO_TEST_CASE(round_trips_every_dtype) {
    temp_dir dir;
    const std::vector<std::vector<std::int64_t>> shapes{{}, {0}, {5}, {2, 3}, {1, 1, 3, 2}, {2, 0, 3}};
    for (dtype type : all_dtypes) {
        if (type == dtype::bf16) continue;
        for (const auto& shape : shapes) {
            host_tensor t = host_tensor::zeros(type, shape);
            for (std::size_t i = 0; i < t.bytes.size(); ++i)
                t.bytes[i] = static_cast<std::byte>(type == dtype::boolean ? (i % 3 == 0) : (i * 37 + 11) & 0xff);
            const auto path = dir / ("t.npy");
            write_npy(path, t);
            const host_tensor back = read_npy(path);
            BOOST_TEST((back == t), "dtype " << dtype_name(type) << " shape " << shape_to_string(shape));
        }
    }
    BOOST_TEST(dir.listing() == std::vector<std::string>{"t.npy"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(typed_convenience_readers) {
    temp_dir dir;
    write_bytes(dir / "f32.npy", from_hex(np_f32));
    write_bytes(dir / "f64.npy", from_hex(np_f64));
    auto f = read_npy_as<float>(dir / "f32.npy");
    BOOST_TEST(f.shape == shape23);
    BOOST_TEST(f.values == (std::vector<float>{-0.5f, -0.25f, 0, 0.25f, 0.5f, 0.75f}), boost::test_tools::per_element());
    expect_error([&] { read_npy_as<float>(dir / "f64.npy"); }, {"f64.npy", "'<f8'", "expected '<f4'"});
    BOOST_TEST(read_npy_as<double>(dir / "f64.npy").values.size() == 6u);
    expect_error([&] { read_npy_as<double>(dir / "f32.npy"); }, {"f32.npy", "'<f4'", "expected '<f8'"});

    // Labels: any signed integer type or uint8 widens to int64.
    const std::pair<const char*, std::vector<std::int64_t>> labels[] = {
        {np_i64, {-3000000000000, -2000000000000, -1000000000000, 0, 1000000000000, 2000000000000}},
        {np_i32, {-300000, -200000, -100000, 0, 100000, 200000}},
        {np_i16, {-3000, -2000, -1000, 0, 1000, 2000}},
        {np_i8, {-3, -2, -1, 0, 1, 2}},
        {np_u8, {0, 40, 80, 120, 160, 200}}};
    for (const auto& [hex, expected] : labels) {
        write_bytes(dir / "labels.npy", from_hex(hex));
        auto l = read_npy_as<std::int64_t>(dir / "labels.npy");
        BOOST_TEST(l.shape == shape23);
        BOOST_TEST(l.values == expected, boost::test_tools::per_element());
    }
    expect_error([&] { read_npy_as<std::int64_t>(dir / "f32.npy"); }, {"f32.npy", "'<f4'", "integer"});
    write_bytes(dir / "bool.npy", from_hex(np_bool));
    expect_error([&] { read_npy_as<std::int64_t>(dir / "bool.npy"); }, {"bool.npy", "'|b1'"});
}

BOOST_AUTO_TEST_CASE(rejects_unsupported_layouts_and_dtypes) {
    temp_dir dir;
    auto check = [&](const std::vector<std::byte>& bytes, std::initializer_list<std::string_view> parts) {
        write_bytes(dir / "bad.npy", bytes);
        expect_error([&] { read_npy(dir / "bad.npy"); }, parts);
    };
    check(from_hex(np_fortran_f32), {"bad.npy", "fortran_order True", "[2, 3]"});
    check(from_hex(np_big_f32), {"bad.npy", "big-endian", "'>f4'"});
    check(from_hex(np_object), {"bad.npy", "object", "'|O'"});
    check(make_npy("{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", zeros(4)), {"bad.npy", "'<u2'"});
    check(make_npy("{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }", zeros(8)), {"bad.npy", "'|f4'"});
    check(make_npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", zeros(8)),
          {"bad.npy", "structured"});
}

BOOST_AUTO_TEST_CASE(rejects_truncated_and_padded_data) {
    temp_dir dir;
    auto bytes = from_hex(np_f32);
    bytes.resize(bytes.size() - 4);
    write_bytes(dir / "short.npy", bytes);
    expect_error([&] { read_npy(dir / "short.npy"); },
                 {"short.npy", "data has 20 bytes, header promises 24 (shape [2, 3], <f4)"});

    write_bytes(dir / "x.npy", make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 30, 40), }", zeros(1200)));
    expect_error([&] { read_npy(dir / "x.npy"); },
                 {"x.npy: data has 1200 bytes, header promises 4800 (shape [1, 1, 30, 40], <f4)"});

    bytes = from_hex(np_f32);
    bytes.push_back(std::byte{0});
    write_bytes(dir / "long.npy", bytes);
    expect_error([&] { read_npy(dir / "long.npy"); }, {"long.npy", "data has 25 bytes, header promises 24"});

    // Cut inside the header and inside the preamble.
    bytes = from_hex(np_f32);
    bytes.resize(60);
    write_bytes(dir / "cut.npy", bytes);
    expect_error([&] { read_npy(dir / "cut.npy"); }, {"cut.npy", "header length 118", "60-byte file"});
    bytes.resize(7);
    write_bytes(dir / "tiny.npy", bytes);
    expect_error([&] { read_npy(dir / "tiny.npy"); }, {"tiny.npy", "7 bytes"});
    auto v2 = from_hex(np_v2_f32);
    v2.resize(11);
    write_bytes(dir / "v2cut.npy", v2);
    expect_error([&] { read_npy(dir / "v2cut.npy"); }, {"v2cut.npy", "11 bytes, need 12"});

    // Huge shapes do not overflow into a small byte count.
    write_bytes(dir / "huge.npy",
                make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", zeros(8)));
    expect_error([&] { read_npy(dir / "huge.npy"); }, {"huge.npy", "too large"});
}

BOOST_AUTO_TEST_CASE(rejects_malformed_headers) {
    temp_dir dir;
    auto check = [&](const std::string& dict, std::initializer_list<std::string_view> parts) {
        write_bytes(dir / "h.npy", make_npy(dict, zeros(8)));
        expect_error([&] { read_npy(dir / "h.npy"); }, parts);
    };
    check("{'descr': '<f4', 'fortran_order': False, }", {"h.npy", "missing key 'shape'"});
    check("{'fortran_order': False, 'shape': (2,), }", {"h.npy", "missing key 'descr'"});
    check("{'descr': '<f4', 'shape': (2,), }", {"h.npy", "missing key 'fortran_order'"});
    check("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1, }", {"h.npy", "unexpected key 'extra'"});
    check("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", {"h.npy", "'shape'"});
    check("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", {"h.npy", "negative"});
    check("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", {"h.npy", "True or False"});
    check("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", {"h.npy", "expected ',' or '}'"});
    check("['descr', '<f4']", {"h.npy", "expected '{'"});
    check("{'descr: '<f4', 'fortran_order': False, 'shape': (2,), }", {"h.npy", "malformed .npy header"});
    check("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } trailing", {"h.npy", "after the dictionary"});

    auto bad_magic = from_hex(np_f32);
    bad_magic[1] = std::byte{'X'};
    write_bytes(dir / "magic.npy", bad_magic);
    expect_error([&] { read_npy(dir / "magic.npy"); }, {"magic.npy", "magic"});
    auto bad_version = from_hex(np_f32);
    bad_version[6] = std::byte{4};
    write_bytes(dir / "version.npy", bad_version);
    expect_error([&] { read_npy(dir / "version.npy"); }, {"version.npy", "version 4.0"});

    expect_error([&] { read_npy(dir / "absent.npy"); }, {"absent.npy", "cannot open", "No such file"});
    expect_error([&] { read_npy(dir.path); }, {dir.path.string(), "directory"});
}

BOOST_AUTO_TEST_CASE(accepts_other_header_spellings) {
    temp_dir dir;
    // Double quotes, no trailing comma, extra spaces, a list for the shape,
    // and format 2.0 / 3.0 preambles.
    const std::vector<std::byte> data = to_bytes(std::string("\x01\x00\x00\x00\x02\x00\x00\x00", 8));
    for (unsigned major : {1u, 2u, 3u}) {
        write_bytes(dir / "s.npy", make_npy("{ \"shape\" : [2] ,\"descr\":\"<i4\",  'fortran_order':False}", data, major));
        const auto t = read_npy(dir / "s.npy");
        BOOST_TEST((t.type == dtype::i32));
        BOOST_TEST(values_of<std::int32_t>(t) == (std::vector<std::int32_t>{1, 2}), boost::test_tools::per_element());
    }
    // A boolean array holds only 0 and 1.
    write_bytes(dir / "b.npy", make_npy("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }",
                                        to_bytes(std::string("\x01\x02", 2))));
    expect_error([&] { read_npy(dir / "b.npy"); }, {"b.npy", "element 1", "byte value 2"});
}

BOOST_AUTO_TEST_CASE(write_errors) {
    temp_dir dir;
    const std::vector<float> v{1, 2, 3};
    const auto t = host_tensor::from(v, {3});
    expect_error([&] { write_npy(dir / "missing-dir" / "a.npy", t); }, {"a.npy", "No such file or directory"});
    BOOST_TEST(dir.listing().empty());

    host_tensor bf = host_tensor::zeros(dtype::bf16, {2});
    expect_error([&] { write_npy(dir / "bf.npy", bf); }, {"bf.npy", "BF16"});
    host_tensor bad = t;
    bad.bytes.pop_back();
    expect_error([&] { write_npy(dir / "bad.npy", bad); }, {"bad.npy", "11 bytes", "[3]", "needs 12"});
    BOOST_TEST(dir.listing().empty());

    // Writing over an existing file replaces it whole.
    write_npy(dir / "a.npy", t);
    write_npy(dir / "a.npy", host_tensor::from(std::vector<std::int64_t>{4, 5}, {2}));
    BOOST_TEST(read_npy_as<std::int64_t>(dir / "a.npy").values == (std::vector<std::int64_t>{4, 5}),
               boost::test_tools::per_element());
    BOOST_TEST(dir.listing() == std::vector<std::string>{"a.npy"}, boost::test_tools::per_element());
}
