/* nabla tune's CSV of trials, its closing table and its picture. */
#define _POSIX_C_SOURCE 200809L
#include "tune_report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outfile.h"
#include "svgplot.h"

void tune_trial_path(char *buf, size_t size, const char *dir, int t, const char *ext) {
    snprintf(buf, size, "%s/trials/%03d.%s", dir, t + 1, ext);
}

int tune_read_log(const char *path, history *h) {
    memset(h, 0, sizeof *h);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 1 << 16, n = 0;
    char *text = malloc(cap);
    for (size_t got = 1; text && got;) {
        if (n + 1 == cap) {
            char *p = cap < (1u << 26) ? realloc(text, cap *= 2) : NULL;
            if (!p) {
                free(text);
                text = NULL;
                break;
            }
            text = p;
        }
        got = fread(text + n, 1, cap - 1 - n, f);
        n += got;
    }
    fclose(f);
    if (!text) return -1;
    text[n] = '\0';
    int rc = history_parse(h, text);
    free(text);
    if (rc) history_free(h);
    return rc;
}

double tune_row_metric(const tune_space *s, const nb_epoch_stats *row) {
    double v = s->metric_max ? row->val_acc : row->val_loss;
    return v >= 0 ? v : NAN;
}

static const char *status_name(const trial *tr, int final) {
    switch (tr->status) {
    case TRIAL_PENDING: return "pending";
    case TRIAL_RUNNING: return "running";
    case TRIAL_WAITING: return final ? "stopped" : "waiting";
    case TRIAL_DONE: return "done";
    default: return "failed";
    }
}

static void csv_rows(FILE *f, const tune_space *s, const asha *a, const tune_values *values,
                     int final) {
    fprintf(f, "trial,status,seed,epochs");
    for (int p = 0; p < s->n_params; p++) fprintf(f, ",%s", s->params[p].name);
    for (int k = 0; k < s->n_rungs; k++) fprintf(f, ",%s@%d", s->metric, s->rungs[k]);
    fputc('\n', f);
    for (int t = 0; t < s->trials; t++) {
        const trial *tr = &a->trials[t];
        fprintf(f, "%d,%s,%ld,%d", t + 1, status_name(tr, final), tune_trial_seed(s, t),
                asha_epochs(a, t));
        for (int p = 0; p < s->n_params; p++) fprintf(f, ",%s", values[t][p]);
        for (int k = 0; k < s->n_rungs; k++)
            if (isnan(tr->metric[k])) fputs(",", f);
            else fprintf(f, ",%.9g", tr->metric[k]);
        fputc('\n', f);
    }
}

int tune_write_csv(const char *path, const tune_space *s, const asha *a,
                   const tune_values *values, int final) {
    outfile o;
    FILE *f = outfile_open(&o, path);
    if (!f) return -1;
    csv_rows(f, s, a, values, final);
    if (ferror(f)) {
        int e = errno;
        outfile_abort(&o);
        errno = e;
        return -1;
    }
    return outfile_commit(&o);
}

void tune_print_table(FILE *f, const tune_space *s, const asha *a, const tune_values *values) {
    int best = asha_best(a);
    fprintf(f, "%6s %-8s %6s", "trial", "status", "epochs");
    for (int p = 0; p < s->n_params; p++) fprintf(f, " %12.12s", s->params[p].name);
    for (int k = 0; k < s->n_rungs; k++) {
        char h[32];
        snprintf(h, sizeof h, "@%d", s->rungs[k]);
        fprintf(f, " %9s", h);
    }
    fputc('\n', f);
    for (int t = 0; t < s->trials; t++) {
        const trial *tr = &a->trials[t];
        fprintf(f, "%5d%c %-8s %6d", t + 1, t == best ? '*' : ' ', status_name(tr, 1),
                asha_epochs(a, t));
        for (int p = 0; p < s->n_params; p++) fprintf(f, " %12.12s", values[t][p]);
        for (int k = 0; k < s->n_rungs; k++)
            if (isnan(tr->metric[k])) fprintf(f, " %9s", "-");
            else fprintf(f, " %9.4f", tr->metric[k]);
        fputc('\n', f);
    }
}

/* x, y of trial t's curve from its log: n points (0 when it has no log). */
static int curve(const char *dir, const tune_space *s, int t, double *x, double *y) {
    char path[4200];
    tune_trial_path(path, sizeof path, dir, t, "csv");
    history h;
    if (tune_read_log(path, &h)) return 0;
    int n = 0;
    for (int i = 0; i < h.n && n < s->max_epochs; i++, n++) {
        x[n] = h.rows[i].epoch;
        y[n] = tune_row_metric(s, &h.rows[i]);
        if (s->metric_max) y[n] *= 100;
    }
    history_free(&h);
    return n;
}

int tune_plot(const char *path, const char *dir, const char *title, const tune_space *s,
              const asha *a) {
    int nt = s->trials, me = s->max_epochs, best = asha_best(a);
    double *xy = malloc((size_t)nt * (size_t)me * 2 * sizeof *xy);
    svg_series *series = calloc((size_t)nt, sizeof *series);
    char (*label)[24] = calloc((size_t)nt, sizeof *label);
    if (!xy || !series || !label) {
        free(xy);
        free(series);
        free(label);
        errno = ENOMEM;
        return -1;
    }
    int n = 0;
    for (int t = 0; t < nt; t++) { /* the best trial last, on top */
        int u = best < 0 ? t : t < best ? t : t == nt - 1 ? best : t + 1;
        double *x = xy + (size_t)u * (size_t)me * 2, *y = x + me;
        int points = curve(dir, s, u, x, y);
        if (!points) continue;
        snprintf(label[u], sizeof label[u], "trial %d", u + 1);
        series[n++] = (svg_series){.label = label[u], .x = x, .y = y,
                                   .n = points, .marker = 2,
                                   .color = u == best ? "#d62728" : "#9aa5b1"};
    }
    svg_panel panel = {.title = s->metric_max ? "validation accuracy" : "validation loss",
                       .xlabel = "epochs trained", .series = series, .n_series = n,
                       .ylabel = s->metric_max ? "val_acc (%)" : "val_loss",
                       .log_y = !s->metric_max, .legend_at = SVG_LEGEND_NONE};
    char *tmp;
    int rc = outfile_temp(path, &tmp);
    if (rc == 0) {
        rc = svg_write(tmp, title, &panel, 1);
        int e = errno;
        if (rc == 0) rc = outfile_replace(tmp, path);
        else unlink(tmp), errno = e;
        free(tmp);
    }
    free(xy);
    free(series);
    free(label);
    return rc;
}
