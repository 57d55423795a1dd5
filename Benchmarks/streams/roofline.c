/* What one core of this machine can do at most, for issue 13's bars (Benchmarks/streams/ceilings.sh
 * runs it): the rate of fused multiply-adds (12 independent 8-lane chains), and the rate at which a
 * vector-times-matrix product takes in float32 and float16 (F16C) weights read strictly in order
 * from a buffer of a given size (8 accumulators in registers, one broadcast input). Prints
 * "key value" lines. Build: cc -O2 -march=native roofline.c -o roofline */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static volatile float sink;

/* FLOP/s: 12 independent chains of 8-lane FMAs (written out, so that they stay in registers), two
 * FLOPs per lane. */
static double fma_flops(void) {
    __m256 b = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps(0.00f), a1 = _mm256_set1_ps(0.01f), a2 = _mm256_set1_ps(0.02f), a3 = _mm256_set1_ps(0.03f);
    __m256 a4 = _mm256_set1_ps(0.04f), a5 = _mm256_set1_ps(0.05f), a6 = _mm256_set1_ps(0.06f), a7 = _mm256_set1_ps(0.07f);
    __m256 a8 = _mm256_set1_ps(0.08f), a9 = _mm256_set1_ps(0.09f), a10 = _mm256_set1_ps(0.10f), a11 = _mm256_set1_ps(0.11f);
    long n = 50000000;
    double t = cpu_seconds();
    for (long k = 0; k < n; k++) {
        a0 = _mm256_fmadd_ps(a0, b, c); a1 = _mm256_fmadd_ps(a1, b, c); a2 = _mm256_fmadd_ps(a2, b, c);
        a3 = _mm256_fmadd_ps(a3, b, c); a4 = _mm256_fmadd_ps(a4, b, c); a5 = _mm256_fmadd_ps(a5, b, c);
        a6 = _mm256_fmadd_ps(a6, b, c); a7 = _mm256_fmadd_ps(a7, b, c); a8 = _mm256_fmadd_ps(a8, b, c);
        a9 = _mm256_fmadd_ps(a9, b, c); a10 = _mm256_fmadd_ps(a10, b, c); a11 = _mm256_fmadd_ps(a11, b, c);
    }
    t = cpu_seconds() - t;
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    sink = s[0];
    return n * 12.0 * 8 * 2 / t;
}

/* Eight accumulators over 64 consecutive weights, LOAD(p) giving 8 of them as floats. */
#define EIGHT(LOAD, w)                                                                           \
    a0 = _mm256_fmadd_ps(LOAD(w), x, a0); a1 = _mm256_fmadd_ps(LOAD(w + 8), x, a1);               \
    a2 = _mm256_fmadd_ps(LOAD(w + 16), x, a2); a3 = _mm256_fmadd_ps(LOAD(w + 24), x, a3);         \
    a4 = _mm256_fmadd_ps(LOAD(w + 32), x, a4); a5 = _mm256_fmadd_ps(LOAD(w + 40), x, a5);         \
    a6 = _mm256_fmadd_ps(LOAD(w + 48), x, a6); a7 = _mm256_fmadd_ps(LOAD(w + 56), x, a7);
#define LOAD_F32(p) _mm256_load_ps(p)
#define LOAD_F16(p) _mm256_cvtph_ps(_mm_load_si128((const __m128i *)(p)))

/* Weights per second through y += w · x over `count` weights (float32 or float16), read in order. */
static double weights_per_second(size_t count, int half) {
    float *wf = half ? NULL : aligned_alloc(64, count * 4);
    uint16_t *wh = half ? aligned_alloc(64, count * 2) : NULL;
    for (size_t i = 0; i < count; i++) {
        if (half) wh[i] = 0x1c00 + (i % 7);
        else wf[i] = (i % 7) * 1e-3f;
    }
    __m256 x = _mm256_set1_ps(0.5f), a0, a1, a2, a3, a4, a5, a6, a7;
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = _mm256_setzero_ps();
    long reps = (long)(4e9 / count) + 1;
    double t = cpu_seconds();
    for (long r = 0; r < reps; r++) {
        if (half) { for (size_t i = 0; i < count; i += 64) { EIGHT(LOAD_F16, wh + i) } }
        else { for (size_t i = 0; i < count; i += 64) { EIGHT(LOAD_F32, wf + i) } }
    }
    t = cpu_seconds() - t;
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    sink = s[0];
    free(wf); free(wh);
    return reps * (double)count / t;
}

int main(void) {
    printf("fma_gflops %.1f\n", fma_flops() / 1e9);
    /* As many weights as 16 KiB (L1), 256 KiB, 1 MiB and 4 MiB of float32 hold. */
    size_t kib[] = {16, 256, 1024, 4096};
    for (int i = 0; i < 4; i++) {
        size_t count = kib[i] * 1024 / 4;
        printf("weights_%zu f32_gweights_per_s %.1f f16_gweights_per_s %.1f\n", count,
               weights_per_second(count, 0) / 1e9, weights_per_second(count, 1) / 1e9);
    }
    return 0;
}
