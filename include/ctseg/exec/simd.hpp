// Portable short-vector helpers and the scalar form of the epilogue, shared by
// the kernels. Vectors are GCC/clang vector extensions; on x86 with AVX-512 or
// AVX2+FMA the native register types and fused multiply-add are used.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "ctseg/exec/geometry.hpp"

#if defined(__AVX512F__) || defined(__AVX__) || defined(__FMA__)
#include <immintrin.h>
#endif

namespace ctseg::exec::detail {

// simd<T>: V (vector type), lanes, registers (architectural vector registers),
// load/store (unaligned), splat, fma(a, b, c) = a * b + c, pin(v) (keeps v in a
// register, so that a loaded value is not re-read as a memory operand).
template <class T>
struct simd {
    using V = T;
    static constexpr int lanes = 1;
    static constexpr int registers = 16;
    static V load(const T* p) { return *p; }
    static void store(T* p, V v) { *p = v; }
    static V splat(T s) { return s; }
    static V fma(V a, V b, V c) { return a * b + c; }
    static void pin(V&) {}
};

#if defined(__AVX512F__)
template <>
struct simd<float> {
    using V = __m512;
    static constexpr int lanes = 16;
    static constexpr int registers = 32;
    static V load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    static V splat(float s) { return _mm512_set1_ps(s); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static void pin(V& v) { __asm__("" : "+v"(v)); }
};
template <>
struct simd<double> {
    using V = __m512d;
    static constexpr int lanes = 8;
    static constexpr int registers = 32;
    static V load(const double* p) { return _mm512_loadu_pd(p); }
    static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
    static V splat(double s) { return _mm512_set1_pd(s); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
    static void pin(V& v) { __asm__("" : "+v"(v)); }
};
#elif defined(__AVX__)
template <>
struct simd<float> {
    using V = __m256;
    static constexpr int lanes = 8;
    static constexpr int registers = 16;
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    static V splat(float s) { return _mm256_set1_ps(s); }
#if defined(__FMA__)
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
#else
    static V fma(V a, V b, V c) { return _mm256_add_ps(_mm256_mul_ps(a, b), c); }
#endif
    static void pin(V& v) { __asm__("" : "+x"(v)); }
};
template <>
struct simd<double> {
    using V = __m256d;
    static constexpr int lanes = 4;
    static constexpr int registers = 16;
    static V load(const double* p) { return _mm256_loadu_pd(p); }
    static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
    static V splat(double s) { return _mm256_set1_pd(s); }
#if defined(__FMA__)
    static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
#else
    static V fma(V a, V b, V c) { return _mm256_add_pd(_mm256_mul_pd(a, b), c); }
#endif
    static void pin(V& v) { __asm__("" : "+x"(v)); }
};
#else
// Generic 16-byte vectors: lowered by the compiler to whatever the target has.
template <>
struct simd<float> {
    typedef float V __attribute__((vector_size(16)));
    static constexpr int lanes = 4;
    static constexpr int registers = 16;
    static V load(const float* p) { V v; std::memcpy(&v, p, sizeof v); return v; }
    static void store(float* p, V v) { std::memcpy(p, &v, sizeof v); }
    static V splat(float s) { return V{s, s, s, s}; }
    static V fma(V a, V b, V c) { return a * b + c; }
    static void pin(V&) {}
};
template <>
struct simd<double> {
    typedef double V __attribute__((vector_size(16)));
    static constexpr int lanes = 2;
    static constexpr int registers = 16;
    static V load(const double* p) { V v; std::memcpy(&v, p, sizeof v); return v; }
    static void store(double* p, V v) { std::memcpy(p, &v, sizeof v); }
    static V splat(double s) { return V{s, s}; }
    static V fma(V a, V b, V c) { return a * b + c; }
    static void pin(V&) {}
};
#endif

// lo, hi = the lanes of a and b interleaved (a0 b0 a1 b1 ...), lo the first
// simd<T>::lanes of them: two vectors whose lanes are neighbours in memory, e.g. the
// two stride residues of a transposed convolution's output row.
template <class T, class S = simd<T>>
inline void interleave(typename S::V a, typename S::V b, typename S::V& lo, typename S::V& hi) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float> && S::lanes == 16) {  // __m512
        lo = _mm512_permutex2var_ps(a, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), b);
        hi = _mm512_permutex2var_ps(a, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), b);
        return;
    }
#elif defined(__AVX__)
    if constexpr (std::is_same_v<T, float> && S::lanes == 8) {  // __m256
        const __m256 l = _mm256_unpacklo_ps(a, b), h = _mm256_unpackhi_ps(a, b);  // per 128-bit half
        lo = _mm256_permute2f128_ps(l, h, 0x20);
        hi = _mm256_permute2f128_ps(l, h, 0x31);
        return;
    }
#endif
    constexpr int L = S::lanes;
    T x[L], y[L], z[2 * L];
    S::store(x, a);
    S::store(y, b);
    for (int i = 0; i < L; ++i) {
        z[2 * i] = x[i];
        z[2 * i + 1] = y[i];
    }
    lo = S::load(z);
    hi = S::load(z + L);
}

// The epilogue for one output channel of one sample, in scalar form.
template <class T>
struct channel_epilogue {
    T bias = T(0);
    activation act = activation::none;
    T slope = T(0);
    const T* residual = nullptr;  // residual plane for this channel, or null

    T operator()(T acc, index_t pos) const {
        T y = acc + bias;
        switch (act) {
            case activation::none: break;
            case activation::relu: y = y < T(0) ? T(0) : y; break;  // NaN stays NaN, as in PyTorch
            case activation::leaky_relu:
            case activation::prelu: y = y >= T(0) ? y : y * slope; break;
        }
        if (residual) y += residual[pos];
        return y;
    }

    // out[i] = ep(acc[i]) for i < count; positions pos0 + i (contiguous). Each
    // residual element is read before its output is written, so the residual
    // may be the output itself.
    void apply(const T* acc, T* out, index_t count, index_t pos0) const {
        if (residual) apply_with(acc, out, count, [r = residual + pos0](index_t i, T a) { return a + r[i]; });
        else apply_with(acc, out, count, [](index_t, T a) { return a; });
    }

    // The same on one vector of S (simd<T>) at `residual_at`, the residual
    // elements of these outputs (ignored without a residual).
    template <class S>
    typename S::V vector(typename S::V acc, const T* residual_at) const {
        using V = typename S::V;
        V y = acc + S::splat(bias);
        switch (act) {
            case activation::none: break;
            case activation::relu: y = y < S::splat(T(0)) ? S::splat(T(0)) : y; break;
            case activation::leaky_relu:
            case activation::prelu: y = y >= S::splat(T(0)) ? y : y * S::splat(slope); break;
        }
        if (residual) y += S::load(residual_at);
        return y;
    }

private:
    // One loop per (activation, residual) pair, so that each vectorises.
    template <class Add>
    void apply_with(const T* acc, T* out, index_t count, Add add) const {
        const T b = bias, s = slope;
        switch (act) {
            case activation::none:
                for (index_t i = 0; i < count; ++i) out[i] = add(i, acc[i] + b);
                break;
            case activation::relu:
                for (index_t i = 0; i < count; ++i) {
                    const T y = acc[i] + b;
                    out[i] = add(i, y < T(0) ? T(0) : y);
                }
                break;
            case activation::leaky_relu:
            case activation::prelu:
                for (index_t i = 0; i < count; ++i) {
                    const T y = acc[i] + b;
                    out[i] = add(i, y >= T(0) ? y : y * s);
                }
                break;
        }
    }
};

template <class T, std::size_t R>
channel_epilogue<T> make_channel_epilogue(const epilogue<T, R>& ep, index_t n, index_t c, index_t plane) {
    channel_epilogue<T> ce;
    ce.bias = ep.bias ? ep.bias[c] : T(0);
    ce.act = ep.act;
    ce.slope = ep.act == activation::prelu ? (ep.prelu_slope ? ep.prelu_slope[c] : T(0)) : ep.slope;
    if (ep.residual) {
        const index_t period = ep.residual_channels > 0 ? ep.residual_channels : 1;
        ce.residual = ep.residual + n * ep.residual_batch_stride + (ep.residual_offset + c % period) * plane;
    }
    return ce;
}

}  // namespace ctseg::exec::detail
