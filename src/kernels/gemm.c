#include "gemm.h"

#include <stdlib.h>
#include <string.h>

#ifdef NB_USE_CBLAS
#include <cblas.h>
#endif

/* Blocked i-k-j loop: the inner loop runs over contiguous rows of B and C so
 * the compiler vectorises it; blocks keep a panel of B in cache. */
enum { BLOCK_K = 256, BLOCK_N = 512 };

void nb_gemm_portable(int ta, int tb, int M, int N, int K, nb_real alpha, const nb_real *A,
                      int lda, const nb_real *B, int ldb, nb_real beta, nb_real *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * C[(size_t)i * ldc + j];
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

static int chosen = -1;

static int best_available(int want) {
#ifdef NB_AVX512_GEMM
    if (want == NB__GEMM_AVX512 && nb__sgemm_avx512_usable()) return NB__GEMM_AVX512;
#endif
#ifdef NB_USE_CBLAS
    if (want != NB__GEMM_PORTABLE) return NB__GEMM_OPENBLAS;
#endif
    (void)want;
    return NB__GEMM_PORTABLE;
}

int nb__gemm_kernel(void) {
    if (chosen < 0) {
        const char *env = getenv("NB_GEMM");
        int want = NB__GEMM_AVX512;
        if (env && strcmp(env, "openblas") == 0) want = NB__GEMM_OPENBLAS;
        if (env && strcmp(env, "portable") == 0) want = NB__GEMM_PORTABLE;
        chosen = best_available(want);
    }
    return chosen;
}

void nb__gemm_use(int kernel) {
    chosen = best_available(kernel);
    nb__blas_threads();
}

void nb_gemm(int ta, int tb, int M, int N, int K, nb_real alpha, const nb_real *A, int lda,
             const nb_real *B, int ldb, nb_real beta, nb_real *C, int ldc) {
    if (M == 0 || N == 0) return;
    int kernel = nb__gemm_kernel();
#ifdef NB_AVX512_GEMM
    if (kernel == NB__GEMM_AVX512) {
        nb__sgemm_avx512(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#endif
#ifdef NB_USE_CBLAS
    if (kernel == NB__GEMM_OPENBLAS) {
#ifdef NB_REAL_DOUBLE
        cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
        return;
    }
#endif
    (void)kernel;
    nb_gemm_portable(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
