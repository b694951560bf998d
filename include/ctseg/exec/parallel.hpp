// Thin helpers over oneTBB. Every kernel partitions its output so that each
// element is produced by exactly one task with a fixed operation order: results
// never depend on the number of threads or on scheduling.
#pragma once
#include <cstddef>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

#include "ctseg/exec/geometry.hpp"

namespace ctseg::exec {

// Threads available to the calling context (the current task arena).
inline int concurrency() { return tbb::this_task_arena::max_concurrency(); }

// The calling thread's slot in the current task arena, in [0,
// concurrency()): threads running at the same time in one arena have
// different slots. -1 outside any arena.
inline int thread_slot() { return tbb::this_task_arena::current_thread_index(); }

// Working memory for the tasks of a kernel: `slots` regions of `slot_bytes`
// bytes each (64-byte aligned), one per thread of the calling task arena,
// picked by thread_slot(). Without one (base null), kernels use per-thread
// buffers that grow as needed.
struct workspace {
    std::byte* base = nullptr;
    std::size_t slot_bytes = 0;
    int slots = 0;
};

// f(i) for i in [0, count), each index one unit of work.
template <class F>
void parallel_for_each(index_t count, F&& f) {
    if (count <= 0) return;
    if (count == 1 || concurrency() <= 1) {
        for (index_t i = 0; i < count; ++i) f(i);
        return;
    }
    tbb::parallel_for(tbb::blocked_range<index_t>(0, count, 1), [&](const tbb::blocked_range<index_t>& r) {
        for (index_t i = r.begin(); i != r.end(); ++i) f(i);
    });
}

// f(begin, end) over [0, count) in chunks of at least `grain` indices.
template <class F>
void parallel_for_range(index_t count, index_t grain, F&& f) {
    if (count <= 0) return;
    if (grain < 1) grain = 1;
    if (count <= grain || concurrency() <= 1) {
        f(index_t(0), count);
        return;
    }
    tbb::parallel_for(tbb::blocked_range<index_t>(0, count, static_cast<std::size_t>(grain)),
                      [&](const tbb::blocked_range<index_t>& r) { f(r.begin(), r.end()); });
}

// A chunk size that gives every thread several pieces of `count` items, but no
// piece smaller than `min_chunk`.
inline index_t balanced_chunk(index_t count, index_t min_chunk, int pieces_per_thread = 4) {
    const index_t pieces = index_t(concurrency()) * pieces_per_thread;
    index_t c = (count + pieces - 1) / (pieces > 0 ? pieces : 1);
    return c < min_chunk ? min_chunk : c;
}

}  // namespace ctseg::exec
