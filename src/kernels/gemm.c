/* nb_gemm: chooses the matrix kernel (nabla's AVX-512 kernel when the CPU
 * has it, else its AVX2 kernel when the CPU has AVX2 and FMA, else OpenBLAS
 * when built with it, else the portable kernel; the environment variable
 * NB_GEMM can ask for another) and runs it.  Also the
 * glue to OpenBLAS: how a product is split between nabla's threads, and its
 * name for reports. */
#include "gemm.h"
#include "parallel.h"
#include "../core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

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

/* OpenBLAS splits a product between its own threads by their number, and an
 * element's value can depend on where the split falls (its kernels for the
 * edges of a block sum in another order): results would change with the
 * thread count.  So OpenBLAS always runs on one thread, and nabla cuts each
 * product into tiles whose bounds depend only on the product's shape, one
 * OpenBLAS call per tile, shared between nabla's threads.  Every element of C
 * is then computed by the same call whatever the thread count.
 *
 * Tiles cut C's wider side into strips of 64 to 256 rows or columns (at
 * least 8 strips while they stay 64 wide, so 2 to 8 threads share them
 * evenly), with at least 2^21 multiply-adds each.  A narrower strip repacks
 * the other operand more often. */
enum { TILE_MIN = 64, TILE_MAX = 256, TILES_WANTED = 8, TILE_ALIGN = 16 };
#define TILE_MIN_WORK ((size_t)1 << 21)

typedef struct blas_product {
    int ta, tb, M, N, K, lda, ldb, ldc;
    nb_real alpha, beta;
    const nb_real *A, *B;
    nb_real *C;
    int by_rows; /* strips of rows of C, else of columns */
    int tiles, parts;
} blas_product;

static int tile_count(int M, int N, int K) {
    size_t side = (size_t)(M > N ? M : N), work = (size_t)M * (size_t)N * (size_t)K;
    size_t want = side / TILE_MIN < TILES_WANTED ? side / TILE_MIN : TILES_WANTED;
    if (want < side / TILE_MAX) want = side / TILE_MAX;
    if (want > work / TILE_MIN_WORK) want = work / TILE_MIN_WORK;
    return want < 1 ? 1 : want > 4096 ? 4096 : (int)want;
}

/* C[i0 .. i0+m, j0 .. j0+n) on the calling thread. */
static void blas_call(const blas_product *p, int i0, int m, int j0, int n) {
    const nb_real *a = p->A + (p->ta ? (size_t)i0 : (size_t)i0 * (size_t)p->lda);
    const nb_real *b = p->B + (p->tb ? (size_t)j0 * (size_t)p->ldb : (size_t)j0);
    nb_real *c = p->C + (size_t)i0 * (size_t)p->ldc + (size_t)j0;
#ifdef NB_REAL_DOUBLE
    cblas_dgemm(CblasRowMajor, p->ta ? CblasTrans : CblasNoTrans, p->tb ? CblasTrans : CblasNoTrans,
                m, n, p->K, p->alpha, a, p->lda, b, p->ldb, p->beta, c, p->ldc);
#else
    cblas_sgemm(CblasRowMajor, p->ta ? CblasTrans : CblasNoTrans, p->tb ? CblasTrans : CblasNoTrans,
                m, n, p->K, p->alpha, a, p->lda, b, p->ldb, p->beta, c, p->ldc);
#endif
}

/* Part `part` runs its share of the tiles, each tile one call. */
static void blas_part(void *ctx, int part) {
    const blas_product *p = ctx;
    size_t t0, t1, side = (size_t)(p->by_rows ? p->M : p->N);
    nb__part_range((size_t)p->tiles, part, p->parts, 1, &t0, &t1);
    for (size_t t = t0; t < t1; t++) {
        size_t lo, hi;
        nb__part_range(side, (int)t, p->tiles, TILE_ALIGN, &lo, &hi);
        if (p->by_rows) blas_call(p, (int)lo, (int)(hi - lo), 0, p->N);
        else blas_call(p, 0, p->M, (int)lo, (int)(hi - lo));
    }
}

static void blas_gemm(int ta, int tb, int M, int N, int K, nb_real alpha, const nb_real *A,
                      int lda, const nb_real *B, int ldb, nb_real beta, nb_real *C, int ldc) {
    (void)nb_threads(); /* fixed first: by default it follows OpenBLAS's count */
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
    int threads = nb__free_threads();
    blas_product p = {.ta = ta, .tb = tb, .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb,
                      .ldc = ldc, .alpha = alpha, .beta = beta, .A = A, .B = B, .C = C,
                      .by_rows = M > N, .tiles = tile_count(M, N, K)};
    p.parts = p.tiles < threads ? p.tiles : threads;
    nb__parallel(p.parts, blas_part, &p);
}
#endif

static int chosen = -1;

static int best_available(int want) {
#ifdef NB_AVX512_GEMM
    if (want == NB__GEMM_AVX512 && nb__sgemm_avx512_usable()) return NB__GEMM_AVX512;
#endif
#ifdef NB_AVX2_GEMM
    if (want <= NB__GEMM_AVX2 && nb__sgemm_avx2_usable()) return NB__GEMM_AVX2;
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
        if (env && strcmp(env, "avx2") == 0) want = NB__GEMM_AVX2;
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
#ifdef NB_AVX2_GEMM
    if (kernel == NB__GEMM_AVX2) {
        nb__sgemm_avx2(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#endif
#ifdef NB_USE_CBLAS
    if (kernel == NB__GEMM_OPENBLAS) {
        blas_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#endif
    (void)kernel;
    nb_gemm_portable(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void nb_gemm_at(nb_precision precision, int ta, int tb, int M, int N, int K, nb_real alpha,
                const nb_real *A, int lda, const nb_real *B, int ldb, nb_real beta, nb_real *C,
                int ldc) {
#ifndef NB_REAL_DOUBLE
    if (precision == NB_PRECISION_BF16) {
        nb__gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#endif
    (void)precision;
    nb_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

size_t nb__l2_bytes(void) {
    static size_t bytes;
    if (!bytes) {
        long v = -1;
#ifdef _SC_LEVEL2_CACHE_SIZE
        v = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
        bytes = v > 0 ? (size_t)v : (size_t)1 << 20;
    }
    return bytes;
}

int nb_gemm_dense_fuses_relu(nb_precision precision) {
    int kernel = nb__gemm_kernel();
#ifndef NB_REAL_DOUBLE
    if (precision == NB_PRECISION_BF16) return nb__bf16_kernel() != NB__BF16_NONE;
#endif
    return precision == NB_PRECISION_FP32 &&
           (kernel == NB__GEMM_AVX512 || kernel == NB__GEMM_AVX2);
}

void nb_gemm_dense(nb_precision precision, int M, int N, int K, const nb_real *X,
                   const nb_real *W, const nb_real *bias, int relu, nb_real *Y) {
    if (M == 0 || N == 0) return;
    const int fp32 = precision == NB_PRECISION_FP32;
    (void)fp32;
#ifdef NB_AVX512_GEMM
    if (fp32 && nb__gemm_kernel() == NB__GEMM_AVX512 &&
        nb__sgemm_avx512_dense(M, N, K, X, W, bias, relu, Y))
        return;
#endif
#ifdef NB_AVX2_GEMM
    if (fp32 && nb__gemm_kernel() == NB__GEMM_AVX2 &&
        nb__sgemm_avx2_dense(M, N, K, X, W, bias, relu, Y))
        return;
#endif
#ifndef NB_REAL_DOUBLE
    if (precision == NB_PRECISION_BF16 && nb__gemm_bf16_dense(M, N, K, X, W, bias, relu, Y))
        return;
#endif
    for (int i = 0; bias && i < M; i++) memcpy(Y + (size_t)i * N, bias, (size_t)N * sizeof *Y);
    nb_gemm_at(precision, 0, 1, M, N, K, R(1), X, K, W, K, bias ? R(1) : R(0), Y, N);
    if (relu) nb__relu_run(Y, (size_t)M * N);
}

/* OpenBLAS picks its kernels from a table of the CPUs it knows; a CPU newer
 * than the table gets a generic kernel family (Debian 12's OpenBLAS 0.3.21
 * runs Prescott's SSE3 kernels on a 2023 Xeon, a quarter of the machine's
 * speed).  A family's widest instructions, by name: */
#ifdef NB_USE_CBLAS
static int core_level(const char *core) {
    static const char *const avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
    static const char *const avx2[] = {"Haswell", "Zen", "Excavator"};
    for (size_t i = 0; i < sizeof avx512 / sizeof *avx512; i++)
        if (strcasecmp(core, avx512[i]) == 0) return 2;
    for (size_t i = 0; i < sizeof avx2 / sizeof *avx2; i++)
        if (strcasecmp(core, avx2[i]) == 0) return 1;
    return 0;
}

/* The CPU's: 2 with AVX-512, 1 with AVX2 and FMA, else 0. */
static int cpu_level(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}
#endif

const char *nb_blas_warning(void) {
#ifdef NB_USE_CBLAS
#ifdef NB_REAL_DOUBLE
    int blas_products = 1;
#else
    int blas_products = nb__gemm_kernel() == NB__GEMM_OPENBLAS;
#endif
    static char why[320];
    const char *core = openblas_get_corename(), *asked = getenv("OPENBLAS_CORETYPE");
    int cpu = cpu_level();
    if (!blas_products || core_level(core) >= cpu) return NULL;
    char cause[96] = "this OpenBLAS does not know the CPU";
    if (asked && *asked)
        snprintf(cause, sizeof cause, "OPENBLAS_CORETYPE=%.40s asks for them", asked);
    snprintf(why, sizeof why,
             "OpenBLAS runs its %s kernels, but this CPU has %s (%s): the products run at a "
             "fraction of its speed; OPENBLAS_CORETYPE=%s picks the right ones",
             core, cpu == 2 ? "AVX-512" : "AVX2", cause, cpu == 2 ? "SkylakeX" : "Haswell");
    return why;
#else
    return NULL;
#endif
}

const char *nb_blas_core(void) {
    int kernel = nb__gemm_kernel();
    const char *own = kernel == NB__GEMM_AVX512 ? "nabla-avx512"
                      : kernel == NB__GEMM_AVX2 ? "nabla-avx2"
                                                : NULL;
#ifdef NB_USE_CBLAS
    static char name[96];
    if (own) {
        snprintf(name, sizeof name, "%s (OpenBLAS %s for double only)", own,
                 openblas_get_corename());
        return name;
    }
    if (kernel == NB__GEMM_OPENBLAS) {
        snprintf(name, sizeof name, "OpenBLAS %s", openblas_get_corename());
        return name;
    }
#endif
    return own ? own : "portable";
}
