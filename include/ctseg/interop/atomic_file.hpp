// File primitives for the tensor formats (POSIX):
//  - atomic_file_writer / write_file_atomically: the target is either left as
//    it was or replaced by the complete new contents, never half written. The
//    data goes to a temporary file in the target's directory, which is synced,
//    renamed over the target, and the directory synced. On failure the
//    temporary is removed and ctseg::error names the path and the OS error.
//  - input_file: a read-only file with positioned, exact reads whose errors
//    name the file.
#pragma once
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <span>
#include <string>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctseg/error.hpp"

namespace ctseg::interop {

namespace detail {

inline std::string errno_text(int err) { return std::strerror(err); }

inline std::filesystem::path directory_of(const std::filesystem::path& p) {
    auto dir = p.parent_path();
    return dir.empty() ? std::filesystem::path(".") : dir;
}

}  // namespace detail

// Writes a file through a temporary next to it. Nothing is visible at the
// target until commit() succeeds; destroying an uncommitted writer (an
// exception, an early return) removes the temporary and leaves the target
// untouched. A replaced file keeps its permission bits; a new one gets
// 0666 & ~umask. A symbolic link at the target is replaced, not followed.
class atomic_file_writer {
public:
    explicit atomic_file_writer(std::filesystem::path target) : target_(std::move(target)) {
        if (target_.filename().empty())
            throw error(target_.string() + ": cannot write a file: the path names no file");
        const auto dir = detail::directory_of(target_);
        static std::atomic<unsigned long> counter{0};
        for (int attempt = 0;; ++attempt) {
            const auto n = counter.fetch_add(1, std::memory_order_relaxed);
            std::string name(1, '.');
            name += target_.filename().string();
            name += ".tmp-";
            name += std::to_string(::getpid());
            name += '-';
            name += std::to_string(n);
            temp_ = dir / name;
            fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd_ >= 0) break;
            const int err = errno;
            if (err == EEXIST && attempt < 100) continue;  // left over by a crashed writer
            throw error(target_.string() + ": cannot create temporary file '" + temp_.string() +
                        "': " + detail::errno_text(err));
        }
        struct stat st {};
        if (::stat(target_.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
            if (::fchmod(fd_, st.st_mode & 07777) != 0) fail("cannot set permissions of");
        }
    }

    atomic_file_writer(const atomic_file_writer&) = delete;
    atomic_file_writer& operator=(const atomic_file_writer&) = delete;

    ~atomic_file_writer() { discard(); }

    const std::filesystem::path& target() const noexcept { return target_; }
    const std::filesystem::path& temporary_path() const noexcept { return temp_; }

    void write(std::span<const std::byte> data) {
        if (fd_ < 0) throw error(target_.string() + ": write after commit or failure");
        while (!data.empty()) {
            const ::ssize_t n = ::write(fd_, data.data(), data.size());
            if (n < 0) {
                if (errno == EINTR) continue;
                fail("cannot write");
            }
            data = data.subspan(static_cast<std::size_t>(n));
        }
    }

    // Syncs the data, renames the temporary over the target and syncs the
    // directory. After it returns the new contents are durable.
    void commit() {
        if (fd_ < 0) throw error(target_.string() + ": commit after commit or failure");
        if (::fsync(fd_) != 0) fail("cannot sync");
        const int fd = std::exchange(fd_, -1);
        if (::close(fd) != 0) fail("cannot close");
        if (::rename(temp_.c_str(), target_.c_str()) != 0) {
            const int err = errno;
            discard();
            throw error(target_.string() + ": cannot rename temporary file '" + temp_.string() +
                        "' over it: " + detail::errno_text(err));
        }
        committed_ = true;
        const auto dir = detail::directory_of(target_);
        const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            throw error(target_.string() + ": written, but cannot open directory '" + dir.string() +
                        "' to sync it: " + detail::errno_text(errno));
        int err = 0;
        if (::fsync(dfd) != 0) err = errno;
        ::close(dfd);
        // Some file systems cannot sync directories; the rename is then as
        // durable as they make it.
        if (err != 0 && err != EINVAL && err != ENOTSUP)
            throw error(target_.string() + ": written, but cannot sync directory '" + dir.string() +
                        "': " + detail::errno_text(err));
    }

private:
    [[noreturn]] void fail(const char* what) {
        const int err = errno;
        discard();
        throw error(target_.string() + ": " + what + " temporary file '" + temp_.string() +
                    "': " + detail::errno_text(err));
    }

    void discard() noexcept {
        if (fd_ >= 0) ::close(std::exchange(fd_, -1));
        if (!committed_ && !temp_.empty()) {
            ::unlink(temp_.c_str());
            committed_ = true;  // nothing left to clean up
        }
    }

    std::filesystem::path target_;
    std::filesystem::path temp_;
    int fd_ = -1;
    bool committed_ = false;
};

// Replaces `target` with the concatenation of `pieces`, atomically.
inline void write_file_atomically(const std::filesystem::path& target,
                                  std::initializer_list<std::span<const std::byte>> pieces) {
    atomic_file_writer w(target);
    for (auto piece : pieces) w.write(piece);
    w.commit();
}

inline void write_file_atomically(const std::filesystem::path& target, std::span<const std::byte> data) {
    write_file_atomically(target, {data});
}

// A file opened for reading; every failure is a ctseg::error naming it.
class input_file {
public:
    explicit input_file(const std::filesystem::path& path) : name_(path.string()) {
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) throw error(name_ + ": cannot open: " + detail::errno_text(errno));
        struct stat st {};
        if (::fstat(fd_, &st) != 0) {
            const int err = errno;
            ::close(fd_);
            throw error(name_ + ": cannot stat: " + detail::errno_text(err));
        }
        if (S_ISDIR(st.st_mode)) {
            ::close(fd_);
            throw error(name_ + ": is a directory, not a file");
        }
        size_ = static_cast<std::uint64_t>(st.st_size);
    }

    input_file(const input_file&) = delete;
    input_file& operator=(const input_file&) = delete;
    ~input_file() { ::close(fd_); }

    const std::string& name() const noexcept { return name_; }
    std::uint64_t size() const noexcept { return size_; }

    // Reads exactly out.size() bytes at `offset`; throws on a short read.
    void read_at(std::uint64_t offset, std::span<std::byte> out) const {
        const std::size_t wanted = out.size();
        while (!out.empty()) {
            const ::ssize_t n = ::pread(fd_, out.data(), out.size(), static_cast<::off_t>(offset));
            if (n < 0) {
                if (errno == EINTR) continue;
                throw error(name_ + ": cannot read: " + detail::errno_text(errno));
            }
            if (n == 0)
                throw error(name_ + ": unexpected end of file: wanted " + std::to_string(wanted) +
                            " bytes, got " + std::to_string(wanted - out.size()));
            out = out.subspan(static_cast<std::size_t>(n));
            offset += static_cast<std::uint64_t>(n);
        }
    }

private:
    std::string name_;
    int fd_ = -1;
    std::uint64_t size_ = 0;
};

}  // namespace ctseg::interop
