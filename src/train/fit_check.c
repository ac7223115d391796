/* The checks of a training setup, each written once: the settings alone
 * (nb_fit_check), the nodes, the data and the optimiser against the graph. */
#include "train.h"

static int node_ok(const nb_graph *g, nb_node n) { return n >= 0 && n < g->n_nodes; }

nb_status nb_fit_check(const nb_fit_config *cfg) {
    const char *fn = "nb_fit";
    if (!cfg) return nb_err(NB_ERR_ARG, "%s: config is NULL", fn);
    if (cfg->epochs <= 0)
        return nb_err(NB_ERR_ARG, "%s: epochs is %d; expected at least 1", fn, cfg->epochs);
    if (cfg->batch_size <= 0)
        return nb_err(NB_ERR_ARG, "%s: batch_size is %d; expected at least 1", fn,
                      cfg->batch_size);
    if (!(cfg->clip_norm >= 0) || !nb__is_finite(cfg->clip_norm))
        return nb_err(NB_ERR_ARG, "%s: clip_norm %g must be finite and >= 0 (0: no "
                      "clipping)", fn, cfg->clip_norm);
    nb_status s = nb_schedule_check(&cfg->schedule);
    if (s != NB_OK) return nb_err_prefix(s, "%s", fn);
    if (cfg->augment_crop < 0)
        return nb_err(NB_ERR_ARG, "%s: augment_crop %d must be from 0 to less than the image "
                      "size", fn, cfg->augment_crop);
    if (cfg->start_epoch < 0 || cfg->start_epoch >= cfg->epochs)
        return nb_err(NB_ERR_ARG, "%s: start_epoch %d must be from 0 to epochs - 1 = %d", fn,
                      cfg->start_epoch, cfg->epochs - 1);
    return NB_OK;
}

/* The output gives one row of at least 2 scores per sample, matching the target. */
static nb_status check_output(const nb_graph *g, const char *fn, nb_node target,
                              nb_node output) {
    const nb_node_t *O = &g->nodes[output];
    char s[128];
    if (!O->batched)
        return nb_err(NB_ERR_SHAPE, "%s: output '%s' has shape %s and is not batched; "
                      "accuracy needs one row of scores per sample", fn, O->name,
                      nb_shape_str(s, sizeof s, O->ndim, O->dims));
    size_t c = nb__sample_numel(O), t = nb__sample_numel(&g->nodes[target]);
    if (c < 2)
        return nb_err(NB_ERR_SHAPE, "%s: output '%s' has %zu score per sample; accuracy "
                      "(argmax) needs at least 2 classes (pass NB_NONE as output)", fn,
                      O->name, c);
    /* [B, T, C] scores: one class index per position */
    size_t positions = O->ndim >= 3 ? c / (size_t)O->dims[O->ndim - 1] : 1;
    if (t != 1 && t != c && t != positions)
        return nb_err(NB_ERR_SHAPE, "%s: output '%s' has %zu scores per sample but target "
                      "'%s' has %zu values; expected 1 (class index) or %zu "
                      "(probabilities)%s", fn, O->name, c, g->nodes[target].name, t, c,
                      positions > 1 ? " per sample, or one class index per position" : "");
    return NB_OK;
}

nb_status nb__check_nodes(const nb_graph *g, const char *fn, nb_node input, nb_node target,
                          nb_node loss, nb_node output) {
    if (!g) return nb_err(NB_ERR_ARG, "%s: graph is NULL", fn);
    if (g->status != NB_OK)
        return nb_err(g->status, "%s: the graph has a build error", fn);
    const nb_node ids[4] = {input, target, loss, output};
    const char *what[4] = {"input", "target", "loss", "output"};
    for (int k = 0; k < 4; k++) {
        if (k == 3 && output == NB_NONE) continue;
        if (!node_ok(g, ids[k]))
            return nb_err(NB_ERR_ARG, "%s: %s node %d does not exist (graph has %d nodes)",
                          fn, what[k], ids[k], g->n_nodes);
    }
    for (int k = 0; k < 2; k++) {
        const nb_node_t *n = &g->nodes[ids[k]];
        if (n->leaf != NB_LEAF_INPUT)
            return nb_err(NB_ERR_ARG, "%s: %s node '%s' is not an input (made by nb_input)",
                          fn, what[k], n->name);
    }
    if (input == target)
        return nb_err(NB_ERR_ARG, "%s: input and target are the same node '%s'", fn,
                      g->nodes[input].name);
    const nb_node_t *L = &g->nodes[loss];
    if (L->batched || nb__numel(L) != 1) {
        char s[128];
        return nb_err(NB_ERR_SHAPE, "%s: loss '%s' has shape %s%s; expected a scalar", fn,
                      L->name, nb_shape_str(s, sizeof s, L->ndim, L->dims),
                      L->batched ? " (batched)" : "");
    }
    return output != NB_NONE ? check_output(g, fn, target, output) : NB_OK;
}

nb_status nb__check_data(const nb_graph *g, const char *fn, const char *which,
                         const nb_data *d, nb_node input, nb_node target) {
    if (!d) return nb_err(NB_ERR_ARG, "%s: %s dataset is NULL", fn, which);
    if (d->n == 0) return nb_err(NB_ERR_ARG, "%s: %s dataset has no samples", fn, which);
    if (!d->y) return nb_err(NB_ERR_ARG, "%s: %s dataset has a NULL y array", fn, which);
    if (!d->x_real == !d->x_u8)
        return nb_err(NB_ERR_ARG, "%s: %s dataset must set exactly one of x and x_u8 "
                      "(x_real or x_u8)", fn, which);
    if (d->n > (size_t)1 << 40)
        return nb_err(NB_ERR_ARG, "%s: %s dataset has %zu samples (too many)", fn, which,
                      d->n);
    size_t xs = nb__sample_numel(&g->nodes[input]), ys = nb__sample_numel(&g->nodes[target]);
    if (d->sample_size != xs)
        return nb_err(NB_ERR_SHAPE, "%s: %s dataset has x_size %zu but input '%s' takes %zu "
                      "values per sample", fn, which, d->sample_size, g->nodes[input].name, xs);
    if (d->y_size != ys)
        return nb_err(NB_ERR_SHAPE, "%s: %s dataset has y_size %zu but target '%s' takes %zu "
                      "values per sample", fn, which, d->y_size, g->nodes[target].name, ys);
    return NB_OK;
}

nb_status nb__check_optimizer(const nb_graph *g, const char *fn, const nb_optim *o) {
    if (!o)
        return nb_err(NB_ERR_ARG, "%s: no optimizer (set cfg.optimizer to one made by "
                      "nb_optim_new)", fn);
    if (nb_optim_size(o) != nb_param_count(g))
        return nb_err(NB_ERR_ARG, "%s: the optimiser is for %zu parameters, the graph has %zu",
                      fn, nb_optim_size(o), nb_param_count(g));
    return NB_OK;
}
