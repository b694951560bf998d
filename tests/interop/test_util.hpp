// Helpers shared by the interop tests: a scratch directory, raw file access,
// hex decoding and checks on ctseg::error messages.
#pragma once
#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <stdlib.h>

#include "ctseg/error.hpp"

namespace ctseg_test {

namespace fs = std::filesystem;

// A fresh directory under the system temporary directory, removed afterwards.
struct temp_dir {
    fs::path path;

    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "ctseg-interop-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(path, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    fs::path operator/(const std::string& name) const { return path / name; }

    // Names of everything in the directory.
    std::vector<std::string> listing() const {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename().string());
        std::sort(names.begin(), names.end());
        return names;
    }
};

inline std::vector<std::byte> from_hex(std::string_view hex) {
    auto nibble = [](char c) -> unsigned {
        if (c >= '0' && c <= '9') return static_cast<unsigned>(c - '0');
        if (c >= 'a' && c <= 'f') return static_cast<unsigned>(c - 'a' + 10);
        throw std::runtime_error("bad hex digit");
    };
    std::vector<std::byte> out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<std::byte>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
    return out;
}

inline std::vector<std::byte> to_bytes(std::string_view s) {
    std::vector<std::byte> out(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) out[i] = static_cast<std::byte>(s[i]);
    return out;
}

inline void append(std::vector<std::byte>& to, const std::vector<std::byte>& more) {
    to.insert(to.end(), more.begin(), more.end());
}

inline void write_bytes(const fs::path& p, const std::vector<std::byte>& bytes) {
    // Removed first: truncating a file that was just written makes ext4 flush
    // it, which costs far more than the test itself.
    std::error_code ec;
    fs::remove(p, ec);
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!f) throw std::runtime_error("cannot write " + p.string());
}

inline std::vector<std::byte> read_bytes(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read " + p.string());
    std::vector<char> chars((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::vector<std::byte> out(chars.size());
    for (std::size_t i = 0; i < chars.size(); ++i) out[i] = static_cast<std::byte>(chars[i]);
    return out;
}

// Runs f, which must throw ctseg::error with a one-line message holding every
// one of `parts`; returns the message.
template <class F>
std::string expect_error(F&& f, std::initializer_list<std::string_view> parts) {
    try {
        f();
    } catch (const ctseg::error& e) {
        const std::string m = e.what();
        BOOST_TEST_MESSAGE("ctseg::error: " << m);
        for (auto p : parts) BOOST_TEST(m.find(p) != std::string::npos, "message '" << m << "' lacks '" << p << "'");
        BOOST_TEST(m.find('\n') == std::string::npos, "message '" << m << "' spans lines");
        return m;
    }
    BOOST_ERROR("no ctseg::error thrown");
    return {};
}

}  // namespace ctseg_test
