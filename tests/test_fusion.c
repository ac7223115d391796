/* A convolution whose only consumer is a relu applies the relu itself, and
 * a max pool after that relu (src/core/fusion.c).  Each network is built twice, once as it is and once
 * with a second, unused consumer of every convolution, which keeps it
 * unfused; the two must agree bit for bit, on every kernel (nabla's AVX-512,
 * OpenBLAS, the portable one), on 1 and 2 threads, at batch 1 and 5:
 *   - the loss, every parameter gradient, every relu's and pool's value;
 *   - the convolution's own value and gradient, and the relu's before a
 *     pool, which the fused pass does not write (their memory is filled with
 *     NaN first and must still hold it) but nb_value / nb_grad fill in;
 *   - a second backward adds the same parameter gradients again;
 *   - nb_find_nonfinite finds an overflow in the convolution's own value.
 * The flatten after the last pool shares the pool's memory (a view that is
 * its input's only consumer), and in the blocked network copies it.
 * test64_fusion runs the same in the double build (the portable loops); the
 * finite-difference check of a fused pair is in test64_lazy_grad. */
#include "nabla.h"
#include "test.h"
#include "core/internal.h"
#include "kernels/gemm.h"
#include "each_kernel.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_CONV = 3 };

typedef struct net {
    nb_graph *g;
    nb_node x, t, loss;
    nb_node conv[MAX_CONV], relu[MAX_CONV], pool[MAX_CONV]; /* pool: NB_NONE for none */
    nb_node flat; /* the flatten after the last pool: shares its memory unless blocked */
} net;

/* conv(bias) -> relu -> max pool 3x3, stride 2 x 1, padding 1 (windows
 * overlap) -> conv(groups 2, padding, stride 2 x 1, no bias) -> relu
 * -> conv(padding, 16 channels: a single sample on 2 threads splits them,
 * each thread pooling its own) -> relu -> max pool 2x2 (3 x 35 to 1 x 17:
 * more than 16 outputs a row, an input row and column in no window) ->
 * flatten -> linear -> cross-entropy.
 * blocked: each conv gets a second consumer (off the loss's path), so
 * nothing fuses. */
static net build(int blocked) {
    net n = {.g = nb_graph_new()};
    nb_graph *g = n.g;
    int xd[3] = {2, 11, 37};
    n.x = nb_input(g, "x", 3, xd);
    nb_requires_grad(g, n.x, 1); /* the first conv's input gradient too */
    n.conv[0] = nb_conv2d_layer(g, n.x, 6, 3, 3, NULL, "c1");
    n.relu[0] = nb_relu(g, n.conv[0]);
    n.pool[0] = nb_max_pool2d(g, n.relu[0], 3, 3, 2, 1, 1, 1, 0);
    nb_conv_opts o = {.groups = 2, .pad_h = 1, .pad_w = 1, .stride_h = 2, .stride_w = 1,
                      .no_bias = 1};
    n.conv[1] = nb_conv2d_layer(g, n.pool[0], 8, 3, 3, &o, "c2");
    n.relu[1] = nb_relu(g, n.conv[1]);
    n.pool[1] = NB_NONE;
    nb_conv_opts p = {.pad_h = 1, .pad_w = 1};
    n.conv[2] = nb_conv2d_layer(g, n.relu[1], 16, 3, 3, &p, "c3");
    n.relu[2] = nb_relu(g, n.conv[2]);
    n.pool[2] = nb_max_pool2d(g, n.relu[2], 2, 2, 0, 0, 0, 0, 0);
    n.flat = nb_flatten(g, n.pool[2]);
    nb_node h = nb_dense(g, n.flat, 4, "fc", NULL);
    n.t = nb_input(g, "t", 0, NULL);
    n.loss = nb_cross_entropy(g, h, n.t, 0);
    for (int c = 0; blocked && c < MAX_CONV; c++) nb_scale(g, n.conv[c], 2);
    if (blocked) nb_scale(g, n.pool[2], 2); /* and the flatten copies */
    nb_test_init_params(g, 7);
    return n;
}

/* huge: every input the largest float, so that the first convolution overflows */
static void set_batch(net *n, int batch, int huge) {
    nb_graph_set_batch(n->g, batch);
    nb_real *x = nb_value(n->g, n->x), *t = nb_value(n->g, n->t);
    size_t len = nb_node_numel(n->g, n->x);
    for (size_t k = 0; k < len; k++) x[k] = (nb_real)sin(0.37 * (double)k + 0.1) * 2;
    for (size_t k = 0; huge && k < len; k++) x[k] = sizeof(nb_real) == 4 ? FLT_MAX : DBL_MAX;
    for (int b = 0; b < batch; b++) t[b] = (nb_real)(b % 4);
}

static void compare(int batch, const char *what) {
    net f = build(0), u = build(1);
    set_batch(&f, batch, 0); /* plans the arena, and the fusion */
    set_batch(&u, batch, 0);
    for (int c = 0; c < MAX_CONV; c++)
        CHECKF(f.g->nodes[f.conv[c]].epilogue && !u.g->nodes[u.conv[c]].epilogue,
               "%s: conv %d fuses %d / %d", what, c, f.g->nodes[f.conv[c]].epilogue,
               u.g->nodes[u.conv[c]].epilogue);
    CHECKF(f.g->nodes[f.flat].val == f.g->nodes[f.pool[2]].val &&
               u.g->nodes[u.flat].val != u.g->nodes[u.pool[2]].val,
           "%s: the flatten shares its input's memory: %d / %d", what,
           f.g->nodes[f.flat].val == f.g->nodes[f.pool[2]].val,
           u.g->nodes[u.flat].val == u.g->nodes[u.pool[2]].val);
    for (int c = 0; c < MAX_CONV; c++)
        CHECKF((f.g->nodes[f.relu[c]].epilogue != 0) == (f.pool[c] != NB_NONE),
               "%s: relu %d fuses its pool: %d", what, c, f.g->nodes[f.relu[c]].epilogue);
    /* the fused pass writes neither the convolutions' values nor their
     * gradients, nor those of a relu before a pool */
    for (int c = 0; c < MAX_CONV; c++) {
        nb_node_t *cn = &f.g->nodes[f.conv[c]], *rn = &f.g->nodes[f.relu[c]];
        for (size_t k = 0; k < nb__numel(cn); k++) cn->val[k] = cn->grad[k] = (nb_real)NAN;
        for (size_t k = 0; f.pool[c] != NB_NONE && k < nb__numel(rn); k++)
            rn->val[k] = rn->grad[k] = (nb_real)NAN;
    }
    REQUIRE_OK(nb_forward(f.g, f.loss));
    REQUIRE_OK(nb_forward(u.g, u.loss));
    REQUIRE_OK(nb_backward_zeroed(f.g, f.loss));
    REQUIRE_OK(nb_backward_zeroed(u.g, u.loss));
    for (int c = 0; c < MAX_CONV; c++) {
        nb_node_t *cn = &f.g->nodes[f.conv[c]];
        CHECKF(nb_test_all_nan(cn->val, nb__numel(cn)) && nb_test_all_nan(cn->grad, nb__numel(cn)),
               "%s: conv %d's own value or gradient was written in the fused pass", what, c);
        nb_node_t *rn = &f.g->nodes[f.relu[c]];
        CHECKF(f.pool[c] == NB_NONE || (nb_test_all_nan(rn->val, nb__numel(rn)) &&
                                        nb_test_all_nan(rn->grad, nb__numel(rn))),
               "%s: relu %d's value or gradient was written in the fused pass", what, c);
    }
    CHECKF(nb_test_same_bits(nb_value(f.g, f.loss), nb_value(u.g, u.loss), 1),
           "%s: loss %g against %g", what, (double)nb_value(f.g, f.loss)[0],
           (double)nb_value(u.g, u.loss)[0]);
    size_t np = nb_param_count(f.g);
    CHECKF(np == nb_param_count(u.g) && nb_test_same_bits(nb_grads(f.g), nb_grads(u.g), np),
           "%s: parameter gradients differ", what);
    for (int c = 0; c < MAX_CONV; c++) {
        size_t len = nb_node_numel(f.g, f.conv[c]);
        CHECKF(nb_test_same_bits(nb_value(f.g, f.relu[c]), nb_value(u.g, u.relu[c]), len),
               "%s: relu %d's value differs", what, c);
        CHECKF(nb_test_same_bits(nb_grad(f.g, f.relu[c]), nb_grad(u.g, u.relu[c]), len),
               "%s: relu %d's gradient differs", what, c);
        CHECKF(nb_test_same_bits(nb_grad(f.g, f.conv[c]), nb_grad(u.g, u.conv[c]), len),
               "%s: conv %d's gradient, filled on request, differs", what, c);
        CHECKF(nb_test_same_bits(nb_value(f.g, f.conv[c]), nb_value(u.g, u.conv[c]), len),
               "%s: conv %d's value, filled on request, differs", what, c);
    }
    for (int c = 0; c < MAX_CONV; c++)
        CHECKF(f.pool[c] == NB_NONE ||
                   nb_test_same_bits(nb_value(f.g, f.pool[c]), nb_value(u.g, u.pool[c]),
                                     nb_node_numel(f.g, f.pool[c])),
               "%s: pool %d's value differs", what, c);
    size_t ni = nb_node_numel(f.g, f.x);
    CHECKF(nb_test_same_bits(nb_grad(f.g, f.x), nb_grad(u.g, u.x), ni),
           "%s: input gradient differs", what);

    /* a second backward without zeroing adds the same parameter gradients */
    REQUIRE_OK(nb_backward(f.g, f.loss));
    REQUIRE_OK(nb_backward(u.g, u.loss));
    CHECKF(nb_test_same_bits(nb_grads(f.g), nb_grads(u.g), np), "%s: accumulated gradients differ",
           what);

    /* an overflow: both find it first in the first convolution's own value */
    set_batch(&f, batch, 1);
    set_batch(&u, batch, 1);
    nb_forward(f.g, f.loss);
    nb_forward(u.g, u.loss);
    nb_nonfinite rf, ru;
    CHECK_OK(nb_find_nonfinite(f.g, f.loss, 0, &rf));
    CHECK_OK(nb_find_nonfinite(u.g, u.loss, 0, &ru));
    CHECKF(rf.node == ru.node && rf.node == f.conv[0] && rf.index == ru.index,
           "%s: first non-finite value at node %d [%zu] against %d [%zu]", what, rf.node,
           rf.index, ru.node, ru.index);
    nb_graph_free(f.g);
    nb_graph_free(u.g);
}

/* nb_forward up to a convolution computes its own value: no fusion there.
 * And a pass that does not reach a fused convolution leaves it as it was:
 * its value and gradient still read as those of the last full pass. */
static void test_partial_forward(void) {
    net f = build(0), u = build(1);
    set_batch(&f, 3, 0);
    set_batch(&u, 3, 0);
    REQUIRE_OK(nb_forward(f.g, f.loss));
    REQUIRE_OK(nb_forward(u.g, u.loss));
    REQUIRE_OK(nb_backward(f.g, f.loss));
    REQUIRE_OK(nb_backward(u.g, u.loss));
    REQUIRE_OK(nb_forward(f.g, f.conv[0]));
    REQUIRE_OK(nb_forward(u.g, u.conv[0]));
    size_t len = nb_node_numel(f.g, f.conv[2]);
    CHECK(nb_test_same_bits(nb_value(f.g, f.conv[2]), nb_value(u.g, u.conv[2]), len));
    CHECK(nb_test_same_bits(nb_grad(f.g, f.conv[2]), nb_grad(u.g, u.conv[2]), len));
    CHECK(nb_test_same_bits(nb_grad(f.g, f.relu[2]), nb_grad(u.g, u.relu[2]), len));
    REQUIRE_OK(nb_forward(f.g, f.conv[2]));
    REQUIRE_OK(nb_forward(u.g, u.conv[2]));
    CHECK(nb_test_same_bits(f.g->nodes[f.conv[2]].val, nb_value(u.g, u.conv[2]),
               nb_node_numel(f.g, f.conv[2])));
    REQUIRE_OK(nb_forward(f.g, f.relu[2])); /* conv and relu, not the pool: no fusion */
    REQUIRE_OK(nb_forward(u.g, u.relu[2]));
    CHECK(nb_test_same_bits(f.g->nodes[f.relu[2]].val, nb_value(u.g, u.relu[2]),
               nb_node_numel(f.g, f.relu[2])));
    nb_graph_free(f.g);
    nb_graph_free(u.g);
}

/* An optimiser step between backward and reading: with nb_graph_fill_fused
 * before it, the convolutions' own values and gradients (the gradient's
 * relu mask comes from the relu's refilled value before a pool) read as the
 * unfused network's. */
static void test_fill_before_step(void) {
    nb_set_threads(2);
    net f = build(0), u = build(1);
    net *both[2] = {&f, &u};
    for (int k = 0; k < 2; k++) {
        set_batch(both[k], 3, 0);
        REQUIRE_OK(nb_forward(both[k]->g, both[k]->loss));
        REQUIRE_OK(nb_backward_zeroed(both[k]->g, both[k]->loss));
    }
    REQUIRE_OK(nb_graph_fill_fused(f.g));
    for (int k = 0; k < 2; k++) nb_test_step_params(both[k]->g);
    for (int c = 0; c < MAX_CONV; c++) {
        size_t len = nb_node_numel(f.g, f.conv[c]);
        CHECKF(nb_test_same_bits(nb_value(f.g, f.conv[c]), nb_value(u.g, u.conv[c]), len),
               "conv %d's value, filled before the step, differs", c);
        CHECKF(nb_test_same_bits(nb_grad(f.g, f.conv[c]), nb_grad(u.g, u.conv[c]), len),
               "conv %d's gradient, filled before the step, differs", c);
        CHECKF(nb_test_same_bits(nb_value(f.g, f.relu[c]), nb_value(u.g, u.relu[c]), len),
               "relu %d's value, filled before the step, differs", c);
    }
    nb_graph_free(f.g);
    nb_graph_free(u.g);
}

int main(void) {
    nb_test_each_kernel(compare);
    test_partial_forward();
    test_fill_before_step();
    TEST_END();
}
