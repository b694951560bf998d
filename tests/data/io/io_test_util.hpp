// Helpers of the image I/O tests: a scratch directory, raw file access, the
// value pattern shared with crosscheck.py, Python runs, and checks on
// ctseg::error messages.
#pragma once
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ctseg/data/image.hpp"
#include "ctseg/error.hpp"
#include "../../interop/test_util.hpp"

namespace io_test {

namespace fs = std::filesystem;

// Scratch directories, raw file bytes and error checks, shared with the interop tests.
using ctseg_test::expect_error;
using ctseg_test::read_bytes;
using ctseg_test::temp_dir;
using ctseg_test::write_bytes;

// The test pattern of element i (C-order over channels x extents) for a
// stored type; crosscheck.py computes the same numbers. The first two
// elements are the type's extremes where they are integers.
template <class T>
T pattern(std::size_t i) {
    const auto k = static_cast<std::int64_t>(i);
    if constexpr (std::is_integral_v<T>) {
        if (i == 0) return std::numeric_limits<T>::min();
        if (i == 1) return std::numeric_limits<T>::max();
        if constexpr (sizeof(T) == 1)
            return static_cast<T>((k * 7919 + 13) % 256);
        else if constexpr (std::is_same_v<T, std::uint16_t>)
            return static_cast<T>((k * 7919 + 13) % 65536);
        else if constexpr (std::is_same_v<T, std::int16_t>)
            return static_cast<T>((k * 7919 + 13) % 65536 - 32768);
        else
            return static_cast<T>((k * 2654435761LL) % 4294967296LL - 2147483648LL);
    } else if constexpr (std::is_same_v<T, float>) {
        return static_cast<float>(static_cast<double>((k * 7919 + 13) % 20011) * 0.25 - 2000.5);
    } else {
        return static_cast<double>((k * 7919 + 13) % 1000003) * 0.125 - 50000.0 + 1.0 / 1024;
    }
}

template <class T>
ctseg::data::image<T> pattern_image(std::size_t channels, std::vector<std::size_t> extents) {
    ctseg::data::image<T> img(channels, std::move(extents));
    for (std::size_t i = 0; i < img.values.size(); ++i) img.values[i] = pattern<T>(i);
    return img;
}

// Runs f, which may succeed or throw ctseg::error naming `file` (any other
// exception escapes and fails the test). Returns whether it threw.
template <class F>
bool error_or_success(F&& f, const std::string& file) {
    try {
        f();
    } catch (const ctseg::error& e) {
        const std::string m = e.what();
        BOOST_TEST(m.find(file) != std::string::npos, "message '" << m << "' does not name " << file);
        BOOST_TEST(m.find('\n') == std::string::npos, "message '" << m << "' spans lines");
        return true;
    }
    return false;
}

// The Python with numpy and the readers, from CTSEG_TEST_PYTHON.
inline std::string python() {
    const char* p = std::getenv("CTSEG_TEST_PYTHON");
    return p ? p : "";
}

inline std::string shell_quote(const std::string& s) {
    std::string r = "'";
    for (char c : s) r += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return r + "'";
}

// Runs a command, returning its exit status and standard output.
inline int run_command(const std::string& command, std::string& out) {
    out.clear();
    FILE* p = ::popen(command.c_str(), "r");
    if (p == nullptr) return -1;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int status = ::pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Whether CTSEG_TEST_PYTHON can import every module named.
inline bool python_has(const std::string& modules) {
    if (python().empty()) return false;
    std::string out;
    return run_command(shell_quote(python()) + " -c " + shell_quote("import " + modules) + " 2>/dev/null", out) == 0;
}

}  // namespace io_test
