/* One training step: zero the gradients, forward, backward, combine the
 * gradients of several processes, clip, and one optimiser step. */
#include "train.h"
#include "../kernels/parallel.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Are all of v[0..n) finite?  Every step checks its gradients, so this
 * must cost next to nothing: a non-finite number has an all-ones exponent,
 * and OR-ing integer comparisons is a reduction the compiler vectorises
 * (a float one it may not reorder).  Large buffers are read in parallel
 * slices, one flag per slice, compiled for each vector width. */
enum { FINITE_SLICE_MIN = 1 << 16, FINITE_SLICES_MAX = 64 };

typedef struct finite_job {
    const nb_real *v;
    size_t n;
    int parts;
    unsigned char bad[FINITE_SLICES_MAX];
} finite_job;

NB_VECTOR_LOOP static void finite_slice(void *ctx, int part) {
#ifdef NB_REAL_DOUBLE
    const uint64_t exp_mask = 0x7FF0000000000000ull;
    uint64_t bad = 0, bits;
#else
    const uint32_t exp_mask = 0x7F800000u;
    uint32_t bad = 0, bits;
#endif
    finite_job *j = ctx;
    size_t k0, k1;
    nb__part_range(j->n, part, j->parts, 16, &k0, &k1);
    for (size_t k = k0; k < k1; k++) {
        memcpy(&bits, j->v + k, sizeof bits);
        bad |= (bits & exp_mask) == exp_mask;
    }
    j->bad[part] = bad != 0;
}

static int all_finite(const nb_real *v, size_t n) {
    finite_job j = {.v = v, .n = n, .parts = nb__part_count(n, FINITE_SLICE_MIN)};
    if (j.parts > FINITE_SLICES_MAX) j.parts = FINITE_SLICES_MAX;
    nb__parallel(j.parts, finite_slice, &j);
    for (int p = 0; p < j.parts; p++)
        if (j.bad[p]) return 0;
    return 1;
}

static nb_status check_step(nb_graph *g, const nb_fit_config *cfg) {
    const char *fn = "nb_train_step";
    if (!cfg) return nb_err(NB_ERR_ARG, "%s: config is NULL", fn);
    nb_status s = nb__check_nodes(g, fn, cfg->input, cfg->target, cfg->loss, cfg->output);
    if (s == NB_OK) s = nb__check_optimizer(g, fn, cfg->optimizer);
    if (s == NB_OK && !g->nodes[cfg->loss].requires_grad)
        s = nb_err(NB_ERR_ARG, "%s: loss '%s' does not depend on any %sparameter", fn,
                   g->nodes[cfg->loss].name, g->n_frozen ? "unfrozen " : "");
    return s;
}

/* The gradient of the processes' global batch: each process's gradient is
 * of its own mean loss, so their mean weighted by the terms each loss
 * averaged (the samples, or positions that count, of its slice). */
static nb_status weighted_sum(nb_graph *g, nb_node loss, nb_dist *d, nb_real *grads,
                              size_t n) {
    return nb__dist_mean(d, grads, n, nb__loss_weight(g, loss, g->batch));
}

/* A process that cannot go on still joins the step's sum, with NaN
 * gradients, so that the others stop at the same step instead of waiting
 * for it; `failure` stays the error to report. */
static nb_status poison_sum(nb_dist *d, nb_real *grads, size_t n, nb_status failure) {
    char why[512];
    snprintf(why, sizeof why, "%s", nb_last_error());
    for (size_t k = 0; k < n; k++) grads[k] = (nb_real)NAN;
    nb__dist_mean(d, grads, n, 1); /* the same call as the others' */
    return nb_err(failure, "%s", why);
}

/* With synchronised batch norm the backward has sums of its own: a process
 * that stopped after its forward would leave the others waiting in them.
 * So the processes first agree whether every forward succeeded with a
 * finite loss, and either all of them run the backward or none does. */
static nb_status agree_on_forward(nb_graph *g, nb_status s) {
    if (!g->sync_sum || !g->training) return s;
    double failed[2] = {s != NB_OK && s != NB_ERR_NUMERIC, s == NB_ERR_NUMERIC};
    if (g->sync_sum(g->sync_ctx, failed, 2) != NB_OK)
        return nb_err_prefix(NB_ERR_IO, "nb_train_step: agreeing on the forward");
    if (s != NB_OK) return s; /* its message stands: the sum sets none when it succeeds */
    if (failed[0] > 0 || failed[1] > 0)
        return nb_err(NB_ERR_STATE, "nb_train_step: %s in another process at this step (it "
                      "reports why)", failed[0] > 0 ? "the forward failed" : "the loss is not "
                      "finite");
    return NB_OK;
}

nb_status nb_train_step(nb_graph *g, const nb_fit_config *cfg, double lr, double *loss) {
    nb_status s = check_step(g, cfg);
    if (s != NB_OK) return s;
    nb_real *params = nb_params(g), *grads = nb_grads(g);
    const size_t n = nb_param_count(g);

    /* the gradients are zeroed by backward's first writes (nb_backward_zeroed);
     * a step that stops before backward zeroes them as the whole step would */
    s = nb__forward_both(g, cfg->loss, cfg->output);
    if (s == NB_OK) {
        const double value = (double)g->nodes[cfg->loss].val[0];
        if (loss) *loss = value;
        if (!nb__is_finite(value))
            s = nb_err(NB_ERR_NUMERIC, "nb_train_step: loss is %s",
                       value != value ? "NaN" : value > 0 ? "inf" : "-inf");
    }
    s = agree_on_forward(g, s);
    if (s != NB_OK) {
        nb_zero_grad(g);
        return cfg->dist ? poison_sum(cfg->dist, grads, n, s) : s;
    }
    s = nb_backward_zeroed(g, cfg->loss);
    if (s != NB_OK) return cfg->dist ? poison_sum(cfg->dist, grads, n, s) : s;

    /* Gradients of several processes are combined here, so that every
     * process clips and steps from the same sum (docs/design.md). */
    if (cfg->dist && (s = weighted_sum(g, cfg->loss, cfg->dist, grads, n)) != NB_OK)
        return nb_err_prefix(s, "nb_train_step");
    if (cfg->on_gradients && (s = cfg->on_gradients(grads, n, cfg->user)) != NB_OK)
        return nb_err_prefix(s, "nb_train_step: on_gradients");

    /* a non-finite gradient would poison the parameters: stop before the
     * step (clipping leaves a non-finite gradient as it is) */
    double norm = cfg->clip_norm > 0 ? nb_clip_grad_norm(grads, n, cfg->clip_norm) : 0;
    if (!nb__is_finite(norm) || (cfg->clip_norm <= 0 && !all_finite(grads, n)))
        return nb_err(NB_ERR_NUMERIC, "nb_train_step: gradient is not finite");
    /* frozen parameters are left out: neither stepped nor decayed */
    return nb_optim_step_ranges(cfg->optimizer, params, grads, lr, g->train_ranges,
                                g->n_train_ranges);
}
