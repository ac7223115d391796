/* Shared by the matrix-kernel tests: a kernel's products must be the same
 * bits on 1, 2 and 3 threads. */
#ifndef NB_TEST_GEMM_REPEAT_H
#define NB_TEST_GEMM_REPEAT_H

#include "nabla.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* C = op(A) op(B) + C (row-major, C of N columns) by the kernel under test. */
typedef void (*gemm_under_test)(int ta, int tb, int M, int N, int K, const float *A,
                                const float *B, float *C);

static float *gemm_on_threads(gemm_under_test gemm, int threads, int ta, int tb, int M, int N,
                              int K, const float *A, const float *B, const float *C0) {
    float *C = malloc((size_t)M * N * sizeof *C);
    memcpy(C, C0, (size_t)M * N * sizeof *C);
    CHECK_OK(nb_set_threads(threads));
    gemm(ta, tb, M, N, K, A, B, C);
    return C;
}

/* Every shape {M, N, K} in all four transpose cases, operands from fill(). */
static void check_thread_repeatable(const char *name, gemm_under_test gemm, float (*fill)(void),
                                    const int (*shapes)[3], size_t n_shapes) {
    for (size_t s = 0; s < n_shapes; s++)
        for (int t = 0; t < 4; t++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = t & 1, tb = t >> 1;
            float *A = malloc((size_t)M * K * sizeof *A), *B = malloc((size_t)K * N * sizeof *B);
            float *C0 = malloc((size_t)M * N * sizeof *C0);
            for (size_t i = 0; i < (size_t)M * K; i++) A[i] = fill();
            for (size_t i = 0; i < (size_t)K * N; i++) B[i] = fill();
            for (size_t i = 0; i < (size_t)M * N; i++) C0[i] = fill();
            float *one = gemm_on_threads(gemm, 1, ta, tb, M, N, K, A, B, C0);
            for (int threads = 2; threads <= 3; threads++) {
                float *more = gemm_on_threads(gemm, threads, ta, tb, M, N, K, A, B, C0);
                CHECKF(memcmp(one, more, (size_t)M * N * sizeof *one) == 0,
                       "%s: ta %d tb %d M %d N %d K %d: 1 and %d threads differ", name, ta, tb,
                       M, N, K, threads);
                free(more);
            }
            free(one), free(A), free(B), free(C0);
        }
}

#endif
