#define _POSIX_C_SOURCE 200809L
#include "progress.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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
    p->val_loss = p->val_acc = -1;
}

int progress_columns(int fd) {
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    const char *c = getenv("COLUMNS");
    long n = c ? strtol(c, NULL, 10) : 0;
    return n > 0 && n < 10000 ? (int)n : 80;
}

static void clock_str(char *buf, size_t n, double s) {
    long t = s < 0 ? 0 : (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

/* The parts of the bar's line, in the order they appear. */
enum { PART_HEAD, PART_BAR, PART_COUNT, PART_LOSS, PART_VAL, PART_RATE, PART_ETA, N_PARTS };
/* Which part goes next when the line is too long. */
static const int drop_order[] = {PART_RATE, PART_VAL, PART_BAR, PART_ETA, PART_COUNT};
enum { BAR_MAX = 30, BAR_MIN = 10 };

static void format_parts(char part[N_PARTS][64], const progress_line *v) {
    char eta[32];
    clock_str(eta, sizeof eta, v->eta);
    snprintf(part[PART_HEAD], 64, "epoch %d/%d", v->epoch, v->epochs);
    part[PART_BAR][0] = '\0'; /* drawn to the width left */
    snprintf(part[PART_COUNT], 64, " %zu/%zu", v->batch, v->batches);
    snprintf(part[PART_LOSS], 64, "  loss %.4f", v->loss);
    int n = 0;
    part[PART_VAL][0] = '\0';
    if (v->val_loss >= 0) n = snprintf(part[PART_VAL], 64, "  val_loss %.4f", v->val_loss);
    if (v->val_acc >= 0 && n >= 0 && n < 64)
        snprintf(part[PART_VAL] + n, (size_t)(64 - n), "  val_acc %.2f%%", 100 * v->val_acc);
    snprintf(part[PART_RATE], 64, "  %.0f samples/s", v->rate);
    snprintf(part[PART_ETA], 64, "  ETA %s", eta);
}

size_t progress_format(char *out, size_t size, int width, const progress_line *v) {
    char part[N_PARTS][64];
    format_parts(part, v);
    int keep[N_PARTS] = {1, 1, 1, 1, 1, 1, 1};
    size_t avail = width > 1 ? (size_t)width - 1 : 1, bar = 0;
    for (size_t d = 0; d <= sizeof drop_order / sizeof drop_order[0]; d++) {
        size_t len = 0;
        for (int i = 0; i < N_PARTS; i++) len += keep[i] ? strlen(part[i]) : 0;
        if (keep[PART_BAR]) { /* " [" bar "]": as wide as fits, up to BAR_MAX */
            bar = avail > len + 3 ? avail - len - 3 : 0;
            if (bar > BAR_MAX) bar = BAR_MAX;
            if (bar >= BAR_MIN) break;
        } else if (len <= avail) {
            break;
        }
        if (d < sizeof drop_order / sizeof drop_order[0]) keep[drop_order[d]] = 0;
    }
    if (keep[PART_BAR]) {
        size_t fill = v->batches ? bar * v->batch / v->batches : bar;
        char *b = part[PART_BAR];
        b[0] = ' ';
        b[1] = '[';
        for (size_t i = 0; i < bar; i++) b[2 + i] = i < fill ? '#' : '.';
        b[2 + bar] = ']';
        b[3 + bar] = '\0';
    }
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < N_PARTS; i++)
        if (keep[i]) n += (size_t)snprintf(out + n, size > n ? size - n : 0, "%s", part[i]);
    if (n > avail) n = avail; /* even "epoch E/N  loss L" does not fit */
    if (n >= size) n = size - 1;
    out[n] = '\0';
    return n;
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
    progress_line v = {epoch, p->epochs, batch, p->batches,
                       elapsed > 0 ? (double)(timed * p->batch_size) / elapsed : 0, loss,
                       timed ? elapsed / (double)timed * (double)(p->batches - batch) : 0,
                       p->val_loss, p->val_acc};
    char line[512];
    int width = progress_columns(fileno(p->out)); /* again each time: the window may change */
    if (width > 500) width = 500;
    size_t len = progress_format(line, sizeof line, width, &v);
    /* erased to the end of the line (ANSI EL): spaces could wrap when the
     * window has narrowed since the last redraw */
    fprintf(p->out, "\r%s\033[K", line);
    p->drawn_len = len ? len : 1;
    fflush(p->out);
}

void progress_clear(progress *p) {
    if (p->tty && p->drawn_len) {
        fputs("\r\033[K", p->out);
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
    p->val_loss = s->val_loss;
    p->val_acc = s->val_acc;
    p->done_before = 0;
}
