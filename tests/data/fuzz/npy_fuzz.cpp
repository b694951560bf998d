// libFuzzer harness of the .npy image reader, which reads files: each input
// is written to a scratch file first (tests/data/fuzz/run.sh builds it).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "ctseg/data/npy_image.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace npy = ctseg::data::npy_file;
    struct scratch {
        // tmpfs when there is one: millions of small writes.
        std::filesystem::path path =
            (std::filesystem::is_directory("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                       : std::filesystem::temp_directory_path()) /
            ("ctseg-npy-fuzz-" + std::to_string(::getpid()) + ".npy");
        ~scratch() {
            std::error_code ec;
            std::filesystem::remove(path, ec);
        }
    };
    static const scratch file;
    const auto& path = file.path;
    std::remove(path.c_str());  // rewriting a truncated file makes ext4 flush it
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return 0;
    if (size) std::fwrite(data, 1, size, f);
    std::fclose(f);
    const std::string name = path.string();
    try {
        (void)npy::probe_file(path);
    } catch (const ctseg::error& e) {
        fuzz::check_error(e, name);
    }
    try {
        const auto s = npy::decode_file(path);
        fuzz::convert(s, name);
    } catch (const ctseg::error& e) {
        fuzz::check_error(e, name);
    }
    return 0;
}
