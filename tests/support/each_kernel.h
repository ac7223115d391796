/* The fusion tests' matrix: every matrix kernel (nabla's AVX-512 and AVX2,
 * OpenBLAS, the portable one), on 1 and 2 threads, at batch 1 and 5.  A
 * kernel the CPU lacks falls back to the best it has (nb__gemm_use). */
#ifndef NB_TEST_EACH_KERNEL_H
#define NB_TEST_EACH_KERNEL_H

#include <stdio.h>

#include "kernels/gemm.h"

typedef void (*nb_test_case_fn)(int batch, const char *what);

/* check(batch, what) with each kernel and thread count in force; what names
 * them for messages. */
static inline void nb_test_each_kernel(nb_test_case_fn check) {
    const int kernels[] = {NB__GEMM_AVX512, NB__GEMM_AVX2, NB__GEMM_OPENBLAS, NB__GEMM_PORTABLE};
    for (int k = 0; k < 4; k++)
        for (int threads = 1; threads <= 2; threads++)
            for (int batch = 1; batch <= 5; batch += 4) {
                char what[64];
                snprintf(what, sizeof what, "kernel %d, %d threads, batch %d", kernels[k],
                         threads, batch);
                nb__gemm_use(kernels[k]);
                nb_set_threads(threads);
                check(batch, what);
            }
}

#endif
