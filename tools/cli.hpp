// Command-line parsing for the ctseg command: options of one subcommand, and
// the small languages of its values (slice selections, label maps,
// augmentation lists).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ctseg/data/augment.hpp"
#include "ctseg/error.hpp"

namespace ctseg::tool {

// A mistake on the command line (exit status 2), as opposed to bad data (1).
struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct option_spec {
    std::string name;   // without the leading "--"
    bool takes_value;   // false: a flag
};

// The options of one subcommand, parsed from argv[first...]: "--name value",
// "--name=value" and flags; words not starting with "--" are positional.
class arguments {
public:
    arguments(std::string command, int argc, char** argv, int first, std::vector<option_spec> spec);

    bool help() const { return help_; }
    bool has(const std::string& name) const { return values_.count(name) != 0; }
    const std::vector<std::string>& positional() const { return positional_; }

    std::string text(const std::string& name, const std::string& fallback = "") const;
    std::string required(const std::string& name) const;
    long integer(const std::string& name, long fallback, long min, long max) const;
    std::optional<long> optional_integer(const std::string& name) const;
    double real(const std::string& name, double fallback, double min, double max) const;

    // Everything given, in the canonical "--name value" form (for run.json).
    const std::map<std::string, std::string>& given() const { return values_; }

private:
    std::string command_;
    std::map<std::string, std::string> values_;
    std::vector<std::string> positional_;
    bool help_ = false;
};

// --slices: which indices along axis 0 of a volume. A comma-separated union of
//   all           every slice
//   N             slice N (0-based)
//   A-B           slices A to B, both included
//   every:K       slices whose index is a multiple of K
//   every:K+O     slices whose index is O modulo K (0 <= O < K)
//   not-every:K   the slices every:K leaves out (not-every:K+O likewise)
class slice_selection {
public:
    slice_selection() = default;  // all
    explicit slice_selection(const std::string& spec);  // throws usage_error
    // The selected indices of a volume of `depth` slices, ascending; an
    // explicit index beyond the volume is an error naming `file`.
    std::vector<std::size_t> select(std::size_t depth, const std::string& file) const;
    const std::string& spec() const { return spec_; }

private:
    struct item {
        enum kind_t { all, range, every, not_every } kind = all;
        std::size_t a = 0, b = 0;  // range: first and last; every: K and O
    };
    std::vector<item> items_{item{}};
    std::string spec_ = "all";
};

// --label-map: "FROM=TO,..." where FROM is a value, a range A-B (both
// included) or * (every value no other rule names). Values no rule covers are
// kept. Ranges may not overlap. Example: 0=0,1-255=1.
class label_map {
public:
    label_map() = default;  // identity
    explicit label_map(const std::string& spec);  // throws usage_error
    bool identity() const { return rules_.empty() && !otherwise_; }
    std::int64_t operator()(std::int64_t v) const;
    const std::string& spec() const { return spec_; }

private:
    struct rule {
        std::int64_t lo, hi, to;
    };
    std::vector<rule> rules_;
    std::optional<std::int64_t> otherwise_;
    std::string spec_;
};

// --augment: "none" or a comma-separated list of
//   flip       each axis mirrored with probability 0.5
//   rot90      quarter turns in the last two axes, probability 0.75
//   elastic    the U-Net's smooth deformation (3x3 grid, sigma 10 voxels); dense in 3D
//   rotate     rotation by up to 15 degrees (3D: about a random axis)
//   scale      scaling by 0.85 to 1.15
//   intensity  gamma 0.7-1.5, contrast +-25 %, brightness +-0.1, each with probability 0.3
//   noise      Gaussian noise, sigma 0.05, probability 0.3
//   unet       elastic,flip,rot90 (the U-Net paper's set)
data::augment_options parse_augment(const std::string& spec, std::size_t rank);

// "3x4x5" style text of a list of numbers.
template <class Range>
std::string by_x(const Range& r) {
    std::string s;
    for (auto v : r) s += (s.empty() ? "" : "x") + std::to_string(v);
    return s;
}

}  // namespace ctseg::tool
