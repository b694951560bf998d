// Binding each DSL type to an input shape: output shape, compile-time checks
// (each a static_assert naming the layer path and the numbers), and lowering
// into the graph arrays of graph.hpp.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "ctseg/plan/diagnostics.hpp"
#include "ctseg/plan/extents.hpp"
#include "ctseg/plan/graph.hpp"
#include "ctseg/spec/fixed_string.hpp"
#include "ctseg/spec/layers.hpp"
#include "ctseg/spec/options.hpp"
#include "ctseg/spec/shape.hpp"
#include "ctseg/spec/topology.hpp"

namespace ctseg::plan {

// Where a node sits: its path (for diagnostics and summaries), the prefix of its
// parameter names, and the shape a `match_skip` transposed convolution must reach.
template <fixed_string Path, fixed_string Prefix, class Target, fixed_string Position = fixed_string<0>{}>
struct ctx {
    static constexpr auto path = Path;
    static constexpr auto prefix = Prefix;      // the names given by named<>, indexed<>, sequential<>
    static constexpr auto position = Position;  // positions in plain seq/concat/add since the last name
    // The state_dict prefix of a layer's own parameters: an unnamed layer is known
    // by its position, as torch.nn.Sequential names its children.
    static constexpr auto key = join_dotted<Prefix, Position>();
    using target = Target;
};
template <class Ctx, fixed_string Component>
using step_ctx = ctx<Ctx::path + fixed_string("/") + Component, Ctx::prefix, typename Ctx::target, Ctx::position>;
template <class Ctx, fixed_string Component, std::size_t I>
using position_ctx = ctx<Ctx::path + fixed_string("/") + Component, Ctx::prefix, typename Ctx::target,
                         join_dotted<Ctx::position, to_fixed_string<I>()>()>;
template <class Ctx, fixed_string Name>
using named_ctx = ctx<Ctx::path + fixed_string("/") + Name, join_dotted<Ctx::prefix, Name>(), typename Ctx::target>;
template <class Ctx, class Target>
using target_ctx = ctx<Ctx::path, Ctx::prefix, Target, Ctx::position>;

// Every node runs its static_asserts inside `static constexpr bool diagnose()`,
// called from one class-scope static_assert: a failed check then leaves the node
// itself valid, so the compiler reports the check and nothing that merely uses
// the node (clang would otherwise reject every later use of it as well). A node
// whose checks fail also has `ok == false`; see detail::node_ok.
template <class Layer, class In, class Ctx>
struct node {
    static constexpr bool diagnose() {
        static_assert(diag::check<false, diag::at<Ctx::path>, Layer>,
                      "ctseg: this type is not a ctseg layer or topology (see the type after the layer path)");
        return true;
    }
    static_assert(diagnose());
    static constexpr bool ok = false;
    using out = In;
    static constexpr counts count{};
    template <class G> static constexpr int emit(G&, int in) { return in; }
};

namespace detail {
using ext_t = std::array<long, max_rank>;

template <class Shape>
constexpr ext_t extent_of() {
    ext_t e{};
    for (std::size_t i = 0; i < Shape::rank && i < max_rank; ++i) e[i] = long(Shape::spatial[i]);
    return e;
}
template <std::size_t R>
constexpr ext_t widen(const std::array<std::size_t, R>& a) {
    ext_t e{};
    for (std::size_t i = 0; i < R && i < max_rank; ++i) e[i] = long(a[i]);
    return e;
}
template <std::size_t R>
constexpr std::array<std::size_t, R> ones() {
    std::array<std::size_t, R> a{};
    for (auto& v : a) v = 1;
    return a;
}
template <class Opt, std::size_t R>
constexpr std::array<std::size_t, R> expand_or_ones() {
    if constexpr (Opt::fits_rank(R)) return Opt::template expand<R>();
    else return ones<R>();
}
template <std::size_t R>
constexpr bool all_positive(const std::array<std::size_t, R>& a) {
    for (auto v : a)
        if (v == 0) return false;
    return true;
}
template <std::size_t R>
constexpr long product(const std::array<std::size_t, R>& a) {
    long p = 1;
    for (auto v : a) p *= long(v);
    return p;
}
template <class G>
constexpr void append_dims(G& t, const ext_t& e, int rank) {
    for (int i = 0; i < rank; ++i) {
        if (i) t.append("x");
        t.append_number(e[std::size_t(i)]);
    }
}
// "conv 3x3 s2 d4" style descriptions for summaries.
template <class Text>
constexpr void describe(Text& t, std::string_view op, const ext_t& k, const ext_t& s, const ext_t& d, int rank) {
    t.append(op);
    t.append(" ");
    append_dims(t, k, rank);
    bool unit_s = true, unit_d = true;
    for (int i = 0; i < rank; ++i) { unit_s &= s[std::size_t(i)] == 1; unit_d &= d[std::size_t(i)] == 1; }
    if (!unit_s) { t.append(" s"); append_dims(t, s, rank); }
    if (!unit_d) { t.append(" d"); append_dims(t, d, rank); }
}

template <class Opt, class Default, class... O>
using option_or = typename ctseg::detail::find_values<Opt::template tpl, Default, O...>::type;

template <class... O>
using kernel_opt = typename ctseg::detail::find_values<kernel, void, O...>::type;
template <class... O>
using stride_opt = typename ctseg::detail::find_values<stride, void, O...>::type;
template <class... O>
using dilation_opt = typename ctseg::detail::find_values<dilation, ctseg::dilation<1>, O...>::type;
template <class... O>
using padding_opt = typename ctseg::detail::find_values<padding, void, O...>::type;
template <class... O>
using output_padding_opt = typename ctseg::detail::find_values<output_padding, ctseg::output_padding<0>, O...>::type;
template <class... O>
using upsample_opt = typename ctseg::detail::find_values<upsample_by, void, O...>::type;
template <class... O>
using eps_opt = typename ctseg::detail::find_pair<ctseg::eps, ctseg::eps<1, 100000>, O...>::type;

template <class Opt, std::size_t R>
constexpr bool fits_rank() {
    if constexpr (std::is_void_v<Opt>) return true;
    else return Opt::fits_rank(R);
}
// Whether an option (or its absence) can be spelled out for rank R.
template <class Opt, std::size_t R>
inline constexpr bool fits = fits_rank<Opt, R>();

// Receptive field and jump (distance between neighbours, in input elements)
// after a window of `k` elements `d` apart, moving by `s`.
template <class G>
constexpr void window_field(G& g, int in, int out, const ext_t& k, const ext_t& s, const ext_t& d, int rank) {
    for (std::size_t i = 0; i < std::size_t(rank); ++i) {
        const double j = g.values[std::size_t(in)].jump[i];
        g.values[std::size_t(out)].receptive[i] = g.values[std::size_t(in)].receptive[i] + double((k[i] - 1) * d[i]) * j;
        g.values[std::size_t(out)].jump[i] = j * double(s[i]);
    }
}
template <class G>
constexpr int same_field_value(G& g, int in, int channels, const ext_t& extent) {
    const value_info& v = g.values[std::size_t(in)];
    return g.add_value(channels, v.rank, extent, v.receptive, v.jump);
}
}  // namespace detail

namespace detail {
template <class... K>
constexpr unsigned bits(K... k) { return (0u | ... | ctseg::detail::option_bit(k)); }
using ok_ = ctseg::detail::option_kind;
inline constexpr unsigned conv_options = bits(ok_::kernel, ok_::stride, ok_::dilation, ok_::padding, ok_::same, ok_::valid, ok_::no_bias);
inline constexpr unsigned conv_transpose_options =
    bits(ok_::kernel, ok_::stride, ok_::dilation, ok_::padding, ok_::output_padding, ok_::upsample_by, ok_::match_skip, ok_::no_bias);
inline constexpr unsigned pool_options = bits(ok_::kernel, ok_::stride, ok_::padding);
inline constexpr unsigned batch_norm_options = bits(ok_::eps);
inline constexpr unsigned instance_norm_options = bits(ok_::eps, ok_::affine);

// The first option a layer does not understand, or gets twice (void if none).
template <unsigned Allowed, class... O>
using bad_option = typename ctseg::detail::option_at<ctseg::detail::first_bad_option<Allowed, O...>(), O...>::type;
}  // namespace detail

// ---------------------------------------------------------------- convolution
template <std::size_t Out, class... O, std::size_t C, std::size_t... S, class Ctx>
struct node<conv<Out, O...>, shape<C, S...>, Ctx> {
    using in_shape = shape<C, S...>;
    static constexpr std::size_t R = sizeof...(S);
    using K = detail::kernel_opt<O...>;
    using St = detail::stride_opt<O...>;
    using Di = detail::dilation_opt<O...>;
    using Pa = detail::padding_opt<O...>;
    static constexpr bool pad_same = ctseg::detail::has_option<same, O...>;
    static constexpr bool has_bias = !ctseg::detail::has_option<no_bias, O...>;

    static constexpr bool shaped = !std::is_void_v<K> && detail::fits<K, R> && detail::fits<St, R> && detail::fits<Pa, R> && detail::fits<Di, R>;
    static constexpr auto k = [] { if constexpr (shaped) return K::template expand<R>(); else return detail::ones<R>(); }();
    static constexpr auto s = [] { if constexpr (shaped && !std::is_void_v<St>) return St::template expand<R>(); else return detail::ones<R>(); }();
    static constexpr auto d = [] { if constexpr (shaped) return Di::template expand<R>(); else return detail::ones<R>(); }();
    static constexpr auto p = [] {
        std::array<std::size_t, R> r{};
        if constexpr (shaped && !std::is_void_v<Pa>) r = Pa::template expand<R>();
        else if constexpr (pad_same) for (std::size_t i = 0; i < R; ++i) r[i] = d[i] * (k[i] - 1) / 2;
        return r;
    }();
    static constexpr bool reaches = [] {
        bool ok = true;
        for (std::size_t i = 0; i < R; ++i) ok &= conv_extent(long(in_shape::spatial[i]), long(k[i]), long(s[i]), long(p[i]), long(d[i])) > 0;
        return ok;
    }();
    static constexpr bool positive = detail::all_positive(k) && detail::all_positive(s) && detail::all_positive(d);
    static constexpr bool diagnose() {
        static_assert(diag::check<std::is_void_v<detail::bad_option<detail::conv_options, O...>>, diag::at<Ctx::path>,
                                  detail::bad_option<detail::conv_options, O...>>,
                      "ctseg: conv: an option is given twice or is not a conv option (kernel, stride, dilation, padding, same, valid, no_bias)");
        static_assert(diag::check<int(!std::is_void_v<Pa>) + int(pad_same) + int(ctseg::detail::has_option<valid, O...>) <= 1, diag::at<Ctx::path>>,
                      "ctseg: conv: give only one of padding<...>, same and valid");
        static_assert(diag::check<!std::is_void_v<K>, diag::at<Ctx::path>>, "ctseg: conv: no kernel<...> option given");
        static_assert(diag::check<Out != 0, diag::at<Ctx::path>>, "ctseg: conv: zero output channels");
        static_assert(diag::check<detail::fits<K, R>, diag::at<Ctx::path>, diag::input<in_shape>, K, diag::input_rank<R>>,
                      "ctseg: conv: the kernel has a different number of extents than the input has spatial dimensions (a 2D kernel on a 3D input?)");
        static_assert(diag::check<detail::fits<St, R> && detail::fits<Pa, R> && detail::fits<Di, R>, diag::at<Ctx::path>, diag::input<in_shape>, St, Di, Pa>,
                      "ctseg: conv: stride, dilation or padding has a different number of values than the input has spatial dimensions");
        static_assert(diag::check<!shaped || positive, diag::at<Ctx::path>, K, St, Di>,
                      "ctseg: conv: kernel, stride and dilation values must be at least 1");
        static_assert(diag::check<!shaped || !positive || reaches, diag::at<Ctx::path>, diag::input<in_shape>, K, Di, diag::padding_of<p[0]>, Pa>,
                      "ctseg: conv: the dilated kernel (dilation*(kernel-1)+1) reaches beyond the padded input");
        return true;
    }
    static_assert(diagnose());
    static constexpr bool ok = shaped && positive && reaches && Out != 0;
    static constexpr auto out_extent = [] {
        std::array<std::size_t, R> r{};
        for (std::size_t i = 0; i < R; ++i)
            r[i] = reaches ? std::size_t(conv_extent(long(in_shape::spatial[i]), long(k[i]), long(s[i]), long(p[i]), long(d[i]))) : in_shape::spatial[i];
        return r;
    }();
    using out = shape_from_array_t<Out, out_extent>;
    static constexpr long params = long(Out) * long(C) * detail::product(k) + (has_bias ? long(Out) : 0);
    static constexpr long flops = 2 * long(C) * detail::product(k) * long(Out) * long(out::plane);
    static constexpr counts count{1, 1, has_bias ? 2u : 1u, 1};

    template <class G>
    static constexpr int emit(G& g, int in) {
        const auto ke = detail::widen(k), se = detail::widen(s), de = detail::widen(d), pe = detail::widen(p);
        const int row = g.add_row(Ctx::path.view(), "");
        detail::describe(g.rows[std::size_t(row)].what, "conv", ke, se, de, int(R));
        const int v = g.add_value(int(Out), int(R), detail::extent_of<out>(), {}, {});
        detail::window_field(g, in, v, ke, se, de, int(R));
        op_info& o = g.add_op(op_kind::conv, in, v, row);
        o.in_channels = int(C);
        o.out_channels = int(Out);
        o.kernel = ke; o.stride = se; o.dilation = de; o.pad = pe;
        std::array<long, max_rank + 2> ws{long(Out), long(C)};
        for (std::size_t i = 0; i < R; ++i) ws[i + 2] = long(k[i]);
        o.weight = g.add_param(Ctx::key.view(), "weight", int(R) + 2, ws, true);
        if (has_bias) o.bias = g.add_param(Ctx::key.view(), "bias", 1, {long(Out)}, true);
        g.rows[std::size_t(row)].out = v;
        g.rows[std::size_t(row)].params = params;
        g.rows[std::size_t(row)].flops = flops;
        return v;
    }
};

// ------------------------------------------------------ transposed convolution
template <std::size_t Out, class... O, std::size_t C, std::size_t... S, class Ctx>
struct node<conv_transpose<Out, O...>, shape<C, S...>, Ctx> {
    using in_shape = shape<C, S...>;
    static constexpr std::size_t R = sizeof...(S);
    using K = detail::kernel_opt<O...>;
    using St = detail::stride_opt<O...>;
    using Di = detail::dilation_opt<O...>;
    using Pa = detail::padding_opt<O...>;
    using Op = detail::output_padding_opt<O...>;
    using Up = detail::upsample_opt<O...>;
    static constexpr bool to_skip = ctseg::detail::has_option<match_skip, O...>;
    static constexpr bool has_bias = !ctseg::detail::has_option<no_bias, O...>;
    using target = typename Ctx::target;

    static constexpr bool shaped = !std::is_void_v<K> && detail::fits<K, R> && detail::fits<St, R> && detail::fits<Pa, R> &&
                                   detail::fits<Up, R> && detail::fits<Op, R> && detail::fits<Di, R> && (!to_skip || !std::is_void_v<target>);
    static constexpr auto k = [] { if constexpr (shaped) return K::template expand<R>(); else return detail::ones<R>(); }();
    static constexpr auto s = [] { if constexpr (shaped && !std::is_void_v<St>) return St::template expand<R>(); else return detail::ones<R>(); }();
    static constexpr auto d = [] { if constexpr (shaped) return Di::template expand<R>(); else return detail::ones<R>(); }();
    // The extent wanted, where the padding is derived from it.
    static constexpr auto wanted = [] {
        std::array<long, R> w{};
        if constexpr (shaped && !std::is_void_v<Up>) {
            auto f = Up::template expand<R>();
            for (std::size_t i = 0; i < R; ++i) w[i] = long(f[i] * in_shape::spatial[i]);
        } else if constexpr (shaped && to_skip) {
            if constexpr (target::rank == R)
                for (std::size_t i = 0; i < R; ++i) w[i] = long(target::spatial[i]);
        }
        return w;
    }();
    static constexpr bool derived = shaped && (!std::is_void_v<Up> || to_skip);
    // out = (in-1)*s - 2p + d(k-1) + op + 1, with 0 <= op < max(s, d).
    struct paddings { std::array<long, R> pad{}, out_pad{}; bool ok = true; };
    static constexpr paddings chosen = [] {
        paddings r;
        for (std::size_t i = 0; i < R; ++i) {
            if (derived) {
                const transpose_padding t = padding_for_extent(long(in_shape::spatial[i]), wanted[i], long(k[i]), long(s[i]), long(d[i]));
                r.pad[i] = t.pad;
                r.out_pad[i] = t.output_pad;
                r.ok &= t.ok;
            } else {
                if constexpr (shaped && !std::is_void_v<Pa>) r.pad[i] = long(Pa::template expand<R>()[i]);
                if constexpr (shaped) r.out_pad[i] = long(Op::template expand<R>()[i]);
                if (r.out_pad[i] >= long(std::max(s[i], d[i]))) r.ok = false;
                const long o = conv_transpose_extent(long(in_shape::spatial[i]), long(k[i]), long(s[i]), r.pad[i], long(d[i]), r.out_pad[i]);
                if (o <= 0) r.ok = false;
            }
        }
        return r;
    }();
    static constexpr bool one_padding = int(!std::is_void_v<Pa>) + int(!std::is_void_v<Up>) + int(to_skip) <= 1;
    static constexpr bool positive = detail::all_positive(k) && detail::all_positive(s) && detail::all_positive(d);
    static constexpr bool diagnose() {
        static_assert(diag::check<std::is_void_v<detail::bad_option<detail::conv_transpose_options, O...>>, diag::at<Ctx::path>,
                                  detail::bad_option<detail::conv_transpose_options, O...>>,
                      "ctseg: conv_transpose: an option is given twice or is not a conv_transpose option (kernel, stride, dilation, "
                      "padding, output_padding, upsample_by, match_skip, no_bias)");
        static_assert(diag::check<!(ctseg::detail::has_option<match_skip, O...> || !std::is_void_v<Up>) ||
                                      std::is_same_v<Op, ctseg::output_padding<0>>, diag::at<Ctx::path>, Op>,
                      "ctseg: conv_transpose: output_padding<...> is derived by upsample_by<...> / match_skip; do not give it too");
        static_assert(diag::check<!std::is_void_v<K>, diag::at<Ctx::path>>, "ctseg: conv_transpose: no kernel<...> option given");
        static_assert(diag::check<detail::fits<K, R>, diag::at<Ctx::path>, diag::input<in_shape>, K, diag::input_rank<R>>,
                      "ctseg: conv_transpose: the kernel has a different number of extents than the input has spatial dimensions (a 2D kernel on a 3D input?)");
        static_assert(diag::check<detail::fits<St, R> && detail::fits<Pa, R> && detail::fits<Up, R> && detail::fits<Op, R> && detail::fits<Di, R>,
                                  diag::at<Ctx::path>, diag::input<in_shape>, St, Di, Pa, Op, Up>,
                      "ctseg: conv_transpose: stride, dilation, padding or upsample_by has a different number of values than the input has spatial dimensions");
        static_assert(diag::check<one_padding, diag::at<Ctx::path>>,
                      "ctseg: conv_transpose: give only one of padding<...>, upsample_by<...> and match_skip");
        static_assert(diag::check<!to_skip || !std::is_void_v<target>, diag::at<Ctx::path>>,
                      "ctseg: conv_transpose: match_skip used outside a concat or add, so there is no skip whose shape to match");
        static_assert(diag::check<!shaped || positive, diag::at<Ctx::path>, K, St, Di>,
                      "ctseg: conv_transpose: kernel, stride and dilation values must be at least 1");
        static_assert(diag::check<!derived || !positive || chosen.ok, diag::at<Ctx::path>, diag::input<in_shape>, K, St, Di,
                                  diag::requested_extent<std::size_t(wanted[0] > 0 ? wanted[0] : 0)>, target, Up>,
                      "ctseg: conv_transpose: no padding and output padding (below the stride) make this kernel and stride produce the requested extent");
        static_assert(diag::check<derived || !shaped || !positive || chosen.ok, diag::at<Ctx::path>, diag::input<in_shape>, K, St, Di, Pa, Op>,
                      "ctseg: conv_transpose: output_padding must be smaller than the stride or the dilation, and the output extent positive");
        return true;
    }
    static_assert(diagnose());
    static constexpr bool ok = shaped && one_padding && positive && chosen.ok;
    static constexpr auto out_extent = [] {
        std::array<std::size_t, R> r{};
        for (std::size_t i = 0; i < R; ++i) {
            const long o = conv_transpose_extent(long(in_shape::spatial[i]), long(k[i]), long(s[i]), chosen.pad[i], long(d[i]), chosen.out_pad[i]);
            r[i] = derived && !chosen.ok && wanted[i] > 0 ? std::size_t(wanted[i]) : o > 0 ? std::size_t(o) : 1;
        }
        return r;
    }();
    using out = shape_from_array_t<Out, out_extent>;
    static constexpr long params = long(C) * long(Out) * detail::product(k) + (has_bias ? long(Out) : 0);
    static constexpr long flops = 2 * long(C) * detail::product(k) * long(Out) * long(in_shape::plane);
    static constexpr counts count{1, 1, has_bias ? 2u : 1u, 1};

    template <class G>
    static constexpr int emit(G& g, int in) {
        const auto ke = detail::widen(k), se = detail::widen(s), de = detail::widen(d);
        detail::ext_t pe{}, ope{};
        for (std::size_t i = 0; i < R; ++i) { pe[i] = chosen.pad[i]; ope[i] = chosen.out_pad[i]; }
        const int row = g.add_row(Ctx::path.view(), "");
        detail::describe(g.rows[std::size_t(row)].what, "conv_transpose", ke, se, de, int(R));
        const int v = g.add_value(int(Out), int(R), detail::extent_of<out>(), {}, {});
        const value_info& iv = g.values[std::size_t(in)];
        for (std::size_t i = 0; i < R; ++i) {
            const long eff = long(d[i] * (k[i] - 1) + 1);
            const long step = long(std::max<std::size_t>(s[i], 1));  // a zero stride is reported by diagnose()
            const long taps = (eff + step - 1) / step;
            g.values[std::size_t(v)].receptive[i] = iv.receptive[i] + double(taps - 1) * iv.jump[i];
            g.values[std::size_t(v)].jump[i] = iv.jump[i] / double(step);
        }
        op_info& o = g.add_op(op_kind::conv_transpose, in, v, row);
        o.in_channels = int(C);
        o.out_channels = int(Out);
        o.kernel = ke; o.stride = se; o.dilation = de; o.pad = pe; o.output_pad = ope;
        std::array<long, max_rank + 2> ws{long(C), long(Out)};
        for (std::size_t i = 0; i < R; ++i) ws[i + 2] = long(k[i]);
        o.weight = g.add_param(Ctx::key.view(), "weight", int(R) + 2, ws, true);
        if (has_bias) o.bias = g.add_param(Ctx::key.view(), "bias", 1, {long(Out)}, true);
        g.rows[std::size_t(row)].out = v;
        g.rows[std::size_t(row)].params = params;
        g.rows[std::size_t(row)].flops = flops;
        return v;
    }
};

// ---------------------------------------------------------------- max pooling
template <class... O, std::size_t C, std::size_t... S, class Ctx>
struct node<max_pool<O...>, shape<C, S...>, Ctx> {
    using in_shape = shape<C, S...>;
    static constexpr std::size_t R = sizeof...(S);
    using K = detail::kernel_opt<O...>;
    using St = detail::stride_opt<O...>;
    using Pa = detail::padding_opt<O...>;
    static constexpr bool shaped = !std::is_void_v<K> && detail::fits<K, R> && detail::fits<St, R> && detail::fits<Pa, R>;
    static constexpr auto k = [] { if constexpr (shaped) return K::template expand<R>(); else return detail::ones<R>(); }();
    static constexpr auto s = [] { if constexpr (shaped && !std::is_void_v<St>) return St::template expand<R>(); else return k; }();
    static constexpr auto p = [] { if constexpr (shaped && !std::is_void_v<Pa>) return Pa::template expand<R>(); else return std::array<std::size_t, R>{}; }();
    static constexpr bool tiles = [] {
        bool ok = true;
        for (std::size_t i = 0; i < R; ++i) ok &= window_tiles(long(in_shape::spatial[i]), long(k[i]), long(s[i]), long(p[i]));
        return ok;
    }();
    static constexpr bool positive = detail::all_positive(k) && detail::all_positive(s);
    static constexpr bool half_window_padding = [] {
        bool ok = true;
        for (std::size_t i = 0; i < R; ++i) ok &= 2 * p[i] <= k[i];
        return ok;
    }();
    static constexpr bool diagnose() {
        static_assert(diag::check<std::is_void_v<detail::bad_option<detail::pool_options, O...>>, diag::at<Ctx::path>,
                                  detail::bad_option<detail::pool_options, O...>>,
                      "ctseg: max_pool: an option is given twice or is not a max_pool option (kernel, stride, padding)");
        static_assert(diag::check<!shaped || half_window_padding, diag::at<Ctx::path>, K, Pa>,
                      "ctseg: max_pool: padding must be at most half the window (as in PyTorch), or whole windows see only padding");
        static_assert(diag::check<!std::is_void_v<K>, diag::at<Ctx::path>>, "ctseg: max_pool: no kernel<...> option given");
        static_assert(diag::check<detail::fits<K, R>, diag::at<Ctx::path>, diag::input<in_shape>, K, diag::input_rank<R>>,
                      "ctseg: max_pool: the window has a different number of extents than the input has spatial dimensions");
        static_assert(diag::check<detail::fits<St, R> && detail::fits<Pa, R>, diag::at<Ctx::path>, diag::input<in_shape>, St, Pa>,
                      "ctseg: max_pool: stride or padding has a different number of values than the input has spatial dimensions");
        static_assert(diag::check<!shaped || positive, diag::at<Ctx::path>, K, St>,
                      "ctseg: max_pool: window and stride values must be at least 1");
        static_assert(diag::check<!shaped || !positive || tiles, diag::at<Ctx::path>, diag::input<in_shape>, K, St>,
                      "ctseg: max_pool: the window does not tile the input (an odd extent?): pooling would drop the last rows; change the tile shape or use padding<...>");
        return true;
    }
    static_assert(diagnose());
    static constexpr bool ok = shaped && positive && tiles && half_window_padding;
    static constexpr auto out_extent = [] {
        std::array<std::size_t, R> r{};
        for (std::size_t i = 0; i < R; ++i)
            r[i] = std::size_t(std::max(1L, conv_extent(long(in_shape::spatial[i]), long(k[i]), long(s[i]), long(p[i]), 1)));
        return r;
    }();
    using out = shape_from_array_t<C, out_extent>;
    static constexpr long flops = long(out::size) * detail::product(k);
    static constexpr counts count{1, 1, 0, 1};

    template <class G>
    static constexpr int emit(G& g, int in) {
        const auto ke = detail::widen(k), se = detail::widen(s), pe = detail::widen(p);
        detail::ext_t ones{1, 1, 1};
        const int row = g.add_row(Ctx::path.view(), "");
        detail::describe(g.rows[std::size_t(row)].what, "max_pool", ke, se, ones, int(R));
        const int v = g.add_value(int(C), int(R), detail::extent_of<out>(), {}, {});
        detail::window_field(g, in, v, ke, se, ones, int(R));
        op_info& o = g.add_op(op_kind::max_pool, in, v, row);
        o.in_channels = o.out_channels = int(C);
        o.kernel = ke; o.stride = se; o.pad = pe; o.dilation = ones;
        g.rows[std::size_t(row)].out = v;
        g.rows[std::size_t(row)].flops = flops;
        return v;
    }
};

// ------------------------------------------------------- pointwise operations
namespace detail {
template <class In, class Ctx, op_kind Kind>
struct pointwise_base {
    using out = In;
    template <class G>
    static constexpr op_info& emit_op(G& g, int in, std::string_view what, int& v, long params, long flops) {
        const int row = g.add_row(Ctx::path.view(), what);
        v = same_field_value(g, in, int(In::channels), extent_of<In>());
        g.rows[std::size_t(row)].out = v;
        g.rows[std::size_t(row)].params = params;
        g.rows[std::size_t(row)].flops = flops;
        op_info& o = g.add_op(Kind, in, v, row);
        o.in_channels = o.out_channels = int(In::channels);
        return o;
    }
};
}  // namespace detail

template <class In, class Ctx>
struct node<relu, In, Ctx> : detail::pointwise_base<In, Ctx, op_kind::pointwise> {
    static constexpr counts count{1, 1, 0, 1};
    template <class G>
    static constexpr int emit(G& g, int in) {
        int v = -1;
        op_info& o = node::emit_op(g, in, "relu", v, 0, long(In::size));
        o.act = act_kind::relu;
        return v;
    }
};

template <std::size_t Num, std::size_t Den, class In, class Ctx>
struct node<leaky_relu<Num, Den>, In, Ctx> : detail::pointwise_base<In, Ctx, op_kind::pointwise> {
    static constexpr bool diagnose() {
        static_assert(diag::check<Den != 0, diag::at<Ctx::path>>, "ctseg: leaky_relu<Num, Den>: zero denominator");
        return true;
    }
    static_assert(diagnose());
    static constexpr counts count{1, 1, 0, 1};
    template <class G>
    static constexpr int emit(G& g, int in) {
        int v = -1;
        op_info& o = node::emit_op(g, in, "leaky_relu", v, 0, long(In::size));
        o.act = act_kind::leaky_relu;
        o.slope = double(Num) / double(Den == 0 ? 1 : Den);
        return v;
    }
};

template <class In, class Ctx>
struct node<prelu, In, Ctx> : detail::pointwise_base<In, Ctx, op_kind::pointwise> {
    static constexpr counts count{1, 1, 1, 1};
    template <class G>
    static constexpr int emit(G& g, int in) {
        int v = -1;
        op_info& o = node::emit_op(g, in, "prelu", v, long(In::channels), long(In::size));
        o.act = act_kind::prelu;
        o.prelu = g.add_param(Ctx::key.view(), "weight", 1, {long(In::channels)}, true);
        return v;
    }
};

template <class... O, class In, class Ctx>
struct node<batch_norm<O...>, In, Ctx> : detail::pointwise_base<In, Ctx, op_kind::batch_norm> {
    static constexpr bool diagnose() {
        static_assert(diag::check<std::is_void_v<detail::bad_option<detail::batch_norm_options, O...>>, diag::at<Ctx::path>,
                                  detail::bad_option<detail::batch_norm_options, O...>>,
                      "ctseg: batch_norm: an option is given twice or is not a batch_norm option (eps<Num, Den>)");
        return true;
    }
    static_assert(diagnose());
    static constexpr counts count{1, 1, 5, 1};
    template <class G>
    static constexpr int emit(G& g, int in) {
        int v = -1;
        op_info& o = node::emit_op(g, in, "batch_norm", v, 2 * long(In::channels), 2 * long(In::size));
        o.eps = detail::eps_opt<O...>::value;
        const std::array<long, max_rank + 2> cs{long(In::channels)};
        o.gamma = g.add_param(Ctx::key.view(), "weight", 1, cs, true);
        o.beta = g.add_param(Ctx::key.view(), "bias", 1, cs, true);
        o.mean = g.add_param(Ctx::key.view(), "running_mean", 1, cs, false);
        o.var = g.add_param(Ctx::key.view(), "running_var", 1, cs, false);
        g.add_param(Ctx::key.view(), "num_batches_tracked", 0, {}, false, true);
        return v;
    }
};

template <class... O, class In, class Ctx>
struct node<instance_norm<O...>, In, Ctx> : detail::pointwise_base<In, Ctx, op_kind::instance_norm> {
    static constexpr bool diagnose() {
        static_assert(diag::check<std::is_void_v<detail::bad_option<detail::instance_norm_options, O...>>, diag::at<Ctx::path>,
                                  detail::bad_option<detail::instance_norm_options, O...>>,
                      "ctseg: instance_norm: an option is given twice or is not an instance_norm option (eps<Num, Den>, affine)");
        return true;
    }
    static_assert(diagnose());
    static constexpr bool has_affine = ctseg::detail::has_option<affine, O...>;
    static constexpr counts count{1, 1, has_affine ? 2u : 0u, 1};
    template <class G>
    static constexpr int emit(G& g, int in) {
        int v = -1;
        op_info& o = node::emit_op(g, in, "instance_norm", v, has_affine ? 2 * long(In::channels) : 0, 4 * long(In::size));
        o.eps = detail::eps_opt<O...>::value;
        if (has_affine) {
            const std::array<long, max_rank + 2> cs{long(In::channels)};
            o.gamma = g.add_param(Ctx::key.view(), "weight", 1, cs, true);
            o.beta = g.add_param(Ctx::key.view(), "bias", 1, cs, true);
        }
        return v;
    }
};

template <class In, class Ctx>
struct node<softmax, In, Ctx> : detail::pointwise_base<In, Ctx, op_kind::softmax> {
    static constexpr counts count{1, 1, 0, 1};
    template <class G>
    static constexpr int emit(G& g, int in) {
        int v = -1;
        node::emit_op(g, in, "softmax", v, 0, 3 * long(In::size));
        return v;
    }
};

// argmax writes the class index (as a value of the scalar type) in one channel.
template <std::size_t C, std::size_t... S, class Ctx>
struct node<argmax, shape<C, S...>, Ctx> {
    using out = shape<1, S...>;
    static constexpr counts count{1, 1, 0, 1};
    template <class G>
    static constexpr int emit(G& g, int in) {
        const int row = g.add_row(Ctx::path.view(), "argmax");
        const int v = detail::same_field_value(g, in, 1, detail::extent_of<out>());
        g.rows[std::size_t(row)].out = v;
        g.rows[std::size_t(row)].flops = long(shape<C, S...>::size);
        op_info& o = g.add_op(op_kind::argmax, in, v, row);
        o.in_channels = int(C);
        o.out_channels = 1;
        return v;
    }
};

template <class In, class Ctx>
struct node<identity, In, Ctx> {
    using out = In;
    static constexpr counts count{};
    template <class G> static constexpr int emit(G&, int in) { return in; }
};

template <std::size_t K, std::size_t C, std::size_t... S, class Ctx>
struct node<repeat_channels<K>, shape<C, S...>, Ctx> {
    static constexpr bool diagnose() {
        static_assert(diag::check<K != 0, diag::at<Ctx::path>>, "ctseg: repeat_channels<0>");
        return true;
    }
    static_assert(diagnose());
    static constexpr bool ok = K != 0;
    using out = shape<C * K, S...>;
    static constexpr counts count{1, 1, 0, 1};
    template <class G>
    static constexpr int emit(G& g, int in) {
        const int row = g.add_row(Ctx::path.view(), "repeat_channels");
        const int v = detail::same_field_value(g, in, int(C * K), detail::extent_of<out>());
        g.rows[std::size_t(row)].out = v;
        op_info& o = g.add_op(op_kind::tile, in, v, row);
        o.in_channels = int(C);
        o.out_channels = int(C * K);
        o.tile_offset = 0;
        o.tile_period = int(C);
        return v;
    }
};

template <std::size_t B, std::size_t E, std::size_t C, std::size_t... S, class Ctx>
struct node<slice_channels<B, E>, shape<C, S...>, Ctx> {
    static constexpr bool diagnose() {
        static_assert(diag::check<(B < E && E <= C), diag::at<Ctx::path>, diag::input<shape<C, S...>>, diag::channel_range<B, E>>,
                      "ctseg: slice_channels<Begin, End>: the range is empty or beyond the input's channels");
        return true;
    }
    static_assert(diagnose());
    static constexpr bool ok = B < E && E <= C;
    static constexpr std::size_t width = B < E ? E - B : 1;
    using out = shape<width, S...>;
    static constexpr counts count{1, 1, 0, 1};
    template <class G>
    static constexpr int emit(G& g, int in) {
        const int row = g.add_row(Ctx::path.view(), "slice_channels");
        const int v = detail::same_field_value(g, in, int(width), detail::extent_of<out>());
        g.rows[std::size_t(row)].out = v;
        op_info& o = g.add_op(op_kind::tile, in, v, row);
        o.in_channels = int(C);
        o.out_channels = int(width);
        o.tile_offset = int(B);
        o.tile_period = int(width);
        return v;
    }
};

// ------------------------------------------------------------------- topology
template <fixed_string Name, class Layer, class In, class Ctx>
struct node<named<Name, Layer>, In, Ctx> : node<Layer, In, named_ctx<Ctx, Name>> {};

namespace detail {
template <fixed_string Name, std::size_t Index>
constexpr auto indexed_name() {
    constexpr fixed_string<1> dot(".");
    return Name + dot + to_fixed_string<Index>();
}
}  // namespace detail
template <fixed_string Name, std::size_t Index, class Layer, class In, class Ctx>
struct node<indexed<Name, Index, Layer>, In, Ctx> : node<Layer, In, named_ctx<Ctx, detail::indexed_name<Name, Index>()>> {};

namespace detail {
// Whether a node and everything inside it passed its checks (nodes that check
// nothing have no `ok`). A concat or add skips its own checks when a branch
// failed: that branch's shape is a stand-in, and comparing it would only add
// errors that follow from the first one.
template <class N>
constexpr bool node_ok() {
    if constexpr (requires { N::ok; }) return N::ok;
    else return true;
}

// Layers applied in order; Indexed names each child by its position (nn.Sequential).
template <bool Indexed, class In, class Ctx, std::size_t I, class... L>
struct chain {
    static constexpr bool ok = true;
    using out = In;
    static constexpr counts count{};
    template <class G> static constexpr int emit(G&, int in) { return in; }
};
template <bool Indexed, class In, class Ctx, std::size_t I, class L0, class... Ls>
struct chain<Indexed, In, Ctx, I, L0, Ls...> {
    using child_ctx = std::conditional_t<Indexed, named_ctx<Ctx, to_fixed_string<I>()>,
                                         position_ctx<Ctx, fixed_string("seq[") + to_fixed_string<I>() + fixed_string("]"), I>>;
    using head = node<L0, In, child_ctx>;
    using tail = chain<Indexed, typename head::out, Ctx, I + 1, Ls...>;
    using out = typename tail::out;
    static constexpr counts count = head::count + tail::count;
    static constexpr bool ok = node_ok<head>() && tail::ok;
    template <class G>
    static constexpr int emit(G& g, int in) { return tail::emit(g, head::emit(g, in)); }
};

template <class Ctx, fixed_string Kind, std::size_t I>
using branch_ctx = position_ctx<Ctx, Kind + fixed_string("[") + to_fixed_string<I>() + fixed_string("]"), I>;

template <class... Ts>
struct type_list {};
}  // namespace detail

template <class... L, class In, class Ctx>
struct node<seq<L...>, In, Ctx> : detail::chain<false, In, Ctx, 0, L...> {};
template <class... L, class In, class Ctx>
struct node<sequential<L...>, In, Ctx> : detail::chain<true, In, Ctx, 0, L...> {};

namespace detail {
// Inside a concat or add, `match_skip` aims at the extent of the combinator's input.
template <class B, class In, class Ctx, fixed_string Kind, std::size_t I>
using branch_node = node<B, In, target_ctx<branch_ctx<Ctx, Kind, I>, In>>;

template <class Branches, class In, class Ctx, fixed_string Kind, class Seq>
struct branches_of;
template <class... B, class In, class Ctx, fixed_string Kind, std::size_t... I>
struct branches_of<type_list<B...>, In, Ctx, Kind, std::index_sequence<I...>> {
    using nodes = type_list<branch_node<B, In, Ctx, Kind, I>...>;
    using outs = type_list<typename branch_node<B, In, Ctx, Kind, I>::out...>;
    static constexpr counts count = (counts{} + ... + branch_node<B, In, Ctx, Kind, I>::count);
    static constexpr std::size_t n = sizeof...(B);
    static constexpr bool ok = (node_ok<branch_node<B, In, Ctx, Kind, I>>() && ...);
    static constexpr std::array<std::size_t, n> channels{branch_node<B, In, Ctx, Kind, I>::out::channels...};
    static constexpr std::array<std::size_t, n> ranks{branch_node<B, In, Ctx, Kind, I>::out::rank...};
    template <class G>
    static constexpr std::array<int, n> emit(G& g, int in) {
        std::array<int, n> v{};
        ((v[I] = branch_node<B, In, Ctx, Kind, I>::emit(g, in)), ...);
        return v;
    }
};

template <class... O>
struct split_policy { using branches = type_list<O...>; static constexpr bool crop = false; };
template <class... O>
struct split_policy<crop_center, O...> { using branches = type_list<O...>; static constexpr bool crop = true; };

template <class Shape, std::size_t R>
constexpr std::array<std::size_t, R> spatial_or_zero() {
    std::array<std::size_t, R> r{};
    if constexpr (Shape::rank == R)
        for (std::size_t i = 0; i < R; ++i) r[i] = Shape::spatial[i];
    return r;
}
}  // namespace detail

// Concatenation along channels.
template <class... O, std::size_t C, std::size_t... S, class Ctx>
struct node<concat<O...>, shape<C, S...>, Ctx> {
    using in_shape = shape<C, S...>;
    static constexpr std::size_t R = sizeof...(S);
    using policy = detail::split_policy<O...>;
    template <class... B>
    static auto make(detail::type_list<B...>) -> detail::branches_of<detail::type_list<B...>, in_shape, Ctx, fixed_string("concat"),
                                                                      std::index_sequence_for<B...>>;
    using br = decltype(make(typename policy::branches{}));

    template <class... Outs>
    struct sizes {
        static constexpr bool same_rank = ((Outs::rank == R) && ...);
        static constexpr std::array<std::size_t, R> smallest = [] {
            std::array<std::size_t, R> m{S...};
            if constexpr (same_rank) {
                bool first = true;
                (([&] {
                     for (std::size_t i = 0; i < R; ++i)
                         m[i] = first ? Outs::spatial[i] : std::min(m[i], std::size_t(Outs::spatial[i]));
                     first = false;
                 }()), ...);
            }
            return m;
        }();
        static constexpr bool equal = same_rank && ((detail::spatial_or_zero<Outs, R>() == smallest) && ...);
        static constexpr std::size_t channels = (std::size_t{0} + ... + Outs::channels);
    };
    template <class... Outs>
    static auto sizes_of(detail::type_list<Outs...>) -> sizes<Outs...>;
    using sz = decltype(sizes_of(typename br::outs{}));

    template <class... Outs, std::size_t... I>
    static constexpr bool report(detail::type_list<Outs...>, std::index_sequence<I...>) {
        static_assert(diag::check<(br::n >= 1), diag::at<Ctx::path>>, "ctseg: concat<> needs at least one branch");
        static_assert(diag::check<!br::ok || sz::same_rank, diag::at<Ctx::path>, diag::branch<I, Outs>...>,
                      "ctseg: concat: branches have different spatial ranks");
        static_assert(diag::check<!br::ok || !sz::same_rank || policy::crop || sz::equal, diag::at<Ctx::path>, diag::branch<I, Outs>...>,
                      "ctseg: concat: branches differ in spatial size (encoder and decoder features of a skip connection?); "
                      "use concat<crop_center, ...> / skip_concat<Body, crop_center>, padded convolutions, or another tile shape");
        return true;
    }
    static constexpr bool checked = report(typename br::outs{}, std::make_index_sequence<br::n>{});
    static constexpr bool ok = br::ok && br::n >= 1 && sz::same_rank && (policy::crop || sz::equal);

    // Naming `checked` here makes every use of the output shape run the checks.
    using out = std::conditional_t<checked, shape_from_array_t<sz::channels, sz::smallest>, void>;
    static constexpr counts count = br::count + counts{br::n, 1 + br::n, 0, 1};

    template <class G>
    static constexpr int emit(G& g, int in) {
        const auto v = br::emit(g, in);
        const int row = g.add_row(Ctx::path.view(), policy::crop ? "concat (crop centre)" : "concat");
        const int cat = g.add_value(int(sz::channels), int(R), detail::extent_of<out>(), {}, {});
        for (std::size_t i = 0; i < R; ++i) {
            double r = 0, j = 0;
            for (int b : v) {
                r = std::max(r, g.values[std::size_t(b)].receptive[i]);
                j = std::max(j, g.values[std::size_t(b)].jump[i]);
            }
            g.values[std::size_t(cat)].receptive[i] = r;
            g.values[std::size_t(cat)].jump[i] = j;
        }
        g.rows[std::size_t(row)].out = cat;
        int offset = 0;
        for (int b : v) {
            const value_info& bv = g.values[std::size_t(b)];
            const int slice = g.add_value(bv.channels, int(R), detail::extent_of<out>(), {}, {});
            g.values[std::size_t(slice)].buffer = cat;
            g.values[std::size_t(slice)].channel_offset = offset;
            op_info& o = g.add_op(op_kind::copy, b, slice, row);
            o.in_channels = o.out_channels = bv.channels;
            offset += bv.channels;
        }
        return cat;
    }
};

// Addition of branches (residual connections, FCN score fusion).
template <class... B, std::size_t C, std::size_t... S, class Ctx>
struct node<add<B...>, shape<C, S...>, Ctx> {
    using in_shape = shape<C, S...>;
    using br = detail::branches_of<detail::type_list<B...>, in_shape, Ctx, fixed_string("add"), std::index_sequence_for<B...>>;

    template <class First, class... Outs, std::size_t... I>
    static constexpr bool report(detail::type_list<First, Outs...>, std::index_sequence<I...>) {
        constexpr bool channels_match = ((Outs::channels == First::channels) && ...);
        constexpr bool spatial_match = ((Outs::rank == First::rank && detail::spatial_or_zero<Outs, First::rank>() == First::spatial) && ...);
        static_assert(diag::check<(br::n >= 2), diag::at<Ctx::path>>, "ctseg: add<> needs at least two branches");
        static_assert(diag::check<!br::ok || channels_match, diag::at<Ctx::path>, diag::branch<0, First>, diag::branch<I + 1, Outs>...>,
                      "ctseg: add (residual or fusion): branches differ in channels; a narrower shortcut can be widened with "
                      "residual<Body, repeat_channels<K>> or a 1x1 conv");
        static_assert(diag::check<!br::ok || spatial_match, diag::at<Ctx::path>, diag::branch<0, First>, diag::branch<I + 1, Outs>...>,
                      "ctseg: add (residual or fusion): branches differ in spatial size; check padding, strides and "
                      "transposed-convolution padding (upsample_by / match_skip)");
        return true;
    }
    template <class First, class... Outs>
    static auto first_of(detail::type_list<First, Outs...>) -> First;
    template <class First, class... Outs>
    static constexpr bool matches(detail::type_list<First, Outs...>) {
        return ((Outs::channels == First::channels && Outs::rank == First::rank &&
                 detail::spatial_or_zero<Outs, First::rank>() == First::spatial) && ...);
    }
    static constexpr bool ok = br::ok && br::n >= 2 && matches(typename br::outs{});
    static constexpr bool checked = report(typename br::outs{}, std::make_index_sequence<br::n - 1>{});
    using out = std::conditional_t<checked, decltype(first_of(typename br::outs{})), void>;
    static constexpr counts count = br::count + counts{br::n - 1, br::n - 1, 0, 1};

    template <class G>
    static constexpr int emit(G& g, int in) {
        const auto v = br::emit(g, in);
        const int row = g.add_row(Ctx::path.view(), "add");
        int acc = v[0];
        for (std::size_t b = 1; b < v.size(); ++b) {
            const value_info& a = g.values[std::size_t(acc)];
            const int sum = g.add_value(a.channels, a.rank, a.extent, a.receptive, a.jump);
            for (std::size_t i = 0; i < max_rank; ++i) {
                g.values[std::size_t(sum)].receptive[i] = std::max(a.receptive[i], g.values[std::size_t(v[b])].receptive[i]);
            }
            op_info& o = g.add_op(op_kind::pointwise, acc, sum, row);
            o.in_channels = o.out_channels = a.channels;
            o.residual = v[b];
            o.residual_period = g.values[std::size_t(v[b])].channels;
            acc = sum;
        }
        g.rows[std::size_t(row)].out = acc;
        g.rows[std::size_t(row)].flops = long(out::size) * long(br::n - 1);
        return acc;
    }
};

}  // namespace ctseg::plan
