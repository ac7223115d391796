/* In eval mode a convolution whose only consumer is a batch norm applies
 * the batch norm (an affine map per channel there), the relu after it and
 * the max pool after the relu to each sample in cache: the fold
 * (src/core/fusion.c).  Each network is built twice, once as it is and once
 * with a second, unused consumer of every convolution, which keeps it
 * unfolded; the two must agree bit for bit, on every kernel (nabla's
 * AVX-512, AVX2, OpenBLAS, the portable one), on 1 and 2 threads, at batch
 * 1 and 5:
 *   - in eval mode the loss and every node's value, the folded pass writing
 *     only the last node of each chain (the others' memory is filled with
 *     NaN first and must still hold it until nb_value fills it in);
 *   - a backward in eval mode after the folded pass (every op then runs as
 *     it is): the input's and every parameter's gradient;
 *   - a training pass after it (no fold: batch statistics) and an eval pass
 *     after that one.
 * The chains: conv -> batch norm -> relu -> max pool (16 channels: a single
 * sample on 2 threads splits them); conv -> batch norm -> relu; conv ->
 * batch norm without its affine parameters, then flatten (a view of the
 * batch norm's value). */
#include "nabla.h"
#include "test.h"
#include "core/internal.h"
#include "kernels/gemm.h"
#include "each_kernel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { CHAINS = 3 };

typedef struct net {
    nb_graph *g;
    nb_node x, t, loss;
    nb_node conv[CHAINS], bn[CHAINS], relu[CHAINS], pool[CHAINS]; /* NB_NONE: none */
} net;

/* Batch norm `name` after x, its running statistics and affine parameters
 * away from their defaults, so that it is not an identity. */
static nb_node batch_norm(nb_graph *g, nb_node x, const char *name, int affine) {
    nb_norm_opts o = {.no_affine = !affine};
    return nb_batch_norm(g, x, name, &o);
}

static void set_statistics(nb_graph *g, const char *name, int c) {
    const char *what[] = {"running_mean", "running_var", "weight", "bias"};
    for (int w = 0; w < 4; w++) {
        char full[64];
        snprintf(full, sizeof full, "%s.%s", name, what[w]);
        nb_node n = nb_find(g, full);
        if (n == NB_NONE) continue; /* no affine parameters */
        nb_real *v = nb_value(g, n);
        for (int k = 0; k < c; k++)
            v[k] = (nb_real)(w == 1 ? 0.5 + 0.3 * k : w == 2 ? 1.5 - 0.1 * k : 0.2 * k - 0.7);
    }
}

static net build(int blocked) {
    net n = {.g = nb_graph_new()};
    nb_graph *g = n.g;
    int xd[3] = {2, 20, 24};
    n.x = nb_input(g, "x", 3, xd);
    nb_requires_grad(g, n.x, 1);
    n.conv[0] = nb_conv2d_layer(g, n.x, 16, 3, 3, NULL, "c1");
    n.bn[0] = batch_norm(g, n.conv[0], "bn1", 1);
    n.relu[0] = nb_relu(g, n.bn[0]);
    n.pool[0] = nb_max_pool2d(g, n.relu[0], 2, 2, 0, 0, 0, 0, 0);
    nb_conv_opts p = {.pad_h = 1, .pad_w = 1, .no_bias = 1};
    n.conv[1] = nb_conv2d_layer(g, n.pool[0], 8, 3, 3, &p, "c2");
    n.bn[1] = batch_norm(g, n.conv[1], "bn2", 1);
    n.relu[1] = nb_relu(g, n.bn[1]);
    n.pool[1] = NB_NONE;
    n.conv[2] = nb_conv2d_layer(g, n.relu[1], 6, 3, 3, &p, "c3");
    n.bn[2] = batch_norm(g, n.conv[2], "bn3", 0);
    n.relu[2] = n.pool[2] = NB_NONE;
    nb_node h = nb_dense(g, nb_flatten(g, n.bn[2]), 4, "fc", NULL);
    n.t = nb_input(g, "t", 0, NULL);
    n.loss = nb_cross_entropy(g, h, n.t, 0);
    for (int c = 0; blocked && c < CHAINS; c++) nb_scale(g, n.conv[c], 2);
    nb_test_init_params(g, 7);
    set_statistics(g, "bn1", 16);
    set_statistics(g, "bn2", 8);
    set_statistics(g, "bn3", 6);
    return n;
}

static void set_batch(net *n, int batch) {
    nb_graph_set_batch(n->g, batch);
    nb_real *x = nb_value(n->g, n->x), *t = nb_value(n->g, n->t);
    size_t len = nb_node_numel(n->g, n->x);
    for (size_t k = 0; k < len; k++) x[k] = (nb_real)sin(0.37 * (double)k + 0.1) * 2;
    for (int b = 0; b < batch; b++) t[b] = (nb_real)(b % 4);
}

/* Every node of the chains (and the loss) reads the same in f and u. */
static void same_values(net *f, net *u, const char *what) {
    CHECKF(nb_test_same_bits(nb_value(f->g, f->loss), nb_value(u->g, u->loss), 1),
           "%s: loss %g against %g", what, (double)nb_value(f->g, f->loss)[0],
           (double)nb_value(u->g, u->loss)[0]);
    for (int c = 0; c < CHAINS; c++) {
        nb_node nodes[4] = {f->conv[c], f->bn[c], f->relu[c], f->pool[c]};
        nb_node unodes[4] = {u->conv[c], u->bn[c], u->relu[c], u->pool[c]};
        for (int k = 0; k < 4; k++)
            CHECKF(nodes[k] == NB_NONE ||
                       nb_test_same_bits(nb_value(f->g, nodes[k]), nb_value(u->g, unodes[k]),
                                         nb_node_numel(f->g, nodes[k])),
                   "%s: chain %d, node %d of the chain: values differ", what, c, k);
    }
}

/* Memory the folded pass must not write: each chain's nodes before its last. */
static void poison_inner(net *f) {
    for (int c = 0; c < CHAINS; c++) {
        nb_node inner[3] = {f->conv[c], f->relu[c] != NB_NONE ? f->bn[c] : NB_NONE,
                            f->pool[c] != NB_NONE ? f->relu[c] : NB_NONE};
        for (int k = 0; k < 3; k++) {
            if (inner[k] == NB_NONE) continue;
            nb_node_t *n = &f->g->nodes[inner[k]];
            for (size_t i = 0; i < nb__numel(n); i++) n->val[i] = (nb_real)NAN;
        }
    }
}

static int inner_untouched(net *f) {
    for (int c = 0; c < CHAINS; c++) {
        nb_node_t *conv = &f->g->nodes[f->conv[c]];
        if (!nb_test_all_nan(conv->val, nb__numel(conv))) return 0;
    }
    return 1;
}

static void compare(int batch, const char *what) {
    net f = build(0), u = build(1);
    set_batch(&f, batch);
    set_batch(&u, batch);
    for (int c = 0; c < CHAINS; c++)
        CHECKF(f.g->nodes[f.conv[c]].fold_bn && !u.g->nodes[u.conv[c]].fold_bn,
               "%s: conv %d folds %d / %d", what, c, f.g->nodes[f.conv[c]].fold_bn,
               u.g->nodes[u.conv[c]].fold_bn);
    nb_graph_set_training(f.g, 0);
    nb_graph_set_training(u.g, 0);
    poison_inner(&f);
    REQUIRE_OK(nb_forward(f.g, f.loss));
    REQUIRE_OK(nb_forward(u.g, u.loss));
    CHECKF(inner_untouched(&f), "%s: a folded pass wrote a convolution's own value", what);
    same_values(&f, &u, what);

    /* backward in eval mode runs the folded ops as they are */
    poison_inner(&f);
    REQUIRE_OK(nb_forward(f.g, f.loss));
    REQUIRE_OK(nb_forward(u.g, u.loss));
    REQUIRE_OK(nb_backward_zeroed(f.g, f.loss));
    REQUIRE_OK(nb_backward_zeroed(u.g, u.loss));
    size_t np = nb_param_count(f.g);
    CHECKF(nb_test_same_bits(nb_grads(f.g), nb_grads(u.g), np),
           "%s: eval-mode parameter gradients differ", what);
    CHECKF(nb_test_same_bits(nb_grad(f.g, f.x), nb_grad(u.g, u.x), nb_node_numel(f.g, f.x)),
           "%s: eval-mode input gradient differs", what);
    same_values(&f, &u, what);

    /* training: no fold, batch statistics (batch 1 has too few values) */
    if (batch > 1) {
        nb_graph_set_training(f.g, 1);
        nb_graph_set_training(u.g, 1);
        REQUIRE_OK(nb_forward(f.g, f.loss));
        REQUIRE_OK(nb_forward(u.g, u.loss));
        same_values(&f, &u, what);
        nb_graph_set_training(f.g, 0);
        nb_graph_set_training(u.g, 0);
        REQUIRE_OK(nb_forward(f.g, f.loss));
        REQUIRE_OK(nb_forward(u.g, u.loss));
        same_values(&f, &u, what);
    }
    nb_graph_free(f.g);
    nb_graph_free(u.g);
}

int main(void) {
    nb_test_each_kernel(compare);
    TEST_END();
}
