/* Frozen parameters: kept as they are by training (fine-tuning).  A frozen
 * parameter has no gradient (requires_grad 0, grad NULL), so backward
 * computes no dW for it and does not descend into a part of the graph that
 * leads only to frozen parameters.  The trainable parameters' slices of the
 * flat buffer are kept as [begin, end) ranges for the optimiser. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

/* Room for n ranges. */
static nb_status reserve_ranges(nb_graph *g, int n) {
    if (n <= g->cap_train_ranges) return NB_OK;
    int cap = n < 16 ? 16 : 2 * n;
    size_t *r = realloc(g->train_ranges, 2 * (size_t)cap * sizeof *r);
    if (!r) return nb_err(NB_ERR_NOMEM, "out of memory for %d parameter ranges", cap);
    g->train_ranges = r;
    g->cap_train_ranges = cap;
    return NB_OK;
}

nb_status nb__add_train_range(nb_graph *g, size_t begin, size_t end) {
    int n = g->n_train_ranges;
    if (n && g->train_ranges[2 * n - 1] == begin) {
        g->train_ranges[2 * n - 1] = end;
        return NB_OK;
    }
    nb_status s = reserve_ranges(g, n + 1);
    if (s != NB_OK) return s;
    g->train_ranges[2 * n] = begin;
    g->train_ranges[2 * n + 1] = end;
    g->n_train_ranges = n + 1;
    return NB_OK;
}

/* Rebuild the ranges from the parameters (in creation order, which is
 * their order in the flat buffer). */
static nb_status rebuild_ranges(nb_graph *g) {
    nb_status s = reserve_ranges(g, g->n_param_nodes); /* enough: no failure half-way */
    if (s != NB_OK) return s;
    g->n_train_ranges = 0;
    for (int k = 0; k < g->n_param_nodes; k++) {
        const nb_node_t *p = &g->nodes[g->param_nodes[k]];
        if (!p->requires_grad) continue;
        nb__add_train_range(g, p->val_off, p->val_off + nb__numel(p));
    }
    return NB_OK;
}

static nb_status param_node(const nb_graph *g, nb_node p, const char *fn) {
    if (!g) return nb_err(NB_ERR_ARG, "%s: graph is NULL", fn);
    if (p < 0 || p >= g->n_nodes) return nb_err(NB_ERR_ARG, "%s: invalid node %d", fn, p);
    if (g->nodes[p].leaf != NB_LEAF_PARAM)
        return nb_err(NB_ERR_ARG, "%s: '%s' is not a parameter", fn, g->nodes[p].name);
    return NB_OK;
}

nb_status nb_param_freeze(nb_graph *g, nb_node p, int frozen) {
    nb_status s = param_node(g, p, "nb_param_freeze");
    if (s != NB_OK) return s;
    nb_node_t *n = &g->nodes[p];
    if ((n->requires_grad == 0) == (frozen != 0)) return NB_OK;
    n->requires_grad = frozen == 0;
    n->grad = frozen ? NULL : g->grads + n->val_off;
    g->n_frozen += frozen ? 1 : -1;
    /* a frozen gradient stays zero (nothing writes it), so clipping and the
     * finite check see nothing of it */
    if (frozen) memset(g->grads + n->val_off, 0, nb__numel(n) * sizeof *g->grads);
    nb__propagate_requires_grad(g, p);
    return rebuild_ranges(g);
}

int nb_param_is_frozen(const nb_graph *g, nb_node p) {
    if (!g || p < 0 || p >= g->n_nodes || g->nodes[p].leaf != NB_LEAF_PARAM) return 0;
    return !g->nodes[p].requires_grad;
}

nb_status nb_freeze_matching(nb_graph *g, const char *pattern, int frozen, int *count) {
    if (count) *count = 0;
    if (!g || !pattern)
        return nb_err(NB_ERR_ARG, "nb_freeze_matching: %s is NULL", g ? "pattern" : "graph");
    int matched = 0;
    for (int k = 0; k < g->n_param_nodes; k++) {
        nb_node p = g->param_nodes[k];
        if (fnmatch(pattern, g->nodes[p].name, 0) != 0) continue;
        nb_status s = nb_param_freeze(g, p, frozen);
        if (s != NB_OK) return s;
        matched++;
    }
    if (count) *count = matched;
    return NB_OK;
}

const size_t *nb_trainable_ranges(const nb_graph *g, int *n) {
    if (n) *n = g ? g->n_train_ranges : 0;
    return g ? g->train_ranges : NULL;
}
