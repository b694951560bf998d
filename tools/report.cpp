#include "report.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <sstream>

#include <unistd.h>

#include "ctseg/interop/atomic_file.hpp"

namespace ctseg::tool {

void write_text(const fs::path& file, const std::string& text) {
    interop::write_file_atomically(file, std::as_bytes(std::span(text)));
}

bool progress_wanted(bool forced) { return forced || ::isatty(STDERR_FILENO) == 1; }

progress_bar::progress_bar(std::string label, bool enabled)
    : label_(std::move(label)), enabled_(enabled), start_(std::chrono::steady_clock::now()), last_(start_) {}

void progress_bar::update(std::size_t done, std::size_t total) {
    if (!enabled_ || total == 0) return;
    const auto now = std::chrono::steady_clock::now();
    // Redraw at most 10 times a second, and always at the end.
    if (drawn_ && done < total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    drawn_ = true;
    constexpr int width = 30;
    const int filled = int(double(width) * double(done) / double(total));
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double left = done ? elapsed * double(total - done) / double(done) : 0;
    std::fprintf(stderr, "\r%s [%s%s] %zu/%zu %02d:%02d left ", label_.c_str(), std::string(std::size_t(filled), '#').c_str(),
                 std::string(std::size_t(width - filled), '.').c_str(), done, total, int(left / 60), int(left) % 60);
    std::fflush(stderr);
}

void progress_bar::finish() {
    if (drawn_) std::fprintf(stderr, "\n");
    drawn_ = false;
}

// ---------------------------------------------------------------------------

namespace {

std::string number(double v, int digits = 3) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    return buf;
}

// About `n` round tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int n) {
    const double raw = (hi - lo) / n, mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = mag;
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * mag >= raw) {
            step = m * mag;
            break;
        }
    std::vector<double> t;
    for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
    return t;
}

struct series {
    std::vector<double> y;
    std::string colour, name;
    bool dashed = false;
};

// One panel at (x0, y0) of w x h with axes, ticks, grid and the series.
void panel(std::ostringstream& s, double x0, double y0, double w, double h, const std::vector<double>& x, const std::vector<series>& lines,
           double lo, double hi, const std::string& label) {
    const double xmin = x.front(), xmax = std::max(x.back(), x.front() + 1);
    auto px = [&](double v) { return x0 + (v - xmin) / (xmax - xmin) * w; };
    auto py = [&](double v) { return y0 + h - (v - lo) / (hi - lo) * h; };
    s << "<rect x='" << x0 << "' y='" << y0 << "' width='" << w << "' height='" << h << "' fill='white' stroke='#444'/>\n";
    for (double t : ticks(lo, hi, 5)) {
        s << "<line x1='" << x0 << "' x2='" << x0 + w << "' y1='" << py(t) << "' y2='" << py(t) << "' stroke='#ddd'/>\n";
        s << "<text x='" << x0 - 5 << "' y='" << py(t) + 4 << "' text-anchor='end'>" << number(t) << "</text>\n";
    }
    for (double t : ticks(xmin, xmax, 6)) {
        if (t != std::round(t)) continue;
        s << "<line x1='" << px(t) << "' x2='" << px(t) << "' y1='" << y0 + h << "' y2='" << y0 + h + 4 << "' stroke='#444'/>\n";
        s << "<text x='" << px(t) << "' y='" << y0 + h + 16 << "' text-anchor='middle'>" << number(t, 6) << "</text>\n";
    }
    s << "<text x='" << x0 + w / 2 << "' y='" << y0 + h + 32 << "' text-anchor='middle'>epoch</text>\n";
    s << "<text x='" << x0 + 4 << "' y='" << y0 - 8 << "' font-weight='bold'>" << label << "</text>\n";
    double legend_x = x0 + w;
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
        const series& l = *it;
        std::string d;
        for (std::size_t i = 0; i < x.size(); ++i) {
            if (!std::isfinite(l.y[i])) continue;
            d += (d.empty() ? "M" : " L") + number(px(x[i]), 6) + "," + number(py(std::clamp(l.y[i], lo, hi)), 6);
        }
        if (d.empty()) continue;
        s << "<path d='" << d << "' fill='none' stroke='" << l.colour << "' stroke-width='1.8'"
          << (l.dashed ? " stroke-dasharray='5,3'" : "") << "/>\n";
        legend_x -= 8 + 7.0 * double(l.name.size()) + 22;
        s << "<line x1='" << legend_x << "' x2='" << legend_x + 18 << "' y1='" << y0 - 12 << "' y2='" << y0 - 12 << "' stroke='"
          << l.colour << "' stroke-width='1.8'" << (l.dashed ? " stroke-dasharray='5,3'" : "") << "/>\n";
        s << "<text x='" << legend_x + 22 << "' y='" << y0 - 8 << "'>" << l.name << "</text>\n";
    }
}

}  // namespace

std::string curves_svg(const std::vector<train::epoch_record>& history, const std::string& title) {
    std::vector<double> x, train_loss, val_loss, val_dice;
    for (const auto& r : history) {
        x.push_back(double(r.epoch));
        train_loss.push_back(r.train_loss);
        val_loss.push_back(r.val_loss);
        val_dice.push_back(r.val_dice);
    }
    const bool validated = std::any_of(val_dice.begin(), val_dice.end(), [](double d) { return std::isfinite(d); });
    const double W = validated ? 820 : 420, H = 300;
    std::ostringstream s;
    s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' viewBox='0 0 " << W << ' ' << H
      << "' font-family='sans-serif' font-size='11'>\n";
    s << "<rect width='100%' height='100%' fill='white'/>\n";
    s << "<text x='" << W / 2 << "' y='16' text-anchor='middle' font-size='13'>" << title << "</text>\n";
    if (x.empty()) {
        s << "<text x='" << W / 2 << "' y='" << H / 2 << "' text-anchor='middle'>no epoch finished yet</text>\n</svg>\n";
        return s.str();
    }
    double loss_hi = 0;
    for (double v : train_loss) if (std::isfinite(v)) loss_hi = std::max(loss_hi, v);
    for (double v : val_loss) if (std::isfinite(v)) loss_hi = std::max(loss_hi, v);
    if (!(loss_hi > 0)) loss_hi = 1;
    loss_hi = ticks(0, loss_hi * 1.05, 5).back() < loss_hi ? loss_hi * 1.1 : ticks(0, loss_hi * 1.05, 5).back();
    std::vector<series> losses{{train_loss, "#1f77b4", "training", false}};
    if (validated) losses.push_back({val_loss, "#ff7f0e", "validation", true});
    panel(s, 60, 50, 330, 200, x, losses, 0, loss_hi, "loss");
    if (validated) {
        double lo = 1;
        for (double v : val_dice) if (std::isfinite(v)) lo = std::min(lo, v);
        // Zoom on where the Dice ends up, keeping early epochs visible down to 0.5.
        lo = std::max(0.0, std::floor(std::max(lo, 0.5) * 10 - 1e-9) / 10);
        if (lo >= 1) lo = 0.9;
        panel(s, 470, 50, 330, 200, x, {{val_dice, "#2ca02c", "validation Dice (mean over classes)", false}}, lo, 1.0, "Dice");
    }
    s << "</svg>\n";
    return s.str();
}

// ---------------------------------------------------------------------------

data::image<std::uint8_t> overlay_picture(const data::image<float>& image, const data::image<std::int64_t>& labels) {
    if (image.rank() != 2 || labels.rank() != 2 || image.extents != labels.extents)
        throw error("overlay: needs a 2D image and labels of the same extents, got " + data::extents_text(image.extents) + " and " +
                    data::extents_text(labels.extents));
    const std::size_t H = image.extents[0], W = image.extents[1], V = H * W;
    const bool colour = image.channels == 3;
    data::image<std::uint8_t> out(3, {H, W});
    // Grey levels: robust stretch over the channels shown.
    std::vector<float> sorted(image.values.begin(), image.values.begin() + std::ptrdiff_t(V * (colour ? 3 : 1)));
    std::sort(sorted.begin(), sorted.end());
    const float lo = sorted[std::size_t(0.005 * double(sorted.size() - 1))], hi = sorted[std::size_t(0.995 * double(sorted.size() - 1))];
    const float scale = hi > lo ? 255.0f / (hi - lo) : 0.0f;
    for (std::size_t c = 0; c < 3; ++c) {
        const float* src = image.channel(colour ? c : 0);
        std::uint8_t* dst = out.channel(c);
        for (std::size_t v = 0; v < V; ++v) dst[v] = std::uint8_t(std::clamp((src[v] - lo) * scale, 0.0f, 255.0f) + 0.5f);
    }
    static constexpr std::array<std::array<int, 3>, 8> palette{{{230, 25, 75},
                                                                {60, 180, 75},
                                                                {0, 130, 200},
                                                                {255, 225, 25},
                                                                {145, 30, 180},
                                                                {70, 240, 240},
                                                                {245, 130, 48},
                                                                {240, 50, 230}}};
    for (std::size_t y = 0; y < H; ++y)
        for (std::size_t x = 0; x < W; ++x) {
            const std::size_t v = y * W + x;
            const std::int64_t l = labels.values[v];
            if (l <= 0) continue;
            const auto& rgb = palette[std::size_t(l - 1) % palette.size()];
            const bool edge = y == 0 || x == 0 || y + 1 == H || x + 1 == W || labels.values[v - W] != l || labels.values[v + W] != l ||
                              labels.values[v - 1] != l || labels.values[v + 1] != l;
            const float alpha = edge ? 1.0f : 0.35f;
            for (std::size_t c = 0; c < 3; ++c) {
                std::uint8_t& p = out.channel(c)[v];
                p = std::uint8_t(float(p) * (1 - alpha) + float(rgb[c]) * alpha + 0.5f);
            }
        }
    return out;
}

}  // namespace ctseg::tool
