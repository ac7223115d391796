/* nb_gemm: chooses the matrix kernel (nabla's AVX-512 kernel when the CPU
 * has it, else OpenBLAS when built with it, else the portable kernel; the
 * environment variable NB_GEMM can ask for another) and runs it.  Also the
 * glue to OpenBLAS: its thread count and its name for reports. */
#include "gemm.h"
#include "parallel.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NB_USE_CBLAS
#include <cblas.h>
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);

/* The library's default thread count is OpenBLAS's (it honours
 * OPENBLAS_NUM_THREADS and OMP_NUM_THREADS, else the cores), registered
 * before any count is read. */
__attribute__((constructor)) static void follow_blas_default(void) {
    nb__pool_default_threads(openblas_get_num_threads);
}

/* OpenBLAS is given the library's thread count just before it runs a
 * product, and only then: a thread it starts polls for work for a while,
 * which would take a core from nabla's own workers when another kernel runs
 * the products. */
static void blas_follow_threads(void) {
    static atomic_int told; /* the count last given to OpenBLAS; 0: none */
    int n = nb_threads();
    if (atomic_exchange(&told, n) != n) openblas_set_num_threads(n);
}
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

void nb__gemm_use(int kernel) { chosen = best_available(kernel); }

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
        blas_follow_threads();
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

const char *nb_blas_core(void) {
    int kernel = nb__gemm_kernel();
#ifdef NB_USE_CBLAS
    static char name[96];
    if (kernel == NB__GEMM_AVX512) {
        snprintf(name, sizeof name, "nabla-avx512 (OpenBLAS %s for double only)",
                 openblas_get_corename());
        return name;
    }
    if (kernel == NB__GEMM_OPENBLAS) {
        snprintf(name, sizeof name, "OpenBLAS %s", openblas_get_corename());
        return name;
    }
#endif
    return kernel == NB__GEMM_AVX512 ? "nabla-avx512" : "portable";
}
