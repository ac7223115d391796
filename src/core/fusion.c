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
 * The results are the unfused ops' bits.  What the pair no longer writes,
 * the convolution's own value and gradient, is computed on demand: nb_value
 * and nb_grad fill it in (by running the op's forward unfused, or the relu's
 * backward), so every node still reads as it would without fusion. */
#include "internal.h"

/* Number of input slots, over all nodes, that read node i. */
static int consumers(const nb_graph *g, int i) {
    int c = 0;
    for (int j = i + 1; j < g->n_nodes; j++)
        for (int k = 0; k < g->nodes[j].nin; k++) c += g->nodes[j].in[k] == i;
    return c;
}

void nb__plan_fusion(nb_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i].epilogue = g->nodes[i].fused_into = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        nb_node_t *n = &g->nodes[i];
        if (!n->op || !(n->op->flags & NB_OP_FUSES_RELU) || consumers(g, i) != 1) continue;
        for (int j = i + 1; j < g->n_nodes; j++) {
            nb_node_t *r = &g->nodes[j];
            if (r->nin < 1 || r->in[0] != i) continue;
            if (r->op && (r->op->flags & NB_OP_RELU) && r->nin == 1) {
                n->epilogue = j + 1;
                r->fused_into = i + 1;
            }
            break;
        }
    }
}

void nb__fusion_begin_forward(nb_graph *g) {
    const unsigned char fusion = MARK_FUSED | MARK_VAL_STALE;
    for (int i = 0; i < g->n_nodes; i++) {
        g->mark[i] &= (unsigned char)~fusion;
        int r = g->nodes[i].epilogue - 1;
        if (r >= 0 && (g->mark[i] & MARK_NEEDED) && (g->mark[r] & MARK_NEEDED))
            g->mark[i] |= fusion;
    }
}

nb_node_t *nb__epilogue(nb_graph *g, const nb_node_t *n) {
    int i = (int)(n - g->nodes);
    if (g->unfused || !n->epilogue || !(g->mark[i] & MARK_FUSED)) return NULL;
    return &g->nodes[n->epilogue - 1];
}

int nb__fused_away(const nb_graph *g, const nb_node_t *n) {
    return n->fused_into && (g->mark[n->fused_into - 1] & MARK_FUSED);
}

void nb__fill_value(nb_graph *g, int i) {
    if (!(g->mark[i] & MARK_VAL_STALE)) return;
    nb_node_t *n = &g->nodes[i];
    g->unfused = 1;
    n->op->forward(g, n);
    g->unfused = 0;
    g->mark[i] &= (unsigned char)~MARK_VAL_STALE;
}

void nb__fill_grad(nb_graph *g, int i) {
    if (!(g->mark[i] & MARK_GRAD_STALE)) return;
    nb_node_t *r = &g->nodes[g->nodes[i].epilogue - 1];
    r->grad_assign = 1; /* the relu's backward writes all of the gradient */
    r->op->backward(g, r);
    r->grad_assign = 0;
    g->mark[i] &= (unsigned char)~MARK_GRAD_STALE;
}

void nb__fill_all(nb_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        nb__fill_value(g, i);
        nb__fill_grad(g, i);
    }
}
