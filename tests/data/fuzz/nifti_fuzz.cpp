// libFuzzer harness of the NIfTI-1 reader, plain and gzip-compressed
// (tests/data/fuzz/run.sh builds it).
#include <cstddef>
#include <cstdint>
#include <span>

#include <zlib.h>

#include <cstring>
#include <vector>

#include "ctseg/data/nifti.hpp"
#include "fuzz_common.hpp"

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

// A gzip-compressed input is mutated uncompressed (half the time), then
// compressed again, so that mutations reach the NIfTI header rather than
// breaking the gzip stream.
extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
    if (size < 2 || data[0] != 0x1f || data[1] != 0x8b || seed % 2 == 0) return LLVMFuzzerMutate(data, size, max_size);
    std::vector<std::uint8_t> plain(1 << 16);
    z_stream in{};
    if (inflateInit2(&in, 31) != Z_OK) return LLVMFuzzerMutate(data, size, max_size);
    in.next_in = data;
    in.avail_in = static_cast<uInt>(size);
    in.next_out = plain.data();
    in.avail_out = static_cast<uInt>(plain.size());
    inflate(&in, Z_FINISH);
    const std::size_t plain_size = plain.size() - in.avail_out;
    inflateEnd(&in);
    if (plain_size == 0) return LLVMFuzzerMutate(data, size, max_size);
    const std::size_t mutated = LLVMFuzzerMutate(plain.data(), plain_size, plain.size());
    z_stream out{};
    if (deflateInit2(&out, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) return size;
    std::vector<std::uint8_t> packed(deflateBound(&out, static_cast<uLong>(mutated)) + 32);
    out.next_in = plain.data();
    out.avail_in = static_cast<uInt>(mutated);
    out.next_out = packed.data();
    out.avail_out = static_cast<uInt>(packed.size());
    const int rc = deflate(&out, Z_FINISH);
    const std::size_t packed_size = packed.size() - out.avail_out;
    deflateEnd(&out);
    if (rc != Z_STREAM_END || packed_size > max_size) return LLVMFuzzerMutate(data, size, max_size);
    std::memcpy(data, packed.data(), packed_size);
    return packed_size;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace nifti = ctseg::data::nifti_file;
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    const std::string name = "fuzz.nii.gz";
    try {
        (void)nifti::probe(bytes, name);
    } catch (const ctseg::error& e) {
        fuzz::check_error(e, name);
    }
    try {
        auto s = nifti::decode(bytes, name);
        fuzz::convert(s, name);
        s.scaled = false;  // the encoder stores values unscaled
        fuzz::round_trip(
            s, name, [&](const auto& img) { return nifti::encode(img, name, (size & 1) != 0); },
            [&](std::span<const std::byte> b) { return nifti::decode(b, name); });
    } catch (const ctseg::error& e) {
        fuzz::check_error(e, name);
    }
    return 0;
}
