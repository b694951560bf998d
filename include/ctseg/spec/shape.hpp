// Static tensor shapes: channels followed by the spatial extents. The batch
// size is the only runtime dimension.
#pragma once
#include <array>
#include <cstddef>
#include <utility>

namespace ctseg {

template <std::size_t Channels, std::size_t... Spatial>
struct shape {
    static constexpr std::size_t channels = Channels;
    static constexpr std::size_t rank = sizeof...(Spatial);
    static constexpr std::array<std::size_t, rank> spatial{Spatial...};
    static constexpr std::size_t plane = (std::size_t{1} * ... * Spatial);
    static constexpr std::size_t size = Channels * plane;
};

// Spatial extents alone, as diagnostics print them.
template <std::size_t... Extents>
struct extents {};

namespace detail {
template <class T>
struct is_shape_t { static constexpr bool value = false; };
template <std::size_t C, std::size_t... S>
struct is_shape_t<shape<C, S...>> { static constexpr bool value = true; };
}  // namespace detail

template <class T>
concept static_shape = detail::is_shape_t<T>::value;

// shape<C, a[0], ..., a[R-1]> from a constexpr std::array.
template <std::size_t C, auto Array>
struct shape_from_array {
    template <std::size_t... I>
    static auto make(std::index_sequence<I...>) -> shape<C, Array[I]...>;
    using type = decltype(make(std::make_index_sequence<Array.size()>{}));
};
template <std::size_t C, auto Array>
using shape_from_array_t = typename shape_from_array<C, Array>::type;

}  // namespace ctseg
