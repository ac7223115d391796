/* Single-precision GEMM with AVX-512, for CPUs that have it.
 *
 * Why our own kernel: OpenBLAS picks its kernels once per process, and on
 * CPUs it does not know (or when told to, by OPENBLAS_CORETYPE) it runs the
 * 256-bit ones at half the machine's speed.  This file is the whole of what
 * nabla needs: C = alpha op(A) op(B) + beta C, row-major, in the shapes of
 * dense and convolution layers.
 *
 * Scheme (Goto/BLIS, with the roles chosen for row-major C):
 *   - a micro-kernel keeps a 12 x 32 tile of C in 24 zmm registers and adds
 *     one rank-1 update per k: two vector loads of a packed B panel, twelve
 *     broadcasts of A;
 *   - B is packed per K-block into panels of 32 columns, k-major, so the
 *     micro-kernel reads it contiguously from L1 (op(B) = B^T is transposed
 *     16 x 16 in registers while packing);
 *   - A is read where it lies (a row or a column of A per broadcast), except
 *     for the last, partial row block, which is copied into a zero-padded
 *     buffer so that no read passes the end of A, and rows of A a multiple of
 *     4 KiB apart, which share one set of the L1 cache and evict each other:
 *     those are packed, 12 rows by KC per micro-panel;
 *   - a C tile that the kernel reads (beta != 0), or writes in a C larger
 *     than L2, is prefetched when the kernel starts, so that its loads and
 *     stores at the end do not wait on L2, L3 or memory;
 *   - threads split the columns of C (or its rows, when C is narrow);
 *   - products with at most four rows (batch-1 inference) skip packing:
 *     dot products or row updates streamed straight from B.
 * Memory: fixed packing buffers per thread (a KC x NC block of B, an MC x KC
 * block of A), allocated once, so a training step allocates nothing. */
#include "gemm.h"

#ifdef NB_AVX512_GEMM

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "../core/internal.h"
#include "parallel.h"

#define AVX512 __attribute__((target("avx512f")))
#define INLINE static inline __attribute__((always_inline))

enum {
    MR = 12,   /* rows of the C tile    */
    NR = NB__PANEL, /* columns of the C tile: 32 */
    KC = 256,  /* depth of one K block: a packed panel is KC*NR*4 = 32 KiB (L1) */
    MC = 144,  /* rows of A per pass over the packed block (kept in L2)       */
    NC = 2048, /* columns of B per packed block: bounds the packing buffer    */
};

/* ---- packing B ---- */

/* 16 x 16 transpose: r[i][j] -> r[j][i]. */
INLINE AVX512 void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) { /* u[4g+e]: rows 4g..4g+3, element e of each lane */
        __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 2]);
        __m512d c = _mm512_castps_pd(t[4 * g + 1]), d = _mm512_castps_pd(t[4 * g + 3]);
        r[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        r[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        r[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        r[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    for (int e = 0; e < 4; e++) { /* gather lane L of the four row groups */
        __m512 v = _mm512_shuffle_f32x4(r[e], r[4 + e], 0x88);
        __m512 w = _mm512_shuffle_f32x4(r[e], r[4 + e], 0xDD);
        __m512 v2 = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0x88);
        __m512 w2 = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0xDD);
        t[e] = _mm512_shuffle_f32x4(v, v2, 0x88);
        t[8 + e] = _mm512_shuffle_f32x4(v, v2, 0xDD);
        t[4 + e] = _mm512_shuffle_f32x4(w, w2, 0x88);
        t[12 + e] = _mm512_shuffle_f32x4(w, w2, 0xDD);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* Pack op(B)[k0 .. k0+kc, j0 .. j0+nv) (nv <= NR) into dst[k*NR + j], zero
 * beyond nv. */
AVX512 static void pack_b(int tb, const float *B, int ldb, int k0, int kc, int j0, int nv,
                          float *dst) {
    if (!tb) {
        __mmask16 m0 = (__mmask16)(nv >= 16 ? 0xFFFF : (1u << nv) - 1);
        __mmask16 m1 = (__mmask16)(nv >= 32 ? 0xFFFF : nv > 16 ? (1u << (nv - 16)) - 1 : 0);
        const float *src = B + (size_t)k0 * ldb + j0;
        for (int k = 0; k < kc; k++, src += ldb) {
            _mm512_store_ps(dst + k * NR, _mm512_maskz_loadu_ps(m0, src));
            _mm512_store_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
        }
        return;
    }
    /* op(B)[k][j] = B[j][k]: rows of B become columns of the panel */
    int k = 0;
    if (nv == NR)
        for (; k + 16 <= kc; k += 16)
            for (int h = 0; h < 2; h++) {
                __m512 r[16];
                for (int j = 0; j < 16; j++)
                    r[j] = _mm512_loadu_ps(B + (size_t)(j0 + 16 * h + j) * ldb + k0 + k);
                transpose16(r);
                for (int i = 0; i < 16; i++) _mm512_store_ps(dst + (k + i) * NR + 16 * h, r[i]);
            }
    for (; k < kc; k++) {
        float *d = dst + k * NR;
        for (int j = 0; j < nv; j++) d[j] = B[(size_t)(j0 + j) * ldb + k0 + k];
        for (int j = nv; j < NR; j++) d[j] = 0;
    }
}

/* ---- packing A ---- */

/* Pack op(A)[i .. i+m, p0 .. p0+kc) (m <= MR) into dst[k*MR + r], zero for
 * rows r >= m. */
AVX512 static void pack_a(int ta, const float *A, int lda, int i, int m, int p0, int kc,
                          float *dst) {
    const __mmask16 tile = (1u << MR) - 1;
    if (ta) { /* op(A)[r][k] = A[k][i + r]: m contiguous floats per k */
        __mmask16 rows = (__mmask16)((1u << m) - 1);
        const float *src = A + (size_t)p0 * lda + i;
        for (int k = 0; k < kc; k++, src += lda)
            _mm512_mask_storeu_ps(dst + k * MR, tile, _mm512_maskz_loadu_ps(rows, src));
        return;
    }
    int k = 0; /* rows of A become columns of the micro-panel, 16 k at a time */
    for (; k + 16 <= kc; k += 16) {
        __m512 r[16];
        for (int j = 0; j < 16; j++)
            r[j] = j < m ? _mm512_loadu_ps(A + (size_t)(i + j) * lda + p0 + k)
                         : _mm512_setzero_ps();
        transpose16(r);
        for (int q = 0; q < 16; q++) _mm512_mask_storeu_ps(dst + (k + q) * MR, tile, r[q]);
    }
    for (; k < kc; k++)
        for (int r = 0; r < MR; r++)
            dst[k * MR + r] = r < m ? A[(size_t)(i + r) * lda + p0 + k] : 0;
}

/* ---- the micro-kernel ---- */

/* What a tile's store adds after alpha * sum + beta * C, in this order: a
 * bias per row (row[i]) or per column (col[j], from the tile's first
 * column), then relu ("<= 0 gives 0", so NaN passes: nb__relu).  NULL for
 * none of them. */
typedef struct tile_store {
    const float *row, *col;
    int relu;
} tile_store;

/* r0, r1: row i of the tile, columns 0-15 and 16-31 (masks m0, m1). */
#define NB_STORE_EXTRAS(e, i, r0, r1, m0, m1)                                                  \
    if (e) {                                                                                   \
        if ((e)->row) {                                                                        \
            r0 = _mm512_add_ps(r0, _mm512_set1_ps((e)->row[i]));                               \
            r1 = _mm512_add_ps(r1, _mm512_set1_ps((e)->row[i]));                               \
        }                                                                                      \
        if ((e)->col) {                                                                        \
            r0 = _mm512_add_ps(r0, _mm512_maskz_loadu_ps(m0, (e)->col));                       \
            r1 = _mm512_add_ps(r1, _mm512_maskz_loadu_ps(m1, (e)->col + 16));                  \
        }                                                                                      \
        if ((e)->relu) {                                                                       \
            __m512 z = _mm512_setzero_ps();                                                    \
            r0 = _mm512_mask_mov_ps(r0, _mm512_cmp_ps_mask(r0, z, _CMP_LE_OQ), z);             \
            r1 = _mm512_mask_mov_ps(r1, _mm512_cmp_ps_mask(r1, z, _CMP_LE_OQ), z);             \
        }                                                                                      \
    }

/* C[0..m, 0..32) (masked to the valid columns) = alpha * sum_k a(i,k) b[k]
 * + beta * C (then the extras of e, when not NULL), where a(i, k) =
 * a[i*rs + k*cs] and b is a packed panel.  beta == 0 does not read C. */
INLINE AVX512 void kernel(int kc, const float *a, long rs, long cs, const float *b, float *c,
                          long ldc, int m, __mmask16 m0, __mmask16 m1, float alpha, float beta,
                          const tile_store *e) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00,
           c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00, c90 = c00, c91 = c00,
           ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
#define NB_ROW(i, ci0, ci1)                                                                     \
    do {                                                                                       \
        __m512 ai = _mm512_set1_ps(a[(i) * rs]);                                               \
        ci0 = _mm512_fmadd_ps(ai, b0, ci0);                                                    \
        ci1 = _mm512_fmadd_ps(ai, b1, ci1);                                                    \
    } while (0)
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        NB_ROW(0, c00, c01);
        NB_ROW(1, c10, c11);
        NB_ROW(2, c20, c21);
        NB_ROW(3, c30, c31);
        NB_ROW(4, c40, c41);
        NB_ROW(5, c50, c51);
        NB_ROW(6, c60, c61);
        NB_ROW(7, c70, c71);
        NB_ROW(8, c80, c81);
        NB_ROW(9, c90, c91);
        NB_ROW(10, ca0, ca1);
        NB_ROW(11, cb0, cb1);
        a += cs;
        b += NR;
    }
#undef NB_ROW
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#define NB_STORE(i, ci0, ci1)                                                                   \
    if ((i) < m) {                                                                             \
        float *ci = c + (i) * ldc;                                                             \
        __m512 r0 = _mm512_mul_ps(va, ci0), r1 = _mm512_mul_ps(va, ci1);                       \
        if (beta != 0) {                                                                       \
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);                       \
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);                  \
        }                                                                                      \
        NB_STORE_EXTRAS(e, i, r0, r1, m0, m1)                                                  \
        _mm512_mask_storeu_ps(ci, m0, r0);                                                     \
        _mm512_mask_storeu_ps(ci + 16, m1, r1);                                                \
    }
    NB_STORE(0, c00, c01)
    NB_STORE(1, c10, c11)
    NB_STORE(2, c20, c21)
    NB_STORE(3, c30, c31)
    NB_STORE(4, c40, c41)
    NB_STORE(5, c50, c51)
    NB_STORE(6, c60, c61)
    NB_STORE(7, c70, c71)
    NB_STORE(8, c80, c81)
    NB_STORE(9, c90, c91)
    NB_STORE(10, ca0, ca1)
    NB_STORE(11, cb0, cb1)
#undef NB_STORE
}

/* One rank-1 update of `rows` accumulator rows: acc[r] += a[r * rs] times
 * the panel's row b, `halves` vectors of it (1: the 16 columns at b alone).
 * rows, halves and rs are constants once inlined. */
INLINE AVX512 void rank1(const int rows, const int halves, const float *a, long rs,
                         const float *b, __m512 (*acc)[2]) {
    __m512 b0 = _mm512_load_ps(b), b1 = halves > 1 ? _mm512_load_ps(b + 16) : b0;
#pragma GCC unroll 14
    for (int r = 0; r < rows; r++) {
        __m512 ar = _mm512_set1_ps(a[r * rs]);
        acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
        if (halves > 1) acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
    }
}

/* kernel() with only the rows and columns a tile has: `rows` (4, 8 or MR)
 * accumulator rows, and `halves` 1 for a panel of at most 16 columns (its
 * second half is zeros, and multiplying them cost as much as the first: an
 * output layer of 10 classes, the last 16 columns of 784).  rows and halves
 * are constants once inlined, so the accumulators stay in registers.  Each
 * value is the same chain of multiply-adds as in kernel(), so the results are
 * the same bits. */
INLINE AVX512 void kernel_small(const int rows, const int halves, int kc, const float *a,
                                long rs, long cs, const float *b, float *c, long ldc, int m,
                                __mmask16 m0, __mmask16 m1, float alpha, float beta,
                                const tile_store *e) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++, a += cs, b += NR) rank1(rows, halves, a, rs, b, acc);
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
    for (int r = 0; r < rows; r++) {
        if (r >= m) break;
        float *ci = c + r * ldc;
        __m512 r0 = _mm512_mul_ps(va, acc[r][0]), r1 = _mm512_mul_ps(va, acc[r][1]);
        if (beta != 0) {
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);
        }
        NB_STORE_EXTRAS(e, r, r0, r1, m0, m1)
        _mm512_mask_storeu_ps(ci, m0, r0);
        _mm512_mask_storeu_ps(ci + 16, m1, r1);
    }
}

/* The two layouts of A, each compiled with constant strides where it can;
 * m1 == 0: the panel has at most 16 columns. */
AVX512 static void kernel_rows(int kc, const float *a, long lda, const float *b, float *c,
                               long ldc, int m, __mmask16 m0, __mmask16 m1, float alpha,
                               float beta, const tile_store *e) {
    if (!m1) kernel_small(MR, 1, kc, a, lda, 1, b, c, ldc, m, m0, m1, alpha, beta, e);
    else kernel(kc, a, lda, 1, b, c, ldc, m, m0, m1, alpha, beta, e);
}
AVX512 static void kernel_cols(int kc, const float *a, long lda, const float *b, float *c,
                               long ldc, int m, __mmask16 m0, __mmask16 m1, float alpha,
                               float beta, const tile_store *e) {
    if (!m1) kernel_small(MR, 1, kc, a, 1, lda, b, c, ldc, m, m0, m1, alpha, beta, e);
    else kernel(kc, a, 1, lda, b, c, ldc, m, m0, m1, alpha, beta, e);
}

/* A packed row block of m <= MR rows (rows MR apart in a). */
AVX512 static void kernel_packed(int kc, const float *a, const float *b, float *c, long ldc, int m,
                                 __mmask16 m0, __mmask16 m1, float alpha, float beta,
                                 const tile_store *e) {
#define NB_SMALL(rows, halves) \
    kernel_small(rows, halves, kc, a, 1, MR, b, c, ldc, m, m0, m1, alpha, beta, e)
    if (!m1) {
        if (m <= 4) NB_SMALL(4, 1);
        else if (m <= 8) NB_SMALL(8, 1);
        else NB_SMALL(MR, 1);
    } else if (m <= 4) NB_SMALL(4, 2);
    else if (m <= 8) NB_SMALL(8, 2);
    else kernel(kc, a, 1, MR, b, c, ldc, m, m0, m1, alpha, beta, e);
#undef NB_SMALL
}

/* ---- one thread's share: rows [i0, i1) x columns [j0, j1) of C ---- */

typedef struct gemm_job {
    int ta, tb, M, N, K;
    float alpha, beta;
    const float *A, *B;
    int lda, ldb, ldc;
    float *C;
    int split_rows;   /* threads split rows (else columns) */
    int parts;
    nb__pack_b_fn pack; /* when not NULL, packs op(B) in place of pack_b */
    const void *pack_ctx;
    const float *bias;  /* when not NULL, added to each row of C */
    const float *col_bias; /* when not NULL, added to each column of C */
    int relu;           /* relu applied to C at the end */
    int cold_c;         /* C is larger than L2: its tiles are prefetched */
} gemm_job;

/* Panel [jj, jj+nv) of op(B) for the K block at p0, through the job's
 * packing function when it has one. */
static void pack_panel(const gemm_job *g, int p0, int kc, int jj, int nv, float *dst) {
    if (g->pack) g->pack(g->pack_ctx, p0, kc, jj, nv, dst);
    else pack_b(g->tb, g->B, g->ldb, p0, kc, jj, nv, dst);
}

/* Each thread's packing buffers (nb__thread_scratch): a KC x NC block of B
 * and an MC x KC block of A. */
static float *buffer_b(void) {
    return nb__thread_scratch(NB__SCRATCH_AVX512_B, (size_t)KC * NC * sizeof(float));
}
static float *buffer_a(void) {
    return nb__thread_scratch(NB__SCRATCH_AVX512_A, (size_t)KC * MC * sizeof(float));
}

static void worker_buffers(void) {
    if (nb__sgemm_avx512_usable()) buffer_b(), buffer_a();
}

/* Registered before main, so before the pool starts any worker. */
__attribute__((constructor)) static void allocate_on_worker_start(void) {
    nb__pool_at_worker_start(worker_buffers);
}

AVX512 static void gemm_block(const gemm_job *g, int i0, int i1, int j0, int j1, float *bp,
                              float *ap) {
    int panels = (j1 - j0 + NR - 1) / NR;
    /* with one row block, each B panel is used once, right after it is
     * packed: packing it then keeps it in L1 instead of sending the whole
     * block out to L2 (or L3) and back */
    int pack_each = i1 - i0 <= MC;
    int pack_all_a = !g->ta && g->lda % 1024 == 0; /* rows 4 KiB apart (see the top) */
    for (int p0 = 0; p0 < g->K; p0 += KC) {
        int kc = g->K - p0 < KC ? g->K - p0 : KC;
        float beta = p0 == 0 ? g->beta : 1.0f;
        for (int p = 0; p < panels && !pack_each; p++) {
            int jj = j0 + p * NR, nv = j1 - jj < NR ? j1 - jj : NR;
            pack_panel(g, p0, kc, jj, nv, bp + (size_t)p * kc * NR);
        }
        for (int ic = i0; ic < i1; ic += MC) {
            int ie = ic + MC < i1 ? ic + MC : i1;
            /* the partial last micro-panel is packed (zero-padded) once per
             * block, so no read passes the end of A; the others only when
             * their rows alias in L1 (packing them all measured no faster) */
            for (int i = ic; i < ie; i += MR)
                if (pack_all_a || ie - i < MR)
                    pack_a(g->ta, g->A, g->lda, i, ie - i < MR ? ie - i : MR, p0, kc,
                           ap + (size_t)(i - ic) * kc);
            for (int p = 0; p < panels; p++) {
                int jj = j0 + p * NR, nv = j1 - jj < NR ? j1 - jj : NR;
                __mmask16 m0 = (__mmask16)(nv >= 16 ? 0xFFFF : (1u << nv) - 1);
                __mmask16 m1 =
                    (__mmask16)(nv >= 32 ? 0xFFFF : nv > 16 ? (1u << (nv - 16)) - 1 : 0);
                float *bpan = pack_each ? bp : bp + (size_t)p * kc * NR;
                if (pack_each) pack_panel(g, p0, kc, jj, nv, bpan);
                for (int i = ic; i < ie; i += MR) {
                    int m = ie - i < MR ? ie - i : MR;
                    float *c = g->C + (size_t)i * g->ldc + jj;
                    /* the biases with the first K block, the relu with the last */
                    tile_store e = {.row = g->bias && p0 == 0 ? g->bias + i : NULL,
                                    .col = g->col_bias && p0 == 0 ? g->col_bias + jj : NULL,
                                    .relu = g->relu && p0 + kc == g->K};
                    const tile_store *extras = e.row || e.col || e.relu ? &e : NULL;
                    if (beta != 0 || g->cold_c) nb__prefetch_tile(c, g->ldc, m);
                    if (pack_all_a || m < MR)
                        kernel_packed(kc, ap + (size_t)(i - ic) * kc, bpan, c, g->ldc, m, m0, m1,
                                      g->alpha, beta, extras);
                    else if (g->ta)
                        kernel_cols(kc, g->A + (size_t)p0 * g->lda + i, g->lda, bpan, c,
                                    g->ldc, MR, m0, m1, g->alpha, beta, extras);
                    else
                        kernel_rows(kc, g->A + (size_t)i * g->lda + p0, g->lda, bpan, c,
                                    g->ldc, MR, m0, m1, g->alpha, beta, extras);
                }
            }
        }
    }
}

/* ---- a convolution's product read from the image (nb__sgemm_avx512_direct) ---- */

enum { DIRECT_ROWS = 14 }; /* positions per tile: 28 accumulators, 2 panel vectors */

/* One tile's K block: positions [0, rows) of an output row (x: the first
 * one's window origin plus the block's offset), the 32 channels of panel b
 * (halves 2) or the 16 at b (halves 1); into t [rows][NR]: the bias added
 * with the first block, the earlier blocks' sum after the others (the packed
 * kernel's order).  A channel's chain is the same in either width. */
INLINE AVX512 void direct_tile(const int rows, const int halves, int kc, const float *x,
                               const int *off, const float *b, float *t, const float *bias,
                               __mmask16 m0, __mmask16 m1, int first) {
    __m512 acc[DIRECT_ROWS][2];
#pragma GCC unroll 14
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++, b += NR) rank1(rows, halves, x + off[k], 1, b, acc);
    __m512 bias0 = _mm512_maskz_loadu_ps(bias ? m0 : 0, bias), bias1 = bias0;
    if (bias && halves > 1) bias1 = _mm512_maskz_loadu_ps(m1, bias + 16);
#pragma GCC unroll 14
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < halves; h++) {
            __m512 v = acc[r][h];
            if (!first) v = _mm512_add_ps(_mm512_load_ps(t + r * NR + 16 * h), v);
            else if (bias) v = _mm512_add_ps(v, h ? bias1 : bias0);
            _mm512_store_ps(t + r * NR + 16 * h, v);
        }
}

AVX512 static void direct_block(int rows, int halves, int kc, const float *x, const int *off,
                                const float *b, float *t, const float *bias, __mmask16 m0,
                                __mmask16 m1, int first) {
    switch (rows * 2 + halves - 1) {
#define NB_ROWS(n)                                                                             \
    case 2 * n: direct_tile(n, 1, kc, x, off, b, t, bias, m0, m1, first); break;              \
    case 2 * n + 1: direct_tile(n, 2, kc, x, off, b, t, bias, m0, m1, first); break;
        NB_ROWS(1) NB_ROWS(2) NB_ROWS(3) NB_ROWS(4) NB_ROWS(5) NB_ROWS(6) NB_ROWS(7)
        NB_ROWS(8) NB_ROWS(9) NB_ROWS(10) NB_ROWS(11) NB_ROWS(12) NB_ROWS(13) NB_ROWS(14)
#undef NB_ROWS
    }
}

/* t [rows][NR] (positions by channels) into nv channel rows of y, ld
 * apart, `rows` positions each (the relu first when asked). */
AVX512 static void store_transposed(const float *t, int rows, int nv, int relu, float *y,
                                    long ld) {
    const __mmask16 lanes = (__mmask16)((1u << rows) - 1);
    const __m512 z = _mm512_setzero_ps();
    for (int h = 0; h * 16 < nv; h++) {
        __m512 r[16];
        for (int i = 0; i < 16; i++) {
            r[i] = i < rows ? _mm512_load_ps(t + i * NR + 16 * h) : z;
            if (relu) r[i] = _mm512_mask_mov_ps(r[i], _mm512_cmp_ps_mask(r[i], z, _CMP_LE_OQ), z);
        }
        transpose16(r);
        for (int c = 0; c < 16 && 16 * h + c < nv; c++)
            _mm512_mask_storeu_ps(y + (size_t)(16 * h + c) * ld, lanes, r[c]);
    }
}

/* Channels [c0, c1) of w [M][K], within one panel, into their lanes of the
 * panel at `panel` ([K][NR]; lanes past M zero): a part that holds half a
 * panel writes only its own lanes. */
static void pack_lanes(const float *w, int M, int K, int c0, int c1, float *panel) {
    const int lane0 = c0 % NR;
    for (int k = 0; k < K; k++)
        for (int c = c0; c < c1; c++)
            panel[(size_t)k * NR + lane0 + (c - c0)] = c < M ? w[(size_t)c * K + k] : 0.0f;
}

/* The channel range [c0, end) of the part starting at c0 (a multiple of 16)
 * that lies in one panel, and whether it is the whole panel. */
static int panel_end(int c0, int m1, int *whole) {
    int jj = c0 / NR * NR, end = jj + NR < m1 ? jj + NR : m1;
    *whole = c0 == jj && end - jj > 16;
    return end;
}

void nb__direct_pack(const float *w, int M, int K, int m0, int m1, float *packed) {
    for (int c0 = m0, whole, end; c0 < m1; c0 = end) {
        end = panel_end(c0, m1, &whole);
        int jj = c0 / NR * NR;
        float *panel = packed + (size_t)jj * K;
        if (!whole) { /* half a panel: its 16 lanes (zero past M) */
            pack_lanes(w, M, K, c0, c0 + 16, panel);
            continue;
        }
        for (int p0 = 0; p0 < K; p0 += KC) {
            int kc = K - p0 < KC ? K - p0 : KC, nv = M - jj < NR ? M - jj : NR;
            pack_b(1, w, K, p0, kc, jj, nv, panel + (size_t)p0 * NR);
        }
    }
}

void nb__sgemm_avx512_direct(const nb__direct_conv *d, int m0, int m1) {
    float t[DIRECT_ROWS * NR] __attribute__((aligned(64)));
    /* each output row in the fewest segments of at most DIRECT_ROWS, as even as can be */
    const int segs = (d->width + DIRECT_ROWS - 1) / DIRECT_ROWS;
    const long plane = (long)d->rows * d->width;
    for (int c0 = m0, whole, end; c0 < m1; c0 = end) {
        end = panel_end(c0, m1, &whole);
        const int nv = end - c0, halves = whole ? 2 : 1; /* not whole: nv <= 16 */
        __mmask16 m0v = (__mmask16)(nv >= 16 ? 0xFFFF : (1u << nv) - 1);
        __mmask16 m1v = (__mmask16)(nv >= 32 ? 0xFFFF : nv > 16 ? (1u << (nv - 16)) - 1 : 0);
        const float *bp = d->packed + (size_t)(c0 / NR * NR) * d->K + c0 % NR;
        const float *bias = d->bias ? d->bias + c0 : NULL;
        for (int r = 0; r < d->rows; r++)
            for (int sg = 0, i0 = 0; sg < segs; sg++) {
                int len = d->width / segs + (sg < d->width % segs);
                const float *x = d->x + r * d->row_step + i0;
                for (int p0 = 0; p0 < d->K; p0 += KC)
                    direct_block(len, halves, d->K - p0 < KC ? d->K - p0 : KC, x, d->off + p0,
                                 bp + (size_t)p0 * NR, t, bias, m0v, m1v, p0 == 0);
                store_transposed(t, len, nv, d->relu, d->y + c0 * plane + (long)r * d->width + i0,
                                 plane);
                i0 += len;
            }
    }
}

/* Without packing buffers (out of memory), a product whose op(B) only comes
 * packed: a few of its rows at a time into a stack panel, summed plainly.
 * Only C = op(A) B (+ bias) is done this way (the packing entry's form). */
static void packed_fallback(const gemm_job *g, int i0, int i1, int j0, int j1) {
    enum { ROWS = 16 };
    float panel[ROWS * NR];
    for (int jj = j0; jj < j1; jj += NR) {
        int nv = j1 - jj < NR ? j1 - jj : NR;
        for (int i = i0; i < i1; i++)
            for (int j = 0; j < nv; j++)
                g->C[(size_t)i * g->ldc + jj + j] = g->bias ? g->bias[i] : 0.0f;
        for (int k0 = 0; k0 < g->K; k0 += ROWS) {
            int kc = g->K - k0 < ROWS ? g->K - k0 : ROWS;
            g->pack(g->pack_ctx, k0, kc, jj, nv, panel);
            for (int i = i0; i < i1; i++)
                for (int j = 0; j < nv; j++) {
                    float s = 0;
                    for (int k = 0; k < kc; k++)
                        s += g->A[(size_t)i * g->lda + k0 + k] * panel[k * NR + j];
                    g->C[(size_t)i * g->ldc + jj + j] += s;
                }
        }
        for (int i = i0; g->relu && i < i1; i++) nb__relu_run(g->C + (size_t)i * g->ldc + jj, nv);
    }
}

static void gemm_part(void *ctx, int part) {
    const gemm_job *g = ctx;
    int i0, i1, j0, j1; /* whole MR row blocks or NR panels */
    nb__block_range(g->M, g->N, g->split_rows, g->split_rows ? MR : NR, part, g->parts,
                    &i0, &i1, &j0, &j1);
    if (i0 >= i1 || j0 >= j1) return;
    float *bp = buffer_b(), *ap = buffer_a();
    if ((!bp || !ap) && g->pack) {
        packed_fallback(g, i0, i1, j0, j1);
        return;
    }
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

static inline __mmask16 tail_mask(int n) {
    return (__mmask16)(n <= 0 ? 0 : n >= 16 ? 0xFFFF : (1u << n) - 1);
}

/* y[j] = alpha dot(x, B[j, :]) + beta y[j] for j < N: B is [N, K] (op(B) = B^T),
 * x has stride incx. Eight rows of B per pass share each load of x. */
AVX512 static void gemv_rows(int N, int K, float alpha, const float *x, long incx,
                             const float *B, long ldb, float beta, float *y) {
    /* Rows that cannot all stay in L2 (they arrive from L3 at every call) are
     * prefetched eight lines ahead: the hardware's prefetch alone leaves
     * eight streams from L3 short (without, mlp-wide's batch-1 latency is
     * 1.12x longer on Zen 5).  Rows that fit are not: there the prefetches
     * only cost (mlp's latency 1.11-1.19x longer with them). */
    const int prefetch = (size_t)N * (size_t)K * sizeof(float) > nb__l2_bytes();
    float xbuf[1024] __attribute__((aligned(64)));
    const float *xv = x;
    if (incx != 1) { /* gather a strided x (a column of A) once per chunk */
        if (K > 1024) {
            for (int j = 0; j < N; j++) {
                float s = 0;
                for (int k = 0; k < K; k++) s += x[k * incx] * B[(size_t)j * ldb + k];
                y[j] = alpha * s + (beta == 0 ? 0 : beta * y[j]);
            }
            return;
        }
        for (int k = 0; k < K; k++) xbuf[k] = x[k * incx];
        xv = xbuf;
    }
    int j = 0;
    for (; j + 8 <= N; j += 8) { /* eight rows in flight keep the loads from L2 busy */
        const float *b = B + (size_t)j * ldb;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0,
               s7 = s0;
        for (int k = 0; k < K; k += 16) {
            __mmask16 m = tail_mask(K - k);
            if (prefetch && k + 128 < K)
                for (int r = 0; r < 8; r++)
                    _mm_prefetch((const char *)(b + r * ldb + k + 128), _MM_HINT_T0);
            __m512 xk = _mm512_maskz_loadu_ps(m, xv + k);
            s0 = _mm512_fmadd_ps(xk, _mm512_maskz_loadu_ps(m, b + k), s0);
            s1 = _mm512_fmadd_ps(xk, _mm512_maskz_loadu_ps(m, b + ldb + k), s1);
            s2 = _mm512_fmadd_ps(xk, _mm512_maskz_loadu_ps(m, b + 2 * ldb + k), s2);
            s3 = _mm512_fmadd_ps(xk, _mm512_maskz_loadu_ps(m, b + 3 * ldb + k), s3);
            s4 = _mm512_fmadd_ps(xk, _mm512_maskz_loadu_ps(m, b + 4 * ldb + k), s4);
            s5 = _mm512_fmadd_ps(xk, _mm512_maskz_loadu_ps(m, b + 5 * ldb + k), s5);
            s6 = _mm512_fmadd_ps(xk, _mm512_maskz_loadu_ps(m, b + 6 * ldb + k), s6);
            s7 = _mm512_fmadd_ps(xk, _mm512_maskz_loadu_ps(m, b + 7 * ldb + k), s7);
        }
        float d[8] = {_mm512_reduce_add_ps(s0), _mm512_reduce_add_ps(s1),
                      _mm512_reduce_add_ps(s2), _mm512_reduce_add_ps(s3),
                      _mm512_reduce_add_ps(s4), _mm512_reduce_add_ps(s5),
                      _mm512_reduce_add_ps(s6), _mm512_reduce_add_ps(s7)};
        for (int r = 0; r < 8; r++) y[j + r] = alpha * d[r] + (beta == 0 ? 0 : beta * y[j + r]);
    }
    for (; j < N; j++) {
        const float *b0 = B + (size_t)j * ldb;
        __m512 s0 = _mm512_setzero_ps();
        for (int k = 0; k < K; k += 16) {
            __mmask16 m = tail_mask(K - k);
            s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, xv + k), _mm512_maskz_loadu_ps(m, b0 + k),
                                 s0);
        }
        y[j] = alpha * _mm512_reduce_add_ps(s0) + (beta == 0 ? 0 : beta * y[j]);
    }
}

/* y = alpha sum_k x[k] B[k, :] + beta y: B is [K, N], rows streamed once. */
AVX512 static void gemv_cols(int N, int K, float alpha, const float *x, long incx,
                             const float *B, long ldb, float beta, float *y) {
    for (int j = 0; j < N; j += 64) {
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        __mmask16 m0 = tail_mask(N - j), m1 = tail_mask(N - j - 16), m2 = tail_mask(N - j - 32),
                  m3 = tail_mask(N - j - 48);
        const float *b = B + j;
        for (int k = 0; k < K; k++, b += ldb) {
            __m512 xk = _mm512_set1_ps(x[k * incx]);
            s0 = _mm512_fmadd_ps(xk, _mm512_maskz_loadu_ps(m0, b), s0);
            s1 = _mm512_fmadd_ps(xk, _mm512_maskz_loadu_ps(m1, b + 16), s1);
            s2 = _mm512_fmadd_ps(xk, _mm512_maskz_loadu_ps(m2, b + 32), s2);
            s3 = _mm512_fmadd_ps(xk, _mm512_maskz_loadu_ps(m3, b + 48), s3);
        }
        __m512 s[4] = {s0, s1, s2, s3};
        __mmask16 m[4] = {m0, m1, m2, m3};
        __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
        for (int q = 0; q < 4; q++) {
            __m512 r = _mm512_mul_ps(va, s[q]);
            if (beta != 0) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m[q], y + j + 16 * q), r);
            _mm512_mask_storeu_ps(y + j + 16 * q, m[q], r);
        }
    }
}

/* Columns [j0, j1) of C (multiples of 64 apart from the end) for part
 * `part`, one row of C at a time from row i of op(A). */
static void gemv_part(void *ctx, int part) {
    const gemm_job *g = ctx;
    size_t lo, hi;
    nb__part_range((size_t)(g->N + 63) / 64, part, g->parts, 1, &lo, &hi);
    int j0 = (int)lo * 64, j1 = (int)hi * 64 < g->N ? (int)hi * 64 : g->N;
    for (int i = 0; i < g->M && j0 < j1; i++) {
        const float *x = g->ta ? g->A + i : g->A + (size_t)i * g->lda;
        long incx = g->ta ? g->lda : 1;
        float *y = g->C + (size_t)i * g->ldc + j0;
        if (g->tb) gemv_rows(j1 - j0, g->K, g->alpha, x, incx, g->B + (size_t)j0 * g->ldb, g->ldb,
                             g->beta, y);
        else gemv_cols(j1 - j0, g->K, g->alpha, x, incx, g->B + j0, g->ldb, g->beta, y);
    }
}

/* A matrix-vector product splits between threads from this many values of B. */
#define GEMV_PARALLEL_MIN (1 << 16)

/* Below this many multiply-adds a second thread costs more than it saves. */
#define PARALLEL_MIN_MACS (1 << 18)

int nb__sgemm_avx512_usable(void) {
    static int usable = -1;
    if (usable < 0) {
        __builtin_cpu_init();
        usable = __builtin_cpu_supports("avx512f");
    }
    return usable;
}

/* A product of more than SMALL_M rows: split between threads by columns of
 * C (or rows, when C is narrow), or on this one when it is small. */
static void run_packed(gemm_job *g, int threads) {
    g->cold_c = nb__cold_c(g->M, g->N);
    g->parts = nb__product_parts(g->M, g->N, g->K, MR, NR, threads, PARALLEL_MIN_MACS,
                                 &g->split_rows);
    if (g->parts > 1) nb__parallel(g->parts, gemm_part, g);
    else gemm_part(g, 0);
}

void nb__sgemm_avx512(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc) {
    gemm_job g = {.ta = ta, .tb = tb, .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta,
                  .A = A, .B = B, .lda = lda, .ldb = ldb, .ldc = ldc, .C = C, .parts = 1};
    if (K == 0 || alpha == 0) { /* C = beta C, as BLAS */
        nb__gemm_scale_c(M, N, beta, C, ldc);
        return;
    }
    int threads = nb__free_threads();
    if (M <= SMALL_M) {
        /* bound by reading B: threads split its columns (rows of B^T), each
         * streaming its share from its own core's cache */
        int parts = (N + 63) / 64;
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

int nb__sgemm_avx512_dense(int M, int N, int K, const float *X, const float *W,
                           const float *bias, int relu, float *Y) {
    if (M <= SMALL_M || K == 0) return 0; /* the matrix-vector path: the caller's form */
    gemm_job g = {.tb = 1, .M = M, .N = N, .K = K, .alpha = 1, .beta = 0, .A = X, .B = W,
                  .lda = K, .ldb = K, .ldc = N, .C = Y, .parts = 1, .col_bias = bias,
                  .relu = relu};
    run_packed(&g, nb__free_threads());
    return 1;
}

void nb__sgemm_avx512_pack_b(int M, int N, int K, const float *A, int lda, nb__pack_b_fn pack,
                             const void *ctx, const float *bias, int relu, float *C, int ldc) {
    gemm_job g = {.M = M, .N = N, .K = K, .alpha = 1, .beta = 0, .A = A, .lda = lda, .C = C,
                  .ldc = ldc, .parts = 1, .pack = pack, .pack_ctx = ctx, .bias = bias,
                  .relu = relu};
    if (M == 0 || N == 0) return;
    if (K == 0) { /* no terms: the bias alone */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * ldc + j] = bias ? (relu ? nb__relu(bias[i]) : bias[i]) : 0.0f;
        return;
    }
    g.cold_c = nb__cold_c(M, N);
    /* threads split the columns: each packs only its own panels of op(B) */
    int threads = nb__free_threads(), panels = (N + NR - 1) / NR;
    if (threads > 1 && panels > 1 && (double)M * N * K >= PARALLEL_MIN_MACS)
        g.parts = panels < threads ? panels : threads;
    if (g.parts > 1) nb__parallel(g.parts, gemm_part, &g);
    else gemm_part(&g, 0);
}

#endif /* NB_AVX512_GEMM */
