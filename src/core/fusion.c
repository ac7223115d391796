/* Fusing a relu into the op that produces it (internal.h, "fusion").
 *
 * A convolution's output is large (the first layer of a small CNN writes
 * 11 MB per batch of 128), and a relu after it reads and writes all of it
 * again, forward and backward.  When the relu is the convolution's only
 * consumer, the convolution applies it to each sample while the sample is
 * still in cache and writes the relu's value; backward, it forms its own
 * output gradient per sample from the relu's gradient and output.  The relu
 * node stays in the graph (names, export, diagnostics) but does no work.
 *
 * A max pool that is the relu's only consumer (conv, relu, pool: the usual
 * block of a small CNN) is computed from the sample in cache as well, with
 * its argmax; backward then forms the convolution's output gradient straight
 * from the pool's, and the relu's value and gradient are not written at all.
 *
 * A dense layer's relu (NB_OP_FUSES_RELU_VALUE) is applied as the forward
 * product stores each tile of the layer's output, where the bias is added
 * too: one pass over the output instead of three (bias copy, product, relu).
 * The relu's backward runs as it is (from its own output), so only the
 * layer's own value is not written.  Batch norm's relu is applied as it
 * stores its normalised output, the same way, and backward
 * (NB_OP_FUSES_RELU_GRAD) batch norm forms its upstream gradient from the
 * relu's gradient and output as it reads them: the relu's backward does not
 * run, and batch norm's own gradient is not written either.  A max pool
 * after batch norm's relu is computed by batch norm too, each channel as
 * soon as it is normalised (NB_OP_FUSES_POOL_VALUE: forward only; the relu's
 * value is still written, and the pool's backward runs).
 *
 * In eval mode batch norm is an affine map per channel (its running
 * statistics), and a convolution whose only consumer is a batch norm folds it
 * in, with the relu and the max pool after it (each the only consumer of the
 * one before): each sample is normalised, passed through the relu and pooled
 * while it is in cache, and only the last node's value is written.  A
 * backward after such a pass first fills the folded nodes' values (and the
 * pool's argmax) and then runs every op as it is (nb__unfold).
 *
 * The results are the unfused ops' bits.  What the fused ops no longer write
 * is computed on demand: nb_value and nb_grad fill it in (by running the
 * op's forward without its epilogue, the relu's forward, or the relu's and
 * the pool's backward), so every node still reads as it would unfused. */
#include "internal.h"

/* Node i's only consumer, if it has that op flag and i as its first input
 * (its one input, unless any_nin: then the others are its parameters). */
static nb_node_t *only_consumer_of(nb_graph *g, int i, unsigned flag, int any_nin) {
    if (g->nodes[i].consumers != 1) return NULL;
    for (int j = i + 1; j < g->n_nodes; j++) {
        nb_node_t *c = &g->nodes[j];
        if (c->nin < 1 || c->in[0] != i) continue;
        return c->op && (c->op->flags & flag) && (any_nin || c->nin == 1) ? c : NULL;
    }
    return NULL;
}

static nb_node_t *only_consumer(nb_graph *g, int i, unsigned flag) {
    return only_consumer_of(g, i, flag, 0);
}

static int index_of(const nb_graph *g, const nb_node_t *n) { return (int)(n - g->nodes); }

/* A convolution's fold: the batch norm that is its only consumer, the relu
 * after it and the max pool after that (each the only consumer of the one
 * before). */
static void plan_fold(nb_graph *g, int i) {
    nb_node_t *n = &g->nodes[i];
    nb_node_t *bn = only_consumer_of(g, i, NB_OP_EVAL_AFFINE, 1);
    if (!bn) return;
    n->fold_bn = index_of(g, bn) + 1;
    bn->folded_into = i + 1;
    nb_node_t *relu = only_consumer(g, index_of(g, bn), NB_OP_RELU);
    if (!relu) return;
    n->fold_relu = index_of(g, relu) + 1;
    relu->folded_into = i + 1;
    nb_node_t *pool = only_consumer(g, index_of(g, relu), NB_OP_MAX_POOL);
    if (!pool) return;
    n->fold_pool = index_of(g, pool) + 1;
    pool->folded_into = i + 1;
}

void nb__plan_fusion(nb_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node_t *n = &g->nodes[i];
        n->epilogue = n->fused_into = 0;
        n->fold_bn = n->fold_relu = n->fold_pool = n->folded_into = 0;
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op && (g->nodes[i].op->flags & NB_OP_FUSES_RELU)) plan_fold(g, i);
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node_t *n = &g->nodes[i];
        if (!n->op || !(n->op->flags & (NB_OP_FUSES_RELU | NB_OP_FUSES_RELU_VALUE))) continue;
        nb_node_t *relu = only_consumer(g, i, NB_OP_RELU);
        if (!relu) continue;
        n->epilogue = index_of(g, relu) + 1;
        relu->fused_into = i + 1;
        if (!(n->op->flags & (NB_OP_FUSES_RELU | NB_OP_FUSES_POOL_VALUE))) continue;
        nb_node_t *pool = only_consumer(g, index_of(g, relu), NB_OP_MAX_POOL);
        if (!pool) continue;
        relu->epilogue = index_of(g, pool) + 1;
        pool->fused_into = i + 1;
    }
}

static int needed(const nb_graph *g, int plus1) {
    return plus1 && (g->mark[plus1 - 1] & MARK_NEEDED);
}

/* An eval-mode pass folds each planned chain as far as the pass needs it:
 * the convolution writes the last node's value, the others' are stale. */
static void begin_folds(nb_graph *g) {
    for (int i = 0; i < g->n_nodes && !g->training; i++) {
        const nb_node_t *n = &g->nodes[i];
        if (!needed(g, i + 1) || !needed(g, n->fold_bn)) continue;
        g->mark[i] |= MARK_FOLDED | MARK_VAL_STALE;
        g->mark[n->fold_bn - 1] |= MARK_VAL_STALE;
        if (needed(g, n->fold_relu) && needed(g, n->fold_pool))
            g->mark[n->fold_relu - 1] |= MARK_VAL_STALE;
    }
}

/* A producer fuses in a pass when it and every node it computes are needed
 * (and, for a dense layer, its kernel can): its own value is then not
 * written, nor the relu's when a pool follows.  Nodes the pass does not
 * compute keep their marks (and values) from before. */
void nb__fusion_begin_forward(nb_graph *g) {
    const unsigned char fusion = MARK_FUSED | MARK_VAL_STALE | MARK_FOLDED;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->mark[i] & MARK_NEEDED) g->mark[i] &= (unsigned char)~fusion;
    for (int i = 0; i < g->n_nodes; i++) {
        const nb_node_t *n = &g->nodes[i];
        int r = n->epilogue - 1;
        if (r < 0 || !n->op || g->nodes[r].fused_into != i + 1) continue; /* not a producer */
        if (n->op->fuses_relu && !n->op->fuses_relu(g, n)) continue;
        int p = g->nodes[r].epilogue - 1;
        if (!(g->mark[i] & MARK_NEEDED) || !(g->mark[r] & MARK_NEEDED) ||
            (p >= 0 && !(g->mark[p] & MARK_NEEDED)))
            continue;
        g->mark[i] |= MARK_FUSED | MARK_VAL_STALE;
        /* a convolution's fused pool: the relu's value is not written */
        if (p >= 0 && (n->op->flags & NB_OP_FUSES_RELU)) g->mark[r] |= MARK_VAL_STALE;
    }
    begin_folds(g);
}

nb_node_t *nb__fold(nb_graph *g, const nb_node_t *n, nb_node_t **relu, nb_node_t **pool) {
    int i = index_of(g, n);
    *relu = *pool = NULL;
    if (g->unfused || !(g->mark[i] & MARK_FOLDED)) return NULL;
    if (needed(g, n->fold_relu)) *relu = &g->nodes[n->fold_relu - 1];
    if (*relu && needed(g, n->fold_pool)) *pool = &g->nodes[n->fold_pool - 1];
    return &g->nodes[n->fold_bn - 1];
}

/* Backward runs every op of a chain folded in the last forward as it is:
 * their values first, and the pool's argmax (the fold writes its values
 * alone). */
void nb__unfold(nb_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        if (!(g->mark[i] & MARK_FOLDED)) continue;
        const nb_node_t *n = &g->nodes[i];
        nb__fill_value(g, n->fold_bn - 1);
        if (needed(g, n->fold_relu)) nb__fill_value(g, n->fold_relu - 1);
        if (needed(g, n->fold_relu) && needed(g, n->fold_pool)) {
            nb_node_t *pool = &g->nodes[n->fold_pool - 1];
            pool->op->forward(g, pool);
        }
        g->mark[i] &= (unsigned char)~MARK_FOLDED;
    }
}

nb_node_t *nb__epilogue(nb_graph *g, const nb_node_t *n) {
    int i = index_of(g, n);
    if (g->unfused || !n->epilogue || !(g->mark[i] & MARK_FUSED)) return NULL;
    return &g->nodes[n->epilogue - 1];
}

nb_node_t *nb__epilogue_pool(nb_graph *g, const nb_node_t *relu) {
    return relu && relu->epilogue ? &g->nodes[relu->epilogue - 1] : NULL;
}

int nb__fused_away(const nb_graph *g, const nb_node_t *n, int backward) {
    if (n->folded_into && (g->mark[n->folded_into - 1] & MARK_FOLDED)) return 1;
    if (!n->fused_into || !(g->mark[n->fused_into - 1] & MARK_FUSED)) return 0;
    const unsigned producer = g->nodes[n->fused_into - 1].op->flags;
    if (!backward) return 1;
    if (n->op->flags & NB_OP_MAX_POOL) return (producer & NB_OP_FUSES_RELU) != 0;
    return (producer & (NB_OP_FUSES_RELU | NB_OP_FUSES_RELU_GRAD)) != 0;
}

/* A stale value: its inputs' values first (the relu's is the producer's),
 * then the node's own forward, the producer's without its epilogue. */
void nb__fill_value(nb_graph *g, int i) {
    if (!(g->mark[i] & MARK_VAL_STALE)) return;
    nb_node_t *n = &g->nodes[i];
    for (int k = 0; k < n->nin; k++) nb__fill_value(g, n->in[k]);
    g->unfused = 1;
    n->op->forward(g, n);
    g->unfused = 0;
    g->mark[i] &= (unsigned char)~MARK_VAL_STALE;
}

/* A stale gradient: written by the backward of the node's only consumer
 * (the relu, or the pool), which needs its own gradient and value. */
void nb__fill_grad(nb_graph *g, int i) {
    if (!(g->mark[i] & MARK_GRAD_STALE)) return;
    int c = g->nodes[i].epilogue - 1;
    nb__fill_grad(g, c);
    nb__fill_value(g, c);
    nb_node_t *n = &g->nodes[c];
    n->grad_assign = 1; /* it writes all of the gradient */
    n->op->backward(g, n);
    n->grad_assign = 0;
    g->mark[i] &= (unsigned char)~MARK_GRAD_STALE;
}

void nb__plan_views(nb_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node_t *n = &g->nodes[i];
        if (!n->op || !(n->op->flags & NB_OP_VIEW) || n->nin != 1) continue;
        nb_node_t *x = &g->nodes[n->in[0]];
        /* an op's output, or an input without a gradient (a parameter's or an
         * input's gradient is not an op's to overwrite) */
        int shareable = x->leaf == NB_LEAF_NONE || (x->leaf == NB_LEAF_INPUT && !x->requires_grad);
        if (!shareable || nb__numel(x) != nb__numel(n) || x->consumers != 1 ||
            !x->requires_grad != !n->requires_grad)
            continue;
        n->val = x->val;
        n->grad = x->grad;
    }
}

void nb__fill_all(nb_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        nb__fill_value(g, i);
        nb__fill_grad(g, i);
    }
}
