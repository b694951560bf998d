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
// equal to the extent of the branch it is concatenated with or added to.
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
}  // namespace detail

}  // namespace ctseg
