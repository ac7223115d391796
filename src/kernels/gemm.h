/* General matrix multiply on row-major matrices:
 *   C = alpha * op(A) * op(B) + beta * C
 * op(X) is X or X^T; op(A) is M x K, op(B) is K x N, C is M x N.
 * nb_gemm (gemm.c) runs one of three kernels: nabla's own AVX-512 kernel
 * (sgemm_avx512.c), OpenBLAS when built with it (NB_USE_CBLAS), or the
 * portable one (gemm_portable.c). */
#ifndef NB_GEMM_H
#define NB_GEMM_H

#include "nabla.h"

void nb_gemm(int trans_a, int trans_b, int M, int N, int K, nb_real alpha,
             const nb_real *A, int lda, const nb_real *B, int ldb, nb_real beta,
             nb_real *C, int ldc);

/* nabla's own single-precision kernel for x86-64 CPUs with AVX-512
 * (sgemm_avx512.c), chosen at run time when the CPU has it. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(NB_REAL_DOUBLE)
#define NB_AVX512_GEMM 1
int nb__sgemm_avx512_usable(void);
void nb__sgemm_avx512(int trans_a, int trans_b, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta, float *C,
                      int ldc);
#endif

/* Which kernel nb_gemm runs: the best available, unless the environment
 * variable NB_GEMM says "avx512", "openblas" or "portable" (for comparisons;
 * a kernel that is not available falls back to the next best).  Tests switch
 * with nb__gemm_use. */
enum { NB__GEMM_AVX512, NB__GEMM_OPENBLAS, NB__GEMM_PORTABLE };
int nb__gemm_kernel(void);
void nb__gemm_use(int kernel);

/* The portable kernel, always available (gemm_portable.c). */
void nb_gemm_portable(int trans_a, int trans_b, int M, int N, int K, nb_real alpha,
                      const nb_real *A, int lda, const nb_real *B, int ldb,
                      nb_real beta, nb_real *C, int ldc);

#endif
