// libFuzzer harness of the TIFF reader (tests/data/fuzz/run.sh builds it).
#include <cstddef>
#include <cstdint>
#include <span>

#include "ctseg/data/tiff.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace tiff = ctseg::data::tiff_file;
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    const std::string name = "fuzz.tif";
    try {
        (void)tiff::probe(bytes, name);
    } catch (const ctseg::error& e) {
        fuzz::check_error(e, name);
    }
    try {
        const auto s = tiff::decode(bytes, name);
        fuzz::convert(s, name);
        fuzz::round_trip(
            s, name, [&](const auto& img) { return tiff::encode(img, name); },
            [&](std::span<const std::byte> b) { return tiff::decode(b, name); });
    } catch (const ctseg::error& e) {
        fuzz::check_error(e, name);
    }
    return 0;
}
