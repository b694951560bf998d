// bind<Net, shape<C, extents...>>: a network bound to an input tile. Everything
// here is a compile-time constant: shapes, parameters, FLOPs, receptive field,
// the fused operation list and the memory plan.
#pragma once
#include <array>
#include <cstddef>
#include <type_traits>

#include "ctseg/plan/diagnostics.hpp"
#include "ctseg/plan/graph.hpp"
#include "ctseg/plan/nodes.hpp"
#include "ctseg/plan/passes.hpp"
#include "ctseg/spec/shape.hpp"

namespace ctseg {

namespace plan::detail {
template <class Net, class In>
using root_node = node<Net, In, ctx<fixed_string("net"), fixed_string(""), void>>;

// An input shape bind cannot use is reported once; the plan then goes on with a
// stand-in (the identity on shape<1, 1>) so that no error about the network follows.
template <class In>
constexpr bool rank_supported() {
    if constexpr (static_shape<In>) return In::rank >= 1 && In::rank <= max_rank;
    else return true;
}
template <class In>
constexpr bool nonempty() {
    if constexpr (static_shape<In>) return In::channels > 0 && In::plane > 0;
    else return true;
}
template <class In>
inline constexpr bool usable_input = static_shape<In> && rank_supported<In>() && nonempty<In>();
template <class Net, class In>
using net_or_stand_in = std::conditional_t<usable_input<In>, Net, identity>;
template <class In>
using input_or_stand_in = std::conditional_t<usable_input<In>, In, shape<1, 1>>;

// Index of the first parameter whose key an earlier one already has, or -1.
template <class G>
constexpr int first_repeated_key(const G& g) {
    for (std::size_t i = 0; i < g.n_params; ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (g.params[i].name.view() == g.params[j].name.view()) return int(i);
    return -1;
}

template <class Net, class In>
constexpr auto lower() {
    using root = root_node<Net, In>;
    constexpr counts room = root::count + counts{1, 2, 0, 0};  // the input, and a possible final copy
    graph<room> g;
    std::array<double, max_rank> field{}, jump{};
    for (std::size_t i = 0; i < In::rank && i < max_rank; ++i) { field[i] = 1; jump[i] = 1; }
    g.input = g.add_value(int(In::channels), int(In::rank), extent_of<In>(), field, jump);
    g.output = root::emit(g, g.input);
    return g;
}
}  // namespace plan::detail

template <class Net, class InputShape, plan::plan_options Options = plan::plan_options{}>
struct bind {
    // In a function, as in plan/nodes.hpp: a failed check leaves bind itself usable.
    static constexpr bool diagnose() {
        static_assert(static_shape<InputShape>,
                      "ctseg: bind<Net, Shape>: the input must be written ctseg::shape<channels, extents...>, e.g. shape<1, 572, 572>");
        static_assert(diag::check<plan::detail::rank_supported<InputShape>(), InputShape>,
                      "ctseg: bind<Net, Shape>: ctseg runs 1D, 2D and 3D inputs (1 to 3 spatial extents)");
        static_assert(diag::check<plan::detail::nonempty<InputShape>(), InputShape>,
                      "ctseg: bind<Net, Shape>: zero channels or a zero extent in the input shape");
        return true;
    }
    static_assert(diagnose());

    using network = Net;
    using input_shape = InputShape;
    using root = plan::detail::root_node<plan::detail::net_or_stand_in<Net, InputShape>, plan::detail::input_or_stand_in<InputShape>>;
    using output_shape = typename root::out;
    static constexpr std::size_t rank = plan::detail::input_or_stand_in<InputShape>::rank;
    static constexpr plan::plan_options options = Options;

    // The network as emitted, before any pass: every layer, parameter and summary row.
    static constexpr auto lowered = plan::detail::lower<plan::detail::net_or_stand_in<Net, InputShape>, plan::detail::input_or_stand_in<InputShape>>();
    // Every state_dict key must be unique: two unnamed layers in one scope would both be "weight".
    static constexpr int repeated_key = plan::detail::first_repeated_key(lowered);
    static constexpr std::size_t repeated_length = repeated_key < 0 ? 0 : lowered.params[std::size_t(repeated_key)].name.length;
    static constexpr fixed_string<repeated_length> repeated_name = [] {
        fixed_string<repeated_length> r;
        for (std::size_t i = 0; i < repeated_length; ++i) r.chars[i] = lowered.params[std::size_t(repeated_key)].name.chars[i];
        return r;
    }();
    static constexpr bool keys_unique() {
        static_assert(diag::check<repeated_key < 0, diag::at<repeated_name>>,
                      "ctseg: two parameters have the same state_dict key (shown as the path in the note); name the layers "
                      "with named<\"...\", L>, indexed<\"...\", I, L> or put them in a sequential<...>");
        return true;
    }
    static_assert(keys_unique());
    // After fusion and in-place concatenation.
    static constexpr auto graph = plan::optimise(lowered, Options);
    static constexpr auto memory = plan::detail::plan_memory(graph);

    static constexpr long parameter_count = [] {
        long n = 0;
        for (std::size_t i = 0; i < lowered.n_params; ++i)
            if (lowered.params[i].trainable && !lowered.params[i].counter) n += lowered.params[i].count;
        return n;
    }();
    // Floating-point operations per batch element: 2 per multiply-add of the
    // (transposed) convolutions; for the other layers, per output element, one per
    // activation, add or window element (pooling), 2 per batch norm, 3 per softmax
    // and 4 per instance norm.
    static constexpr long flops = [] {
        long n = 0;
        for (std::size_t i = 0; i < lowered.n_rows; ++i) n += lowered.rows[i].flops;
        return n;
    }();
    // Receptive field of one output element, in input elements, per dimension.
    static constexpr std::array<long, rank> receptive_field = [] {
        std::array<long, rank> r{};
        for (std::size_t i = 0; i < rank; ++i) r[i] = long(lowered.values[std::size_t(lowered.output)].receptive[i] + 0.5);
        return r;
    }();
    // Arena for intermediate tensors, per batch element.
    static constexpr long workspace_elements = memory.arena;
    template <class T = float>
    static constexpr long workspace_bytes = workspace_elements * long(sizeof(T));
    static constexpr long state_values = lowered.param_values;
    static constexpr std::size_t live_ops = [] {
        std::size_t n = 0;
        for (std::size_t i = 0; i < graph.n_ops; ++i) n += !graph.ops[i].removed;
        return n;
    }();
};

template <class T>
inline constexpr bool is_bound = false;
template <class Net, class In, plan::plan_options O>
inline constexpr bool is_bound<bind<Net, In, O>> = true;

}  // namespace ctseg
