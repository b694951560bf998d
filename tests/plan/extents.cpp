// Extent arithmetic against brute-force enumeration of window positions, each
// case checked at compile time and at run time.
#define BOOST_TEST_MODULE plan extents
#include <boost/test/unit_test.hpp>

#include "ctseg/plan/extents.hpp"

using namespace ctseg::plan;

namespace {
// Positions o such that the window [o*s - p, o*s - p + d(k-1)] lies in [-p, in + p).
long count_windows(long in, long k, long s, long p, long d) {
    long n = 0;
    for (long o = 0;; ++o) {
        const long last = o * s - p + d * (k - 1);
        if (last >= in + p) break;
        ++n;
    }
    return n;
}
// A transposed convolution scatters input i through tap t to i*s + t*d; the
// result is that full range with `p` cropped from each side and `op` appended.
long scatter_extent(long in, long k, long s, long p, long d, long op) {
    long hi = 0;
    for (long i = 0; i < in; ++i)
        for (long t = 0; t < k; ++t) hi = std::max(hi, i * s + t * d + 1);
    return hi - 2 * p + op;
}
}  // namespace

static_assert(conv_extent(572, 3, 1, 0, 1) == 570);
static_assert(conv_extent(256, 3, 1, 1, 1) == 256);
static_assert(conv_extent(7, 3, 2, 0, 4) == 0);        // dilated kernel reaches 9 > 7
static_assert(conv_extent(64, 2, 2, 0, 1) == 32);
static_assert(window_tiles(568, 2, 2, 0) && !window_tiles(567, 2, 2, 0));
static_assert(conv_transpose_extent(2, 4, 2, 1, 1, 0) == 4);
static_assert(conv_transpose_extent(8, 16, 8, 4, 1, 0) == 64);
static_assert(padding_for_extent(8, 64, 16, 8, 1).pad == 4 && padding_for_extent(8, 64, 16, 8, 1).output_pad == 0);
static_assert(!padding_for_extent(5, 15, 2, 2, 1).ok);   // 2x2 stride 2 cannot triple

BOOST_AUTO_TEST_CASE(conv_extent_matches_enumeration) {
    for (long in = 1; in <= 23; ++in)
        for (long k = 1; k <= 5; ++k)
            for (long s = 1; s <= 3; ++s)
                for (long p = 0; p <= 3; ++p)
                    for (long d = 1; d <= 3; ++d) {
                        const long want = in + 2 * p >= d * (k - 1) + 1 ? count_windows(in, k, s, p, d) : 0;
                        BOOST_TEST(conv_extent(in, k, s, p, d) == want, "in " << in << " k " << k << " s " << s << " p " << p << " d " << d);
                    }
}

BOOST_AUTO_TEST_CASE(window_tiles_means_nothing_dropped) {
    for (long in = 1; in <= 30; ++in)
        for (long k = 1; k <= 4; ++k)
            for (long s = 1; s <= 4; ++s) {
                const long n = conv_extent(in, k, s, 0, 1);
                const bool covered = n > 0 && (n - 1) * s + k == in;
                BOOST_TEST(window_tiles(in, k, s, 0) == covered, "in " << in << " k " << k << " s " << s);
            }
}

BOOST_AUTO_TEST_CASE(transposed_extent_matches_scatter) {
    for (long in = 1; in <= 9; ++in)
        for (long k = 1; k <= 5; ++k)
            for (long s = 1; s <= 3; ++s)
                for (long d = 1; d <= 2; ++d)
                    for (long p = 0; p * 2 < d * (k - 1) + 1; ++p)
                        for (long op = 0; op < std::max(s, d); ++op)
                            BOOST_TEST(conv_transpose_extent(in, k, s, p, d, op) == scatter_extent(in, k, s, p, d, op));
}

BOOST_AUTO_TEST_CASE(derived_padding_reaches_the_wanted_extent) {
    int reachable = 0;
    for (long in = 1; in <= 12; ++in)
        for (long k = 1; k <= 6; ++k)
            for (long s = 1; s <= 4; ++s)
                for (long want = 1; want <= 40; ++want) {
                    const transpose_padding t = padding_for_extent(in, want, k, s, 1);
                    // Independent search over every legal (pad, output_pad).
                    bool exists = false;
                    for (long p = 0; p <= in * s + k && !exists; ++p)
                        for (long op = 0; op < s && !exists; ++op) exists = conv_transpose_extent(in, k, s, p, 1, op) == want;
                    BOOST_TEST(t.ok == exists, "in " << in << " k " << k << " s " << s << " want " << want);
                    if (t.ok) {
                        ++reachable;
                        BOOST_TEST(conv_transpose_extent(in, k, s, t.pad, 1, t.output_pad) == want);
                    }
                }
    BOOST_TEST(reachable > 100);
}
