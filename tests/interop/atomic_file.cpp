#define BOOST_TEST_MODULE interop atomic_file
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <iterator>
#include <cstddef>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "ctseg/interop/atomic_file.hpp"
#include "test_util.hpp"

using namespace ctseg::interop;
using ctseg_test::expect_error;
using ctseg_test::read_bytes;
using ctseg_test::temp_dir;
using ctseg_test::to_bytes;
using ctseg_test::write_bytes;
namespace fs = std::filesystem;

namespace {

std::vector<std::byte> pattern(std::size_t n) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + 7) & 0xff);
    return v;
}

}  // namespace

BOOST_AUTO_TEST_CASE(writes_new_and_replaces_existing_files) {
    temp_dir dir;
    const auto target = dir / "a.bin";
    write_file_atomically(target, to_bytes("first"));
    BOOST_TEST((read_bytes(target) == to_bytes("first")));
    BOOST_TEST(dir.listing() == std::vector<std::string>{"a.bin"}, boost::test_tools::per_element());

    fs::permissions(target, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
    const auto big = pattern(10'000'000);
    write_file_atomically(target, big);
    BOOST_TEST((read_bytes(target) == big));
    BOOST_TEST((fs::status(target).permissions() == (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read)));

    // Pieces are concatenated.
    write_file_atomically(target, {to_bytes("ab"), to_bytes(""), to_bytes("cd")});
    BOOST_TEST((read_bytes(target) == to_bytes("abcd")));
    BOOST_TEST(dir.listing() == std::vector<std::string>{"a.bin"}, boost::test_tools::per_element());

    // A path without a directory part writes into the working directory.
    const auto cwd = fs::current_path();
    fs::current_path(dir.path);
    write_file_atomically("rel.bin", to_bytes("x"));
    fs::current_path(cwd);
    BOOST_TEST((read_bytes(dir / "rel.bin") == to_bytes("x")));
}

BOOST_AUTO_TEST_CASE(missing_directory) {
    temp_dir dir;
    expect_error([&] { write_file_atomically(dir / "nope" / "a.bin", to_bytes("x")); },
                 {"nope/a.bin", "No such file or directory"});
    BOOST_TEST(dir.listing().empty());
    expect_error([&] { write_file_atomically(dir.path / "", to_bytes("x")); }, {"names no file"});
}

BOOST_AUTO_TEST_CASE(unwritable_directory) {
    if (::geteuid() == 0) {
        BOOST_TEST_MESSAGE("running as root: directory permissions do not apply, skipped");
        return;
    }
    temp_dir dir;
    const auto sub = dir / "ro";
    fs::create_directory(sub);
    write_file_atomically(sub / "a.bin", to_bytes("old"));
    fs::permissions(sub, fs::perms::owner_read | fs::perms::owner_exec);
    expect_error([&] { write_file_atomically(sub / "a.bin", to_bytes("new")); }, {"a.bin", "Permission denied"});
    fs::permissions(sub, fs::perms::owner_all);
    BOOST_TEST((read_bytes(sub / "a.bin") == to_bytes("old")));
    BOOST_TEST(std::distance(fs::directory_iterator(sub), fs::directory_iterator()) == 1);
}

// rename() cannot replace a non-empty directory: the failure comes after the
// data was written, and the temporary must still be removed.
BOOST_AUTO_TEST_CASE(failed_rename_removes_the_temporary) {
    temp_dir dir;
    fs::create_directory(dir / "target");
    write_bytes(dir / "target" / "inside", to_bytes("keep"));
    expect_error([&] { write_file_atomically(dir / "target", pattern(1000)); }, {"target", "cannot rename"});
    BOOST_TEST(dir.listing() == std::vector<std::string>{"target"}, boost::test_tools::per_element());
    BOOST_TEST((read_bytes(dir / "target" / "inside") == to_bytes("keep")));
}

// A write that fails half way (here: the file size limit) leaves the old
// contents in place and no temporary behind.
BOOST_AUTO_TEST_CASE(failed_write_keeps_the_old_file) {
    temp_dir dir;
    const auto target = dir / "a.bin";
    write_file_atomically(target, to_bytes("old contents"));

    ::rlimit old_limit{};
    BOOST_REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    ::rlimit small = old_limit;
    small.rlim_cur = 4096;
    BOOST_REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    bool threw = false;
    std::string message;
    try {
        write_file_atomically(target, pattern(100000));
    } catch (const ctseg::error& e) {
        threw = true;
        message = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    std::signal(SIGXFSZ, old_handler);

    BOOST_TEST(threw);
    BOOST_TEST(message.find("a.bin") != std::string::npos, message);
    BOOST_TEST(message.find("cannot write") != std::string::npos, message);
    BOOST_TEST((read_bytes(target) == to_bytes("old contents")));
    BOOST_TEST(dir.listing() == std::vector<std::string>{"a.bin"}, boost::test_tools::per_element());
}

// An exception before commit (a crash of the producer) leaves the old file.
BOOST_AUTO_TEST_CASE(uncommitted_writer_changes_nothing) {
    temp_dir dir;
    const auto target = dir / "a.bin";
    write_file_atomically(target, to_bytes("old"));
    fs::path temporary;
    try {
        atomic_file_writer w(target);
        temporary = w.temporary_path();
        BOOST_TEST(temporary.parent_path() == dir.path);
        w.write(pattern(5000));
        BOOST_TEST(fs::exists(temporary));
        BOOST_TEST((read_bytes(target) == to_bytes("old")));
        throw std::runtime_error("producer failed");
    } catch (const std::runtime_error&) {
    }
    BOOST_TEST(!fs::exists(temporary));
    BOOST_TEST((read_bytes(target) == to_bytes("old")));
    BOOST_TEST(dir.listing() == std::vector<std::string>{"a.bin"}, boost::test_tools::per_element());

    {
        atomic_file_writer w(dir / "new.bin");
        w.write(to_bytes("never"));
    }
    BOOST_TEST(dir.listing() == std::vector<std::string>{"a.bin"}, boost::test_tools::per_element());

    atomic_file_writer w(target);
    w.write(to_bytes("new"));
    w.commit();
    BOOST_TEST((read_bytes(target) == to_bytes("new")));
    expect_error([&] { w.write(to_bytes("more")); }, {"a.bin", "after commit"});
    expect_error([&] { w.commit(); }, {"a.bin", "after commit"});
}

// Temporaries left by a crashed writer neither block nor get replaced.
BOOST_AUTO_TEST_CASE(stale_temporaries_are_skipped) {
    temp_dir dir;
    const auto target = dir / "a.bin";
    std::string probe;
    {
        atomic_file_writer w(target);
        probe = w.temporary_path().filename().string();
    }
    // ".a.bin.tmp-<pid>-<n>": occupy the next few names.
    const auto dash = probe.rfind('-');
    const auto n = std::stoul(probe.substr(dash + 1));
    for (unsigned long k = 1; k <= 3; ++k) write_bytes(dir / (probe.substr(0, dash + 1) + std::to_string(n + k)), to_bytes("stale"));
    write_file_atomically(target, to_bytes("fresh"));
    BOOST_TEST((read_bytes(target) == to_bytes("fresh")));
    BOOST_TEST(dir.listing().size() == 4u);
    for (unsigned long k = 1; k <= 3; ++k)
        BOOST_TEST((read_bytes(dir / (probe.substr(0, dash + 1) + std::to_string(n + k))) == to_bytes("stale")));
}

BOOST_AUTO_TEST_CASE(symbolic_link_is_replaced_not_followed) {
    temp_dir dir;
    write_bytes(dir / "real.bin", to_bytes("real"));
    fs::create_symlink(dir / "real.bin", dir / "link.bin");
    write_file_atomically(dir / "link.bin", to_bytes("new"));
    BOOST_TEST(!fs::is_symlink(dir / "link.bin"));
    BOOST_TEST((read_bytes(dir / "link.bin") == to_bytes("new")));
    BOOST_TEST((read_bytes(dir / "real.bin") == to_bytes("real")));
}

BOOST_AUTO_TEST_CASE(input_file_errors) {
    temp_dir dir;
    write_bytes(dir / "f.bin", to_bytes("0123456789"));
    input_file f(dir / "f.bin");
    BOOST_TEST(f.size() == 10u);
    std::vector<std::byte> buf(4);
    f.read_at(3, buf);
    BOOST_TEST((buf == to_bytes("3456")));
    expect_error([&] { f.read_at(8, buf); }, {"f.bin", "unexpected end of file", "wanted 4 bytes, got 2"});
    expect_error([&] { input_file g(dir / "none.bin"); }, {"none.bin", "No such file"});
    expect_error([&] { input_file g(dir.path); }, {"directory"});
}
