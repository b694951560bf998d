// The vocabulary of compile-time diagnostics. A failed check reads
//   static assertion failed: ctseg: <what is wrong; what to do>
//   note: 'check<false, at<"net/seq[0]/down.0/conv1">, input<shape<1, 7, 7>>, ...>' evaluates to false
// so the message says what went wrong and the facts name the layer path and the numbers.
#pragma once
#include <cstddef>

#include "ctseg/spec/fixed_string.hpp"

namespace ctseg::diag {

// Always equal to Ok; the Facts only travel into the compiler's message.
template <bool Ok, class... Facts>
inline constexpr bool check = Ok;

template <fixed_string Path> struct at {};                 // the layer's path in the topology
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
