/* Inverted dropout (PyTorch's Dropout): in training y = x * mask with mask
 * elements 1/(1-p) (kept, probability 1 - p) or 0, so the expected output
 * equals x and eval mode is simply the identity.
 *
 * The mask is drawn from the graph's generator once per forward and kept in
 * the node's scratch for backward.  With nb_graph_freeze_random the last mask
 * is reused, as long as it was drawn for the current arena layout (a new batch
 * size moves the scratch and needs a new mask).
 *
 * Settings: p, and the mask's state (nb_dropout_settings): whether the last
 * forward applied the mask (training mode), which backward follows, and
 * the arena layout the mask was drawn under. */
#include "../core/internal.h"

#include <string.h>

static int uses_mask(const nb_node_t *n) { return n->settings.dropout.p > 0; }

static size_t dropout_scratch(const nb_graph *g, const nb_node_t *n) {
    (void)g;
    return uses_mask(n) ? nb__numel(n) : 0;
}

static void draw_mask(nb_graph *g, nb_node_t *n) {
    nb_dropout_settings *ds = &n->settings.dropout;
    const double keep = 1.0 - (double)ds->p;
    const nb_real scale = (nb_real)(1.0 / keep);
    nb_real *mask = n->scratch;
    for (size_t k = 0, len = nb__numel(n); k < len; k++)
        mask[k] = nb_rng_uniform(&g->rng) < keep ? scale : R(0);
    ds->mask_plan = g->plan_id;
    ds->has_mask = 1;
}

static void dropout_forward(nb_graph *g, nb_node_t *n) {
    const nb_node_t *x = nb__in(g, n, 0);
    const size_t len = nb__numel(n);
    nb_dropout_settings *ds = &n->settings.dropout;
    ds->masked = g->training && uses_mask(n);
    if (!ds->masked) {
        memcpy(n->val, x->val, len * sizeof *n->val);
        return;
    }
    int have_mask = ds->has_mask && ds->mask_plan == g->plan_id;
    if (!g->freeze_random || !have_mask) draw_mask(g, n);
    for (size_t k = 0; k < len; k++) n->val[k] = x->val[k] * n->scratch[k];
}

static void dropout_backward(nb_graph *g, nb_node_t *n) {
    nb_node_t *x = nb__in(g, n, 0);
    if (!x->grad) return;
    const size_t len = nb__numel(n);
    if (n->settings.dropout.masked)
        for (size_t k = 0; k < len; k++) x->grad[k] += n->grad[k] * n->scratch[k];
    else
        for (size_t k = 0; k < len; k++) x->grad[k] += n->grad[k];
}

static const nb_op op_dropout = {
    .name = "dropout",
    .forward = dropout_forward,
    .backward = dropout_backward,
    .scratch = dropout_scratch,
};

nb_node nb_dropout(nb_graph *g, nb_node x, nb_real p) {
    if (!nb__begin(g, "dropout", 1, &x)) return NB_NONE;
    if (!(p >= 0 && p < 1))
        return nb__fail(g, NB_ERR_ARG, "dropout: p = %g must be in [0, 1) (the probability "
                        "of zeroing an element%s)", (double)p,
                        p == 1 ? "; 1 would zero everything" : "");
    const nb_node_t *X = nb__node(g, x);
    int dims[NB_MAX_DIMS]; /* a copy: adding the node may move the node table */
    memcpy(dims, X->dims, sizeof dims);
    nb_node y = nb__add_node(g, &op_dropout, 1, &x, X->ndim, dims, X->batched);
    if (y != NB_NONE) nb__node(g, y)->settings.dropout = (nb_dropout_settings){.p = p};
    return y;
}
