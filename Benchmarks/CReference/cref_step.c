/*
 * cref_step.c — one time step of the diagonal complex recurrence (see include/cref.h).
 *
 *   cref_step           engine layout; AVX2/FMA intrinsics when the compiler targets
 *                       AVX2+FMA (register-tiled or row-streaming, by layer size),
 *                       else cref_step_portable.
 *   cref_step_portable  engine layout; plain C loops over contiguous lanes.
 *   cref_step_dot       natural layout; strict-IEEE dot products (the slow baseline).
 *
 * Why the engine layout is fast: with B stored H×2P, the B·u product is H axpys,
 * each over 2P independent state lanes (broadcast u[h], FMA a contiguous row), and
 * with C stored 2P×H, C·x is 2P axpys over H independent output lanes. Nothing is
 * reduced across SIMD lanes, so no floating-point reassociation is needed to vectorize
 * it and every FMA chain is independent of the others.
 */
#include "cref.h"

#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define CREF_HAVE_AVX2 1
#endif

#define RESTRICT __restrict__

/* ------------------------------------------------------------------------- */
/* Portable path                                                             */
/* ------------------------------------------------------------------------- */

void cref_step_portable(int H, int P,
                        const float *RESTRICT lre, const float *RESTRICT lim,
                        const float *RESTRICT Bw, const float *RESTRICT Cw,
                        const float *RESTRICT D,
                        float *RESTRICT state, float *RESTRICT scratch,
                        const float *RESTRICT u, float *RESTRICT y)
{
    const int N = 2 * P;
    float *RESTRICT acc = scratch;              /* new state, [Re ; Im] */
    const float *RESTRICT xr = state, *RESTRICT xi = state + P;

    /* acc = λ ⊙ x  (complex multiply, lane-wise) */
    for (int p = 0; p < P; p++) {
        acc[p]     = lre[p] * xr[p] - lim[p] * xi[p];
        acc[P + p] = lre[p] * xi[p] + lim[p] * xr[p];
    }

    /* acc += B u : one axpy per input over 2P contiguous lanes. Four inputs per
     * pass so each acc lane is loaded/stored once per 4 FMAs instead of per FMA. */
    int h = 0;
    for (; h + 4 <= H; h += 4) {
        const float u0 = u[h], u1 = u[h + 1], u2 = u[h + 2], u3 = u[h + 3];
        const float *RESTRICT b0 = Bw + (size_t)h * N;
        const float *RESTRICT b1 = b0 + N, *RESTRICT b2 = b1 + N, *RESTRICT b3 = b2 + N;
        for (int i = 0; i < N; i++) {
            float t = acc[i];
            t += u0 * b0[i];
            t += u1 * b1[i];
            t += u2 * b2[i];
            t += u3 * b3[i];
            acc[i] = t;
        }
    }
    for (; h < H; h++) {
        const float uh = u[h];
        const float *RESTRICT b = Bw + (size_t)h * N;
        for (int i = 0; i < N; i++) acc[i] += uh * b[i];
    }
    memcpy(state, acc, (size_t)N * sizeof(float));

    /* y = D ⊙ u + Σ_r xcat[r] · Cw[r, :] : one axpy per state lane over H outputs. */
    for (int k = 0; k < H; k++) y[k] = D[k] * u[k];
    int r = 0;
    for (; r + 4 <= N; r += 4) {
        const float x0 = state[r], x1 = state[r + 1], x2 = state[r + 2], x3 = state[r + 3];
        const float *RESTRICT c0 = Cw + (size_t)r * H;
        const float *RESTRICT c1 = c0 + H, *RESTRICT c2 = c1 + H, *RESTRICT c3 = c2 + H;
        for (int k = 0; k < H; k++) {
            float t = y[k];
            t += x0 * c0[k];
            t += x1 * c1[k];
            t += x2 * c2[k];
            t += x3 * c3[k];
            y[k] = t;
        }
    }
    for (; r < N; r++) {
        const float xv = state[r];
        const float *RESTRICT c = Cw + (size_t)r * H;
        for (int k = 0; k < H; k++) y[k] += xv * c[k];
    }
}

/* ------------------------------------------------------------------------- */
/* AVX2 + FMA path                                                           */
/* ------------------------------------------------------------------------- */
/*
 * Two schedules, picked by the weight footprint (Bw + Cw = 16·P·H bytes):
 *
 *  - register-tiled (small layers, weights L1-resident): a tile of 32 state lanes
 *    (or 32 outputs) lives in 8 ymm accumulators for the whole loop over inputs
 *    (or states), so the state/output is loaded and stored once per step and the
 *    kernel is bound by FMA/load throughput.
 *  - row-streaming (larger layers): the weights no longer fit in L1 and the step
 *    is bound by how fast Bw and Cw stream from L2/L3 (every weight is used
 *    exactly once per step). Here it pays to read the weight matrices strictly
 *    sequentially, 8 consecutive rows per pass, accumulating into the 2P state
 *    (or H outputs) in L1. The tiled schedule instead walks every row in 128-byte
 *    pieces with a large stride, which the hardware prefetchers serve worse
 *    (≈1.5× slower at H = P = 256 on Zen 3).
 *
 * The crossover was measured on Zen 3 (32 KiB L1d): tiled wins clearly up to
 * H = P = 48 (36 KiB of weights), the two are even at 64 (64 KiB), streaming
 * wins above.
 */
#ifdef CREF_HAVE_AVX2

#define CREF_TILE_MAX_BYTES ((size_t)48 * 1024)
#define CREF_WEIGHT_BYTES(H, P) ((size_t)16 * (size_t)(P) * (size_t)(H))   /* Bw + Cw */

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* ---- register-tiled schedule ---- */

/*
 * State update for lanes [p0, p0 + 8K): K ymm accumulators for Re, K for Im,
 * held in registers across the whole loop over inputs h. K = 4 gives 8
 * independent FMA chains (enough to cover Zen 3's 4-cycle FMA latency at
 * 2 FMAs/cycle) and per 8 FMAs costs 1 broadcast + 8 row loads.
 * Reads only lanes p0.. of state before overwriting them, so in place is safe.
 */
ALWAYS_INLINE void tile_b(const int K, int H, int P, int p0,
                          const float *lre, const float *lim, const float *Bw,
                          float *state, const float *u)
{
    const int N = 2 * P;
    __m256 re[4], im[4];
#pragma GCC unroll 4
    for (int j = 0; j < K; j++) {
        const int p = p0 + 8 * j;
        const __m256 a = _mm256_loadu_ps(lre + p), b = _mm256_loadu_ps(lim + p);
        const __m256 xr = _mm256_loadu_ps(state + p), xi = _mm256_loadu_ps(state + P + p);
        re[j] = _mm256_fmsub_ps(a, xr, _mm256_mul_ps(b, xi));   /* Re(λx) */
        im[j] = _mm256_fmadd_ps(a, xi, _mm256_mul_ps(b, xr));   /* Im(λx) */
    }
    const float *row = Bw + p0;
    for (int h = 0; h < H; h++, row += N) {
        const __m256 uh = _mm256_broadcast_ss(u + h);
#pragma GCC unroll 4
        for (int j = 0; j < K; j++) {
            re[j] = _mm256_fmadd_ps(uh, _mm256_loadu_ps(row + 8 * j), re[j]);
            im[j] = _mm256_fmadd_ps(uh, _mm256_loadu_ps(row + P + 8 * j), im[j]);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < K; j++) {
        _mm256_storeu_ps(state + p0 + 8 * j, re[j]);
        _mm256_storeu_ps(state + P + p0 + 8 * j, im[j]);
    }
}

/*
 * Outputs [h0, h0 + 8K): two sets of K accumulators, one walking the Re rows of
 * Cw (r = p) and one the Im rows (r = P + p), summed at the end — again 8
 * independent chains for K = 4, 2 broadcasts + 8 loads per 8 FMAs.
 */
ALWAYS_INLINE void tile_c(const int K, int H, int P, int h0,
                          const float *Cw, const float *D,
                          const float *state, const float *u, float *y)
{
    __m256 ar[4], ai[4];
#pragma GCC unroll 4
    for (int j = 0; j < K; j++) {
        const int h = h0 + 8 * j;
        ar[j] = _mm256_mul_ps(_mm256_loadu_ps(D + h), _mm256_loadu_ps(u + h));
        ai[j] = _mm256_setzero_ps();
    }
    const float *rowr = Cw + h0, *rowi = Cw + (size_t)P * H + h0;
    for (int p = 0; p < P; p++, rowr += H, rowi += H) {
        const __m256 xr = _mm256_broadcast_ss(state + p);
        const __m256 xi = _mm256_broadcast_ss(state + P + p);
#pragma GCC unroll 4
        for (int j = 0; j < K; j++) {
            ar[j] = _mm256_fmadd_ps(xr, _mm256_loadu_ps(rowr + 8 * j), ar[j]);
            ai[j] = _mm256_fmadd_ps(xi, _mm256_loadu_ps(rowi + 8 * j), ai[j]);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < K; j++)
        _mm256_storeu_ps(y + h0 + 8 * j, _mm256_add_ps(ar[j], ai[j]));
}

static void step_tiled(int H, int P,
                       const float *RESTRICT lre, const float *RESTRICT lim,
                       const float *RESTRICT Bw, const float *RESTRICT Cw,
                       const float *RESTRICT D, float *RESTRICT state,
                       const float *RESTRICT u, float *RESTRICT y)
{
    const int N = 2 * P;

    /* x = λ ⊙ x + B u, in tiles of 32 / 16 / 8 lanes, scalar tail. */
    int p = 0;
    for (; p + 32 <= P; p += 32) tile_b(4, H, P, p, lre, lim, Bw, state, u);
    if (p + 16 <= P) { tile_b(2, H, P, p, lre, lim, Bw, state, u); p += 16; }
    if (p + 8 <= P)  { tile_b(1, H, P, p, lre, lim, Bw, state, u); p += 8; }
    for (; p < P; p++) {
        const float xr = state[p], xi = state[P + p];
        float re = lre[p] * xr - lim[p] * xi;
        float im = lre[p] * xi + lim[p] * xr;
        for (int h = 0; h < H; h++) {
            re += u[h] * Bw[(size_t)h * N + p];
            im += u[h] * Bw[(size_t)h * N + P + p];
        }
        state[p] = re;
        state[P + p] = im;
    }

    /* y = D ⊙ u + Σ_r xcat[r] Cw[r, :], in tiles of 32 / 16 / 8 outputs. */
    int h = 0;
    for (; h + 32 <= H; h += 32) tile_c(4, H, P, h, Cw, D, state, u, y);
    if (h + 16 <= H) { tile_c(2, H, P, h, Cw, D, state, u, y); h += 16; }
    if (h + 8 <= H)  { tile_c(1, H, P, h, Cw, D, state, u, y); h += 8; }
    for (; h < H; h++) {
        float acc = D[h] * u[h];
        for (int r = 0; r < N; r++) acc += state[r] * Cw[(size_t)r * H + h];
        y[h] = acc;
    }
}

/* ---- row-streaming schedule ---- */

/*
 * acc[0..n) += Σ_{j<8} c[j] · row_j[0..n), row_j = r0 + j·n (8 consecutive rows
 * of a row-major n-wide matrix, i.e. one contiguous 8n-float block).
 * Two partial sums (rows 0–3, rows 4–7) halve the dependent FMA chain.
 */
ALWAYS_INLINE void axpy8(int n, const float *RESTRICT c, const float *RESTRICT r0,
                         float *RESTRICT acc)
{
    const size_t ld = (size_t)n;
    const __m256 c0 = _mm256_broadcast_ss(c + 0), c1 = _mm256_broadcast_ss(c + 1),
                 c2 = _mm256_broadcast_ss(c + 2), c3 = _mm256_broadcast_ss(c + 3),
                 c4 = _mm256_broadcast_ss(c + 4), c5 = _mm256_broadcast_ss(c + 5),
                 c6 = _mm256_broadcast_ss(c + 6), c7 = _mm256_broadcast_ss(c + 7);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const float *q = r0 + i;
        __m256 s0 = _mm256_fmadd_ps(c0, _mm256_loadu_ps(q), _mm256_loadu_ps(acc + i));
        __m256 s1 = _mm256_mul_ps(c4, _mm256_loadu_ps(q + 4 * ld));
        s0 = _mm256_fmadd_ps(c1, _mm256_loadu_ps(q + 1 * ld), s0);
        s1 = _mm256_fmadd_ps(c5, _mm256_loadu_ps(q + 5 * ld), s1);
        s0 = _mm256_fmadd_ps(c2, _mm256_loadu_ps(q + 2 * ld), s0);
        s1 = _mm256_fmadd_ps(c6, _mm256_loadu_ps(q + 6 * ld), s1);
        s0 = _mm256_fmadd_ps(c3, _mm256_loadu_ps(q + 3 * ld), s0);
        s1 = _mm256_fmadd_ps(c7, _mm256_loadu_ps(q + 7 * ld), s1);
        _mm256_storeu_ps(acc + i, _mm256_add_ps(s0, s1));
    }
    for (; i < n; i++) {
        float t = acc[i];
        for (int j = 0; j < 8; j++) t += c[j] * r0[j * ld + i];
        acc[i] = t;
    }
}

/* acc[0..n) += c · row[0..n) (leftover rows). */
ALWAYS_INLINE void axpy1(int n, float c, const float *RESTRICT row, float *RESTRICT acc)
{
    for (int i = 0; i < n; i++) acc[i] += c * row[i];
}

static void step_streaming(int H, int P,
                           const float *RESTRICT lre, const float *RESTRICT lim,
                           const float *RESTRICT Bw, const float *RESTRICT Cw,
                           const float *RESTRICT D, float *RESTRICT state,
                           const float *RESTRICT u, float *RESTRICT y)
{
    const int N = 2 * P;

    /* x = λ ⊙ x (in place, lane-wise; gcc vectorizes this loop). */
    for (int p = 0; p < P; p++) {
        const float xr = state[p], xi = state[P + p];
        state[p]     = lre[p] * xr - lim[p] * xi;
        state[P + p] = lre[p] * xi + lim[p] * xr;
    }
    /* x += B u : Bw read front to back, 8 rows (inputs) per pass. */
    int h = 0;
    for (; h + 8 <= H; h += 8) axpy8(N, u + h, Bw + (size_t)h * N, state);
    for (; h < H; h++) axpy1(N, u[h], Bw + (size_t)h * N, state);

    /* y = D ⊙ u + Σ_r xcat[r] Cw[r, :] : Cw read front to back, 8 rows per pass. */
    for (int k = 0; k < H; k++) y[k] = D[k] * u[k];
    int r = 0;
    for (; r + 8 <= N; r += 8) axpy8(H, state + r, Cw + (size_t)r * H, y);
    for (; r < N; r++) axpy1(H, state[r], Cw + (size_t)r * H, y);
}
#endif /* CREF_HAVE_AVX2 */

const char *cref_step_path(int H, int P)
{
#ifdef CREF_HAVE_AVX2
    return CREF_WEIGHT_BYTES(H, P) <= CREF_TILE_MAX_BYTES ? "avx2-tiled" : "avx2-streaming";
#else
    (void)H; (void)P;
    return "portable";
#endif
}

void cref_step(int H, int P,
               const float *lre, const float *lim,
               const float *Bw, const float *Cw, const float *D,
               float *state, float *scratch, const float *u, float *y)
{
#ifdef CREF_HAVE_AVX2
    (void)scratch;
    if (CREF_WEIGHT_BYTES(H, P) <= CREF_TILE_MAX_BYTES)
        step_tiled(H, P, lre, lim, Bw, Cw, D, state, u, y);
    else
        step_streaming(H, P, lre, lim, Bw, Cw, D, state, u, y);
#else
    cref_step_portable(H, P, lre, lim, Bw, Cw, D, state, scratch, u, y);
#endif
}

/* ------------------------------------------------------------------------- */
/* Naive baseline: strict-IEEE dot products in the natural layout            */
/* ------------------------------------------------------------------------- */

/*
 * Each state lane is a dot product over h of a row of B (P×H) with u, and each
 * output a dot product over p of a row of C (H×P) with x. Without -ffast-math the
 * compiler must keep each sum in source order, so every reduction is one serial
 * add/FMA chain, bound by FP latency rather than throughput (gcc may vectorize the
 * products of the C loop, but still has to add them one lane at a time, in order).
 */
void cref_step_dot(int H, int P, float s,
                   const float *RESTRICT lre, const float *RESTRICT lim,
                   const float *RESTRICT Bre, const float *RESTRICT Bim,
                   const float *RESTRICT Cre, const float *RESTRICT Cim,
                   const float *RESTRICT D, float *RESTRICT state,
                   const float *RESTRICT u, float *RESTRICT y)
{
    float *xr = state, *xi = state + P;
    for (int p = 0; p < P; p++) {
        float br = 0.0f, bi = 0.0f;                      /* (B u)[p] */
        for (int h = 0; h < H; h++) {
            br += Bre[(size_t)p * H + h] * u[h];
            bi += Bim[(size_t)p * H + h] * u[h];
        }
        const float r = lre[p] * xr[p] - lim[p] * xi[p] + br;
        const float i = lre[p] * xi[p] + lim[p] * xr[p] + bi;
        xr[p] = r;
        xi[p] = i;
    }
    for (int h = 0; h < H; h++) {
        float acc = 0.0f;                                /* Re (C x)[h] */
        for (int p = 0; p < P; p++)
            acc += Cre[(size_t)h * P + p] * xr[p] - Cim[(size_t)h * P + p] * xi[p];
        y[h] = s * acc + D[h] * u[h];
    }
}
