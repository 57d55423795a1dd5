/* The two schedules of a vector times a weight matrix that is too large for L1, in C, over the
 * matrices of the 4-layer S5 stack of H = P = 256 (per layer B̃ (256, 512) and C (512, 256)), the
 * f16 bar's model: row by row (vecMat's row-streaming schedule: 8 rows per pass, out loaded and
 * stored per 64 weights) and in strips of 64 columns (StripMatrix: 8 accumulators across all rows,
 * weights read in order), with float32 and float16 (F16C) weights. Prints µs per sample (all eight
 * matrices once) and weights per second. Build and run (README, "Half-precision weights"):
 *   cc -O2 -march=native Benchmarks/streams/schedules.c -o schedules && ./schedules */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
enum { MATRICES = 8 };
static const int ROWS[MATRICES] = {256, 512, 256, 512, 256, 512, 256, 512};
static const int COLUMNS[MATRICES] = {512, 256, 512, 256, 512, 256, 512, 256};

static inline __m256 load_h(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline __m256 load_f(const float *p) { return _mm256_loadu_ps(p); }

/* Row by row: out (n) = x (R) · W (R, n) row-major, 8 rows per pass, two partial sums. */
#define ROWWISE(NAME, T, LOAD)                                                                      \
    static void NAME(const float *x, int R, const T *W, int n, float *out) {                        \
        memset(out, 0, n * sizeof(float));                                                          \
        for (int r = 0; r < R; r += 8) {                                                            \
            const T *w = W + (size_t)r * n;                                                         \
            __m256 s[8];                                                                            \
            for (int j = 0; j < 8; j++) s[j] = _mm256_set1_ps(x[r + j]);                            \
            for (int c = 0; c < n; c += 8) {                                                        \
                __m256 a = _mm256_fmadd_ps(s[0], LOAD(w + c), _mm256_loadu_ps(out + c));            \
                __m256 b = _mm256_mul_ps(s[4], LOAD(w + 4 * n + c));                                \
                a = _mm256_fmadd_ps(s[1], LOAD(w + n + c), a);                                      \
                b = _mm256_fmadd_ps(s[5], LOAD(w + 5 * n + c), b);                                  \
                a = _mm256_fmadd_ps(s[2], LOAD(w + 2 * n + c), a);                                  \
                b = _mm256_fmadd_ps(s[6], LOAD(w + 6 * n + c), b);                                  \
                a = _mm256_fmadd_ps(s[3], LOAD(w + 3 * n + c), a);                                  \
                b = _mm256_fmadd_ps(s[7], LOAD(w + 7 * n + c), b);                                  \
                _mm256_storeu_ps(out + c, _mm256_add_ps(a, b));                                     \
            }                                                                                       \
        }                                                                                           \
    }
/* In strips: W stored as strips of 64 columns, each (R, 64) row-major; 8 accumulators per strip. */
#define STRIPS(NAME, T, LOAD)                                                                       \
    static void NAME(const float *x, int R, const T *W, int n, float *out) {                        \
        for (int c = 0; c < n; c += 64) {                                                           \
            const T *w = W + (size_t)c * R;                                                         \
            __m256 a[8];                                                                            \
            for (int j = 0; j < 8; j++) a[j] = _mm256_setzero_ps();                                 \
            for (int r = 0; r < R; r++, w += 64) {                                                  \
                __m256 s = _mm256_set1_ps(x[r]);                                                    \
                a[0] = _mm256_fmadd_ps(s, LOAD(w), a[0]); a[1] = _mm256_fmadd_ps(s, LOAD(w + 8), a[1]);   \
                a[2] = _mm256_fmadd_ps(s, LOAD(w + 16), a[2]); a[3] = _mm256_fmadd_ps(s, LOAD(w + 24), a[3]); \
                a[4] = _mm256_fmadd_ps(s, LOAD(w + 32), a[4]); a[5] = _mm256_fmadd_ps(s, LOAD(w + 40), a[5]); \
                a[6] = _mm256_fmadd_ps(s, LOAD(w + 48), a[6]); a[7] = _mm256_fmadd_ps(s, LOAD(w + 56), a[7]); \
            }                                                                                       \
            for (int j = 0; j < 8; j++) _mm256_storeu_ps(out + c + 8 * j, a[j]);                    \
        }                                                                                           \
    }
ROWWISE(rows_f32, float, load_f)
ROWWISE(rows_f16, uint16_t, load_h)
STRIPS(strips_f32, float, load_f)
STRIPS(strips_f16, uint16_t, load_h)

int main(void) {
    static float x[512], out[512];
    float *wf[MATRICES];
    uint16_t *wh[MATRICES];
    size_t total = 0;
    for (int i = 0; i < 512; i++) x[i] = 0.01f * (i % 13);
    for (int m = 0; m < MATRICES; m++) {
        size_t k = (size_t)ROWS[m] * COLUMNS[m];
        total += k;
        wf[m] = aligned_alloc(64, k * 4);
        wh[m] = aligned_alloc(64, k * 2);
        for (size_t i = 0; i < k; i++) { wf[m][i] = 1e-3f * (i % 5); wh[m][i] = 0x1c00 + (i % 5); }
    }
    const int samples = 20000;
    for (int round = 0; round < 3; round++) {
#define TIME(LABEL, FN, W)                                                                          \
        {                                                                                           \
            double t = cpu_seconds();                                                               \
            for (int k = 0; k < samples; k++)                                                       \
                for (int m = 0; m < MATRICES; m++) FN(x, ROWS[m], W[m], COLUMNS[m], out);           \
            t = cpu_seconds() - t;                                                                  \
            printf("%-18s %6.1f us per sample  %5.1f G weights/s\n", LABEL, t / samples * 1e6,       \
                   total * samples / t / 1e9);                                                      \
        }
        TIME("f32 row by row", rows_f32, wf)
        TIME("f32 in strips", strips_f32, wf)
        TIME("f16 row by row", rows_f16, wh)
        TIME("f16 in strips", strips_f16, wh)
    }
    return 0;
}
