/* Reductions to a scalar: sum and mean of all elements.  settings.mean says
 * whether the sum is divided by the element count (known at run time). */
#include "../core/internal.h"

static void reduce_forward(nb_graph *g, nb_node_t *n) {
    const nb_node_t *x = nb__in(g, n, 0);
    size_t total = nb__numel(x);
    double acc = 0; /* accumulate in double: sums of many floats drift */
    for (size_t k = 0; k < total; k++) acc += (double)x->val[k];
    n->val[0] = (nb_real)(n->settings.mean ? acc / (double)total : acc);
}

static void reduce_backward(nb_graph *g, nb_node_t *n) {
    nb_node_t *x = nb__in(g, n, 0);
    if (!x->grad) return;
    size_t total = nb__numel(x);
    nb_real d = n->settings.mean ? n->grad[0] / (nb_real)total : n->grad[0];
    for (size_t k = 0; k < total; k++) x->grad[k] += d;
}

static const nb_op op_sum = {
    .name = "sum",
    .forward = reduce_forward,
    .backward = reduce_backward,
};
static const nb_op op_mean = {
    .name = "mean",
    .forward = reduce_forward,
    .backward = reduce_backward,
};

static nb_node reduce(nb_graph *g, const nb_op *op, int mean, nb_node x) {
    if (!nb__begin(g, op->name, 1, &x)) return NB_NONE;
    nb_node h = nb__add_node(g, op, 1, &x, 0, NULL, 0);
    if (h != NB_NONE) nb__node(g, h)->settings.mean = mean;
    return h;
}

nb_node nb_sum(nb_graph *g, nb_node x) { return reduce(g, &op_sum, 0, x); }
nb_node nb_mean(nb_graph *g, nb_node x) { return reduce(g, &op_mean, 1, x); }
