// The lowered form of a bound network: plain constexpr arrays of values
// (tensors), operations, parameters and summary rows. Compile-time passes
// (fusion, memory planning) rewrite these arrays; the model runs them.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ctseg::plan {

inline constexpr std::size_t max_rank = 3;
inline constexpr std::size_t name_capacity = 96;
inline constexpr std::size_t path_capacity = 200;

template <std::size_t N>
struct text {
    char chars[N]{};
    std::size_t length = 0;
    constexpr void append(std::string_view s) {
        for (char c : s)
            if (length + 1 < N) chars[length++] = c;
    }
    constexpr void append_number(long v) {
        char digits[24]{};
        int n = 0;
        bool neg = v < 0;
        unsigned long u = neg ? static_cast<unsigned long>(-v) : static_cast<unsigned long>(v);
        do { digits[n++] = char('0' + u % 10); u /= 10; } while (u);
        if (neg) append("-");
        while (n) { char c[1] = {digits[--n]}; append(std::string_view(c, 1)); }
    }
    constexpr std::string_view view() const { return {chars, length}; }
};

enum class op_kind : std::uint8_t {
    conv, conv_transpose, max_pool, pointwise, batch_norm, instance_norm,
    copy, tile, softmax, argmax
};

constexpr const char* op_kind_name(op_kind k) noexcept {
    switch (k) {
        case op_kind::conv: return "conv";
        case op_kind::conv_transpose: return "conv_transpose";
        case op_kind::max_pool: return "max_pool";
        case op_kind::pointwise: return "pointwise";
        case op_kind::batch_norm: return "batch_norm";
        case op_kind::instance_norm: return "instance_norm";
        case op_kind::copy: return "copy";
        case op_kind::tile: return "tile";
        case op_kind::softmax: return "softmax";
        case op_kind::argmax: return "argmax";
    }
    return "?";
}

enum class act_kind : std::uint8_t { none, relu, leaky_relu, prelu };

struct value_info {
    int buffer = -1;          // the value owning the storage this one lives in
    int channel_offset = 0;   // first channel of this value inside that storage
    int channels = 0;
    int rank = 0;
    std::array<long, max_rank> extent{};
    std::array<double, max_rank> receptive{}, jump{};  // receptive field in input elements
    bool streamed = false;    // produced and read inside one chain of convolutions: never stored whole
    constexpr long plane() const {
        long p = 1;
        for (int i = 0; i < rank; ++i) p *= extent[std::size_t(i)];
        return p;
    }
};

struct param_info {
    text<name_capacity> name;
    int rank = 0;
    std::array<long, max_rank + 2> shape{};
    long count = 0;
    long offset = 0;         // into the model's parameter storage (counters: into the counter storage)
    bool trainable = true;
    bool counter = false;    // int64 scalar buffer (num_batches_tracked)
};

struct op_info {
    op_kind kind{};
    bool removed = false;
    int in = -1, out = -1;
    int row = -1;            // summary row of the layer that emitted it
    // convolution / pooling geometry
    int in_channels = 0, out_channels = 0;
    std::array<long, max_rank> kernel{}, stride{}, pad{}, dilation{}, output_pad{};
    int weight = -1, bias = -1;            // parameter ids
    // normalisation parameters (batch norm: all four; instance norm: gamma/beta or -1)
    int gamma = -1, beta = -1, mean = -1, var = -1;
    double eps = 1e-5;
    bool folded_norm = false;              // a batch norm folded into this convolution
    long prepared = -1;                    // offset of folded weights / scale-shift in prepared storage
    // epilogue: y = act(acc + bias) + residual[residual_offset + c % residual_period]
    act_kind act = act_kind::none;
    double slope = 0;
    int prelu = -1;
    int residual = -1;
    int residual_offset = 0, residual_period = 0;
    // tile: out[c] = in[tile_offset + c % tile_period]
    int tile_offset = 0, tile_period = 0;
    // A chain of convolutions run depth first: the op that reads this one's
    // (streamed) output, and whether this op's input is the previous link's.
    int chain_next = -1;
    bool chained = false;
};

struct row_info {
    text<path_capacity> path;
    text<48> what;
    int out = -1;            // value id of the layer's output
    long params = 0;
    long flops = 0;
};

struct counts {
    std::size_t ops = 0, values = 0, params = 0, rows = 0;
    constexpr counts operator+(counts o) const { return {ops + o.ops, values + o.values, params + o.params, rows + o.rows}; }
};

// Collects a network's lowered form; capacities come from the type-level counts.
template <counts C>
struct graph {
    std::array<value_info, C.values + 1> values{};
    std::array<op_info, C.ops + 1> ops{};
    std::array<param_info, C.params + 1> params{};
    std::array<row_info, C.rows + 1> rows{};
    std::size_t n_values = 0, n_ops = 0, n_params = 0, n_rows = 0;
    long param_values = 0, counter_values = 0, prepared_values = 0;
    int input = -1, output = -1;

    constexpr int add_value(int channels, int rank, const std::array<long, max_rank>& extent,
                            const std::array<double, max_rank>& receptive,
                            const std::array<double, max_rank>& jump) {
        value_info& v = values[n_values];
        v.buffer = int(n_values);
        v.channels = channels;
        v.rank = rank;
        v.extent = extent;
        v.receptive = receptive;
        v.jump = jump;
        return int(n_values++);
    }
    constexpr int add_param(std::string_view prefix, std::string_view local, int rank,
                            const std::array<long, max_rank + 2>& shape, bool trainable, bool counter = false) {
        param_info& p = params[n_params];
        if (!prefix.empty()) { p.name.append(prefix); p.name.append("."); }
        p.name.append(local);
        p.rank = rank;
        p.shape = shape;
        p.count = 1;
        for (int i = 0; i < rank; ++i) p.count *= shape[std::size_t(i)];
        p.trainable = trainable;
        p.counter = counter;
        if (counter) { p.offset = counter_values; counter_values += 1; }
        else { p.offset = param_values; param_values += p.count; }
        return int(n_params++);
    }
    constexpr op_info& add_op(op_kind k, int in, int out, int row) {
        op_info& o = ops[n_ops++];
        o.kind = k;
        o.in = in;
        o.out = out;
        o.row = row;
        return o;
    }
    constexpr int add_row(std::string_view path, std::string_view what) {
        row_info& r = rows[n_rows];
        r.path.append(path);
        r.what.append(what);
        return int(n_rows++);
    }
};

}  // namespace ctseg::plan
