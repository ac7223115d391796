/* General matrix multiply on row-major matrices:
 *   C = alpha * op(A) * op(B) + beta * C
 * op(X) is X or X^T; op(A) is M x K, op(B) is K x N, C is M x N.
 * nb_gemm (gemm.c) runs one of four kernels: nabla's own AVX-512 kernel
 * (sgemm_avx512.c), its own AVX2 kernel (sgemm_avx2.c) on CPUs without
 * AVX-512, OpenBLAS when built with it (NB_USE_CBLAS), or the portable one
 * (gemm_portable.c). */
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

/* A dense layer's forward on the same kernel: Y [M, N] = X [M, K] W^T
 * (W is [N, K]) + bias[j] on each column j (when bias is not NULL), then
 * relu (nb__relu) when relu is set, both applied as each tile is stored.
 * The results are those of nb__sgemm_avx512 with Y prefilled with the bias
 * and beta = 1, then a relu pass, bit for bit.  Returns 0, having done
 * nothing, for at most 4 rows or K = 0 (the matrix-vector path: the caller
 * runs that prefilled form itself, as nb_gemm_dense does). */
int nb__sgemm_avx512_dense(int M, int N, int K, const float *X, const float *W,
                           const float *bias, int relu, float *Y);

/* The same kernel with a B that is never stored whole (a convolution's
 * column matrix): C [M, N] = A [M, K] B [K, N] (+ bias[i] on row i when bias
 * is not NULL; then relu when relu is set), where pack(ctx, k0, kc, j0, nv,
 * dst) writes rows [k0, k0+kc) and columns [j0, j0+nv) of B, nv <= NB__PANEL,
 * into dst[k*NB__PANEL + j], zero for j >= nv.  For M > 4 the results are
 * those of nb__sgemm_avx512 on the stored B with C prefilled with the bias
 * and beta = 1 (then a relu pass), bit for bit (at most 4 rows, that one
 * takes a matrix-vector path instead).  Threads split the columns; pack may
 * run on several of them at once. */
enum { NB__PANEL = 32 };
typedef void (*nb__pack_b_fn)(const void *ctx, int k0, int kc, int j0, int nv, float *dst);
void nb__sgemm_avx512_pack_b(int M, int N, int K, const float *A, int lda, nb__pack_b_fn pack,
                             const void *ctx, const float *bias, int relu, float *C, int ldc);

/* A convolution's product read straight from the image, for one stride
 * along columns: y[m][r * width + i] = bias[m] + sum_k w[m][k] x[r *
 * row_step + i + off[k]] (then relu), for output rows r < rows and positions
 * i < width.  The image's padding must be written out (off[k] is term k's
 * offset from an output position's window origin).  The pixels of a row
 * are the rows of the tiles (up to 14 of them, broadcast from the image) and
 * 32 channels of packed weights their columns: no column matrix is packed,
 * and a row of 14 positions fills a tile where 32-position panels of 196
 * positions leave an eighth of the last one empty.  The bits are those of
 * nb__sgemm_avx512_pack_b on the same product (the same terms in the same
 * order, K blocks of the same depth, bias with the first and relu after the
 * last).  The weights come packed: panel p (channels 32 p ..) at packed + p
 * K NB__PANEL, k-major, zero past M (nb__direct_pack packs w [M][K] so; a
 * caller may write other weights in that layout).  Channels [m0, m1), m0 a
 * multiple of 16, on this thread: a panel's half (16 channels, or fewer at
 * the end of M) is computed 16 lanes wide, so two threads can split one. */
typedef struct nb__direct_conv {
    int M, K;              /* output channels; terms per output */
    const float *packed;   /* the weights' panels */
    const float *bias;     /* [M], or NULL */
    int relu;
    const float *x;        /* the image, its padding written out */
    const int *off;        /* [K] */
    int rows, width;       /* of the output */
    long row_step;         /* between output rows, in x */
    float *y;              /* [M][rows * width] */
} nb__direct_conv;
void nb__sgemm_avx512_direct(const nb__direct_conv *d, int m0, int m1);
/* The panels of w [M][K] covering channels [m0, m1) into packed (at their
 * places: panel p at packed + p K NB__PANEL), m0 a multiple of 16: of a half
 * panel only its 16 lanes are written; room for every panel of M is
 * nb__direct_packed_len(M, K) floats. */
void nb__direct_pack(const float *w, int M, int K, int m0, int m1, float *packed);
static inline size_t nb__direct_packed_len(int M, int K) {
    return (size_t)(M + NB__PANEL - 1) / NB__PANEL * NB__PANEL * (size_t)K;
}

/* Rows [0, m) of a C tile NB__PANEL floats wide, ldc apart, fetched into L1
 * to be written: the packed kernels (fp32 and bf16) read a tile with beta !=
 * 0 only after their k loop, and a tile of a C too large for L2 is not in
 * cache even when they only write it (each line's fetch for ownership then
 * stalls the stores); fetching it as the loop starts hides the wait.  A
 * row's 128 bytes span two cache lines, or three when not 64-byte aligned. */
static inline void nb__prefetch_tile(const float *c, long ldc, int m) {
    for (int i = 0; i < m; i++) {
        __builtin_prefetch(c + i * ldc, 1, 3);
        __builtin_prefetch(c + i * ldc + 16, 1, 3);
        __builtin_prefetch(c + i * ldc + NB__PANEL - 1, 1, 3);
    }
}
#endif

/* nabla's single-precision kernel for x86-64 CPUs with AVX2 and FMA but not
 * AVX-512 (sgemm_avx2.c): the AVX-512 kernel's scheme at half the width,
 * giving its bits wherever that one takes its packed path (more than 4
 * rows). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(NB_REAL_DOUBLE)
#define NB_AVX2_GEMM 1
int nb__sgemm_avx2_usable(void);
void nb__sgemm_avx2(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* The dense form on it, as nb__sgemm_avx512_dense (the same bits). */
int nb__sgemm_avx2_dense(int M, int N, int K, const float *X, const float *W, const float *bias,
                         int relu, float *Y);
#endif

/* Which kernel nb_gemm runs: the best available (in this order), unless the
 * environment variable NB_GEMM says "avx2", "openblas" or "portable" (for
 * comparisons; a kernel that is not available falls back to the next best).
 * Tests switch with nb__gemm_use. */
enum { NB__GEMM_AVX512, NB__GEMM_AVX2, NB__GEMM_OPENBLAS, NB__GEMM_PORTABLE };
int nb__gemm_kernel(void);
void nb__gemm_use(int kernel);

/* Mixed precision (gemm_bf16.c): the products of operands rounded to
 * bfloat16 (to nearest even), summed in fp32; C is fp32.  Kernels: AMX
 * (TDPBF16PS) where the CPU has it and the OS grants its tiles, else
 * AVX512-BF16 (VDPBF16PS), else none.  The environment variable NB_BF16
 * ("avx512", "none") asks for a lesser one; tests switch with nb__bf16_use. */
#if defined(__x86_64__) && !defined(NB_REAL_DOUBLE) &&                                          \
    ((defined(__clang__) && __clang_major__ >= 12) ||                                          \
     (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define NB_BF16_GEMM 1
#endif
enum { NB__BF16_NONE, NB__BF16_AVX512, NB__BF16_AMX };
int nb__bf16_kernel(void);
void nb__bf16_use(int kernel);
const char *nb__bf16_kernel_name(void);
/* NULL when a bf16 kernel runs here, else why not ("this CPU has ..."). */
const char *nb__bf16_missing(void);
void nb__gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* The dense layer's forward (nb_gemm_dense) in bf16: Y = X W^T + bias, then
 * relu, the bias and relu added as each tile is stored.  Returns 0 (nothing
 * done) where the caller's path runs: no bf16 kernel, or at most 4 rows. */
int nb__gemm_bf16_dense(int M, int N, int K, const float *X, const float *W, const float *bias,
                        int relu, float *Y);

/* nb_gemm at a graph's precision: NB_PRECISION_BF16 runs nb__gemm_bf16. */
void nb_gemm_at(nb_precision precision, int trans_a, int trans_b, int M, int N, int K,
                nb_real alpha, const nb_real *A, int lda, const nb_real *B, int ldb,
                nb_real beta, nb_real *C, int ldc);

/* A dense layer's forward: Y [M, N] = X [M, K] W^T (W is [N, K]) + bias[j]
 * on each column j (bias may be NULL), then relu when relu is set.  On
 * nabla's AVX-512 and AVX2 kernels in fp32 and its bf16 kernels
 * (nb_gemm_dense_fuses_relu) the bias and
 * the relu are applied as each tile of Y is stored; elsewhere Y is
 * prefilled with the bias, the product added (nb_gemm_at) and the relu is a
 * plain pass after, so callers that want a parallel relu pass there use
 * relu = 0 and run their own.  The same bits both ways. */
int nb_gemm_dense_fuses_relu(nb_precision precision);
void nb_gemm_dense(nb_precision precision, int M, int N, int K, const nb_real *X,
                   const nb_real *W, const nb_real *bias, int relu, nb_real *Y);

/* This core's L2 cache in bytes (1 MiB where the C library cannot tell). */
size_t nb__l2_bytes(void);

/* Is an M x N float C larger than L2 (its tiles then prefetched for the
 * store, nb__prefetch_tile)? */
static inline int nb__cold_c(int M, int N) {
    return (size_t)M * (size_t)N * sizeof(float) > nb__l2_bytes();
}

/* The portable kernel, always available (gemm_portable.c). */
void nb_gemm_portable(int trans_a, int trans_b, int M, int N, int K, nb_real alpha,
                      const nb_real *A, int lda, const nb_real *B, int ldb,
                      nb_real beta, nb_real *C, int ldc);

/* C = beta C (0 where beta is 0, whatever C held), as BLAS for K = 0 or
 * alpha = 0. */
void nb__gemm_scale_c(int M, int N, nb_real beta, nb_real *C, int ldc);

/* Copy micro-panel rows [i, i+m) x [p0, p0+kc) of op(A) k-major into dst
 * (dst[k*mr + r]), zero rows m .. mr-1: the packed kernels' last, partial
 * row block, so that no read passes the end of A. */
void nb__pack_a_panel(int ta, const nb_real *A, int lda, int i, int m, int p0, int kc, int mr,
                      nb_real *dst);

/* Rows [i0, i1) x columns [j0, j1) of C = alpha op(A) op(B) + beta C on the
 * portable kernel; with col_bias (the dense form, beta unused) C starts as
 * col_bias on every row and the product is added; then relu when set.  The
 * fast kernels' way out when their packing buffers cannot be allocated. */
void nb__gemm_portable_block(int ta, int tb, int K, nb_real alpha, const nb_real *A, int lda,
                             const nb_real *B, int ldb, nb_real beta, nb_real *C, int ldc,
                             int i0, int i1, int j0, int j1, const nb_real *col_bias, int relu);

#endif
