/* The bf16 matrix kernels (AMX and AVX512-BF16, where the CPU has them)
 * against a product computed in double on the operands rounded to bf16 by
 * this file's own round-to-nearest-even.  Products of two bf16 are exact in
 * float, so the only error left is the float summation: within
 * (K + 8) 2^-24 of sum |alpha a b| + |beta c|.  Rounding the operands any
 * other way (truncation, or no rounding) errs by about 2^-9 of each term,
 * hundreds of times more at these depths.  All four transpose cases, shapes
 * around the tile and block edges, odd K, leading dimensions larger than the
 * rows, alpha and beta (beta == 0 must not read C), 1 and 2 threads; the same
 * bits on 1, 2 and 3 threads; exact ties of the rounding. */
#include "nabla.h"
#include "test.h"
#include "kernels/gemm.h"
#include "gemm_repeat.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long state = 777;
static float uniform(void) { /* in [-1, 1), with all 24 bits of a float used */
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((int)(state >> 40) - (1 << 23)) / (float)(1 << 23);
}

/* Round to nearest even on the bit pattern (finite, normal values). */
static double bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u += 0x7FFFu + ((u >> 16) & 1);
    u &= 0xFFFF0000u;
    memcpy(&x, &u, sizeof u);
    return x;
}

/* Largest |C - reference| / bound; -1 if C outside the product was touched. */
static double run_case(int ta, int tb, int M, int N, int K, float alpha, float beta) {
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 7;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb,
           nc = (size_t)M * ldc;
    float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B), *C = malloc(nc * sizeof *C);
    double *ref = malloc((size_t)M * N * sizeof *ref), *mag = malloc((size_t)M * N * sizeof *mag);
    for (size_t i = 0; i < na; i++) A[i] = uniform();
    for (size_t i = 0; i < nb; i++) B[i] = uniform();
    for (size_t i = 0; i < nc; i++) C[i] = beta == 0 ? NAN : uniform();
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, m = 0;
            for (int k = 0; k < K; k++) {
                double a = bf16(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
                double b = bf16(tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                s += a * b, m += fabs(a * b);
            }
            double c0 = beta == 0 ? 0 : C[(size_t)i * ldc + j];
            ref[(size_t)i * N + j] = alpha * s + beta * c0;
            mag[(size_t)i * N + j] = fabs(alpha) * m + fabs(beta * c0);
        }
    nb__gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    double worst = 0, unit = ldexp(1.0, -24) * (K + 8);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            float c = C[(size_t)i * ldc + j];
            if (j >= N) { /* padding must stay as it was */
                if (beta == 0 ? !isnan(c) : 0) worst = -1;
                continue;
            }
            double e = fabs(c - ref[(size_t)i * N + j]) / (unit * mag[(size_t)i * N + j] + 1e-30);
            if (!(e <= worst) && worst >= 0) worst = e;
        }
    free(A), free(B), free(C), free(ref), free(mag);
    return worst;
}

static void bf16_gemm(int ta, int tb, int M, int N, int K, const float *A, const float *B,
                      float *C) {
    nb__gemm_bf16(ta, tb, M, N, K, 1, A, ta ? M : K, B, tb ? K : N, 1, C, N);
}

static void check_repeatable(const char *name) {
    static const int shapes[][3] = {{128, 1024, 784}, {128, 784, 1024}, {1024, 784, 128},
                                    {300, 1000, 200}, {1000, 70, 301}, {64, 121, 288}};
    check_thread_repeatable(name, bf16_gemm, uniform, shapes, sizeof shapes / sizeof *shapes);
}

/* 1 x 1 products of exact ties: the bf16 of 1 + 2^-8 is 1 (even), of
 * 1 + 3 2^-8 is 1 + 2^-6 (even), of -(1 + 2^-8 + 2^-20) is -(1 + 2^-7) (above
 * the tie); a float below 2^-126 becomes 0. */
static void check_ties(const char *name) {
    static const float in[] = {1.00390625f, 1.01171875f, -1.00390720f, 1e-39f, 3.0f};
    static const float out[] = {1.0f, 1.015625f, -1.0078125f, 0.0f, 3.0f};
    for (int t = 0; t < 4; t++)
        for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
            float one = 1, c = 7;
            nb__gemm_bf16(t & 1, t >> 1, 1, 1, 1, 1, &in[i], 1, &one, 1, 0, &c, 1);
            CHECKF(c == out[i], "%s ta %d tb %d: bf16(%.9g) gave %.9g, expected %.9g", name,
                   t & 1, t >> 1, (double)in[i], (double)c, (double)out[i]);
            nb__gemm_bf16(t & 1, t >> 1, 1, 1, 1, 1, &one, 1, &in[i], 1, 0, &c, 1);
            CHECKF(c == out[i], "%s ta %d tb %d: B = %.9g gave %.9g", name, t & 1, t >> 1,
                   (double)in[i], (double)c);
        }
}

/* The dense layer's forward with the bias and relu in the store
 * (nb_gemm_dense in bf16) against the same product on a C prefilled with
 * the bias (beta = 1) and a relu pass after: the same bits, with one and
 * two K blocks, narrow and ragged N, and at most 4 rows (the caller's path);
 * values exactly 0 and negative ones both become 0, NaN stays. */
static void check_dense(const char *name) {
    static const int shapes[][3] = {{128, 1024, 784}, {128, 10, 128}, {37, 45, 1100},
                                    {5, 33, 70},      {4, 100, 50},   {1, 7, 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *X = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * N * K);
        float *bias = malloc(sizeof(float) * N), *got = malloc(sizeof(float) * M * N);
        float *want = malloc(sizeof(float) * M * N);
        for (int k = 0; k < M * K; k++) X[k] = uniform();
        for (int k = 0; k < N * K; k++) W[k] = uniform();
        for (int j = 0; j < N; j++) bias[j] = uniform();
        X[0] = NAN; /* row 0 of Y is NaN: relu keeps it */
        for (int relu = 0; relu < 2; relu++) {
            for (int i = 0; i < M; i++) memcpy(want + (size_t)i * N, bias, sizeof(float) * N);
            nb__gemm_bf16(0, 1, M, N, K, 1, X, K, W, K, 1, want, N);
            for (int k = 0; relu && k < M * N; k++)
                if (want[k] <= 0) want[k] = 0;
            for (int k = 0; k < M * N; k++) got[k] = 12345; /* beta 0: never read */
            nb_gemm_dense(NB_PRECISION_BF16, M, N, K, X, W, bias, relu, got);
            CHECKF(memcmp(got, want, sizeof(float) * M * N) == 0,
                   "%s dense M %d N %d K %d relu %d: not the bits of bias + product (+ relu)",
                   name, M, N, K, relu);
        }
        free(X), free(W), free(bias), free(got), free(want);
    }
}

int main(void) {
    static const int shapes[][3] = {
        {1, 1, 1},      {1, 10, 784},   {3, 7, 5},     {12, 32, 1},    {11, 31, 17},
        {13, 33, 257},  {24, 64, 256},  {25, 65, 513}, {33, 47, 1025}, {128, 10, 128},
        {10, 128, 127}, {97, 100, 300}, {130, 96, 40}, {200, 300, 9},  {2, 1000, 3},
        {300, 2, 70},   {193, 2049, 33}, {4, 1000, 70}, {64, 121, 288}, {32, 676, 9},
        {1, 300, 300},  {2, 70, 5000},
    };
    static const int kernels[] = {NB__BF16_AMX, NB__BF16_AVX512};
    static const char *names[] = {"amx", "avx512-bf16"};
    for (int kk = 0; kk < 2; kk++) {
        nb__bf16_use(kernels[kk]);
        if (nb__bf16_kernel() != kernels[kk]) {
            printf("%s kernel not available here: skipped\n", names[kk]);
            continue;
        }
        check_ties(names[kk]);
        for (int threads = 1; threads <= 2; threads++) {
            CHECK_OK(nb_set_threads(threads));
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                for (int t = 0; t < 12; t++) {
                    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ab = t / 4;
                    float alpha = ab == 1 ? -0.5f : 1, beta = ab == 0 ? 0 : ab == 1 ? 1 : 0.25f;
                    double e = run_case(t & 1, (t >> 1) & 1, M, N, K, alpha, beta);
                    CHECKF(e >= 0 && e <= 1, "%s threads %d ta %d tb %d M %d N %d K %d: "
                           "alpha %g beta %g: error %g of the bound", names[kk], threads, t & 1,
                           (t >> 1) & 1, M, N, K, alpha, beta, e);
                }
        }
        check_repeatable(names[kk]);
        for (int threads = 1; threads <= 2; threads++) {
            CHECK_OK(nb_set_threads(threads));
            check_dense(names[kk]);
        }
    }
    /* K = 0: C = beta C */
    nb__bf16_use(NB__BF16_AMX);
    float c[4] = {1, 2, 3, 4}, a[1] = {0}, b[1] = {0};
    nb__gemm_bf16(0, 0, 2, 2, 0, 1, a, 1, b, 2, 0.5f, c, 2);
    CHECK(c[0] == 0.5f && c[3] == 2.0f);
    TEST_END();
}
