#define _POSIX_C_SOURCE 200809L
#include "diag_report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static const struct {
    unsigned flag;
    const char *name;
} flags[] = {
    {NB_DIAG_DEAD, "dead"},           {NB_DIAG_SATURATED, "saturated"},
    {NB_DIAG_VANISHING, "vanishing"}, {NB_DIAG_EXPLODING, "exploding"},
    {NB_DIAG_UPDATE_SMALL, "update_small"}, {NB_DIAG_UPDATE_LARGE, "update_large"},
    {NB_DIAG_NONFINITE, "nonfinite"},
};
#define N_FLAGS (sizeof flags / sizeof flags[0])

/* A measurement, or "-" where there is none (-1). */
static const char *num(char *buf, size_t n, double v, const char *fmt) {
    if (v == -1) snprintf(buf, n, "-");
    else snprintf(buf, n, fmt, v);
    return buf;
}

void diag_print(FILE *out, const nb_diagnosis *d, int epoch, size_t batch, long step,
                size_t samples) {
    int wname = 5, wop = 2;
    for (int i = 0; i < d->n_rows; i++) {
        int ln = (int)strlen(d->rows[i].name), lo = (int)strlen(d->rows[i].op);
        if (ln > wname) wname = ln;
        if (lo > wop) wop = lo;
    }
    fprintf(out, "diagnostics: epoch %d, batch %zu (optimiser step %ld, %zu samples)\n", epoch,
            batch, step, samples);
    fprintf(out, "  %-*s %-*s %10s %10s %6s %6s %10s %10s\n", wname, "layer", wop, "op", "mean",
            "std", "dead%", "sat%", "grad norm", "upd/weight");
    for (int i = 0; i < d->n_rows; i++) {
        const nb_diag_row *r = &d->rows[i];
        char dead[16], sat[16], grad[24], upd[24];
        fprintf(out, "  %-*s %-*s %10.4g %10.4g %6s %6s %10s %10s%s\n", wname, r->name, wop,
                r->op, r->mean, r->std,
                num(dead, sizeof dead, r->dead >= 0 ? 100 * r->dead : -1, "%.1f"),
                num(sat, sizeof sat, r->saturated >= 0 ? 100 * r->saturated : -1, "%.1f"),
                num(grad, sizeof grad, r->grad_norm, "%.3e"),
                num(upd, sizeof upd, r->update_ratio, "%.2e"), r->warn ? "  <-" : "");
    }
    for (int i = 0; i < d->n_rows; i++)
        for (size_t f = 0; f < N_FLAGS; f++) {
            char msg[512];
            if (d->rows[i].warn & flags[f].flag)
                fprintf(out, "WARNING: %s\n",
                        nb_diag_warning(&d->rows[i], flags[f].flag, msg, sizeof msg));
        }
    fflush(out);
}

static const char *header = "epoch,step,layer,op,numel,mean,std,dead,saturated,grad_norm,"
                            "weight_norm,update_ratio,warnings\n";

/* A run killed in the middle of a write may have left a cut last row: drop it. */
static int drop_cut_row(FILE *f) {
    if (fseek(f, 0, SEEK_END) != 0) return -1;
    long end = ftell(f), keep = end;
    while (keep > 0) {
        if (fseek(f, keep - 1, SEEK_SET) != 0) return -1;
        if (fgetc(f) == '\n') break;
        keep--;
    }
    if (keep < end && ftruncate(fileno(f), (off_t)keep) != 0) return -1;
    return fseek(f, 0, SEEK_END);
}

FILE *diag_log_open(const char *path, int append) {
    FILE *f = fopen(path, append ? "a+" : "w");
    if (!f) return NULL;
    if ((append && drop_cut_row(f) != 0) ||
        ((fseek(f, 0, SEEK_END) != 0 || ftell(f) == 0) && fputs(header, f) < 0)) {
        int e = errno;
        fclose(f);
        errno = e;
        return NULL;
    }
    return f;
}

/* A CSV number: empty where there is none (-1). */
static void field(FILE *f, double v) {
    if (v == -1) fputs(",", f);
    else fprintf(f, ",%.9g", v);
}

static void rows(FILE *f, const nb_diagnosis *d, int epoch, long step) {
    for (int i = 0; i < d->n_rows; i++) {
        const nb_diag_row *r = &d->rows[i];
        /* node names are letters, digits, '_' and '.': no quoting needed */
        fprintf(f, "%d,%ld,%s,%s,%zu", epoch, step, r->name, r->op, r->numel);
        field(f, r->mean);
        field(f, r->std);
        field(f, r->dead);
        field(f, r->saturated);
        field(f, r->grad_norm);
        field(f, r->weight_norm);
        field(f, r->update_ratio);
        fputc(',', f);
        int first = 1;
        for (size_t k = 0; k < N_FLAGS; k++)
            if (r->warn & flags[k].flag) {
                fprintf(f, "%s%s", first ? "" : "|", flags[k].name);
                first = 0;
            }
        fputc('\n', f);
    }
}

/* The rows are appended whole or not at all: a failed write (a full disk)
 * is cut back to the rows before it. */
int diag_log_write(FILE *f, const nb_diagnosis *d, int epoch, long step) {
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) return -1;
    rows(m, d, epoch, step);
    int ok = fclose(m) == 0;
    long before = ftell(f);
    ok = ok && before >= 0 && fwrite(buf, 1, len, f) == len && fflush(f) == 0;
    int e = errno;
    free(buf);
    if (!ok) {
        if (before >= 0 && ftruncate(fileno(f), (off_t)before) == 0) clearerr(f);
        errno = e;
        return -1;
    }
    return 0;
}
