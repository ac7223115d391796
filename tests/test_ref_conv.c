/* Convolution and pooling of the float library against PyTorch: output size,
 * forward values and the gradient of every input, from
 * tests/reference/conv.ref (written by tests/reference/conv.py).  Each case
 * names its op and hyperparameters; the loss is sum(y * wy) with wy from the
 * file. */
#include "nabla.h"
#include "refdata.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RTOL 1e-5
/* conv.py writes this many cases; fewer means the file is stale or cut */
#define MIN_CASES 37

enum { OP_CONV = 0, OP_MAXPOOL, OP_AVGPOOL, OP_GAP };

static const ref_tensor *need(const ref_case *c, const char *name) {
    const ref_tensor *t = ref_get(c, name);
    CHECKF(t != NULL, "case %s: tensor '%s' missing", c->name, name);
    return t;
}

static int attr(const ref_case *c, const char *name) { return (int)ref_scalar(c, name, 0); }

static nb_real *to_real(const ref_tensor *t) {
    nb_real *v = malloc(t->n * sizeof *v);
    if (v)
        for (size_t k = 0; k < t->n; k++) v[k] = (nb_real)t->v[k];
    return v;
}

static void fill(nb_real *dst, const ref_tensor *t) {
    for (size_t k = 0; k < t->n; k++) dst[k] = (nb_real)t->v[k];
}

static void run_case(const ref_case *c) {
    const ref_tensor *tx = need(c, "x"), *twy = need(c, "wy"), *ty = need(c, "y");
    if (!tx || !twy || !ty) return;
    int op = attr(c, "op");
    nb_graph *g = nb_graph_new();
    nb_node x = nb_input(g, "x", tx->ndim - 1, tx->dims + 1);
    CHECK_OK(nb_requires_grad(g, x, 1));
    nb_node w = NB_NONE, b = NB_NONE, y = NB_NONE;
    const ref_tensor *tw = NULL, *tb = NULL;
    switch (op) {
    case OP_CONV:
        tw = need(c, "w");
        if (!tw) break;
        w = nb_param(g, "w", tw->ndim, tw->dims, (nb_init){0});
        if (attr(c, "bias")) {
            tb = need(c, "b");
            if (!tb) break;
            b = nb_param(g, "b", tb->ndim, tb->dims, (nb_init){0});
        }
        y = nb_conv2d(g, x, w, b, attr(c, "stride_h"), attr(c, "stride_w"), attr(c, "pad_h"),
                      attr(c, "pad_w"), attr(c, "dil_h"), attr(c, "dil_w"), attr(c, "groups"));
        break;
    case OP_MAXPOOL:
        y = nb_max_pool2d(g, x, attr(c, "kh"), attr(c, "kw"), attr(c, "stride_h"),
                          attr(c, "stride_w"), attr(c, "pad_h"), attr(c, "pad_w"),
                          attr(c, "ceil_mode"));
        break;
    case OP_AVGPOOL:
        y = nb_avg_pool2d(g, x, attr(c, "kh"), attr(c, "kw"), attr(c, "stride_h"),
                          attr(c, "stride_w"), attr(c, "pad_h"), attr(c, "pad_w"),
                          attr(c, "ceil_mode"), attr(c, "count_include_pad"));
        break;
    case OP_GAP: y = nb_global_avg_pool2d(g, x); break;
    default: CHECKF(0, "case %s: unknown op %d", c->name, op);
    }
    nb_node wy = nb_input(g, "wy", twy->ndim - 1, twy->dims + 1);
    nb_node loss = nb_sum(g, nb_mul(g, y, wy));
    nb_status st = nb_graph_status(g);
    CHECKF(st == NB_OK, "case %s: build failed: %s", c->name, nb_last_error());
    if (st != NB_OK) {
        nb_graph_free(g);
        return;
    }
    /* the output size is PyTorch's (ceil-mode rules included) */
    int ndim, dims[NB_MAX_DIMS], same;
    int batch = tx->dims[0];
    CHECK_OK(nb_graph_set_batch(g, batch));
    CHECK_OK(nb_node_shape(g, y, &ndim, dims));
    same = ndim == ty->ndim;
    for (int d = 0; same && d < ndim; d++) same = dims[d] == ty->dims[d];
    CHECKF(same, "case %s: output has %d dims [%d, %d, %d, %d], PyTorch %d dims "
           "[%d, %d, %d, %d]", c->name, ndim, dims[0], dims[1], dims[2], dims[3], ty->ndim,
           ty->dims[0], ty->dims[1], ty->dims[2], ty->dims[3]);
    if (!same) {
        nb_graph_free(g);
        return;
    }
    if (tw) fill(nb_value(g, w), tw);
    if (tb) fill(nb_value(g, b), tb);
    nb_real *xv = to_real(tx), *wyv = to_real(twy);
    if (xv && wyv) {
        CHECK_OK(nb_set_input(g, x, xv, batch));
        CHECK_OK(nb_set_input(g, wy, wyv, batch));
    }
    free(xv);
    free(wyv);
    CHECK_OK(nb_forward(g, loss));
    nb_zero_grad(g);
    CHECK_OK(nb_backward(g, loss));
    char label[160];
    snprintf(label, sizeof label, "%s: y", c->name);
    CHECK(ref_check(label, nb_value(g, y), nb_node_numel(g, y), ty, RTOL) == 0);
    snprintf(label, sizeof label, "%s: dx", c->name);
    CHECK(ref_check(label, nb_grad(g, x), tx->n, need(c, "dx"), RTOL) == 0);
    if (tw) {
        snprintf(label, sizeof label, "%s: dw", c->name);
        CHECK(ref_check(label, nb_grad(g, w), tw->n, need(c, "dw"), RTOL) == 0);
    }
    if (tb) {
        snprintf(label, sizeof label, "%s: db", c->name);
        CHECK(ref_check(label, nb_grad(g, b), tb->n, need(c, "db"), RTOL) == 0);
    }
    nb_graph_free(g);
}

int main(void) {
    ref_file *ref = ref_load("tests/reference/conv.ref");
    CHECK(ref != NULL);
    if (!ref) TEST_END();
    CHECKF(ref->nc >= MIN_CASES, "conv.ref has %d cases, expected at least %d", ref->nc,
           MIN_CASES);
    int seen[4] = {0};
    for (int k = 0; k < ref->nc; k++) {
        run_case(&ref->c[k]);
        int op = attr(&ref->c[k], "op");
        if (op >= 0 && op < 4) seen[op]++;
    }
    CHECKF(seen[0] >= 13 && seen[1] >= 8 && seen[2] >= 14 && seen[3] >= 2,
           "cases per op: conv %d, max %d, avg %d, global %d", seen[0], seen[1], seen[2],
           seen[3]);
    ref_free(ref);
    TEST_END();
}
