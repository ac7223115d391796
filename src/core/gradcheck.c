/* Gradient checking: analytic gradients against central finite differences.
 * Run on the double-precision build of the library (libnabla64) the check is
 * limited by the difference formula, not by float32 rounding. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static nb_status loss_value(nb_graph *g, nb_node loss, double *out) {
    nb_status s = nb_forward(g, loss);
    if (s == NB_OK) *out = (double)g->nodes[loss].val[0];
    return s;
}

/* What a forward may change besides activations: the buffers (batch-norm
 * running statistics), the random generator and the freeze flag.  Gradient
 * checks run forward many times; they put all of it back afterwards. */
typedef struct side_state {
    nb_real *buffers;
    nb_rng rng;
    int freeze_random;
} side_state;

static nb_status side_save(const nb_graph *g, side_state *st) {
    size_t total = 0;
    for (int k = 0; k < g->n_buffer_nodes; k++) total += nb__numel(&g->nodes[g->buffer_nodes[k]]);
    st->buffers = malloc((total ? total : 1) * sizeof *st->buffers);
    if (!st->buffers) return nb_err(NB_ERR_NOMEM, "nb_gradcheck: out of memory");
    size_t off = 0;
    for (int k = 0; k < g->n_buffer_nodes; k++) {
        const nb_node_t *n = &g->nodes[g->buffer_nodes[k]];
        memcpy(st->buffers + off, n->val, nb__numel(n) * sizeof *n->val);
        off += nb__numel(n);
    }
    st->rng = g->rng;
    st->freeze_random = g->freeze_random;
    return NB_OK;
}

static void side_restore(nb_graph *g, side_state *st) {
    size_t off = 0;
    for (int k = 0; k < g->n_buffer_nodes; k++) {
        nb_node_t *n = &g->nodes[g->buffer_nodes[k]];
        memcpy(n->val, st->buffers + off, nb__numel(n) * sizeof *n->val);
        off += nb__numel(n);
    }
    g->rng = st->rng;
    g->freeze_random = st->freeze_random;
    free(st->buffers);
}

/* Scalars of a leaf to compare: all of them, or max evenly spaced ones. */
static size_t sample_count(size_t numel, size_t max) { return max && max < numel ? max : numel; }
static size_t sample_index(size_t k, size_t numel, size_t count) {
    return count == numel ? k : (size_t)((double)k * (double)numel / (double)count);
}

/* The central difference of the loss in one scalar of a leaf, using the
 * step actually taken after rounding to nb_real. */
static nb_status central_difference(nb_graph *g, nb_node loss, nb_real *x, double eps,
                                    double *numeric) {
    nb_real saved = *x;
    double lp = 0, lm = 0;
    *x = (nb_real)((double)saved + eps);
    nb_status s = loss_value(g, loss, &lp);
    *x = (nb_real)((double)saved - eps);
    if (s == NB_OK) s = loss_value(g, loss, &lm);
    double step = (double)(nb_real)((double)saved + eps) - (double)(nb_real)((double)saved - eps);
    *x = saved;
    *numeric = (lp - lm) / step;
    return s;
}

/* Compare one scalar.  A difference over [x-eps, x+eps] that straddles a
 * kink (a ReLU input or a max-pool tie crossing zero) is not a derivative:
 * a value outside the tolerance is measured again with a step 100 times
 * smaller, which a kink at a random place rarely straddles too. */
static nb_status compare_one(nb_graph *g, nb_node loss, nb_real *x, double analytic, double eps,
                             double atol, double rtol, double *numeric, double *excess) {
    nb_status s = central_difference(g, loss, x, eps, numeric);
    *excess = fabs(analytic - *numeric) - (atol + rtol * fabs(*numeric));
    if (s == NB_OK && !(*excess <= 0)) {
        double fine = 0;
        s = central_difference(g, loss, x, eps / 100, &fine);
        double fine_excess = fabs(analytic - fine) - (atol + rtol * fabs(fine));
        if (s == NB_OK && fine_excess <= 0) *numeric = fine, *excess = fine_excess;
    }
    return s;
}

/* The analytic gradient of every checked scalar, copied before perturbing. */
static double *copy_analytic(const nb_graph *g, nb_node loss, size_t max_per_tensor) {
    size_t total = 0;
    for (int i = 0; i <= loss; i++) {
        const nb_node_t *n = &g->nodes[i];
        if (n->leaf != NB_LEAF_NONE && n->requires_grad)
            total += sample_count(nb__numel(n), max_per_tensor);
    }
    double *analytic = malloc((total ? total : 1) * sizeof *analytic);
    if (!analytic) return NULL;
    size_t k = 0;
    for (int i = 0; i <= loss; i++) {
        const nb_node_t *n = &g->nodes[i];
        if (n->leaf == NB_LEAF_NONE || !n->requires_grad) continue;
        size_t numel = nb__numel(n), count = sample_count(numel, max_per_tensor);
        for (size_t c = 0; c < count; c++)
            analytic[k++] = (double)n->grad[sample_index(c, numel, count)];
    }
    return analytic;
}

/* The check proper.  The first forward may draw random numbers (dropout
 * masks); every later one reuses them, so all differences see one function. */
static nb_status gradcheck_run(nb_graph *g, nb_node loss, double eps, double atol,
                               double rtol, size_t max_per_tensor, nb_gradcheck_report *rep) {
    nb_status s = nb_forward(g, loss);
    if (s != NB_OK) return s;
    g->freeze_random = 1;
    nb_zero_grad(g);
    s = nb_backward(g, loss);
    if (s != NB_OK) return s;
    double *analytic = copy_analytic(g, loss, max_per_tensor);
    if (!analytic) return nb_err(NB_ERR_NOMEM, "nb_gradcheck: out of memory");
    size_t k = 0;
    double worst_excess = -1;
    for (int i = 0; i <= loss && s == NB_OK; i++) {
        nb_node_t *n = &g->nodes[i];
        if (n->leaf == NB_LEAF_NONE || !n->requires_grad) continue;
        size_t numel = nb__numel(n), count = sample_count(numel, max_per_tensor);
        for (size_t c = 0; c < count && s == NB_OK; c++, k++) {
            size_t j = sample_index(c, numel, count);
            double numeric = 0, excess = 0;
            s = compare_one(g, loss, &n->val[j], analytic[k], eps, atol, rtol, &numeric, &excess);
            double err = fabs(analytic[k] - numeric);
            rep->checked++;
            if (excess > 0 || isnan(err)) rep->failed++;
            if (err > rep->max_abs_err) rep->max_abs_err = err;
            if (excess > worst_excess || isnan(err)) {
                worst_excess = isnan(err) ? INFINITY : excess;
                rep->worst_node = i;
                rep->worst_index = j;
                rep->worst_analytic = analytic[k];
                rep->worst_numeric = numeric;
            }
        }
    }
    free(analytic);
    if (s == NB_OK) s = nb_forward(g, loss); /* leave values consistent */
    return s;
}

nb_status nb_gradcheck_sampled(nb_graph *g, nb_node loss, double eps, double atol, double rtol,
                               size_t max_per_tensor, nb_gradcheck_report *rep) {
    if (!g) return nb_err(NB_ERR_ARG, "nb_gradcheck: graph is NULL");
    if (loss < 0 || loss >= g->n_nodes)
        return nb_err(NB_ERR_ARG, "nb_gradcheck: node %d does not exist (graph has %d nodes)",
                      loss, g->n_nodes);
    if (!rep) return nb_err(NB_ERR_ARG, "nb_gradcheck: report is NULL");
    if (!(eps > 0)) return nb_err(NB_ERR_ARG, "nb_gradcheck: eps must be positive");
    memset(rep, 0, sizeof *rep);
    rep->worst_node = NB_NONE;
    side_state side = {0};
    nb_status s = side_save(g, &side);
    if (s != NB_OK) return s;
    s = gradcheck_run(g, loss, eps, atol, rtol, max_per_tensor, rep);
    side_restore(g, &side);
    return s;
}

nb_status nb_gradcheck(nb_graph *g, nb_node loss, double eps, double atol, double rtol,
                       nb_gradcheck_report *rep) {
    return nb_gradcheck_sampled(g, loss, eps, atol, rtol, 0, rep);
}
