#include "im2col.h"

#include <string.h>

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

void nb_im2col(const nb_conv_geom *g, const nb_real *x, nb_real *col, size_t ld) {
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
                        copy_run(dd, src, n);
                    } else {
                        for (int k = 0; k < n; k++) dd[k] = src[k * sw];
                    }
                    for (int ow = cs.hi; ow < Wo; ow++) d[ow] = 0;
                }
            }
        }
    }
}

void nb_col2im(const nb_conv_geom *g, const nb_real *col, size_t ld, nb_real *x) {
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
                        for (int k = 0; k < n; k++) d[k] += s[k];
                    } else {
                        for (int k = 0; k < n; k++) d[k * sw] += s[k];
                    }
                }
            }
        }
    }
}
