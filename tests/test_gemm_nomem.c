/* When nabla's AVX-512 or AVX2 kernel cannot allocate its packing buffers,
 * it computes on the portable kernel instead, and gives the portable
 * kernel's results: plain products (all transposes, alpha and beta) and the
 * dense form with its bias and relu (nb_gemm_dense), bit for bit; the
 * AVX-512 entry whose B comes through a packing function (convolutions)
 * sums on its own and is checked against double precision; the bf16 dense
 * form falls back to its scalar loop with the bias and relu after it.  The
 * buffers' allocation fails here because this program defines aligned_alloc,
 * which the statically linked library then calls; without AddressSanitizer
 * only (its allocator must see every allocation it later frees). */
#include "nabla.h"
#include "test.h"
#include "kernels/gemm.h"
#include "stored_b.h"

#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
int main(void) {
    printf("skipped under AddressSanitizer\n");
    TEST_END();
}
#else

static int fail_alloc; /* aligned_alloc returns NULL while set */
static int failed_allocs;

void *aligned_alloc(size_t alignment, size_t size) {
    if (fail_alloc) {
        failed_allocs++;
        return NULL;
    }
    return memalign(alignment, size);
}

static unsigned long long state = 99;
static float uniform(void) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((int)(state >> 41) - (1 << 22)) / (float)(1 << 22);
}

static float *random_matrix(size_t n) {
    float *m = malloc(n * sizeof *m);
    for (size_t i = 0; i < n; i++) m[i] = uniform();
    return m;
}

/* kernel's product against the portable kernel's, both from the same C */
static int same_product(int kernel, int ta, int tb, int M, int N, int K, float alpha, float beta) {
    float *A = random_matrix((size_t)M * K), *B = random_matrix((size_t)K * N);
    float *C0 = random_matrix((size_t)M * N), *C1 = malloc((size_t)M * N * sizeof *C1);
    memcpy(C1, C0, (size_t)M * N * sizeof *C1);
    nb__gemm_use(NB__GEMM_PORTABLE);
    nb_gemm(ta, tb, M, N, K, alpha, A, ta ? M : K, B, tb ? K : N, beta, C0, N);
    nb__gemm_use(kernel);
    fail_alloc = 1;
    nb_gemm(ta, tb, M, N, K, alpha, A, ta ? M : K, B, tb ? K : N, beta, C1, N);
    fail_alloc = 0;
    int same = nb_test_same_bits(C0, C1, (size_t)M * N);
    free(A), free(B), free(C0), free(C1);
    return same;
}

/* nb_gemm_dense on kernel against its definition on the portable kernel */
static int same_dense(int kernel, int M, int N, int K, int relu) {
    float *X = random_matrix((size_t)M * K), *W = random_matrix((size_t)K * N);
    float *b = random_matrix((size_t)N);
    float *Y0 = malloc((size_t)M * N * sizeof *Y0), *Y1 = malloc((size_t)M * N * sizeof *Y1);
    nb__gemm_use(NB__GEMM_PORTABLE);
    nb_gemm_dense(NB_PRECISION_FP32, M, N, K, X, W, b, relu, Y0);
    nb__gemm_use(kernel);
    fail_alloc = 1;
    nb_gemm_dense(NB_PRECISION_FP32, M, N, K, X, W, b, relu, Y1);
    fail_alloc = 0;
    int same = nb_test_same_bits(Y0, Y1, (size_t)M * N);
    free(X), free(W), free(b), free(Y0), free(Y1);
    return same;
}

#ifdef NB_AVX512_GEMM
/* The packing entry without buffers (its own fallback, summed in another
 * order than the kernels): C = relu(bias + A B) against double precision. */
static int packed_entry_close(int M, int N, int K, int relu) {
    float *A = random_matrix((size_t)M * K), *B = random_matrix((size_t)K * N);
    float *bias = random_matrix((size_t)M), *C = malloc((size_t)M * N * sizeof *C);
    stored_b src = {.B = B, .ldb = N};
    fail_alloc = 1;
    nb__sgemm_avx512_pack_b(M, N, K, A, K, pack_stored_b, &src, bias, relu, C, N);
    fail_alloc = 0;
    int close = 1;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = bias[i];
            for (int k = 0; k < K; k++) s += (double)A[(size_t)i * K + k] * B[(size_t)k * N + j];
            if (relu && s < 0) s = 0;
            if (fabs(C[(size_t)i * N + j] - s) > 1e-5 * (1 + sqrt((double)K))) close = 0;
        }
    free(A), free(B), free(bias), free(C);
    return close;
}
#endif

#ifdef NB_BF16_GEMM
/* The bf16 dense form without buffers (the scalar loop, then the bias and
 * relu) against the same loop on a C prefilled with the bias and a relu
 * pass after: the same bits. */
static int same_dense_bf16(int M, int N, int K, int relu) {
    float *X = random_matrix((size_t)M * K), *W = random_matrix((size_t)K * N);
    float *b = random_matrix((size_t)N);
    float *Y0 = malloc((size_t)M * N * sizeof *Y0), *Y1 = malloc((size_t)M * N * sizeof *Y1);
    fail_alloc = 1;
    for (int i = 0; i < M; i++) memcpy(Y0 + (size_t)i * N, b, (size_t)N * sizeof *Y0);
    nb__gemm_bf16(0, 1, M, N, K, 1, X, K, W, K, 1, Y0, N);
    for (size_t k = 0; relu && k < (size_t)M * N; k++)
        if (Y0[k] <= 0) Y0[k] = 0;
    nb_gemm_dense(NB_PRECISION_BF16, M, N, K, X, W, b, relu, Y1);
    fail_alloc = 0;
    int same = nb_test_same_bits(Y0, Y1, (size_t)M * N);
    free(X), free(W), free(b), free(Y0), free(Y1);
    return same;
}
#endif

int main(void) {
    /* one thread: no pool worker has buffers from its start, and this
     * thread has none before the first product below */
    CHECK_OK(nb_set_threads(1));
    static const int kernels[] = {NB__GEMM_AVX512, NB__GEMM_AVX2};
    static const char *names[] = {"avx512", "avx2"};
    for (int k = 0; k < 2; k++) {
        nb__gemm_use(kernels[k]);
        if (nb__gemm_kernel() != kernels[k]) {
            printf("%s kernel not available here: skipped\n", names[k]);
            continue;
        }
        int before = failed_allocs;
        for (int t = 0; t < 8; t++)
            CHECKF(same_product(kernels[k], t & 1, (t >> 1) & 1, 37, 45, 300, t & 4 ? -0.5f : 1,
                                t & 4 ? 0.25f : 0),
                   "%s without buffers: ta %d tb %d differs from the portable kernel", names[k],
                   t & 1, (t >> 1) & 1);
        for (int relu = 0; relu < 2; relu++)
            CHECKF(same_dense(kernels[k], 40, 37, 300, relu),
                   "%s without buffers: the dense form (relu %d) differs", names[k], relu);
        CHECKF(failed_allocs > before, "%s: the buffers' allocation was not attempted", names[k]);
    }
#ifdef NB_AVX512_GEMM
    if (nb__sgemm_avx512_usable()) {
        int before = failed_allocs;
        for (int relu = 0; relu < 2; relu++)
            CHECKF(packed_entry_close(30, 70, 40, relu),
                   "avx512 packing entry without buffers (relu %d): far from the product", relu);
        CHECKF(failed_allocs > before, "avx512 packing entry: no allocation was attempted");
    }
#endif
#ifdef NB_BF16_GEMM
    if (nb__bf16_kernel() != NB__BF16_NONE) {
        int before = failed_allocs;
        for (int relu = 0; relu < 2; relu++)
            CHECKF(same_dense_bf16(40, 37, 300, relu),
                   "bf16 dense form without buffers (relu %d): not the prefilled form's bits",
                   relu);
        CHECKF(failed_allocs > before, "bf16: the buffers' allocation was not attempted");
    }
#endif
    TEST_END();
}
#endif
