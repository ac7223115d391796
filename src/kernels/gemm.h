/* General matrix multiply on row-major matrices:
 *   C = alpha * op(A) * op(B) + beta * C
 * op(X) is X or X^T; op(A) is M x K, op(B) is K x N, C is M x N.
 * Backed by CBLAS when built with it (NB_USE_CBLAS), else by a portable
 * blocked kernel (also used by the tests as the reference). */
#ifndef NB_GEMM_H
#define NB_GEMM_H

#include "nabla.h"

void nb_gemm(int trans_a, int trans_b, int M, int N, int K, nb_real alpha,
             const nb_real *A, int lda, const nb_real *B, int ldb, nb_real beta,
             nb_real *C, int ldc);

/* The portable kernel, always available. */
void nb_gemm_portable(int trans_a, int trans_b, int M, int N, int K, nb_real alpha,
                      const nb_real *A, int lda, const nb_real *B, int ldb,
                      nb_real beta, nb_real *C, int ldc);

#endif
