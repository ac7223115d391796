/* Activation gradients are cleared lazily: nb_backward does not zero them up
 * front; the first op to write one (its last consumer in graph order) may
 * overwrite it, and any other op adds into it.  Before each backward every
 * activation gradient is filled with garbage (NaN, or a large number): a
 * gradient that some op adds into without it being zeroed, or that an op
 * overwrites when another had already written it, shows up in the gradient
 * check of the leaves or as a result that depends on the garbage.
 *
 * The graphs mix ops that overwrite (relu, tanh, linear, add, scale, conv,
 * pools, flatten, concat, batch norm) with ops that only add (softmax, sum),
 * in both orders, a node used twice by one op, a broadcast operand, and a
 * branch off the loss's path whose gradient must read zero.
 * nb_backward_zeroed clears the parameter gradients lazily as well. */
#include "test.h"
#include "nabla.h"

#include <stdlib.h>
#include <string.h>

/* Fill every activation gradient (all but the parameters') with v. */
static void poison(nb_graph *g, nb_real v) {
    for (nb_node i = 0; i < nb_graph_node_count(g); i++) {
        nb_real *d = nb_grad(g, i);
        if (!d || strcmp(nb_node_op(g, i), "param") == 0) continue;
        for (size_t k = 0, len = nb_node_numel(g, i); k < len; k++) d[k] = v;
    }
}

/* Every activation gradient of nodes 0..loss, flattened (caller frees). */
static nb_real *activation_grads(nb_graph *g, nb_node loss, size_t *len) {
    size_t total = 0;
    for (nb_node i = 0; i <= loss; i++)
        if (nb_grad(g, i) && strcmp(nb_node_op(g, i), "param") != 0)
            total += nb_node_numel(g, i);
    nb_real *out = malloc((total ? total : 1) * sizeof *out), *p = out;
    for (nb_node i = 0; i <= loss; i++) {
        nb_real *d = nb_grad(g, i);
        if (!d || strcmp(nb_node_op(g, i), "param") == 0) continue;
        memcpy(p, d, nb_node_numel(g, i) * sizeof *d);
        p += nb_node_numel(g, i);
    }
    *len = total;
    return out;
}

/* The checks every graph gets; `side` is a node off the loss's path (before
 * the loss) that has a gradient. */
static void check_graph(nb_graph *g, nb_node loss, nb_node side, const char *what) {
    nb_gradcheck_report rep;
    REQUIRE_OK(nb_forward(g, loss)); /* lays out the gradients that poison fills */
    poison(g, (nb_real)NAN);
    CHECK_OK(nb_gradcheck(g, loss, 1e-6, 1e-7, 1e-5, &rep));
    CHECKF(rep.failed == 0 && rep.checked > 0, "%s: checked %zu failed %zu, worst at '%s'[%zu]: "
           "%g against %g", what, rep.checked, rep.failed, nb_node_name(g, rep.worst_node),
           rep.worst_index, rep.worst_analytic, rep.worst_numeric);

    /* twice without zeroing: activation gradients are the same whatever the
     * memory held, parameter gradients add up */
    size_t np = nb_param_count(g), n1 = 0, n2 = 0;
    nb_zero_grad(g);
    poison(g, (nb_real)NAN);
    CHECK_OK(nb_forward(g, loss));
    CHECK_OK(nb_backward(g, loss));
    nb_real *a1 = activation_grads(g, loss, &n1);
    nb_real *p1 = malloc(np * sizeof *p1);
    memcpy(p1, nb_grads(g), np * sizeof *p1);
    int finite = 1;
    for (size_t k = 0; k < n1; k++) finite &= isfinite(a1[k]) != 0;
    CHECKF(finite, "%s: an activation gradient kept the NaN it held", what);
    poison(g, (nb_real)1e30);
    CHECK_OK(nb_backward(g, loss));
    nb_real *a2 = activation_grads(g, loss, &n2);
    CHECKF(n1 == n2 && memcmp(a1, a2, n1 * sizeof *a1) == 0,
           "%s: activation gradients depend on what their memory held", what);
    int doubled = 1; /* up to rounding: a product may add into C in its own order */
    for (size_t k = 0; k < np; k++)
        doubled &= fabs(nb_grads(g)[k] - 2 * p1[k]) <= 1e-12 * (1 + fabs(p1[k]));
    CHECKF(doubled, "%s: a second backward did not add the same parameter gradients", what);
    /* nb_backward_zeroed: as nb_zero_grad and nb_backward, from any memory */
    for (size_t k = 0; k < np; k++) nb_grads(g)[k] = (nb_real)NAN;
    CHECK_OK(nb_backward_zeroed(g, loss));
    int same = 1;
    for (size_t k = 0; k < np; k++) same &= nb_grads(g)[k] == p1[k];
    CHECKF(same, "%s: nb_backward_zeroed gave other parameter gradients", what);
    const nb_real *ds = nb_grad(g, side);
    int zero = 1;
    for (size_t k = 0; k < nb_node_numel(g, side); k++) zero &= ds[k] == 0;
    CHECKF(zero, "%s: the gradient of '%s', off the loss's path, is not zero", what,
           nb_node_name(g, side));
    free(a1);
    free(a2);
    free(p1);
}

static nb_node weights(nb_graph *g, const char *name, int ndim, const int *dims, double seed) {
    size_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (size_t)dims[d];
    nb_real *v = malloc(n * sizeof *v);
    for (size_t k = 0; k < n; k++) v[k] = (nb_real)sin(seed * (double)(k + 1));
    nb_node c = nb_constant(g, name, ndim, dims, v);
    free(v);
    return c;
}

/* Dense layers and elementwise ops. */
static void test_dense_graph(void) {
    nb_graph *g = nb_graph_new();
    int in = 4, four = 4;
    nb_node x = nb_input(g, "x", 1, &in);
    nb_node side = nb_relu(g, x); /* off the loss's path */
    nb_node h = nb_dense(g, x, 4, "fc1", NULL);
    nb_node r = nb_relu(g, h);
    /* r: first an op that only adds, then (later in the graph, so first in
     * backward) one that overwrites */
    nb_node s1 = nb_softmax(g, r);
    nb_node s2 = nb_tanh(g, r);
    /* u: first an op that overwrites, then one that only adds */
    nb_node u = nb_sigmoid(g, h);
    nb_node v1 = nb_scale(g, u, 2);
    nb_node v2 = nb_softmax(g, u);
    nb_node t = nb_add(g, nb_add(g, s1, s2), nb_sub(g, v1, v2));
    nb_node m = nb_mul(g, t, t);   /* one node in both slots */
    nb_node a = nb_add(g, t, t);
    nb_node p = nb_param(g, "p", 1, &four, (nb_init){.kind = NB_INIT_UNIFORM, .a = -1, .b = 1});
    nb_node c = nb_relu(g, nb_scale(g, p, 1)); /* a broadcast operand with a gradient */
    nb_node b = nb_add(g, nb_mul(g, m, c), a);
    nb_node cat = nb_concat(g, 2, (nb_node[]){b, h}, 1);
    nb_node f = nb_flatten(g, nb_reshape(g, cat, 2, (int[]){2, 4}));
    /* a weight and a bias that are ops, not parameters */
    nb_node w2 = nb_param(g, "w2", 2, (int[]){3, 8}, (nb_init){0});
    nb_node b2 = nb_param(g, "b2", 1, (int[]){3}, (nb_init){.kind = NB_INIT_UNIFORM, .b = 1});
    nb_node y = nb_linear(g, f, nb_scale(g, w2, 1), nb_tanh(g, b2));
    nb_node loss = nb_sum(g, nb_mul(g, y, weights(g, "w", 1, (int[]){3}, 0.7)));
    nb_param(g, "unused", 1, &four, (nb_init){0}); /* no op reads it; after the loss */
    REQUIRE_OK(nb_graph_status(g));
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    REQUIRE_OK(nb_graph_init(g, &rng));
    nb_real xs[12] = {0.3, -0.7, 1.1, 0.2, 0.5, -1.3, 0.9, -0.4, 0.8, 0.1, -0.6, 1.4};
    REQUIRE_OK(nb_set_input(g, x, xs, 3));
    REQUIRE_OK(nb_requires_grad(g, x, 1));
    check_graph(g, loss, side, "dense");
    /* a failing nb_backward_zeroed still zeroes, as nb_zero_grad would */
    for (size_t k = 0; k < nb_param_count(g); k++) nb_grads(g)[k] = (nb_real)NAN;
    CHECK(nb_backward_zeroed(g, h) == NB_ERR_SHAPE); /* h is not a scalar */
    int zero = 1;
    for (size_t k = 0; k < nb_param_count(g); k++) zero &= nb_grads(g)[k] == 0;
    CHECKF(zero, "a failing nb_backward_zeroed left the parameter gradients as they were");
    nb_graph_free(g);
}

/* Convolution and pooling: the image feeds a convolution and a pool, the
 * pooled map feeds a convolution, batch norm and a tanh (the tanh, last,
 * overwrites its gradient; batch norm and the convolution add). */
static void test_conv_graph(void) {
    nb_graph *g = nb_graph_new();
    int img[3] = {2, 7, 7}; /* odd: max pool's 2x2 windows leave a row and a column */
    nb_node x = nb_input(g, "x", 3, img);
    nb_node side = nb_tanh(g, x);
    nb_node c1 = nb_relu(g, nb_conv2d_layer(g, x, 3, 3, 3, &(nb_conv_opts){.pad_h = 1, .pad_w = 1},
                                            "c1"));
    nb_node mp = nb_max_pool2d(g, c1, 2, 2, 2, 2, 0, 0, 0);
    nb_node ap = nb_avg_pool2d(g, x, 3, 3, 2, 2, 0, 0, 0, 1); /* x's second consumer */
    nb_node j = nb_concat(g, 2, (nb_node[]){mp, ap}, 1);
    nb_node c2 = nb_conv2d_layer(g, j, 4, 2, 2, NULL, "c2");
    nb_node bn = nb_batch_norm(g, j, "bn", NULL);
    nb_node late = nb_tanh(g, j); /* after batch norm: its backward first, then bn adds */
    nb_node w3 = nb_param(g, "w3", 4, (int[]){4, 5, 2, 2}, (nb_init){0});
    nb_node b3 = nb_param(g, "b3", 1, (int[]){4}, (nb_init){.kind = NB_INIT_UNIFORM, .b = 1});
    /* a weight and a bias that are ops, not parameters */
    nb_node c3 = nb_conv2d(g, bn, nb_scale(g, w3, 1), nb_tanh(g, b3), 1, 1, 0, 0, 1, 1, 1);
    nb_node sum = nb_add(g, nb_relu(g, c2), nb_relu(g, c3));
    nb_node gp = nb_global_avg_pool2d(g, sum);
    nb_node y = nb_dense(g, nb_flatten(g, nb_max_pool2d(g, sum, 2, 2, 1, 1, 0, 0, 0)), 2, "fc",
                         NULL);
    nb_node loss = nb_add(g, nb_sum(g, nb_mul(g, y, weights(g, "w", 1, (int[]){2}, 0.3))),
                          nb_sum(g, nb_mul(g, gp, weights(g, "v", 1, (int[]){4}, 1.1))));
    loss = nb_add(g, loss, nb_sum(g, late));
    REQUIRE_OK(nb_graph_status(g));
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    REQUIRE_OK(nb_graph_init(g, &rng));
    nb_real xs[2 * 98];
    for (int k = 0; k < 2 * 98; k++) xs[k] = (nb_real)sin(0.37 * k + 0.1);
    REQUIRE_OK(nb_set_input(g, x, xs, 2));
    REQUIRE_OK(nb_requires_grad(g, x, 1));
    check_graph(g, loss, side, "conv");
    nb_graph_free(g);
}

int main(void) {
    test_dense_graph();
    test_conv_graph();
    TEST_END();
}
