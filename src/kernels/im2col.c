#include "im2col.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(NB_REAL_DOUBLE)
#define IM2COL_AVX512 1
#include <immintrin.h>
#else
#define IM2COL_AVX512 0
#endif

/* Output positions o in [0, n_out) whose input index o*stride + offset lies
 * in [0, n_in): the half-open range [lo, hi). */
typedef struct span {
    int lo, hi;
} span;

static span valid_span(int n_out, int n_in, int stride, int offset) {
    span s;
    s.lo = offset < 0 ? (-offset + stride - 1) / stride : 0;
    s.hi = n_in - 1 - offset < 0 ? 0 : (n_in - 1 - offset) / stride + 1;
    if (s.hi > n_out) s.hi = n_out;
    if (s.lo > s.hi) s.lo = s.hi;
    return s;
}

/* The spans depend only on the kernel row i (or column j), not on the
 * channel: computed once per call for kernels up to SPAN_CACHE wide, on the
 * fly beyond (the divisions would otherwise cost as much as the copying on
 * small images). */
enum { SPAN_CACHE = 32 };

typedef struct spans {
    span row[SPAN_CACHE], col[SPAN_CACHE];
} spans;

static void spans_init(const nb_conv_geom *g, spans *sp) {
    for (int i = 0; i < g->kh && i < SPAN_CACHE; i++)
        sp->row[i] = valid_span(g->Ho, g->H, g->sh, i * g->dh - g->ph);
    for (int j = 0; j < g->kw && j < SPAN_CACHE; j++)
        sp->col[j] = valid_span(g->Wo, g->W, g->sw, j * g->dw - g->pw);
}

static inline span row_span(const nb_conv_geom *g, const spans *sp, int i) {
    return i < SPAN_CACHE ? sp->row[i] : valid_span(g->Ho, g->H, g->sh, i * g->dh - g->ph);
}

static inline span col_span(const nb_conv_geom *g, const spans *sp, int j) {
    return j < SPAN_CACHE ? sp->col[j] : valid_span(g->Wo, g->W, g->sw, j * g->dw - g->pw);
}

/* d[0..n) = s[0..n).  Rows are short (11 values on a 13x13 image), so a
 * loop's scalar tail would cost as much as its body: copy in 16-byte blocks
 * and let the last block overlap the one before it. */
static inline void copy_run(nb_real *restrict d, const nb_real *restrict s, int n) {
    enum { V = 16 / sizeof(nb_real) };
    if (n < V) {
        for (int k = 0; k < n; k++) d[k] = s[k];
        return;
    }
    int k = 0;
    for (; k + V <= n; k += V) memcpy(d + k, s + k, 16);
    if (k < n) memcpy(d + n - V, s + n - V, 16);
}

typedef void (*copy_fn)(nb_real *restrict d, const nb_real *restrict s, int n);

/* The whole of nb_im2col, inlined with the row copy of each instruction set. */
static inline __attribute__((always_inline)) void im2col_with(const nb_conv_geom *g,
                                                              const nb_real *x, nb_real *col,
                                                              size_t ld, copy_fn copy) {
    const int Ho = g->Ho, Wo = g->Wo, W = g->W, sh = g->sh, sw = g->sw;
    const size_t plane = (size_t)g->H * (size_t)W;
    spans sp;
    spans_init(g, &sp);
    size_t r = 0;
    for (int c = 0; c < g->C; c++) {
        const nb_real *xc = x + (size_t)c * plane;
        for (int i = 0; i < g->kh; i++) {
            const int row_off = i * g->dh - g->ph;
            const span rs = row_span(g, &sp, i);
            for (int j = 0; j < g->kw; j++, r++) {
                const int col_off = j * g->dw - g->pw;
                const span cs = col_span(g, &sp, j);
                nb_real *dst = col + r * ld;
                /* output rows that fall into the top or bottom padding */
                if (rs.lo > 0) memset(dst, 0, (size_t)rs.lo * Wo * sizeof *dst);
                if (rs.hi < Ho)
                    memset(dst + (size_t)rs.hi * Wo, 0, (size_t)(Ho - rs.hi) * Wo * sizeof *dst);
                for (int oh = rs.lo; oh < rs.hi; oh++) {
                    nb_real *restrict d = dst + (size_t)oh * Wo;
                    /* src[ow*sw] is x[ih][ow*sw + col_off]; only read for valid ow */
                    const nb_real *restrict src = xc + (size_t)(oh * sh + row_off) * W + cs.lo * sw + col_off;
                    for (int ow = 0; ow < cs.lo; ow++) d[ow] = 0;
                    const int n = cs.hi - cs.lo;
                    nb_real *restrict dd = d + cs.lo;
                    if (sw == 1) {
                        copy(dd, src, n);
                    } else {
                        for (int k = 0; k < n; k++) dd[k] = src[k * sw];
                    }
                    for (int ow = cs.hi; ow < Wo; ow++) d[ow] = 0;
                }
            }
        }
    }
}

#if IM2COL_AVX512
/* d[0..n) = s[0..n), 16 values per masked load and store: no call (a
 * compiler turns the plain loop into memmove) and no scalar tail. */
static inline __attribute__((always_inline, target("avx512f"))) void
copy_run_avx512(float *restrict d, const float *restrict s, int n) {
    for (int k = 0; k < n; k += 16) {
        __mmask16 m = n - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - k)) - 1);
        _mm512_mask_storeu_ps(d + k, m, _mm512_maskz_loadu_ps(m, s + k));
    }
}

__attribute__((target("avx512f"))) static void im2col_avx512(const nb_conv_geom *g,
                                                             const float *x, float *col,
                                                             size_t ld) {
    im2col_with(g, x, col, ld, copy_run_avx512);
}
#endif

void nb_im2col(const nb_conv_geom *g, const nb_real *x, nb_real *col, size_t ld) {
#if IM2COL_AVX512
    if (__builtin_cpu_supports("avx512f")) {
        im2col_avx512(g, x, col, ld);
        return;
    }
#endif
    im2col_with(g, x, col, ld, copy_run);
}

/* ---- a block of the column matrix, for a product that packs it itself ---- */

/* Walks rows r0, r0+1, ... of the column matrix with counters (a division
 * per row would cost as much as copying its few values). */
typedef struct row_walk {
    int c, i, j;
} row_walk;

static inline row_walk walk_start(const nb_conv_geom *g, int r) {
    int khw = g->kh * g->kw;
    row_walk w = {.c = r / khw, .i = r % khw / g->kw, .j = r % g->kw};
    return w;
}

static inline void walk_next(const nb_conv_geom *g, row_walk *w) {
    if (++w->j < g->kw) return;
    w->j = 0;
    if (++w->i < g->kh) return;
    w->i = 0;
    w->c++;
}

/* Where the current row reads: output row oh at input row oh*sh + row_off of
 * plane xc, output column ow at input column ow*sw + col_off, valid for output
 * rows rs and columns cs. */
typedef struct row_source {
    const nb_real *xc;
    int row_off, col_off;
    span rs, cs;
} row_source;

static inline row_source source_of(const nb_conv_geom *g, const spans *sp, const nb_real *x,
                                   const row_walk *w) {
    row_source s = {.xc = x + (size_t)w->c * g->H * g->W, .row_off = w->i * g->dh - g->ph,
                    .col_off = w->j * g->dw - g->pw, .rs = row_span(g, sp, w->i),
                    .cs = col_span(g, sp, w->j)};
    return s;
}

/* Columns [lo, hi) of the block (of n) that output row oh fills from the
 * image, given start = oh*Wo - p0 (where its ow = 0 would land). */
static inline void stretch(const row_source *s, int start, int n, int *lo, int *hi) {
    *lo = start + s->cs.lo > 0 ? start + s->cs.lo : 0;
    *hi = start + s->cs.hi < n ? start + s->cs.hi : n;
}

#if IM2COL_AVX512
/* Stride 1 into 32-wide rows.  The block's columns fall into a few output
 * rows (segments); which of their lanes a row fills depends only on the
 * kernel column j, so those masks are worked out once per block, and each
 * row is then one zero-masked load per segment and 16 lanes. */
enum { BLOCK_SEGS = 8, BLOCK_KW = 16 };

__attribute__((target("avx512f"))) static void block_avx512(const nb_conv_geom *g,
                                                            const spans *sp, const float *x,
                                                            int r0, int rows, int p0, int n,
                                                            float *dst) {
    const int oh_first = p0 / g->Wo, segs = (p0 + n - 1) / g->Wo + 1 - oh_first;
    uint32_t mask[BLOCK_KW][BLOCK_SEGS];
    ptrdiff_t off[BLOCK_SEGS]; /* lane q of segment s reads base[off[s] + q] */
    for (int sg = 0; sg < segs; sg++) {
        int oh = oh_first + sg, start = oh * g->Wo - p0; /* where ow = 0 would land */
        off[sg] = (ptrdiff_t)oh * g->sh * g->W - start;
        for (int j = 0; j < g->kw; j++) {
            span cs = col_span(g, sp, j);
            int lo = start + cs.lo > 0 ? start + cs.lo : 0;
            int hi = start + cs.hi < n ? start + cs.hi : n;
            mask[j][sg] = lo >= hi ? 0 : (hi >= 32 ? ~0u : (1u << hi) - 1) & ~((1u << lo) - 1);
        }
    }
    row_walk w = walk_start(g, r0);
    for (int k = 0; k < rows; k++, walk_next(g, &w)) {
        const row_source s = source_of(g, sp, x, &w);
        const float *base = s.xc + (ptrdiff_t)s.row_off * g->W + s.col_off;
        const int sg0 = s.rs.lo - oh_first > 0 ? s.rs.lo - oh_first : 0;
        const int sg1 = s.rs.hi - oh_first < segs ? s.rs.hi - oh_first : segs;
        /* the segments' lanes are disjoint: OR-ing zero-masked loads keeps
         * them independent (a merging load would wait for the one before) */
        __m512i v0 = _mm512_setzero_si512(), v1 = v0;
        for (int sg = sg0; sg < sg1; sg++) {
            uint32_t m = mask[w.j][sg];
            const float *src = base + off[sg]; /* lanes outside m are not read */
            if (m & 0xFFFF)
                v0 = _mm512_or_si512(v0, _mm512_maskz_loadu_epi32((__mmask16)m, src));
            if (m >> 16)
                v1 = _mm512_or_si512(v1, _mm512_maskz_loadu_epi32((__mmask16)(m >> 16), src + 16));
        }
        _mm512_storeu_si512(dst + (size_t)k * 32, v0);
        _mm512_storeu_si512(dst + (size_t)k * 32 + 16, v1);
    }
}
#endif

#if IM2COL_AVX512
/* Where half h (columns 16h .. 16h+15) of a block reads, for windows that
 * start `ext` values further on too: two loads of 16 from offset 16*low[h]
 * of the row's first read must cover [lo, hi + ext].  Returns 0 when a half
 * does not fit in those 32 values. */
static int permute_windows(const int32_t *idx, int n, int ext, int low[2]) {
    for (int h = 0; h < 2; h++) { /* idx grows: half h reads [lo, hi] */
        int last = n - 1 < 16 * h + 15 ? n - 1 : 16 * h + 15;
        int lo = 16 * h < n ? idx[16 * h] : 0, hi = (16 * h < n ? idx[last] : 0) + ext;
        low[h] = hi < 32 ? 0 : lo >= 16 && hi < 48 ? 1 : -1;
        if (low[h] < 0) return 0;
    }
    return 1;
}

/* Without padding and with stride 1 along columns, a block row's 32 values
 * often come from at most 48 consecutive values of the image (its output
 * rows apart by a few skipped ones): per 16 values, two loads and one
 * permute, the same for every row of the block.  The kw rows of one input
 * row read the same values shifted by dw each: where the shifted windows
 * still fit, the rows share one set of loads, each permuting with its shift
 * added to the indices (line-crossing loads were most of the time).
 * Returns 0 (nothing done) when the block does not fit that. */
__attribute__((target("avx512f"))) static int block_permute_avx512(const nb_conv_geom *g,
                                                                   const float *x, int r0,
                                                                   int rows, int p0, int n,
                                                                   float *dst) {
    if (g->ph != 0 || g->pw != 0 || g->sw != 1 || n < 1) return 0;
    int32_t idx[32] __attribute__((aligned(64))) = {0};
    int oh = p0 / g->Wo, ow = p0 % g->Wo, first = 0;
    for (int q = 0; q < n; q++) {
        int at = oh * g->sh * g->W + ow; /* relative to the row's first read */
        if (q == 0) first = at;
        idx[q] = at - first;
        if (++ow == g->Wo) ow = 0, oh++;
    }
    int low[2], ext = (g->kw - 1) * g->dw; /* the last kernel column's shift */
    const int shared = permute_windows(idx, n, ext, low);
    if (!shared && !permute_windows(idx, n, ext = 0, low)) return 0;
    const int span = idx[n - 1] + 1 + ext; /* values read from the row's first */
    __m512i i0 = _mm512_load_si512(idx), i1 = _mm512_load_si512(idx + 16);
    if (low[0]) i0 = _mm512_sub_epi32(i0, _mm512_set1_epi32(16));
    if (low[1]) i1 = _mm512_sub_epi32(i1, _mm512_set1_epi32(16));
    __mmask16 load_mask[3], out0 = (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
    __mmask16 out1 = (__mmask16)(n >= 32 ? 0xFFFF : n > 16 ? (1u << (n - 16)) - 1 : 0);
    for (int t = 0; t < 3; t++) {
        int left = span - 16 * t;
        load_mask[t] = (__mmask16)(left >= 16 ? 0xFFFF : left > 0 ? (1u << left) - 1 : 0);
    }
    /* half h reads loads low[h] and low[h] + 1 */
    const __mmask16 m0a = load_mask[low[0]], m0b = load_mask[low[0] + 1],
                    m1a = load_mask[low[1]], m1b = load_mask[low[1] + 1];
    const size_t plane = (size_t)g->H * g->W;
    __m512 a0 = _mm512_setzero_ps(), b0 = a0, a1 = a0, b1 = a0;
    row_walk w = walk_start(g, r0);
    for (int k = 0; k < rows; k++, walk_next(g, &w)) {
        /* shared: the loads of kernel column 0's window, at its first row */
        const int shift = shared ? w.j * g->dw : 0;
        if (!shared || w.j == 0 || k == 0) {
            const float *src = x + w.c * plane + (size_t)(w.i * g->dh) * g->W +
                               (w.j * g->dw - shift) + first;
            const float *s0 = src + 16 * low[0], *s1 = src + 16 * low[1];
            a0 = _mm512_maskz_loadu_ps(m0a, s0), b0 = _mm512_maskz_loadu_ps(m0b, s0 + 16);
            a1 = _mm512_maskz_loadu_ps(m1a, s1), b1 = _mm512_maskz_loadu_ps(m1b, s1 + 16);
        }
        const __m512i by = _mm512_set1_epi32(shift);
        _mm512_storeu_ps(dst + (size_t)k * 32,
                         _mm512_maskz_permutex2var_ps(out0, a0, _mm512_add_epi32(i0, by), b0));
        _mm512_storeu_ps(dst + (size_t)k * 32 + 16,
                         _mm512_maskz_permutex2var_ps(out1, a1, _mm512_add_epi32(i1, by), b1));
    }
    return 1;
}
#endif

void nb_im2col_block(const nb_conv_geom *g, const nb_real *x, int r0, int rows, int p0, int n,
                     nb_real *dst, int width) {
#if IM2COL_AVX512
    const int avx512 = width == 32 && __builtin_cpu_supports("avx512f");
    if (avx512 && block_permute_avx512(g, x, r0, rows, p0, n, dst)) return;
#endif
    spans sp; /* after the permutes, which need none: blocks of few rows */
    spans_init(g, &sp);
#if IM2COL_AVX512
    if (avx512 && g->sw == 1 && g->kw <= BLOCK_KW &&
        (p0 + n - 1) / g->Wo - p0 / g->Wo < BLOCK_SEGS) {
        block_avx512(g, &sp, x, r0, rows, p0, n, dst);
        return;
    }
#endif
    const int oh_first = p0 / g->Wo, oh_end = (p0 + n - 1) / g->Wo + 1;
    row_walk w = walk_start(g, r0);
    for (int k = 0; k < rows; k++, walk_next(g, &w)) {
        const row_source s = source_of(g, &sp, x, &w);
        nb_real *d = dst + (size_t)k * width;
        for (int q = 0; q < width; q++) d[q] = 0;
        int oh0 = oh_first > s.rs.lo ? oh_first : s.rs.lo;
        int oh1 = oh_end < s.rs.hi ? oh_end : s.rs.hi;
        for (int oh = oh0; oh < oh1; oh++) {
            int start = oh * g->Wo - p0, lo, hi;
            stretch(&s, start, n, &lo, &hi);
            const nb_real *src = s.xc + (size_t)(oh * g->sh + s.row_off) * g->W + s.col_off;
            for (int q = lo; q < hi; q++) d[q] = src[(size_t)(q - start) * g->sw];
        }
    }
}

typedef void (*add_fn)(nb_real *restrict d, const nb_real *restrict s, int n);

static inline void add_run(nb_real *restrict d, const nb_real *restrict s, int n) {
    for (int k = 0; k < n; k++) d[k] += s[k];
}

/* The whole of nb_col2im, inlined with the row addition of each instruction set. */
static inline __attribute__((always_inline)) void col2im_with(const nb_conv_geom *g,
                                                              const nb_real *col, size_t ld,
                                                              nb_real *x, add_fn add) {
    const int Wo = g->Wo, W = g->W, sh = g->sh, sw = g->sw;
    const size_t plane = (size_t)g->H * (size_t)W;
    spans sp;
    spans_init(g, &sp);
    size_t r = 0;
    for (int c = 0; c < g->C; c++) {
        nb_real *xc = x + (size_t)c * plane;
        for (int i = 0; i < g->kh; i++) {
            const int row_off = i * g->dh - g->ph;
            const span rs = row_span(g, &sp, i);
            for (int j = 0; j < g->kw; j++, r++) {
                const int col_off = j * g->dw - g->pw;
                const span cs = col_span(g, &sp, j);
                const int n = cs.hi - cs.lo;
                const nb_real *src = col + r * ld;
                for (int oh = rs.lo; oh < rs.hi; oh++) {
                    const nb_real *restrict s = src + (size_t)oh * Wo + cs.lo;
                    /* d[k*sw] is x[ih][(cs.lo + k)*sw + col_off] */
                    nb_real *restrict d = xc + (size_t)(oh * sh + row_off) * W + cs.lo * sw + col_off;
                    if (sw == 1) {
                        add(d, s, n);
                    } else {
                        for (int k = 0; k < n; k++) d[k * sw] += s[k];
                    }
                }
            }
        }
    }
}

#if IM2COL_AVX512
/* Stride and dilation 1: each image row is loaded once per kernel row, 16
 * values at a time, the kw shifted column rows that land on it are added in
 * registers (in the order of the loops above, so the same bits), and it is
 * stored once.  Adding them one masked store after another made each load
 * wait for the store before it (they overlap by all but one value). */
__attribute__((target("avx512f"))) static void col2im_rows_avx512(const nb_conv_geom *g,
                                                                  const float *col, size_t ld,
                                                                  float *x) {
    const int Wo = g->Wo, W = g->W;
    const size_t plane = (size_t)g->H * (size_t)W;
    spans sp;
    spans_init(g, &sp);
    for (int c = 0; c < g->C; c++) {
        float *xc = x + (size_t)c * plane;
        for (int i = 0; i < g->kh; i++) {
            const size_t r0 = ((size_t)c * g->kh + (size_t)i) * g->kw; /* col row of (c, i, 0) */
            const int row_off = i - g->ph;
            const span rs = row_span(g, &sp, i);
            for (int oh = rs.lo; oh < rs.hi; oh++) {
                float *d = xc + (size_t)(oh + row_off) * W;
                for (int x0 = 0; x0 < W; x0 += 16) {
                    __mmask16 mw = W - x0 >= 16 ? (__mmask16)0xFFFF
                                                : (__mmask16)((1u << (W - x0)) - 1);
                    __m512 acc = _mm512_maskz_loadu_ps(mw, d + x0);
                    for (int j = 0; j < g->kw; j++) {
                        const int col_off = j - g->pw; /* iw = ow + col_off */
                        const span cs = col_span(g, &sp, j);
                        /* lanes whose iw = x0 + lane has its ow in [cs.lo, cs.hi) */
                        int lo = cs.lo + col_off - x0, hi = cs.hi + col_off - x0;
                        if (lo < 0) lo = 0;
                        if (hi > 16) hi = 16;
                        if (lo >= hi) continue;
                        __mmask16 m = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
                        /* lane k holds column row (c, i, j) at ow = x0 + k - col_off */
                        const float *s = col + (r0 + (size_t)j) * ld + (size_t)oh * Wo;
                        __m512 t = _mm512_maskz_loadu_ps(m, s + x0 - col_off);
                        acc = _mm512_mask_add_ps(acc, m, acc, t);
                    }
                    _mm512_mask_storeu_ps(d + x0, mw, acc);
                }
            }
        }
    }
}
#endif

void nb_col2im(const nb_conv_geom *g, const nb_real *col, size_t ld, nb_real *x) {
#if IM2COL_AVX512
    if (g->sw == 1 && g->dw == 1 && g->sh == 1 && g->dh == 1 && g->kw <= 16 &&
        __builtin_cpu_supports("avx512f")) {
        col2im_rows_avx512(g, col, ld, x);
        return;
    }
#endif
    col2im_with(g, col, ld, x, add_run);
}

/* x's planes with their padding written out, a padded row of 16 values or
 * fewer in one masked load and one store (the rows above and below, and the
 * columns beside, are zeros: the masked-off lanes of the load). */
#if IM2COL_AVX512
__attribute__((target("avx512f"))) static void pad_image_avx512(const nb_conv_geom *g,
                                                                 const float *x, float *dst) {
    enum { CHUNKS = 64 };
    const int W = g->W, Hp = g->H + 2 * g->ph, Wp = g->W + 2 * g->pw;
    const int chunks = (Wp + 15) / 16;
    __mmask16 in[CHUNKS], out[CHUNKS];
    for (int q = 0; q < chunks; q++) {
        /* lane l is column 16 q + l: source index 16 q + l - pw, read where in [0, W) */
        int lo = g->pw - 16 * q, hi = g->pw + W - 16 * q;
        if (lo < 0) lo = 0;
        if (hi > 16) hi = 16;
        in[q] = lo < hi ? (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1)) : 0;
        out[q] = (__mmask16)(Wp - 16 * q >= 16 ? 0xFFFF : (1u << (Wp - 16 * q)) - 1);
    }
    for (int c = 0; c < g->C; c++)
        for (int hp = 0; hp < Hp; hp++) {
            const int h = hp - g->ph, inside = h >= 0 && h < g->H;
            const float *src = x + ((size_t)c * g->H + (inside ? h : 0)) * W;
            float *d = dst + ((size_t)c * Hp + hp) * Wp;
            for (int q = 0; q < chunks; q++) {
                const float *base =
                    (const float *)((uintptr_t)src + (intptr_t)(16 * q - g->pw) * 4);
                _mm512_mask_storeu_ps(d + 16 * q, out[q],
                                      _mm512_maskz_loadu_ps(inside ? in[q] : 0, base));
            }
        }
}
#endif

void nb_pad_image(const nb_conv_geom *g, const nb_real *x, nb_real *dst) {
#if IM2COL_AVX512
    if (g->W + 2 * g->pw <= 64 * 16 && __builtin_cpu_supports("avx512f")) {
        pad_image_avx512(g, x, dst);
        return;
    }
#endif
    const int H = g->H + 2 * g->ph, W = g->W + 2 * g->pw;
    for (int c = 0; c < g->C; c++) {
        nb_real *dc = dst + (size_t)c * H * W;
        memset(dc, 0, (size_t)g->ph * W * sizeof *dc);
        for (int h = 0; h < g->H; h++) {
            nb_real *d = dc + (size_t)(h + g->ph) * W;
            memset(d, 0, (size_t)g->pw * sizeof *d);
            memcpy(d + g->pw, x + ((size_t)c * g->H + h) * g->W, (size_t)g->W * sizeof *d);
            memset(d + g->pw + g->W, 0, (size_t)g->pw * sizeof *d);
        }
        memset(dc + (size_t)(g->ph + g->H) * W, 0, (size_t)g->ph * W * sizeof *dc);
    }
}
