// The vocabulary of compile-time diagnostics. A failed check reads
//   static assertion failed: ctseg: <what is wrong; what to do>
//   note: 'check<false, at<"net/seq[0]/down.0/conv1">, input<shape<1, 7, 7>>, ...>' evaluates to false
// so the message says what went wrong and the facts name the layer path and the numbers.
#pragma once
#include <cstddef>
#include <utility>

#include "ctseg/spec/fixed_string.hpp"

namespace ctseg::diag {

// Always equal to Ok; the Facts only travel into the compiler's message.
template <bool Ok, class... Facts>
inline constexpr bool check = Ok;

// The layer's path in the topology. clang prints a class-type template argument
// as its bytes, cut after ten, so there the path is spelled out as characters:
// path<'n', 'e', 't', '/', ...>.
#if defined(__clang__)
template <char... Chars> struct path {};
namespace detail {
template <fixed_string Path, class = std::make_index_sequence<Path.size()>>
struct spell_path;
template <fixed_string Path, std::size_t... I>
struct spell_path<Path, std::index_sequence<I...>> { using type = path<Path.chars[I]...>; };
}  // namespace detail
template <fixed_string Path> using at = typename detail::spell_path<Path>::type;
#else
template <fixed_string Path> struct at {};
#endif
template <class Shape> struct input {};                    // the layer's input shape (channels, spatial...)
template <std::size_t I, class Shape> struct branch {};    // the output shape of branch I
template <std::size_t... V> struct kernel_extent {};
template <std::size_t... V> struct stride_of {};
template <std::size_t... V> struct dilation_of {};
template <std::size_t... V> struct padding_of {};
template <std::size_t... V> struct requested_extent {};
template <std::size_t R> struct input_rank {};
template <std::size_t N> struct option_values {};
template <std::size_t A, std::size_t B> struct channel_range {};

template <class T> inline constexpr bool always_false = false;

}  // namespace ctseg::diag
