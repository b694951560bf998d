// A bound network's compile-time table, printed.
#pragma once
#include <cstdio>
#include <iostream>
#include <ostream>
#include <string>

#include "ctseg/plan/bind.hpp"

namespace ctseg {

namespace plan::detail {
inline std::string with_thousands(long v) {
    std::string s = std::to_string(v < 0 ? -v : v);
    for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(std::size_t(i), ",");
    return v < 0 ? "-" + s : s;
}
template <class G>
std::string shape_text(const G& g, int v) {
    const value_info& x = g.values[std::size_t(v)];
    std::string s = std::to_string(x.channels);
    for (int i = 0; i < x.rank; ++i) {
        s += 'x';
        s += std::to_string(x.extent[std::size_t(i)]);
    }
    return s;
}
template <class G>
std::string field_text(const G& g, int v) {
    const value_info& x = g.values[std::size_t(v)];
    std::string s;
    for (int i = 0; i < x.rank; ++i) {
        if (i) s += 'x';
        s += std::to_string(long(x.receptive[std::size_t(i)] + 0.5));
    }
    return s;
}
inline void pad_to(std::string& s, std::size_t w) { if (s.size() < w) s.append(w - s.size(), ' '); }
// The path without its "net/" root and plain sequence steps: what a reader needs
// to find the layer in the type.
inline std::string short_path(std::string_view p) {
    std::string out;
    std::size_t i = 0;
    while (i < p.size()) {
        std::size_t j = p.find('/', i);
        if (j == std::string_view::npos) j = p.size();
        const std::string_view part = p.substr(i, j - i);
        if (!(part == "net" && i == 0) && part.substr(0, 4) != "seq[") {
            if (!out.empty()) out += '/';
            out += part;
        }
        i = j + 1;
    }
    return out.empty() ? "net" : out;
}
}  // namespace plan::detail

// One line per layer: path (sequence steps left out), operation, output shape (channels x extents),
// parameters, FLOPs per batch element, receptive field; then the totals.
template <class Bound>
void print_summary(std::ostream& os) {
    using namespace plan::detail;
    constexpr const auto& g = Bound::lowered;
    std::size_t wp = 10, ww = 9;
    for (std::size_t i = 0; i < g.n_rows; ++i) {
        wp = std::max(wp, short_path(g.rows[i].path.view()).size());
        ww = std::max(ww, g.rows[i].what.length);
    }
    auto line = [&](std::string a, std::string b, std::string c, std::string d, std::string e, std::string f) {
        pad_to(a, wp + 2); pad_to(b, ww + 2); pad_to(c, 18);
        std::string dd(d.size() < 12 ? 12 - d.size() : 0, ' '), ee(e.size() < 17 ? 17 - e.size() : 0, ' ');
        os << a << b << c << dd << d << ee << e << "  " << f << '\n';
    };
    line("layer path", "operation", "output shape", "parameters", "FLOPs", "receptive field");
    line("(input)", "", shape_text(g, g.input), "", "", field_text(g, g.input));
    for (std::size_t i = 0; i < g.n_rows; ++i) {
        const auto& r = g.rows[i];
        line(short_path(r.path.view()), std::string(r.what.view()), shape_text(g, r.out),
             r.params ? with_thousands(r.params) : "", r.flops ? with_thousands(r.flops) : "", field_text(g, r.out));
    }
    os << "output " << shape_text(g, g.output) << ", " << with_thousands(Bound::parameter_count) << " parameters, "
       << with_thousands(Bound::flops) << " FLOPs (" << double(Bound::flops) * 1e-9 << " GFLOP) per batch element\n"
       << "receptive field " << field_text(g, g.output) << "; " << Bound::live_ops << " kernels after fusion (of "
       << g.n_ops << " operations); workspace " << with_thousands(Bound::template workspace_bytes<float>)
       << " bytes per batch element (float)\n";
    constexpr const auto& planned = Bound::graph;
    int chains = 0, links = 0;
    for (std::size_t i = 0; i < planned.n_ops; ++i) {
        const auto& o = planned.ops[i];
        if (o.removed) continue;
        chains += o.chain_next >= 0 && !o.chained;
        links += o.chain_next >= 0 || o.chained;
    }
    if (chains > 0)
        os << chains << " chains of convolutions (" << links << " in all) run depth first, their intermediates outside the workspace\n";
}

// summary<B>() prints the same table to standard output.
template <class Bound>
void summary(std::ostream& os = std::cout) {
    print_summary<Bound>(os);
}

}  // namespace ctseg
