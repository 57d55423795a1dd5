/*
 * cref_block.c — L time steps at once with two GEMMs around a diagonal scan
 * (see include/cref.h). This is the "offline / batch" formulation: the input and
 * output projections are dense L×H×2P matrix products that BLAS runs near peak,
 * and only the cheap elementwise recurrence is serial in time.
 */
#include "cref.h"

#include <cblas.h>
#include <string.h>

void cref_block(int H, int P, int L,
                const float *lre, const float *lim,
                const float *Bw, const float *Cw, const float *D,
                float *state, float *X, const float *U, float *Y)
{
    const int N = 2 * P;
    if (L <= 0) return;

    /* X[L×2P] = U[L×H] · Bw[H×2P]  — B u_k for every k at once. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                L, N, H, 1.0f, U, H, Bw, N, 0.0f, X, N);

    /* Diagonal recurrence, serial in k, vectorized over the P lanes:
     *   X[k] := λ ⊙ X[k-1] + X[k],  with X[-1] = state.                     */
    const float *prev = state;
    for (int k = 0; k < L; k++) {
        float *__restrict__ xr = X + (size_t)k * N;
        float *__restrict__ xi = xr + P;
        const float *__restrict__ pr = prev;
        const float *__restrict__ pi = prev + P;
        for (int p = 0; p < P; p++) {
            const float r = lre[p] * pr[p] - lim[p] * pi[p] + xr[p];
            const float i = lre[p] * pi[p] + lim[p] * pr[p] + xi[p];
            xr[p] = r;
            xi[p] = i;
        }
        prev = xr;
    }
    memcpy(state, X + (size_t)(L - 1) * N, (size_t)N * sizeof(float));

    /* Y[L×H] = D ⊙ U + X[L×2P] · Cw[2P×H]. */
    for (int k = 0; k < L; k++) {
        const float *uk = U + (size_t)k * H;
        float *yk = Y + (size_t)k * H;
        for (int h = 0; h < H; h++) yk[h] = D[h] * uk[h];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                L, H, N, 1.0f, X, N, Cw, H, 1.0f, Y, H);
}
