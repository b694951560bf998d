// Helpers shared by the training tests.
#pragma once
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "ctseg/error.hpp"

namespace ctseg_train_test {

// Runs f, which must throw ctseg::error; returns its message ("" if it did not throw).
inline std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const ctseg::error& e) {
        return e.what();
    }
    return "";
}

// max |a - b| / max |b| over two ranges of equal length (0 when both are 0).
template <class A, class B>
double rel_err(const A& a, const B& b) {
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < std::size(b); ++i) {
        diff = std::max(diff, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
        scale = std::max(scale, std::abs(static_cast<double>(b[i])));
    }
    return scale == 0 ? diff : diff / scale;
}

}  // namespace ctseg_train_test
