/* A B matrix stored row-major, given to the AVX-512 kernel's packing entry
 * (nb__sgemm_avx512_pack_b) only through a packing function, as a
 * convolution gives its image. */
#ifndef NB_TEST_STORED_B_H
#define NB_TEST_STORED_B_H

#include "kernels/gemm.h"

#ifdef NB_AVX512_GEMM
typedef struct stored_b {
    const float *B;
    int ldb;
} stored_b;

/* nb__pack_b_fn over a stored_b: rows [k0, k0+kc), columns [j0, j0+nv). */
static inline void pack_stored_b(const void *ctx, int k0, int kc, int j0, int nv, float *dst) {
    const stored_b *s = ctx;
    for (int k = 0; k < kc; k++)
        for (int j = 0; j < NB__PANEL; j++)
            dst[k * NB__PANEL + j] = j < nv ? s->B[(size_t)(k0 + k) * s->ldb + j0 + j] : 0;
}
#endif

#endif
