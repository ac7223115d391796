/* Activation ops in the float build against PyTorch float64 references
 * (tests/reference/activations.py): forward values and the input gradient of
 * loss = sum(f(x) * w) for a fixed upstream w, on inputs that include exact
 * zeros, the softplus thresholds and values up to +-100. */
#include "nabla.h"
#include "refdata.h"
#include "test.h"

#include <math.h>

#define REF_PATH "tests/reference/activations.ref"

/* Build the op a reference case names, with the case's parameters. */
static nb_node build_op(nb_graph *g, const ref_case *c, nb_node x) {
    const char *name = c->name;
    double slope = ref_scalar(c, "slope", NAN), alpha = ref_scalar(c, "alpha", NAN);
    double beta = ref_scalar(c, "beta", NAN), threshold = ref_scalar(c, "threshold", NAN);
    if (!strcmp(name, "relu")) return nb_relu(g, x);
    if (!strncmp(name, "leaky_relu", 10)) return nb_leaky_relu(g, x, (nb_real)slope);
    if (!strcmp(name, "abs")) return nb_abs(g, x);
    if (!strcmp(name, "sigmoid")) return nb_sigmoid(g, x);
    if (!strcmp(name, "tanh")) return nb_tanh(g, x);
    if (!strcmp(name, "gelu")) return nb_gelu(g, x, 0);
    if (!strcmp(name, "gelu_tanh")) return nb_gelu(g, x, 1);
    if (!strcmp(name, "silu")) return nb_silu(g, x);
    if (!strncmp(name, "hardswish", 9)) return nb_hardswish(g, x);
    if (!strncmp(name, "elu", 3)) return nb_elu(g, x, (nb_real)alpha);
    if (!strncmp(name, "softplus", 8))
        return nb_softplus(g, x, (nb_real)beta, (nb_real)threshold);
    if (!strcmp(name, "softmax")) return nb_softmax(g, x);
    if (!strcmp(name, "log_softmax")) return nb_log_softmax(g, x);
    fprintf(stderr, "unknown reference case %s\n", name);
    return NB_NONE;
}

/* x is a batched input whose batch is the reference's first dimension; w
 * enters as a constant of the full shape through nb_mul, then nb_sum.  The
 * batch size is set before building, since nb_mul checks the constant's
 * shape against the batched one when it is built. */
static void check_case(const ref_case *c) {
    const ref_tensor *xt = ref_get(c, "x"), *wt = ref_get(c, "w");
    CHECKF(xt && wt && xt->ndim >= 2, "case %s lacks x or w", c->name);
    if (!xt || !wt || xt->ndim < 2) return;
    nb_real xs[256], ws[256];
    CHECKF(xt->n <= 256 && wt->n == xt->n, "case %s: bad sizes", c->name);
    if (xt->n > 256 || wt->n != xt->n) return;
    for (size_t k = 0; k < xt->n; k++) {
        xs[k] = (nb_real)xt->v[k];
        ws[k] = (nb_real)wt->v[k];
    }
    nb_graph *g = nb_graph_new();
    CHECK_OK(nb_graph_set_batch(g, xt->dims[0]));
    nb_node x = nb_input(g, "x", xt->ndim - 1, xt->dims + 1);
    nb_node w = nb_input(g, "w", xt->ndim - 1, xt->dims + 1);
    nb_node y = build_op(g, c, x);
    nb_node loss = nb_sum(g, nb_mul(g, y, w));
    CHECK_OK(nb_graph_status(g));
    if (nb_graph_status(g) != NB_OK) {
        nb_graph_free(g);
        return;
    }
    const char *op = nb_node_op(g, y); /* case names are the op's name plus a variant */
    CHECKF(!strncmp(c->name, op, strlen(op)), "case %s built op %s", c->name, op);
    CHECK_OK(nb_requires_grad(g, x, 1));
    CHECK_OK(nb_set_input(g, x, xs, xt->dims[0]));
    CHECK_OK(nb_set_input(g, w, ws, xt->dims[0]));
    CHECK_OK(nb_forward(g, loss));
    CHECK_OK(nb_backward(g, loss));
    char label[128];
    snprintf(label, sizeof label, "%s forward", c->name);
    CHECKF(ref_check(label, nb_value(g, y), nb_node_numel(g, y), ref_get(c, "y"), 1e-5) == 0,
           "%s", label);
    snprintf(label, sizeof label, "%s input gradient", c->name);
    CHECKF(ref_check(label, nb_grad(g, x), nb_node_numel(g, x), ref_get(c, "dx"), 1e-5) == 0,
           "%s", label);
    nb_graph_free(g);
}

/* The float build must not overflow either: sigmoid, silu and softplus of
 * +-1000 (exp(1000) is inf in float) stay finite. */
static void test_float_extremes(void) {
    nb_graph *g = nb_graph_new();
    int n = 4;
    nb_node x = nb_input(g, "x", 1, &n);
    nb_node ops[4] = {nb_sigmoid(g, x), nb_silu(g, x), nb_softplus(g, x, 1, INFINITY),
                      nb_log_softmax(g, x)};
    nb_node loss = nb_sum(g, nb_add(g, nb_add(g, ops[0], ops[1]), nb_add(g, ops[2], ops[3])));
    CHECK_OK(nb_graph_status(g));
    nb_real xs[4] = {-1000, 1000, -100, 0};
    CHECK_OK(nb_requires_grad(g, x, 1));
    CHECK_OK(nb_set_input(g, x, xs, 1));
    CHECK_OK(nb_forward(g, loss));
    CHECK_OK(nb_backward(g, loss));
    for (int k = 0; k < 4; k++) {
        const nb_real *v = nb_value(g, ops[k]);
        for (int j = 0; j < 4; j++) CHECKF(isfinite(v[j]), "op %d value %d = %g", k, j, v[j]);
    }
    const nb_real *dx = nb_grad(g, x);
    for (int j = 0; j < 4; j++) CHECKF(isfinite(dx[j]), "dx[%d] = %g", j, dx[j]);
    CHECK_CLOSE(nb_value(g, ops[0])[1], 1, 0, 0);
    CHECK_CLOSE(nb_value(g, ops[0])[0], 0, 0, 0);
    CHECK_CLOSE(nb_value(g, ops[2])[1], 1000, 0, 0);
    nb_graph_free(g);
}

int main(void) {
    ref_file *f = ref_load(REF_PATH);
    CHECKF(f != NULL, "cannot load %s", REF_PATH);
    if (f) {
        CHECKF(f->nc >= 15, "only %d cases", f->nc);
        for (int i = 0; i < f->nc; i++) check_case(&f->c[i]);
        ref_free(f);
    }
    test_float_extremes();
    TEST_END();
}
