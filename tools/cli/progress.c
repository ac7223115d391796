#define _POSIX_C_SOURCE 200809L
#include "progress.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

double progress_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_init(progress *p, FILE *out, int epochs, size_t batches, size_t batch_size) {
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = isatty(fileno(out));
    p->epochs = epochs;
    p->batches = batches;
    p->batch_size = batch_size;
    p->epoch_start = progress_now();
}

static void clock_str(char *buf, size_t n, double s) {
    long t = s < 0 ? 0 : (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void progress_batch(progress *p, int epoch, size_t batch, double loss) {
    double now = progress_now();
    if (epoch != p->epoch) { /* a resumed epoch starts after its first batches */
        p->epoch = epoch;
        p->done_before = batch - 1; /* the clock runs from progress_init or the last epoch */
    }
    if (!p->tty) return;
    if (batch < p->batches && now - p->last_draw < 0.1) return;
    p->last_draw = now;
    double elapsed = now - p->epoch_start;
    size_t timed = batch - p->done_before; /* the batches this run has timed */
    double rate = elapsed > 0 ? (double)(timed * p->batch_size) / elapsed : 0;
    double eta = timed ? elapsed / (double)timed * (double)(p->batches - batch) : 0;
    char bar[31], eta_s[32];
    int fill = p->batches ? (int)(30.0 * (double)batch / (double)p->batches) : 30;
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    clock_str(eta_s, sizeof eta_s, eta);
    char line[256];
    int n = snprintf(line, sizeof line, "epoch %d/%d [%s] %zu/%zu  %.0f samples/s  loss %.4f  "
                     "ETA %s", epoch, p->epochs, bar, batch, p->batches, rate, loss, eta_s);
    size_t len = n > 0 ? (size_t)n : 0;
    fprintf(p->out, "\r%s", line);
    for (size_t i = len; i < p->drawn_len; i++) fputc(' ', p->out); /* erase leftovers */
    p->drawn_len = len;
    fflush(p->out);
}

void progress_clear(progress *p) {
    if (p->tty && p->drawn_len) {
        fputc('\r', p->out);
        for (size_t i = 0; i < p->drawn_len; i++) fputc(' ', p->out);
        fputc('\r', p->out);
        p->drawn_len = 0;
    }
}

void progress_epoch(progress *p, const nb_epoch_stats *s) {
    progress_clear(p);
    /* samples/s of the samples this run timed (a resumed epoch: the rest) */
    double now = progress_now(), elapsed = now - p->epoch_start;
    size_t timed = p->batches > p->done_before ? p->batches - p->done_before : 0;
    double rate = elapsed > 0 ? (double)(timed * p->batch_size) / elapsed : 0;
    fprintf(p->out, "epoch %d/%d  loss %.4f", s->epoch, p->epochs, s->train_loss);
    if (s->train_acc >= 0) fprintf(p->out, "  acc %.2f%%", 100 * s->train_acc);
    if (s->val_loss >= 0) fprintf(p->out, "  val_loss %.4f", s->val_loss);
    if (s->val_acc >= 0) fprintf(p->out, "  val_acc %.2f%%", 100 * s->val_acc);
    fprintf(p->out, "  lr %.3g  %.1fs  %.0f samples/s\n", s->lr, s->seconds, rate);
    fflush(p->out);
    p->epoch_start = now; /* the next epoch's clock */
    p->done_before = 0;
}
