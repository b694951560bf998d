// Loading and saving a model's state (model::state_entry) as a .safetensors
// file with PyTorch's state_dict keys and shapes.
//
// A model is anything with `std::vector<model::state_entry<T>> state_entries()`
// whose entries point into its storage; T is float or double. Both functions
// take `Model&` because state_entries() is non-const; a Model with a const
// overload may be passed as const to save_state_dict.
//
// Loading is strict and all-or-nothing: the whole file is read and checked
// against every entry before any value in the model changes.
//  - every model entry must be in the file;
//  - every tensor in the file must be a model entry, except keys ending in
//    ".num_batches_tracked" (PyTorch BatchNorm counters), which are ignored
//    when the model has no such entry;
//  - shapes must match exactly; floating-point entries must be F32 for float
//    models and F64 for double models (no conversion); counters are I64
//    scalars (shape []).
#pragma once
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ctseg/error.hpp"
#include "ctseg/interop/safetensors.hpp"
#include "ctseg/interop/tensor.hpp"
#include "ctseg/model/state.hpp"

namespace ctseg::interop {

namespace detail::state_dict {

inline constexpr std::string_view counter_suffix = ".num_batches_tracked";

template <class E>
struct entry_value;
template <class T>
struct entry_value<model::state_entry<T>> {
    using type = T;
};

template <class T>
void check_entries(const std::vector<model::state_entry<T>>& entries, const std::string& source) {
    std::set<std::string_view> names;
    for (const auto& e : entries) {
        if (!names.insert(e.name).second)
            throw error(source + ": the model has more than one entry named '" + e.name + "'");
        if (e.counter) continue;
        const auto n = checked_numel(e.shape);
        if (!n || static_cast<std::uint64_t>(*n) != e.values.size())
            throw error(source + ": model entry '" + e.name + "' has " + std::to_string(e.values.size()) +
                        " values for shape " + shape_to_string(e.shape));
    }
}

}  // namespace detail::state_dict

// The element type of a model's state entries (float or double).
template <class Model>
using state_value_t = std::remove_const_t<typename detail::state_dict::entry_value<
    typename decltype(std::declval<Model&>().state_entries())::value_type>::type>;

// The entries as tensors: F32/F64 with their shapes, counters as I64 scalars.
// `source` names the destination in errors.
template <class T>
std::map<std::string, host_tensor> state_dict_tensors(const std::vector<model::state_entry<T>>& entries,
                                                      const std::string& source) {
    detail::state_dict::check_entries(entries, source);
    std::map<std::string, host_tensor> out;
    for (const auto& e : entries) {
        if (e.counter) {
            const std::int64_t v = *e.counter;
            out.emplace(e.name, host_tensor::from(std::span<const std::int64_t>(&v, 1), {}));
        } else {
            out.emplace(e.name, host_tensor::from(std::span<const std::remove_const_t<T>>(e.values), e.shape));
        }
    }
    return out;
}

// Checks `tensors` against every entry (rules above), then copies them in.
// Throws before modifying anything. `source` names the file in errors.
template <class T>
    requires(!std::is_const_v<T>)
void assign_state_dict(const std::vector<model::state_entry<T>>& entries,
                       const std::map<std::string, host_tensor>& tensors, const std::string& source) {
    namespace d = detail::state_dict;
    d::check_entries(entries, source);

    std::vector<std::string> missing;
    std::set<std::string_view> known;
    for (const auto& e : entries) {
        known.insert(e.name);
        if (!tensors.contains(e.name)) missing.push_back(e.name);
    }
    auto and_more = [](std::size_t count, const char* what) {
        return count > 1 ? std::string(" (and ") + std::to_string(count - 1) + " more " + what + ")" : std::string();
    };
    if (!missing.empty())
        throw error(source + ": missing tensor '" + missing.front() + "'" + and_more(missing.size(), "missing") +
                    ", the model has " + std::to_string(entries.size()) + " entries");

    std::vector<std::string_view> unexpected;
    for (const auto& [name, t] : tensors)
        if (!known.contains(name) && !std::string_view(name).ends_with(d::counter_suffix)) unexpected.push_back(name);
    if (!unexpected.empty())
        throw error(source + ": unexpected tensor '" + std::string(unexpected.front()) + "', not in the model" +
                    and_more(unexpected.size(), "unexpected"));

    constexpr dtype want = dtype_of<T>;
    for (const auto& e : entries) {
        const host_tensor& t = tensors.at(e.name);
        const std::string where = source + ": tensor '" + e.name + "'";
        const dtype expected_type = e.counter ? dtype::i64 : want;
        if (t.type != expected_type)
            throw error(where + " has dtype " + std::string(dtype_name(t.type)) + ", expected " +
                        std::string(dtype_name(expected_type)));
        const std::vector<std::int64_t> no_dims;
        const auto& expected_shape = e.counter ? no_dims : e.shape;
        if (t.shape != expected_shape)
            throw error(where + " has shape " + shape_to_string(t.shape) + ", expected " +
                        shape_to_string(expected_shape));
        t.validate(where);
    }

    for (const auto& e : entries) {
        const host_tensor& t = tensors.at(e.name);
        if (e.counter) {
            std::memcpy(e.counter, t.bytes.data(), sizeof(std::int64_t));
        } else if (!e.values.empty()) {
            std::memcpy(e.values.data(), t.bytes.data(), e.values.size_bytes());
        }
    }
}

// Reads `file` (.safetensors) into the model; see the rules above.
template <class Model>
void load_state_dict(Model& m, const std::filesystem::path& file) {
    auto entries = m.state_entries();
    detail::state_dict::check_entries(entries, file.string());
    const safetensors_file f = read_safetensors(file);
    assign_state_dict(entries, f.tensors, file.string());
    // Models that derive inference data from their parameters (folded norms) refresh it.
    if constexpr (requires { m.state_changed(); }) m.state_changed();
}

// Writes every entry (F32 for float models, F64 for double models, counters as
// I64 scalars) to `file` atomically, with optional "__metadata__".
template <class Model>
void save_state_dict(Model& m, const std::filesystem::path& file,
                     const std::map<std::string, std::string>& metadata = {}) {
    const auto entries = m.state_entries();
    write_safetensors(file, state_dict_tensors(entries, file.string()), metadata);
}

}  // namespace ctseg::interop
