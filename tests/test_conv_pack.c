/* The convolution's forward product without a stored column matrix: its
 * operand packed block by block straight from the image.
 *   - nb_im2col_block gives exactly the values of nb_im2col, over geometries
 *     with padding, stride, dilation, wide kernels and narrow outputs, for
 *     blocks at any row and column, zero beyond the block's columns;
 *   - nb_col2im gives its definition's sums, in its order, bit for bit;
 *   - nb__sgemm_avx512_pack_b gives the bits of nb__sgemm_avx512 on the
 *     stored matrix (C prefilled with the bias, beta = 1, then a relu pass
 *     when asked), on 1 and 2 threads;
 *   - a convolution at batch 1 and 2 gives the same bits on 1 and 2 threads,
 *     and the values of the definition;
 *   - the weight gradient that the AVX-512 kernel sums transposed (one input
 *     channel, 3x3; and 32 channels to 64) has the bits of the per-sample
 *     products dW += dY col^T summed in the original form, each thread's
 *     share in order. */
#include "nabla.h"
#include "test.h"
#include "core/internal.h"
#include "kernels/gemm.h"
#include "kernels/im2col.h"
#include "stored_b.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long state = 4242;
static float uniform(void) { /* in [-1, 1), exactly representable */
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((int)(state >> 41) - (1 << 22)) / (float)(1 << 22);
}

static nb_conv_geom geom(int C, int H, int W, int kh, int kw, int sh, int sw, int ph, int pw,
                         int dh, int dw) {
    nb_conv_geom g = {.C = C, .H = H, .W = W, .kh = kh, .kw = kw, .sh = sh, .sw = sw, .ph = ph,
                      .pw = pw, .dh = dh, .dw = dw};
    g.Ho = (H + 2 * ph - dh * (kh - 1) - 1) / sh + 1;
    g.Wo = (W + 2 * pw - dw * (kw - 1) - 1) / sw + 1;
    return g;
}

/* Every block [r0, r0+rows) x [p0, p0+n) of a few placements against the
 * stored matrix; returns the number of mismatching values. */
static long check_blocks(const nb_conv_geom *g, const nb_real *x, const nb_real *col,
                         int width) {
    int K = g->C * g->kh * g->kw, P = g->Ho * g->Wo;
    nb_real *dst = malloc((size_t)K * width * sizeof *dst);
    long bad = 0;
    int starts[] = {0, 1, 5, 32, 33, P - 1};
    for (int a = 0; a < 6; a++) {
        int p0 = starts[a];
        if (p0 < 0 || p0 >= P) continue;
        for (int r0 = 0; r0 < K; r0 += K > 7 ? 7 : 1) {
            int rows = K - r0 < 9 ? K - r0 : 9;
            int n = P - p0 < width ? P - p0 : width;
            if (a == 2 && n > 3) n -= 3; /* a block narrower than the panel */
            for (size_t k = 0; k < (size_t)rows * width; k++) dst[k] = (nb_real)NAN;
            nb_im2col_block(g, x, r0, rows, p0, n, dst, width);
            for (int k = 0; k < rows; k++)
                for (int j = 0; j < width; j++) {
                    nb_real want = j < n ? col[(size_t)(r0 + k) * P + p0 + j] : 0;
                    nb_real got = dst[(size_t)k * width + j];
                    if (!(got == want)) bad++;
                }
        }
    }
    free(dst);
    return bad;
}

static void test_im2col_block(void) {
    const nb_conv_geom cases[] = {
        geom(1, 28, 28, 3, 3, 1, 1, 0, 0, 1, 1),  /* the CNN's first layer */
        geom(32, 13, 13, 3, 3, 1, 1, 0, 0, 1, 1), /* its second */
        geom(3, 9, 10, 3, 3, 1, 1, 1, 1, 1, 1),   /* padding */
        geom(2, 11, 7, 3, 2, 1, 1, 2, 1, 2, 1),   /* dilation */
        geom(2, 12, 13, 3, 3, 2, 2, 1, 1, 1, 1),  /* stride on both axes */
        geom(2, 12, 13, 3, 3, 2, 1, 1, 1, 1, 1),  /* stride on rows only */
        geom(1, 5, 40, 1, 20, 1, 1, 0, 3, 1, 1),  /* a wide kernel */
        geom(2, 3, 64, 2, 2, 1, 1, 0, 0, 1, 1),   /* wide outputs */
        geom(1, 40, 2, 3, 1, 1, 1, 1, 0, 1, 1),   /* two output columns: many rows per block */
        geom(1, 8, 8, 3, 3, 1, 1, 4, 4, 1, 1),    /* rows and columns all padding */
        geom(2, 9, 16, 2, 1, 2, 1, 0, 0, 1, 1),   /* stride on rows, no padding */
        geom(2, 12, 12, 2, 2, 1, 1, 0, 0, 2, 2),  /* dilation, no padding */
        geom(2, 12, 30, 2, 3, 2, 1, 0, 0, 1, 10), /* a block reads far apart */
        geom(1, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1),  /* fashion_cnn's first layer (padding) */
        geom(32, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1), /* and its second */
        geom(2, 10, 10, 3, 3, 1, 1, 2, 2, 2, 2),  /* padding with dilation */
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const nb_conv_geom *g = &cases[c];
        size_t nx = (size_t)g->C * g->H * g->W;
        int K = g->C * g->kh * g->kw, P = g->Ho * g->Wo;
        nb_real *x = malloc(nx * sizeof *x), *col = malloc((size_t)K * P * sizeof *col);
        for (size_t k = 0; k < nx; k++) x[k] = (nb_real)uniform();
        nb_im2col(g, x, col, (size_t)P);
        long bad32 = check_blocks(g, x, col, 32), bad40 = check_blocks(g, x, col, 40);
        CHECKF(bad32 == 0 && bad40 == 0, "case %zu: %ld / %ld values differ from nb_im2col", c,
               bad32, bad40);
        free(x), free(col);
    }
}

/* nb_col2im against its definition summed in its loops' order (channel,
 * kernel row, kernel column, output row, output column), bit for bit: the
 * AVX-512 version adds a row's shifted column rows in registers. */
static void test_col2im(void) {
    const nb_conv_geom cases[] = {
        geom(1, 28, 28, 3, 3, 1, 1, 0, 0, 1, 1),  geom(32, 13, 13, 3, 3, 1, 1, 0, 0, 1, 1),
        geom(3, 9, 10, 3, 3, 1, 1, 1, 1, 1, 1),   geom(2, 11, 7, 3, 2, 1, 1, 2, 1, 2, 1),
        geom(2, 12, 13, 3, 3, 2, 2, 1, 1, 1, 1),  geom(1, 5, 40, 1, 20, 1, 1, 0, 3, 1, 1),
        geom(2, 3, 64, 2, 2, 1, 1, 0, 0, 1, 1),   geom(1, 8, 8, 3, 3, 1, 1, 4, 4, 1, 1),
        geom(2, 7, 37, 5, 5, 1, 1, 2, 2, 1, 1),   geom(1, 6, 20, 2, 16, 1, 1, 0, 5, 1, 1),
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const nb_conv_geom *g = &cases[c];
        size_t nx = (size_t)g->C * g->H * g->W;
        int K = g->C * g->kh * g->kw, P = g->Ho * g->Wo;
        nb_real *col = malloc((size_t)K * P * sizeof *col);
        nb_real *got = malloc(nx * sizeof *got), *want = malloc(nx * sizeof *want);
        for (size_t k = 0; k < (size_t)K * P; k++) col[k] = (nb_real)uniform();
        for (size_t k = 0; k < nx; k++) got[k] = want[k] = (nb_real)uniform();
        nb_col2im(g, col, (size_t)P, got);
        for (int ch = 0, r = 0; ch < g->C; ch++)
            for (int i = 0; i < g->kh; i++)
                for (int j = 0; j < g->kw; j++, r++)
                    for (int oh = 0; oh < g->Ho; oh++)
                        for (int ow = 0; ow < g->Wo; ow++) {
                            int ih = oh * g->sh - g->ph + i * g->dh;
                            int iw = ow * g->sw - g->pw + j * g->dw;
                            if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;
                            want[((size_t)ch * g->H + ih) * g->W + iw] +=
                                col[(size_t)r * P + (size_t)oh * g->Wo + ow];
                        }
        CHECKF(memcmp(got, want, nx * sizeof *got) == 0, "case %zu: nb_col2im is not the sum "
               "in order", c);
        free(col), free(got), free(want);
    }
}

#ifdef NB_AVX512_GEMM
/* The packing entry against nb__sgemm_avx512 on the stored B, bit for bit;
 * returns whether they agree (and C outside the product is untouched). */
static int same_product(int M, int N, int K, int with_bias, int relu) {
    int lda = K + 3, ldb = N + 5, ldc = N + 7;
    float *A = malloc((size_t)M * lda * sizeof *A), *B = malloc((size_t)K * ldb * sizeof *B);
    float *bias = malloc((size_t)M * sizeof *bias);
    float *C1 = malloc((size_t)M * ldc * sizeof *C1), *C2 = malloc((size_t)M * ldc * sizeof *C2);
    for (size_t k = 0; k < (size_t)M * lda; k++) A[k] = uniform();
    for (size_t k = 0; k < (size_t)K * ldb; k++) B[k] = uniform();
    for (int i = 0; i < M; i++) bias[i] = uniform();
    for (size_t k = 0; k < (size_t)M * ldc; k++) C1[k] = C2[k] = 7.0f;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) C1[(size_t)i * ldc + j] = with_bias ? bias[i] : 0;
    nb__sgemm_avx512(0, 0, M, N, K, 1, A, lda, B, ldb, 1, C1, ldc);
    for (int i = 0; relu && i < M; i++)
        for (int j = 0; j < N; j++) C1[(size_t)i * ldc + j] = nb__relu(C1[(size_t)i * ldc + j]);
    stored_b s = {B, ldb};
    nb__sgemm_avx512_pack_b(M, N, K, A, lda, pack_stored_b, &s, with_bias ? bias : NULL, relu, C2,
                            ldc);
    int same = memcmp(C1, C2, (size_t)M * ldc * sizeof *C1) == 0;
    free(A), free(B), free(bias), free(C1), free(C2);
    return same;
}

static void test_pack_b_product(void) {
    if (!nb__sgemm_avx512_usable()) {
        printf("no AVX-512: the packing entry is not checked\n");
        return;
    }
    const int Ms[] = {5, 12, 13, 64, 150}, Ns[] = {1, 31, 33, 121, 700}, Ks[] = {1, 9, 288, 300};
    for (int threads = 1; threads <= 2; threads++) {
        CHECK_OK(nb_set_threads(threads));
        for (int a = 0; a < 5; a++)
            for (int b = 0; b < 5; b++)
                for (int c = 0; c < 4; c++)
                    CHECKF(same_product(Ms[a], Ns[b], Ks[c], (a + b + c) % 2, (a + c) % 2),
                           "M %d N %d K %d on %d threads: differs from nb__sgemm_avx512",
                           Ms[a], Ns[b], Ks[c], threads);
    }
}

/* The product read from the image (nb__sgemm_avx512_direct) against the
 * packing entry on the stored column matrix, bit for bit, over channels
 * [m0, M) (m0 0, 16 or 32), in parts of `step` channels (16: half panels, as
 * two threads split one), each packing its own weights into a buffer of NaN
 * first (a part reads no lane it did not write): channels that fill no
 * whole panel, rows wider than a tile, one to three K blocks or few terms,
 * row stride and dilation, bias and relu. */
static int same_direct(int M, int C, int H, int W, int sh, int dil, int with_bias, int relu,
                       int m0, int step) {
    nb_conv_geom g = geom(C, H, W, 3, 3, sh, 1, 0, 0, dil, dil);
    const int K = C * 9, P = g.Ho * g.Wo;
    float *x = malloc((size_t)C * H * W * sizeof *x), *w = malloc((size_t)M * K * sizeof *w);
    float *col = malloc((size_t)K * P * sizeof *col), *bias = malloc((size_t)M * sizeof *bias);
    float *y1 = malloc((size_t)M * P * sizeof *y1), *y2 = malloc((size_t)M * P * sizeof *y2);
    int *off = malloc((size_t)K * sizeof *off);
    for (size_t k = 0; k < (size_t)C * H * W; k++) x[k] = uniform();
    for (size_t k = 0; k < (size_t)M * K; k++) w[k] = uniform();
    for (int i = 0; i < M; i++) bias[i] = uniform();
    for (size_t k = 0; k < (size_t)M * P; k++) y1[k] = y2[k] = 7.0f;
    for (int k = 0; k < K; k++)
        off[k] = ((k / 9) * H + (k % 9 / 3) * dil) * W + (k % 3) * dil;
    nb_im2col(&g, x, col, P);
    stored_b sb = {col, P};
    nb__sgemm_avx512_pack_b(M - m0, P, K, w + (size_t)m0 * K, K, pack_stored_b, &sb,
                            with_bias ? bias + m0 : NULL, relu, y1 + (size_t)m0 * P, P);
    float *packed = aligned_alloc(64, nb__direct_packed_len(M, K) * sizeof *packed);
    for (size_t k = 0; k < nb__direct_packed_len(M, K); k++) packed[k] = NAN;
    nb__direct_conv d = {.M = M, .K = K, .packed = packed, .bias = with_bias ? bias : NULL,
                         .relu = relu, .x = x, .off = off, .rows = g.Ho, .width = g.Wo,
                         .row_step = (long)sh * W, .y = y2};
    for (int c = m0; c < M; c += step) {
        int end = c + step < M ? c + step : M;
        nb__direct_pack(w, M, K, c, end, packed);
        nb__sgemm_avx512_direct(&d, c, end);
    }
    int same = memcmp(y1, y2, (size_t)M * P * sizeof *y1) == 0;
    free(x), free(w), free(col), free(bias), free(y1), free(y2), free(off), free(packed);
    return same;
}

static void test_direct_product(void) {
    /* M, C, H, W, row stride, dilation */
    const int cases[][6] = {
        {64, 32, 16, 16, 1, 1}, /* fashion_cnn's second layer, padding written out */
        {40, 8, 9, 3, 1, 1},    /* one position a row; 8 channels past a panel */
        {32, 30, 7, 17, 1, 1},  /* 15 positions a row: two tiles */
        {96, 60, 12, 32, 2, 1}, /* 30 a row, 540 terms (three K blocks), row stride 2 */
        {5, 11, 10, 20, 1, 2},  /* dilation; fewer channels than a vector */
        /* few terms (taken from K = 9) */
        {32, 1, 28, 28, 1, 1},  /* fashion_cnn's first layer: 9 terms, 26 a row */
        {20, 3, 9, 40, 2, 1},   /* colour: 27 terms, 38 a row (two segments), stride 2 */
        {13, 2, 10, 20, 1, 2},  /* 18 terms, dilation, 13 channels (a group of 5) */
    };
    for (int c = 0; c < (int)(sizeof cases / sizeof cases[0]); c++)
        for (int v = 0; v < 6; v++) {
            const int *k = cases[c];
            /* v 3: from the second panel; 4: from its second half, in halves; 5: all in halves */
            int m0 = v == 3 && k[0] > 32 ? 32 : v == 4 && k[0] > 16 ? 16 : 0;
            int step = v >= 4 ? 16 : k[0], relu = v == 4 || (v >> 1) == 1;
            CHECKF(same_direct(k[0], k[1], k[2], k[3], k[4], k[5], v & 1, relu, m0, step),
                   "case %d (bias %d, relu %d, from channel %d, parts of %d): the direct "
                   "product differs from the packed one", c, v & 1, relu, m0, step);
        }
}
#endif

/* One convolution, forward only, at batch B on `threads` threads. */
static nb_real *conv_forward(int threads, int B, int C, int H, int W, int Co, int k, int stride,
                             int pad, int groups, const nb_real *x, const nb_real *w,
                             const nb_real *b, size_t *ny) {
    CHECK_OK(nb_set_threads(threads));
    nb_graph *g = nb_graph_new();
    int xd[3] = {C, H, W}, wd[4] = {Co, C / groups, k, k};
    nb_node xn = nb_input(g, "x", 3, xd);
    nb_node wn = nb_param(g, "w", 4, wd, (nb_init){0});
    nb_node bn = nb_param(g, "b", 1, &Co, (nb_init){0});
    nb_node y = nb_conv2d(g, xn, wn, bn, stride, stride, pad, pad, 1, 1, groups);
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    CHECK_OK(nb_graph_init(g, &rng));
    memcpy(nb_value(g, wn), w, (size_t)Co * (C / groups) * k * k * sizeof *w);
    memcpy(nb_value(g, bn), b, (size_t)Co * sizeof *b);
    nb_graph_set_training(g, 0);
    CHECK_OK(nb_set_input(g, xn, x, B));
    CHECK_OK(nb_forward(g, y));
    *ny = nb_node_numel(g, y);
    nb_real *out = malloc(*ny * sizeof *out);
    memcpy(out, nb_value(g, y), *ny * sizeof *out);
    nb_graph_free(g);
    return out;
}

/* A single sample in eval mode keeps the direct product's packed weights
 * between calls (conv.c, keeps_packed): every call must still compute with
 * the weights it is given.  One graph, called again and again, against a
 * fresh graph (conv_forward) with the same weights: unchanged, one weight
 * changed through nb_value, changed back (the same bits as the kept copy
 * again), after a training-mode call and after a batch of 2 (another plan). */
static int same_as_fresh(nb_graph *g, nb_node y, int threads, int C, int H, int Co, int k,
                         int pad, const nb_real *x, const nb_real *w, const nb_real *b) {
    size_t n;
    CHECK_OK(nb_forward(g, y));
    nb_real *fresh = conv_forward(threads, 1, C, H, H, Co, k, 1, pad, 1, x, w, b, &n);
    CHECK_OK(nb_set_threads(threads));
    int same = n == nb_node_numel(g, y) && memcmp(fresh, nb_value(g, y), n * sizeof *fresh) == 0;
    free(fresh);
    return same;
}

static void test_kept_weights(void) {
    const int cases[][4] = {{32, 14, 64, 1}, {1, 28, 32, 1}}; /* C, H, Co, pad: fashion_cnn */
    for (int threads = 1; threads <= 2; threads++)
        for (int c = 0; c < 2; c++) {
            const int C = cases[c][0], H = cases[c][1], Co = cases[c][2], pad = cases[c][3], k = 3;
            const size_t nx = (size_t)2 * C * H * H, nw = (size_t)Co * C * k * k;
            nb_real *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w);
            nb_real *b = malloc((size_t)Co * sizeof *b);
            for (size_t i = 0; i < nx; i++) x[i] = (nb_real)uniform();
            for (size_t i = 0; i < nw; i++) w[i] = (nb_real)uniform();
            for (int i = 0; i < Co; i++) b[i] = (nb_real)uniform();
            CHECK_OK(nb_set_threads(threads));
            nb_graph *g = nb_graph_new();
            int xd[3] = {C, H, H}, wd[4] = {Co, C, k, k};
            nb_node xn = nb_input(g, "x", 3, xd);
            nb_node wn = nb_param(g, "w", 4, wd, (nb_init){0});
            nb_node bn = nb_param(g, "b", 1, &Co, (nb_init){0});
            nb_node y = nb_conv2d(g, xn, wn, bn, 1, 1, pad, pad, 1, 1, 1);
            nb_rng rng;
            nb_rng_seed(&rng, 1);
            CHECK_OK(nb_graph_init(g, &rng));
            memcpy(nb_value(g, wn), w, nw * sizeof *w);
            memcpy(nb_value(g, bn), b, (size_t)Co * sizeof *b);
            nb_graph_set_training(g, 0);
            CHECK_OK(nb_set_input(g, xn, x, 1));
            const char *step[] = {"first call", "second call", "a weight changed",
                                  "the weight changed back", "after a training-mode call",
                                  "after a batch of 2"};
            for (int t = 0; t < 6; t++) {
                const size_t at = nw / 2 + 3; /* a weight of the second half of the channels */
                if (t == 2 || t == 3) {
                    w[at] = t == 2 ? w[at] + (nb_real)0.5 : w[at] - (nb_real)0.5;
                    nb_value(g, wn)[at] = w[at];
                }
                if (t == 4) {
                    nb_graph_set_training(g, 1);
                    CHECK_OK(nb_forward(g, y));
                    nb_graph_set_training(g, 0);
                }
                if (t == 5) {
                    CHECK_OK(nb_set_input(g, xn, x, 2));
                    CHECK_OK(nb_forward(g, y));
                    CHECK_OK(nb_set_input(g, xn, x, 1));
                }
                CHECKF(same_as_fresh(g, y, threads, C, H, Co, k, pad, x, w, b),
                       "case %d on %d threads, %s: differs from a fresh graph", c, threads,
                       step[t]);
            }
            nb_graph_free(g);
            free(x), free(w), free(b);
        }
}

static void test_conv_threads(void) {
    /* C, H, W, Co, k, stride, pad, groups */
    const int cases[][8] = {
        {32, 13, 13, 64, 3, 1, 0, 1}, /* the CNN's second layer */
        {1, 28, 28, 32, 3, 1, 0, 1},  /* its first */
        {4, 17, 15, 24, 3, 1, 1, 2},  /* padding, groups */
        {3, 20, 21, 16, 3, 2, 1, 1},  /* stride */
    };
    for (int c = 0; c < 4; c++) {
        int C = cases[c][0], H = cases[c][1], W = cases[c][2], Co = cases[c][3], k = cases[c][4],
            st = cases[c][5], pad = cases[c][6], groups = cases[c][7], Cg = C / groups;
        int Ho = (H + 2 * pad - k) / st + 1, Wo = (W + 2 * pad - k) / st + 1;
        const int B = 2;
        size_t nx = (size_t)B * C * H * W, nw = (size_t)Co * Cg * k * k;
        nb_real *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w);
        nb_real *b = malloc((size_t)Co * sizeof *b);
        for (size_t i = 0; i < nx; i++) x[i] = (nb_real)uniform();
        for (size_t i = 0; i < nw; i++) w[i] = (nb_real)uniform();
        for (int i = 0; i < Co; i++) b[i] = (nb_real)uniform();
        for (int batch = 1; batch <= B; batch++) {
            size_t n1, n2;
            nb_real *one = conv_forward(1, batch, C, H, W, Co, k, st, pad, groups, x, w, b, &n1);
            nb_real *two = conv_forward(2, batch, C, H, W, Co, k, st, pad, groups, x, w, b, &n2);
            CHECKF(n1 == n2 && memcmp(one, two, n1 * sizeof *one) == 0,
                   "case %d batch %d: 1 and 2 threads differ", c, batch);
            double worst = 0;
            for (int s = 0; s < batch; s++)
                for (int o = 0; o < Co; o++)
                    for (int oh = 0; oh < Ho; oh++)
                        for (int ow = 0; ow < Wo; ow++) {
                            double want = b[o];
                            int grp = o / (Co / groups);
                            for (int ci = 0; ci < Cg; ci++)
                                for (int i = 0; i < k; i++)
                                    for (int j = 0; j < k; j++) {
                                        int ih = oh * st - pad + i, iw = ow * st - pad + j;
                                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                        size_t wi = ((size_t)o * Cg + ci) * k * k + i * k + j;
                                        size_t xi = (((size_t)s * C + grp * Cg + ci) * H + ih) * W;
                                        want += (double)w[wi] * x[xi + iw];
                                    }
                            double got = two[(((size_t)s * Co + o) * Ho + oh) * Wo + ow];
                            if (fabs(got - want) > worst) worst = fabs(got - want);
                        }
            CHECKF(worst < 1e-4, "case %d batch %d: off the definition by %g", c, batch, worst);
            free(one), free(two);
        }
        free(x), free(w), free(b);
    }
}

/* The input gradient of one convolution (no bias) at batch B on `threads`
 * threads, for the loss sum(y r): dy = r.  second: x gets a second consumer
 * (0 x, whose backward runs first), so the convolution adds into its
 * gradient instead of writing it whole (then the column-matrix path runs,
 * not the direct convolution of the padded output gradient). */
typedef struct conv_case {
    int C, H, W, Co, kh, kw, pad_h, pad_w, dil;
} conv_case;

static nb_real *conv_dx(const conv_case *k, int threads, int B, int second, const nb_real *x,
                        const nb_real *w, const nb_real *r) {
    CHECK_OK(nb_set_threads(threads));
    nb_graph *g = nb_graph_new();
    int xd[3] = {k->C, k->H, k->W}, wd[4] = {k->Co, k->C, k->kh, k->kw};
    nb_node xn = nb_input(g, "x", 3, xd);
    nb_node wn = nb_param(g, "w", 4, wd, (nb_init){0});
    nb_node y = nb_conv2d(g, xn, wn, NB_NONE, 1, 1, k->pad_h, k->pad_w, k->dil, k->dil, 1);
    int yd[NB_MAX_DIMS], nd;
    CHECK_OK(nb_node_shape(g, y, &nd, yd));
    nb_node rn = nb_input(g, "r", 3, yd + 1);
    nb_node loss = nb_sum(g, nb_mul(g, y, rn));
    if (second) loss = nb_add(g, loss, nb_sum(g, nb_scale(g, xn, 0)));
    CHECK_OK(nb_requires_grad(g, xn, 1));
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    CHECK_OK(nb_graph_init(g, &rng));
    memcpy(nb_value(g, wn), w, (size_t)k->Co * k->C * k->kh * k->kw * sizeof *w);
    CHECK_OK(nb_set_input(g, xn, x, B));
    CHECK_OK(nb_set_input(g, rn, r, B));
    CHECK_OK(nb_forward(g, loss));
    CHECK_OK(nb_backward(g, loss));
    size_t n = nb_node_numel(g, xn);
    nb_real *dx = malloc(n * sizeof *dx);
    memcpy(dx, nb_grad(g, xn), n * sizeof *dx);
    nb_graph_free(g);
    return dx;
}

/* The input gradient: the same bits on 1 and 2 threads, the definition's
 * values (in double), and the column-matrix path's to rounding; over the
 * course CNN's second layer, rows wider than a tile, input channels past a
 * panel, a tall kernel with uneven padding, dilation, and one the direct
 * convolution does not pay for (16 input channels fill half a panel). */
static void test_input_grad(void) {
    const conv_case cases[] = {
        {32, 14, 14, 64, 3, 3, 1, 1, 1}, {32, 9, 30, 64, 3, 3, 1, 1, 1},
        {60, 14, 14, 16, 3, 3, 1, 1, 1}, {32, 12, 12, 48, 5, 3, 2, 1, 1},
        {32, 12, 12, 64, 3, 3, 2, 2, 2}, {16, 12, 12, 16, 3, 3, 1, 1, 1},
    };
    const int B = 3;
    for (int c = 0; c < 6; c++) {
        const conv_case *k = &cases[c];
        int Ho = k->H + 2 * k->pad_h - k->dil * (k->kh - 1);
        int Wo = k->W + 2 * k->pad_w - k->dil * (k->kw - 1);
        size_t nx = (size_t)B * k->C * k->H * k->W, nw = (size_t)k->Co * k->C * k->kh * k->kw;
        size_t nr = (size_t)B * k->Co * Ho * Wo;
        nb_real *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w);
        nb_real *r = malloc(nr * sizeof *r);
        for (size_t i = 0; i < nx; i++) x[i] = (nb_real)uniform();
        for (size_t i = 0; i < nw; i++) w[i] = (nb_real)uniform();
        for (size_t i = 0; i < nr; i++) r[i] = (nb_real)uniform();
        nb_real *one = conv_dx(k, 1, B, 0, x, w, r), *two = conv_dx(k, 2, B, 0, x, w, r);
        nb_real *col = conv_dx(k, 1, B, 1, x, w, r);
        CHECKF(memcmp(one, two, nx * sizeof *one) == 0, "case %d: 1 and 2 threads differ", c);
        double *want = calloc(nx, sizeof *want), worst = 0, worst_col = 0;
        for (int s = 0; s < B; s++)
            for (int o = 0; o < k->Co; o++)
                for (int oh = 0; oh < Ho; oh++)
                    for (int ow = 0; ow < Wo; ow++)
                        for (int ci = 0; ci < k->C; ci++)
                            for (int a = 0; a < k->kh; a++)
                                for (int b = 0; b < k->kw; b++) {
                                    int ih = oh - k->pad_h + a * k->dil;
                                    int iw = ow - k->pad_w + b * k->dil;
                                    if (ih < 0 || ih >= k->H || iw < 0 || iw >= k->W) continue;
                                    size_t wi = (((size_t)o * k->C + ci) * k->kh + a) * k->kw + b;
                                    size_t ri = (((size_t)s * k->Co + o) * Ho + oh) * Wo + ow;
                                    size_t xi = (((size_t)s * k->C + ci) * k->H + ih) * k->W + iw;
                                    want[xi] += (double)w[wi] * r[ri];
                                }
        for (size_t i = 0; i < nx; i++) {
            worst = fmax(worst, fabs(one[i] - want[i]));
            worst_col = fmax(worst_col, fabs(one[i] - col[i]));
        }
        CHECKF(worst < 1e-4 && worst_col < 1e-4,
               "case %d: input gradient off the definition by %g, the column path by %g", c,
               worst, worst_col);
        free(x), free(w), free(r), free(one), free(two), free(col), free(want);
    }
}

/* Per-sample products in the original form, samples [s0, s1) into dw. */
static void dw_reference(const nb_conv_geom *g, const nb_real *x, const nb_real *dy, int Co,
                         int s0, int s1, nb_real *dw) {
    int K = g->C * g->kh * g->kw, P = g->Ho * g->Wo;
    nb_real *col = malloc((size_t)K * P * sizeof *col);
    for (int s = s0; s < s1; s++) {
        nb_im2col(g, x + (size_t)s * g->C * g->H * g->W, col, P);
        nb_gemm(0, 1, Co, K, P, 1, dy + (size_t)s * Co * P, P, col, P, 1, dw, K);
    }
    free(col);
}

static void test_dw_transposed(int C, int Co) {
    enum { B = 6, H = 14, W = 11 };
    nb_conv_geom cg = geom(C, H, W, 3, 3, 1, 1, 0, 0, 1, 1);
    const int P = cg.Ho * cg.Wo, K = 9 * C;
    for (int threads = 1; threads <= 2; threads++) {
        nb_set_threads(threads);
        nb_graph *g = nb_graph_new();
        int xd[3] = {C, H, W}, dd[3] = {Co, cg.Ho, cg.Wo};
        nb_node x = nb_input(g, "x", 3, xd);
        nb_node y = nb_conv2d_layer(g, x, Co, 3, 3, NULL, "c");
        nb_node r = nb_input(g, "r", 3, dd); /* loss = sum(y * r): dY = r */
        nb_node loss = nb_sum(g, nb_mul(g, y, r));
        nb_rng rng;
        nb_rng_seed(&rng, 3);
        REQUIRE_OK(nb_graph_init(g, &rng));
        REQUIRE_OK(nb_graph_set_batch(g, B));
        nb_real *xv = nb_value(g, x), *rv = nb_value(g, r);
        for (size_t i = 0; i < (size_t)B * C * H * W; i++) xv[i] = (nb_real)uniform();
        for (size_t i = 0; i < (size_t)B * Co * P; i++) rv[i] = (nb_real)uniform();
        nb_real *dw = nb_grad(g, nb_find(g, "c.weight"));
        for (int i = 0; i < Co * K; i++) dw[i] = (nb_real)uniform(); /* accumulated onto */
        nb_real *want = malloc((size_t)Co * K * sizeof *want);
        nb_real *part = malloc((size_t)Co * K * sizeof *part);
        memcpy(want, dw, (size_t)Co * K * sizeof *want);
        REQUIRE_OK(nb_forward(g, loss));
        REQUIRE_OK(nb_backward(g, loss));
        /* part 0 goes on from the gradient; part 1 from zero, added after */
        int half = threads == 1 ? B : B / 2;
        dw_reference(&cg, xv, rv, Co, 0, half, want);
        memset(part, 0, (size_t)Co * K * sizeof *part);
        dw_reference(&cg, xv, rv, Co, half, B, part);
        for (int i = 0; threads == 2 && i < Co * K; i++) want[i] += part[i];
        CHECKF(memcmp(want, dw, (size_t)Co * K * sizeof *dw) == 0,
               "%d to %d channels, %d threads: the transposed weight gradient is not the "
               "product's bits", C, Co, threads);
        free(want), free(part);
        nb_graph_free(g);
    }
    nb_set_threads(1);
}

int main(void) {
    test_im2col_block();
    test_col2im();
#ifdef NB_AVX512_GEMM
    test_pack_b_product();
    if (nb__sgemm_avx512_usable()) test_direct_product();
#endif
    test_conv_threads();
    test_kept_weights();
    test_input_grad();
#ifdef NB_AVX512_GEMM
    if (nb__gemm_kernel() == NB__GEMM_AVX512) {
        test_dw_transposed(1, 16);
        test_dw_transposed(32, 64);
    }
#endif
    TEST_END();
}
