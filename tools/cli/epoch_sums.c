#include "epoch_sums.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "progress.h"

void epoch_sums_start(epoch_sums *e) {
    e->t0 = progress_now();
}

/* The epoch's first batch in this run: start from zero (or from restored sums). */
static void begin(epoch_sums *e, int epoch) {
    if (e->epoch == epoch) return;
    double t0 = e->t0;
    memset(e, 0, sizeof *e);
    e->epoch = epoch;
    e->t0 = t0;
}

/* Correct predictions of the batch, counted as nb_fit counts them: the first
 * largest score against the class label. */
static size_t count_correct(nb_graph *g, nb_node output, nb_node target, int batch) {
    size_t classes = cli_sample_size(g, output), correct = 0;
    const nb_real *p = nb_value(g, output), *y = nb_value(g, target);
    if (!p || !y || classes == 0 || cli_sample_size(g, target) != 1) return 0;
    for (int r = 0; r < batch; r++, p += classes) {
        size_t best = 0;
        for (size_t c = 1; c < classes; c++)
            if (p[c] > p[best]) best = c;
        double t = (double)y[r];
        correct += t >= 0 && t < (double)classes && best == (size_t)t;
    }
    return correct;
}

void epoch_sums_batch(epoch_sums *e, const nb_batch_stats *b, nb_graph *g, nb_node output,
                      nb_node target) {
    begin(e, b->epoch);
    int bs = nb_graph_batch(g);
    e->loss_sum += b->loss * bs;
    e->seen += (size_t)bs;
    if (output != NB_NONE) e->correct += count_correct(g, output, target, bs);
}

void epoch_sums_finish(epoch_sums *e, nb_epoch_stats *s) {
    if (e->restored && e->epoch == s->epoch && e->seen > 0) {
        s->train_loss = e->loss_sum / (double)e->seen;
        if (s->train_acc >= 0) s->train_acc = (double)e->correct / (double)e->seen;
        s->seconds += e->seconds_before;
    }
    e->epoch = 0;
    e->t0 = progress_now();
}

void epoch_sums_format(const epoch_sums *e, char *buf, size_t size) {
    snprintf(buf, size, "%d %.17g %zu %zu %.17g", e->epoch, e->loss_sum, e->seen, e->correct,
             e->seconds_before + (progress_now() - e->t0));
}

int epoch_sums_restore(epoch_sums *e, const char *text, int epoch, size_t seen) {
    int ep, used = 0;
    double loss, seconds;
    size_t n, correct;
    if (sscanf(text, "%d %lf %zu %zu %lf%n", &ep, &loss, &n, &correct, &seconds, &used) != 5 ||
        text[used] != '\0' || correct > n || !(seconds >= 0))
        return -1;
    if (ep != epoch || n != seen) return 0;
    begin(e, epoch);
    e->loss_sum = loss;
    e->seen = n;
    e->correct = correct;
    e->seconds_before = seconds;
    e->restored = 1;
    return 0;
}
