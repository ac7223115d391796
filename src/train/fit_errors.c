/* What nb_fit says when a step fails: the place in training, and for a
 * non-finite loss or gradient where the first NaN or inf was born. */
#include "train.h"

#include <stdio.h>

/* Where the first non-finite number of the failed step is, and what to do
 * about it, into where ("" if nothing is found). */
static void locate_nonfinite(nb_graph *g, const nb_fit_config *cfg, int grads,
                             const nb__step_place *at, char *where, size_t size) {
    nb_nonfinite r;
    if (nb_find_nonfinite(g, cfg->loss, grads, &r) != NB_OK || r.node == NB_NONE) {
        snprintf(where, size, "; lower the learning rate or check the data");
        return;
    }
    char desc[480];
    nb_nonfinite_describe(g, &r, desc, sizeof desc);
    const nb_node_t *n = &g->nodes[r.node];
    if (!r.in_grad && n->leaf == NB_LEAF_INPUT && n->dims[0] > 0) {
        size_t sample = r.index / (nb__numel(n) / (size_t)n->dims[0]);
        snprintf(where, size, ": %s; sample %zu of the batch is sample %zu of the training "
                 "set; check the data", desc, sample, at->idx[at->start + sample]);
    } else if (!r.in_grad && n->leaf == NB_LEAF_PARAM && at->first_step) {
        snprintf(where, size, ": %s; it was so before training started: check the initial "
                 "or loaded weights", desc);
    } else if (!r.in_grad && n->leaf == NB_LEAF_PARAM) {
        /* the gradients of every step are checked: the update overflowed */
        snprintf(where, size, ": %s; optimiser step %ld wrote it from finite gradients: "
                 "lower the learning rate", desc, at->step - 1);
    } else {
        snprintf(where, size, ": %s; lower the learning rate or check the data", desc);
    }
}

nb_status nb__explain_step_error(nb_graph *g, const nb_fit_config *cfg, nb_status s,
                                 const nb__step_place *at) {
    if (s != NB_ERR_NUMERIC)
        return nb_err_prefix(s, "nb_fit: epoch %d, step %zu of %zu", at->epoch, at->batch + 1,
                             at->batches);
    /* nb_train_step's own checks: the loss first, then the gradients */
    double loss = (double)g->nodes[cfg->loss].val[0];
    const char *what = loss != loss        ? "loss is NaN"
                       : !nb__is_finite(loss) ? (loss > 0 ? "loss is inf" : "loss is -inf")
                                              : "gradient is not finite";
    char where[600];
    locate_nonfinite(g, cfg, nb__is_finite(loss), at, where, sizeof where);
    return nb_err(NB_ERR_NUMERIC, "nb_fit: %s at epoch %d, step %zu of %zu (optimiser step "
                  "%ld)%s", what, at->epoch, at->batch + 1, at->batches, at->step, where);
}

nb_status nb__update_error(const nb_graph *g, int epoch, long step) {
    for (int p = 0; p < g->n_param_nodes; p++) {
        const nb_node_t *n = &g->nodes[g->param_nodes[p]];
        size_t len = nb__numel(n);
        for (size_t k = 0; k < len; k++) {
            if (nb__is_finite((double)n->val[k])) continue;
            return nb_err(NB_ERR_NUMERIC, "nb_fit: optimiser step %ld (the last of epoch %d) "
                          "made parameter '%s' %s (element %zu) from finite gradients; lower "
                          "the learning rate", step, epoch, n->name,
                          n->val[k] != n->val[k] ? "NaN" : "infinite", k);
        }
    }
    return nb_err(NB_ERR_NUMERIC, "nb_fit: optimiser step %ld (the last of epoch %d) made a "
                  "parameter non-finite", step, epoch);
}
