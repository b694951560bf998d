// Layer options as types. A single value applies to every spatial dimension
// (kernel<3> is 3x3 in 2D and 3x3x3 in 3D); several values give one per
// dimension, outermost first (kernel<1, 3, 3> is 1x3x3 on a D,H,W volume).
#pragma once
#include <array>
#include <cstddef>
#include <type_traits>

namespace ctseg {

namespace detail {
template <std::size_t... V>
struct per_dim {
    static constexpr std::size_t count = sizeof...(V);
    static constexpr std::array<std::size_t, count> values{V...};
    // Whether the option can be spelled out for a tensor of rank R.
    static constexpr bool fits_rank(std::size_t r) { return count == 1 || count == r; }
    template <std::size_t R>
    static constexpr std::array<std::size_t, R> expand() {
        std::array<std::size_t, R> r{};
        for (std::size_t i = 0; i < R; ++i) r[i] = count == 1 ? values[0] : values[i < count ? i : 0];
        return r;
    }
};
}  // namespace detail

template <std::size_t... K> struct kernel : detail::per_dim<K...> { static_assert(sizeof...(K) > 0, "ctseg: kernel<> needs at least one extent"); };
template <std::size_t... S> struct stride : detail::per_dim<S...> { static_assert(sizeof...(S) > 0, "ctseg: stride<> needs at least one value"); };
template <std::size_t... D> struct dilation : detail::per_dim<D...> { static_assert(sizeof...(D) > 0, "ctseg: dilation<> needs at least one value"); };
template <std::size_t... P> struct padding : detail::per_dim<P...> { static_assert(sizeof...(P) > 0, "ctseg: padding<> needs at least one value"); };
template <std::size_t... P> struct output_padding : detail::per_dim<P...> { static_assert(sizeof...(P) > 0, "ctseg: output_padding<> needs at least one value"); };

// Padding policies: `valid` pads nothing; `same` pads (dilation*(kernel-1))/2 per
// side, which keeps the extent for odd kernels at stride 1.
struct valid {};
struct same {};
// Convolution without a bias term.
struct no_bias {};

// Transposed-convolution padding derived at compile time from the result wanted:
// `upsample_by<2>` makes the output exactly twice the input; `match_skip` makes it
// equal to the extent of the input of the nearest enclosing concat or add (the
// features a skip connection carries).
template <std::size_t... F> struct upsample_by : detail::per_dim<F...> { static_assert(sizeof...(F) > 0, "ctseg: upsample_by<> needs a factor"); };
struct match_skip {};

// Concatenation policy: crop every branch to the smallest spatial extent,
// centred, as the U-Net paper does with its encoder features.
struct crop_center {};

// Normalisation options. Epsilon is Num / Den.
template <std::size_t Num, std::size_t Den> struct eps { static constexpr double value = double(Num) / double(Den); };
struct affine {};

namespace detail {
// The first option of a given template among Opts, or Default.
template <template <std::size_t...> class Tpl, class Default, class... Opts>
struct find_values { using type = Default; };
template <template <std::size_t...> class Tpl, class Default, std::size_t... V, class... Rest>
struct find_values<Tpl, Default, Tpl<V...>, Rest...> { using type = Tpl<V...>; };
template <template <std::size_t...> class Tpl, class Default, class First, class... Rest>
struct find_values<Tpl, Default, First, Rest...> : find_values<Tpl, Default, Rest...> {};

template <class T, class... Opts>
inline constexpr bool has_option = (std::is_same_v<T, Opts> || ...);

template <template <std::size_t...> class Tpl, class T>
inline constexpr bool is_values_of = false;
template <template <std::size_t...> class Tpl, std::size_t... V>
inline constexpr bool is_values_of<Tpl, Tpl<V...>> = true;

template <template <std::size_t, std::size_t> class Tpl, class Default, class... Opts>
struct find_pair { using type = Default; };
template <template <std::size_t, std::size_t> class Tpl, class Default, std::size_t A, std::size_t B, class... Rest>
struct find_pair<Tpl, Default, Tpl<A, B>, Rest...> { using type = Tpl<A, B>; };
template <template <std::size_t, std::size_t> class Tpl, class Default, class First, class... Rest>
struct find_pair<Tpl, Default, First, Rest...> : find_pair<Tpl, Default, Rest...> {};

// Which option an option type is; layers list the kinds they understand.
enum class option_kind : unsigned {
    kernel, stride, dilation, padding, output_padding, upsample_by, same, valid, no_bias, match_skip, eps, affine, unknown
};
template <class T> inline constexpr option_kind kind_of = option_kind::unknown;
template <std::size_t... V> inline constexpr option_kind kind_of<ctseg::kernel<V...>> = option_kind::kernel;
template <std::size_t... V> inline constexpr option_kind kind_of<ctseg::stride<V...>> = option_kind::stride;
template <std::size_t... V> inline constexpr option_kind kind_of<ctseg::dilation<V...>> = option_kind::dilation;
template <std::size_t... V> inline constexpr option_kind kind_of<ctseg::padding<V...>> = option_kind::padding;
template <std::size_t... V> inline constexpr option_kind kind_of<ctseg::output_padding<V...>> = option_kind::output_padding;
template <std::size_t... V> inline constexpr option_kind kind_of<ctseg::upsample_by<V...>> = option_kind::upsample_by;
template <> inline constexpr option_kind kind_of<same> = option_kind::same;
template <> inline constexpr option_kind kind_of<valid> = option_kind::valid;
template <> inline constexpr option_kind kind_of<no_bias> = option_kind::no_bias;
template <> inline constexpr option_kind kind_of<match_skip> = option_kind::match_skip;
template <std::size_t N, std::size_t D> inline constexpr option_kind kind_of<ctseg::eps<N, D>> = option_kind::eps;
template <> inline constexpr option_kind kind_of<affine> = option_kind::affine;

constexpr unsigned option_bit(option_kind k) { return 1u << unsigned(k); }

// Index of the first option that the layer does not understand or that repeats
// an earlier one, or -1.
template <unsigned Allowed, class... Opts>
constexpr int first_bad_option() {
    constexpr option_kind kinds[] = {kind_of<Opts>..., option_kind::unknown};
    unsigned seen = 0;
    for (std::size_t i = 0; i < sizeof...(Opts); ++i) {
        const unsigned bit = option_bit(kinds[i]);
        if ((Allowed & bit) == 0 || (seen & bit) != 0) return int(i);
        seen |= bit;
    }
    return -1;
}
template <int I, class... Opts>
struct option_at { using type = void; };
template <int I, class First, class... Rest>
struct option_at<I, First, Rest...> { using type = typename option_at<I - 1, Rest...>::type; };
template <class First, class... Rest>
struct option_at<0, First, Rest...> { using type = First; };
}  // namespace detail

}  // namespace ctseg
