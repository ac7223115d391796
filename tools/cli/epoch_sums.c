#include "epoch_sums.h"

#include <stdio.h>
#include <string.h>

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

void epoch_sums_batch(epoch_sums *e, const nb_batch_stats *b, int batch_size, int with_output) {
    begin(e, b->epoch);
    e->loss_sum += b->loss * b->loss_weight;
    e->weight += b->loss_weight;
    e->seen += (size_t)batch_size;
    if (with_output) {
        e->correct += b->correct;
        e->counted += b->counted;
    }
}

void epoch_sums_finish(epoch_sums *e, nb_epoch_stats *s) {
    if (e->restored && e->epoch == s->epoch && e->seen > 0) {
        s->train_loss = e->weight > 0 ? e->loss_sum / e->weight : 0;
        if (s->train_acc >= 0)
            s->train_acc = e->counted ? (double)e->correct / (double)e->counted : 0;
        s->seconds += e->seconds_before;
    }
    e->epoch = 0;
    e->t0 = progress_now();
}

void epoch_sums_format(const epoch_sums *e, char *buf, size_t size) {
    snprintf(buf, size, "%d %.17g %zu %zu %.17g %zu %.17g", e->epoch, e->loss_sum, e->seen,
             e->correct, e->weight, e->counted, e->seconds_before + (progress_now() - e->t0));
}

int epoch_sums_restore(epoch_sums *e, const char *text, int epoch, size_t seen) {
    int ep, used = 0;
    double loss, seconds, weight;
    size_t n, correct, counted;
    if (sscanf(text, "%d %lf %zu %zu %lf %zu %lf%n", &ep, &loss, &n, &correct, &weight,
               &counted, &seconds, &used) != 7 || text[used] != '\0') {
        used = 0; /* an earlier version's: the weights are the samples */
        if (sscanf(text, "%d %lf %zu %zu %lf%n", &ep, &loss, &n, &correct, &seconds, &used) != 5 ||
            text[used] != '\0')
            return -1;
        weight = (double)n;
        counted = n;
    }
    if (correct > counted || !(seconds >= 0) || !(weight >= 0)) return -1;
    if (ep != epoch || n != seen) return 0;
    begin(e, epoch);
    e->loss_sum = loss;
    e->weight = weight;
    e->seen = n;
    e->correct = correct;
    e->counted = counted;
    e->seconds_before = seconds;
    e->restored = 1;
    return 0;
}
