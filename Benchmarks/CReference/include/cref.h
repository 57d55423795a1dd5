/*
 * cref.h — benchmark-only C reference kernels for ssm-stream.
 *
 * One layer of a diagonal complex linear recurrence (S5 / LRU), f32:
 *
 *     x_k = λ ⊙ x_{k-1} + B u_k          λ: P complex, B: P×H complex, u_k: H real
 *     y_k = s · Re(C x_k) + D ⊙ u_k       C: H×P complex, D: H real,
 *                                          s = 2 (S5, conjugate-symmetric) or 1 (LRU)
 *
 * These kernels exist to give the Swift engine an honest, reproducible C baseline
 * (see bench_main.c / Makefile). They are not used by the engine itself.
 *
 * Weight layout (identical to the Swift engine's; "B stored H×P", "C stored P×H"):
 *
 *   lre[P], lim[P]   real / imaginary parts of λ.
 *   Bw[H][2P]        row h = [ Re B[0..P-1, h] , Im B[0..P-1, h] ].
 *                    Input h's contribution to the state is one axpy over 2P
 *                    independent, contiguous state lanes.
 *   Cw[2P][H]        row p     (p < P) =  s · Re C[:, p]
 *                    row P + p           = -s · Im C[:, p]
 *                    so  y = D ⊙ u + Σ_{r<2P} xcat[r] · Cw[r, :],  xcat = [Re x ; Im x].
 *   state[2P]        [ Re x ; Im x ].
 *
 * All matrices are row-major and densely packed (leading dimension = row length).
 * No alignment is required (64-byte alignment is slightly faster).
 * Pointers to different arguments must not overlap.
 */
#ifndef CREF_H
#define CREF_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * One time step in the engine's layout (B: H×2P, C: 2P×H).
 *
 * Built with AVX2+FMA enabled (__AVX2__ && __FMA__, e.g. -march=native or
 * -mavx2 -mfma) it runs AVX2/FMA intrinsics: register-tiled while the weights
 * (16·P·H bytes) fit in ≈L1, row-streaming above that (see cref_step.c);
 * otherwise it runs cref_step_portable. `scratch` (2P floats) is workspace:
 * the portable path accumulates the new state in it, the AVX2 paths do not.
 * `state` is read and updated in place; `y` receives H outputs.
 */
void cref_step(int H, int P,
               const float *lre, const float *lim,
               const float *Bw, const float *Cw, const float *D,
               float *state, float *scratch /* 2P */,
               const float *u /* H */, float *y /* H */);

/* Which schedule cref_step uses for this size: "avx2-tiled", "avx2-streaming"
 * or "portable" (for benchmark reports). */
const char *cref_step_path(int H, int P);

/*
 * Same step and layout as cref_step, written as plain C over contiguous lanes
 * (gcc/clang -O3 vectorize it; FMA is used when the target has it).
 * Always available, whatever the build flags, so the two can be compared.
 */
void cref_step_portable(int H, int P,
                        const float *lre, const float *lim,
                        const float *Bw, const float *Cw, const float *D,
                        float *state, float *scratch /* 2P */,
                        const float *u /* H */, float *y /* H */);

/*
 * The same arithmetic written the "textbook" way: one strict-IEEE dot product
 * per state and per output, with weights in their natural mathematical layout.
 * It exists only to show that the layout matters (reductions cannot be
 * vectorized without reassociating floating-point sums).
 *
 *   Bre[P][H], Bim[P][H]   B[p, h] = Bre[p*H + h] + i·Bim[p*H + h]   (P×H, row-major)
 *   Cre[H][P], Cim[H][P]   C[h, p] = Cre[h*P + p] + i·Cim[h*P + p]   (H×P, row-major)
 *   s                      output scale (2 for S5, 1 for LRU); not folded into C.
 *   lre, lim, D, state, u, y as above (state = [Re x ; Im x], updated in place).
 */
void cref_step_dot(int H, int P, float s,
                   const float *lre, const float *lim,
                   const float *Bre, const float *Bim,
                   const float *Cre, const float *Cim,
                   const float *D, float *state,
                   const float *u /* H */, float *y /* H */);

/*
 * L time steps at once (engine layout), via BLAS:
 *   X = U · Bw                        (cblas_sgemm, L×H · H×2P)
 *   X[k] := λ ⊙ X[k-1] + X[k]         (serial in k, in place; X[-1] = state)
 *   Y = D ⊙ U + X · Cw                (cblas_sgemm, L×2P · 2P×H, beta = 1)
 * `state` (2P) is carried in and out. X is L×2P scratch and holds all states
 * x_0..x_{L-1} on return. U and Y are L×H row-major (one row per sample).
 * Threading is whatever OpenBLAS is configured for; the harness pins it to 1.
 */
void cref_block(int H, int P, int L,
                const float *lre, const float *lim,
                const float *Bw, const float *Cw, const float *D,
                float *state, float *X /* L×2P */,
                const float *U /* L×H */, float *Y /* L×H */);


/* ========================================================================= */
/* Selective families: one streaming step of the Mamba mixer and of the      */
/* Hawk recurrent block (cref_mamba.c, cref_hawk.c).                          */
/* ========================================================================= */
/*
 * Weights are passed exactly as the Swift layers hold them after loading:
 * every Linear is stored TRANSPOSED, (in, out) row-major, so y = x·W is a sum of
 * contiguous rows (axpy over independent output lanes; see vecMat in Kernels.swift).
 * The transcendental functions are the same as the Swift layers use (see
 * cref_vmath.h): the Cephes-style polynomial exp/log of VectorMath.swift for every
 * gate (SiLU after the conv and on z, softplus Δ, exp(ΔA), sigmoid gates,
 * exp(r·logDecay), GELU-tanh as v·σ(2t)), and libm expf only where Swift calls the
 * scalar Float.exp (lanes beyond the last multiple of 8, none at the benchmark sizes).
 */

/*
 * Mamba mixer (upstream Mamba.step, use_fast_path=False), d_model = H, E = expand·H:
 *
 *   [x; z] = u·in_w                    in_w  (H, 2E)          no bias
 *   hist   = shift(hist) ← x            hist  (d_conv, E) oldest row first, in `state`
 *   x      = silu(conv_b + Σ_j conv_w[j] ⊙ hist[j])   conv_w (d_conv, E), row d_conv−1 on the current sample
 *   dbl    = x·x_w                      x_w   (E, R + 2N)      dbl = [δ_low (R); B (N); C (N)]
 *   δ      = δ_low·dt_w                 dt_w  (R, E)
 *   Δ      = softplus(δ + dt_b)         dt_b  (E)
 *   h[e,n] = exp(Δ_e A[e,n]) h[e,n] + (Δ_e x_e) B_n         A (E, N) = −exp(A_log), h in `state` after hist
 *   y_e    = (Σ_n C_n h[e,n] + D_e x_e) · silu(z_e)
 *   out    = y·out_w                    out_w (E, H)
 */
typedef struct {
    int H, E, N, R, d_conv;
    const float *in_w, *conv_w, *conv_b, *x_w, *dt_w, *dt_b, *A, *D, *out_w;
} cref_mamba;

/* Floats of state (d_conv·E + E·N; zero = stream start) and of scratch. */
int cref_mamba_state_count(const cref_mamba *m);
int cref_mamba_scratch_count(const cref_mamba *m);
void cref_mamba_step(const cref_mamba *m, float *state, float *scratch,
                     const float *u /* H */, float *y /* H */);

/*
 * Hawk recurrent block (recurrentgemma RecurrentBlock), d_model = H, lru_width = W:
 *
 *   yb  = gelu_tanh(x·y_w + y_b)                  y_w (H, W); gelu_tanh(v) = v·σ(2·√(2/π)(v + 0.044715 v³))
 *   xb  = x·x_w + x_b                             x_w (H, W)
 *   hist = shift(hist) ← xb;  xb = conv_b + Σ_j conv_w[j] ⊙ hist[j]    conv_w (taps, W), hist in `state`
 *   r   = σ(xb·a_gate_w + a_gate_b),  i = σ(xb·in_gate_w + in_gate_b)  block-diagonal:
 *         gate_w (heads, W/heads, W/heads), block k maps inputs k·bw.. to outputs k·bw..
 *   a   = exp(r ⊙ log_decay)                      log_decay (W) = −8·softplus(a_param)
 *   h   = a ⊙ h + √(1 − a²) ⊙ (i ⊙ xb)             (segment start, flag == 0: a = 0, multiplier 1)
 *   out = (h ⊙ yb)·out_w + out_b                  out_w (W, H)
 *
 * State: hist (taps·W), h (W), segment flag (1 float; 0 = at a start). Zero = stream start.
 */
typedef struct {
    int H, W, heads, taps;
    const float *x_w, *x_b, *y_w, *y_b, *out_w, *out_b;
    const float *conv_w, *conv_b;
    const float *a_gate_w, *a_gate_b, *in_gate_w, *in_gate_b, *log_decay;
} cref_hawk;

int cref_hawk_state_count(const cref_hawk *m);
int cref_hawk_scratch_count(const cref_hawk *m);
void cref_hawk_step(const cref_hawk *m, float *state, float *scratch,
                    const float *x /* H */, float *out /* H */);

#ifdef __cplusplus
}
#endif

#endif /* CREF_H */
