/* 2-D pooling on NCHW images: max, average and global average.
 *
 * Output sizes, window clipping and divisors follow PyTorch's CPU kernels
 * exactly (docs/definitions.md, Pooling):
 *   out = floor((H + 2p - k + (ceil ? s-1 : 0)) / s) + 1, and with ceil_mode
 *   out -= 1 when the last window would start at or past H + p.
 * Window oh covers rows [oh*s - p, oh*s - p + k); padding ≤ k/2 and the rule
 * above make every window overlap the input.
 *
 * Max pool keeps the index (ih*W + iw within the plane) of each output's
 * maximum in its scratch, as int32_t packed into the nb_real scratch array
 * (exact for any plane size, in the float and the double build); backward
 * routes each gradient to that one input.
 *
 * Settings: kernel, stride, padding, ceil_mode, count_include_pad
 * (nb_pool_settings). */
#include "../core/internal.h"
#include "../kernels/parallel.h"

#include <stdint.h>
#include <string.h>

#define AXIS_MAX 32767 /* largest kernel and stride accepted */

typedef struct pool_shape {
    size_t planes;           /* B*C                    */
    int H, W, Ho, Wo;
    int kh, kw, sh, sw, ph, pw;
    int count_include_pad;
} pool_shape;

static pool_shape shape_of(const nb_graph *g, const nb_node_t *n) {
    const nb_node_t *x = &g->nodes[n->in[0]];
    const nb_pool_settings *ps = &n->settings.pool;
    pool_shape s = {
        .planes = (size_t)x->dims[0] * (size_t)x->dims[1], .H = x->dims[2], .W = x->dims[3],
        .Ho = n->dims[2], .Wo = n->dims[3], .kh = ps->kernel.h, .kw = ps->kernel.w,
        .sh = ps->stride.h, .sw = ps->stride.w, .ph = ps->pad.h, .pw = ps->pad.w,
        .count_include_pad = ps->count_include_pad};
    return s;
}

/* One window along an axis: [*lo, *hi) clipped to the input; *span is the
 * window clipped to the padded input (the count_include_pad divisor). */
static void window(int o, int k, int s, int p, int n_in, int *lo, int *hi, int *span) {
    int a = o * s - p, b = a + k;
    if (b > n_in + p) b = n_in + p;
    *span = b - a;
    *lo = a < 0 ? 0 : a;
    *hi = b > n_in ? n_in : b;
}

/* ---- max pool ---- */

static size_t maxpool_scratch(const nb_graph *g, const nb_node_t *n) {
    (void)g;
    size_t bytes = nb__numel(n) * sizeof(int32_t);
    return (bytes + sizeof(nb_real) - 1) / sizeof(nb_real);
}

/* Output columns ow in [0, Wo) whose input column ow*sw + off lies in
 * [0, W): [*lo, *hi). */
static void col_span(int Wo, int W, int sw, int off, int *lo, int *hi) {
    int a = off < 0 ? (-off + sw - 1) / sw : 0;
    int b = W - 1 - off < 0 ? 0 : (W - 1 - off) / sw + 1;
    if (b > Wo) b = Wo;
    *lo = a < b ? a : b;
    *hi = b;
}

/* A whole output row at a time: for each input row ih of the row's windows
 * and each kernel column kj, one pass over the output columns updates their
 * running maxima.  Each output still sees its window in row-major order, and
 * the passes are straight loops with no per-window bookkeeping (a window of
 * four values would otherwise cost more in loop overhead than in work). */
/* The common 2x2 window with stride 2 and no padding, every window inside
 * the image: four values per output, compared in the general loop's order
 * (row-major; strictly greater wins; a NaN takes over), with no bookkeeping.
 * Planes are split between threads.  In the float build on CPUs with
 * AVX-512, sixteen outputs at a time: the even and odd columns of two rows
 * are separated with two permutes each. */
typedef struct pool_job {
    const pool_shape *s;
    const nb_real *x; /* input planes, ld apart */
    size_t ld;
    nb_real *y;       /* output planes and their argmax, y_ld apart */
    int32_t *arg;
    int parts;
    size_t y_ld;      /* Ho*Wo, or a multiple when planes are skipped */
} pool_job;

#if defined(__x86_64__) && defined(__GNUC__) && !defined(NB_REAL_DOUBLE)
#define POOL_AVX512 1
#else
#define POOL_AVX512 0
#endif
#if POOL_AVX512
#include <immintrin.h>

/* One more candidate v of each window, OFF from its first value: it wins if
 * greater, or NaN (a NaN passes through max pooling, as in PyTorch). */
static inline __attribute__((always_inline, target("avx512f"))) void
take_max(__m512 v, int off, __m512i at0, __m512 *best, __m512i *at, const int arg) {
    if (!arg) { /* VMAXPS(v, best) is v > best ? v : best, and best when v is NaN */
        *best = _mm512_mask_mov_ps(_mm512_max_ps(v, *best), _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q),
                                   v);
        return;
    }
    __mmask16 take =
        _mm512_cmp_ps_mask(v, *best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    *best = _mm512_mask_blend_ps(take, *best, v);
    *at = _mm512_mask_blend_epi32(take, *at, _mm512_add_epi32(at0, _mm512_set1_epi32(off)));
}

static inline __attribute__((always_inline, target("avx512f"))) void
row_2x2_avx512(const float *r0, const float *r1, int W, int Wo, int32_t base, float *m,
               int32_t *a, const int arg) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i step = _mm512_set1_epi32(32);
    __m512i at0 = _mm512_add_epi32(even, _mm512_set1_epi32(base));
    int ow = 0;
    for (; ow < Wo; ow += 16, r0 += 32, r1 += 32, at0 = _mm512_add_epi32(at0, step)) {
        int left = Wo - ow < 16 ? Wo - ow : 16; /* outputs; 2*left inputs per row */
        __mmask16 lo = (__mmask16)(left >= 8 ? 0xFFFF : (1u << (2 * left)) - 1);
        __mmask16 hi =
            (__mmask16)(left >= 16 ? 0xFFFF : left > 8 ? (1u << (2 * (left - 8))) - 1 : 0);
        __mmask16 out = (__mmask16)(left >= 16 ? 0xFFFF : (1u << left) - 1);
        __m512 a0 = _mm512_maskz_loadu_ps(lo, r0), a1 = _mm512_maskz_loadu_ps(hi, r0 + 16);
        __m512 b0 = _mm512_maskz_loadu_ps(lo, r1), b1 = _mm512_maskz_loadu_ps(hi, r1 + 16);
        __m512 best = _mm512_permutex2var_ps(a0, even, a1);
        __m512i at = at0;
        take_max(_mm512_permutex2var_ps(a0, odd, a1), 1, at0, &best, &at, arg);
        take_max(_mm512_permutex2var_ps(b0, even, b1), W, at0, &best, &at, arg);
        take_max(_mm512_permutex2var_ps(b0, odd, b1), W + 1, at0, &best, &at, arg);
        _mm512_mask_storeu_ps(m + ow, out, best);
        if (arg) _mm512_mask_storeu_epi32(a + ow, out, at);
    }
}

/* Output rows oh and oh + 1 of at most 8 outputs each (r0 is input row 2 oh),
 * in the low and high eight lanes: narrow rows (5 outputs on an 11x11 image)
 * would leave most of the lanes idle one row at a time. */
static inline __attribute__((always_inline, target("avx512f"))) void
two_rows_2x2_avx512(const float *r0, int W, int Wo, int32_t base, float *m, int32_t *a,
                    const int arg) {
    /* lane L < 8 takes input column 2L of the upper rows, lane 8 + L of the lower */
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i at0 = _mm512_add_epi32(
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14),
        _mm512_mask_set1_epi32(_mm512_set1_epi32(base), 0xFF00, base + 2 * W));
    const __mmask16 in = (__mmask16)((1u << (2 * Wo)) - 1);
    const __mmask16 lo = (__mmask16)((1u << Wo) - 1), hi = (__mmask16)(lo << 8);
    __m512 a0 = _mm512_maskz_loadu_ps(in, r0), a1 = _mm512_maskz_loadu_ps(in, r0 + 2 * W);
    __m512 b0 = _mm512_maskz_loadu_ps(in, r0 + W), b1 = _mm512_maskz_loadu_ps(in, r0 + 3 * W);
    __m512 best = _mm512_permutex2var_ps(a0, even, a1);
    __m512i at = at0;
    take_max(_mm512_permutex2var_ps(a0, odd, a1), 1, at0, &best, &at, arg);
    take_max(_mm512_permutex2var_ps(b0, even, b1), W, at0, &best, &at, arg);
    take_max(_mm512_permutex2var_ps(b0, odd, b1), W + 1, at0, &best, &at, arg);
    /* row oh + 1 starts Wo after row oh: its lanes 8.. are stored from m + Wo - 8 */
    _mm512_mask_storeu_ps(m, lo, best);
    _mm512_mask_storeu_ps(m + Wo - 8, hi, best);
    if (!arg) return;
    _mm512_mask_storeu_epi32(a, lo, at);
    _mm512_mask_storeu_epi32(a + Wo - 8, hi, at);
}

/* Planes [p0, p1), all rows in one call: rows of small planes (13 outputs)
 * are too short to pay a call each.  arg: the argmax too (else j->arg is
 * NULL: the values alone). */
static inline __attribute__((always_inline, target("avx512f"))) void
planes_2x2_body(const pool_job *j, size_t p0, size_t p1, const int arg) {
    const pool_shape *s = j->s;
    const size_t out_plane = j->y_ld;
    for (size_t pl = p0; pl < p1; pl++)
        for (int oh = 0; oh < s->Ho; oh++) {
            const float *r0 = j->x + pl * j->ld + (size_t)(2 * oh) * s->W;
            size_t o = pl * out_plane + (size_t)oh * s->Wo;
            int32_t *a = arg ? j->arg + o : NULL;
            if (s->Wo <= 8 && oh + 1 < s->Ho) {
                two_rows_2x2_avx512(r0, s->W, s->Wo, 2 * oh * s->W, j->y + o, a, arg);
                oh++;
                continue;
            }
            row_2x2_avx512(r0, r0 + s->W, s->W, s->Wo, 2 * oh * s->W, j->y + o, a, arg);
        }
}

__attribute__((target("avx512f"))) static void planes_2x2_avx512(const pool_job *j, size_t p0,
                                                                 size_t p1) {
    if (j->arg) planes_2x2_body(j, p0, p1, 1);
    else planes_2x2_body(j, p0, p1, 0);
}
#endif

static void maxpool_2x2_part(void *ctx, int part) {
    const pool_job *j = ctx;
    const pool_shape *s = j->s;
    const int W = s->W, Wo = s->Wo, Ho = s->Ho;
    const size_t out_plane = j->y_ld;
    size_t p0, p1;
    nb__part_range(s->planes, part, j->parts, 1, &p0, &p1);
#if POOL_AVX512
    if (__builtin_cpu_supports("avx512f")) {
        planes_2x2_avx512(j, p0, p1);
        return;
    }
#endif
    for (size_t pl = p0; pl < p1; pl++)
        for (int oh = 0; oh < Ho; oh++) {
            const nb_real *restrict r0 = j->x + pl * j->ld + (size_t)(2 * oh) * W;
            const nb_real *restrict r1 = r0 + W;
            nb_real *restrict m = j->y + pl * out_plane + (size_t)oh * Wo;
            int32_t *restrict a = j->arg + pl * out_plane + (size_t)oh * Wo;
            const int32_t base = 2 * oh * W;
            for (int ow = 0; ow < Wo; ow++) {
                nb_real best = r0[2 * ow], v;
                int32_t at = base + 2 * ow;
                int take;
                v = r0[2 * ow + 1], take = (v > best) | (v != v);
                best = take ? v : best, at = take ? base + 2 * ow + 1 : at;
                v = r1[2 * ow], take = (v > best) | (v != v);
                best = take ? v : best, at = take ? base + W + 2 * ow : at;
                v = r1[2 * ow + 1], take = (v > best) | (v != v);
                best = take ? v : best, at = take ? base + W + 2 * ow + 1 : at;
                m[ow] = best;
                a[ow] = at;
            }
        }
}

static int is_2x2(const pool_shape *s) {
    return s->kh == 2 && s->kw == 2 && s->sh == 2 && s->sw == 2 && s->ph == 0 && s->pw == 0 &&
           2 * s->Ho <= s->H && 2 * s->Wo <= s->W;
}

/* Any window: each output row at once (see above), planes [0, count) of j. */
static void general_planes(const pool_job *j, size_t count) {
    const pool_shape s = *j->s;
    const size_t out_plane = j->y_ld;
    enum { SPAN_CACHE = 32 };
    int lo[SPAN_CACHE], hi[SPAN_CACHE];
    for (int kj = 0; kj < s.kw && kj < SPAN_CACHE; kj++)
        col_span(s.Wo, s.W, s.sw, kj - s.pw, &lo[kj], &hi[kj]);
    for (size_t pl = 0; pl < count; pl++) {
        const nb_real *xp = j->x + pl * j->ld;
        for (int oh = 0; oh < s.Ho; oh++) {
            int h0, h1, span;
            window(oh, s.kh, s.sh, s.ph, s.H, &h0, &h1, &span);
            nb_real *restrict m = j->y + pl * out_plane + (size_t)oh * s.Wo;
            int32_t *restrict a = j->arg + pl * out_plane + (size_t)oh * s.Wo;
            /* start from -inf at the window's first element, as PyTorch */
            for (int ow = 0; ow < s.Wo; ow++) {
                int w0 = ow * s.sw - s.pw;
                m[ow] = -(nb_real)INFINITY;
                a[ow] = h0 * s.W + (w0 < 0 ? 0 : w0);
            }
            for (int ih = h0; ih < h1; ih++) {
                const nb_real *restrict row = xp + (size_t)ih * s.W;
                for (int kj = 0; kj < s.kw; kj++) {
                    int off = kj - s.pw, ow0, ow1;
                    if (kj < SPAN_CACHE) ow0 = lo[kj], ow1 = hi[kj];
                    else col_span(s.Wo, s.W, s.sw, off, &ow0, &ow1);
                    /* strictly greater wins (the first of equal maxima stays);
                     * a NaN always takes over */
                    for (int ow = ow0; ow < ow1; ow++) {
                        int iw = ow * s.sw + off;
                        nb_real v = row[iw];
                        int take = (v > m[ow]) | (v != v);
                        m[ow] = take ? v : m[ow];
                        a[ow] = take ? ih * s.W + iw : a[ow];
                    }
                }
            }
        }
    }
}

static void maxpool_forward(nb_graph *g, nb_node_t *n) {
    pool_shape s = shape_of(g, n);
    pool_job j = {.s = &s, .x = nb__in(g, n, 0)->val, .ld = (size_t)s.H * s.W, .y = n->val,
                  .y_ld = (size_t)s.Ho * s.Wo,
                  .arg = (int32_t *)(void *)n->scratch, .parts = 1};
    if (!is_2x2(&s)) {
        general_planes(&j, s.planes);
        return;
    }
    /* at least 2^16 input values per part */
    j.parts = nb__part_count(s.planes * (size_t)s.H * (size_t)s.W, (size_t)1 << 16);
    if ((size_t)j.parts > s.planes) j.parts = (int)s.planes;
    if (j.parts > 1) nb__parallel(j.parts, maxpool_2x2_part, &j);
    else maxpool_2x2_part(&j, 0);
}

/* For the ops that fuse the pool (fusion.c), on this thread: planes p0, p0 +
 * step, ... (count of them) of pool n from x, ld apart; the argmax too
 * unless values_only and the AVX-512 2x2 loop (the one that can leave it
 * out) runs. */
static void pool_planes(const nb_graph *g, nb_node_t *n, size_t p0, size_t count, size_t step,
                        const nb_real *x, size_t ld, int values_only) {
    pool_shape s = shape_of(g, n);
    const size_t out_plane = (size_t)s.Ho * s.Wo;
    s.planes = count;
    pool_job j = {.s = &s, .x = x, .ld = ld, .y = n->val + p0 * out_plane,
                  .arg = (int32_t *)(void *)n->scratch + p0 * out_plane, .parts = 1,
                  .y_ld = step * out_plane};
#if POOL_AVX512
    if (values_only && is_2x2(&s) && __builtin_cpu_supports("avx512f")) j.arg = NULL;
#else
    (void)values_only;
#endif
    if (is_2x2(&s)) maxpool_2x2_part(&j, 0);
    else general_planes(&j, count);
}

void nb__maxpool_planes(const nb_graph *g, nb_node_t *n, size_t p0, size_t count,
                        const nb_real *x, size_t ld) {
    pool_planes(g, n, p0, count, 1, x, ld, 0);
}

void nb__maxpool_planes_every(const nb_graph *g, nb_node_t *n, size_t p0, size_t count,
                              size_t step, const nb_real *x, size_t ld) {
    pool_planes(g, n, p0, count, step, x, ld, 0);
}

void nb__maxpool_planes_values(const nb_graph *g, nb_node_t *n, size_t p0, size_t count,
                               const nb_real *x, size_t ld) {
    pool_planes(g, n, p0, count, 1, x, ld, 1);
}

#if POOL_AVX512
/* relu_unpool_2x2, sixteen windows at a time: the values for the even and
 * odd columns of both rows are picked by comparing the argmax with its four
 * candidates, then interleaved (the inverse of the forward's permutes). */
__attribute__((target("avx512f"))) static void
relu_unpool_2x2_avx512(const pool_shape *s, const int32_t *arg, const float *dy, const float *y,
                       float *d) {
    const int W = s->W, Wo = s->Wo;
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    const __m512i twice = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                            28, 30);
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    for (int oh = 0; oh < s->Ho; oh++) {
        float *r0 = d + (size_t)(2 * oh) * W, *r1 = r0 + W;
        size_t o = (size_t)oh * Wo;
        for (int ow = 0; ow < Wo; ow += 16) {
            int left = Wo - ow < 16 ? Wo - ow : 16;
            __mmask16 m = (__mmask16)((1u << left) - 1);
            __mmask16 m0 = (__mmask16)(left >= 8 ? 0xFFFF : (1u << (2 * left)) - 1);
            __mmask16 m1 = (__mmask16)(left >= 16 ? 0xFFFF
                                       : left > 8 ? (1u << (2 * (left - 8))) - 1 : 0);
            __m512 g = _mm512_maskz_loadu_ps(m, dy + o + ow);
            __m512 v = _mm512_maskz_loadu_ps(m, y + o + ow);
            /* (0 + dy) * relu'(y): the slope is 0 where y <= 0, else 1 (NaN too) */
            __m512 slope = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, zero, _CMP_LE_OQ), one, zero);
            __m512 t = _mm512_mul_ps(_mm512_add_ps(zero, g), slope);
            __m512i at = _mm512_sub_epi32(
                _mm512_maskz_loadu_epi32(m, arg + o + ow),
                _mm512_add_epi32(_mm512_set1_epi32(2 * oh * W + 2 * ow), twice));
            __m512 e0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, _mm512_setzero_si512()), t);
            __m512 o0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, _mm512_set1_epi32(1)), t);
            __m512 e1 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, _mm512_set1_epi32(W)), t);
            __m512 o1 =
                _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, _mm512_set1_epi32(W + 1)), t);
            _mm512_mask_storeu_ps(r0 + 2 * ow, m0, _mm512_permutex2var_ps(e0, lo, o0));
            _mm512_mask_storeu_ps(r0 + 2 * ow + 16, m1, _mm512_permutex2var_ps(e0, hi, o0));
            _mm512_mask_storeu_ps(r1 + 2 * ow, m0, _mm512_permutex2var_ps(e1, lo, o1));
            _mm512_mask_storeu_ps(r1 + 2 * ow + 16, m1, _mm512_permutex2var_ps(e1, hi, o1));
        }
        for (int iw = 2 * Wo; iw < W; iw++) r0[iw] = r1[iw] = 0;
    }
    for (size_t k = (size_t)(2 * s->Ho) * W; k < (size_t)s->H * W; k++) d[k] = 0;
}
#endif

/* One plane of 2x2 windows with stride 2: every input lies in at most one
 * window, so each is written once, with what the general loop below leaves
 * there: (0 + dy) * relu'(y) at its window's maximum, zero elsewhere (and in
 * the last row and column when they are in no window). */
static void relu_unpool_2x2(const pool_shape *s, const int32_t *restrict arg,
                            const nb_real *restrict dy, const nb_real *restrict y,
                            nb_real *restrict d) {
#if POOL_AVX512
    if (__builtin_cpu_supports("avx512f")) {
        relu_unpool_2x2_avx512(s, arg, dy, y, d);
        return;
    }
#endif
    const int W = s->W, Wo = s->Wo;
    for (int oh = 0; oh < s->Ho; oh++) {
        nb_real *restrict r0 = d + (size_t)(2 * oh) * W, *restrict r1 = r0 + W;
        const int32_t *restrict a = arg + (size_t)oh * Wo;
        const nb_real *restrict g = dy + (size_t)oh * Wo, *restrict v = y + (size_t)oh * Wo;
        for (int ow = 0; ow < Wo; ow++) {
            nb_real t = (R(0) + g[ow]) * nb__relu_slope(v[ow]);
            int32_t at = a[ow] - 2 * oh * W - 2 * ow; /* 0, 1, W or W + 1 */
            r0[2 * ow] = at == 0 ? t : R(0);
            r0[2 * ow + 1] = at == 1 ? t : R(0);
            r1[2 * ow] = at == W ? t : R(0);
            r1[2 * ow + 1] = at == W + 1 ? t : R(0);
        }
        for (int iw = 2 * Wo; iw < W; iw++) r0[iw] = r1[iw] = R(0);
    }
    for (size_t k = (size_t)(2 * s->Ho) * W; k < (size_t)s->H * W; k++) d[k] = R(0);
}

void nb__maxpool_relu_backward_planes(const nb_graph *g, const nb_node_t *n, size_t p0,
                                      size_t count, nb_real *dx, size_t ld) {
    pool_shape s = shape_of(g, n);
    const size_t in_plane = (size_t)s.H * s.W, out_plane = (size_t)s.Ho * s.Wo;
    for (size_t pl = 0; pl < count; pl++) {
        nb_real *d = dx + pl * ld;
        const int32_t *arg = (const int32_t *)(const void *)n->scratch + (p0 + pl) * out_plane;
        const nb_real *dy = n->grad + (p0 + pl) * out_plane, *y = n->val + (p0 + pl) * out_plane;
        if (is_2x2(&s)) {
            relu_unpool_2x2(&s, arg, dy, y, d);
            continue;
        }
        memset(d, 0, in_plane * sizeof *d);
        for (size_t k = 0; k < out_plane; k++) d[arg[k]] += dy[k];
        /* the relu's input gradient, dx * relu'(its output): its output is
         * y there (and dx zero elsewhere); an input that is the maximum of
         * two windows is scaled twice by the same 0 or 1 */
        for (size_t k = 0; k < out_plane; k++) d[arg[k]] *= nb__relu_slope(y[k]);
    }
}

/* Each gradient goes to its window's argmax; planes are split between
 * threads (a plane's inputs get gradients only from its own outputs).  When
 * the input's gradient is to be overwritten, each plane is zeroed just
 * before its scatter, while it is in cache. */
typedef struct unpool_job {
    const pool_shape *s;
    const int32_t *arg;
    const nb_real *dy;
    nb_real *dx;
    int parts;
    int assign;
} unpool_job;

static void maxpool_backward_part(void *ctx, int part) {
    const unpool_job *j = ctx;
    size_t in_plane = (size_t)j->s->H * j->s->W, out_plane = (size_t)j->s->Ho * j->s->Wo;
    size_t p0, p1;
    nb__part_range(j->s->planes, part, j->parts, 1, &p0, &p1);
    for (size_t pl = p0; pl < p1; pl++) {
        nb_real *dx = j->dx + pl * in_plane;
        const int32_t *arg = j->arg + pl * out_plane;
        const nb_real *dy = j->dy + pl * out_plane;
        if (j->assign) memset(dx, 0, in_plane * sizeof *dx);
        for (size_t k = 0; k < out_plane; k++) dx[arg[k]] += dy[k];
    }
}

static void maxpool_backward(nb_graph *g, nb_node_t *n) {
    nb_node_t *x = nb__in(g, n, 0);
    if (!x->grad) return;
    pool_shape s = shape_of(g, n);
    unpool_job j = {.s = &s, .arg = (const int32_t *)(const void *)n->scratch, .dy = n->grad,
                    .dx = x->grad, .parts = 1, .assign = nb__grad_assign(n, 0)};
    j.parts = nb__part_count(nb__numel(n), (size_t)1 << 15); /* at least 2^15 outputs each */
    if ((size_t)j.parts > s.planes) j.parts = (int)s.planes;
    if (j.parts > 1) nb__parallel(j.parts, maxpool_backward_part, &j);
    else maxpool_backward_part(&j, 0);
}

/* comparisons per output element */
static double pool_flops(const nb_graph *g, const nb_node_t *n) {
    pool_shape s = shape_of(g, n);
    return (double)nb__numel(n) * s.kh * s.kw;
}

static const nb_op op_max_pool2d = {
    .name = "max_pool2d",
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .scratch = maxpool_scratch,
    .flops = pool_flops,
    .flags = NB_OP_ASSIGNS_GRAD | NB_OP_MAX_POOL,
};

/* ---- average pool ---- */

static nb_real avg_divisor(const pool_shape *s, int h0, int h1, int hspan, int w0, int w1,
                           int wspan) {
    return s->count_include_pad ? (nb_real)(hspan * wspan) : (nb_real)((h1 - h0) * (w1 - w0));
}

static void avgpool_forward(nb_graph *g, nb_node_t *n) {
    pool_shape s = shape_of(g, n);
    const nb_real *x = nb__in(g, n, 0)->val;
    nb_real *y = n->val;
    size_t in_plane = (size_t)s.H * s.W;
    for (size_t pl = 0; pl < s.planes; pl++) {
        const nb_real *xp = x + pl * in_plane;
        for (int oh = 0; oh < s.Ho; oh++) {
            int h0, h1, hspan;
            window(oh, s.kh, s.sh, s.ph, s.H, &h0, &h1, &hspan);
            for (int ow = 0; ow < s.Wo; ow++, y++) {
                int w0, w1, wspan;
                window(ow, s.kw, s.sw, s.pw, s.W, &w0, &w1, &wspan);
                nb_real acc = 0;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) acc += xp[ih * s.W + iw];
                *y = acc / avg_divisor(&s, h0, h1, hspan, w0, w1, wspan);
            }
        }
    }
}

static void avgpool_backward(nb_graph *g, nb_node_t *n) {
    nb_node_t *x = nb__in(g, n, 0);
    if (!x->grad) return;
    pool_shape s = shape_of(g, n);
    const nb_real *dy = n->grad;
    size_t in_plane = (size_t)s.H * s.W;
    int assign = nb__grad_assign(n, 0);
    for (size_t pl = 0; pl < s.planes; pl++) {
        nb_real *dx = x->grad + pl * in_plane;
        if (assign) memset(dx, 0, in_plane * sizeof *dx); /* windows may overlap: add up */
        for (int oh = 0; oh < s.Ho; oh++) {
            int h0, h1, hspan;
            window(oh, s.kh, s.sh, s.ph, s.H, &h0, &h1, &hspan);
            for (int ow = 0; ow < s.Wo; ow++, dy++) {
                int w0, w1, wspan;
                window(ow, s.kw, s.sw, s.pw, s.W, &w0, &w1, &wspan);
                nb_real d = *dy / avg_divisor(&s, h0, h1, hspan, w0, w1, wspan);
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) dx[ih * s.W + iw] += d;
            }
        }
    }
}

static const nb_op op_avg_pool2d = {
    .name = "avg_pool2d",
    .forward = avgpool_forward,
    .backward = avgpool_backward,
    .flops = pool_flops,
    .flags = NB_OP_ASSIGNS_GRAD,
};

/* ---- building ---- */

/* PyTorch's pooling_output_shape (no dilation); may return < 1. */
static long long pool_out(int in, int k, int s, int p, int ceil_mode) {
    long long num = (long long)in + 2LL * p - k + (ceil_mode ? s - 1 : 0);
    long long out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1; /* floor division */
    if (ceil_mode && (out - 1) * s >= (long long)in + p) out--;
    return out;
}

static nb_node pool(nb_graph *g, const nb_op *op, nb_node x, nb_pool_settings ps) {
    const int kh = ps.kernel.h, kw = ps.kernel.w, ph = ps.pad.h, pw = ps.pad.w;
    const char *name = op->name;
    if (!nb__begin(g, name, 1, &x)) return NB_NONE;
    const nb_node_t *X = nb__node(g, x);
    char sx[96];
    nb_shape_str(sx, sizeof sx, X->ndim, X->dims);
    if (X->ndim != 4)
        return nb__fail(g, NB_ERR_SHAPE, "%s: input '%s' has shape %s; expected [batch, "
                        "channels, height, width]", name, X->name, sx);
    if (kh < 1 || kw < 1 || kh > AXIS_MAX || kw > AXIS_MAX)
        return nb__fail(g, NB_ERR_ARG, "%s: kernel %dx%d must be 1 to %d", name, kh, kw,
                        AXIS_MAX);
    if (ps.stride.h == 0) ps.stride.h = kh; /* 0: the kernel */
    if (ps.stride.w == 0) ps.stride.w = kw;
    const int sh = ps.stride.h, sw = ps.stride.w;
    if (sh < 1 || sw < 1 || sh > AXIS_MAX || sw > AXIS_MAX)
        return nb__fail(g, NB_ERR_ARG, "%s: stride %dx%d must be 1 to %d (or 0: the kernel)",
                        name, sh, sw, AXIS_MAX);
    if (ph < 0 || pw < 0 || ph > kh / 2 || pw > kw / 2)
        return nb__fail(g, NB_ERR_ARG, "%s: padding %dx%d must be between 0 and half the "
                        "kernel %dx%d", name, ph, pw, kh, kw);
    int H = X->dims[2], W = X->dims[3];
    if ((double)H * (double)W > 2147483647.0) /* max pool's indices are int32 */
        return nb__fail(g, NB_ERR_SHAPE, "%s: input %s: an image plane of more than 2^31 "
                        "values is not supported", name, sx);
    long long Ho = pool_out(H, kh, sh, ph, ps.ceil_mode);
    long long Wo = pool_out(W, kw, sw, pw, ps.ceil_mode);
    if (Ho < 1 || Wo < 1)
        return nb__fail(g, NB_ERR_SHAPE, "%s: kernel %dx%d is larger than the padded input "
                        "%lldx%lld (input %s, padding %dx%d)", name, kh, kw,
                        (long long)H + 2LL * ph, (long long)W + 2LL * pw, sx, ph, pw);
    int dims[4] = {X->dims[0], X->dims[1], (int)Ho, (int)Wo};
    nb_node h = nb__add_node(g, op, 1, &x, 4, dims, X->batched);
    if (h == NB_NONE) return NB_NONE;
    nb__node(g, h)->settings.pool = ps;
    return h;
}

nb_node nb_max_pool2d(nb_graph *g, nb_node x, int kh, int kw, int stride_h, int stride_w,
                      int pad_h, int pad_w, int ceil_mode) {
    nb_pool_settings ps = {.kernel = {kh, kw}, .stride = {stride_h, stride_w},
                           .pad = {pad_h, pad_w}, .ceil_mode = ceil_mode != 0};
    return pool(g, &op_max_pool2d, x, ps);
}

nb_node nb_avg_pool2d(nb_graph *g, nb_node x, int kh, int kw, int stride_h, int stride_w,
                      int pad_h, int pad_w, int ceil_mode, int count_include_pad) {
    nb_pool_settings ps = {.kernel = {kh, kw}, .stride = {stride_h, stride_w},
                           .pad = {pad_h, pad_w}, .ceil_mode = ceil_mode != 0,
                           .count_include_pad = count_include_pad != 0};
    return pool(g, &op_avg_pool2d, x, ps);
}

/* ---- global average pool: [B, C, H, W] -> [B, C] ---- */

static void gap_forward(nb_graph *g, nb_node_t *n) {
    const nb_node_t *x = nb__in(g, n, 0);
    size_t planes = nb__numel(n), plane = nb__numel_from(x, 2);
    for (size_t pl = 0; pl < planes; pl++) {
        const nb_real *xp = x->val + pl * plane;
        double acc = 0; /* in double: planes can be large */
        for (size_t k = 0; k < plane; k++) acc += (double)xp[k];
        n->val[pl] = (nb_real)(acc / (double)plane);
    }
}

static void gap_backward(nb_graph *g, nb_node_t *n) {
    nb_node_t *x = nb__in(g, n, 0);
    if (!x->grad) return;
    size_t planes = nb__numel(n), plane = nb__numel_from(x, 2);
    for (size_t pl = 0; pl < planes; pl++) {
        nb_real d = n->grad[pl] / (nb_real)plane, *dx = x->grad + pl * plane;
        if (nb__grad_assign(n, 0))
            for (size_t k = 0; k < plane; k++) dx[k] = d;
        else
            for (size_t k = 0; k < plane; k++) dx[k] += d;
    }
}

static double gap_flops(const nb_graph *g, const nb_node_t *n) {
    return (double)nb__numel(&g->nodes[n->in[0]]);
}

static const nb_op op_global_avg_pool2d = {
    .name = "global_avg_pool2d",
    .forward = gap_forward,
    .backward = gap_backward,
    .flops = gap_flops,
    .flags = NB_OP_ASSIGNS_GRAD,
};

nb_node nb_global_avg_pool2d(nb_graph *g, nb_node x) {
    if (!nb__begin(g, "global_avg_pool2d", 1, &x)) return NB_NONE;
    const nb_node_t *X = nb__node(g, x);
    if (X->ndim != 4) {
        char sx[96];
        return nb__fail(g, NB_ERR_SHAPE, "global_avg_pool2d: input '%s' has shape %s; "
                        "expected [batch, channels, height, width]", X->name,
                        nb_shape_str(sx, sizeof sx, X->ndim, X->dims));
    }
    int dims[2] = {X->dims[0], X->dims[1]};
    return nb__add_node(g, &op_global_avg_pool2d, 1, &x, 2, dims, X->batched);
}
