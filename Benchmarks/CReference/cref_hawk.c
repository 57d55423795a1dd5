/*
 * cref_hawk.c — one streaming step of the Hawk/Griffin recurrent block in plain C
 * (see include/cref.h).
 *
 * The arithmetic of Sources/SSM/Layers/Hawk.swift + RGLRU.swift, operation for operation
 * (same weight layout, the same polynomial exp for the gates and for GELU-tanh, written as
 * v·σ(2t) like VectorMath.geluTanh, fmaf where Swift fuses), as plain loops over contiguous lanes that
 * gcc/clang -O3 -march=native vectorize.
 */
#include "cref.h"
#include "cref_vmath.h"

int cref_hawk_state_count(const cref_hawk *m) { return m->taps * m->W + m->W + 1; }

/* xb (W), yb (W), r (W), i (W). */
int cref_hawk_scratch_count(const cref_hawk *m) { return 4 * m->W; }

/* out (W) = σ(b + blockdiag(w) · x). */
static inline void gate(int W, int heads, const float *__restrict__ x, const float *__restrict__ w,
                        const float *__restrict__ b, float *__restrict__ out)
{
    const int bw = W / heads;
    for (int j = 0; j < W; j++) out[j] = b[j];
    for (int k = 0; k < heads; k++)
        vec_mat_acc(bw, bw, x + (size_t)k * bw, w + (size_t)k * bw * bw, out + (size_t)k * bw);
    for (int j = 0; j < W; j++) out[j] = sigmoid_ps(out[j]);
}

void cref_hawk_step(const cref_hawk *m, float *state, float *scratch,
                    const float *__restrict__ x, float *__restrict__ out)
{
    const int H = m->H, W = m->W, T = m->taps;
    float *__restrict__ xb = scratch, *__restrict__ yb = xb + W;
    float *__restrict__ r = yb + W, *__restrict__ ig = r + W;
    float *__restrict__ hist = state, *__restrict__ h = state + (size_t)T * W;
    float *flag = h + W;

    /* y branch: GELU-tanh(linear_y(x)) = v·σ(2t), t = √(2/π)(v + 0.044715 v³) (= 0.5 v (1 + tanh t)) */
    for (int j = 0; j < W; j++) yb[j] = m->y_b[j];
    vec_mat_acc(H, W, x, m->y_w, yb);
    for (int j = 0; j < W; j++) {
        const float v = yb[j], t = 0.79788456080286536f * (v + 0.044715f * v * v * v);
        yb[j] = v * sigmoid_ps(t + t);
    }

    /* x branch: linear_x, conv1d (history in the state) */
    for (int j = 0; j < W; j++) xb[j] = m->x_b[j];
    vec_mat_acc(H, W, x, m->x_w, xb);
    conv_step(T, W, m->conv_w, m->conv_b, hist, xb, xb);

    /* RG-LRU: gates, a = exp(r·logDecay), h = a·h + √(1 − a²)·(i·x); at a segment start a = 0, multiplier 1 */
    gate(W, m->heads, xb, m->a_gate_w, m->a_gate_b, r);
    gate(W, m->heads, xb, m->in_gate_w, m->in_gate_b, ig);
    if (*flag == 0.0f) {
        for (int j = 0; j < W; j++) h[j] = fmaf(0.0f, h[j], ig[j] * xb[j]);
    } else {
        for (int j = 0; j < W; j++) {
            const float a = exp_ps(r[j] * m->log_decay[j]);
            h[j] = fmaf(a, h[j], sqrtf(1.0f - a * a) * ig[j] * xb[j]);
        }
    }
    *flag = 1.0f;

    /* out = linear_out(h ⊙ y) */
    for (int j = 0; j < W; j++) xb[j] = h[j] * yb[j];
    for (int c = 0; c < H; c++) out[c] = m->out_b[c];
    vec_mat_acc(W, H, xb, m->out_w, out);
}
