/*
 * cref_vmath.h — the elementwise math and the vector-times-matrix product shared by
 * cref_mamba.c and cref_hawk.c (private header, not part of the API).
 *
 * exp_ps / log_ps are the Cephes-style polynomials of Sources/SSM/Core/VectorMath.swift
 * (exp8 / log8), operation for operation: the same constants, the same range
 * reduction, fmaf exactly where the Swift code calls addingProduct and separate
 * multiply/add elsewhere (build with -ffp-contract=off so the compiler does not fuse
 * more than Swift does). The results are therefore bit-identical to the Swift gates.
 * They are branch-free scalar functions; gcc/clang -O3 vectorize the loops that call
 * them (8 lanes with AVX2).
 */
#ifndef CREF_VMATH_H
#define CREF_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define CREF_INLINE static inline __attribute__((always_inline))

CREF_INLINE float bits_to_f(int32_t i) { float f; memcpy(&f, &i, 4); return f; }
CREF_INLINE int32_t f_to_bits(float f) { int32_t i; memcpy(&i, &f, 4); return i; }

/* e^x, x clamped to [−87.3, 88.72]. */
CREF_INLINE float exp_ps(float x0)
{
    const float magic = 12582912.0f;                  /* 1.5·2^23 */
    float x = x0 < -87.3f ? -87.3f : x0;
    x = x0 > 88.72f ? 88.72f : x;
    const float t = x * 1.44269504088896341f + magic;  /* round(x / ln 2) in the low mantissa bits */
    const float n = t - magic;
    float r = fmaf(n, -0.693359375f, x);                /* x − n·ln 2, Cody–Waite */
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float e = (p * (r * r)) + r + 1.0f;
    const int32_t k = f_to_bits(t) - 0x4B400000, k1 = k >> 1, k2 = k - k1;
    return e * bits_to_f((k1 + 127) << 23) * bits_to_f((k2 + 127) << 23);
}

/* ln x, x > 0 and finite. */
CREF_INLINE float log_ps(float x)
{
    const float magic = 12582912.0f;
    const uint32_t bits = (uint32_t)f_to_bits(x);
    const int32_t ei = (int32_t)(bits >> 23) - 126;
    float e = bits_to_f(ei + 0x4B400000) - magic;
    float m = bits_to_f((int32_t)((bits & 0x007FFFFFu) | 0x3F000000u));
    const int small = m < 0.707106781186547524f;
    e = small ? e - 1.0f : e;
    m = (small ? m + m : m) - 1.0f;
    const float z = m * m;
    float p = 7.0376836292e-2f;
    p = p * m - 1.1514610310e-1f;
    p = p * m + 1.1676998740e-1f;
    p = p * m - 1.2420140846e-1f;
    p = p * m + 1.4249322787e-1f;
    p = p * m - 1.6668057665e-1f;
    p = p * m + 2.0000714765e-1f;
    p = p * m - 2.4999993993e-1f;
    p = p * m + 3.3333331174e-1f;
    float y = p * m * z;
    y = fmaf(e, -2.12194440e-4f, y);
    y = y - z * 0.5f;
    const float sum = m + y;
    return fmaf(e, 0.693359375f, sum);
}

CREF_INLINE float sigmoid_ps(float x) { return 1.0f / (1.0f + exp_ps(-x)); }
CREF_INLINE float silu_ps(float x) { return x * sigmoid_ps(x); }

/* softplus(x) = max(x, 0) + log1p(e^−|x|), log1p(u) as log(w)·u/(w − 1), w = 1 + u. */
CREF_INLINE float softplus_ps(float x)
{
    const float ax = x < 0 ? -x : x;
    const float u = exp_ps(-ax), w = 1.0f + u;
    const float l = w == 1.0f ? u : log_ps(w) * u / (w - 1.0f);
    return (x < 0 ? 0.0f : x) + l;
}

/*
 * y[0..n) += Σ_{r<R} x[r] · W[r, 0..n)   (W row-major (R, n): a Linear stored transposed).
 * One axpy per input row over contiguous, independent outputs; four rows per pass so
 * each output is loaded and stored once per four FMAs. gcc/clang vectorize the inner loop.
 */
CREF_INLINE void vec_mat_acc(int R, int n, const float *__restrict__ x, const float *__restrict__ W,
                             float *__restrict__ y)
{
    int r = 0;
    for (; r + 4 <= R; r += 4) {
        const float x0 = x[r], x1 = x[r + 1], x2 = x[r + 2], x3 = x[r + 3];
        const float *__restrict__ w0 = W + (size_t)r * n;
        const float *__restrict__ w1 = w0 + n, *__restrict__ w2 = w1 + n, *__restrict__ w3 = w2 + n;
        for (int c = 0; c < n; c++) {
            float t = y[c];
            t = fmaf(x0, w0[c], t);
            t = fmaf(x1, w1[c], t);
            t = fmaf(x2, w2[c], t);
            t = fmaf(x3, w3[c], t);
            y[c] = t;
        }
    }
    for (; r < R; r++) {
        const float xr = x[r];
        const float *__restrict__ w = W + (size_t)r * n;
        for (int c = 0; c < n; c++) y[c] = fmaf(xr, w[c], y[c]);
    }
}

/* Causal depthwise conv step: hist (T, E), oldest row first, takes x as its newest row;
 * out[e] = b[e] + Σ_j w[j, e] · hist[j, e] (FMA in tap order, as CausalConv1D.swift). */
CREF_INLINE void conv_step(int T, int E, const float *__restrict__ w, const float *__restrict__ b,
                           float *__restrict__ hist, const float *x, float *out)
{
    if (T > 1) memmove(hist, hist + E, sizeof(float) * (size_t)(T - 1) * E);
    memcpy(hist + (size_t)(T - 1) * E, x, sizeof(float) * (size_t)E);
    for (int e = 0; e < E; e++) out[e] = b[e];
    for (int j = 0; j < T; j++) {
        const float *__restrict__ wj = w + (size_t)j * E, *__restrict__ hj = hist + (size_t)j * E;
        for (int e = 0; e < E; e++) out[e] = fmaf(wj[e], hj[e], out[e]);
    }
}

#endif /* CREF_VMATH_H */
