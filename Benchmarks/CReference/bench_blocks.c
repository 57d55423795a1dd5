/*
 * bench_blocks.c — correctness check + timing for cref_mamba_step and cref_hawk_step.
 * Built by the Makefile as ./cref_bench_blocks; not part of any SwiftPM target.
 *
 *   ./cref_bench_blocks [L] [reps]        defaults: L = 256, reps = 15
 *
 * 1. Correctness: for several shapes (the benchmark's and odd ones that hit every SIMD
 *    tail, several gate heads, conv widths 1…4), run L samples from the zero state (a
 *    stream start, so the RG-LRU's segment-start branch runs too) through the f32 C step
 *    and through a double-precision reference of the same equations (libm exp, log1p,
 *    tanh, sqrt in double), and require max |f32 − f64| / max |f64| ≤ 1e-4 over all L×H
 *    outputs and, separately, over the final state. Exits 1 otherwise.
 * 2. Timing at the sizes (Mamba d_model 64, N 16, expand 2; Hawk d_model 64,
 *    lru_width 64): ns per step is the median over `reps` repetitions of L-sample
 *    sequences (each rep ≥ 2 ms), interleaved between the two kernels. GFLOP/s counts a
 *    multiply-add as 2 with the Swift layers' flopsPerSample formulas.
 */
#define _POSIX_C_SOURCE 200809L
#include "cref.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOL 1e-4

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rng_next(void) {                       /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_uniform(void) { return (rng_next() >> 11) * 0x1.0p-53; }
static double uni(double k) { return k * (2.0 * rng_uniform() - 1.0); }
static double rng_normal(void) {
    double a = rng_uniform(), b = rng_uniform();
    return sqrt(-2.0 * log(a + 1e-300)) * cos(6.283185307179586 * b);
}

static float *falloc(size_t n) {
    size_t bytes = ((n * sizeof(float)) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) { perror("aligned_alloc"); exit(2); }
    memset(p, 0, bytes);
    return p;
}
static float *frand(size_t n, double k) { float *p = falloc(n); for (size_t i = 0; i < n; i++) p[i] = (float)uni(k); return p; }

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* max |a − ref| / max |ref| (NaN counts as failure). */
static double rel_err(const float *a, const double *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (d > num || d != d) num = d;
        if (fabs(ref[i]) > den) den = fabs(ref[i]);
    }
    return num / (den > 0 ? den : 1.0);
}

static double softplus_d(double x) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }
static double sigmoid_d(double x) { return 1.0 / (1.0 + exp(-x)); }

/* y (n) += x (R) · W (R, n) in double. */
static void vm_d(int R, int n, const double *x, const float *W, double *y) {
    for (int r = 0; r < R; r++) for (int c = 0; c < n; c++) y[c] += x[r] * (double)W[(size_t)r * n + c];
}
static void vm_df(int R, int n, const float *x, const float *W, double *y) {
    for (int r = 0; r < R; r++) for (int c = 0; c < n; c++) y[c] += (double)x[r] * (double)W[(size_t)r * n + c];
}
static void conv_d(int T, int E, const float *w, const float *b, double *hist, const double *x, double *out) {
    memmove(hist, hist + E, sizeof(double) * (size_t)(T - 1) * E);
    memcpy(hist + (size_t)(T - 1) * E, x, sizeof(double) * E);
    for (int e = 0; e < E; e++) {
        double s = b[e];
        for (int j = 0; j < T; j++) s += (double)w[(size_t)j * E + e] * hist[(size_t)j * E + e];
        out[e] = s;
    }
}

/* ----------------------------------------------------------------- Mamba */

typedef struct { cref_mamba m; float *buf[9]; } MambaW;

static MambaW make_mamba(int H, int E, int N, int R, int T) {
    MambaW w;
    const int W = R + 2 * N;
    float *in_w = frand((size_t)H * 2 * E, 1 / sqrt(H)), *conv_w = frand((size_t)T * E, 1 / sqrt(T));
    float *conv_b = frand(E, 1 / sqrt(T)), *x_w = frand((size_t)E * W, 1 / sqrt(E));
    float *dt_w = frand((size_t)R * E, 1 / sqrt(R)), *dt_b = falloc(E), *A = falloc((size_t)E * N);
    float *D = falloc(E), *out_w = frand((size_t)E * H, 1 / sqrt(E));
    for (int e = 0; e < E; e++) {
        double dt = exp(log(1e-3) + rng_uniform() * (log(1e-1) - log(1e-3)));
        dt_b[e] = (float)(dt + log(-expm1(-dt)));                 /* softplus⁻¹ */
        D[e] = (float)(1.0 + 0.1 * rng_normal());
        for (int n = 0; n < N; n++) A[(size_t)e * N + n] = -(float)(n + 1);   /* −exp(log(n + 1)) */
    }
    w.m = (cref_mamba){ H, E, N, R, T, in_w, conv_w, conv_b, x_w, dt_w, dt_b, A, D, out_w };
    float *b[9] = { in_w, conv_w, conv_b, x_w, dt_w, dt_b, A, D, out_w };
    memcpy(w.buf, b, sizeof b);
    return w;
}

/* L steps in double from the zero state: Y (L, H), final state as cref_mamba's layout. */
static void mamba_ref(const cref_mamba *m, int L, const float *U, double *Y, double *S) {
    const int H = m->H, E = m->E, N = m->N, R = m->R, T = m->d_conv, W = R + 2 * N;
    double *hist = S, *h = S + (size_t)T * E;
    memset(S, 0, sizeof(double) * ((size_t)T * E + (size_t)E * N));
    double *xz = calloc(2 * E, 8), *xc = calloc(E, 8), *dbl = calloc(W, 8), *dt = calloc(E, 8), *ys = calloc(E, 8);
    for (int k = 0; k < L; k++) {
        memset(xz, 0, sizeof(double) * 2 * E);
        vm_df(H, 2 * E, U + (size_t)k * H, m->in_w, xz);
        conv_d(T, E, m->conv_w, m->conv_b, hist, xz, xc);
        for (int e = 0; e < E; e++) xc[e] *= sigmoid_d(xc[e]);
        memset(dbl, 0, sizeof(double) * W);
        vm_d(E, W, xc, m->x_w, dbl);
        memset(dt, 0, sizeof(double) * E);
        vm_d(R, E, dbl, m->dt_w, dt);
        for (int e = 0; e < E; e++) {
            const double d = softplus_d(dt[e] + m->dt_b[e]);
            double s = 0;
            for (int n = 0; n < N; n++) {
                double *hn = h + (size_t)e * N + n;
                *hn = exp(d * m->A[(size_t)e * N + n]) * *hn + d * xc[e] * dbl[R + n];
                s += dbl[R + N + n] * *hn;
            }
            const double z = xz[E + e];
            ys[e] = (s + m->D[e] * xc[e]) * z * sigmoid_d(z);
        }
        double *y = Y + (size_t)k * H;
        memset(y, 0, sizeof(double) * H);
        vm_d(E, H, ys, m->out_w, y);
    }
    free(xz); free(xc); free(dbl); free(dt); free(ys);
}

static double mamba_flops(const cref_mamba *m) {
    const double H = m->H, E = m->E, N = m->N, R = m->R, W = R + 2 * N;
    return 2 * (H * 2 * E + E * W + R * E + E * H) + 2 * m->d_conv * E + E * N * 8 + E * 4;
}

/* ------------------------------------------------------------------ Hawk */

typedef struct { cref_hawk m; float *buf[13]; } HawkW;

static HawkW make_hawk(int H, int W, int heads, int T) {
    HawkW w;
    const int bw = W / heads;
    float *x_w = frand((size_t)H * W, 1 / sqrt(H)), *x_b = frand(W, 1 / sqrt(H));
    float *y_w = frand((size_t)H * W, 1 / sqrt(H)), *y_b = frand(W, 1 / sqrt(H));
    float *out_w = frand((size_t)W * H, 1 / sqrt(W)), *out_b = frand(H, 1 / sqrt(W));
    float *conv_w = frand((size_t)T * W, 1 / sqrt(T)), *conv_b = frand(W, 0.1);
    float *ag_w = falloc((size_t)heads * bw * bw), *ig_w = falloc((size_t)heads * bw * bw);
    for (size_t i = 0; i < (size_t)heads * bw * bw; i++) {
        ag_w[i] = (float)(rng_normal() / sqrt(bw));
        ig_w[i] = (float)(rng_normal() / sqrt(bw));
    }
    float *ag_b = frand(W, 0.1), *ig_b = frand(W, 0.1), *log_decay = falloc(W);
    for (int j = 0; j < W; j++)   /* −8·softplus(a_param), a_param = softplus⁻¹(−½ log U[0.9², 0.999²]) */
        log_decay[j] = (float)(4.0 * log(0.81 + rng_uniform() * (0.998001 - 0.81)));
    w.m = (cref_hawk){ H, W, heads, T, x_w, x_b, y_w, y_b, out_w, out_b, conv_w, conv_b,
                       ag_w, ag_b, ig_w, ig_b, log_decay };
    float *b[13] = { x_w, x_b, y_w, y_b, out_w, out_b, conv_w, conv_b, ag_w, ag_b, ig_w, ig_b, log_decay };
    memcpy(w.buf, b, sizeof b);
    return w;
}

static void hawk_ref(const cref_hawk *m, int L, const float *X, double *Y, double *S) {
    const int H = m->H, W = m->W, T = m->taps, bw = W / m->heads;
    double *hist = S, *h = S + (size_t)T * W;
    memset(S, 0, sizeof(double) * ((size_t)T * W + W + 1));
    double *xb = calloc(W, 8), *xc = calloc(W, 8), *yb = calloc(W, 8), *r = calloc(W, 8), *ig = calloc(W, 8);
    for (int k = 0; k < L; k++) {
        const float *x = X + (size_t)k * H;
        for (int j = 0; j < W; j++) { yb[j] = m->y_b[j]; xb[j] = m->x_b[j]; }
        vm_df(H, W, x, m->y_w, yb);
        for (int j = 0; j < W; j++) {
            const double v = yb[j];
            yb[j] = 0.5 * v * (1 + tanh(0.79788456080286536 * (v + 0.044715 * v * v * v)));
        }
        vm_df(H, W, x, m->x_w, xb);
        conv_d(T, W, m->conv_w, m->conv_b, hist, xb, xc);
        for (int j = 0; j < W; j++) { r[j] = m->a_gate_b[j]; ig[j] = m->in_gate_b[j]; }
        for (int g = 0; g < m->heads; g++) {
            vm_d(bw, bw, xc + g * bw, m->a_gate_w + (size_t)g * bw * bw, r + g * bw);
            vm_d(bw, bw, xc + g * bw, m->in_gate_w + (size_t)g * bw * bw, ig + g * bw);
        }
        const int reset = h[W] == 0;
        for (int j = 0; j < W; j++) {
            const double a = reset ? 0 : exp(sigmoid_d(r[j]) * m->log_decay[j]);
            h[j] = a * h[j] + sqrt(1 - a * a) * sigmoid_d(ig[j]) * xc[j];
        }
        h[W] = 1;
        double *y = Y + (size_t)k * H;
        for (int c = 0; c < H; c++) y[c] = m->out_b[c];
        for (int j = 0; j < W; j++) xb[j] = h[j] * yb[j];
        vm_d(W, H, xb, m->out_w, y);
    }
    free(xb); free(xc); free(yb); free(r); free(ig);
}

static double hawk_flops(const cref_hawk *m) {
    const double H = m->H, W = m->W, bw = W / m->heads;
    return 2 * (3 * H * W + 2 * W + H) + 2 * m->taps * W + 4 * W * bw + 12 * W + 10 * W;
}

/* ------------------------------------------------------------ the checks */

static int check_mamba(int H, int E, int N, int R, int T, int L) {
    MambaW w = make_mamba(H, E, N, R, T);
    const int ns = cref_mamba_state_count(&w.m);
    float *U = falloc((size_t)L * H), *Y = falloc((size_t)L * H);
    float *st = falloc(ns), *sc = falloc(cref_mamba_scratch_count(&w.m));
    for (size_t i = 0; i < (size_t)L * H; i++) U[i] = (float)rng_normal();
    double *Yr = malloc(sizeof(double) * L * H), *Sr = malloc(sizeof(double) * ns);
    mamba_ref(&w.m, L, U, Yr, Sr);
    for (int k = 0; k < L; k++) cref_mamba_step(&w.m, st, sc, U + (size_t)k * H, Y + (size_t)k * H);
    const double ey = rel_err(Y, Yr, (size_t)L * H), es = rel_err(st, Sr, ns);
    const int ok = ey <= TOL && es <= TOL;
    printf("  mamba H=%3d E=%3d N=%2d R=%d d_conv=%d L=%d: output %.1e state %.1e  %s\n",
           H, E, N, R, T, L, ey, es, ok ? "ok" : "FAIL");
    for (int i = 0; i < 9; i++) free(w.buf[i]);
    free(U); free(Y); free(st); free(sc); free(Yr); free(Sr);
    return ok;
}

static int check_hawk(int H, int W, int heads, int T, int L) {
    HawkW w = make_hawk(H, W, heads, T);
    const int ns = cref_hawk_state_count(&w.m);
    float *X = falloc((size_t)L * H), *Y = falloc((size_t)L * H);
    float *st = falloc(ns), *sc = falloc(cref_hawk_scratch_count(&w.m));
    for (size_t i = 0; i < (size_t)L * H; i++) X[i] = (float)rng_normal();
    double *Yr = malloc(sizeof(double) * L * H), *Sr = malloc(sizeof(double) * ns);
    hawk_ref(&w.m, L, X, Yr, Sr);
    for (int k = 0; k < L; k++) cref_hawk_step(&w.m, st, sc, X + (size_t)k * H, Y + (size_t)k * H);
    const double ey = rel_err(Y, Yr, (size_t)L * H), es = rel_err(st, Sr, ns);
    const int ok = ey <= TOL && es <= TOL;
    printf("  hawk  H=%3d W=%3d heads=%d taps=%d L=%d: output %.1e state %.1e  %s\n",
           H, W, heads, T, L, ey, es, ok ? "ok" : "FAIL");
    for (int i = 0; i < 13; i++) free(w.buf[i]);
    free(X); free(Y); free(st); free(sc); free(Yr); free(Sr);
    return ok;
}

/* ---------------------------------------------------------------- timing */

typedef struct {
    const char *name;
    int H;
    double flops;
    float *state, *scratch;
    const void *m;
    void (*step)(const void *m, float *st, float *sc, const float *u, float *y);
} Kernel;

static void mamba_fn(const void *m, float *st, float *sc, const float *u, float *y) { cref_mamba_step(m, st, sc, u, y); }
static void hawk_fn(const void *m, float *st, float *sc, const float *u, float *y) { cref_hawk_step(m, st, sc, u, y); }

static void run_seq(const Kernel *k, int L, const float *U, float *Y) {
    for (int t = 0; t < L; t++) k->step(k->m, k->state, k->scratch, U + (size_t)t * k->H, Y + (size_t)t * k->H);
}

int main(int argc, char **argv) {
    int L = argc > 1 ? atoi(argv[1]) : 256;
    int reps = argc > 2 ? atoi(argv[2]) : 15;
    if (L < 1 || reps < 1) { fprintf(stderr, "usage: %s [L>=1] [reps>=1]\n", argv[0]); return 2; }
    FILE *la = fopen("/proc/loadavg", "r");
    char buf[128] = "";
    if (la) { if (!fgets(buf, sizeof buf, la)) buf[0] = 0; fclose(la); }
    printf("L=%d, reps=%d (median, interleaved)  loadavg: %s", L, reps, buf[0] ? buf : "n/a\n");

    printf("correctness vs a double-precision reference (max|f32-f64| / max|f64|, tol %.0e):\n", TOL);
    int ok = 1;
    ok &= check_mamba(64, 128, 16, 4, 4, L);
    ok &= check_mamba(13, 26, 17, 1, 3, L);
    ok &= check_mamba(8, 24, 8, 2, 1, L);
    ok &= check_mamba(5, 9, 3, 3, 2, L);
    ok &= check_hawk(64, 64, 1, 4, L);
    ok &= check_hawk(64, 64, 4, 4, L);
    ok &= check_hawk(13, 24, 3, 2, L);
    ok &= check_hawk(7, 9, 1, 1, L);
    if (!ok) { printf("\nCORRECTNESS FAILED\n"); return 1; }
    printf("all ok\n\n");

    MambaW mw = make_mamba(64, 128, 16, 4, 4);
    HawkW hw = make_hawk(64, 64, 1, 4);
    Kernel ks[2] = {
        { "cref_mamba_step d_model=64 N=16 E=128", 64, mamba_flops(&mw.m),
          falloc(cref_mamba_state_count(&mw.m)), falloc(cref_mamba_scratch_count(&mw.m)), &mw.m, mamba_fn },
        { "cref_hawk_step  d_model=64 W=64", 64, hawk_flops(&hw.m),
          falloc(cref_hawk_state_count(&hw.m)), falloc(cref_hawk_scratch_count(&hw.m)), &hw.m, hawk_fn },
    };
    float *U = falloc((size_t)L * 64), *Y = falloc((size_t)L * 64);
    for (size_t i = 0; i < (size_t)L * 64; i++) U[i] = (float)rng_normal();
    int iters[2];
    double *ns = malloc(sizeof(double) * 2 * reps);
    for (int k = 0; k < 2; k++) {
        run_seq(&ks[k], L, U, Y);
        double t0 = now_ns();
        run_seq(&ks[k], L, U, Y);
        double once = now_ns() - t0;
        iters[k] = (int)(2e6 / (once > 1 ? once : 1)) + 1;
    }
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < 2; k++) {
            double a = now_ns();
            for (int i = 0; i < iters[k]; i++) run_seq(&ks[k], L, U, Y);
            ns[k * reps + r] = (now_ns() - a) / ((double)iters[k] * L);
        }
    printf("%-40s %10s %10s %10s %8s\n", "kernel", "FLOP/step", "best ns", "median ns", "GFLOP/s");
    for (int k = 0; k < 2; k++) {
        qsort(ns + k * reps, reps, sizeof(double), cmp_double);
        const double med = ns[k * reps + reps / 2];
        printf("%-40s %10.0f %10.1f %10.1f %8.2f\n", ks[k].name, ks[k].flops, ns[k * reps], med, ks[k].flops / med);
    }
    volatile float sink = Y[0];
    (void)sink;
    return 0;
}
