/* The trainer: mini-batch gradient descent over an in-memory dataset.
 *
 * Each epoch visits the training set in an order that depends only on
 * (seed, epoch), takes consecutive batches of that order (mini-batches with
 * reshuffling, docs/definitions.md), and for
 * each batch runs zero_grad / forward / backward / (clip) / optimiser step.
 *
 * Everything the step loop needs (index permutation, batch buffers, the
 * optimiser state, the activation arena) is allocated before the first step,
 * so training never allocates after the first batch.  A smaller last batch
 * only re-plans the arena, which never shrinks. */
#include "../core/internal.h"

#include <stdio.h>
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
    c.seed = 0;
    c.optim = nb_optim_defaults(NB_OPT_ADAM);
    c.schedule = nb_schedule_defaults(NB_SCHED_CONSTANT);
    c.clip_norm = 0;
    return c;
}

/* ------------------------------------------------------------ helpers */

static double now_seconds(void) {
    struct timespec ts;
    if (timespec_get(&ts, TIME_UTC) != TIME_UTC) return 0;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The generator for one epoch's shuffle: a function of (seed, epoch) only,
 * so epoch e of a run is the same whether or not epochs 1..e-1 ran before. */
static void epoch_rng(nb_rng *r, uint64_t seed, int epoch) {
    nb_rng_seed(r, mix64(seed) ^ mix64(0x9E3779B97F4A7C15ull * (uint64_t)epoch + 1));
}

/* Prefix the current error message with the caller's name (copied first:
 * the message buffer is both source and destination). */
static nb_status prefix_error(nb_status s, const char *fn) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", nb_last_error());
    return nb_err(s, "%s: %s", fn, msg);
}

static int is_finite(double v) { return v == v && v - v == 0; }

static int node_ok(const nb_graph *g, nb_node n) { return n >= 0 && n < g->n_nodes; }

/* Per-sample element count of a batched node. */
static size_t sample_numel(const nb_node_t *n) { return nb__numel_from(n, 1); }

/* Copy sample k's inputs to dst, converting bytes to reals if need be. */
static void copy_x(const nb_dataset *d, size_t k, nb_real *dst) {
    size_t xs = d->x_size;
    if (d->x) {
        memcpy(dst, d->x + k * xs, xs * sizeof *dst);
        return;
    }
    const uint8_t *src = d->x_u8 + k * xs;
    for (size_t j = 0; j < xs; j++) dst[j] = (nb_real)src[j] * d->x_scale + d->x_offset;
}

void nb_augment_image(const nb_real *in, nb_real *out, int c, int h, int w, int flip, int dy,
                      int dx) {
    for (int ch = 0; ch < c; ch++) {
        const nb_real *src = in + (size_t)ch * h * w;
        nb_real *dst = out + (size_t)ch * h * w;
        for (int i = 0; i < h; i++) {
            int si = i + dy;
            for (int j = 0; j < w; j++) {
                int sj = j + dx;
                if (flip) sj = w - 1 - sj;
                dst[(size_t)i * w + j] =
                    si >= 0 && si < h && sj >= 0 && sj < w ? src[(size_t)si * w + sj] : 0;
            }
        }
    }
}

/* Image geometry of a batched input for augmentation: [B, C, H, W] or [B, H, W]. */
static int image_dims(const nb_node_t *in, int *c, int *h, int *w) {
    if (in->ndim == 4) *c = in->dims[1], *h = in->dims[2], *w = in->dims[3];
    else if (in->ndim == 3) *c = 1, *h = in->dims[1], *w = in->dims[2];
    else return 0;
    return 1;
}

/* Which node to run forward so that both loss and output (if any) are
 * computed in ONE pass: the loss if output is among its ancestors (the
 * usual case), else the whole graph.  One pass matters for ops that draw
 * random numbers (dropout): output and loss must see the same draw. */
static nb_status forward_target(const nb_graph *g, nb_node loss, nb_node output,
                                nb_node *target) {
    *target = loss;
    if (output == NB_NONE || output == loss) return NB_OK;
    if (output > loss) {
        *target = NB_NONE;
        return NB_OK;
    }
    unsigned char *need = calloc((size_t)loss + 1, 1);
    if (!need) return nb_err(NB_ERR_NOMEM, "nb_fit: out of memory");
    need[loss] = 1;
    for (int i = loss; i >= 0; i--) {
        if (!need[i]) continue;
        const nb_node_t *n = &g->nodes[i];
        for (int k = 0; k < n->nin; k++) need[n->in[k]] = 1;
    }
    if (!need[output]) *target = NB_NONE;
    free(need);
    return NB_OK;
}

/* Check that the nodes and the dataset fit together.  fn names the caller in
 * messages; output may be NB_NONE; data is the training or validation set. */
static nb_status check_nodes(const nb_graph *g, const char *fn, nb_node input,
                             nb_node target, nb_node loss, nb_node output) {
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
    if (output != NB_NONE) {
        const nb_node_t *O = &g->nodes[output];
        char s[128];
        if (!O->batched)
            return nb_err(NB_ERR_SHAPE, "%s: output '%s' has shape %s and is not batched; "
                          "accuracy needs one row of scores per sample", fn, O->name,
                          nb_shape_str(s, sizeof s, O->ndim, O->dims));
        if (sample_numel(O) < 2)
            return nb_err(NB_ERR_SHAPE, "%s: output '%s' has %zu score per sample; accuracy "
                          "(argmax) needs at least 2 classes (pass NB_NONE as output)", fn,
                          O->name, sample_numel(O));
        size_t c = sample_numel(O), t = sample_numel(&g->nodes[target]);
        if (t != 1 && t != c)
            return nb_err(NB_ERR_SHAPE, "%s: output '%s' has %zu scores per sample but target "
                          "'%s' has %zu values; expected 1 (class index) or %zu "
                          "(probabilities)", fn, O->name, c, g->nodes[target].name, t, c);
    }
    return NB_OK;
}

static nb_status check_data(const nb_graph *g, const char *fn, const char *which,
                            const nb_dataset *d, nb_node input, nb_node target) {
    if (!d) return nb_err(NB_ERR_ARG, "%s: %s dataset is NULL", fn, which);
    if (d->n == 0) return nb_err(NB_ERR_ARG, "%s: %s dataset has no samples", fn, which);
    if (!d->y) return nb_err(NB_ERR_ARG, "%s: %s dataset has a NULL y array", fn, which);
    if (!d->x == !d->x_u8)
        return nb_err(NB_ERR_ARG, "%s: %s dataset must set exactly one of x and x_u8", fn,
                      which);
    if (d->x_u8 && !(is_finite((double)d->x_scale) && is_finite((double)d->x_offset)))
        return nb_err(NB_ERR_ARG, "%s: %s dataset has a non-finite x_scale or x_offset", fn,
                      which);
    if (d->n > (size_t)1 << 40)
        return nb_err(NB_ERR_ARG, "%s: %s dataset has %zu samples (too many)", fn, which,
                      d->n);
    size_t xs = sample_numel(&g->nodes[input]), ys = sample_numel(&g->nodes[target]);
    if (d->x_size != xs)
        return nb_err(NB_ERR_SHAPE, "%s: %s dataset has x_size %zu but input '%s' takes %zu "
                      "values per sample", fn, which, d->x_size, g->nodes[input].name, xs);
    if (d->y_size != ys)
        return nb_err(NB_ERR_SHAPE, "%s: %s dataset has y_size %zu but target '%s' takes %zu "
                      "values per sample", fn, which, d->y_size, g->nodes[target].name, ys);
    return NB_OK;
}

/* Index of the largest of v[0..n) (the first one on ties; NaN never wins). */
static size_t argmax(const nb_real *v, size_t n) {
    size_t best = 0;
    for (size_t j = 1; j < n; j++)
        if (v[j] > v[best] || v[best] != v[best]) best = j;
    return best;
}

/* Number of rows of out (batch x c) whose argmax matches the target:
 * a class index (ys == 1) or the argmax of a probability row (ys == c). */
static size_t count_correct(const nb_real *out, const nb_real *y, int batch, size_t c,
                            size_t ys) {
    size_t correct = 0;
    for (int r = 0; r < batch; r++) {
        size_t pred = argmax(out + (size_t)r * c, c);
        size_t want;
        if (ys == 1) {
            double t = (double)y[r];
            if (!(t >= 0 && t < (double)c)) continue; /* not a class: counts as wrong */
            want = (size_t)t;
        } else {
            want = argmax(y + (size_t)r * ys, ys);
        }
        correct += pred == want;
    }
    return correct;
}

/* Mean loss and accuracy over data in eval mode, with the forward target
 * already worked out.  xb holds batch_size samples of inputs; no allocation
 * once the arena is large enough for batch_size. */
static nb_status evaluate(const char *fn, nb_graph *g, nb_node input, nb_node target,
                          nb_node loss, nb_node output, nb_node fwd, const nb_dataset *d,
                          int batch_size, nb_real *xb, double *loss_out, double *acc_out) {
    int was_training = g->training;
    nb_graph_set_training(g, 0);
    double loss_sum = 0;
    size_t correct = 0;
    size_t c = output != NB_NONE ? sample_numel(&g->nodes[output]) : 0;
    nb_status s = NB_OK;
    for (size_t start = 0; start < d->n && s == NB_OK; start += (size_t)batch_size) {
        int bs = (int)(d->n - start < (size_t)batch_size ? d->n - start : (size_t)batch_size);
        const nb_real *y = d->y + start * d->y_size;
        for (int r = 0; r < bs; r++) copy_x(d, start + (size_t)r, xb + (size_t)r * d->x_size);
        s = nb_set_input(g, input, xb, bs);
        if (s == NB_OK) s = nb_set_input(g, target, y, bs);
        if (s == NB_OK) s = nb_forward(g, fwd);
        if (s != NB_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", nb_last_error());
            s = nb_err(s, "%s: samples %zu..%zu: %s", fn, start, start + (size_t)bs - 1, msg);
            break;
        }
        /* mean losses: the dataset mean is the batch means weighted by size */
        loss_sum += (double)g->nodes[loss].val[0] * bs;
        if (output != NB_NONE)
            correct += count_correct(g->nodes[output].val, y, bs, c, d->y_size);
    }
    nb_graph_set_training(g, was_training);
    if (s != NB_OK) return s;
    if (loss_out) *loss_out = loss_sum / (double)d->n;
    if (acc_out) *acc_out = output != NB_NONE ? (double)correct / (double)d->n : -1;
    return NB_OK;
}

nb_status nb_evaluate(nb_graph *g, nb_node input, nb_node target, nb_node loss,
                      nb_node output, const nb_dataset *data, int batch_size,
                      double *loss_out, double *acc_out) {
    const char *fn = "nb_evaluate";
    nb_status s = check_nodes(g, fn, input, target, loss, output);
    if (s != NB_OK) return s;
    s = check_data(g, fn, "the", data, input, target);
    if (s != NB_OK) return s;
    if (batch_size <= 0)
        return nb_err(NB_ERR_ARG, "%s: batch_size %d is not positive", fn, batch_size);
    nb_node fwd;
    s = forward_target(g, loss, output, &fwd);
    if (s != NB_OK) return s;
    size_t rows = data->n < (size_t)batch_size ? data->n : (size_t)batch_size;
    nb_real *xb = malloc(rows * data->x_size * sizeof *xb);
    if (!xb) return nb_err(NB_ERR_NOMEM, "%s: out of memory", fn);
    s = evaluate(fn, g, input, target, loss, output, fwd, data, batch_size, xb, loss_out,
                 acc_out);
    free(xb);
    return s;
}

/* ------------------------------------------------------------ training */

static nb_status check_config(const nb_graph *g, const nb_fit_config *cfg,
                              const nb_dataset *train, const nb_dataset *val) {
    const char *fn = "nb_fit";
    if (!cfg) return nb_err(NB_ERR_ARG, "%s: config is NULL", fn);
    nb_status s = check_nodes(g, fn, cfg->input, cfg->target, cfg->loss, cfg->output);
    if (s != NB_OK) return s;
    if (!g->nodes[cfg->loss].requires_grad)
        return nb_err(NB_ERR_ARG, "%s: loss '%s' does not depend on any parameter", fn,
                      g->nodes[cfg->loss].name);
    if (cfg->epochs <= 0)
        return nb_err(NB_ERR_ARG, "%s: epochs is %d; expected at least 1", fn, cfg->epochs);
    if (cfg->batch_size <= 0)
        return nb_err(NB_ERR_ARG, "%s: batch_size is %d; expected at least 1", fn,
                      cfg->batch_size);
    if (!(cfg->clip_norm >= 0) || !is_finite(cfg->clip_norm))
        return nb_err(NB_ERR_ARG, "%s: clip_norm %g must be finite and >= 0 (0: no "
                      "clipping)", fn, cfg->clip_norm);
    if (!(cfg->optim.lr >= 0) || !is_finite(cfg->optim.lr))
        return nb_err(NB_ERR_ARG, "%s: learning rate %g must be finite and >= 0", fn,
                      cfg->optim.lr);
    s = nb_schedule_check(&cfg->schedule);
    if (s != NB_OK) return prefix_error(s, fn);
    s = check_data(g, fn, "training", train, cfg->input, cfg->target);
    if (s != NB_OK) return s;
    if (val) {
        s = check_data(g, fn, "validation", val, cfg->input, cfg->target);
        if (s != NB_OK) return s;
    }
    int c = 0, h = 0, w = 0;
    if ((cfg->augment_flip || cfg->augment_crop) && !image_dims(&g->nodes[cfg->input], &c, &h, &w))
        return nb_err(NB_ERR_SHAPE, "%s: augmentation needs image inputs [B, C, H, W] or "
                      "[B, H, W]; input '%s' has %d dimensions", fn, g->nodes[cfg->input].name,
                      g->nodes[cfg->input].ndim);
    if (cfg->augment_crop < 0 || (cfg->augment_crop && (cfg->augment_crop >= h || cfg->augment_crop >= w)))
        return nb_err(NB_ERR_ARG, "%s: augment_crop %d must be from 0 to less than the image "
                      "size", fn, cfg->augment_crop);
    if (cfg->start_epoch < 0 || cfg->start_epoch >= cfg->epochs)
        return nb_err(NB_ERR_ARG, "%s: start_epoch %d must be from 0 to epochs - 1 = %d", fn,
                      cfg->start_epoch, cfg->epochs - 1);
    if (cfg->optimizer && nb_optim_size(cfg->optimizer) != nb_param_count(g))
        return nb_err(NB_ERR_ARG, "%s: the optimiser is for %zu parameters, the graph has %zu",
                      fn, nb_optim_size(cfg->optimizer), nb_param_count(g));
    if (cfg->drop_last && train->n < (size_t)cfg->batch_size)
        return nb_err(NB_ERR_ARG, "%s: drop_last with batch_size %d and only %zu training "
                      "samples leaves no batch", fn, cfg->batch_size, train->n);
    return NB_OK;
}

/* Say where in training an op reported bad data (e.g. a label out of range). */
static nb_status step_error(nb_status s, int epoch, size_t b, size_t n_batches) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", nb_last_error());
    return nb_err(s, "nb_fit: epoch %d, step %zu of %zu: %s", epoch, b + 1, n_batches, msg);
}

/* Are all of v[0..n) finite?  Every step checks its gradients, so this
 * must cost next to nothing: a non-finite number has an all-ones exponent,
 * and OR-ing integer comparisons is a reduction the compiler vectorises
 * (a float one it may not reorder). */
static int all_finite(const nb_real *v, size_t n) {
#ifdef NB_REAL_DOUBLE
    const uint64_t exp_mask = 0x7FF0000000000000ull;
    uint64_t bad = 0, bits;
#else
    const uint32_t exp_mask = 0x7F800000u;
    uint32_t bad = 0, bits;
#endif
    for (size_t k = 0; k < n; k++) {
        memcpy(&bits, v + k, sizeof bits);
        bad |= (bits & exp_mask) == exp_mask;
    }
    return bad == 0;
}

/* The error for a non-finite loss or gradient: where the first NaN or inf
 * of the step was born (the step's activations and gradients are still in
 * the arena), and, when it came with the data, which training sample. */
static nb_status numeric_error(nb_graph *g, const nb_fit_config *cfg, const char *what,
                               int grads, int epoch, size_t b, size_t n_batches, long step,
                               int first_step, const size_t *idx, size_t start) {
    char where[600] = "";
    nb_nonfinite r;
    if (nb_find_nonfinite(g, cfg->loss, grads, &r) == NB_OK && r.node != NB_NONE) {
        char desc[480];
        nb_nonfinite_describe(g, &r, desc, sizeof desc);
        const nb_node_t *n = &g->nodes[r.node];
        if (!r.in_grad && n->leaf == NB_LEAF_INPUT && n->dims[0] > 0) {
            size_t sample = r.index / (nb__numel(n) / (size_t)n->dims[0]);
            snprintf(where, sizeof where, ": %s; sample %zu of the batch is sample %zu of the "
                     "training set; check the data", desc, sample, idx[start + sample]);
        } else if (!r.in_grad && n->leaf == NB_LEAF_PARAM && first_step) {
            snprintf(where, sizeof where, ": %s; it was so before training started: check "
                     "the initial or loaded weights", desc);
        } else if (!r.in_grad && n->leaf == NB_LEAF_PARAM) {
            /* the gradients of every step are checked: the update overflowed */
            snprintf(where, sizeof where, ": %s; optimiser step %ld wrote it from finite "
                     "gradients: lower the learning rate", desc, step - 1);
        } else {
            snprintf(where, sizeof where, ": %s; lower the learning rate or check the data",
                     desc);
        }
    } else {
        snprintf(where, sizeof where, "; lower the learning rate or check the data");
    }
    return nb_err(NB_ERR_NUMERIC, "nb_fit: %s at epoch %d, step %zu of %zu (optimiser step "
                  "%ld)%s", what, epoch, b + 1, n_batches, step, where);
}

/* The error for parameters an optimiser step made non-finite (the update
 * overflowed: the gradients were finite). */
static nb_status update_error(const nb_graph *g, int epoch, long step) {
    for (int p = 0; p < g->n_param_nodes; p++) {
        const nb_node_t *n = &g->nodes[g->param_nodes[p]];
        size_t len = nb__numel(n);
        for (size_t k = 0; k < len; k++) {
            if (is_finite((double)n->val[k])) continue;
            return nb_err(NB_ERR_NUMERIC, "nb_fit: optimiser step %ld (the last of epoch %d) "
                          "made parameter '%s' %s (element %zu) from finite gradients; lower "
                          "the learning rate", step, epoch, n->name,
                          n->val[k] != n->val[k] ? "NaN" : "infinite", k);
        }
    }
    return nb_err(NB_ERR_NUMERIC, "nb_fit: optimiser step %ld (the last of epoch %d) made a "
                  "parameter non-finite", step, epoch);
}

static void init_stats(nb_epoch_stats *st) {
    memset(st, 0, sizeof *st);
    st->train_acc = st->val_loss = st->val_acc = -1;
}

nb_status nb_fit(nb_graph *g, const nb_fit_config *cfg, const nb_dataset *train,
                 const nb_dataset *val, nb_epoch_stats *last) {
    nb_epoch_stats done; /* the last completed epoch */
    init_stats(&done);
    if (last) *last = done;
    nb_status s = check_config(g, cfg, train, val);
    if (s != NB_OK) return s;

    const size_t n = train->n, xs = train->x_size, ys = train->y_size;
    const int batch = n < (size_t)cfg->batch_size ? (int)n : cfg->batch_size;
    const size_t n_batches = cfg->drop_last ? n / (size_t)batch
                                            : (n + (size_t)batch - 1) / (size_t)batch;
    const size_t c = cfg->output != NB_NONE ? sample_numel(&g->nodes[cfg->output]) : 0;

    nb_node fwd;
    s = forward_target(g, cfg->loss, cfg->output, &fwd);
    if (s != NB_OK) return s;

    const int was_training = g->training;
    /* Everything the step loop touches, allocated once. */
    size_t *idx = malloc(n * sizeof *idx);
    nb_real *xb = malloc((size_t)batch * xs * sizeof *xb);
    nb_real *yb = malloc((size_t)batch * ys * sizeof *yb);
    const int augment = cfg->augment_flip || cfg->augment_crop;
    nb_real *plain = augment ? malloc(xs * sizeof *plain) : NULL; /* one image before augmenting */
    int img_c = 0, img_h = 0, img_w = 0;
    if (augment) image_dims(&g->nodes[cfg->input], &img_c, &img_h, &img_w);
    nb_optim *own = cfg->optimizer ? NULL : nb_optim_new(&cfg->optim, nb_param_count(g));
    nb_optim *opt = cfg->optimizer ? cfg->optimizer : own;
    if (!idx || !xb || !yb || !opt || (augment && !plain)) {
        if (!opt && idx && xb && yb && (!augment || plain)) s = prefix_error(NB_ERR_ARG, "nb_fit");
        else s = nb_err(NB_ERR_NOMEM, "nb_fit: out of memory for %zu samples", n);
        goto out;
    }
    /* Size the arena for the full batch (and for validation, which uses the
     * same batch size) before the first step. */
    s = nb_graph_set_batch(g, batch);
    if (s != NB_OK) goto out;

    nb_graph_set_training(g, 1);
    nb_real *params = nb_params(g);
    const nb_real *grads = nb_grads(g);
    const size_t n_params = nb_param_count(g);

    for (int epoch = cfg->start_epoch + 1; epoch <= cfg->epochs; epoch++) {
        double t0 = now_seconds();
        double lr = nb_schedule_lr(&cfg->schedule, cfg->optim.lr, (long)(epoch - 1));
        for (size_t i = 0; i < n; i++) idx[i] = i;
        if (!cfg->no_shuffle) {
            nb_rng r;
            epoch_rng(&r, cfg->seed, epoch);
            nb_rng_shuffle(&r, idx, n);
        }
        double loss_sum = 0;
        size_t seen = 0, correct = 0;
        size_t first = epoch == cfg->start_epoch + 1 ? cfg->start_batch : 0;
        for (size_t b = first; b < n_batches; b++) {
            size_t start = b * (size_t)batch;
            const int first_step = b == first && epoch == cfg->start_epoch + 1; /* of this call */
            int bs = (int)(n - start < (size_t)batch ? n - start : (size_t)batch);
            for (int r = 0; r < bs; r++) {
                size_t k = idx[start + (size_t)r];
                if (!augment) {
                    copy_x(train, k, xb + (size_t)r * xs);
                } else {
                    /* its own generator per (epoch, position): resumable at any batch */
                    nb_rng ar;
                    epoch_rng(&ar, cfg->seed ^ 0xA5A5A5A5A5A5A5A5ull, epoch);
                    uint64_t pos = mix64((uint64_t)(start + (size_t)r) + 1);
                    for (int q = 0; q < 4; q++) ar.s[q] ^= pos * (2 * (uint64_t)q + 1);
                    int flip = cfg->augment_flip ? (int)nb_rng_below(&ar, 2) : 0;
                    int p = cfg->augment_crop;
                    int dy = p ? (int)nb_rng_below(&ar, (uint64_t)(2 * p + 1)) - p : 0;
                    int dx = p ? (int)nb_rng_below(&ar, (uint64_t)(2 * p + 1)) - p : 0;
                    copy_x(train, k, plain);
                    nb_augment_image(plain, xb + (size_t)r * xs, img_c, img_h, img_w, flip, dy, dx);
                }
                memcpy(yb + (size_t)r * ys, train->y + k * ys, ys * sizeof *yb);
            }
            s = nb_set_input(g, cfg->input, xb, bs);
            if (s == NB_OK) s = nb_set_input(g, cfg->target, yb, bs);
            if (s == NB_OK) s = nb_forward(g, fwd);
            if (s != NB_OK) {
                s = step_error(s, epoch, b, n_batches);
                goto restore;
            }
            double loss = (double)g->nodes[cfg->loss].val[0];
            if (!is_finite(loss)) {
                const char *what = loss != loss ? "loss is NaN"
                                   : loss > 0     ? "loss is inf"
                                                  : "loss is -inf";
                s = numeric_error(g, cfg, what, 0, epoch, b, n_batches,
                                  nb_optim_steps(opt) + 1, first_step, idx, start);
                goto restore;
            }
            nb_zero_grad(g);
            s = nb_backward(g, cfg->loss);
            if (s != NB_OK) {
                s = step_error(s, epoch, b, n_batches);
                goto restore;
            }
            /* a non-finite gradient would poison the parameters: stop before
             * the step (clipping leaves a non-finite gradient as it is) */
            double norm = 0;
            if (cfg->clip_norm > 0) norm = nb_clip_grad_norm(nb_grads(g), n_params, cfg->clip_norm);
            if (!is_finite(norm) || (cfg->clip_norm <= 0 && !all_finite(grads, n_params))) {
                s = numeric_error(g, cfg, "gradient is not finite", 1, epoch, b, n_batches,
                                  nb_optim_steps(opt) + 1, first_step, idx, start);
                goto restore;
            }
            s = nb_optim_step(opt, params, grads, lr);
            if (s != NB_OK) goto restore;
            loss_sum += loss * bs;
            seen += (size_t)bs;
            if (c) correct += count_correct(g->nodes[cfg->output].val, yb, bs, c, ys);
            if (cfg->on_batch) {
                nb_batch_stats bst = {epoch, b + 1, n_batches, nb_optim_steps(opt), loss,
                                      loss_sum / (double)seen};
                if (cfg->on_batch(&bst, cfg->user)) goto restore;
            }
        }
        if (seen == 0) continue; /* resumed exactly at the end of an epoch */
        /* An update that overflows shows in the next step's loss; only the
         * last step of an epoch has none before the callback (which may save
         * the weights) and the return, so that is checked here, once. */
        if (!all_finite(params, n_params)) {
            s = update_error(g, epoch, nb_optim_steps(opt));
            goto restore;
        }
        nb_epoch_stats st;
        init_stats(&st);
        st.epoch = epoch;
        st.step = nb_optim_steps(opt);
        st.lr = lr;
        /* weighted by batch size: the per-sample mean even with a short last batch */
        st.train_loss = loss_sum / (double)seen;
        if (c) st.train_acc = (double)correct / (double)seen;
        if (val) {
            s = evaluate("nb_fit: validation", g, cfg->input, cfg->target, cfg->loss,
                         cfg->output, fwd, val, batch, xb, &st.val_loss, &st.val_acc);
            if (s != NB_OK) goto restore;
        }
        st.seconds = now_seconds() - t0;
        done = st;
        if (last) *last = done;
        if (cfg->on_epoch && cfg->on_epoch(&st, cfg->user)) break;
    }
restore:
    nb_graph_set_training(g, was_training);
out:
    nb_optim_free(own);
    free(plain);
    free(yb);
    free(xb);
    free(idx);
    return s;
}
