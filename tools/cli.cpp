#include "cli.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <cmath>
#include <set>

namespace ctseg::tool {

namespace {

std::optional<long long> parse_ll(std::string_view s) {
    long long v = 0;
    if (s.empty()) return std::nullopt;
    const char* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(s.data(), end, v);
    if (ec != std::errc() || p != end) return std::nullopt;
    return v;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (true) {
        const std::size_t at = s.find(sep, start);
        parts.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
        if (at == std::string::npos) break;
        start = at + 1;
    }
    return parts;
}

}  // namespace

arguments::arguments(std::string command, int argc, char** argv, int first, std::vector<option_spec> spec)
    : command_(std::move(command)) {
    auto find = [&](const std::string& name) -> const option_spec* {
        for (const auto& o : spec)
            if (o.name == name) return &o;
        return nullptr;
    };
    for (int i = first; i < argc; ++i) {
        std::string word = argv[i];
        if (word == "--help" || word == "-h") {
            help_ = true;
            continue;
        }
        if (word.size() < 3 || word.compare(0, 2, "--") != 0) {
            if (!word.empty() && word[0] == '-' && word.size() > 1)
                throw usage_error("ctseg " + command_ + ": unknown option '" + word + "' (see ctseg " + command_ + " --help)");
            positional_.push_back(word);
            continue;
        }
        std::string name = word.substr(2), value;
        bool inline_value = false;
        if (const auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
            inline_value = true;
        }
        const option_spec* o = find(name);
        if (!o) throw usage_error("ctseg " + command_ + ": unknown option '--" + name + "' (see ctseg " + command_ + " --help)");
        if (values_.count(name)) throw usage_error("ctseg " + command_ + ": option --" + name + " given twice");
        if (o->takes_value && !inline_value) {
            if (i + 1 >= argc) throw usage_error("ctseg " + command_ + ": option --" + name + " needs a value");
            value = argv[++i];
        } else if (!o->takes_value && inline_value) {
            throw usage_error("ctseg " + command_ + ": option --" + name + " takes no value, got '" + value + "'");
        }
        values_[name] = value;
    }
}

std::string arguments::text(const std::string& name, const std::string& fallback) const {
    const auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
}

std::string arguments::required(const std::string& name) const {
    const auto it = values_.find(name);
    if (it == values_.end() || it->second.empty())
        throw usage_error("ctseg " + command_ + ": --" + name + " is required (see ctseg " + command_ + " --help)");
    return it->second;
}

std::optional<long> arguments::optional_integer(const std::string& name) const {
    const auto it = values_.find(name);
    if (it == values_.end()) return std::nullopt;
    const auto v = parse_ll(it->second);
    if (!v || *v < std::numeric_limits<long>::min() || *v > std::numeric_limits<long>::max())
        throw usage_error("ctseg " + command_ + ": --" + name + " needs an integer, got '" + it->second + "'");
    return long(*v);
}

long arguments::integer(const std::string& name, long fallback, long min, long max) const {
    const auto v = optional_integer(name);
    if (!v) return fallback;
    if (*v < min || *v > max)
        throw usage_error("ctseg " + command_ + ": --" + name + " must be in [" + std::to_string(min) + ", " + std::to_string(max) +
                          "], got " + std::to_string(*v));
    return *v;
}

double arguments::real(const std::string& name, double fallback, double min, double max) const {
    const auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    double v = 0;
    const std::string& s = it->second;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v))
        throw usage_error("ctseg " + command_ + ": --" + name + " needs a number, got '" + s + "'");
    if (v < min || v > max)
        throw usage_error("ctseg " + command_ + ": --" + name + " must be in [" + std::to_string(min) + ", " + std::to_string(max) +
                          "], got " + s);
    return v;
}

// ---------------------------------------------------------------------------

slice_selection::slice_selection(const std::string& spec) : spec_(spec) {
    items_.clear();
    auto bad = [&](const std::string& part, const std::string& why) {
        return usage_error("--slices '" + spec + "': '" + part + "' " + why +
                           " (use all, N, A-B, every:K, every:K+O, not-every:K, joined by commas)");
    };
    for (const std::string& part : split(spec, ',')) {
        item it;
        auto number = [&](std::string_view s) {
            const auto v = parse_ll(s);
            if (!v || *v < 0) throw bad(part, "is not a slice number");
            return std::size_t(*v);
        };
        if (part == "all") {
            it.kind = item::all;
        } else if (part.rfind("every:", 0) == 0 || part.rfind("not-every:", 0) == 0) {
            it.kind = part[0] == 'e' ? item::every : item::not_every;
            const std::string rest = part.substr(part.find(':') + 1);
            const auto plus = rest.find('+');
            it.a = number(rest.substr(0, plus));
            it.b = plus == std::string::npos ? 0 : number(rest.substr(plus + 1));
            if (it.a == 0) throw bad(part, "needs K >= 1");
            if (it.b >= it.a) throw bad(part, "needs the offset O below K");
        } else if (const auto dash = part.find('-'); dash != std::string::npos && dash > 0) {
            it.kind = item::range;
            it.a = number(std::string_view(part).substr(0, dash));
            it.b = number(std::string_view(part).substr(dash + 1));
            if (it.b < it.a) throw bad(part, "is an empty range");
        } else {
            it.kind = item::range;
            it.a = it.b = number(part);
        }
        items_.push_back(it);
    }
}

std::vector<std::size_t> slice_selection::select(std::size_t depth, const std::string& file) const {
    std::set<std::size_t> chosen;
    for (const item& it : items_) {
        switch (it.kind) {
            case item::all:
                for (std::size_t z = 0; z < depth; ++z) chosen.insert(z);
                break;
            case item::range:
                if (it.b >= depth)
                    throw error(file + ": --slices '" + spec_ + "' names slice " + std::to_string(it.b) + ", the volume has " +
                                std::to_string(depth) + " (0 to " + std::to_string(depth - 1) + ")");
                for (std::size_t z = it.a; z <= it.b; ++z) chosen.insert(z);
                break;
            case item::every:
            case item::not_every:
                for (std::size_t z = 0; z < depth; ++z)
                    if ((z % it.a == it.b) == (it.kind == item::every)) chosen.insert(z);
                break;
        }
    }
    if (chosen.empty())
        throw error(file + ": --slices '" + spec_ + "' selects no slice of a volume of " + std::to_string(depth));
    return {chosen.begin(), chosen.end()};
}

// ---------------------------------------------------------------------------

label_map::label_map(const std::string& spec) : spec_(spec) {
    auto bad = [&](const std::string& part, const std::string& why) {
        return usage_error("--label-map '" + spec + "': '" + part + "' " + why + " (use FROM=TO or A-B=TO or *=TO, joined by commas)");
    };
    for (const std::string& part : split(spec, ',')) {
        const auto eq = part.find('=');
        if (eq == std::string::npos) throw bad(part, "has no '='");
        const std::string from = part.substr(0, eq);
        const auto to = parse_ll(std::string_view(part).substr(eq + 1));
        if (!to) throw bad(part, "maps to something that is not an integer");
        if (from == "*") {
            if (otherwise_) throw bad(part, "repeats '*'");
            otherwise_ = *to;
            continue;
        }
        // A range's dash is the first '-' after the first character (which may be a sign).
        const auto dash = from.find('-', 1);
        const auto lo = parse_ll(std::string_view(from).substr(0, dash));
        const auto hi = dash == std::string::npos ? lo : parse_ll(std::string_view(from).substr(dash + 1));
        if (!lo || !hi) throw bad(part, "does not start with a value or range");
        if (*hi < *lo) throw bad(part, "is an empty range");
        for (const rule& r : rules_)
            if (!(*hi < r.lo || r.hi < *lo)) throw bad(part, "overlaps an earlier rule");
        rules_.push_back({*lo, *hi, *to});
    }
}

std::int64_t label_map::operator()(std::int64_t v) const {
    for (const rule& r : rules_)
        if (v >= r.lo && v <= r.hi) return r.to;
    return otherwise_ ? *otherwise_ : v;
}

// ---------------------------------------------------------------------------

data::augment_options parse_augment(const std::string& spec, std::size_t rank) {
    data::augment_options o;
    if (spec == "none" || spec.empty()) return o;
    for (const std::string& part : split(spec, ',')) {
        if (part == "flip") {
            o.p_flip = 0.5;
        } else if (part == "rot90") {
            o.p_rot90 = 0.75;
        } else if (part == "elastic") {
            o.p_elastic = 1;
            o.elastic = rank == 3 ? data::elastic_kind::dense : data::elastic_kind::grid;
        } else if (part == "rotate") {
            o.p_rotation = 1;
            o.max_rotation_deg = 15;
        } else if (part == "scale") {
            o.p_scale = 1;
            o.scale_min = 0.85;
            o.scale_max = 1.15;
        } else if (part == "intensity") {
            o.p_gamma = o.p_contrast = o.p_brightness = 0.3;
            o.gamma_min = 0.7;
            o.gamma_max = 1.5;
            o.contrast = 0.25;
            o.brightness = 0.1;
        } else if (part == "noise") {
            o.p_noise = 0.3;
            o.noise_sigma = 0.05;
        } else if (part == "unet") {
            o.p_elastic = 1;
            o.elastic = rank == 3 ? data::elastic_kind::dense : data::elastic_kind::grid;
            o.p_flip = 0.5;
            o.p_rot90 = 0.75;
        } else {
            throw usage_error("--augment '" + spec + "': unknown transform '" + part +
                              "' (use none, or flip, rot90, elastic, rotate, scale, intensity, noise, unet joined by commas)");
        }
    }
    return o;
}

}  // namespace ctseg::tool
