/* Internals shared by the trainer's files (src/train only): the checks of a
 * training setup, batch augmentation, accuracy counting and the messages
 * that say where training failed. */
#ifndef NB_TRAIN_H
#define NB_TRAIN_H

#include "../core/internal.h"

static inline int nb__is_finite(double v) { return v == v && v - v == 0; }

/* Per-sample element count of a batched node. */
static inline size_t nb__sample_numel(const nb_node_t *n) { return nb__numel_from(n, 1); }

static inline uint64_t nb__mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The generator for one epoch's random choices: a function of (seed, epoch)
 * only, so epoch e of a run is the same whether or not epochs 1..e-1 ran
 * before. */
static inline void nb__epoch_rng(nb_rng *r, uint64_t seed, int epoch) {
    nb_rng_seed(r, nb__mix64(seed) ^ nb__mix64(0x9E3779B97F4A7C15ull * (uint64_t)epoch + 1));
}

/* ------------------------------------------------------------ checks (fit_check.c) */

/* The nodes of a training or evaluation setup fit together; fn names the
 * caller in messages, output may be NB_NONE. */
nb_status nb__check_nodes(const nb_graph *g, const char *fn, nb_node input, nb_node target,
                          nb_node loss, nb_node output);
/* A data set fits the input and the target; which: "training", ... */
nb_status nb__check_data(const nb_graph *g, const char *fn, const char *which,
                         const nb_data *d, nb_node input, nb_node target);
/* The optimiser exists and is sized for the graph. */
nb_status nb__check_optimizer(const nb_graph *g, const char *fn, const nb_optim *o);

/* ------------------------------------------------------------ augmentation (augment.c) */

typedef struct nb__augment {
    int flip, crop;        /* the settings of nb_fit_config           */
    int c, h, w;           /* image geometry of the input             */
    nb_real *plain;        /* one image before augmenting (c*h*w)     */
} nb__augment;

/* Image geometry of a batched input: [B, C, H, W] or [B, H, W]; 0 otherwise. */
int nb__image_dims(const nb_node_t *in, int *c, int *h, int *w);
/* Set up (allocates the one-image buffer) and release. */
nb_status nb__augment_init(nb__augment *a, const nb_graph *g, const nb_fit_config *cfg);
void nb__augment_free(nb__augment *a);
/* Augment rows [0, bs) of a batch in place; row r is position first + r of
 * the epoch's order (so a resumed epoch draws what an uninterrupted one does). */
void nb__augment_batch(const nb__augment *a, nb_real *x, int bs, size_t first, uint64_t seed,
                       int epoch);

/* ------------------------------------------------------------ several processes (dist.c, fit_dist.c) */

/* v := the weighted mean of the processes' v: sum of w_r v_r / sum of w_r,
 * in one fixed-order sum (the weights travel behind v; each a whole number
 * below 2^24, so that their sum in float is exact). */
nb_status nb__dist_mean(nb_dist *d, nb_real *v, size_t n, double w);
/* nb_fit's part of data parallelism; each does nothing for d == NULL. */
/* The settings work with d's processes: every batch has a sample for each. */
nb_status nb__dist_check(const nb_dist *d, const nb_fit_config *cfg, size_t n);
/* This process's slice [*off, *off + *count) of a global batch of bs samples. */
void nb__dist_slice(const nb_dist *d, int bs, int *off, int *count);
/* v[0..n) := its sum over the processes (a step's statistics). */
nb_status nb__dist_sum_stats(nb_dist *d, double *v, size_t n);
/* *flag := non-zero if it is non-zero on any process. */
nb_status nb__dist_any(nb_dist *d, int *flag);
/* Rank 0's validation loss and accuracy into every process's st. */
nb_status nb__dist_val_stats(nb_dist *d, nb_epoch_stats *st);

/* ------------------------------------------------------------ evaluation (evaluate.c) */

/* Index of the largest of v[0..n): the first one on ties; NaN never wins. */
static inline size_t nb__argmax(const nb_real *v, size_t n) {
    size_t best = 0;
    for (size_t j = 1; j < n; j++)
        if (v[j] > v[best] || v[best] != v[best]) best = j;
    return best;
}

/* How accuracy reads an output: each sample is `rows` rows of `classes`
 * scores (one row, or one per position of a [B, T, C] output), each row
 * against ys targets (1: a class index; classes: probabilities), and the
 * loss says which index targets it leaves out (ignore_index). */
typedef struct nb__acc_layout {
    size_t classes, rows, ys;
    const nb_node_t *loss;
} nb__acc_layout;

nb__acc_layout nb__acc_layout_of(const nb_graph *g, nb_node output, nb_node target,
                                 nb_node loss);
/* Rows of a batch whose argmax matches the target; *counted (added to)
 * gets the rows that count, those whose target the loss does not leave
 * out.  A class index out of range counts as wrong. */
size_t nb__count_correct(const nb__acc_layout *a, const nb_real *out, const nb_real *y,
                         int batch, size_t *counted);
/* The weight of a batch's mean loss when batch means are combined: the
 * terms it averaged (positions that count), or the batch size. */
static inline double nb__loss_weight(const nb_graph *g, nb_node loss, int bs) {
    const nb_node_t *L = &g->nodes[loss];
    return L->op && L->op->terms ? (double)L->op->terms(g, L) : (double)bs;
}
/* Mean loss and accuracy over d in eval mode; xb holds batch_size samples
 * of inputs, so nothing is allocated once the arena fits batch_size. */
nb_status nb__evaluate(const char *fn, nb_graph *g, nb_node input, nb_node target,
                       nb_node loss, nb_node output, const nb_data *d, int batch_size,
                       nb_real *xb, double *loss_out, double *acc_out);

/* ------------------------------------------------------------ failures (fit_errors.c) */

/* Where in training a step failed: epoch, step of the epoch, and the
 * training samples of the batch (idx[start ...]). */
typedef struct nb__step_place {
    int epoch;
    size_t batch, batches;
    long step;             /* the optimiser step that was being taken */
    int first_step;        /* the first step of this nb_fit call       */
    const size_t *idx;
    size_t start;
} nb__step_place;

/* The nb_fit error for a failed nb_train_step: for a non-finite loss or
 * gradient, where the first NaN or inf was born (the step's values and
 * gradients are still in the graph); otherwise the step's own message with
 * the place in front. */
nb_status nb__explain_step_error(nb_graph *g, const nb_fit_config *cfg, nb_status s,
                                 const nb__step_place *at);
/* The error for parameters the last step of an epoch made non-finite. */
nb_status nb__update_error(const nb_graph *g, int epoch, long step);

#endif
