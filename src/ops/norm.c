/* Normalisation layers: batch norm and layer norm (PyTorch's definitions,
 * docs/definitions.md, Batch norm and layer norm).
 *
 * Both normalise x-hat = (x - mean) * invstd with invstd = 1/sqrt(var + eps),
 * var the biased variance, then apply y = x-hat * weight + bias.  They differ
 * in which values share a mean: batch norm takes one per channel over the
 * batch (and the spatial dims), layer norm one per sample over its last dims.
 * With s1 = sum(g') and s2 = sum(g' x-hat) over a group of n values (g' the
 * upstream gradient times the weight), the input gradient of a group is
 *     dx = (g' - s1/n - x-hat s2/n) * invstd,
 * because mean and var depend on every x of the group.  In eval mode batch
 * norm uses fixed running statistics, so it is an affine map and dx = g' invstd.
 *
 * Sums run in double: a channel may hold many thousand values. */
#include "../core/internal.h"
#include "../kernels/parallel.h"
#include "../kernels/vmath.h"

#include <stdio.h>
#include <string.h>

#define DEFAULT_EPS 1e-5
#define DEFAULT_MOMENTUM 0.1

/* Options with the defaults filled in; returns 0 (error set) if invalid. */
static int norm_options(nb_graph *g, const char *op, const nb_norm_opts *opts,
                        nb_norm_opts *out) {
    nb_norm_opts o = {0};
    if (opts) o = *opts;
    if (o.eps == 0) o.eps = DEFAULT_EPS;
    if (o.momentum == 0) o.momentum = DEFAULT_MOMENTUM;
    if (!(o.eps > 0) || !isfinite(o.eps)) {
        nb__fail(g, NB_ERR_ARG, "%s: eps = %g must be positive and finite", op, o.eps);
        return 0;
    }
    if (!(o.momentum > 0 && o.momentum <= 1)) {
        nb__fail(g, NB_ERR_ARG, "%s: momentum = %g must be in (0, 1]", op, o.momentum);
        return 0;
    }
    *out = o;
    return 1;
}

/* "<base>.<what>" into buf. */
static void member_name(char *buf, size_t size, const char *base, const char *what) {
    snprintf(buf, size, "%s.%s", base, what);
}

/* The affine parameters weight (ones) and bias (zeros), shaped dims.  They
 * hold their initial values already, so a graph that is loaded rather than
 * initialised starts from PyTorch's values too. */
static int affine_params(nb_graph *g, const char *base, int ndim, const int *dims,
                         nb_node *w, nb_node *b) {
    char pname[128];
    member_name(pname, sizeof pname, base, "weight");
    *w = nb_param(g, pname, ndim, dims, (nb_init){.kind = NB_INIT_CONSTANT, .a = 1});
    if (*w == NB_NONE) return 0; /* stop at the first error: keep its message */
    member_name(pname, sizeof pname, base, "bias");
    *b = nb_param(g, pname, ndim, dims, (nb_init){.kind = NB_INIT_ZEROS});
    if (*b == NB_NONE) return 0;
    nb_node_t *W = nb__node(g, *w);
    for (size_t k = 0, len = nb__numel(W); k < len; k++) W->val[k] = R(1);
    return 1;
}

/* ------------------------------------------------------------ batch norm */

/* Inputs x [, weight, bias]; settings eps, momentum and the buffers
 * (nb_batch_norm_settings).  Scratch: mean[C], invstd[C] of the last
 * forward. */

/* x viewed as [outer, C, inner]: outer = batch, inner = the spatial size. */
static void bn_layout(const nb_node_t *x, size_t *outer, size_t *C, size_t *inner) {
    *outer = (size_t)x->dims[0];
    *C = (size_t)x->dims[1];
    *inner = nb__numel_from(x, 2);
}

static size_t bn_scratch(const nb_graph *g, const nb_node_t *n) {
    return 2 * (size_t)g->nodes[n->in[0]].dims[1];
}

/* The per-channel loops run in parallel over ranges of channels.  Each
 * channel is computed by one thread, in one order, so the bits do not depend
 * on the thread count.  Sums run in double with BN_LANES partial sums (one
 * running sum is a chain of dependent additions; 32 keep the vector adders
 * busy), and the loops are compiled for each vector width. */
enum { BN_PART_MIN = 1 << 14 }; /* values per part at least */

/* What a part does with its channels: the forward's statistics (the batch's,
 * as given, or the running ones), the backward's sums, input gradient, or
 * both. */
typedef enum { BN_BATCH, BN_GIVEN, BN_RUNNING } bn_stats;
typedef enum { BN_SUMS, BN_INPUT, BN_SUMS_INPUT } bn_phase;

typedef struct bn_job {
    nb_graph *g;
    nb_node_t *n, *x;
    size_t outer, C, inner;
    const nb_real *w, *b; /* the affine parameters, or NULL */
    nb_real *dw, *db;     /* their gradients, or NULL */
    nb_real *y;           /* forward: the output, the fused relu's when there is one */
    int relu;             /* forward: max(0, .) applied as it is stored */
    nb_node_t *pool;      /* forward: the fused relu's max pool (fusion.c), or NULL */
    /* backward with the relu fused (NB_OP_FUSES_RELU_GRAD): the upstream
     * gradient is dy * relu'(y) from the relu's gradient dy and output y,
     * else n->grad (then relu_y is NULL) */
    const nb_real *dy, *relu_y;
    bn_stats stats;
    bn_phase phase;
    int batch_stats; /* the backward of a forward that used the batch's statistics */
    int assign;      /* backward: overwrite the input's gradient (nb__grad_assign) */
    double *s1, *s2; /* per channel, for the sums over processes: the backward's
                        sums between its phases; the forward's sum and sum of
                        squares (s1[c], s1[C + c]) */
    int parts;
} bn_job;

static bn_job bn_job_of(nb_graph *g, nb_node_t *n) {
    bn_job j = {.g = g, .n = n, .x = nb__in(g, n, 0)};
    bn_layout(j.x, &j.outer, &j.C, &j.inner);
    if (n->nin == 3) {
        j.w = nb__in(g, n, 1)->val, j.b = nb__in(g, n, 2)->val;
        j.dw = nb__in(g, n, 1)->grad, j.db = nb__in(g, n, 2)->grad;
    }
    j.parts = nb__part_count(nb__numel(n), BN_PART_MIN);
    if ((size_t)j.parts > j.C) j.parts = (int)j.C;
    return j;
}

static void bn_run(bn_job *j, void (*part)(void *, int)) {
    if (j->parts > 1) nb__parallel(j->parts, part, j);
    else part(j, 0);
}

NB_LOOP_BODY double sum8(const double p[8]) { return NB__SUM8(p); }

/* A channel's sums run in BN_LANES partial sums: four independent vectors of
 * eight doubles (one would be a chain of dependent additions, four cycles
 * each), added up in a fixed order, so the bits do not depend on the vector
 * width. */
enum { BN_LANES = 32 };

NB_LOOP_BODY double sum_lanes(const double p[BN_LANES]) {
    return (sum8(p) + sum8(p + 8)) + (sum8(p + 16) + sum8(p + 24));
}

/* The sum over channel c of x - shift, or of (x - shift)^2 when square. */
NB_LOOP_BODY double channel_sum(const bn_job *j, size_t c, double shift, const int square) {
    double part[BN_LANES] = {0}, rest = 0;
    for (size_t o = 0; o < j->outer; o++) {
        const nb_real *x = j->x->val + (o * j->C + c) * j->inner;
        size_t k = 0;
        for (; k + BN_LANES <= j->inner; k += BN_LANES)
            for (int q = 0; q < BN_LANES; q++) {
                double d = (double)x[k + q] - shift;
                part[q] += square ? d * d : d;
            }
        for (; k < j->inner; k++) {
            double d = (double)x[k] - shift;
            rest += square ? d * d : d;
        }
    }
    return rest + sum_lanes(part);
}

/* Channel c's mean and invstd in scratch (the batch's, two passes in double,
 * or the running ones), and the running statistics updated. */
NB_LOOP_BODY void channel_stats(const bn_job *j, size_t c) {
    const nb_batch_norm_settings *bs = &j->n->settings.batch_norm;
    nb_real *rmean = j->g->nodes[bs->running_mean].val, *rvar = j->g->nodes[bs->running_var].val;
    nb_real *mean = j->n->scratch, *invstd = j->n->scratch + j->C;
    if (j->stats == BN_RUNNING) {
        mean[c] = rmean[c];
        invstd[c] = (nb_real)(1.0 / sqrt((double)rvar[c] + bs->eps));
        return;
    }
    const double count = (double)(j->outer * j->inner), m = bs->momentum;
    const double mu = channel_sum(j, c, 0, 0) / count;
    const double var = channel_sum(j, c, mu, 1) / count; /* biased: normalises this batch */
    mean[c] = (nb_real)mu;
    invstd[c] = (nb_real)(1.0 / sqrt(var + bs->eps));
    /* the running variance estimates the population: unbiased */
    rmean[c] = (nb_real)((1 - m) * (double)rmean[c] + m * mu);
    rvar[c] = (nb_real)((1 - m) * (double)rvar[c] + m * var * count / (count - 1));
}

/* y = x normalised by channel c's statistics in scratch, through the affine
 * map (and the relu): one run of n values (y may be x).  The one loop both
 * the op and a convolution's fold (nb__batch_norm_planes) run, so that the
 * two give the same bits. */
NB_LOOP_BODY void normalise_run(const bn_job *j, size_t c, const nb_real *x, nb_real *y,
                                size_t n, const int relu) {
    const nb_real mu = j->n->scratch[c], is = j->n->scratch[j->C + c];
    const nb_real scale = j->w ? j->w[c] : R(1), shift = j->b ? j->b[c] : R(0);
    if (relu)
        for (size_t k = 0; k < n; k++) y[k] = nb__relu((x[k] - mu) * is * scale + shift);
    else
        for (size_t k = 0; k < n; k++) y[k] = (x[k] - mu) * is * scale + shift;
}

NB_VECTOR_LOOP static void bn_forward_part(void *ctx, int part) {
    const bn_job *j = ctx;
    size_t c0, c1;
    nb__part_range(j->C, part, j->parts, 1, &c0, &c1);
    for (size_t c = c0; c < c1; c++) {
        if (j->stats != BN_GIVEN) channel_stats(j, c);
        for (size_t o = 0; o < j->outer; o++) {
            const size_t base = (o * j->C + c) * j->inner;
            normalise_run(j, c, j->x->val + base, j->y + base, j->inner, j->relu);
        }
        /* the channel's planes pooled while they are in L2 */
        if (j->pool)
            nb__maxpool_planes_every(j->g, j->pool, c, j->outer, j->C, j->y + c * j->inner,
                                     j->C * j->inner);
    }
}

/* The fold (fusion.c): eval mode's statistics (the running ones) into
 * scratch, once per forward, before the convolution applies the op to its
 * samples with nb__batch_norm_planes. */
void nb__batch_norm_fold_begin(nb_graph *g, nb_node_t *n) {
    bn_job j = bn_job_of(g, n);
    j.stats = BN_RUNNING;
    n->settings.batch_norm.batch_stats = 0;
    for (size_t c = 0; c < j.C; c++) channel_stats(&j, c);
}

NB_VECTOR_LOOP static void normalise_planes(const bn_job *j, size_t p0, size_t count,
                                            nb_real *y, size_t ld, int relu) {
    for (size_t q = 0; q < count; q++)
        normalise_run(j, (p0 + q) % j->C, y + q * ld, y + q * ld, j->inner, relu);
}

/* (A static clone set: an exported one would export its resolver.) */
void nb__batch_norm_planes(nb_graph *g, nb_node_t *n, size_t p0, size_t count, nb_real *y,
                           size_t ld, int relu) {
    const bn_job j = bn_job_of(g, n);
    normalise_planes(&j, p0, count, y, ld, relu);
}

/* Each process's per-channel sum and sum of squares (channel_sum, in
 * parallel) into j->s1: [sum, sum of squares] per channel. */
NB_VECTOR_LOOP static void bn_sums_part(void *ctx, int part) {
    const bn_job *j = ctx;
    size_t c0, c1;
    nb__part_range(j->C, part, j->parts, 1, &c0, &c1);
    for (size_t c = c0; c < c1; c++) {
        j->s1[c] = channel_sum(j, c, 0, 0);
        j->s1[j->C + c] = channel_sum(j, c, 0, 1);
    }
}

/* Training statistics over several processes (nb_dist_sync_batch_norm):
 * each adds its per-channel sum and sum of squares and its value count, so
 * every process normalises with the mean and variance of the global batch
 * (from those sums, in double).  Fills mean, invstd and the running statistics;
 * *total receives the global count.  0 when the sum failed. */
static int bn_sync_stats(bn_job *j, double *total) {
    nb_graph *g = j->g;
    nb_node_t *n = j->n;
    const size_t C = j->C;
    double *v = nb__sync_buffer(g, 2 * C + 1);
    if (!v) {
        nb__run_fail(g, NB_ERR_NOMEM, "batch_norm '%s': out of memory", n->name);
        return 0;
    }
    j->s1 = v;
    bn_run(j, bn_sums_part);
    v[2 * C] = (double)(j->outer * j->inner);
    if (g->sync_sum(g->sync_ctx, v, 2 * C + 1) != NB_OK) {
        nb__run_fail(g, NB_ERR_IO, "batch_norm '%s': synchronised statistics: %s", n->name,
                     nb_last_error());
        return 0;
    }
    const nb_batch_norm_settings *bs = &n->settings.batch_norm;
    nb_real *rmean = g->nodes[bs->running_mean].val, *rvar = g->nodes[bs->running_var].val;
    const double m = bs->momentum, M = *total = v[2 * C];
    for (size_t c = 0; c < C && M >= 2; c++) {
        double mu = v[c] / M, var = fmax(v[C + c] / M - mu * mu, 0);
        n->scratch[c] = (nb_real)mu;
        n->scratch[C + c] = (nb_real)(1.0 / sqrt(var + bs->eps));
        rmean[c] = (nb_real)((1 - m) * (double)rmean[c] + m * mu);
        rvar[c] = (nb_real)((1 - m) * (double)rvar[c] + m * var * M / (M - 1));
    }
    return 1;
}

/* A relu that is batch norm's only consumer is applied as the output is
 * stored (NB_OP_FUSES_RELU_VALUE, fusion.c): the relu's value is written,
 * batch norm's own is left stale, and the relu's backward runs as it is.
 * The stale value is filled in on demand (g->unfused) from the statistics
 * the forward kept: nothing is drawn, summed or updated again. */
static void bn_forward(nb_graph *g, nb_node_t *n) {
    bn_job j = bn_job_of(g, n);
    nb_node_t *relu = nb__epilogue(g, n);
    j.y = relu ? relu->val : n->val, j.relu = relu != NULL;
    j.pool = nb__epilogue_pool(g, relu);
    nb_batch_norm_settings *bs = &n->settings.batch_norm;
    if (g->unfused) { /* the mode of the forward that left the value stale */
        j.stats = bs->batch_stats ? BN_GIVEN : BN_RUNNING;
        bn_run(&j, bn_forward_part);
        return;
    }
    bs->batch_stats = g->training;
    const int sync = g->training && g->sync_sum;
    double total = (double)(j.outer * j.inner);
    if (sync && !bn_sync_stats(&j, &total)) return;
    if (g->training && total < 2) {
        char s[128];
        nb__run_fail(g, NB_ERR_ARG, "batch_norm '%s': input %s has 1 value per channel; "
                     "training needs more than 1 to estimate a variance (use a batch of 2 "
                     "or more, or eval mode)", n->name,
                     nb_shape_str(s, sizeof s, j.x->ndim, j.x->dims));
        for (size_t k = 0, len = nb__numel(n); k < len; k++) n->val[k] = (nb_real)NAN;
        return;
    }
    j.stats = sync ? BN_GIVEN : g->training ? BN_BATCH : BN_RUNNING;
    bn_run(&j, bn_forward_part);
    if (g->training) g->nodes[bs->num_batches_tracked].val[0] += R(1);
}

/* The per-channel sums of the backward pass over several processes.  Each
 * process's gradient is of its own mean loss, and is weighted by its share
 * count / M of the global batch when the gradients are summed (step.c:
 * weighted by its samples); so the sums are added with the same weights, and
 * s1, s2 become the global batch's sums in this process's units.  v holds
 * 2C + 1 doubles.  On failure the sums are NaN, and so the gradients. */
static void bn_sync_grad_sums(nb_graph *g, const nb_node_t *n, size_t C, size_t count,
                              double *s1, double *s2, double *v) {
    for (size_t c = 0; c < C; c++) {
        v[c] = s1[c] * (double)count;
        v[C + c] = s2[c] * (double)count;
    }
    v[2 * C] = (double)count;
    if (g->sync_sum(g->sync_ctx, v, 2 * C + 1) != NB_OK) {
        nb__run_fail(g, NB_ERR_IO, "batch_norm '%s': synchronised gradients: %s", n->name,
                     nb_last_error());
        for (size_t c = 0; c < C; c++) s1[c] = s2[c] = NAN;
        return;
    }
    for (size_t c = 0; c < C; c++) {
        s1[c] = v[c] / v[2 * C];
        s2[c] = v[C + c] / v[2 * C];
    }
}

/* The upstream gradient at k: the op's own, or through the fused relu (the
 * relu's backward's product dy * relu'(y), the same bits; the slope written
 * as a comparison's value, which the vectoriser takes where it left the
 * conditional of nb__relu_slope as a branch). */
NB_LOOP_BODY nb_real upstream(const nb_real *dy, const nb_real *y, size_t k, const int relu) {
    return relu ? dy[k] * (nb_real)!(y[k] <= 0) : dy[k];
}

/* Adds the sums over samples [o0, o1) of channel c of g, or of g x-hat when
 * times_xhat, to part[BN_LANES] and *rest (one running sum each vectorises; two
 * together did not); relu: g through the fused relu. */
NB_LOOP_BODY void grad_sum(const bn_job *j, size_t c, size_t o0, size_t o1, const int times_xhat,
                           const int relu, double part[BN_LANES], double *rest) {
    const double mu = (double)j->n->scratch[c], is = (double)j->n->scratch[j->C + c];
    const size_t inner = j->inner, step = j->C * inner;
    const size_t first = (o0 * j->C + c) * inner;
    const nb_real *g = j->dy + first, *x = j->x->val + first;
    const nb_real *y = relu ? j->relu_y + first : g; /* (g: not read) */
    double p[BN_LANES], r = *rest;
    for (int q = 0; q < BN_LANES; q++) p[q] = part[q];
    for (size_t o = o0; o < o1; o++, g += step, x += step, y += step) {
        size_t k = 0;
        for (; k + BN_LANES <= inner; k += BN_LANES)
            for (int q = 0; q < BN_LANES; q++)
                p[q] += (double)upstream(g, y, k + q, relu) *
                        (times_xhat ? ((double)x[k + q] - mu) * is : 1.0);
        for (; k < inner; k++)
            r += (double)upstream(g, y, k, relu) * (times_xhat ? ((double)x[k] - mu) * is : 1.0);
    }
    for (int q = 0; q < BN_LANES; q++) part[q] = p[q];
    *rest = r;
}

/* The two sums a block of samples at a time, the second pass over a block
 * finding it in cache; each sum is added up in the same order as in one
 * pass over all samples. */
enum { BN_BLOCK_BYTES = 256 << 10 };

NB_LOOP_BODY void channel_grad_sums(const bn_job *j, size_t c, double *s1, double *s2) {
    double pg[BN_LANES] = {0}, pgx[BN_LANES] = {0}, rg = 0, rgx = 0;
    size_t block = BN_BLOCK_BYTES / (2 * sizeof(nb_real) * (j->inner ? j->inner : 1));
    if (block < 1) block = 1;
    for (size_t o0 = 0; o0 < j->outer; o0 += block) {
        size_t o1 = j->outer - o0 < block ? j->outer : o0 + block;
        if (j->relu_y) {
            grad_sum(j, c, o0, o1, 0, 1, pg, &rg);
            grad_sum(j, c, o0, o1, 1, 1, pgx, &rgx);
        } else {
            grad_sum(j, c, o0, o1, 0, 0, pg, &rg);
            grad_sum(j, c, o0, o1, 1, 0, pgx, &rgx);
        }
    }
    *s1 = rg + sum_lanes(pg), *s2 = rgx + sum_lanes(pgx);
    if (j->db) j->db[c] += (nb_real)*s1;
    if (j->dw) j->dw[c] += (nb_real)*s2;
}

NB_LOOP_BODY void channel_input_grad(const bn_job *j, size_t c, nb_real mean_g,
                                     nb_real mean_gx, const int relu) {
    const nb_real mu = j->n->scratch[c], is = j->n->scratch[j->C + c];
    const nb_real scale = (j->w ? j->w[c] : R(1)) * is;
    for (size_t o = 0; o < j->outer; o++) {
        const size_t base = (o * j->C + c) * j->inner;
        const nb_real *restrict g = j->dy + base, *restrict x = j->x->val + base;
        const nb_real *restrict y = relu ? j->relu_y + base : NULL;
        nb_real *restrict dx = j->x->grad + base;
        if (j->assign)
            for (size_t k = 0; k < j->inner; k++)
                dx[k] = (upstream(g, y, k, relu) - mean_g - (x[k] - mu) * is * mean_gx) * scale;
        else
            for (size_t k = 0; k < j->inner; k++)
                dx[k] += (upstream(g, y, k, relu) - mean_g - (x[k] - mu) * is * mean_gx) * scale;
    }
}

/* Batch norm's backward, channel by channel: the channel's sums sum g and
 * sum g x-hat (added to the affine parameters' gradients too), then the
 * input gradient from their means over the batch (zero when the running
 * statistics were used); or, with statistics over several processes, one
 * of the two (phase). */
NB_VECTOR_LOOP static void bn_backward_part(void *ctx, int part) {
    const bn_job *j = ctx;
    const double count = (double)(j->outer * j->inner);
    size_t c0, c1;
    nb__part_range(j->C, part, j->parts, 1, &c0, &c1);
    for (size_t c = c0; c < c1; c++) {
        double s1 = 0, s2 = 0;
        if (j->phase == BN_INPUT) s1 = j->s1[c], s2 = j->s2[c];
        else channel_grad_sums(j, c, &s1, &s2);
        if (j->phase == BN_SUMS) j->s1[c] = s1, j->s2[c] = s2;
        else if (j->x->grad) {
            nb_real mean_g = j->batch_stats ? (nb_real)(s1 / count) : R(0);
            nb_real mean_gx = j->batch_stats ? (nb_real)(s2 / count) : R(0);
            if (j->relu_y) channel_input_grad(j, c, mean_g, mean_gx, 1);
            else channel_input_grad(j, c, mean_g, mean_gx, 0);
        }
    }
}

/* With statistics over several processes: every channel's local sums
 * first, then one synchronised sum of all of them, then the input gradient. */
static void bn_backward(nb_graph *g, nb_node_t *n) {
    bn_job j = bn_job_of(g, n);
    const nb_node_t *relu = nb__epilogue(g, n); /* fused: its gradient, not ours */
    j.dy = relu ? relu->grad : n->grad, j.relu_y = relu ? relu->val : NULL;
    j.batch_stats = n->settings.batch_norm.batch_stats;
    /* the input's gradient is written whole (no pass of zeros first); the
     * affine parameters' are added into */
    j.assign = nb__grad_assign(n, 0);
    for (int k = 1; k < n->nin; k++) nb__grad_add_only(g, n, k);
    if (!(j.batch_stats && g->sync_sum)) {
        j.phase = BN_SUMS_INPUT;
        bn_run(&j, bn_backward_part);
        return;
    }
    j.s1 = nb__sync_buffer(g, 4 * j.C + 1), j.s2 = j.s1 ? j.s1 + j.C : NULL;
    if (!j.s1) {
        nb__run_fail(g, NB_ERR_NOMEM, "batch_norm '%s': out of memory", n->name);
        return;
    }
    j.phase = BN_SUMS;
    bn_run(&j, bn_backward_part);
    bn_sync_grad_sums(g, n, j.C, j.outer * j.inner, j.s1, j.s2, j.s1 + 2 * j.C);
    j.phase = BN_INPUT;
    bn_run(&j, bn_backward_part);
}

/* statistics, normalisation and the affine map: about 7 per element */
static double norm_flops(const nb_graph *g, const nb_node_t *n) {
    (void)g;
    return 7.0 * (double)nb__numel(n);
}

static const nb_op op_batch_norm = {
    .name = "batch_norm",
    .forward = bn_forward,
    .backward = bn_backward,
    .scratch = bn_scratch,
    .flops = norm_flops,
    .flags = NB_OP_FUSES_RELU_VALUE | NB_OP_FUSES_RELU_GRAD | NB_OP_FUSES_POOL_VALUE |
             NB_OP_ASSIGNS_GRAD | NB_OP_EVAL_AFFINE,
};

nb_node nb_batch_norm(nb_graph *g, nb_node x, const char *name, const nb_norm_opts *opts) {
    if (!nb__begin(g, "batch_norm", 1, &x)) return NB_NONE;
    nb_norm_opts o;
    if (!norm_options(g, "batch_norm", opts, &o)) return NB_NONE;
    const nb_node_t *X = nb__node(g, x);
    if (X->ndim < 2) {
        char sx[96];
        return nb__fail(g, NB_ERR_SHAPE, "batch_norm: input '%s' has shape %s; expected "
                        "[batch, channels] or [batch, channels, spatial...]", X->name,
                        nb_shape_str(sx, sizeof sx, X->ndim, X->dims));
    }
    int C = X->dims[1];
    char base[48], bname[128];
    if (name && name[0]) snprintf(base, sizeof base, "%s", name);
    else nb__auto_name(g, "batch_norm", base, sizeof base);
    nb_node in[3] = {x, NB_NONE, NB_NONE};
    int nin = 1;
    if (!o.no_affine) {
        if (!affine_params(g, base, 1, &C, &in[1], &in[2])) return NB_NONE;
        nin = 3;
    }
    member_name(bname, sizeof bname, base, "running_mean");
    nb_node rmean = nb__buffer(g, bname, 1, &C, R(0), 0);
    if (rmean == NB_NONE) return NB_NONE;
    member_name(bname, sizeof bname, base, "running_var");
    nb_node rvar = nb__buffer(g, bname, 1, &C, R(1), 0);
    if (rvar == NB_NONE) return NB_NONE;
    member_name(bname, sizeof bname, base, "num_batches_tracked");
    nb_node tracked = nb__buffer(g, bname, 0, NULL, R(0), 1);
    if (tracked == NB_NONE) return NB_NONE;
    X = nb__node(g, x); /* the node table may have moved */
    int dims[NB_MAX_DIMS]; /* a copy: adding the node may move it again */
    memcpy(dims, X->dims, sizeof dims);
    nb_node y = nb__add_node(g, &op_batch_norm, nin, in, X->ndim, dims, X->batched);
    if (y == NB_NONE) return NB_NONE;
    nb_node_t *Y = nb__node(g, y);
    Y->settings.batch_norm = (nb_batch_norm_settings){
        .eps = o.eps, .momentum = o.momentum, .running_mean = rmean, .running_var = rvar,
        .num_batches_tracked = tracked};
    nb__set_name(g, y, base);
    return y;
}

/* ------------------------------------------------------------ layer norm */

/* Inputs x [, weight, bias]; settings eps and the number of normalised
 * trailing dims (nb_layer_norm_settings).  Scratch: mean and invstd of every row (a row =
 * the D values normalised together). */

static size_t ln_row_size(const nb_node_t *n) {
    return nb__numel_from(n, n->ndim - n->settings.layer_norm.normalized_ndim);
}

static size_t ln_scratch(const nb_graph *g, const nb_node_t *n) {
    (void)g;
    return 2 * (nb__numel(n) / ln_row_size(n));
}

/* The rows run in parallel parts (each row's values depend on that row
 * only); sums in double with eight partial sums (its rows are short), so that
 * the loops vectorise.  The affine parameters' gradients add the rows up in
 * row order, on one thread. */
enum { LN_PART_MIN = 1 << 13 }; /* values per part at least */

typedef struct ln_job {
    const nb_node_t *x;
    nb_node_t *n;
    size_t D, rows;
    const nb_real *w, *b;
    int parts;
} ln_job;

static ln_job ln_job_of(nb_graph *g, nb_node_t *n) {
    ln_job j = {.x = nb__in(g, n, 0), .n = n, .D = ln_row_size(n)};
    j.rows = nb__numel(n) / j.D;
    if (n->nin == 3) j.w = nb__in(g, n, 1)->val, j.b = nb__in(g, n, 2)->val;
    j.parts = nb__part_count(j.rows * j.D, LN_PART_MIN);
    return j;
}

/* The sum of x[0..D) - shift, or of its squares. */
NB_LOOP_BODY double row_sum(const nb_real *x, size_t D, double shift, const int square) {
    double part[8] = {0}, rest = 0;
    size_t k = 0;
    for (; k + 8 <= D; k += 8)
        for (int q = 0; q < 8; q++) {
            double d = (double)x[k + q] - shift;
            part[q] += square ? d * d : d;
        }
    for (; k < D; k++) {
        double d = (double)x[k] - shift;
        rest += square ? d * d : d;
    }
    return rest + sum8(part);
}

NB_VECTOR_LOOP static void ln_forward_part(void *ctx, int part) {
    const ln_job *j = ctx;
    const size_t D = j->D;
    nb_real *mean = j->n->scratch, *invstd = j->n->scratch + j->rows;
    const double eps = j->n->settings.layer_norm.eps;
    size_t r0, r1;
    nb__part_range(j->rows, part, j->parts, 1, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        const nb_real *xr = j->x->val + r * D;
        nb_real *yr = j->n->val + r * D;
        double mu = row_sum(xr, D, 0, 0) / (double)D;
        double var = row_sum(xr, D, mu, 1) / (double)D;
        const nb_real m = (nb_real)mu, is = (nb_real)(1.0 / sqrt(var + eps));
        mean[r] = m;
        invstd[r] = is;
        if (j->w)
            for (size_t k = 0; k < D; k++) yr[k] = (xr[k] - m) * is * j->w[k] + j->b[k];
        else
            for (size_t k = 0; k < D; k++) yr[k] = (xr[k] - m) * is;
    }
}

static void ln_forward(nb_graph *g, nb_node_t *n) {
    ln_job j = ln_job_of(g, n);
    if (j.parts > 1) nb__parallel(j.parts, ln_forward_part, &j);
    else ln_forward_part(&j, 0);
}

/* Row r's input gradient: (g' - mean g' - x-hat mean(g' x-hat)) invstd, g' = g w
 * (affine, a constant where it is inlined: no test of w in the loops). */
NB_LOOP_BODY void ln_row_grad(const nb_real *xr, const nb_real *gr, const nb_real *w, size_t D,
                              nb_real m, nb_real is, nb_real *dx, const int affine) {
    double p1[8] = {0}, p2[8] = {0}, s1 = 0, s2 = 0;
    size_t k = 0;
    for (; k + 8 <= D; k += 8)
        for (int q = 0; q < 8; q++) {
            nb_real gw = affine ? gr[k + q] * w[k + q] : gr[k + q];
            p1[q] += (double)gw;
            p2[q] += (double)(gw * ((xr[k + q] - m) * is));
        }
    for (; k < D; k++) {
        nb_real gw = affine ? gr[k] * w[k] : gr[k];
        s1 += (double)gw;
        s2 += (double)(gw * ((xr[k] - m) * is));
    }
    const nb_real mean_g = (nb_real)((s1 + sum8(p1)) / (double)D);
    const nb_real mean_gx = (nb_real)((s2 + sum8(p2)) / (double)D);
    for (k = 0; k < D; k++) {
        nb_real gw = affine ? gr[k] * w[k] : gr[k];
        dx[k] += (gw - mean_g - (xr[k] - m) * is * mean_gx) * is;
    }
}

/* The input gradient of a part's rows. */
NB_VECTOR_LOOP static void ln_backward_part(void *ctx, int part) {
    const ln_job *j = ctx;
    const size_t D = j->D;
    const nb_real *mean = j->n->scratch, *invstd = j->n->scratch + j->rows;
    size_t r0, r1;
    nb__part_range(j->rows, part, j->parts, 1, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        const nb_real *xr = j->x->val + r * D, *gr = j->n->grad + r * D;
        nb_real *dx = j->x->grad + r * D;
        if (j->w) ln_row_grad(xr, gr, j->w, D, mean[r], invstd[r], dx, 1);
        else ln_row_grad(xr, gr, NULL, D, mean[r], invstd[r], dx, 0);
    }
}

/* The affine parameters' gradients, row after row. */
NB_VECTOR_LOOP static void ln_param_grads(const ln_job *j, nb_real *dw, nb_real *db) {
    const size_t D = j->D;
    const nb_real *mean = j->n->scratch, *invstd = j->n->scratch + j->rows;
    for (size_t r = 0; r < j->rows; r++) {
        const nb_real *xr = j->x->val + r * D, *gr = j->n->grad + r * D;
        const nb_real m = mean[r], is = invstd[r];
        if (dw)
            for (size_t k = 0; k < D; k++) dw[k] += gr[k] * ((xr[k] - m) * is);
        if (db)
            for (size_t k = 0; k < D; k++) db[k] += gr[k];
    }
}

static void ln_backward(nb_graph *g, nb_node_t *n) {
    ln_job j = ln_job_of(g, n);
    nb_real *dw = j.w ? nb__in(g, n, 1)->grad : NULL, *db = j.w ? nb__in(g, n, 2)->grad : NULL;
    if (dw || db) ln_param_grads(&j, dw, db);
    if (!j.x->grad) return;
    if (j.parts > 1) nb__parallel(j.parts, ln_backward_part, &j);
    else ln_backward_part(&j, 0);
}

static const nb_op op_layer_norm = {
    .name = "layer_norm",
    .forward = ln_forward,
    .backward = ln_backward,
    .scratch = ln_scratch,
    .flops = norm_flops,
};

nb_node nb_layer_norm(nb_graph *g, nb_node x, int normalized_ndim, const char *name,
                      const nb_norm_opts *opts) {
    if (!nb__begin(g, "layer_norm", 1, &x)) return NB_NONE;
    nb_norm_opts o;
    if (!norm_options(g, "layer_norm", opts, &o)) return NB_NONE;
    const nb_node_t *X = nb__node(g, x);
    /* the batch dim cannot be normalised over: its size changes at run time */
    int max_ndim = X->ndim - (X->batched ? 1 : 0);
    if (normalized_ndim < 1 || normalized_ndim > max_ndim) {
        char sx[96];
        return nb__fail(g, NB_ERR_SHAPE, "layer_norm: cannot normalise over the last %d "
                        "dims of input '%s' %s; expected 1 to %d%s", normalized_ndim, X->name,
                        nb_shape_str(sx, sizeof sx, X->ndim, X->dims), max_ndim,
                        X->batched ? " (not the batch dim)" : "");
    }
    int pdims[NB_MAX_DIMS];
    memcpy(pdims, X->dims + (X->ndim - normalized_ndim), (size_t)normalized_ndim * sizeof *pdims);
    char base[48];
    if (name && name[0]) snprintf(base, sizeof base, "%s", name);
    else nb__auto_name(g, "layer_norm", base, sizeof base);
    nb_node in[3] = {x, NB_NONE, NB_NONE};
    int nin = 1;
    if (!o.no_affine) {
        if (!affine_params(g, base, normalized_ndim, pdims, &in[1], &in[2])) return NB_NONE;
        nin = 3;
    }
    X = nb__node(g, x); /* the node table may have moved */
    int dims[NB_MAX_DIMS]; /* a copy: adding the node may move it again */
    memcpy(dims, X->dims, sizeof dims);
    nb_node y = nb__add_node(g, &op_layer_norm, nin, in, X->ndim, dims, X->batched);
    if (y == NB_NONE) return NB_NONE;
    nb_node_t *Y = nb__node(g, y);
    Y->settings.layer_norm = (nb_layer_norm_settings){.eps = o.eps,
                                                      .normalized_ndim = normalized_ndim};
    nb__set_name(g, y, base);
    return y;
}
