/*
 * bench_main.c — correctness check + timing harness for the C reference kernels.
 * Built by the Makefile; not part of any SwiftPM target (exclude it there).
 *
 *   ./cref_bench [L] [reps]        defaults: L = 256, reps = 15
 *
 * 1. Correctness: for several (H, P), including sizes that exercise every SIMD
 *    tail path, run L samples from a random initial state through
 *      - a double-precision naive reference,
 *      - cref_step (L calls), cref_step_portable, cref_step_dot,
 *      - cref_block (one call of L, and two calls with the state carried across),
 *    and require every f32 result to match the reference and each other to a
 *    relative error ≤ 1e-4. Relative error = max |a − b| / max |ref| over all
 *    L×H outputs (and, separately, over the final 2P state).
 * 2. Timing at (H, P) = (16,16), (64,64), (256,256): ns per sample is the median
 *    over `reps` repetitions, each running the L-sample sequence enough times to
 *    last ≥ 2 ms (CLOCK_MONOTONIC); reps are interleaved across kernels. OpenBLAS
 *    is pinned to one thread.
 *    GFLOP/s uses 8·P·H + 6·P + 2·H flops per sample for every kernel.
 */
#define _POSIX_C_SOURCE 200809L
#include "cref.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef CREF_TOL
#define CREF_TOL 1e-4   /* max relative error accepted by the check */
#endif
#define TOL CREF_TOL
#define PI 3.14159265358979323846

/* ---------------------------------------------------------------- utilities */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void) {                       /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_uniform(void) { return (rng_next() >> 11) * 0x1.0p-53; }  /* [0,1) */
static double rng_normal(void) {                       /* Box–Muller */
    double a = rng_uniform(), b = rng_uniform();
    return sqrt(-2.0 * log(a + 1e-300)) * cos(2.0 * PI * b);
}

static float *falloc(size_t n) {
    size_t bytes = ((n * sizeof(float)) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) { perror("aligned_alloc"); exit(2); }
    memset(p, 0, bytes);
    return p;
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------- layer */

typedef struct {
    int H, P;
    float s;
    float *lre, *lim, *D;
    float *Bre, *Bim, *Cre, *Cim;   /* natural layout: B P×H, C H×P (for cref_step_dot) */
    float *Bw, *Cw;                 /* engine layout:  Bw H×2P, Cw 2P×H */
} Layer;

static Layer make_layer(int H, int P, float s) {
    Layer W = { .H = H, .P = P, .s = s };
    W.lre = falloc(P); W.lim = falloc(P); W.D = falloc(H);
    W.Bre = falloc((size_t)P * H); W.Bim = falloc((size_t)P * H);
    W.Cre = falloc((size_t)H * P); W.Cim = falloc((size_t)H * P);
    W.Bw = falloc((size_t)H * 2 * P); W.Cw = falloc((size_t)2 * P * H);

    for (int p = 0; p < P; p++) {                 /* λ = r e^{iθ}, r ∈ [0.9, 0.999] */
        double r = 0.9 + 0.099 * rng_uniform(), th = PI * rng_uniform();
        W.lre[p] = (float)(r * cos(th));
        W.lim[p] = (float)(r * sin(th));
    }
    const double bs = 1.0 / sqrt(2.0 * H), cs = 1.0 / sqrt((double)P);
    for (size_t i = 0; i < (size_t)P * H; i++) {
        W.Bre[i] = (float)(bs * rng_normal()); W.Bim[i] = (float)(bs * rng_normal());
        W.Cre[i] = (float)(cs * rng_normal()); W.Cim[i] = (float)(cs * rng_normal());
    }
    for (int h = 0; h < H; h++) W.D[h] = (float)rng_normal();

    /* Engine layout (see cref.h). */
    const int N = 2 * P;
    for (int h = 0; h < H; h++)
        for (int p = 0; p < P; p++) {
            W.Bw[(size_t)h * N + p]     = W.Bre[(size_t)p * H + h];
            W.Bw[(size_t)h * N + P + p] = W.Bim[(size_t)p * H + h];
            W.Cw[(size_t)p * H + h]       =  s * W.Cre[(size_t)h * P + p];
            W.Cw[(size_t)(P + p) * H + h] = -s * W.Cim[(size_t)h * P + p];
        }
    return W;
}

static void free_layer(Layer *W) {
    free(W->lre); free(W->lim); free(W->D); free(W->Bre); free(W->Bim);
    free(W->Cre); free(W->Cim); free(W->Bw); free(W->Cw);
}

/* Double-precision naive reference over L samples (natural layout). */
static void reference(const Layer *W, int L, const float *state0, const float *U,
                      double *Y, double *state_out) {
    const int H = W->H, P = W->P;
    double *xr = malloc(sizeof(double) * P), *xi = malloc(sizeof(double) * P);
    for (int p = 0; p < P; p++) { xr[p] = state0[p]; xi[p] = state0[P + p]; }
    for (int k = 0; k < L; k++) {
        const float *u = U + (size_t)k * H;
        for (int p = 0; p < P; p++) {
            double br = 0, bi = 0;
            for (int h = 0; h < H; h++) {
                br += (double)W->Bre[(size_t)p * H + h] * u[h];
                bi += (double)W->Bim[(size_t)p * H + h] * u[h];
            }
            double r = W->lre[p] * xr[p] - (double)W->lim[p] * xi[p] + br;
            double i = W->lre[p] * xi[p] + (double)W->lim[p] * xr[p] + bi;
            xr[p] = r; xi[p] = i;
        }
        for (int h = 0; h < H; h++) {
            double acc = 0;
            for (int p = 0; p < P; p++)
                acc += (double)W->Cre[(size_t)h * P + p] * xr[p]
                     - (double)W->Cim[(size_t)h * P + p] * xi[p];
            Y[(size_t)k * H + h] = W->s * acc + (double)W->D[h] * u[h];
        }
    }
    for (int p = 0; p < P; p++) { state_out[p] = xr[p]; state_out[P + p] = xi[p]; }
    free(xr); free(xi);
}

/* ------------------------------------------------------------------ kernels */

enum { K_STEP, K_PORTABLE, K_DOT, K_BLOCK, K_COUNT };
static const char *kname[K_COUNT] = { "cref_step", "cref_step_portable", "cref_step_dot", "cref_block" };

typedef struct { float *state, *scratch, *X; } Work;

/* Run L samples U → Y through kernel `k`, carrying `w->state`. */
static void run(int k, const Layer *W, Work *w, int L, const float *U, float *Y) {
    const int H = W->H, P = W->P;
    switch (k) {
    case K_STEP:
        for (int t = 0; t < L; t++)
            cref_step(H, P, W->lre, W->lim, W->Bw, W->Cw, W->D, w->state, w->scratch,
                      U + (size_t)t * H, Y + (size_t)t * H);
        break;
    case K_PORTABLE:
        for (int t = 0; t < L; t++)
            cref_step_portable(H, P, W->lre, W->lim, W->Bw, W->Cw, W->D, w->state, w->scratch,
                               U + (size_t)t * H, Y + (size_t)t * H);
        break;
    case K_DOT:
        for (int t = 0; t < L; t++)
            cref_step_dot(H, P, W->s, W->lre, W->lim, W->Bre, W->Bim, W->Cre, W->Cim, W->D,
                          w->state, U + (size_t)t * H, Y + (size_t)t * H);
        break;
    case K_BLOCK:
        cref_block(H, P, L, W->lre, W->lim, W->Bw, W->Cw, W->D, w->state, w->X, U, Y);
        break;
    }
}

/* max |a − b| / max |ref| */
static double rel_err_f(const float *a, const float *b, const double *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (b ? (double)b[i] : ref[i]));
        if (d > num || d != d) num = d;            /* NaN propagates as failure */
        if (fabs(ref[i]) > den) den = fabs(ref[i]);
    }
    return num / (den > 0 ? den : 1.0);
}

/* ------------------------------------------------------------- correctness */

static int check(int H, int P, int L) {
    Layer W = make_layer(H, P, 2.0f);
    const int N = 2 * P;
    float *U = falloc((size_t)L * H), *state0 = falloc(N);
    for (size_t i = 0; i < (size_t)L * H; i++) U[i] = (float)rng_normal();
    for (int i = 0; i < N; i++) state0[i] = (float)rng_normal();

    double *Yref = malloc(sizeof(double) * L * H), *Sref = malloc(sizeof(double) * N);
    reference(&W, L, state0, U, Yref, Sref);

    /* Outputs/states of: step, portable, dot, block (one call), block (two calls). */
    enum { NV = 5 };
    const char *vname[NV] = { "step", "portable", "dot", "block", "block2" };
    float *Y[NV], *S[NV];
    Work w = { falloc(N), falloc(N), falloc((size_t)L * N) };
    for (int v = 0; v < NV; v++) {
        Y[v] = falloc((size_t)L * H); S[v] = falloc(N);
        memcpy(w.state, state0, N * sizeof(float));
        if (v < 4) {
            run(v, &W, &w, L, U, Y[v]);
        } else {                                   /* block split at L/3: state carry */
            int L1 = L / 3;
            run(K_BLOCK, &W, &w, L1, U, Y[v]);
            run(K_BLOCK, &W, &w, L - L1, U + (size_t)L1 * H, Y[v] + (size_t)L1 * H);
        }
        memcpy(S[v], w.state, N * sizeof(float));
    }

    int ok = 1;
    double worst = 0;
    printf("  H=%3d P=%3d L=%d  vs f64 ref:", H, P, L);
    for (int v = 0; v < NV; v++) {
        double ey = rel_err_f(Y[v], NULL, Yref, (size_t)L * H);
        double es = rel_err_f(S[v], NULL, Sref, N);
        double e = ey > es ? ey : es;
        if (!(e <= TOL)) ok = 0;
        if (e > worst) worst = e;
        printf(" %s %.1e", vname[v], e);
    }
    /* Pairwise f32 agreement (normalized by the reference scale). */
    double pw = 0;
    for (int a = 0; a < NV; a++)
        for (int b = a + 1; b < NV; b++) {
            double ey = rel_err_f(Y[a], Y[b], Yref, (size_t)L * H);
            double es = rel_err_f(S[a], S[b], Sref, N);
            if (ey > pw || ey != ey) pw = ey;
            if (es > pw || es != es) pw = es;
        }
    if (!(pw <= TOL)) ok = 0;
    printf(" | max pairwise %.1e  %s\n", pw, ok ? "ok" : "FAIL");

    for (int v = 0; v < NV; v++) { free(Y[v]); free(S[v]); }
    free(w.state); free(w.scratch); free(w.X);
    free(U); free(state0); free(Yref); free(Sref);
    free_layer(&W);
    return ok;
}

/* ------------------------------------------------------------------ timing */

/*
 * Time all kernels on one layer. Repetitions are interleaved round-robin across
 * kernels (rep r of every kernel runs before rep r+1 of any), so slow periods
 * caused by other tenants of the machine hit all kernels alike; each kernel's
 * result is the median of its reps, in ns per sample.
 */
static void time_kernels(const Layer *W, int L, int reps, const float *U, double *t_out) {
    const int H = W->H, N = 2 * W->P;
    Work w[K_COUNT];
    float *Y = falloc((size_t)L * H);
    int iters[K_COUNT];
    double *ns = malloc(sizeof(double) * K_COUNT * reps);

    for (int k = 0; k < K_COUNT; k++) {
        w[k] = (Work){ falloc(N), falloc(N), falloc((size_t)L * N) };   /* zero state */
        /* Warm up, then calibrate: L-sample sequences per rep so one rep lasts >= 2 ms. */
        run(k, W, &w[k], L, U, Y);
        double t0 = now_ns();
        run(k, W, &w[k], L, U, Y);
        double once = now_ns() - t0;
        iters[k] = (int)(2e6 / (once > 1 ? once : 1)) + 1;
    }
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < K_COUNT; k++) {
            double a = now_ns();
            for (int i = 0; i < iters[k]; i++) run(k, W, &w[k], L, U, Y);
            ns[k * reps + r] = (now_ns() - a) / ((double)iters[k] * L);
        }
    for (int k = 0; k < K_COUNT; k++) {
        qsort(ns + k * reps, reps, sizeof(double), cmp_double);
        t_out[k] = ns[k * reps + reps / 2];
        volatile float sink = w[k].state[0];      /* keep results observable */
        (void)sink;
        free(w[k].state); free(w[k].scratch); free(w[k].X);
    }
    free(ns); free(Y);
}

int main(int argc, char **argv) {
    int L = argc > 1 ? atoi(argv[1]) : 256;
    int reps = argc > 2 ? atoi(argv[2]) : 15;
    if (L < 3 || reps < 1) { fprintf(stderr, "usage: %s [L>=3] [reps>=1]\n", argv[0]); return 2; }

    openblas_set_num_threads(1);
#if defined(__AVX2__) && defined(__FMA__)
    const char *path = "AVX2+FMA intrinsics";
#else
    const char *path = "portable C (no AVX2/FMA at compile time)";
#endif
    printf("cref_step path: %s\nOpenBLAS: %s, threads=%d\nL=%d, reps=%d (median)\n",
           path, openblas_get_config(), openblas_get_num_threads(), L, reps);
    /* Timings are only meaningful on an otherwise idle machine: show the load. */
    FILE *la = fopen("/proc/loadavg", "r");
    char buf[128] = "";
    if (la) { if (!fgets(buf, sizeof buf, la)) buf[0] = 0; fclose(la); }
    printf("loadavg: %s\n", buf[0] ? buf : "n/a\n");

    /* ---- correctness ---- */
    printf("correctness (relative error = max|a-b| / max|ref|, tol %.0e):\n", TOL);
    static const int csz[][2] = { {16, 16}, {64, 64}, {256, 256}, {37, 21}, {8, 59}, {100, 44}, {61, 67}, {1, 1} };
    int ok = 1;
    for (size_t i = 0; i < sizeof csz / sizeof csz[0]; i++) ok &= check(csz[i][0], csz[i][1], L);
    if (!ok) { printf("\nCORRECTNESS FAILED\n"); return 1; }
    printf("all ok\n\n");

    /* ---- timing ---- */
    static const int tsz[][2] = { {16, 16}, {64, 64}, {256, 256} };
    printf("%5s %5s  %-19s %12s %9s %8s  %s\n", "H", "P", "kernel", "ns/sample", "GFLOP/s", "x step", "note");
    for (size_t i = 0; i < sizeof tsz / sizeof tsz[0]; i++) {
        const int H = tsz[i][0], P = tsz[i][1];
        Layer W = make_layer(H, P, 2.0f);
        float *U = falloc((size_t)L * H);
        for (size_t j = 0; j < (size_t)L * H; j++) U[j] = (float)rng_normal();
        const double flops = 8.0 * P * H + 6.0 * P + 2.0 * H;
        double t[K_COUNT];
        time_kernels(&W, L, reps, U, t);
        for (int k = 0; k < K_COUNT; k++)
            printf("%5d %5d  %-19s %12.1f %9.2f %8.2f  %s\n", H, P, kname[k], t[k], flops / t[k],
                   t[k] / t[K_STEP], k == K_STEP ? cref_step_path(H, P) : k == K_BLOCK ? "L-sample GEMMs" : "");
        printf("\n");
        free(U);
        free_layer(&W);
    }
    return 0;
}
