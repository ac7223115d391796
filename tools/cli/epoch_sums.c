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

void epoch_sums_batch(epoch_sums *e, const nb_batch_stats *b) {
    begin(e, b->epoch);
    e->loss_sum += b->loss * b->batch_size;
    e->seen += (size_t)b->batch_size;
    e->correct += b->correct;
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
