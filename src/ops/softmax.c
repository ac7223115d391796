/* Softmax and log-softmax over the last dimension.
 *
 * The tensor is seen as rows of `cols` values (cols = last dim, rows =
 * numel / cols); each row is normalised on its own.  Both ops subtract the
 * row maximum before exponentiating, so no exp can overflow, and both
 * differentiate from their saved output (docs/definitions.md, Softmax and
 * log-softmax), so they need no scratch memory:
 *   softmax:     dx = (g - sum(g y)) y
 *   log_softmax: dx = g - exp(y) sum(g)                                       */
#include "../core/internal.h"

static size_t row_length(const nb_node_t *n) { return (size_t)n->dims[n->ndim - 1]; }

static nb_real row_max(const nb_real *x, size_t cols) {
    nb_real m = x[0];
    for (size_t k = 1; k < cols; k++)
        if (x[k] > m) m = x[k];
    return m;
}

static void softmax_forward(nb_graph *g, nb_node_t *n) {
    const nb_real *x = nb__in(g, n, 0)->val;
    size_t cols = row_length(n), total = nb__numel(n);
    for (size_t o = 0; o < total; o += cols) {
        const nb_real *xr = x + o;
        nb_real *yr = n->val + o;
        nb_real m = row_max(xr, cols), sum = 0;
        for (size_t k = 0; k < cols; k++) {
            yr[k] = nb_exp(xr[k] - m);
            sum += yr[k];
        }
        nb_real inv = R(1) / sum; /* sum >= 1: the maximum contributes exp(0) */
        for (size_t k = 0; k < cols; k++) yr[k] *= inv;
    }
}

static void softmax_backward(nb_graph *g, nb_node_t *n) {
    nb_node_t *in = nb__in(g, n, 0);
    if (!in->grad) return;
    size_t cols = row_length(n), total = nb__numel(n);
    for (size_t o = 0; o < total; o += cols) {
        const nb_real *yr = n->val + o, *gr = n->grad + o;
        nb_real *dx = in->grad + o;
        nb_real dot = 0;
        for (size_t k = 0; k < cols; k++) dot += gr[k] * yr[k];
        for (size_t k = 0; k < cols; k++) dx[k] += (gr[k] - dot) * yr[k];
    }
}

static void log_softmax_forward(nb_graph *g, nb_node_t *n) {
    const nb_real *x = nb__in(g, n, 0)->val;
    size_t cols = row_length(n), total = nb__numel(n);
    for (size_t o = 0; o < total; o += cols) {
        const nb_real *xr = x + o;
        nb_real *yr = n->val + o;
        nb_real m = row_max(xr, cols), sum = 0;
        for (size_t k = 0; k < cols; k++) sum += nb_exp(xr[k] - m);
        nb_real log_sum = nb_log(sum);
        for (size_t k = 0; k < cols; k++) yr[k] = (xr[k] - m) - log_sum;
    }
}

static void log_softmax_backward(nb_graph *g, nb_node_t *n) {
    nb_node_t *in = nb__in(g, n, 0);
    if (!in->grad) return;
    size_t cols = row_length(n), total = nb__numel(n);
    for (size_t o = 0; o < total; o += cols) {
        const nb_real *yr = n->val + o, *gr = n->grad + o;
        nb_real *dx = in->grad + o;
        nb_real gsum = 0;
        for (size_t k = 0; k < cols; k++) gsum += gr[k];
        for (size_t k = 0; k < cols; k++) dx[k] += gr[k] - nb_exp(yr[k]) * gsum;
    }
}

static const nb_op op_softmax = {
    .name = "softmax",
    .forward = softmax_forward,
    .backward = softmax_backward,
};
static const nb_op op_log_softmax = {
    .name = "log_softmax",
    .forward = log_softmax_forward,
    .backward = log_softmax_backward,
};

static nb_node softmax_like(nb_graph *g, const nb_op *op, nb_node x) {
    if (!nb__begin(g, op->name, 1, &x)) return NB_NONE;
    const nb_node_t *X = nb__node(g, x);
    char s[96];
    if (X->ndim == 0)
        return nb__fail(g, NB_ERR_SHAPE, "%s: input '%s' is a scalar; it needs a "
                        "dimension to normalise over", op->name, X->name);
    /* A batched [B] tensor's last dimension is the batch: normalising over it
     * would mix samples and change with the batch size. */
    if (X->batched && X->ndim == 1)
        return nb__fail(g, NB_ERR_SHAPE, "%s: input '%s' has shape %s (batched) with no "
                        "dimension after the batch to normalise over", op->name, X->name,
                        nb_shape_str(s, sizeof s, X->ndim, X->dims));
    return nb__add_node(g, op, 1, &x, X->ndim, X->dims, X->batched);
}

nb_node nb_softmax(nb_graph *g, nb_node x) { return softmax_like(g, &op_softmax, x); }
nb_node nb_log_softmax(nb_graph *g, nb_node x) { return softmax_like(g, &op_log_softmax, x); }
