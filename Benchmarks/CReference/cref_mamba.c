/*
 * cref_mamba.c — one streaming step of the Mamba mixer in plain C (see include/cref.h).
 *
 * The arithmetic of Sources/SSM/Layers/Mamba.swift + SelectiveScan.swift, operation for
 * operation (same weight layout, same polynomial exp/log, fmaf where Swift fuses), written
 * the way one would write it in C: loops over contiguous lanes that gcc/clang -O3
 * -march=native vectorize, and the selective scan fused per channel (discretize and update
 * the N lanes of channel e in one loop, then read them out, so Ā and B̄x never go to memory).
 */
#include "cref.h"
#include "cref_vmath.h"

int cref_mamba_state_count(const cref_mamba *m) { return m->d_conv * m->E + m->E * m->N; }

/* xz (2E), dbl (R + 2N), δ (E), y (E). */
int cref_mamba_scratch_count(const cref_mamba *m) { return 2 * m->E + (m->R + 2 * m->N) + 2 * m->E; }

void cref_mamba_step(const cref_mamba *m, float *state, float *scratch,
                     const float *__restrict__ u, float *__restrict__ out)
{
    const int H = m->H, E = m->E, N = m->N, R = m->R, T = m->d_conv, W = R + 2 * N;
    float *__restrict__ xz = scratch;           /* [x (E); z (E)], x then the conv output */
    float *__restrict__ dbl = xz + 2 * E;       /* [δ_low (R); B (N); C (N)] */
    float *__restrict__ delta = dbl + W;        /* δ, then Δ */
    float *__restrict__ ys = delta + E;
    float *__restrict__ hist = state, *__restrict__ h = state + (size_t)T * E;
    const float *__restrict__ B = dbl + R, *__restrict__ C = dbl + R + N, *__restrict__ z = xz + E;

    /* in_proj */
    for (int c = 0; c < 2 * E; c++) xz[c] = 0.0f;
    vec_mat_acc(H, 2 * E, u, m->in_w, xz);

    /* causal depthwise conv (history in the state), SiLU */
    conv_step(T, E, m->conv_w, m->conv_b, hist, xz, xz);
    for (int e = 0; e < E; e++) xz[e] = silu_ps(xz[e]);

    /* x_proj, dt_proj, Δ = softplus(δ + bias) */
    for (int c = 0; c < W; c++) dbl[c] = 0.0f;
    vec_mat_acc(E, W, xz, m->x_w, dbl);
    for (int e = 0; e < E; e++) delta[e] = 0.0f;
    vec_mat_acc(R, E, dbl, m->dt_w, delta);
    for (int e = 0; e < E; e++) delta[e] = softplus_ps(delta[e] + m->dt_b[e]);

    /* selective scan, one channel at a time:
     *   h[e,n] = exp(Δ_e A[e,n]) · h[e,n] + (Δ_e x_e) B_n,   y_e = Σ_n C_n h[e,n] + D_e x_e
     * The readout sums in 8 interleaved partial sums, then adds them in lane order (the
     * order of the Swift readout's SIMD8 accumulator and its .sum()). */
    const int N8 = N & ~7;
    for (int e = 0; e < E; e++) {
        const float dt = delta[e], dtx = dt * xz[e];
        const float *__restrict__ a = m->A + (size_t)e * N;
        float *__restrict__ he = h + (size_t)e * N;
        for (int n = 0; n < N8; n++) he[n] = fmaf(exp_ps(dt * a[n]), he[n], dtx * B[n]);
        for (int n = N8; n < N; n++) he[n] = fmaf(expf(dt * a[n]), he[n], dtx * B[n]);   /* libm, as Swift's tail */
        float acc[8] = { 0 };
        for (int n = 0; n < N8; n += 8)
            for (int l = 0; l < 8; l++) acc[l] = fmaf(C[n + l], he[n + l], acc[l]);
        float s = -0.0f;
        for (int l = 0; l < 8; l++) s += acc[l];
        for (int n = N8; n < N; n++) s += C[n] * he[n];
        ys[e] = s + m->D[e] * xz[e];
    }
    /* · SiLU(z) = z / (1 + e^−z): the polynomial exp, libm expf for the E mod 8 tail (as Swift) */
    const int E8 = E & ~7;
    for (int e = 0; e < E8; e++) ys[e] *= z[e] / (1.0f + exp_ps(-z[e]));
    for (int e = E8; e < E; e++) ys[e] *= z[e] / (1.0f + expf(-z[e]));

    /* out_proj */
    for (int c = 0; c < H; c++) out[c] = 0.0f;
    vec_mat_acc(E, H, ys, m->out_w, out);
}
