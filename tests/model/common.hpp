// Helpers shared by the model test suites.
#pragma once
#include <cstddef>
#include <random>
#include <vector>

namespace model_testing {
// n values drawn from N(0, 1) with a fixed seed.
inline std::vector<float> random_values(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
}
}  // namespace model_testing
