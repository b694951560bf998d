// libFuzzer harness of the PNG reader (tests/data/fuzz/run.sh builds it).
#include <cstddef>
#include <cstdint>
#include <span>

#include <zlib.h>

#include "ctseg/data/png.hpp"
#include "fuzz_common.hpp"

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

// Mutates, then (three times in four) fixes every chunk's CRC, so that
// mutated headers, palettes and transparency reach the decoder instead of
// stopping at libpng's CRC check.
extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
    size = LLVMFuzzerMutate(data, size, max_size);
    if (seed % 4 == 0) return size;
    auto be32 = [](const std::uint8_t* p) {
        return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
    };
    for (std::size_t pos = 8; pos + 12 <= size;) {
        const std::uint32_t len = be32(data + pos);
        if (len > size - pos - 12) break;
        const auto crc = static_cast<std::uint32_t>(crc32(0, data + pos + 4, len + 4));
        for (int i = 0; i < 4; ++i) data[pos + 8 + len + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(crc >> (24 - 8 * i));
        pos += 12 + std::size_t{len};
    }
    return size;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace png = ctseg::data::png_file;
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    const std::string name = "fuzz.png";
    try {
        (void)png::probe(bytes, name);
    } catch (const ctseg::error& e) {
        fuzz::check_error(e, name);
    }
    for (auto purpose : {ctseg::data::read_purpose::intensities, ctseg::data::read_purpose::labels}) {
        try {
            const auto s = png::decode(bytes, name, purpose);
            fuzz::convert(s, name);
            fuzz::round_trip(
                s, name, [&](const auto& img) { return png::encode(img, name); },
                [&](std::span<const std::byte> b) { return png::decode(b, name, purpose); });
        } catch (const ctseg::error& e) {
            fuzz::check_error(e, name);
        }
    }
    return 0;
}
