#include "gemm.h"

#include <stdlib.h>
#include <string.h>

#ifdef NB_USE_CBLAS
#include <cblas.h>
#endif

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
