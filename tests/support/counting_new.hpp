// Replaces the global operator new and delete of the one program that includes
// this header (include it in exactly one translation unit) with versions that
// count allocations: every standard container allocates through them.
// allocation_count() is the number of allocations so far.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace counting_new {
inline std::atomic<long> allocations{0};

inline void* allocate(std::size_t n, std::size_t align) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (n == 0) n = 1;
    void* p = align > alignof(std::max_align_t) ? std::aligned_alloc(align, (n + align - 1) / align * align) : std::malloc(n);
    if (!p) throw std::bad_alloc();
    return p;
}
}  // namespace counting_new

inline long allocation_count() { return counting_new::allocations.load(); }

void* operator new(std::size_t n) { return counting_new::allocate(n, 0); }
void* operator new[](std::size_t n) { return counting_new::allocate(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return counting_new::allocate(n, std::size_t(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counting_new::allocate(n, std::size_t(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try { return counting_new::allocate(n, 0); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    try { return counting_new::allocate(n, 0); } catch (...) { return nullptr; }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
