#define BOOST_TEST_MODULE interop state_dict
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ctseg/interop/state_dict.hpp"
#include "test_util.hpp"

using namespace ctseg::interop;
using ctseg::model::state_entry;
using ctseg_test::expect_error;
using ctseg_test::read_bytes;
using ctseg_test::temp_dir;
using ctseg_test::write_bytes;

namespace {

// A stand-in for a network: a convolution and a BatchNorm with its counter.
template <class T>
struct fake_model {
    std::vector<T> weight = std::vector<T>(2 * 1 * 3);
    std::vector<T> bias = std::vector<T>(2);
    std::vector<T> bn_weight = std::vector<T>(2);
    std::vector<T> running_mean = std::vector<T>(2);
    std::int64_t tracked = 0;

    void fill(T base) {
        for (std::size_t i = 0; i < weight.size(); ++i) weight[i] = base + static_cast<T>(i);
        for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = base - static_cast<T>(i);
        for (std::size_t i = 0; i < bn_weight.size(); ++i) bn_weight[i] = base * 2 + static_cast<T>(i);
        for (std::size_t i = 0; i < running_mean.size(); ++i) running_mean[i] = base / 4 + static_cast<T>(i);
        tracked = static_cast<std::int64_t>(base) * 10;
    }

    std::vector<state_entry<T>> state_entries() {
        return {{"conv.weight", {2, 1, 3}, weight},
                {"conv.bias", {2}, bias},
                {"bn.weight", {2}, bn_weight},
                {"bn.running_mean", {2}, running_mean, nullptr, false},
                {"bn.num_batches_tracked", {}, {}, &tracked, false}};
    }

    friend bool operator==(const fake_model&, const fake_model&) = default;
};

// The same without a counter entry, as a model that does not track batches.
struct plain_model {
    std::vector<float> weight = std::vector<float>(3);

    std::vector<state_entry<float>> state_entries() { return {{"bn.weight", {3}, weight}}; }
};

// A model whose entries can be read from a const object.
struct const_model {
    std::vector<float> w{1, 2, 3, 4};
    std::vector<state_entry<const float>> state_entries() const { return {{"w", {2, 2}, w}}; }
};

std::map<std::string, host_tensor> tensors_of(fake_model<float>& m) {
    return state_dict_tensors(m.state_entries(), "test");
}

}  // namespace

BOOST_AUTO_TEST_CASE(save_then_load) {
    temp_dir dir;
    fake_model<float> a;
    a.fill(3);
    save_state_dict(a, dir / "m.safetensors");

    const auto f = read_safetensors(dir / "m.safetensors");
    BOOST_TEST(f.tensors.size() == 5u);
    BOOST_TEST((f.tensors.at("conv.weight").type == dtype::f32));
    BOOST_TEST(f.tensors.at("conv.weight").shape == (std::vector<std::int64_t>{2, 1, 3}));
    BOOST_TEST((f.tensors.at("bn.num_batches_tracked").type == dtype::i64));
    BOOST_TEST(f.tensors.at("bn.num_batches_tracked").shape.empty());
    BOOST_TEST(f.tensors.at("bn.num_batches_tracked").as<std::int64_t>()[0] == 30);

    fake_model<float> b;
    BOOST_TEST(!(a == b));
    load_state_dict(b, dir / "m.safetensors");
    BOOST_TEST((a == b));
    BOOST_TEST(dir.listing() == std::vector<std::string>{"m.safetensors"}, boost::test_tools::per_element());

    // Metadata travels along.
    save_state_dict(a, dir / "meta.safetensors", {{"format", "pt"}});
    BOOST_TEST(read_safetensors(dir / "meta.safetensors").metadata.at("format") == "pt");

    // Double models use F64.
    fake_model<double> d;
    d.fill(5);
    save_state_dict(d, dir / "d.safetensors");
    BOOST_TEST((read_safetensors(dir / "d.safetensors").tensors.at("bn.running_mean").type == dtype::f64));
    fake_model<double> e;
    load_state_dict(e, dir / "d.safetensors");
    BOOST_TEST((d == e));

    // A const model with a const state_entries().
    const const_model c;
    save_state_dict(c, dir / "c.safetensors");
    BOOST_TEST(read_safetensors(dir / "c.safetensors").tensors.at("w").as<float>()[3] == 4.0f);
}

BOOST_AUTO_TEST_CASE(missing_keys) {
    temp_dir dir;
    fake_model<float> src;
    src.fill(1);
    auto t = tensors_of(src);
    t.erase("conv.bias");
    t.erase("bn.running_mean");
    t.erase("bn.num_batches_tracked");
    write_safetensors(dir / "m.safetensors", t);
    fake_model<float> m;
    const auto before = m;
    expect_error([&] { load_state_dict(m, dir / "m.safetensors"); },
                 {"m.safetensors", "missing tensor 'conv.bias'", "and 2 more missing"});
    BOOST_TEST((m == before));

    t = tensors_of(src);
    t.erase("bn.weight");
    write_safetensors(dir / "one.safetensors", t);
    expect_error([&] { load_state_dict(m, dir / "one.safetensors"); }, {"one.safetensors", "missing tensor 'bn.weight'"});
    BOOST_TEST((m == before));
}

BOOST_AUTO_TEST_CASE(unexpected_keys) {
    temp_dir dir;
    fake_model<float> src;
    src.fill(1);
    auto t = tensors_of(src);
    t["head.weight"] = host_tensor::from(std::vector<float>{1, 2}, {2});
    write_safetensors(dir / "u.safetensors", t);
    fake_model<float> m;
    const auto before = m;
    expect_error([&] { load_state_dict(m, dir / "u.safetensors"); }, {"u.safetensors", "unexpected tensor 'head.weight'"});
    BOOST_TEST((m == before));
}

BOOST_AUTO_TEST_CASE(num_batches_tracked_extras) {
    temp_dir dir;
    // A model without the counter accepts and ignores it.
    std::map<std::string, host_tensor> t{{"bn.weight", host_tensor::from(std::vector<float>{1, 2, 3}, {3})},
                                         {"bn.num_batches_tracked", host_tensor::from(std::vector<std::int64_t>{17}, {})}};
    write_safetensors(dir / "bn.safetensors", t);
    plain_model p;
    load_state_dict(p, dir / "bn.safetensors");
    BOOST_TEST(p.weight == (std::vector<float>{1, 2, 3}), boost::test_tools::per_element());

    // A model with it stores the value.
    fake_model<float> src;
    src.fill(2);
    auto all = tensors_of(src);
    all["bn.num_batches_tracked"] = host_tensor::from(std::vector<std::int64_t>{12345}, {});
    all["other.num_batches_tracked"] = host_tensor::from(std::vector<std::int64_t>{9}, {});
    write_safetensors(dir / "all.safetensors", all);
    fake_model<float> m;
    load_state_dict(m, dir / "all.safetensors");
    BOOST_TEST(m.tracked == 12345);
    BOOST_TEST(m.weight == src.weight, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(wrong_shape) {
    temp_dir dir;
    fake_model<float> src;
    src.fill(1);
    auto t = tensors_of(src);
    t["conv.weight"].shape = {2, 3, 1};
    write_safetensors(dir / "s.safetensors", t);
    fake_model<float> m;
    const auto before = m;
    expect_error([&] { load_state_dict(m, dir / "s.safetensors"); },
                 {"s.safetensors: tensor 'conv.weight' has shape [2, 3, 1], expected [2, 1, 3]"});
    BOOST_TEST((m == before));

    t = tensors_of(src);
    t["bn.num_batches_tracked"].shape = {1};
    write_safetensors(dir / "c.safetensors", t);
    expect_error([&] { load_state_dict(m, dir / "c.safetensors"); },
                 {"c.safetensors: tensor 'bn.num_batches_tracked' has shape [1], expected []"});
    BOOST_TEST((m == before));
}

BOOST_AUTO_TEST_CASE(wrong_dtype) {
    temp_dir dir;
    fake_model<double> d;
    d.fill(1);
    save_state_dict(d, dir / "d.safetensors");
    fake_model<float> m;
    const auto before = m;
    expect_error([&] { load_state_dict(m, dir / "d.safetensors"); }, {"d.safetensors", "has dtype F64, expected F32"});
    BOOST_TEST((m == before));

    fake_model<float> src;
    src.fill(1);
    auto t = tensors_of(src);
    t["bn.weight"] = host_tensor::zeros(dtype::f16, {2});
    write_safetensors(dir / "h.safetensors", t);
    expect_error([&] { load_state_dict(m, dir / "h.safetensors"); },
                 {"h.safetensors: tensor 'bn.weight' has dtype F16, expected F32"});
    t = tensors_of(src);
    t["bn.running_mean"] = host_tensor::from(std::vector<std::int64_t>{1, 2}, {2});
    write_safetensors(dir / "i.safetensors", t);
    expect_error([&] { load_state_dict(m, dir / "i.safetensors"); },
                 {"i.safetensors: tensor 'bn.running_mean' has dtype I64, expected F32"});
    t = tensors_of(src);
    t["bn.num_batches_tracked"] = host_tensor::from(std::vector<float>{3}, {});
    write_safetensors(dir / "c.safetensors", t);
    expect_error([&] { load_state_dict(m, dir / "c.safetensors"); },
                 {"c.safetensors: tensor 'bn.num_batches_tracked' has dtype F32, expected I64"});
    BOOST_TEST((m == before));

    fake_model<double> dm;
    const auto dbefore = dm;
    save_state_dict(src, dir / "f.safetensors");
    expect_error([&] { load_state_dict(dm, dir / "f.safetensors"); }, {"f.safetensors", "has dtype F32, expected F64"});
    BOOST_TEST((dm == dbefore));
}

// Only the last entry in model order is wrong: nothing may have been copied.
BOOST_AUTO_TEST_CASE(failed_load_leaves_the_model_unchanged) {
    temp_dir dir;
    fake_model<float> src;
    src.fill(7);
    auto t = tensors_of(src);
    t["bn.num_batches_tracked"] = host_tensor::from(std::vector<std::int32_t>{70}, {});
    write_safetensors(dir / "late.safetensors", t);
    fake_model<float> m;
    m.fill(1);
    const auto before = m;
    expect_error([&] { load_state_dict(m, dir / "late.safetensors"); },
                 {"late.safetensors", "'bn.num_batches_tracked'", "I32"});
    BOOST_TEST((m == before));

    // A corrupt file fails in the reader, also before any change.
    save_state_dict(src, dir / "ok.safetensors");
    auto bytes = read_bytes(dir / "ok.safetensors");
    bytes.pop_back();
    write_bytes(dir / "corrupt.safetensors", bytes);
    expect_error([&] { load_state_dict(m, dir / "corrupt.safetensors"); }, {"corrupt.safetensors"});
    BOOST_TEST((m == before));
    expect_error([&] { load_state_dict(m, dir / "absent.safetensors"); }, {"absent.safetensors"});
    BOOST_TEST((m == before));
}

BOOST_AUTO_TEST_CASE(save_errors) {
    temp_dir dir;
    fake_model<float> m;
    expect_error([&] { save_state_dict(m, dir / "no" / "m.safetensors"); }, {"m.safetensors", "No such file"});
    BOOST_TEST(dir.listing().empty());

    // An inconsistent model is reported, not written.
    m.bias.push_back(0);
    expect_error([&] { save_state_dict(m, dir / "m.safetensors"); }, {"m.safetensors", "'conv.bias'", "3 values", "[2]"});
    expect_error([&] { load_state_dict(m, dir / "m.safetensors"); }, {"m.safetensors", "'conv.bias'", "3 values"});
    BOOST_TEST(dir.listing().empty());
}
