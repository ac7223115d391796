/* Single-precision GEMM with AVX2 and FMA, for x86-64 CPUs without AVX-512
 * (most laptops and desktops, AMD's Zen 1 to 3).
 *
 * Why our own kernel here too: OpenBLAS picks its kernels from a table of the
 * CPUs it knows, and on a CPU newer than its table it falls back to generic
 * SSE3 kernels at a quarter of the machine's speed (Debian 12's OpenBLAS
 * 0.3.21 does so on 2023 Xeons); and run through nb_gemm's fixed tiles
 * (gemm.c) it pays a call per tile.  This kernel depends on neither.
 *
 * The scheme of sgemm_avx512.c at half the width:
 *   - a 6 x 16 tile of C in 12 ymm registers; per k, two vector loads of a
 *     packed B panel, six broadcasts of A, 12 FMAs;
 *   - B packed per K block of 256 into panels of 16 columns, k-major
 *     (op(B) = B^T transposed 8 x 8 in registers);
 *   - A read where it lies, except the last, partial row block, which is
 *     copied into a zero-padded micro-panel;
 *   - a dense layer's bias and relu applied as each tile is stored
 *     (nb__sgemm_avx2_dense, the AVX-512 kernel's dense form);
 *   - threads split the columns of C (or its rows, when C is narrow);
 *   - products with at most four rows (batch-1 inference) skip packing:
 *     dot products or row updates streamed straight from B.
 * Each element of C is the same chain of multiply-adds as in the AVX-512
 * kernel (k in order, within the same K blocks, then alpha and beta applied
 * alike), so with more than 4 rows (where both take their packed paths) the
 * two give the same bits. */
#include "gemm.h"

#ifdef NB_AVX2_GEMM

#include <immintrin.h>

#include "../core/internal.h"
#include "parallel.h"

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

enum {
    MR = 6,    /* rows of the C tile */
    NR = 16,   /* columns of the C tile */
    KC = 256,  /* depth of one K block: a packed panel is KC*NR*4 = 16 KiB (L1) */
    MC = 144,  /* rows of A per pass over the packed block (kept in L2) */
    NC = 2048, /* columns of B per packed block: bounds the packing buffer */
};

/* Lanes below n (of 8) set, as maskload/maskstore want them. */
INLINE AVX2 __m256i lanes(int n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n < 0 ? 0 : n), idx);
}

/* ---- packing B ---- */

/* 8 x 8 transpose: r[i][j] -> r[j][i]. */
INLINE AVX2 void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 2; g++) {
        u[4 * g] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x20);
        r[4 + i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x31);
    }
}

/* Pack op(B)[k0 .. k0+kc, j0 .. j0+nv) (nv <= NR) into dst[k*NR + j], zero
 * beyond nv. */
AVX2 static void pack_b(int tb, const float *B, int ldb, int k0, int kc, int j0, int nv,
                        float *dst) {
    if (!tb) {
        __m256i m0 = lanes(nv), m1 = lanes(nv - 8);
        const float *src = B + (size_t)k0 * ldb + j0;
        for (int k = 0; k < kc; k++, src += ldb) {
            _mm256_store_ps(dst + k * NR, _mm256_maskload_ps(src, m0));
            _mm256_store_ps(dst + k * NR + 8, _mm256_maskload_ps(src + 8, m1));
        }
        return;
    }
    /* op(B)[k][j] = B[j][k]: rows of B become columns of the panel */
    int k = 0;
    if (nv == NR)
        for (; k + 8 <= kc; k += 8)
            for (int h = 0; h < 2; h++) {
                __m256 r[8];
                for (int j = 0; j < 8; j++)
                    r[j] = _mm256_loadu_ps(B + (size_t)(j0 + 8 * h + j) * ldb + k0 + k);
                transpose8(r);
                for (int i = 0; i < 8; i++) _mm256_store_ps(dst + (k + i) * NR + 8 * h, r[i]);
            }
    for (; k < kc; k++) {
        float *d = dst + k * NR;
        for (int j = 0; j < nv; j++) d[j] = B[(size_t)(j0 + j) * ldb + k0 + k];
        for (int j = nv; j < NR; j++) d[j] = 0;
    }
}

/* ---- the micro-kernel ---- */

/* What a tile's store adds after alpha * sum + beta * C, in this order: a
 * bias per column (col[j], from the tile's first column), then relu ("<= 0
 * gives 0", so NaN passes: nb__relu), as sgemm_avx512.c's tile_store.  NULL
 * for neither. */
typedef struct tile_store {
    const float *col;
    int relu;
} tile_store;

/* C[0..m, 0..16) (masked to the valid columns) = alpha * sum_k a(i,k) b[k]
 * + beta * C (then the extras of e, when not NULL), where a(i, k) =
 * a[i*rs + k*cs] and b is a packed panel.  beta == 0 does not read C. */
INLINE AVX2 void kernel(int kc, const float *a, long rs, long cs, const float *b, float *c,
                        long ldc, int m, __m256i m0, __m256i m1, float alpha, float beta,
                        const tile_store *e) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define NB_ROW(i, ci0, ci1)                                                                     \
    do {                                                                                       \
        __m256 ai = _mm256_broadcast_ss(a + (i) * rs);                                         \
        ci0 = _mm256_fmadd_ps(ai, b0, ci0);                                                    \
        ci1 = _mm256_fmadd_ps(ai, b1, ci1);                                                    \
    } while (0)
#pragma GCC unroll 4
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        NB_ROW(0, c00, c01);
        NB_ROW(1, c10, c11);
        NB_ROW(2, c20, c21);
        NB_ROW(3, c30, c31);
        NB_ROW(4, c40, c41);
        NB_ROW(5, c50, c51);
        a += cs;
        b += NR;
    }
#undef NB_ROW
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta), z = _mm256_setzero_ps();
    __m256 bias0 = e && e->col ? _mm256_maskload_ps(e->col, m0) : z;
    __m256 bias1 = e && e->col ? _mm256_maskload_ps(e->col + 8, m1) : z;
#define NB_STORE(i, ci0, ci1)                                                                   \
    if ((i) < m) {                                                                             \
        float *ci = c + (i) * ldc;                                                             \
        __m256 r0 = _mm256_mul_ps(va, ci0), r1 = _mm256_mul_ps(va, ci1);                       \
        if (beta != 0) {                                                                       \
            r0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ci, m0), r0);                          \
            r1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ci + 8, m1), r1);                      \
        }                                                                                      \
        if (e && e->col) r0 = _mm256_add_ps(r0, bias0), r1 = _mm256_add_ps(r1, bias1);         \
        if (e && e->relu) {                                                                    \
            r0 = _mm256_blendv_ps(r0, z, _mm256_cmp_ps(r0, z, _CMP_LE_OQ));                    \
            r1 = _mm256_blendv_ps(r1, z, _mm256_cmp_ps(r1, z, _CMP_LE_OQ));                    \
        }                                                                                      \
        _mm256_maskstore_ps(ci, m0, r0);                                                       \
        _mm256_maskstore_ps(ci + 8, m1, r1);                                                   \
    }
    NB_STORE(0, c00, c01)
    NB_STORE(1, c10, c11)
    NB_STORE(2, c20, c21)
    NB_STORE(3, c30, c31)
    NB_STORE(4, c40, c41)
    NB_STORE(5, c50, c51)
#undef NB_STORE
}

/* The layouts of A, each compiled with constant strides where it can: rows
 * of A in place, columns of A in place (op(A) = A^T), a packed micro-panel. */
AVX2 static void kernel_rows(int kc, const float *a, long lda, const float *b, float *c,
                             long ldc, int m, __m256i m0, __m256i m1, float alpha, float beta,
                             const tile_store *e) {
    kernel(kc, a, lda, 1, b, c, ldc, m, m0, m1, alpha, beta, e);
}
AVX2 static void kernel_cols(int kc, const float *a, long lda, const float *b, float *c,
                             long ldc, int m, __m256i m0, __m256i m1, float alpha, float beta,
                             const tile_store *e) {
    kernel(kc, a, 1, lda, b, c, ldc, m, m0, m1, alpha, beta, e);
}
AVX2 static void kernel_packed(int kc, const float *a, const float *b, float *c, long ldc, int m,
                               __m256i m0, __m256i m1, float alpha, float beta,
                               const tile_store *e) {
    kernel(kc, a, 1, MR, b, c, ldc, m, m0, m1, alpha, beta, e);
}

/* ---- one thread's share: rows [i0, i1) x columns [j0, j1) of C ---- */

typedef struct gemm_job {
    int ta, tb, M, N, K;
    float alpha, beta;
    const float *A, *B;
    int lda, ldb, ldc;
    float *C;
    int split_rows; /* threads split rows (else columns) */
    int parts;
    const float *col_bias; /* when not NULL, added to each column of C */
    int relu;              /* relu applied to C at the end */
} gemm_job;

/* Each thread's packing buffers (nb__thread_scratch): a KC x NC block of B
 * and one micro-panel of A. */
static float *buffer_b(void) {
    return nb__thread_scratch(NB__SCRATCH_AVX2_B, (size_t)KC * NC * sizeof(float));
}
static float *buffer_a(void) {
    return nb__thread_scratch(NB__SCRATCH_AVX2_A, (size_t)KC * MR * sizeof(float));
}

static void worker_buffers(void) {
    if (nb__sgemm_avx2_usable() && !nb__sgemm_avx512_usable()) buffer_b(), buffer_a();
}

/* Registered before main, so before the pool starts any worker. */
__attribute__((constructor)) static void allocate_on_worker_start(void) {
    nb__pool_at_worker_start(worker_buffers);
}

AVX2 static void gemm_block(const gemm_job *g, int i0, int i1, int j0, int j1, float *bp,
                            float *ap) {
    int panels = (j1 - j0 + NR - 1) / NR;
    for (int p0 = 0; p0 < g->K; p0 += KC) {
        int kc = g->K - p0 < KC ? g->K - p0 : KC;
        float beta = p0 == 0 ? g->beta : 1.0f;
        for (int p = 0; p < panels; p++) {
            int jj = j0 + p * NR, nv = j1 - jj < NR ? j1 - jj : NR;
            pack_b(g->tb, g->B, g->ldb, p0, kc, jj, nv, bp + (size_t)p * kc * NR);
        }
        for (int ic = i0; ic < i1; ic += MC) {
            int ie = ic + MC < i1 ? ic + MC : i1;
            /* the partial last micro-panel, zero-padded, so no read passes
             * the end of A */
            for (int i = ic; i < ie; i += MR)
                if (ie - i < MR) nb__pack_a_panel(g->ta, g->A, g->lda, i, ie - i, p0, kc, MR, ap);
            for (int p = 0; p < panels; p++) {
                int jj = j0 + p * NR, nv = j1 - jj < NR ? j1 - jj : NR;
                __m256i m0 = lanes(nv), m1 = lanes(nv - 8);
                const float *bpan = bp + (size_t)p * kc * NR;
                /* the bias with the first K block, the relu with the last */
                tile_store e = {.col = g->col_bias && p0 == 0 ? g->col_bias + jj : NULL,
                                .relu = g->relu && p0 + kc == g->K};
                const tile_store *extras = e.col || e.relu ? &e : NULL;
                for (int i = ic; i < ie; i += MR) {
                    int m = ie - i < MR ? ie - i : MR;
                    float *c = g->C + (size_t)i * g->ldc + jj;
                    if (m < MR)
                        kernel_packed(kc, ap, bpan, c, g->ldc, m, m0, m1, g->alpha, beta, extras);
                    else if (g->ta)
                        kernel_cols(kc, g->A + (size_t)p0 * g->lda + i, g->lda, bpan, c, g->ldc,
                                    MR, m0, m1, g->alpha, beta, extras);
                    else
                        kernel_rows(kc, g->A + (size_t)i * g->lda + p0, g->lda, bpan, c, g->ldc,
                                    MR, m0, m1, g->alpha, beta, extras);
                }
            }
        }
    }
}

static void gemm_part(void *ctx, int part) {
    const gemm_job *g = ctx;
    int i0, i1, j0, j1; /* whole MR row blocks or NR panels */
    nb__block_range(g->M, g->N, g->split_rows, g->split_rows ? MR : NR, part, g->parts,
                    &i0, &i1, &j0, &j1);
    if (i0 >= i1 || j0 >= j1) return;
    float *bp = buffer_b(), *ap = buffer_a();
    if (!bp || !ap) { /* out of memory: the portable kernel needs none */
        nb__gemm_portable_block(g->ta, g->tb, g->K, g->alpha, g->A, g->lda, g->B, g->ldb, g->beta,
                                g->C, g->ldc, i0, i1, j0, j1, g->col_bias, g->relu);
        return;
    }
    for (int jc = j0; jc < j1; jc += NC)
        gemm_block(g, i0, i1, jc, j1 - jc < NC ? j1 : jc + NC, bp, ap);
}

/* ---- products with at most SMALL_M rows (batch-1 inference): no packing ---- */

enum { SMALL_M = 4 };

INLINE AVX2 float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* y[j] = alpha dot(x, B[j, :]) + beta y[j] for j < N: B is [N, K] (op(B) =
 * B^T), x contiguous.  Four rows of B per pass share each load of x. */
AVX2 static void gemv_rows(int N, int K, float alpha, const float *x, const float *B, long ldb,
                           float beta, float *y) {
    int j = 0;
    for (; j < N; j += 4) {
        int rows = N - j < 4 ? N - j : 4;
        const float *b[4];
        for (int r = 0; r < 4; r++) b[r] = B + (size_t)(j + (r < rows ? r : 0)) * ldb;
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int k = 0; k < K; k += 8) {
            __m256i m = lanes(K - k);
            __m256 xk = _mm256_maskload_ps(x + k, m);
            s0 = _mm256_fmadd_ps(xk, _mm256_maskload_ps(b[0] + k, m), s0);
            s1 = _mm256_fmadd_ps(xk, _mm256_maskload_ps(b[1] + k, m), s1);
            s2 = _mm256_fmadd_ps(xk, _mm256_maskload_ps(b[2] + k, m), s2);
            s3 = _mm256_fmadd_ps(xk, _mm256_maskload_ps(b[3] + k, m), s3);
        }
        float d[4] = {hsum(s0), hsum(s1), hsum(s2), hsum(s3)};
        for (int r = 0; r < rows; r++) y[j + r] = alpha * d[r] + (beta == 0 ? 0 : beta * y[j + r]);
    }
}

/* y = alpha sum_k x[k] B[k, :] + beta y: B is [K, N], rows streamed once. */
AVX2 static void gemv_cols(int N, int K, float alpha, const float *x, long incx, const float *B,
                           long ldb, float beta, float *y) {
    for (int j = 0; j < N; j += 32) {
        __m256 s[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                       _mm256_setzero_ps()};
        __m256i m[4] = {lanes(N - j), lanes(N - j - 8), lanes(N - j - 16), lanes(N - j - 24)};
        const float *b = B + j;
        for (int k = 0; k < K; k++, b += ldb) {
            __m256 xk = _mm256_set1_ps(x[k * incx]);
            for (int q = 0; q < 4; q++)
                s[q] = _mm256_fmadd_ps(xk, _mm256_maskload_ps(b + 8 * q, m[q]), s[q]);
        }
        __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
        for (int q = 0; q < 4; q++) {
            __m256 r = _mm256_mul_ps(va, s[q]);
            if (beta != 0) r = _mm256_fmadd_ps(vb, _mm256_maskload_ps(y + j + 8 * q, m[q]), r);
            _mm256_maskstore_ps(y + j + 8 * q, m[q], r);
        }
    }
}

/* Columns [j0, j1) of C (multiples of 32 apart from the end) for part
 * `part`, one row of C at a time from row i of op(A). */
static void gemv_part(void *ctx, int part) {
    const gemm_job *g = ctx;
    size_t lo, hi;
    nb__part_range((size_t)(g->N + 31) / 32, part, g->parts, 1, &lo, &hi);
    int j0 = (int)lo * 32, j1 = (int)hi * 32 < g->N ? (int)hi * 32 : g->N;
    float x[1024];
    for (int i = 0; i < g->M && j0 < j1; i++) {
        float *y = g->C + (size_t)i * g->ldc + j0;
        if (!g->tb) {
            gemv_cols(j1 - j0, g->K, g->alpha, g->ta ? g->A + i : g->A + (size_t)i * g->lda,
                      g->ta ? g->lda : 1, g->B + j0, g->ldb, g->beta, y);
            continue;
        }
        /* dot products want x contiguous: a column of A is gathered first,
         * in chunks of 1024 (beta applies to the first only) */
        for (int k0 = 0; k0 < g->K; k0 += 1024) {
            int kc = g->K - k0 < 1024 ? g->K - k0 : 1024;
            const float *xv = g->A + (size_t)i * g->lda + k0;
            if (g->ta) {
                for (int k = 0; k < kc; k++) x[k] = g->A[(size_t)(k0 + k) * g->lda + i];
                xv = x;
            }
            gemv_rows(j1 - j0, kc, g->alpha, xv, g->B + (size_t)j0 * g->ldb + k0, g->ldb,
                      k0 == 0 ? g->beta : 1.0f, y);
        }
    }
}

/* A matrix-vector product splits between threads from this many values of B. */
#define GEMV_PARALLEL_MIN (1 << 16)

/* Below this many multiply-adds a second thread costs more than it saves. */
#define PARALLEL_MIN_MACS (1 << 18)

int nb__sgemm_avx2_usable(void) {
    static int usable = -1;
    if (usable < 0) {
        __builtin_cpu_init();
        usable = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return usable;
}

/* A product of more than SMALL_M rows: split between threads by columns of
 * C (or rows, when C is narrow), or on this one when it is small. */
static void run_packed(gemm_job *g, int threads) {
    g->parts = nb__product_parts(g->M, g->N, g->K, MR, NR, threads, PARALLEL_MIN_MACS,
                                 &g->split_rows);
    if (g->parts > 1) nb__parallel(g->parts, gemm_part, g);
    else gemm_part(g, 0);
}

void nb__sgemm_avx2(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc) {
    gemm_job g = {.ta = ta, .tb = tb, .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta,
                  .A = A, .B = B, .lda = lda, .ldb = ldb, .ldc = ldc, .C = C, .parts = 1};
    if (K == 0 || alpha == 0) { /* C = beta C, as BLAS */
        nb__gemm_scale_c(M, N, beta, C, ldc);
        return;
    }
    int threads = nb__free_threads();
    if (M <= SMALL_M) { /* bound by reading B: threads split its columns */
        int parts = (N + 31) / 32;
        if (threads > 1 && (double)N * K >= GEMV_PARALLEL_MIN && parts > 1) {
            g.parts = parts < threads ? parts : threads;
            nb__parallel(g.parts, gemv_part, &g);
        } else {
            gemv_part(&g, 0);
        }
        return;
    }
    run_packed(&g, threads);
}

int nb__sgemm_avx2_dense(int M, int N, int K, const float *X, const float *W, const float *bias,
                         int relu, float *Y) {
    if (M <= SMALL_M || K == 0) return 0; /* the matrix-vector path: the caller's form */
    gemm_job g = {.tb = 1, .M = M, .N = N, .K = K, .alpha = 1, .beta = 0, .A = X, .B = W,
                  .lda = K, .ldb = K, .ldc = N, .C = Y, .parts = 1, .col_bias = bias,
                  .relu = relu};
    run_packed(&g, nb__free_threads());
    return 1;
}

#endif /* NB_AVX2_GEMM */
