/* Inverted dropout (PyTorch's Dropout): in training y = x * mask with mask
 * elements 1/(1-p) (kept, probability 1 - p) or 0, so the expected output
 * equals x and eval mode is simply the identity.
 *
 * The mask is drawn from the graph's generator once per forward (below) and
 * kept in the node's scratch for backward.  With nb_graph_freeze_random the last mask
 * is reused, as long as it was drawn for the current arena layout (a new batch
 * size moves the scratch and needs a new mask).
 *
 * Settings: p, and the mask's state (nb_dropout_settings): whether the last
 * forward applied the mask (training mode), which backward follows, and
 * the arena layout the mask was drawn under. */
#include "../core/internal.h"
#include "../kernels/parallel.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static int uses_mask(const nb_node_t *n) { return n->settings.dropout.p > 0; }

static size_t dropout_scratch(const nb_graph *g, const nb_node_t *n) {
    (void)g;
    return uses_mask(n) ? nb__numel(n) : 0;
}

/* The mask is counter-based: each forward draws one 64-bit key from the
 * graph's generator, and element k keeps its value when output k of
 * SplitMix64 started at that key (a well-tested generator whose k-th output
 * needs no other) is below 1 - p.  So every element is drawn on its own:
 * the mask is made in parallel, the same on any thread count, and a process
 * that holds samples [off, off + B) of a batch (sample_offset) draws for
 * them what one process holding the whole batch draws. */
NB_LOOP_BODY uint64_t splitmix64(uint64_t key, uint64_t k) {
    uint64_t z = key + (k + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

enum { DROPOUT_SLICE_MIN = 1 << 14 }; /* values per thread at least */

typedef struct dropout_job {
    nb_node_t *n;
    const nb_real *x;
    nb_real *dx;     /* backward: the input's gradient */
    int draw;        /* forward: draw a new mask first */
    uint64_t key, first; /* the mask's key, and the counter of element 0 */
    double keep;
    int parts;
} dropout_job;

NB_VECTOR_LOOP static void forward_slice(void *ctx, int part) {
    const dropout_job *j = ctx;
    size_t k0, k1;
    nb__part_range(nb__numel(j->n), part, j->parts, 16, &k0, &k1);
    nb_real *restrict mask = j->n->scratch, *restrict y = j->n->val;
    const nb_real *restrict x = j->x;
    const nb_real scale = (nb_real)(1.0 / j->keep);
    /* u = (z >> 11) 2^-53 < keep, in integers: z >> 11 < ceil(keep 2^53) */
    const uint64_t limit = (uint64_t)ceil(j->keep * 0x1.0p53);
    for (size_t k = k0; j->draw && k < k1; k++)
        mask[k] = splitmix64(j->key, j->first + k) >> 11 < limit ? scale : R(0);
    for (size_t k = k0; k < k1; k++) y[k] = x[k] * mask[k];
}

NB_VECTOR_LOOP static void backward_slice(void *ctx, int part) {
    const dropout_job *j = ctx;
    size_t k0, k1;
    nb__part_range(nb__numel(j->n), part, j->parts, 16, &k0, &k1);
    const nb_real *restrict dy = j->n->grad, *restrict mask = j->n->scratch;
    nb_real *restrict dx = j->dx;
    if (j->n->settings.dropout.masked)
        for (size_t k = k0; k < k1; k++) dx[k] += dy[k] * mask[k];
    else
        for (size_t k = k0; k < k1; k++) dx[k] += dy[k];
}

static void run(dropout_job *j, void (*slice)(void *, int)) {
    j->parts = nb__part_count(nb__numel(j->n), DROPOUT_SLICE_MIN);
    if (j->parts > 1) nb__parallel(j->parts, slice, j);
    else slice(j, 0);
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
    dropout_job j = {.n = n, .x = x->val, .keep = 1.0 - (double)ds->p};
    int have_mask = ds->has_mask && ds->mask_plan == g->plan_id;
    j.draw = !g->freeze_random || !have_mask;
    if (j.draw) {
        j.key = nb_rng_u64(&g->rng);
        /* a batched node's elements are counted from the process's first sample */
        if (n->batched && n->dims[0] > 0)
            j.first = (uint64_t)g->sample_offset * (len / (size_t)n->dims[0]);
        ds->mask_plan = g->plan_id;
        ds->has_mask = 1;
    }
    run(&j, forward_slice);
}

static void dropout_backward(nb_graph *g, nb_node_t *n) {
    nb_node_t *x = nb__in(g, n, 0);
    if (!x->grad) return;
    dropout_job j = {.n = n, .dx = x->grad};
    run(&j, backward_slice);
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
