/* Convolution and pooling in double precision: forward values against a
 * direct (seven-loop) convolution written here, gradients against central
 * differences (nb_gradcheck, eps 1e-6, atol 1e-7, rtol 1e-6), the pooling
 * conventions (first maximum wins, NaN propagates, padding is -inf, ceil-mode
 * sizes and divisors) checked exactly, the conv layer's parameters and init,
 * a small CNN end to end, and every shape error's message. */
#include "test.h"
#include "nabla.h"

#include <stdlib.h>
#include <string.h>

static nb_rng rng;

static void fill_normal(nb_real *v, size_t n, double scale) {
    for (size_t k = 0; k < n; k++) v[k] = (nb_real)(scale * nb_rng_normal(&rng));
}

/* n values at least 1/64 apart in random order: no ties in any window, and
 * a 1e-6 step never changes which element is the maximum. */
static void fill_distinct(nb_real *v, size_t n) {
    size_t *idx = malloc(n * sizeof *idx);
    if (!idx) return;
    for (size_t k = 0; k < n; k++) idx[k] = k;
    nb_rng_shuffle(&rng, idx, n);
    for (size_t k = 0; k < n; k++) v[k] = (nb_real)((double)idx[k] / 64.0 - (double)n / 128.0);
    free(idx);
}

static int gradcheck_ok(nb_graph *g, nb_node loss, size_t per_tensor, size_t expect_checked,
                        const char *what) {
    nb_gradcheck_report rep;
    nb_status s = nb_gradcheck_sampled(g, loss, 1e-6, 1e-7, 1e-6, per_tensor, &rep);
    CHECKF(s == NB_OK, "%s: gradcheck: %s", what, nb_last_error());
    CHECKF(rep.failed == 0 && (expect_checked == 0 || rep.checked == expect_checked),
           "%s: checked %zu (expected %zu), failed %zu, worst at node %d [%zu]: analytic "
           "%.12g numeric %.12g", what, rep.checked, expect_checked, rep.failed,
           rep.worst_node, rep.worst_index, rep.worst_analytic, rep.worst_numeric);
    return s == NB_OK && rep.failed == 0;
}

/* ------------------------------------------------------------------ conv */

typedef struct conv_cfg {
    const char *name;
    int B, C, H, W, Co, kh, kw, sh, sw, ph, pw, dh, dw, groups, bias;
    size_t per_tensor; /* gradcheck sample per tensor (0: every scalar) */
} conv_cfg;

static int out_size(int in, int k, int s, int p, int d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }

/* y[b][o][i][j] = bias[o] + sum over c in o's group, u, v of
 *                 w[o][c'][u][v] * x[b][c][i*sh - ph + u*dh][j*sw - pw + v*dw] */
static void naive_conv(const conv_cfg *c, const nb_real *x, const nb_real *w,
                       const nb_real *bias, double *y) {
    int Ho = out_size(c->H, c->kh, c->sh, c->ph, c->dh);
    int Wo = out_size(c->W, c->kw, c->sw, c->pw, c->dw);
    int Cg = c->C / c->groups, Cog = c->Co / c->groups;
    for (int b = 0; b < c->B; b++)
        for (int o = 0; o < c->Co; o++)
            for (int i = 0; i < Ho; i++)
                for (int j = 0; j < Wo; j++) {
                    double acc = bias ? bias[o] : 0;
                    for (int cc = 0; cc < Cg; cc++) {
                        int ci = (o / Cog) * Cg + cc;
                        for (int u = 0; u < c->kh; u++)
                            for (int v = 0; v < c->kw; v++) {
                                int ih = i * c->sh - c->ph + u * c->dh;
                                int iw = j * c->sw - c->pw + v * c->dw;
                                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                                acc += w[((o * Cg + cc) * c->kh + u) * c->kw + v] *
                                       x[((b * c->C + ci) * c->H + ih) * c->W + iw];
                            }
                    }
                    y[((b * c->Co + o) * Ho + i) * Wo + j] = acc;
                }
}

static void check_conv(const conv_cfg *c) {
    nb_graph *g = nb_graph_new();
    int xd[3] = {c->C, c->H, c->W};
    int wd[4] = {c->Co, c->C / c->groups, c->kh, c->kw};
    nb_node x = nb_input(g, "x", 3, xd);
    nb_node w = nb_param(g, "w", 4, wd, (nb_init){0});
    nb_node b = c->bias ? nb_param(g, "b", 1, &c->Co, (nb_init){0}) : NB_NONE;
    nb_node y = nb_conv2d(g, x, w, b, c->sh, c->sw, c->ph, c->pw, c->dh, c->dw, c->groups);
    int Ho = out_size(c->H, c->kh, c->sh, c->ph, c->dh);
    int Wo = out_size(c->W, c->kw, c->sw, c->pw, c->dw);
    int yd[3] = {c->Co, Ho, Wo};
    nb_node wy = nb_input(g, "wy", 3, yd);
    nb_node loss = nb_sum(g, nb_mul(g, y, wy));
    CHECKF(nb_graph_status(g) == NB_OK, "%s: %s", c->name, nb_last_error());
    if (nb_graph_status(g) != NB_OK) {
        nb_graph_free(g);
        return;
    }
    CHECK_OK(nb_requires_grad(g, x, 1));
    size_t nx = (size_t)c->B * c->C * c->H * c->W, ny = (size_t)c->B * c->Co * Ho * Wo;
    size_t nw = (size_t)wd[0] * wd[1] * wd[2] * wd[3];
    nb_real *xv = malloc(nx * sizeof *xv), *wyv = malloc(ny * sizeof *wyv);
    double *want = malloc(ny * sizeof *want);
    fill_normal(xv, nx, 1);
    fill_normal(wyv, ny, 1);
    /* weights of PyTorch's scale keep y and the loss near 1, so rounding in the
     * large cases (K up to 2304 terms per output) stays below 1e-7 in the
     * finite differences */
    fill_normal(nb_value(g, w), nw, 1 / sqrt((double)(wd[1] * wd[2] * wd[3])));
    if (c->bias) fill_normal(nb_value(g, b), (size_t)c->Co, 1);
    CHECK_OK(nb_set_input(g, x, xv, c->B));
    CHECK_OK(nb_set_input(g, wy, wyv, c->B));
    int nd, dims[NB_MAX_DIMS];
    nb_node_shape(g, y, &nd, dims);
    CHECKF(nd == 4 && dims[0] == c->B && dims[1] == c->Co && dims[2] == Ho && dims[3] == Wo,
           "%s: output [%d, %d, %d, %d], expected [%d, %d, %d, %d]", c->name, dims[0],
           dims[1], dims[2], dims[3], c->B, c->Co, Ho, Wo);
    CHECK_OK(nb_forward(g, loss));
    naive_conv(c, xv, nb_value(g, w), c->bias ? nb_value(g, b) : NULL, want);
    const nb_real *got = nb_value(g, y);
    size_t bad = 0;
    for (size_t k = 0; k < ny; k++)
        if (fabs(got[k] - want[k]) > 1e-12 * (1 + fabs(want[k]))) bad++;
    CHECKF(bad == 0, "%s: %zu of %zu outputs differ from the direct convolution", c->name,
           bad, ny);
    size_t expect = c->per_tensor ? 0 : nx + nw + (c->bias ? (size_t)c->Co : 0);
    gradcheck_ok(g, loss, c->per_tensor, expect, c->name);
    free(xv);
    free(wyv);
    free(want);
    nb_graph_free(g);
}

static void test_conv_configs(void) {
    static const conv_cfg cfgs[] = {
        /* name               B  C  H  W Co kh kw sh sw ph pw dh dw  g bias */
        {"basic",             2, 3, 5, 6, 4, 3, 3, 1, 1, 0, 0, 1, 1, 1, 1, 0},
        {"stride2_pad1",      2, 3, 7, 6, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0},
        {"pad2",              2, 2, 5, 5, 3, 3, 3, 1, 1, 2, 2, 1, 1, 1, 1, 0},
        {"pad2_rect_kernel",  2, 2, 6, 5, 3, 2, 3, 1, 1, 2, 1, 1, 1, 1, 1, 0},
        {"dilation2",         2, 2, 8, 7, 3, 3, 3, 1, 1, 0, 0, 2, 2, 1, 1, 0},
        {"dil2_stride2_pad",  2, 2, 9, 8, 2, 3, 2, 2, 1, 1, 2, 2, 1, 1, 1, 0},
        {"groups2",           2, 4, 5, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, 1, 0},
        {"depthwise",         2, 3, 6, 6, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3, 1, 0},
        {"depthwise_mult2",   2, 3, 5, 6, 6, 3, 2, 2, 2, 0, 0, 1, 1, 3, 1, 0},
        {"no_bias",           2, 3, 5, 5, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0},
        {"no_bias_groups",    2, 4, 4, 6, 4, 2, 2, 1, 2, 0, 1, 1, 1, 2, 0, 0},
        {"kernel_1x1",        2, 4, 3, 5, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0},
        {"kernel_1x1_stride", 2, 2, 5, 5, 2, 1, 1, 2, 2, 0, 0, 1, 1, 1, 1, 0},
        {"whole_input",       2, 2, 3, 4, 2, 5, 4, 1, 1, 1, 0, 1, 1, 1, 1, 0},
        {"stride3_pad2",      2, 1, 7, 7, 2, 3, 3, 3, 3, 2, 2, 1, 1, 1, 1, 0},
        {"stride_gt_kernel",  2, 2, 9, 7, 2, 2, 2, 3, 4, 0, 1, 1, 1, 1, 1, 0},
        {"wide_input",        2, 1, 2, 9, 2, 1, 3, 1, 1, 0, 0, 1, 3, 1, 1, 0},
        {"batch1",            1, 3, 5, 5, 2, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1, 0},
        {"batch1_groups",     1, 4, 5, 4, 4, 3, 2, 1, 1, 1, 0, 1, 1, 2, 1, 0},
        {"batch3",            3, 2, 4, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        /* 16x16 outputs: four samples per product, batch 6 = 4 + 2 */
        {"chunk4_remainder",  6, 2, 18, 18, 3, 3, 3, 1, 1, 0, 0, 1, 1, 1, 1, 64},
        {"chunk4_groups_pad", 6, 4, 16, 16, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2, 1, 64},
        /* one sample's columns and outputs exceed half the scratch budget:
         * chunks of one sample, the product written straight into NCHW
         * (many channels and few outputs keep the loss a short sum, so its
         * rounding stays far below the finite differences' resolution) */
        {"chunk1",            2, 256, 18, 18, 2, 3, 3, 1, 1, 0, 0, 1, 1, 1, 1, 24},
        {"chunk1_groups",     2, 512, 16, 16, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2, 1, 24},
        /* three samples per chunk, batch 5: a full chunk and a partial one */
        {"chunk3_remainder",  5, 256, 14, 14, 2, 3, 3, 1, 1, 0, 0, 1, 1, 1, 1, 24},
        {"chunk3_groups_rem", 5, 512, 12, 12, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2, 1, 24},
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof *cfgs; k++) check_conv(&cfgs[k]);
}

/* The same values at every batch size: a graph run on 5 samples (a chunk of
 * 4 and one of 1), then on each sample alone (the direct path). */
static void test_conv_batch_change(void) {
    nb_graph *g = nb_graph_new();
    int xd[3] = {3, 18, 18};
    nb_node x = nb_input(g, "x", 3, xd);
    nb_node y = nb_conv2d_layer(g, x, 2, 3, 3, NULL, "c");
    CHECK_OK(nb_graph_status(g));
    nb_graph_init(g, &rng);
    size_t per = 3 * 18 * 18, per_y = 2 * 16 * 16;
    nb_real *xv = malloc(5 * per * sizeof *xv), *y5 = malloc(5 * per_y * sizeof *y5);
    fill_normal(xv, 5 * per, 1);
    CHECK_OK(nb_set_input(g, x, xv, 5));
    CHECK_OK(nb_forward(g, y));
    memcpy(y5, nb_value(g, y), 5 * per_y * sizeof *y5);
    int same = 1;
    for (int s = 0; s < 5; s++) {
        CHECK_OK(nb_set_input(g, x, xv + s * per, 1));
        CHECK_OK(nb_forward(g, y));
        const nb_real *y1 = nb_value(g, y);
        for (size_t k = 0; k < per_y; k++)
            if (fabs(y1[k] - y5[s * per_y + k]) > 1e-12) same = 0;
    }
    CHECK(same);
    free(xv);
    free(y5);
    nb_graph_free(g);
}

/* A second backward after one forward adds the same gradients again (the
 * scratch backward reuses must not hold anything it needs twice). */
static void test_conv_backward_twice(void) {
    nb_graph *g = nb_graph_new();
    int xd[3] = {4, 9, 8};
    nb_node x = nb_input(g, "x", 3, xd);
    nb_conv_opts o = {.pad_h = 1, .stride_w = 2, .groups = 2};
    nb_node y = nb_conv2d_layer(g, x, 6, 3, 3, &o, "c");
    nb_node loss = nb_sum(g, nb_mul(g, y, y));
    CHECK_OK(nb_graph_status(g));
    CHECK_OK(nb_graph_init(g, &rng));
    CHECK_OK(nb_requires_grad(g, x, 1));
    nb_real xv[3 * 4 * 9 * 8];
    fill_normal(xv, sizeof xv / sizeof *xv, 1);
    CHECK_OK(nb_set_input(g, x, xv, 3));
    CHECK_OK(nb_forward(g, loss));
    nb_zero_grad(g);
    CHECK_OK(nb_backward(g, loss));
    size_t np = nb_param_count(g);
    nb_real *once = malloc(np * sizeof *once);
    memcpy(once, nb_grads(g), np * sizeof *once);
    CHECK_OK(nb_backward(g, loss));
    int same = 1;
    for (size_t k = 0; k < np; k++)
        if (fabs(nb_grads(g)[k] - 2 * once[k]) > 1e-12 * (1 + fabs(once[k]))) same = 0;
    CHECK(same);
    free(once);
    nb_graph_free(g);
}

static void test_conv_flops(void) {
    nb_graph *g = nb_graph_new();
    int xd[3] = {6, 5, 6}, wd[4] = {4, 3, 3, 3};
    nb_node x = nb_input(g, "x", 3, xd);
    nb_node w = nb_param(g, "w", 4, wd, (nb_init){0});
    nb_node y = nb_conv2d(g, x, w, NB_NONE, 1, 1, 0, 0, 1, 1, 2);
    CHECK_OK(nb_graph_set_batch(g, 2));
    /* 2 * C_out * (C/groups) * kh * kw * Ho * Wo per sample = 2*4*3*9*(3*4) */
    CHECK_CLOSE(nb_node_flops(g, y), 2.0 * 2 * 4 * 3 * 9 * 3 * 4, 0, 0);
    nb_graph_free(g);
}

/* ------------------------------------------------------------------ layer */

static void test_conv_layer(void) {
    nb_graph *g = nb_graph_new();
    int xd[3] = {3, 8, 8};
    nb_node x = nb_input(g, "x", 3, xd);
    nb_node y = nb_conv2d_layer(g, x, 4, 3, 3, NULL, "c1");
    nb_conv_opts o = {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .groups = 2};
    nb_node y2 = nb_conv2d_layer(g, y, 6, 3, 3, &o, "c2");
    nb_conv_opts nb = {.no_bias = 1, .dil_h = 2};
    nb_node y3 = nb_conv2d_layer(g, y2, 2, 2, 1, &nb, NULL);
    CHECK_OK(nb_graph_status(g));
    CHECK(strcmp(nb_node_name(g, y), "c1") == 0);
    CHECK(strcmp(nb_node_op(g, y), "conv2d") == 0);
    CHECK(strcmp(nb_node_name(g, y3), "conv0") == 0);
    CHECK(nb_find(g, "conv0.weight") != NB_NONE && nb_find(g, "conv0.bias") == NB_NONE);
    int nd, d[NB_MAX_DIMS];
    nb_node_shape(g, nb_find(g, "c1.weight"), &nd, d);
    CHECK(nd == 4 && d[0] == 4 && d[1] == 3 && d[2] == 3 && d[3] == 3);
    nb_node_shape(g, nb_find(g, "c1.bias"), &nd, d);
    CHECK(nd == 1 && d[0] == 4);
    nb_node_shape(g, nb_find(g, "c2.weight"), &nd, d);
    CHECK(nd == 4 && d[0] == 6 && d[1] == 2 && d[2] == 3 && d[3] == 3);
    nb_node_shape(g, y2, &nd, d); /* (6 + 2 - 3)/2 + 1 = 3 */
    CHECK(nd == 4 && d[1] == 6 && d[2] == 3 && d[3] == 3);
    nb_node_shape(g, y3, &nd, d); /* height: 3 - 2*(2-1) = 1; width 3 */
    CHECK(nd == 4 && d[1] == 2 && d[2] == 1 && d[3] == 3);
    /* PyTorch's init: weight and bias in U(+-1/sqrt(fan_in)), fan_in = C/groups*kh*kw */
    CHECK_OK(nb_graph_init(g, &rng));
    struct { const char *name; double fan_in; } p[] = {
        {"c1.weight", 27}, {"c1.bias", 27}, {"c2.weight", 18}, {"c2.bias", 18},
        {"conv0.weight", 12}};
    for (size_t k = 0; k < sizeof p / sizeof *p; k++) {
        nb_node h = nb_find(g, p[k].name);
        const nb_real *v = nb_value(g, h);
        size_t n = nb_node_numel(g, h);
        double bound = 1 / sqrt(p[k].fan_in), mx = 0;
        for (size_t j = 0; j < n; j++) mx = fmax(mx, fabs(v[j]));
        CHECKF(mx <= bound && mx > 0.5 * bound, "%s: max |value| %g, bound %g", p[k].name, mx,
               bound);
    }
    nb_graph_free(g);
}

/* ------------------------------------------------------------------ pooling */

typedef struct pool_cfg {
    const char *name;
    int max; /* 1: max pool, 0: average */
    int B, C, H, W, kh, kw, sh, sw, ph, pw, ceil, cip;
    int Ho, Wo; /* expected output size, worked out by hand from PyTorch's rules */
} pool_cfg;

static void check_pool(const pool_cfg *c) {
    nb_graph *g = nb_graph_new();
    int xd[3] = {c->C, c->H, c->W};
    nb_node x = nb_input(g, "x", 3, xd);
    nb_node y = c->max ? nb_max_pool2d(g, x, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw, c->ceil)
                       : nb_avg_pool2d(g, x, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw, c->ceil,
                                       c->cip);
    int yd[3] = {c->C, c->Ho, c->Wo};
    nb_node wy = nb_input(g, "wy", 3, yd);
    nb_node loss = nb_sum(g, nb_mul(g, y, wy));
    CHECKF(nb_graph_status(g) == NB_OK, "%s: %s", c->name, nb_last_error());
    if (nb_graph_status(g) != NB_OK) {
        nb_graph_free(g);
        return;
    }
    CHECK_OK(nb_requires_grad(g, x, 1));
    size_t nx = (size_t)c->B * c->C * c->H * c->W, ny = (size_t)c->B * c->C * c->Ho * c->Wo;
    nb_real *xv = malloc(nx * sizeof *xv), *wyv = malloc(ny * sizeof *wyv);
    if (c->max) fill_distinct(xv, nx);
    else fill_normal(xv, nx, 1);
    fill_normal(wyv, ny, 1);
    CHECK_OK(nb_set_input(g, x, xv, c->B));
    CHECK_OK(nb_set_input(g, wy, wyv, c->B));
    gradcheck_ok(g, loss, 0, nx, c->name);
    free(xv);
    free(wyv);
    nb_graph_free(g);
}

static void test_pool_configs(void) {
    static const pool_cfg cfgs[] = {
        /* name                max B  C  H  W kh kw sh sw ph pw ceil cip Ho Wo */
        {"max_k2",               1, 2, 3, 6, 7, 2, 2, 0, 0, 0, 0, 0, 0, 3, 3},
        {"max_k3s2p1",           1, 2, 2, 7, 6, 3, 3, 2, 2, 1, 1, 0, 0, 4, 3},
        {"max_ceil",             1, 2, 2, 4, 5, 3, 3, 2, 2, 0, 0, 1, 0, 2, 2},
        {"max_floor",            1, 2, 2, 4, 5, 3, 3, 2, 2, 0, 0, 0, 0, 1, 2},
        /* ceil would give 4, but the 4th window would start in the right padding */
        {"max_ceil_corrected",   1, 2, 2, 5, 5, 2, 2, 2, 2, 1, 1, 1, 0, 3, 3},
        {"max_ceil_clip",        1, 2, 2, 6, 6, 3, 3, 2, 2, 1, 1, 1, 0, 4, 4},
        {"max_rect",             1, 2, 2, 7, 9, 2, 3, 1, 2, 1, 1, 0, 0, 8, 5},
        {"max_rect_ceil",        1, 2, 1, 8, 7, 3, 2, 3, 2, 1, 1, 1, 0, 3, 4},
        {"avg_k3s2p1_ceil_cip",  0, 2, 2, 6, 6, 3, 3, 2, 2, 1, 1, 1, 1, 4, 4},
        {"avg_k3s2p1_ceil",      0, 2, 2, 6, 6, 3, 3, 2, 2, 1, 1, 1, 0, 4, 4},
        {"avg_corrected_cip",    0, 2, 2, 5, 5, 2, 2, 2, 2, 1, 1, 1, 1, 3, 3},
        {"avg_corrected",        0, 2, 2, 5, 5, 2, 2, 2, 2, 1, 1, 1, 0, 3, 3},
        {"avg_k3s2_ceil",        0, 2, 2, 4, 5, 3, 3, 2, 2, 0, 0, 1, 1, 2, 2},
        {"avg_rect_pad_cip",     0, 2, 2, 7, 9, 2, 3, 1, 2, 1, 1, 0, 1, 8, 5},
        {"avg_rect_pad",         0, 2, 2, 7, 9, 2, 3, 1, 2, 1, 1, 0, 0, 8, 5},
        {"avg_k2",               0, 2, 3, 6, 7, 2, 2, 0, 0, 0, 0, 0, 1, 3, 3},
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof *cfgs; k++) check_pool(&cfgs[k]);
}

/* A graph pooling one given [1, 1, H, W] image x (k x k windows). */
static nb_graph *pool_graph(int H, int W, int max, int k, int s, int p, int ceil, int cip,
                            const nb_real *x, nb_node *xo, nb_node *yo) {
    nb_graph *g = nb_graph_new();
    int xd[3] = {1, H, W};
    *xo = nb_input(g, "x", 3, xd);
    *yo = max ? nb_max_pool2d(g, *xo, k, k, s, s, p, p, ceil)
              : nb_avg_pool2d(g, *xo, k, k, s, s, p, p, ceil, cip);
    CHECK_OK(nb_graph_status(g));
    CHECK_OK(nb_requires_grad(g, *xo, 1));
    CHECK_OK(nb_set_input(g, *xo, x, 1));
    return g;
}

/* Equal maxima: the first in row-major order is the output's argmax. */
static void test_maxpool_ties(void) {
    nb_real x[9] = {1, 5, 5,
                    5, 2, 5,
                    0, 5, 3};
    nb_node xi, y;
    nb_graph *g = pool_graph(3, 3, 1, 3, 1, 0, 0, 0, x, &xi, &y);
    nb_node loss = nb_sum(g, y);
    CHECK_OK(nb_forward(g, loss));
    CHECK_OK(nb_backward(g, loss));
    const nb_real *dx = nb_grad(g, xi);
    CHECK(nb_value(g, y)[0] == 5);
    for (int k = 0; k < 9; k++) CHECKF(dx[k] == (k == 1), "dx[%d] = %g", k, dx[k]);
    nb_graph_free(g);

    /* the 2x2 stride-2 fast path: windows {4,4,4,4}, {1,3,3,0}, {2,2,7,7}, {-inf x4} */
    nb_real x2[16] = {4, 4, 1, 3,
                      4, 4, 3, 0,
                      2, 2, -INFINITY, -INFINITY,
                      7, 7, -INFINITY, -INFINITY};
    g = pool_graph(4, 4, 1, 2, 2, 0, 0, 0, x2, &xi, &y);
    loss = nb_sum(g, y);
    CHECK_OK(nb_forward(g, loss));
    CHECK_OK(nb_backward(g, loss));
    dx = nb_grad(g, xi);
    const nb_real *v = nb_value(g, y);
    CHECK(v[0] == 4 && v[1] == 3 && v[2] == 7 && v[3] == -INFINITY);
    for (int k = 0; k < 16; k++)
        CHECKF(dx[k] == (k == 0 || k == 3 || k == 12 || k == 10), "2x2 dx[%d] = %g", k, dx[k]);
    nb_graph_free(g);
}

/* Padding is -inf: an all-negative image keeps its own maxima (never 0). */
static void test_maxpool_negative_padding(void) {
    nb_real x[9] = {-9, -8, -7, -6, -5, -4, -3, -2, -1};
    nb_node xi, y;
    nb_graph *g = pool_graph(3, 3, 1, 2, 2, 1, 0, 0, x, &xi, &y); /* out 2x2 */
    CHECK_OK(nb_forward(g, y));
    const nb_real *v = nb_value(g, y);
    nb_real want[4] = {-9, -7, -3, -1}; /* windows {0}, {1,2}, {3,6}, {4,5,7,8} */
    for (int k = 0; k < 4; k++) CHECKF(v[k] == want[k], "y[%d] = %g, want %g", k, v[k], want[k]);
    nb_graph_free(g);
}

static void test_maxpool_nan(void) {
    nb_real x[16];
    for (int k = 0; k < 16; k++) x[k] = k;
    x[5] = (nb_real)NAN; /* in the top-left 2x2 window */
    nb_node xi, y;
    nb_graph *g = pool_graph(4, 4, 1, 2, 2, 0, 0, 0, x, &xi, &y);
    nb_node loss = nb_sum(g, y);
    CHECK_OK(nb_forward(g, loss));
    const nb_real *v = nb_value(g, y);
    CHECK(isnan(v[0]) && v[1] == 7 && v[2] == 13 && v[3] == 15);
    CHECK_OK(nb_backward(g, loss));
    CHECK(nb_grad(g, xi)[5] == 1 && nb_grad(g, xi)[0] == 0);
    nb_graph_free(g);
}

/* Divisors worked out by hand on an image of ones. */
static void test_avgpool_divisors(void) {
    nb_real ones[36];
    for (int k = 0; k < 36; k++) ones[k] = 1;
    nb_node xi, y;
    /* 5x5, k2 s2 p1 ceil: 3 windows per axis, rows [-1,1), [1,3), [3,5) */
    nb_graph *g = pool_graph(5, 5, 0, 2, 2, 1, 1, 1, ones, &xi, &y);
    CHECK_OK(nb_forward(g, y));
    nb_real want_cip[9] = {0.25, 0.5, 0.5, 0.5, 1, 1, 0.5, 1, 1};
    for (int k = 0; k < 9; k++) CHECK_CLOSE(nb_value(g, y)[k], want_cip[k], 1e-15, 0);
    nb_graph_free(g);
    g = pool_graph(5, 5, 0, 2, 2, 1, 1, 0, ones, &xi, &y);
    CHECK_OK(nb_forward(g, y));
    for (int k = 0; k < 9; k++) CHECK_CLOSE(nb_value(g, y)[k], 1, 1e-15, 0);
    nb_graph_free(g);
    /* 6x6, k3 s2 p1 ceil: 4 windows per axis, rows [-1,2), [1,4), [3,6), [5,8);
     * the last is clipped to the padded input [-1,7): span 2, one real row.
     * count_include_pad divides by the clipped spans: 3*3, 3*2, 2*2 */
    g = pool_graph(6, 6, 0, 3, 2, 1, 1, 1, ones, &xi, &y);
    CHECK_OK(nb_forward(g, y));
    const nb_real *v = nb_value(g, y);
    CHECK_CLOSE(v[0], 4.0 / 9, 1e-15, 0);  /* 2x2 real of 3x3 */
    CHECK_CLOSE(v[1], 6.0 / 9, 1e-15, 0);  /* 2x3 of 3x3 */
    CHECK_CLOSE(v[3], 2.0 / 6, 1e-15, 0);  /* 2x1 of 3x2 */
    CHECK_CLOSE(v[15], 1.0 / 4, 1e-15, 0); /* 1x1 of 2x2 */
    nb_node loss = nb_sum(g, y);
    CHECK_OK(nb_forward(g, loss));
    CHECK_OK(nb_backward(g, loss));
    /* x[5][5] lies in the last two windows of each axis: 1/9 + 2/6 + 1/4 */
    CHECK_CLOSE(nb_grad(g, xi)[35], 1.0 / 9 + 2.0 / 6 + 0.25, 1e-15, 0);
    nb_graph_free(g);
}

static void test_global_avg_pool(void) {
    nb_graph *g = nb_graph_new();
    int xd[3] = {3, 4, 5};
    nb_node x = nb_input(g, "x", 3, xd);
    nb_node y = nb_global_avg_pool2d(g, x);
    int yd[1] = {3};
    nb_node wy = nb_input(g, "wy", 1, yd);
    nb_node loss = nb_sum(g, nb_mul(g, y, wy));
    CHECK_OK(nb_graph_status(g));
    CHECK_OK(nb_requires_grad(g, x, 1));
    nb_real xv[120], wyv[6];
    fill_normal(xv, 120, 1);
    fill_normal(wyv, 6, 1);
    CHECK_OK(nb_set_input(g, x, xv, 2));
    CHECK_OK(nb_set_input(g, wy, wyv, 2));
    CHECK_OK(nb_forward(g, loss));
    int nd, d[NB_MAX_DIMS];
    nb_node_shape(g, y, &nd, d);
    CHECK(nd == 2 && d[0] == 2 && d[1] == 3);
    for (int p = 0; p < 6; p++) {
        double s = 0;
        for (int k = 0; k < 20; k++) s += xv[p * 20 + k];
        CHECK_CLOSE(nb_value(g, y)[p], s / 20, 1e-15, 1e-14);
    }
    gradcheck_ok(g, loss, 0, 120, "global_avg_pool2d");
    nb_graph_free(g);
}

/* conv -> relu -> max pool -> flatten -> dense -> cross-entropy, every
 * parameter and the input checked. */
static void test_small_cnn(void) {
    nb_graph *g = nb_graph_new();
    int xd[3] = {2, 7, 6}, one = 1;
    nb_node x = nb_input(g, "x", 3, xd);
    nb_node t = nb_input(g, "t", 0, &one);
    nb_conv_opts o = {.pad_h = 1, .pad_w = 1};
    nb_node h = nb_conv2d_layer(g, x, 3, 3, 3, &o, "conv1");
    h = nb_relu(g, h);
    h = nb_max_pool2d(g, h, 2, 2, 0, 0, 0, 0, 1); /* ceil: 7x6 -> 4x3 */
    h = nb_conv2d_layer(g, h, 4, 2, 2, &(nb_conv_opts){.groups = 1}, "conv2"); /* 3x2 */
    h = nb_flatten(g, nb_relu(g, h));
    h = nb_dense(g, h, 5, "fc", NULL);
    nb_node loss = nb_cross_entropy(g, h, t, 0);
    CHECK_OK(nb_graph_status(g));
    CHECK_OK(nb_graph_init(g, &rng));
    CHECK_OK(nb_requires_grad(g, x, 1));
    nb_real xv[2 * 84], tv[2] = {1, 4};
    fill_normal(xv, 2 * 84, 1);
    CHECK_OK(nb_set_input(g, x, xv, 2));
    CHECK_OK(nb_set_input(g, t, tv, 2));
    /* every scalar: x 168, conv1 54+3, conv2 48+4, fc 120+5 */
    gradcheck_ok(g, loss, 0, 168 + 57 + 52 + 125, "small CNN");
    nb_graph_free(g);
}

/* ------------------------------------------------------------------ errors */

static void expect_error(nb_graph *g, nb_node h, nb_status status, const char *a,
                         const char *b) {
    const char *msg = nb_last_error();
    CHECKF(h == NB_NONE && nb_graph_status(g) == status && strstr(msg, a) &&
               (!b || strstr(msg, b)),
           "got node %d, status %s, message \"%s\"; expected \"%s\"%s%s", h,
           nb_status_name(nb_graph_status(g)), msg, a, b ? " and " : "", b ? b : "");
    nb_graph_free(g);
}

static nb_graph *with_input(int C, int H, int W, nb_node *x) {
    nb_graph *g = nb_graph_new();
    int xd[3] = {C, H, W};
    *x = nb_input(g, "x", 3, xd);
    return g;
}

static nb_node conv_w(nb_graph *g, nb_node x, int o, int c, int kh, int kw, int s, int p,
                      int d, int groups) {
    int wd[4] = {o, c, kh, kw};
    nb_node w = nb_param(g, "w", 4, wd, (nb_init){0});
    return nb_conv2d(g, x, w, NB_NONE, s, s, p, p, d, d, groups);
}

static void test_errors(void) {
    nb_node x;
    nb_graph *g = with_input(4, 5, 5, &x);
    expect_error(g, conv_w(g, x, 6, 2, 3, 3, 1, 0, 1, 3), NB_ERR_SHAPE,
                 "conv2d: in_channels of input [1, 4, 5, 5] and weight [6, 2, 3, 3]",
                 "divisible by groups = 3");
    g = with_input(4, 5, 5, &x);
    expect_error(g, conv_w(g, x, 3, 2, 3, 3, 1, 0, 1, 2), NB_ERR_SHAPE,
                 "conv2d: out_channels of input [1, 4, 5, 5] and weight [3, 2, 3, 3]",
                 "divisible by groups = 2");
    g = with_input(3, 5, 5, &x);
    expect_error(g, conv_w(g, x, 4, 2, 3, 3, 1, 0, 1, 1), NB_ERR_SHAPE,
                 "has 3 channels, so weight 'w' must be [4, 3, kh, kw] (groups = 1), but it "
                 "is [4, 2, 3, 3]", NULL);
    g = with_input(1, 3, 4, &x);
    expect_error(g, conv_w(g, x, 1, 1, 5, 3, 1, 0, 1, 1), NB_ERR_SHAPE,
                 "conv2d: kernel 5x3 with dilation 1x1 spans 5x3, larger than the padded "
                 "input 3x4", "input [1, 1, 3, 4], padding 0x0");
    g = with_input(1, 5, 5, &x);
    expect_error(g, conv_w(g, x, 1, 1, 3, 3, 1, 0, 3, 1), NB_ERR_SHAPE,
                 "with dilation 3x3 spans 7x7, larger than the padded input 5x5", NULL);
    g = with_input(1, 5, 5, &x);
    expect_error(g, conv_w(g, x, 1, 1, 3, 3, 0, 0, 1, 1), NB_ERR_ARG, "conv2d: stride 0x0",
                 NULL);
    g = with_input(1, 5, 5, &x);
    expect_error(g, conv_w(g, x, 1, 1, 3, 3, 1, 0, 0, 1), NB_ERR_ARG, "conv2d: dilation 0x0",
                 NULL);
    g = with_input(1, 5, 5, &x);
    expect_error(g, conv_w(g, x, 1, 1, 3, 3, 1, -1, 1, 1), NB_ERR_ARG,
                 "conv2d: padding -1x-1", NULL);
    g = with_input(2, 5, 5, &x);
    expect_error(g, conv_w(g, x, 2, 2, 3, 3, 1, 0, 1, 0), NB_ERR_ARG,
                 "conv2d: groups 0 is not positive", NULL);
    /* weight of the wrong rank, bias of the wrong length, input not 4-D */
    g = with_input(2, 5, 5, &x);
    {
        int wd[2] = {3, 18};
        nb_node w = nb_param(g, "w", 2, wd, (nb_init){0});
        expect_error(g, nb_conv2d(g, x, w, NB_NONE, 1, 1, 0, 0, 1, 1, 1), NB_ERR_SHAPE,
                     "conv2d: weight 'w' has shape [3, 18]", "[out_channels, in_channels/groups");
    }
    g = with_input(2, 5, 5, &x);
    {
        int wd[4] = {3, 2, 3, 3}, bd = 4;
        nb_node w = nb_param(g, "w", 4, wd, (nb_init){0});
        nb_node b = nb_param(g, "b", 1, &bd, (nb_init){0});
        expect_error(g, nb_conv2d(g, x, w, b, 1, 1, 0, 0, 1, 1, 1), NB_ERR_SHAPE,
                     "conv2d: bias 'b' has shape [4]; expected [3]", NULL);
    }
    {
        g = nb_graph_new();
        int xd[2] = {5, 5};
        nb_node x2 = nb_input(g, "x", 2, xd);
        expect_error(g, nb_conv2d_layer(g, x2, 3, 3, 3, NULL, "c"), NB_ERR_SHAPE,
                     "conv2d: input 'x' has shape [1, 5, 5]; expected [batch, channels, "
                     "height, width]", NULL);
        g = nb_graph_new();
        x2 = nb_input(g, "x", 2, xd);
        expect_error(g, nb_max_pool2d(g, x2, 2, 2, 0, 0, 0, 0, 0), NB_ERR_SHAPE,
                     "max_pool2d: input 'x' has shape [1, 5, 5]", NULL);
        g = nb_graph_new();
        x2 = nb_input(g, "x", 2, xd);
        expect_error(g, nb_global_avg_pool2d(g, x2), NB_ERR_SHAPE,
                     "global_avg_pool2d: input 'x' has shape [1, 5, 5]", NULL);
    }
    g = with_input(3, 5, 5, &x);
    nb_conv_opts o = {.groups = 2};
    expect_error(g, nb_conv2d_layer(g, x, 4, 3, 3, &o, "c"), NB_ERR_SHAPE,
                 "conv2d: input [1, 3, 5, 5] has 3 channels", "divisible by groups = 2");
    g = with_input(3, 5, 5, &x);
    expect_error(g, nb_conv2d_layer(g, x, 0, 3, 3, NULL, "c"), NB_ERR_ARG,
                 "conv2d: out_channels 0", NULL);
    /* pooling */
    g = with_input(1, 5, 5, &x);
    expect_error(g, nb_max_pool2d(g, x, 3, 3, 1, 1, 2, 1, 0), NB_ERR_ARG,
                 "max_pool2d: padding 2x1 must be between 0 and half the kernel 3x3", NULL);
    g = with_input(1, 3, 3, &x);
    expect_error(g, nb_avg_pool2d(g, x, 6, 2, 0, 0, 1, 0, 0, 1), NB_ERR_SHAPE,
                 "avg_pool2d: kernel 6x2 is larger than the padded input 5x3", NULL);
    g = with_input(1, 5, 5, &x);
    expect_error(g, nb_avg_pool2d(g, x, 0, 2, 0, 0, 0, 0, 0, 1), NB_ERR_ARG,
                 "avg_pool2d: kernel 0x2", NULL);
    g = with_input(1, 5, 5, &x);
    expect_error(g, nb_max_pool2d(g, x, 2, 2, -1, 1, 0, 0, 0), NB_ERR_ARG,
                 "max_pool2d: stride -1x1", NULL);
    /* NB_NONE in: NB_NONE out, the first message kept */
    g = with_input(1, 5, 5, &x);
    nb_node bad = conv_w(g, x, 1, 1, 9, 9, 1, 0, 1, 1);
    nb_node after = nb_max_pool2d(g, bad, 2, 2, 0, 0, 0, 0, 0);
    expect_error(g, after, NB_ERR_SHAPE, "conv2d: kernel 9x9", NULL);
}

int main(void) {
    nb_rng_seed(&rng, 64);
    test_conv_configs();
    test_conv_batch_change();
    test_conv_backward_twice();
    test_conv_flops();
    test_conv_layer();
    test_pool_configs();
    test_maxpool_ties();
    test_maxpool_negative_padding();
    test_maxpool_nan();
    test_avgpool_divisors();
    test_global_avg_pool();
    test_small_cnn();
    test_errors();
    TEST_END();
}
