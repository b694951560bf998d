// Small helpers shared by the augmentation tests.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ctseg/data/image.hpp"

namespace augment_test {

// Deterministic pseudo-random numbers for building inputs (independent of the
// library's generator).
struct lcg {
    std::uint64_t s;
    explicit lcg(std::uint64_t seed) : s(seed * 2862933555777941757ull + 3037000493ull) {}
    std::uint64_t next() {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        return s >> 33;
    }
    double uniform() { return double(next()) / double(1ull << 31); }
    std::size_t below(std::size_t n) { return std::size_t(next() % n); }
};

// C-order coordinates of flat index i.
inline std::vector<std::size_t> unravel(std::size_t i, const std::vector<std::size_t>& ext) {
    std::vector<std::size_t> p(ext.size());
    for (std::size_t a = ext.size(); a-- > 0;) {
        p[a] = i % ext[a];
        i /= ext[a];
    }
    return p;
}

inline std::size_t ravel(const std::vector<std::size_t>& p, const std::vector<std::size_t>& ext) {
    std::size_t i = 0;
    for (std::size_t a = 0; a < ext.size(); ++a) i = i * ext[a] + p[a];
    return i;
}

}  // namespace augment_test
