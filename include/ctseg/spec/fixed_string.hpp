// Compile-time strings usable as template arguments: layer names (PyTorch
// state_dict keys) and layer paths in diagnostics.
#pragma once
#include <cstddef>
#include <string_view>

namespace ctseg {

template <std::size_t N>
struct fixed_string {
    char chars[N + 1]{};

    constexpr fixed_string() = default;
    constexpr fixed_string(const char (&text)[N + 1]) {
        for (std::size_t i = 0; i <= N; ++i) chars[i] = text[i];
    }
    static constexpr std::size_t size() { return N; }
    constexpr std::string_view view() const { return {chars, N}; }
    constexpr bool empty() const { return N == 0; }
};
template <std::size_t M>
fixed_string(const char (&)[M]) -> fixed_string<M - 1>;

template <std::size_t A, std::size_t B>
constexpr fixed_string<A + B> operator+(const fixed_string<A>& a, const fixed_string<B>& b) {
    fixed_string<A + B> r;
    for (std::size_t i = 0; i < A; ++i) r.chars[i] = a.chars[i];
    for (std::size_t i = 0; i < B; ++i) r.chars[A + i] = b.chars[i];
    return r;
}

namespace detail {
constexpr std::size_t decimal_digits(std::size_t v) {
    std::size_t n = 1;
    while (v >= 10) { v /= 10; ++n; }
    return n;
}
}  // namespace detail

// The decimal spelling of V, e.g. to_fixed_string<12>() == "12".
template <std::size_t V>
constexpr auto to_fixed_string() {
    fixed_string<detail::decimal_digits(V)> r;
    std::size_t v = V;
    for (std::size_t i = r.size(); i-- > 0;) { r.chars[i] = char('0' + v % 10); v /= 10; }
    return r;
}

// "A.B", leaving out the dot where a side is empty.
template <fixed_string A, fixed_string B>
constexpr auto join_dotted() {
    if constexpr (A.empty()) return B;
    else if constexpr (B.empty()) return A;
    else return A + fixed_string(".") + B;
}

}  // namespace ctseg
