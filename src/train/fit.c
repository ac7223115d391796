/* The trainer: mini-batch gradient descent over an in-memory data set.
 *
 * Each epoch visits the training set in an order that depends only on
 * (seed, epoch) and takes consecutive batches of that order (mini-batches
 * with reshuffling, docs/definitions.md); each batch is one nb_train_step
 * (step.c).
 *
 * Everything the step loop needs (index permutation, batch buffers, the
 * optimiser state, the activation arena) is allocated before the first step,
 * so training never allocates after the first batch.  A smaller last batch
 * only re-plans the arena, which never shrinks. */
#include "train.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

nb_fit_config nb_fit_defaults(nb_node input, nb_node target, nb_node loss, nb_node output) {
    nb_fit_config c;
    memset(&c, 0, sizeof c);
    c.input = input;
    c.target = target;
    c.loss = loss;
    c.output = output;
    c.epochs = 10;
    c.batch_size = 32;
    c.schedule = nb_schedule_defaults(NB_SCHED_CONSTANT);
    return c;
}

static void init_stats(nb_epoch_stats *st, int epoch, double lr) {
    memset(st, 0, sizeof *st);
    st->epoch = epoch;
    st->lr = lr;
    st->train_acc = st->val_loss = st->val_acc = -1;
}

static double now_seconds(void) {
    struct timespec ts;
    if (timespec_get(&ts, TIME_UTC) != TIME_UTC) return 0;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* What the step loop touches, allocated once before the first step. */
typedef struct fit_run {
    nb_graph *g;
    const nb_fit_config *cfg;
    const nb_data *train, *val;
    size_t n_batches;
    int batch;               /* the full batch size                       */
    size_t classes;          /* scores per sample for accuracy; 0: none   */
    nb__acc_layout acc;      /* how accuracy reads the output             */
    size_t *idx;             /* the epoch's order of the training samples */
    nb_real *xb, *yb;        /* one batch (this process's slice of it)    */
    int off, local;          /* the slice: rows [off, off + local) of it  */
    nb__augment aug;
    nb_epoch_stats *last;    /* the last completed epoch, or NULL         */
} fit_run;

/* The checks that need the graph and the data as well as the settings. */
static nb_status check_setup(nb_graph *g, const nb_fit_config *cfg, const nb_data *train,
                             const nb_data *val) {
    const char *fn = "nb_fit";
    nb_status s = nb__check_nodes(g, fn, cfg->input, cfg->target, cfg->loss, cfg->output);
    if (s == NB_OK && !g->nodes[cfg->loss].requires_grad)
        s = nb_err(NB_ERR_ARG, "%s: loss '%s' does not depend on any parameter", fn,
                   g->nodes[cfg->loss].name);
    if (s == NB_OK) s = nb_fit_check(cfg);
    if (s == NB_OK) s = nb__check_data(g, fn, "training", train, cfg->input, cfg->target);
    if (s == NB_OK && val) s = nb__check_data(g, fn, "validation", val, cfg->input, cfg->target);
    if (s == NB_OK) s = nb__check_optimizer(g, fn, cfg->optimizer);
    if (s == NB_OK) s = nb__dist_check(cfg->dist, cfg, train->n);
    if (s != NB_OK) return s;
    int c = 0, h = 0, w = 0;
    const nb_node_t *in = &g->nodes[cfg->input];
    if ((cfg->augment_flip || cfg->augment_crop) && !nb__image_dims(in, &c, &h, &w))
        return nb_err(NB_ERR_SHAPE, "%s: augmentation needs image inputs [B, C, H, W] or "
                      "[B, H, W]; input '%s' has %d dimensions", fn, in->name, in->ndim);
    if (cfg->augment_crop && (cfg->augment_crop >= h || cfg->augment_crop >= w))
        return nb_err(NB_ERR_ARG, "%s: augment_crop %d must be from 0 to less than the image "
                      "size", fn, cfg->augment_crop);
    if (cfg->drop_last && train->n < (size_t)cfg->batch_size)
        return nb_err(NB_ERR_ARG, "%s: drop_last with batch_size %d and only %zu training "
                      "samples leaves no batch", fn, cfg->batch_size, train->n);
    return NB_OK;
}

static nb_status run_init(fit_run *r, nb_graph *g, const nb_fit_config *cfg,
                          const nb_data *train, const nb_data *val, nb_epoch_stats *last) {
    memset(r, 0, sizeof *r);
    nb_status s = check_setup(g, cfg, train, val);
    if (s != NB_OK) return s;
    const size_t n = train->n;
    *r = (fit_run){.g = g, .cfg = cfg, .train = train, .val = val, .last = last};
    r->batch = n < (size_t)cfg->batch_size ? (int)n : cfg->batch_size;
    r->n_batches = cfg->drop_last ? n / (size_t)r->batch
                                  : (n + (size_t)r->batch - 1) / (size_t)r->batch;
    r->classes = cfg->output != NB_NONE ? nb__sample_numel(&g->nodes[cfg->output]) : 0;
    if (r->classes) r->acc = nb__acc_layout_of(g, cfg->output, cfg->target, cfg->loss);
    r->idx = malloc(n * sizeof *r->idx);
    r->xb = malloc((size_t)r->batch * train->sample_size * sizeof *r->xb);
    r->yb = malloc((size_t)r->batch * train->y_size * sizeof *r->yb);
    if (!r->idx || !r->xb || !r->yb)
        return nb_err(NB_ERR_NOMEM, "nb_fit: out of memory for %zu samples", n);
    s = nb__augment_init(&r->aug, g, cfg);
    /* the arena sized for the full batch (validation uses the same size) */
    if (s == NB_OK) s = nb_graph_set_batch(g, r->batch);
    return s;
}

static void run_free(fit_run *r) {
    nb__augment_free(&r->aug);
    free(r->yb);
    free(r->xb);
    free(r->idx);
}

/* The epoch's order of the training samples. */
static void shuffle(fit_run *r, int epoch) {
    for (size_t i = 0; i < r->train->n; i++) r->idx[i] = i;
    if (r->cfg->no_shuffle) return;
    nb_rng rng;
    nb__epoch_rng(&rng, r->cfg->seed, epoch);
    nb_rng_shuffle(&rng, r->idx, r->train->n);
}

/* Batch b of the epoch (this process's slice of it) into the graph's
 * inputs; *bs receives the size of the whole batch. */
static nb_status fill_batch(fit_run *r, int epoch, size_t b, int *bs) {
    const size_t start = b * (size_t)r->batch, n = r->train->n;
    *bs = (int)(n - start < (size_t)r->batch ? n - start : (size_t)r->batch);
    r->off = 0;
    r->local = *bs;
    nb__dist_slice(r->cfg->dist, *bs, &r->off, &r->local);
    nb_graph_set_sample_offset(r->g, (long)r->off); /* dropout: the batch's samples as one */
    const size_t first = start + (size_t)r->off;
    /* the samples are converted straight into the graph's input */
    nb_status s = nb_graph_set_batch(r->g, r->local);
    nb_real *x = s == NB_OK ? nb_value(r->g, r->cfg->input) : NULL;
    if (s == NB_OK && !x) s = NB_ERR_STATE;
    if (s == NB_OK) s = nb_data_batch(r->train, r->idx, first, (size_t)r->local, x, r->yb);
    if (s == NB_OK) nb__augment_batch(&r->aug, x, r->local, first, r->cfg->seed, epoch);
    if (s == NB_OK) s = nb_set_input(r->g, r->cfg->target, r->yb, r->local);
    if (s != NB_OK)
        return nb_err_prefix(s, "nb_fit: epoch %d, step %zu of %zu", epoch, b + 1, r->n_batches);
    return NB_OK;
}

/* The error of a failed step, saying where in training it happened. */
static nb_status step_failed(fit_run *r, nb_status s, int epoch, size_t b, int first_step) {
    nb__step_place at = {epoch, b, r->n_batches, nb_optim_steps(r->cfg->optimizer) + 1,
                         first_step, r->idx, b * (size_t)r->batch + (size_t)r->off};
    return nb__explain_step_error(r->g, r->cfg, s, &at);
}

/* End of an epoch: parameters still finite, validation, the callback. */
static nb_status finish_epoch(fit_run *r, nb_epoch_stats *st, double t0, int *stop) {
    const nb_fit_config *cfg = r->cfg;
    /* An update that overflows shows in the next step's loss; only the last
     * step of an epoch has none before the callback (which may save the
     * weights) and the return, so that is checked here, once. */
    const nb_real *params = nb_params(r->g);
    for (size_t k = 0, n = nb_param_count(r->g); k < n; k++)
        if (!nb__is_finite((double)params[k])) return nb__update_error(r->g, st->epoch, st->step);
    if (r->val && nb_dist_rank(cfg->dist) == 0) { /* the others get rank 0's figures */
        nb_status s = nb__evaluate("nb_fit: validation", r->g, cfg->input, cfg->target,
                                   cfg->loss, cfg->output, r->val, r->batch, r->xb,
                                   &st->val_loss, &st->val_acc);
        if (s != NB_OK) return s;
    }
    nb_status s = r->val ? nb__dist_val_stats(cfg->dist, st) : NB_OK;
    if (s != NB_OK) return s;
    st->seconds = now_seconds() - t0;
    if (r->last) *r->last = *st;
    *stop = cfg->on_epoch && cfg->on_epoch(st, cfg->user);
    return nb__dist_any(cfg->dist, stop);
}

/* One epoch (or the rest of one, when resuming); *stop when a callback
 * asks to end training. */
static nb_status run_epoch(fit_run *r, int epoch, int *stop) {
    const nb_fit_config *cfg = r->cfg;
    const double t0 = now_seconds();
    const double lr = nb_schedule_lr(&cfg->schedule, nb_optim_get_config(cfg->optimizer)->lr,
                                     epoch - 1);
    const size_t first = epoch == cfg->start_epoch + 1 ? cfg->start_batch : 0;
    double loss_sum = 0, loss = 0, weight_sum = 0;
    size_t seen = 0, correct = 0, counted = 0;
    shuffle(r, epoch);
    for (size_t b = first; b < r->n_batches; b++) {
        int bs;
        nb_status s = fill_batch(r, epoch, b, &bs);
        if (s != NB_OK) return s;
        s = nb_train_step(r->g, cfg, lr, &loss);
        if (s != NB_OK)
            return step_failed(r, s, epoch, b, b == first && epoch == cfg->start_epoch + 1);
        /* weighted by the terms each batch averaged: the mean per sample (or
         * per position that counts) even with a short last batch */
        size_t right = 0, rows = 0;
        if (r->classes)
            right = nb__count_correct(&r->acc, r->g->nodes[cfg->output].val, r->yb, r->local,
                                      &rows);
        double w = nb__loss_weight(r->g, cfg->loss, r->local);
        if (cfg->dist) { /* the global batch's figures */
            double sums[4] = {w > 0 ? loss * w : 0, w, (double)right, (double)rows};
            if ((s = nb__dist_sum_stats(cfg->dist, sums, 4)) != NB_OK) return s;
            w = sums[1];
            if (w > 0) loss = sums[0] / w;
            right = (size_t)sums[2];
            rows = (size_t)sums[3];
        }
        if (w > 0) loss_sum += loss * w;
        weight_sum += w;
        seen += (size_t)bs;
        correct += right;
        counted += rows;
        nb_batch_stats bst = {epoch, b + 1, r->n_batches, nb_optim_steps(cfg->optimizer), loss,
                              weight_sum > 0 ? loss_sum / weight_sum : 0, w, right, rows, bs};
        *stop = cfg->on_batch && cfg->on_batch(&bst, cfg->user);
        if ((s = nb__dist_any(cfg->dist, stop)) != NB_OK || *stop) return s;
    }
    if (seen == 0) return NB_OK; /* resumed exactly at the end of an epoch */
    nb_epoch_stats st;
    init_stats(&st, epoch, lr);
    st.step = nb_optim_steps(cfg->optimizer);
    st.train_loss = weight_sum > 0 ? loss_sum / weight_sum : 0;
    if (r->classes) st.train_acc = counted ? (double)correct / (double)counted : 0;
    return finish_epoch(r, &st, t0, stop);
}

nb_status nb_fit(nb_graph *g, const nb_fit_config *cfg, const nb_data *train,
                 const nb_data *val, nb_epoch_stats *last) {
    nb_epoch_stats none;
    init_stats(&none, 0, 0);
    if (last) *last = none;
    if (!cfg) return nb_err(NB_ERR_ARG, "nb_fit: config is NULL");
    fit_run r;
    nb_status s = run_init(&r, g, cfg, train, val, last);
    if (s == NB_OK) {
        const int was_training = g->training;
        nb_graph_set_training(g, 1);
        int stop = 0;
        for (int epoch = cfg->start_epoch + 1; s == NB_OK && !stop && epoch <= cfg->epochs; epoch++)
            s = run_epoch(&r, epoch, &stop);
        nb_graph_set_training(g, was_training);
    }
    run_free(&r);
    return s;
}
