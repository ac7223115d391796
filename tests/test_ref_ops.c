/* Basic ops and losses of the float library against PyTorch: forward values
 * and the gradient of every input, from tests/reference/ops.ref (written by
 * tests/reference/ops.py).  Inputs and the upstream gradient come from the
 * file; the upstream gradient is wy (loss = sum(y * wy)) for tensor outputs
 * and gscale (loss = gscale * y) for scalar ones. */
#include "nabla.h"
#include "refdata.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RTOL 1e-5
#define MAX_FEED 12

static ref_file *ref;

/* One leaf of the graph under test and the reference tensor that fills it. */
typedef struct feed {
    nb_node node;
    const ref_tensor *t;
    int batched, grad;
} feed;

typedef struct ctx {
    nb_graph *g;
    const ref_case *c;
    feed f[MAX_FEED];
    int nf;
} ctx;

static const ref_tensor *need(const ref_case *c, const char *name) {
    const ref_tensor *t = ref_get(c, name);
    CHECKF(t != NULL, "case %s: tensor '%s' missing", c->name, name);
    return t;
}

/* A leaf named `name` from the case: a batched input (its first reference
 * dim is the batch) or, unbatched, a parameter.  grad: request a gradient. */
static nb_node leaf(ctx *x, const char *name, int batched, int grad) {
    const ref_tensor *t = need(x->c, name);
    if (!t || x->nf == MAX_FEED) return NB_NONE;
    nb_node n;
    if (batched) {
        n = nb_input(x->g, name, t->ndim - 1, t->dims + 1);
        if (grad) CHECK_OK(nb_requires_grad(x->g, n, 1));
    } else {
        n = nb_param(x->g, name, t->ndim, t->dims, (nb_init){0});
    }
    x->f[x->nf++] = (feed){n, t, batched, grad || !batched};
    return n;
}

static void copy_in(nb_real *dst, const ref_tensor *t) {
    for (size_t k = 0; k < t->n; k++) dst[k] = (nb_real)t->v[k];
}

/* Add the upstream-gradient tail to y, run forward and backward, compare. */
static void run(ctx *x, nb_node y) {
    nb_graph *g = x->g;
    const ref_case *c = x->c;
    nb_node loss = NB_NONE, wy = NB_NONE;
    const ref_tensor *twy = NULL;
    if (y != NB_NONE && !nb_node_is_batched(g, y) && nb_node_numel(g, y) == 1) {
        loss = nb_scale(g, y, (nb_real)ref_scalar(c, "gscale", 1));
    } else if (y != NB_NONE) {
        twy = need(c, "wy");
        if (!twy) return;
        int batched = nb_node_is_batched(g, y);
        if (batched) wy = nb_input(g, "wy", twy->ndim - 1, twy->dims + 1);
        else wy = nb_constant(g, "wy", twy->ndim, twy->dims, NULL);
        loss = nb_sum(g, nb_mul(g, y, wy));
    }
    nb_status st = nb_graph_status(g);
    CHECKF(st == NB_OK, "case %s: build failed: %s", c->name, nb_last_error());
    if (st != NB_OK) return;
    /* fill leaves only now: building more nodes re-plans the arena */
    int batch = 0;
    for (int k = 0; k < x->nf; k++)
        if (x->f[k].batched) batch = x->f[k].t->dims[0];
    if (batch) CHECK_OK(nb_graph_set_batch(g, batch));
    for (int k = 0; k < x->nf; k++) {
        const ref_tensor *t = x->f[k].t;
        if (!x->f[k].batched) {
            copy_in(nb_value(g, x->f[k].node), t);
            continue;
        }
        nb_real *data = malloc(t->n * sizeof *data);
        if (!data) continue;
        copy_in(data, t);
        CHECK_OK(nb_set_input(g, x->f[k].node, data, batch));
        free(data);
    }
    if (twy) copy_in(nb_value(g, wy), twy);
    CHECK_OK(nb_forward(g, loss));
    nb_zero_grad(g);
    CHECK_OK(nb_backward(g, loss));
    char label[256];
    snprintf(label, sizeof label, "%s: y", c->name);
    CHECK(ref_check(label, nb_value(g, y), nb_node_numel(g, y), need(c, "y"), RTOL) == 0);
    for (int k = 0; k < x->nf; k++) {
        if (!x->f[k].grad) continue;
        char dname[72];
        snprintf(dname, sizeof dname, "d%s", x->f[k].t->name);
        snprintf(label, sizeof label, "%s: %s", c->name, dname);
        CHECK(ref_check(label, nb_grad(g, x->f[k].node), x->f[k].t->n, need(c, dname),
                        RTOL) == 0);
    }
}

static int begin(ctx *x, const char *name) {
    memset(x, 0, sizeof *x);
    x->c = ref_case_get(ref, name);
    CHECKF(x->c != NULL, "reference case %s missing", name);
    if (!x->c) return 0;
    x->g = nb_graph_new();
    return x->g != NULL;
}

static void end(ctx *x) { nb_graph_free(x->g); }

static void test_linear(const char *name, int bias) {
    ctx x;
    if (!begin(&x, name)) return;
    nb_node in = leaf(&x, "x", 1, 1), w = leaf(&x, "w", 0, 1);
    nb_node b = bias ? leaf(&x, "b", 0, 1) : NB_NONE;
    run(&x, nb_linear(x.g, in, w, b));
    end(&x);
}

static void test_matmul(void) {
    ctx x;
    if (!begin(&x, "matmul")) return;
    nb_node a = leaf(&x, "a", 1, 1), b = leaf(&x, "b", 0, 1);
    run(&x, nb_matmul(x.g, a, b));
    end(&x);
}

static void test_elementwise(void) {
    static const char *ops[] = {"add", "sub", "mul"};
    static const char *forms[] = {"same", "vec", "row", "one", "left", "leftrow",
                                  "leftone", "trail", "params"};
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++)
        for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
            char name[64];
            snprintf(name, sizeof name, "%s_%s", ops[o], forms[f]);
            ctx x;
            if (!begin(&x, name)) continue;
            nb_node a = leaf(&x, "a", (int)ref_scalar(x.c, "a_batched", 0), 1);
            nb_node b = leaf(&x, "b", (int)ref_scalar(x.c, "b_batched", 0), 1);
            nb_node y = o == 0 ? nb_add(x.g, a, b) : o == 1 ? nb_sub(x.g, a, b)
                                                           : nb_mul(x.g, a, b);
            run(&x, y);
            end(&x);
        }
}

static void test_unary(const char *name) {
    ctx x;
    if (!begin(&x, name)) return;
    nb_node in = leaf(&x, "x", 1, 1), y;
    if (strcmp(name, "scale") == 0) y = nb_scale(x.g, in, (nb_real)ref_scalar(x.c, "s", 0));
    else if (strcmp(name, "sum") == 0) y = nb_sum(x.g, in);
    else if (strcmp(name, "mean") == 0) y = nb_mean(x.g, in);
    else if (strcmp(name, "flatten") == 0) y = nb_flatten(x.g, in);
    else {
        int dims[2] = {(int)ref_scalar(x.c, "d0", 0), (int)ref_scalar(x.c, "d1", 0)};
        y = nb_reshape(x.g, in, (int)ref_scalar(x.c, "ndim", 0), dims);
    }
    run(&x, y);
    end(&x);
}

static void test_concat(const char *name) {
    ctx x;
    if (!begin(&x, name)) return;
    int n = (int)ref_scalar(x.c, "n", 0);
    nb_node xs[8];
    for (int k = 0; k < n && k < 8; k++) {
        char nm[8];
        snprintf(nm, sizeof nm, "x%d", k);
        xs[k] = leaf(&x, nm, 1, 1);
    }
    run(&x, nb_concat(x.g, n, xs, (int)ref_scalar(x.c, "axis", 0)));
    end(&x);
}

static void test_loss(const char *name) {
    ctx x;
    if (!begin(&x, name)) return;
    int labels = strstr(name, "labels") != NULL;
    nb_node a = leaf(&x, strncmp(name, "mse", 3) == 0 ? "p" : "x", 1, 1);
    nb_node t = leaf(&x, "t", 1, !labels);
    nb_node y;
    if (strncmp(name, "mse", 3) == 0) y = nb_mse_loss(x.g, a, t);
    else if (strncmp(name, "bce", 3) == 0) y = nb_bce_with_logits(x.g, a, t);
    else y = nb_cross_entropy(x.g, a, t, (nb_real)ref_scalar(x.c, "eps", -1));
    run(&x, y);
    end(&x);
}

int main(void) {
    ref = ref_load("tests/reference/ops.ref");
    CHECK(ref != NULL);
    if (!ref) TEST_END();
    test_linear("linear_bias", 1);
    test_linear("linear_nobias", 0);
    test_linear("linear_rows", 1);
    test_matmul();
    test_elementwise();
    test_unary("scale");
    test_unary("sum");
    test_unary("mean");
    test_unary("reshape");
    test_unary("flatten");
    test_concat("concat_mid");
    test_concat("concat_last");
    test_concat("concat_six");
    test_loss("mse");
    static const char *ce[] = {"ce_labels", "ce_probs", "ce_loose", "ce_big_labels",
                               "ce_big_probs"};
    for (size_t k = 0; k < sizeof ce / sizeof *ce; k++) {
        char name[64];
        test_loss(ce[k]);
        snprintf(name, sizeof name, "%s_smooth", ce[k]);
        test_loss(name);
    }
    /* confident rows: logits [a, 0, 0], labelled with a */
    static const char *sure[] = {"10_5", "14", "20", "30"};
    for (size_t k = 0; k < sizeof sure / sizeof *sure; k++)
        for (int kind = 0; kind < 4; kind++) {
            char name[64];
            snprintf(name, sizeof name, "ce_sure_%s_%s%s", kind & 1 ? "probs" : "labels", sure[k],
                     kind & 2 ? "_smooth" : "");
            test_loss(name);
        }
    test_loss("bce");
    test_loss("bce_small");
    ref_free(ref);
    TEST_END();
}
