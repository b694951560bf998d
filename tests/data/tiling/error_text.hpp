// The message of the ctseg::error a call throws, for the tiling and metrics tests.
#pragma once
#include <string>

#include "ctseg/error.hpp"

namespace {

template <class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const ctseg::error& e) {
        return e.what();
    }
    return "(no ctseg::error)";
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace
