/* The portable GEMM: plain C that any compiler vectorises, always available.
 * nb_gemm runs it when neither nabla's AVX-512 kernel nor OpenBLAS is in use
 * (gemm.c), and the AVX-512 kernel falls back to it when its packing buffers
 * cannot be allocated. */
#include "gemm.h"
#include "../core/internal.h"

#include <stddef.h>
#include <string.h>

/* Blocked i-k-j loop: the inner loop runs over contiguous rows of B and C so
 * the compiler vectorises it; blocks keep a panel of B in cache. */
enum { BLOCK_K = 256, BLOCK_N = 512 };

void nb__gemm_scale_c(int M, int N, nb_real beta, nb_real *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
            C[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * C[(size_t)i * ldc + j];
}

void nb__pack_a_panel(int ta, const nb_real *A, int lda, int i, int m, int p0, int kc, int mr,
                      nb_real *dst) {
    for (int r = 0; r < mr; r++) {
        if (r >= m) {
            for (int k = 0; k < kc; k++) dst[k * mr + r] = 0;
        } else if (ta) {
            const nb_real *src = A + (size_t)p0 * lda + i + r;
            for (int k = 0; k < kc; k++) dst[k * mr + r] = src[(size_t)k * lda];
        } else {
            const nb_real *src = A + (size_t)(i + r) * lda + p0;
            for (int k = 0; k < kc; k++) dst[k * mr + r] = src[k];
        }
    }
}

void nb_gemm_portable(int ta, int tb, int M, int N, int K, nb_real alpha, const nb_real *A,
                      int lda, const nb_real *B, int ldb, nb_real beta, nb_real *C, int ldc) {
    nb__gemm_scale_c(M, N, beta, C, ldc);
    for (int k0 = 0; k0 < K; k0 += BLOCK_K) {
        int k1 = k0 + BLOCK_K < K ? k0 + BLOCK_K : K;
        for (int j0 = 0; j0 < N; j0 += BLOCK_N) {
            int j1 = j0 + BLOCK_N < N ? j0 + BLOCK_N : N;
            for (int i = 0; i < M; i++) {
                nb_real *c = C + (size_t)i * ldc;
                for (int k = k0; k < k1; k++) {
                    nb_real a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                    a *= alpha;
                    if (!tb) {
                        const nb_real *b = B + (size_t)k * ldb;
                        for (int j = j0; j < j1; j++) c[j] += a * b[j];
                    } else {
                        for (int j = j0; j < j1; j++) c[j] += a * B[(size_t)j * ldb + k];
                    }
                }
            }
        }
    }
}

void nb__gemm_portable_block(int ta, int tb, int K, nb_real alpha, const nb_real *A, int lda,
                             const nb_real *B, int ldb, nb_real beta, nb_real *C, int ldc,
                             int i0, int i1, int j0, int j1, const nb_real *col_bias, int relu) {
    nb_real *c = C + (size_t)i0 * ldc + j0;
    for (int i = 0; col_bias && i < i1 - i0; i++) /* with beta 0 (the dense form) */
        memcpy(c + (size_t)i * ldc, col_bias + j0, (size_t)(j1 - j0) * sizeof *c);
    nb_gemm_portable(ta, tb, i1 - i0, j1 - j0, K, alpha,
                     ta ? A + i0 : A + (size_t)i0 * lda, lda,
                     tb ? B + (size_t)j0 * ldb : B + j0, ldb, col_bias ? 1 : beta, c, ldc);
    for (int i = 0; relu && i < i1 - i0; i++) nb__relu_run(c + (size_t)i * ldc, (size_t)(j1 - j0));
}
