#define _POSIX_C_SOURCE 200809L
#include "history.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outfile.h"
#include "svgplot.h"

static const char *header = "epoch,step,lr,train_loss,train_acc,val_loss,val_acc,seconds\n";

int history_add(history *h, const nb_epoch_stats *s) {
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 64;
        nb_epoch_stats *r = realloc(h->rows, (size_t)cap * sizeof *r);
        if (!r) return -1;
        h->rows = r;
        h->cap = cap;
    }
    h->rows[h->n++] = *s;
    return 0;
}

/* One row; -1 marks a metric that was not measured and is written empty. */
static int format_row(char *buf, size_t n, const nb_epoch_stats *s) {
    char acc[32] = "", vl[32] = "", va[32] = "";
    if (s->train_acc >= 0) snprintf(acc, sizeof acc, "%.6f", s->train_acc);
    if (s->val_loss >= 0) snprintf(vl, sizeof vl, "%.9g", s->val_loss);
    if (s->val_acc >= 0) snprintf(va, sizeof va, "%.6f", s->val_acc);
    return snprintf(buf, n, "%d,%ld,%.9g,%.9g,%s,%s,%s,%.3f\n", s->epoch, s->step, s->lr,
                    s->train_loss, acc, vl, va, s->seconds);
}

char *history_csv(const history *h) {
    size_t cap = strlen(header) + 1 + (size_t)h->n * 200, used = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    used += (size_t)snprintf(out, cap, "%s", header);
    for (int i = 0; i < h->n; i++) {
        int w = format_row(out + used, cap - used, &h->rows[i]);
        if (w < 0 || (size_t)w >= cap - used) {
            free(out);
            return NULL;
        }
        used += (size_t)w;
    }
    return out;
}

static double field(const char *s) { return *s && *s != ',' && *s != '\n' ? strtod(s, NULL) : -1; }

int history_parse(history *h, const char *csv) {
    const char *line = strchr(csv, '\n');
    if (strncmp(csv, header, strlen(header)) != 0 || !line) return -1;
    for (line++; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : line + strlen(line)) {
        const char *f[8];
        f[0] = line;
        for (int k = 1; k < 8; k++) {
            const char *c = strchr(f[k - 1], ',');
            const char *nl = strchr(f[k - 1], '\n');
            if (!c || (nl && c > nl)) return -1;
            f[k] = c + 1;
        }
        nb_epoch_stats s;
        memset(&s, 0, sizeof s);
        s.epoch = atoi(f[0]);
        s.step = atol(f[1]);
        s.lr = field(f[2]);
        s.train_loss = field(f[3]);
        s.train_acc = field(f[4]);
        s.val_loss = field(f[5]);
        s.val_acc = field(f[6]);
        s.seconds = field(f[7]);
        if (history_add(h, &s)) return -1;
    }
    return 0;
}

int history_write_log(const history *h, const char *path) {
    char *csv = history_csv(h);
    if (!csv) {
        errno = ENOMEM;
        return -1;
    }
    outfile o;
    FILE *f = outfile_open(&o, path);
    int ok = f && fputs(csv, f) >= 0;
    int e = errno;
    free(csv);
    if (!f) return -1;
    if (!ok) {
        outfile_abort(&o);
        errno = e;
        return -1;
    }
    return outfile_commit(&o);
}

int history_plot(const history *h, const char *path, const char *title) {
    int n = h->n;
    double *x = malloc((size_t)(n ? n : 1) * 5 * sizeof *x);
    if (!x) return -1;
    double *tl = x + n, *vl = x + 2 * n, *ta = x + 3 * n, *va = x + 4 * n;
    int has_val = 0, has_acc = 0;
    for (int i = 0; i < n; i++) {
        const nb_epoch_stats *s = &h->rows[i];
        x[i] = s->epoch;
        tl[i] = s->train_loss;
        vl[i] = s->val_loss >= 0 ? s->val_loss : NAN;
        ta[i] = s->train_acc >= 0 ? 100 * s->train_acc : NAN;
        va[i] = s->val_acc >= 0 ? 100 * s->val_acc : NAN;
        has_val |= s->val_loss >= 0;
        has_acc |= s->train_acc >= 0;
    }
    svg_series loss[2] = {{.label = "training", .x = x, .y = tl, .n = n},
                          {.label = "validation", .x = x, .y = vl, .n = n, .dashed = 1}};
    svg_series acc[2] = {{.label = "training", .x = x, .y = ta, .n = n},
                         {.label = "validation", .x = x, .y = va, .n = n, .dashed = 1}};
    svg_panel panels[2] = {
        {.title = "loss", .xlabel = "epoch", .ylabel = "loss", .log_y = 1, .series = loss,
         .n_series = has_val ? 2 : 1},
        {.title = "accuracy", .xlabel = "epoch", .ylabel = "accuracy (%)", .series = acc,
         .n_series = has_val ? 2 : 1, .legend_at = SVG_LEGEND_AUTO},
    };
    char *tmp;
    int rc = outfile_temp(path, &tmp);
    if (rc == 0) {
        rc = svg_write(tmp, title, panels, has_acc ? 2 : 1);
        int e = errno;
        if (rc == 0) rc = outfile_replace(tmp, path);
        else unlink(tmp), errno = e;
        free(tmp);
    }
    free(x);
    return rc;
}

void history_free(history *h) {
    free(h->rows);
    memset(h, 0, sizeof *h);
}
