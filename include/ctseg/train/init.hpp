// Identity initialisation of the context module (Yu & Koltun, "Multi-scale
// context aggregation by dilated convolutions"): a C -> C convolution whose
// weight [C][C][k...] is 1 at [c][c][centre] and 0 elsewhere, with zero bias,
// so that each layer passes its input through unchanged at the start of
// training.
#pragma once
#include <algorithm>
#include <cstddef>
#include <span>
#include <string_view>
#include <string>
#include <type_traits>
#include <vector>

#include "ctseg/error.hpp"

namespace ctseg::train {

// weight: C * C * prod(kernel) values, C-order [out][in][k0][k1]...; bias: C
// values or empty. Every kernel extent must be odd (the centre is k / 2).
template <class T>
    requires std::is_floating_point_v<T>
void identity_init(std::span<T> weight, std::span<T> bias, std::size_t channels, std::span<const std::size_t> kernel) {
    std::size_t taps = 1, centre = 0;
    std::string ks;
    for (std::size_t k : kernel) ks += (ks.empty() ? "" : "x") + std::to_string(k);
    for (std::size_t k : kernel) {
        if (k == 0 || k % 2 == 0)
            throw error("identity_init: kernel " + ks + " has an even or zero extent (the centre must be a tap)");
        centre = centre * k + k / 2;
        taps *= k;
    }
    if (weight.size() != channels * channels * taps)
        throw error("identity_init: weight has " + std::to_string(weight.size()) + " values, expected " +
                    std::to_string(channels) + " x " + std::to_string(channels) + " x " +
                    (ks.empty() ? std::string("1") : ks) + " = " + std::to_string(channels * channels * taps));
    if (!bias.empty() && bias.size() != channels)
        throw error("identity_init: bias has " + std::to_string(bias.size()) + " values, expected " +
                    std::to_string(channels));
    std::fill(weight.begin(), weight.end(), T(0));
    for (std::size_t c = 0; c < channels; ++c) weight[(c * channels + c) * taps + centre] = T(1);
    std::fill(bias.begin(), bias.end(), T(0));
}

// Raw-array form: weight has C * C * prod(kernel) values, bias C values (or null).
template <class T>
    requires std::is_floating_point_v<T>
void identity_init(T* weight, T* bias, std::size_t channels, std::span<const std::size_t> kernel) {
    std::size_t taps = 1;
    for (std::size_t k : kernel) taps *= k;
    identity_init(std::span<T>(weight, channels * channels * taps),
                  bias ? std::span<T>(bias, channels) : std::span<T>(), channels, kernel);
}

// Identity initialisation of every convolution of a network whose key starts
// with `prefix` (e.g. "context." for the context module of nets::context_net):
// weight "<layer>.weight" of shape [C, C, k...] and its "<layer>.bias". Returns
// how many layers were set; a matching layer that is not C -> C is an error.
template <class Network>
std::size_t identity_init_layers(Network& net, std::string_view prefix) {
    auto entries = net.state_entries();
    std::size_t done = 0;
    for (auto& w : entries) {
        if (!w.name.starts_with(prefix) || !w.name.ends_with(".weight") || w.shape.size() < 3) continue;
        const std::string layer = w.name.substr(0, w.name.size() - std::string_view(".weight").size());
        if (w.shape[0] != w.shape[1])
            throw error("identity_init_layers: '" + w.name + "' maps " + std::to_string(w.shape[1]) + " channels to " +
                        std::to_string(w.shape[0]) + "; the identity needs as many outputs as inputs");
        std::vector<std::size_t> kernel(w.shape.begin() + 2, w.shape.end());
        std::span<typename decltype(w.values)::element_type> bias;
        for (auto& b : entries)
            if (b.name == layer + ".bias") bias = b.values;
        identity_init(w.values, bias, std::size_t(w.shape[0]), std::span<const std::size_t>(kernel));
        ++done;
    }
    net.state_changed();
    return done;
}

}  // namespace ctseg::train
