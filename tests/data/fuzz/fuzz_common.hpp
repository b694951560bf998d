// Shared by the libFuzzer harnesses: the conversions every read goes
// through, and a second oracle: an image that decodes must encode and decode
// again to the same values.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "ctseg/data/image_file.hpp"
#include "ctseg/error.hpp"

namespace fuzz {

namespace io = ctseg::data::detail::io;

// Every error is one line that starts with the file's name.
inline void check_error(const ctseg::error& e, const std::string& name) {
    const std::string m = e.what();
    if (m.rfind(name + ": ", 0) != 0) std::abort();
    for (char c : m)
        if (static_cast<unsigned char>(c) < 0x20) std::abort();
}

// Converts like read_image<float> and read_labels do; both may refuse.
inline void convert(const ctseg::data::stored_image& s, const std::string& name) {
    try {
        auto copy = s;
        (void)io::to_image<float>(std::move(copy), name);
    } catch (const ctseg::error& e) {
        check_error(e, name);
    }
    try {
        auto copy = s;
        (void)io::to_image<std::int64_t>(std::move(copy), name);
    } catch (const ctseg::error& e) {
        check_error(e, name);
    }
}

// `encode` must accept or refuse `s` cleanly, and what it writes must decode
// to the same values.
template <class Encode, class Decode>
void round_trip(const ctseg::data::stored_image& s, const std::string& name, Encode&& encode, Decode&& decode) {
    std::vector<std::byte> bytes;
    try {
        bytes = encode(s);
    } catch (const ctseg::error& e) {
        check_error(e, name);
        return;  // not every image fits every format
    }
    const ctseg::data::stored_image back = decode(std::span<const std::byte>(bytes));
    if (back.info.channels != s.info.channels || back.info.extents != s.info.extents ||
        back.info.stored != s.info.stored || io::value_bytes(back.values).size() != io::value_bytes(s.values).size() ||
        !std::equal(io::value_bytes(back.values).begin(), io::value_bytes(back.values).end(),
                    io::value_bytes(s.values).begin()))
        std::abort();  // a wrong answer: let the fuzzer keep the input
}

}  // namespace fuzz
