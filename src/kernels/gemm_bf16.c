/* Mixed-precision GEMM: C = alpha op(A) op(B) + beta C, where every product
 * is of operands rounded to bfloat16 (round to nearest even, as VCVTNE2PS2BF16
 * and PyTorch's .bfloat16() do) and the sums are in fp32.  C stays fp32.
 *
 * Two micro-kernels share one scheme of packing and threading (that of
 * sgemm_avx512.c):
 *   - AVX512-BF16: a 12 x 32 tile of C in 24 zmm registers, one VDPBF16PS per
 *     pair of k and 16 columns (two multiply-adds per lane);
 *   - AMX: a 32 x 32 block of C in four 16 x 16 tiles, TDPBF16PS on 16 x 32
 *     bf16 tiles of A and B, chosen when the CPU has AMX-BF16 and the OS
 *     grants the process its tile state.
 * Operands are converted while they are packed, once per packed panel: a
 * packed word holds the bf16 of op(X)[.., k] and op(X)[.., k+1] (even k in the
 * low half), the layout both instructions read.  B is packed per K block into
 * panels of 32 columns, [k pair][column]; A per MC rows into micro-panels,
 * [k pair][row] for AVX512-BF16 and [row][k pair] for AMX.  An odd K (and, for
 * AMX, K up to a multiple of 32) is padded with zeros, which add nothing.
 * Each element of C is summed in the same order whatever the thread count.
 * Both instructions treat bf16 denormals as zero, and the conversion
 * flushes float denormals (below 2^-126) to zero. */
#define _GNU_SOURCE /* syscall, for the AMX permission */
#include "gemm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"

#ifdef NB_BF16_GEMM

#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define AMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16")))
#define INLINE static inline __attribute__((always_inline))

enum {
    KC = 512,     /* depth of one K block; KP = KC / 2 pairs                 */
    KP = KC / 2,
    MC = 192,     /* rows of A per packed block: 16 AVX or 6 AMX micro-panels */
    NC = 2048,    /* columns of B per packed block                           */
    NR = 32,      /* columns of a C tile and of a packed B panel             */
    MR_DP = 12,   /* rows of the AVX512-BF16 C tile                          */
    MR_AMX = 32,  /* rows of the AMX C block (two tiles of 16)               */
    TILE_KP = 16, /* k pairs in one AMX tile row (64 bytes)                  */
};

INLINE __mmask16 mask16(int n) {
    return (__mmask16)(n <= 0 ? 0 : n >= 16 ? 0xFFFF : (1u << n) - 1);
}

/* ---- conversion and packing ---- */

/* Words q = 0..15 of x[0 .. n) (n <= 32, zero beyond): (bf16 x[2q], bf16 x[2q+1]). */
INLINE BF16 __m512i pairs_along(const float *x, int n) {
    __m512 lo = _mm512_maskz_loadu_ps(mask16(n), x);
    __m512 hi = _mm512_maskz_loadu_ps(mask16(n - 16), x + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

/* Words j = 0..15: (bf16 r0[j], bf16 r1[j]) for the lanes in m; r1 NULL: zeros. */
INLINE BF16 __m512i pairs_across(const float *r0, const float *r1, __mmask16 m) {
    const __m512i interleave = _mm512_set_epi16(
        31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4,
        19, 3, 18, 2, 17, 1, 16, 0);
    __m512 a = _mm512_maskz_loadu_ps(m, r0);
    __m512 b = r1 ? _mm512_maskz_loadu_ps(m, r1) : _mm512_setzero_ps();
    return _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(b, a));
}

/* 16 x 16 transpose of 32-bit words: r[i] lane j -> r[j] lane i. */
INLINE BF16 void transpose16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 4; g++) { /* r[4g+e], 128-bit lane L: column 4L+e of rows 4g..4g+3 */
        r[4 * g] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
        r[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
        r[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
        r[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    for (int e = 0; e < 4; e++) { /* gather lane L of the four row groups */
        __m512i a = _mm512_shuffle_i32x4(r[e], r[4 + e], 0x88);
        __m512i b = _mm512_shuffle_i32x4(r[e], r[4 + e], 0xDD);
        __m512i c = _mm512_shuffle_i32x4(r[8 + e], r[12 + e], 0x88);
        __m512i d = _mm512_shuffle_i32x4(r[8 + e], r[12 + e], 0xDD);
        t[e] = _mm512_shuffle_i32x4(a, c, 0x88);
        t[8 + e] = _mm512_shuffle_i32x4(a, c, 0xDD);
        t[4 + e] = _mm512_shuffle_i32x4(b, d, 0x88);
        t[12 + e] = _mm512_shuffle_i32x4(b, d, 0xDD);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* Store words v[i] lane j, for i < ni, to d[i*di + j] (j in m); with
 * transpose, v[i] lane j goes to d[j*di + i] for j < nj instead. */
INLINE BF16 void store_block(__m512i v[16], int transpose, int ni, int nj, __mmask16 m,
                             uint32_t *d, long di) {
    if (transpose) {
        transpose16(v);
        m = mask16(ni), ni = nj;
    }
    for (int i = 0; i < ni; i++) _mm512_mask_storeu_epi32(d + i * di, m, v[i]);
}

/* A matrix whose rows r < nr hold k contiguously (row r at src + r*ld), k <
 * kc: word (kp, r) goes to dst[kp*dkp + r*dr] for kp < kpn and r < nrpad,
 * zero beyond kc and nr.  One of dkp and dr is 1; blocks of 16 rows by 16
 * pairs are transposed in registers when dkp is not. */
BF16 static void pack_along(const float *src, long ld, int nr, int nrpad, int kc, int kpn,
                            uint32_t *dst, long dkp, long dr) {
    for (int r0 = 0; r0 < nrpad; r0 += 16)
        for (int kp = 0; kp < kpn; kp += 16) {
            __m512i v[16];
            for (int i = 0; i < 16; i++) {
                int r = r0 + i, n = r < nr ? kc - 2 * kp : 0;
                v[i] = n > 0 ? pairs_along(src + r * ld + 2 * kp, n) : _mm512_setzero_si512();
            }
            int rows = nrpad - r0 < 16 ? nrpad - r0 : 16, pairs = kpn - kp < 16 ? kpn - kp : 16;
            if (dkp == 1) store_block(v, 0, rows, 0, mask16(pairs), dst + kp + r0 * dr, dr);
            else store_block(v, 1, rows, pairs, mask16(rows), dst + kp * dkp + r0, dkp);
        }
}

/* A matrix whose element (k, c) is src[k*ld + c], k < kc, c < nc: word
 * (kp, c) goes to dst[kp*dkp + c*dc] for kp < kpn and c < ncpad, zero beyond
 * kc and nc.  One of dkp and dc is 1; blocks are transposed when dc is not. */
BF16 static void pack_across(const float *src, long ld, int nc, int ncpad, int kc, int kpn,
                             uint32_t *dst, long dkp, long dc) {
    for (int kp0 = 0; kp0 < kpn; kp0 += 16)
        for (int c = 0; c < ncpad; c += 16) {
            __m512i v[16];
            for (int i = 0; i < 16; i++) {
                int kp = kp0 + i;
                const float *r0 = 2 * kp < kc ? src + 2 * kp * ld + c : NULL;
                const float *r1 = 2 * kp + 1 < kc ? src + (2 * kp + 1) * ld + c : NULL;
                v[i] = r0 ? pairs_across(r0, r1, mask16(nc - c)) : _mm512_setzero_si512();
            }
            int pairs = kpn - kp0 < 16 ? kpn - kp0 : 16, cols = ncpad - c < 16 ? ncpad - c : 16;
            if (dc == 1) store_block(v, 0, pairs, 0, mask16(cols), dst + kp0 * dkp + c, dkp);
            else store_block(v, 1, pairs, cols, mask16(pairs), dst + c * dc + kp0, dc);
        }
}

/* ---- the micro-kernels ---- */

/* A dense layer's bias on each column and its relu, applied as a tile is
 * stored (as in sgemm_avx512.c): the bias with the first K block (col: the
 * tile's first column's, else NULL), the relu with the last.  Adding the
 * bias here gives the bits of a C prefilled with it and beta = 1. */
typedef struct store_extras {
    const float *col;
    int relu;
} store_extras;

/* C[0..m, 0..32) (masked to the columns in m0, m1) = alpha * acc + beta * C,
 * then the extras; beta == 0 does not read C. */
INLINE BF16 void store_row(float *c, __m512 acc0, __m512 acc1, __mmask16 m0, __mmask16 m1,
                           float alpha, float beta, store_extras e) {
    __m512 va = _mm512_set1_ps(alpha), r0 = _mm512_mul_ps(va, acc0), r1 = _mm512_mul_ps(va, acc1);
    if (beta != 0) {
        __m512 vb = _mm512_set1_ps(beta);
        r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), r0);
        r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), r1);
    }
    if (e.col) {
        r0 = _mm512_add_ps(r0, _mm512_maskz_loadu_ps(m0, e.col));
        r1 = _mm512_add_ps(r1, _mm512_maskz_loadu_ps(m1, e.col + 16));
    }
    if (e.relu) { /* x <= 0 becomes 0; a NaN stays */
        __m512 z = _mm512_setzero_ps();
        r0 = _mm512_mask_mov_ps(r0, _mm512_cmp_ps_mask(r0, z, _CMP_LE_OQ), z);
        r1 = _mm512_mask_mov_ps(r1, _mm512_cmp_ps_mask(r1, z, _CMP_LE_OQ), z);
    }
    _mm512_mask_storeu_ps(c, m0, r0);
    _mm512_mask_storeu_ps(c + 16, m1, r1);
}

/* AVX512-BF16: a is a micro-panel [kp][12], b a panel [kp][32]. */
BF16 static void kernel_dp(int kpn, const uint32_t *a, const uint32_t *b, float *c, long ldc,
                           int m, __mmask16 m0, __mmask16 m1, float alpha, float beta,
                           store_extras e) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00,
           c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00, c90 = c00, c91 = c00,
           ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
#define NB_ROW(i, ci0, ci1)                                                                     \
    do {                                                                                       \
        __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);                                 \
        ci0 = _mm512_dpbf16_ps(ci0, ai, b0);                                                   \
        ci1 = _mm512_dpbf16_ps(ci1, ai, b1);                                                   \
    } while (0)
    for (int kp = 0; kp < kpn; kp++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(b), b1 = (__m512bh)_mm512_load_si512(b + 16);
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
        a += MR_DP;
        b += NR;
    }
#undef NB_ROW
    __m512 acc[2 * MR_DP] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51,
                             c60, c61, c70, c71, c80, c81, c90, c91, ca0, ca1, cb0, cb1};
    for (int i = 0; i < m; i++)
        store_row(c + i * ldc, acc[2 * i], acc[2 * i + 1], m0, m1, alpha, beta, e);
}

/* The AMX tile layout: tiles 0-3 hold C (rows 0-15 / 16-31 x columns 0-15 /
 * 16-31), 4-5 two row halves of A, 6-7 two column halves of B; each 16 rows
 * of 64 bytes. */
typedef struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

static _Thread_local int tiles_configured;

/* Static: the load reads memory the compiler does not see it read, so stores
 * to a local configuration could be dropped. */
static const tile_config tiles_8x16x64 __attribute__((aligned(64))) = {
    .palette = 1,
    .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
    .rows = {16, 16, 16, 16, 16, 16, 16, 16},
};

AMX static void configure_tiles(void) {
    _tile_loadconfig(&tiles_8x16x64);
    tiles_configured = 1;
}

/* AMX: a is a micro-panel [32 rows][kpn], b a panel [kpn][32], kpn a
 * multiple of 16. */
AMX static void kernel_amx(int kpn, const uint32_t *a, const uint32_t *b, float *c, long ldc,
                           int m, __mmask16 m0, __mmask16 m1, float alpha, float beta,
                           store_extras e) {
    float t[MR_AMX * NR] __attribute__((aligned(64)));
    long sa = (long)kpn * 4;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int kp = 0; kp < kpn; kp += TILE_KP) {
        _tile_loadd(4, a + kp, sa);
        _tile_loadd(5, a + 16 * kpn + kp, sa);
        _tile_loadd(6, b + kp * NR, NR * 4);
        _tile_loadd(7, b + kp * NR + 16, NR * 4);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, t, NR * 4);
    _tile_stored(1, t + 16, NR * 4);
    _tile_stored(2, t + 16 * NR, NR * 4);
    _tile_stored(3, t + 16 * NR + 16, NR * 4);
    for (int i = 0; i < m; i++)
        store_row(c + i * ldc, _mm512_load_ps(t + i * NR), _mm512_load_ps(t + i * NR + 16), m0,
                  m1, alpha, beta, e);
}

/* ---- one thread's share: rows [i0, i1) x columns [j0, j1) of C ---- */

typedef struct bf16_job {
    int ta, tb, M, N, K;
    float alpha, beta;
    const float *A, *B;
    int lda, ldb, ldc;
    float *C;
    const float *col_bias; /* nb__gemm_bf16_dense: added to each column */
    int relu;              /* nb__gemm_bf16_dense: then max(0, .)      */
    int cold_c;            /* C is larger than L2: its tiles are prefetched */
    int amx;        /* the AMX micro-kernel, else AVX512-BF16 */
    int mr;         /* rows of its micro-panel                */
    int split_rows; /* threads split rows (else columns)      */
    int parts;
    uint32_t *a_packed; /* all of op(A), packed by the threads together, or NULL */
} bf16_job;

/* Packed panels of op(B)[p0 .. p0+kc, j0 .. j1), NR columns each. */
static void pack_b_block(const bf16_job *g, int p0, int kc, int kpn, int j0, int j1,
                         uint32_t *bp) {
    for (int jj = j0, p = 0; jj < j1; jj += NR, p++) {
        int nv = j1 - jj < NR ? j1 - jj : NR;
        uint32_t *dst = bp + (size_t)p * kpn * NR;
        if (g->tb) pack_along(g->B + (size_t)jj * g->ldb + p0, g->ldb, nv, NR, kc, kpn, dst, NR, 1);
        else pack_across(g->B + (size_t)p0 * g->ldb + jj, g->ldb, nv, NR, kc, kpn, dst, NR, 1);
    }
}

/* Micro-panels of op(A)[i0 .. i1, p0 .. p0+kc), rows padded with zeros to mr. */
static void pack_a_block(const bf16_job *g, int i0, int i1, int p0, int kc, int kpn,
                         uint32_t *ap) {
    int mr = g->mr;
    long dkp = g->amx ? 1 : mr, dr = g->amx ? kpn : 1; /* [row][kp] or [kp][row] */
    for (int i = i0; i < i1; i += mr, ap += (size_t)mr * kpn) {
        int m = i1 - i < mr ? i1 - i : mr;
        if (g->ta) pack_across(g->A + (size_t)p0 * g->lda + i, g->lda, m, mr, kc, kpn, ap, dkp, dr);
        else pack_along(g->A + (size_t)i * g->lda + p0, g->lda, m, mr, kc, kpn, ap, dkp, dr);
    }
}

/* The k pairs a K block of kc packs: AMX reads whole tile rows of them. */
static int block_pairs(const bf16_job *g, int kc) {
    int kpn = (kc + 1) / 2;
    return g->amx ? (kpn + TILE_KP - 1) / TILE_KP * TILE_KP : kpn;
}

/* op(A)'s micro-panels: M rows in panels of mr. */
static size_t a_panels(const bf16_job *g) { return (size_t)(g->M + g->mr - 1) / (size_t)g->mr; }

/* Where K block p0 of op(A) starts in a_packed: each block holds every row's
 * micro-panels (rows padded to mr), the blocks before it KP pairs deep. */
static size_t shared_a_offset(const bf16_job *g, int p0) {
    return (size_t)(p0 / KC) * a_panels(g) * (size_t)g->mr * KP;
}

static void bf16_block(const bf16_job *g, int i0, int i1, int j0, int j1, uint32_t *bp,
                       uint32_t *ap) {
    int mr = g->mr;
    /* with one row block, each B panel is packed just before its one use
     * and stays in L1 (as in sgemm_avx512.c) */
    int pack_each = i1 - i0 <= MC;
    for (int p0 = 0; p0 < g->K; p0 += KC) {
        int kc = g->K - p0 < KC ? g->K - p0 : KC, kpn = block_pairs(g, kc);
        float beta = p0 == 0 ? g->beta : 1.0f;
        if (!pack_each) pack_b_block(g, p0, kc, kpn, j0, j1, bp);
        for (int ic = i0; ic < i1; ic += MC) {
            int ie = ic + MC < i1 ? ic + MC : i1;
            if (g->a_packed) /* the micro-panel of row ic */
                ap = g->a_packed + shared_a_offset(g, p0) + (size_t)ic * kpn;
            else pack_a_block(g, ic, ie, p0, kc, kpn, ap);
            for (int jj = j0, p = 0; jj < j1; jj += NR, p++) {
                int nv = j1 - jj < NR ? j1 - jj : NR;
                __mmask16 m0 = mask16(nv), m1 = mask16(nv - 16);
                const uint32_t *bpan = pack_each ? bp : bp + (size_t)p * kpn * NR;
                if (pack_each) pack_b_block(g, p0, kc, kpn, jj, jj + nv, bp);
                for (int i = ic; i < ie; i += mr) {
                    int m = ie - i < mr ? ie - i : mr;
                    const uint32_t *apan = ap + (size_t)(i - ic) * kpn;
                    float *c = g->C + (size_t)i * g->ldc + jj;
                    store_extras e = {.col = p0 == 0 && g->col_bias ? g->col_bias + jj : NULL,
                                      .relu = g->relu && p0 + kc >= g->K};
                    if (beta != 0 || g->cold_c) nb__prefetch_tile(c, g->ldc, m);
                    if (g->amx) kernel_amx(kpn, apan, bpan, c, g->ldc, m, m0, m1, g->alpha, beta, e);
                    else kernel_dp(kpn, apan, bpan, c, g->ldc, m, m0, m1, g->alpha, beta, e);
                }
            }
        }
    }
}

/* Each thread's packing buffers (nb__thread_scratch), as sgemm_avx512.c. */
static uint32_t *buffer_b(void) {
    return nb__thread_scratch(NB__SCRATCH_BF16_B, (size_t)KP * NC * sizeof(uint32_t));
}
static uint32_t *buffer_a(void) {
    return nb__thread_scratch(NB__SCRATCH_BF16_A, (size_t)KP * MC * sizeof(uint32_t));
}

static void worker_buffers(void) {
    if (nb__bf16_kernel() != NB__BF16_NONE) buffer_b(), buffer_a();
}

__attribute__((constructor)) static void allocate_on_worker_start(void) {
    nb__pool_at_worker_start(worker_buffers);
}

static void bf16_scalar(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc);

static void bf16_part(void *ctx, int part) {
    const bf16_job *g = ctx;
    int i0, i1, j0, j1; /* whole micro-panels or NR panels */
    nb__block_range(g->M, g->N, g->split_rows, g->split_rows ? g->mr : NR, part, g->parts,
                    &i0, &i1, &j0, &j1);
    if (i0 >= i1 || j0 >= j1) return;
    uint32_t *bp = buffer_b(), *ap = buffer_a();
    if (!bp || !ap) { /* out of memory: the scalar loop needs none */
        float *c = g->C + (size_t)i0 * g->ldc + j0;
        bf16_scalar(g->ta, g->tb, i1 - i0, j1 - j0, g->K, g->alpha,
                    g->ta ? g->A + i0 : g->A + (size_t)i0 * g->lda, g->lda,
                    g->tb ? g->B + (size_t)j0 * g->ldb : g->B + j0, g->ldb, g->beta, c, g->ldc);
        for (int i = 0; (g->col_bias || g->relu) && i < i1 - i0; i++)
            for (int j = 0; j < j1 - j0; j++) {
                float *v = c + (size_t)i * g->ldc + j;
                if (g->col_bias) *v += g->col_bias[j0 + j];
                if (g->relu && *v <= 0) *v = 0;
            }
        return;
    }
    if (g->amx && !tiles_configured) configure_tiles();
    for (int jc = j0; jc < j1; jc += NC)
        bf16_block(g, i0, i1, jc, j1 - jc < NC ? j1 : jc + NC, bp, ap);
}

/* ---- products with at most SMALL_M rows (batch-1 inference): no packing ---- */

enum { SMALL_M = 4, SMALL_K = 4096 };

/* x[0 .. K) (stride incx) as pair words, zero-padded to a multiple of 16. */
BF16 static void vector_pairs(const float *x, long incx, int K, uint32_t *xw) {
    float buf[32];
    for (int k = 0; k < K; k += 32) {
        int n = K - k < 32 ? K - k : 32;
        const float *src = x + k;
        if (incx != 1) {
            for (int i = 0; i < n; i++) buf[i] = x[(long)(k + i) * incx];
            src = buf;
        }
        _mm512_storeu_si512(xw + k / 2, pairs_along(src, n));
    }
}

INLINE BF16 float scaled(float dot, float alpha, float beta, const float *y) {
    return alpha * dot + (beta == 0 ? 0 : beta * *y);
}

/* y[j] = alpha dot(x, B[j, :]) + beta y[j], j < N (op(B) = B^T): four rows of
 * B per pass share each load of x. */
BF16 static void gemv_rows(int N, int K, float alpha, const uint32_t *xw, const float *B,
                           long ldb, float beta, float *y) {
    for (int j = 0; j < N; j += 4) {
        const float *row[4];
        for (int r = 0; r < 4; r++) row[r] = B + (j + r < N ? j + r : j) * ldb;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int k = 0; k < K; k += 32) {
            __m512bh xv = (__m512bh)_mm512_loadu_si512(xw + k / 2);
            s0 = _mm512_dpbf16_ps(s0, xv, (__m512bh)pairs_along(row[0] + k, K - k));
            s1 = _mm512_dpbf16_ps(s1, xv, (__m512bh)pairs_along(row[1] + k, K - k));
            s2 = _mm512_dpbf16_ps(s2, xv, (__m512bh)pairs_along(row[2] + k, K - k));
            s3 = _mm512_dpbf16_ps(s3, xv, (__m512bh)pairs_along(row[3] + k, K - k));
        }
        float d[4] = {_mm512_reduce_add_ps(s0), _mm512_reduce_add_ps(s1),
                      _mm512_reduce_add_ps(s2), _mm512_reduce_add_ps(s3)};
        for (int r = 0; r < 4 && j + r < N; r++) y[j + r] = scaled(d[r], alpha, beta, y + j + r);
    }
}

/* y = alpha sum_k x[k] B[k, :] + beta y, B [K, N]: two rows of B per pair. */
BF16 static void gemv_cols(int N, int K, float alpha, const uint32_t *xw, const float *B,
                           long ldb, float beta, float *y) {
    for (int j = 0; j < N; j += NR) {
        __mmask16 m0 = mask16(N - j), m1 = mask16(N - j - 16);
        __m512 s0 = _mm512_setzero_ps(), s1 = s0;
        for (int kp = 0; 2 * kp < K; kp++) {
            __m512bh xv = (__m512bh)_mm512_set1_epi32((int)xw[kp]);
            const float *r0 = B + 2 * kp * ldb + j, *r1 = 2 * kp + 1 < K ? r0 + ldb : NULL;
            s0 = _mm512_dpbf16_ps(s0, xv, (__m512bh)pairs_across(r0, r1, m0));
            s1 = _mm512_dpbf16_ps(s1, xv, (__m512bh)pairs_across(r0 + 16, r1 ? r1 + 16 : NULL, m1));
        }
        store_row(y + j, s0, s1, m0, m1, alpha, beta, (store_extras){0});
    }
}

/* Columns of C in chunks of 64 for part `part`, one row of C at a time. */
static void gemv_part(void *ctx, int part) {
    const bf16_job *g = ctx;
    uint32_t xw[SMALL_K / 2 + 16] __attribute__((aligned(64)));
    size_t lo, hi;
    nb__part_range((size_t)(g->N + 63) / 64, part, g->parts, 1, &lo, &hi);
    int j0 = (int)lo * 64, j1 = (int)hi * 64 < g->N ? (int)hi * 64 : g->N;
    for (int i = 0; i < g->M && j0 < j1; i++) {
        vector_pairs(g->ta ? g->A + i : g->A + (size_t)i * g->lda, g->ta ? g->lda : 1, g->K, xw);
        float *y = g->C + (size_t)i * g->ldc + j0;
        if (g->tb) gemv_rows(j1 - j0, g->K, g->alpha, xw, g->B + (size_t)j0 * g->ldb, g->ldb,
                             g->beta, y);
        else gemv_cols(j1 - j0, g->K, g->alpha, xw, g->B + j0, g->ldb, g->beta, y);
    }
}

/* Below this many multiply-adds a second thread costs more than it saves. */
#define PARALLEL_MIN_MACS (1 << 18)

/* Threads that split C's columns all read the whole of op(A): rather than
 * each packing it, they pack a share of its micro-panels each into the
 * caller's buffer first (a region of its own), and all read that.  Up to
 * this many bytes of packed A; a larger one is packed by each thread. */
enum { SHARED_A_BYTES = 1 << 20 };

static void pack_a_part(void *ctx, int part) {
    const bf16_job *g = ctx;
    size_t lo, hi;
    nb__part_range(a_panels(g), part, g->parts, 1, &lo, &hi);
    int i0 = (int)lo * g->mr, i1 = (int)hi * g->mr < g->M ? (int)hi * g->mr : g->M;
    for (int p0 = 0; p0 < g->K && i0 < i1; p0 += KC) {
        int kc = g->K - p0 < KC ? g->K - p0 : KC, kpn = block_pairs(g, kc);
        pack_a_block(g, i0, i1, p0, kc, kpn,
                     g->a_packed + shared_a_offset(g, p0) + (size_t)i0 * kpn);
    }
}

/* Pack g's A into g->a_packed when its threads split columns and it fits
 * (else a_packed stays NULL: each thread packs its own). */
static void pack_shared_a(bf16_job *g) {
    if (g->split_rows || g->parts < 2) return;
    int last = (g->K - 1) / KC * KC; /* the last K block, the one whose depth may differ */
    size_t words = shared_a_offset(g, last) +
                   a_panels(g) * (size_t)g->mr * (size_t)block_pairs(g, g->K - last);
    if (words * sizeof(uint32_t) > SHARED_A_BYTES) return;
    g->a_packed = nb__thread_scratch(NB__SCRATCH_BF16_SHARED_A, SHARED_A_BYTES);
    if (g->a_packed) nb__parallel(g->parts, pack_a_part, g);
}

/* A product of more than SMALL_M rows (or a long K): split between threads
 * by panels of C's columns (or its rows, when C is narrow). */
static void run_packed(bf16_job *g, int threads) {
    g->cold_c = nb__cold_c(g->M, g->N);
    g->parts = nb__product_parts(g->M, g->N, g->K, g->mr, NR, threads, PARALLEL_MIN_MACS,
                                 &g->split_rows);
    pack_shared_a(g);
    if (g->parts > 1) nb__parallel(g->parts, bf16_part, g);
    else bf16_part(g, 0);
}

static void bf16_gemm(int amx, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    bf16_job g = {.ta = ta, .tb = tb, .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta,
                  .A = A, .B = B, .lda = lda, .ldb = ldb, .ldc = ldc, .C = C, .amx = amx,
                  .mr = amx ? MR_AMX : MR_DP, .parts = 1};
    int threads = nb__free_threads();
    if (M <= SMALL_M && K <= SMALL_K) { /* bound by reading B: threads split its columns */
        int parts = (N + 63) / 64;
        g.parts = threads > 1 && (double)N * K >= (1 << 16) && parts > 1
                      ? (parts < threads ? parts : threads) : 1;
        if (g.parts > 1) nb__parallel(g.parts, gemv_part, &g);
        else gemv_part(&g, 0);
        return;
    }
    run_packed(&g, threads);
}

/* ---- which kernel the CPU and the OS allow ---- */

/* AMX tile data is off for a process until it asks (Linux 5.16 and later). */
static int amx_permitted(void) {
#ifdef SYS_arch_prctl
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

/* CPUID leaf 7: AVX512-BF16 is subleaf 1 EAX bit 5, AMX-BF16 and AMX-TILE
 * subleaf 0 EDX bits 22 and 24 (read directly: not every compiler's
 * __builtin_cpu_supports knows the AMX names). */
enum { EAX, EBX, ECX, EDX };

static int cpuid7(unsigned sub, int reg, int bit) {
    unsigned r[4] = {0, 0, 0, 0};
    if (!__get_cpuid_count(7, sub, &r[0], &r[1], &r[2], &r[3])) return 0;
    return (int)(r[reg] >> bit & 1);
}

static int cpu_best(void) {
    static _Atomic int best = -1; /* workers may ask at once: each finds the same */
    if (best < 0) {
        __builtin_cpu_init();
        int found = NB__BF16_NONE;
        if (__builtin_cpu_supports("avx512bw") && cpuid7(1, EAX, 5)) found = NB__BF16_AVX512;
        if (found && cpuid7(0, EDX, 22) && cpuid7(0, EDX, 24) && amx_permitted())
            found = NB__BF16_AMX;
        best = found;
    }
    return best;
}

static const char *cpu_has(void) {
    __builtin_cpu_init();
    if (cpuid7(1, EAX, 5)) return "this CPU has it, but NB_BF16=none turns it off";
    if (__builtin_cpu_supports("avx512f")) return "this CPU has AVX-512 without its BF16 extension";
    if (__builtin_cpu_supports("avx2")) return "this CPU has AVX2 but no AVX-512";
    return "this CPU has no AVX-512";
}

#else /* no bf16 kernel in this build */

static int cpu_best(void) { return NB__BF16_NONE; }

static const char *cpu_has(void) {
#ifdef NB_REAL_DOUBLE
    return "the double-precision build has no bf16 products";
#else
    return "this build has no x86-64 AVX-512 kernels";
#endif
}

#endif

/* ---- the choice (NB_BF16 = amx, avx512 or none asks for a kernel) ---- */

static _Atomic int chosen = -1;

static int limit(int want) { return want < cpu_best() ? want : cpu_best(); }

int nb__bf16_kernel(void) {
    if (chosen < 0) {
        const char *env = getenv("NB_BF16");
        int want = NB__BF16_AMX;
        if (env && strcmp(env, "avx512") == 0) want = NB__BF16_AVX512;
        if (env && strcmp(env, "none") == 0) want = NB__BF16_NONE;
        chosen = limit(want);
    }
    return chosen;
}

void nb__bf16_use(int kernel) { chosen = limit(kernel); }

const char *nb__bf16_missing(void) { return nb__bf16_kernel() == NB__BF16_NONE ? cpu_has() : NULL; }

const char *nb__bf16_kernel_name(void) {
    int k = nb__bf16_kernel();
    return k == NB__BF16_AMX ? "AMX-BF16" : k == NB__BF16_AVX512 ? "AVX512-BF16" : "none";
}

/* bf16 rounding of x, to nearest even, denormals to zero (as VCVTNE2PS2BF16). */
static float bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7F800000u) == 0) u &= 0x80000000u;                 /* denormal: signed zero */
    else if ((u & 0x7FFFFFFFu) > 0x7F800000u) u |= 0x00400000u;   /* NaN: quiet */
    else u += 0x7FFFu + ((u >> 16) & 1);
    u &= 0xFFFF0000u;
    memcpy(&x, &u, sizeof u);
    return x;
}

/* The definition, one product at a time in k order: used when the packing
 * buffers cannot be allocated. */
static void bf16_scalar(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0;
            for (int k = 0; k < K; k++)
                s += bf16_round(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                     bf16_round(tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
            float *c = C + (size_t)i * ldc + j;
            *c = alpha * s + (beta == 0 ? 0 : beta * *c);
        }
}

void nb__gemm_bf16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc) {
    if (M == 0 || N == 0) return;
    int kernel = nb__bf16_kernel();
    if (K == 0 || alpha == 0) { /* C = beta C, as BLAS */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * C[(size_t)i * ldc + j];
        return;
    }
    if (kernel == NB__BF16_NONE) {
        bf16_scalar(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#ifdef NB_BF16_GEMM
    bf16_gemm(kernel == NB__BF16_AMX, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

int nb__gemm_bf16_dense(int M, int N, int K, const float *X, const float *W, const float *bias,
                        int relu, float *Y) {
#ifdef NB_BF16_GEMM
    int kernel = nb__bf16_kernel();
    if (kernel == NB__BF16_NONE || M <= SMALL_M || N == 0 || K == 0) return 0; /* the caller's */
    int amx = kernel == NB__BF16_AMX;
    bf16_job g = {.tb = 1, .M = M, .N = N, .K = K, .alpha = 1, .beta = 0, .A = X, .B = W,
                  .lda = K, .ldb = K, .ldc = N, .C = Y, .col_bias = bias, .relu = relu,
                  .amx = amx, .mr = amx ? MR_AMX : MR_DP, .parts = 1};
    run_packed(&g, nb__free_threads());
    return 1;
#else
    (void)M, (void)N, (void)K, (void)X, (void)W, (void)bias, (void)relu, (void)Y;
    return 0;
#endif
}
