/* Every matrix kernel nabla can run (its AVX-512 and AVX2 kernels where the
 * CPU has them, OpenBLAS where built with it, the portable one) against a product computed
 * in double: all four transpose cases, shapes around the kernels' tile and
 * block edges, leading dimensions larger than the rows, alpha and beta
 * (beta == 0 must not read C: it starts as NaN there), on 1 and 2 threads.
 * And every kernel gives the same bits on 1, 2 and 3 threads. */
#include "nabla.h"
#include "test.h"
#include "kernels/gemm.h"
#include "gemm_repeat.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long state = 12345;
static float uniform(void) { /* in [-1, 1), exactly representable */
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((int)(state >> 41) - (1 << 22)) / (float)(1 << 22);
}

/* Largest |C - reference| / (1 + sqrt K) (float rounding of a sum of K
 * products of numbers below 1 in size); -1 if C outside the product was
 * touched. */
static double run_case(int kernel, int ta, int tb, int M, int N, int K, float alpha, float beta) {
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 7;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb,
           nc = (size_t)M * ldc;
    float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B), *C = malloc(nc * sizeof *C);
    double *ref = malloc((size_t)M * N * sizeof *ref);
    for (size_t i = 0; i < na; i++) A[i] = uniform();
    for (size_t i = 0; i < nb; i++) B[i] = uniform();
    for (size_t i = 0; i < nc; i++) C[i] = beta == 0 ? NAN : uniform();
    double worst = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += a * b;
            }
            double c0 = beta == 0 ? 0 : C[(size_t)i * ldc + j];
            ref[(size_t)i * N + j] = alpha * s + beta * c0;
        }
    nb__gemm_use(kernel);
    nb_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            float c = C[(size_t)i * ldc + j];
            if (j >= N) { /* padding must stay as it was */
                if (beta == 0 ? !isnan(c) : 0) worst = -1;
                continue;
            }
            double e = fabs(c - ref[(size_t)i * N + j]) / (1.0 + sqrt((double)K));
            if (!(e <= worst) && worst >= 0) worst = e;
        }
    free(A), free(B), free(C), free(ref);
    return worst;
}

/* The kernel under test, as gemm_repeat.h calls it. */
static void float_gemm(int ta, int tb, int M, int N, int K, const float *A, const float *B,
                       float *C) {
    nb_gemm(ta, tb, M, N, K, 1, A, ta ? M : K, B, tb ? K : N, 1, C, N);
}

/* Where the CPU has AVX-512, the AVX2 kernel must give the AVX-512 kernel's
 * bits on every product of more than 4 rows (the same multiply-add chains):
 * all transposes, partial tiles and panels of both, several K blocks, alpha
 * and beta. */
static void check_avx2_bits(void) {
    static const int shapes[][3] = {{5, 1, 1},   {6, 16, 256}, {7, 17, 257}, {12, 32, 600},
                                    {13, 33, 3}, {97, 100, 300}, {128, 10, 784}, {300, 70, 9}};
    nb__gemm_use(NB__GEMM_AVX512);
    int have512 = nb__gemm_kernel() == NB__GEMM_AVX512;
    nb__gemm_use(NB__GEMM_AVX2);
    if (!have512 || nb__gemm_kernel() != NB__GEMM_AVX2) {
        printf("AVX-512 or AVX2 kernel not available here: bit comparison skipped\n");
        return;
    }
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 8; t++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = t & 1, tb = (t >> 1) & 1;
            float alpha = t & 4 ? -0.5f : 1, beta = t & 4 ? 0.25f : 0;
            size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
            float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B);
            float *C[2] = {malloc(nc * sizeof(float)), malloc(nc * sizeof(float))};
            for (size_t i = 0; i < na; i++) A[i] = uniform();
            for (size_t i = 0; i < nb; i++) B[i] = uniform();
            for (size_t i = 0; i < nc; i++) C[0][i] = C[1][i] = uniform();
            for (int k = 0; k < 2; k++) {
                nb__gemm_use(k ? NB__GEMM_AVX2 : NB__GEMM_AVX512);
                nb_gemm(ta, tb, M, N, K, alpha, A, ta ? M : K, B, tb ? K : N, beta, C[k], N);
            }
            CHECKF(nb_test_same_bits(C[0], C[1], nc), "avx2 bits: ta %d tb %d M %d N %d K %d "
                   "alpha %g beta %g", ta, tb, M, N, K, alpha, beta);
            free(A), free(B), free(C[0]), free(C[1]);
        }
}

/* The products of a dense layer's training step (784 -> 256 on 128 rows)
 * and a wide one must not change with the thread count. */
static void check_repeatable(int kernel, const char *name) {
    static const int shapes[][3] = {{128, 256, 784}, {128, 784, 256}, {256, 784, 128},
                                    {128, 128, 256}, {300, 1000, 200}, {1000, 70, 300}};
    nb__gemm_use(kernel);
    check_thread_repeatable(name, float_gemm, uniform, shapes, sizeof shapes / sizeof *shapes);
}

/* Rows of A a multiple of 4 KiB apart are packed before the product
 * (sgemm_avx512.c): the same numbers with another stride must give the
 * same bits, on one row block and on several. */
static void check_aliasing_rows(int kernel, const char *name) {
    static const int shapes[][3] = {{150, 70, 1000}, {37, 100, 300}, {300, 33, 20}};
    nb__gemm_use(kernel);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int tb = 0; tb < 2; tb++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ldb = tb ? K : N;
            float *A = malloc((size_t)M * 1024 * sizeof *A), *B = malloc((size_t)K * N * sizeof *B);
            float *A2 = malloc((size_t)M * 1031 * sizeof *A2);
            float *C = malloc((size_t)M * N * sizeof *C), *C2 = malloc((size_t)M * N * sizeof *C2);
            for (int i = 0; i < M; i++)
                for (int k = 0; k < K; k++) A[i * 1024 + k] = A2[i * 1031 + k] = uniform();
            for (int i = 0; i < K * N; i++) B[i] = uniform();
            for (int i = 0; i < M * N; i++) C[i] = C2[i] = uniform();
            nb_gemm(0, tb, M, N, K, 0.75f, A, 1024, B, ldb, 0.5f, C, N);
            nb_gemm(0, tb, M, N, K, 0.75f, A2, 1031, B, ldb, 0.5f, C2, N);
            CHECKF(memcmp(C, C2, (size_t)M * N * sizeof *C) == 0,
                   "%s: lda 1024 and 1031 differ, M %d N %d K %d tb %d", name, M, N, K, tb);
            free(A), free(A2), free(B), free(C), free(C2);
        }
}

int main(void) {
    static const int shapes[][3] = {
        {1, 1, 1},     {1, 10, 784},  {3, 7, 5},     {12, 32, 1},   {11, 31, 17},
        {13, 33, 257}, {24, 64, 256}, {25, 65, 513}, {128, 10, 128}, {10, 128, 128},
        {97, 100, 300}, {130, 96, 40}, {200, 300, 9},  {2, 1000, 3},  {300, 2, 70},
        {1, 300, 300}, {3, 257, 400}, {4, 1000, 70}, {2, 40, 2100},
    };
    static const int kernels[] = {NB__GEMM_AVX512, NB__GEMM_AVX2, NB__GEMM_OPENBLAS,
                                  NB__GEMM_PORTABLE};
    static const char *names[] = {"avx512", "avx2", "openblas", "portable"};
    for (int kk = 0; kk < 4; kk++) {
        nb__gemm_use(kernels[kk]);
        if (nb__gemm_kernel() != kernels[kk]) {
            printf("%s kernel not available here: skipped\n", names[kk]);
            continue;
        }
        for (int threads = 1; threads <= 2; threads++) {
            CHECK_OK(nb_set_threads(threads));
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                for (int t = 0; t < 12; t++) {
                    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ab = t / 4;
                    float alpha = ab == 1 ? -0.5f : 1, beta = ab == 0 ? 0 : ab == 1 ? 1 : 0.25f;
                    double e = run_case(kernels[kk], t & 1, (t >> 1) & 1, M, N, K, alpha, beta);
                    CHECKF(e >= 0 && e < 1e-5, "%s threads %d ta %d tb %d M %d N %d K %d: "
                           "alpha %g beta %g: error %g", names[kk], threads, t & 1,
                           (t >> 1) & 1, M, N, K, alpha, beta, e);
                }
        }
        check_repeatable(kernels[kk], names[kk]);
        check_aliasing_rows(kernels[kk], names[kk]);
    }
    check_avx2_bits();
    /* K = 0: C = beta C */
    float c[4] = {1, 2, 3, 4}, a[1] = {0}, b[1] = {0};
    nb__gemm_use(NB__GEMM_AVX512);
    nb_gemm(0, 0, 2, 2, 0, 1, a, 1, b, 2, 0.5f, c, 2);
    CHECK(c[0] == 0.5f && c[3] == 2.0f);
    TEST_END();
}
