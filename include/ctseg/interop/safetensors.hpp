// .safetensors files: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
//    "__metadata__": {"key": "value"}}
// padded with spaces, then the tensor data (offsets relative to its start).
// Reading validates the whole header before touching the data; every problem
// is a ctseg::error naming the file and the tensor.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctseg/error.hpp"
#include "ctseg/interop/atomic_file.hpp"
#include "ctseg/interop/tensor.hpp"

namespace ctseg::interop {

struct safetensors_file {
    std::map<std::string, host_tensor> tensors;
    std::map<std::string, std::string> metadata;  // the optional "__metadata__" object
};

namespace detail::safetensors {

inline constexpr const char* metadata_key = "__metadata__";

struct entry {
    std::string name;
    dtype type = dtype::f32;
    std::vector<std::int64_t> shape;
    std::uint64_t begin = 0, end = 0;
};

inline std::string one_line(std::string s) {
    std::replace(s.begin(), s.end(), '\n', ' ');
    return s;
}

inline std::string offsets_string(std::uint64_t b, std::uint64_t e) {
    return std::string("[") + std::to_string(b) + ", " + std::to_string(e) + "]";
}

inline entry parse_entry(const std::string& file, const std::string& name, const nlohmann::json& v) {
    const std::string where = file + ": tensor '" + name + "'";
    if (!v.is_object()) throw error(where + ": header entry is " + std::string(v.type_name()) + ", not an object");
    auto field = [&](const char* key) -> const nlohmann::json& {
        auto it = v.find(key);
        if (it == v.end()) throw error(where + ": header entry has no '" + key + "' field");
        return *it;
    };
    entry e;
    e.name = name;

    const auto& dt = field("dtype");
    if (!dt.is_string()) throw error(where + ": 'dtype' is " + std::string(dt.type_name()) + ", not a string");
    const auto type = dtype_from_name(dt.get_ref<const std::string&>());
    if (!type)
        throw error(where + ": unsupported dtype '" + dt.get<std::string>() +
                    "' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
    e.type = *type;

    const auto& sh = field("shape");
    if (!sh.is_array()) throw error(where + ": 'shape' is " + std::string(sh.type_name()) + ", not an array");
    for (const auto& d : sh) {
        if (d.is_number_unsigned()) {
            const auto u = d.get<std::uint64_t>();
            if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                throw error(where + ": shape dimension " + std::to_string(u) + " is too large");
            e.shape.push_back(static_cast<std::int64_t>(u));
        } else if (d.is_number_integer()) {
            throw error(where + ": shape " + one_line(sh.dump()) + " has a negative dimension " +
                        std::to_string(d.get<std::int64_t>()));
        } else {
            throw error(where + ": shape " + one_line(sh.dump()) + " holds something other than integers");
        }
    }

    const auto& off = field("data_offsets");
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
        throw error(where + ": 'data_offsets' " + one_line(off.dump()) +
                    " is not [begin, end] of two non-negative integers");
    e.begin = off[0].get<std::uint64_t>();
    e.end = off[1].get<std::uint64_t>();
    if (e.begin > e.end)
        throw error(where + ": data_offsets " + offsets_string(e.begin, e.end) + " end before they begin");

    const auto needed = checked_byte_size(e.shape, e.type);
    if (!needed)
        throw error(where + ": shape " + shape_to_string(e.shape) + " of " + std::string(dtype_name(e.type)) +
                    " is too large");
    if (e.end - e.begin != *needed)
        throw error(where + ": data_offsets " + offsets_string(e.begin, e.end) + " hold " +
                    std::to_string(e.end - e.begin) + " bytes, shape " + shape_to_string(e.shape) + " of " +
                    std::string(dtype_name(e.type)) + " needs " + std::to_string(*needed));
    return e;
}

}  // namespace detail::safetensors

inline safetensors_file read_safetensors(const std::filesystem::path& path) {
    namespace d = detail::safetensors;
    using nlohmann::json;
    input_file in(path);
    const std::string& file = in.name();
    const std::uint64_t size = in.size();
    if (size < 8)
        throw error(file + ": not a safetensors file: " + std::to_string(size) +
                    " bytes, shorter than the 8-byte header length");
    std::array<std::byte, 8> len_bytes{};
    in.read_at(0, len_bytes);
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(len_bytes[i]) << (8 * i);
    if (n > size - 8)
        throw error(file + ": header length " + std::to_string(n) + " exceeds the " + std::to_string(size - 8) +
                    " bytes that follow it");
    std::string text(static_cast<std::size_t>(n), '\0');
    in.read_at(8, std::as_writable_bytes(std::span(text)));
    const std::uint64_t data_size = size - 8 - n;

    // Duplicate keys would silently shadow each other in the parsed object.
    std::vector<std::set<std::string>> open_objects;
    std::string duplicate;
    json header;
    try {
        header = json::parse(text, [&](int, json::parse_event_t ev, json& parsed) {
            if (ev == json::parse_event_t::object_start) {
                open_objects.emplace_back();
            } else if (ev == json::parse_event_t::object_end) {
                if (!open_objects.empty()) open_objects.pop_back();
            } else if (ev == json::parse_event_t::key && !open_objects.empty() && parsed.is_string()) {
                if (!open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty())
                    duplicate = parsed.get<std::string>();
            }
            return true;
        });
    } catch (const json::exception& e) {
        throw error(file + ": header is not valid JSON: " + d::one_line(e.what()));
    }
    if (!header.is_object())
        throw error(file + ": header is a JSON " + std::string(header.type_name()) + ", not an object");
    if (!duplicate.empty()) throw error(file + ": header repeats the key '" + duplicate + "'");

    safetensors_file result;
    std::vector<d::entry> entries;
    for (const auto& [name, value] : header.items()) {
        if (name == d::metadata_key) {
            if (!value.is_object())
                throw error(file + ": '__metadata__' is " + std::string(value.type_name()) + ", not an object");
            for (const auto& [key, v] : value.items()) {
                if (!v.is_string())
                    throw error(file + ": __metadata__ '" + key + "' is " + std::string(v.type_name()) +
                                ", not a string");
                result.metadata.emplace(key, v.get<std::string>());
            }
            continue;
        }
        entries.push_back(d::parse_entry(file, name, value));
    }

    // The tensors must tile the data section exactly: no overlap, no gap.
    std::vector<const d::entry*> order;
    order.reserve(entries.size());
    for (const auto& e : entries) order.push_back(&e);
    std::sort(order.begin(), order.end(),
              [](const d::entry* a, const d::entry* b) { return std::tie(a->begin, a->end) < std::tie(b->begin, b->end); });
    std::uint64_t covered = 0;
    const d::entry* prev = nullptr;
    for (const d::entry* e : order) {
        if (e->end > data_size)
            throw error(file + ": tensor '" + e->name + "': data_offsets " + d::offsets_string(e->begin, e->end) +
                        " run past the " + std::to_string(data_size) + "-byte data section");
        if (e->begin < covered)
            throw error(file + ": tensor '" + e->name + "': data_offsets " + d::offsets_string(e->begin, e->end) +
                        " overlap tensor '" + prev->name + "' " + d::offsets_string(prev->begin, prev->end));
        if (e->begin > covered)
            throw error(file + ": tensor '" + e->name + "': data_offsets " + d::offsets_string(e->begin, e->end) +
                        " leave bytes [" + std::to_string(covered) + ", " + std::to_string(e->begin) +
                        ") of the data section unused");
        covered = e->end;
        prev = e;
    }
    if (covered != data_size)
        throw error(file + ": the tensors cover " + std::to_string(covered) + " of the " + std::to_string(data_size) +
                    " data bytes (" + std::to_string(data_size - covered) + " trailing bytes unaccounted for)");

    const std::uint64_t data_start = 8 + n;
    for (const auto& e : entries) {
        host_tensor t;
        t.type = e.type;
        t.shape = e.shape;
        t.bytes.resize(static_cast<std::size_t>(e.end - e.begin));
        in.read_at(data_start + e.begin, t.bytes);
        if (t.type == dtype::boolean) {
            for (std::size_t i = 0; i < t.bytes.size(); ++i)
                if (std::to_integer<unsigned>(t.bytes[i]) > 1)
                    throw error(file + ": tensor '" + e.name + "': boolean element " + std::to_string(i) +
                                " has byte value " + std::to_string(std::to_integer<unsigned>(t.bytes[i])) +
                                ", not 0 or 1");
        }
        result.tensors.emplace(e.name, std::move(t));
    }
    return result;
}

// Writes the tensors in key order, header padded with spaces to a multiple of
// 8 bytes, atomically (see atomic_file.hpp). An empty metadata map writes no
// "__metadata__" entry.
inline void write_safetensors(const std::filesystem::path& path, const std::map<std::string, host_tensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
    namespace d = detail::safetensors;
    using nlohmann::json;
    const std::string file = path.string();
    json header = json::object();
    std::uint64_t offset = 0;
    for (const auto& [name, t] : tensors) {
        if (name == d::metadata_key) throw error(file + ": '__metadata__' cannot name a tensor");
        t.validate(file + ": tensor '" + name + "'");
        const std::uint64_t end = offset + t.bytes.size();
        header[name] = {{"dtype", std::string(dtype_name(t.type))},
                        {"shape", t.shape},
                        {"data_offsets", {offset, end}}};
        offset = end;
    }
    if (!metadata.empty()) {
        json m = json::object();
        for (const auto& [k, v] : metadata) m[k] = v;
        header[d::metadata_key] = std::move(m);
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const json::exception& e) {
        throw error(file + ": cannot encode the header (names and metadata must be UTF-8): " + d::one_line(e.what()));
    }
    text.append((8 - text.size() % 8) % 8, ' ');
    std::array<std::byte, 8> len{};
    for (std::size_t i = 0; i < 8; ++i) len[i] = static_cast<std::byte>((text.size() >> (8 * i)) & 0xff);

    atomic_file_writer w(path);
    w.write(len);
    w.write(std::as_bytes(std::span(text)));
    for (const auto& [name, t] : tensors) w.write(t.bytes);
    w.commit();
}

}  // namespace ctseg::interop
