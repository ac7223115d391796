/* Summaries and plots of the course experiments (see course_out.h). */
#include "course_out.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

static void out_path(const course_out *o, const char *ext, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s.%s", o->ctx->out_dir, o->name, ext);
}

int course_fail(const char *name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "nabla experiment %s: ", name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int course_open(course_out *o, const exp_ctx *ctx, const char *name) {
    char path[4096];
    o->ctx = ctx;
    o->name = name;
    o->failed = 0;
    out_path(o, "txt", path, sizeof path);
    o->txt = fopen(path, "w");
    if (!o->txt) return course_fail(name, "cannot write '%s': %s", path, strerror(errno));
    return 0;
}

void course_say(course_out *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (!o->txt) return;
    va_start(ap, fmt);
    if (vfprintf(o->txt, fmt, ap) < 0) o->failed = 1;
    va_end(ap);
}

int course_plot(course_out *o, const char *title, const svg_panel *panels, int n, int columns) {
    char path[4096];
    out_path(o, "svg", path, sizeof path);
    if (svg_write_grid(path, title, panels, n, columns) != 0)
        return course_fail(o->name, "cannot write '%s': %s", path, strerror(errno));
    course_say(o, "\nplot: %s\n", path);
    return 0;
}

int course_close(course_out *o, int rc) {
    fflush(stdout);
    if (o->txt) {
        int bad = ferror(o->txt);
        if (fclose(o->txt) != 0 || bad) o->failed = 1;
        o->txt = NULL;
    }
    if (o->failed && rc == 0) {
        course_fail(o->name, "writing the summary %s/%s.txt failed", o->ctx->out_dir, o->name);
        return 1;
    }
    return rc;
}

double course_std(const nb_real *v, size_t n) {
    if (n < 1) return 0;
    double mean = 0, ss = 0;
    for (size_t i = 0; i < n; i++) mean += v[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) ss += ((double)v[i] - mean) * ((double)v[i] - mean);
    return sqrt(ss / (double)n);
}

double course_slope(const double *x, const double *y, int n) {
    double mx = 0, my = 0, sxy = 0, sxx = 0;
    for (int i = 0; i < n; i++) mx += x[i], my += y[i];
    mx /= n, my /= n;
    for (int i = 0; i < n; i++) sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx);
    return sxx > 0 ? sxy / sxx : 0;
}

int course_least_squares(const double *a, const double *y, int m, int p, double *z) {
    enum { PMAX = 16 };
    double A[PMAX][PMAX] = {{0}}, r[PMAX] = {0}, L[PMAX][PMAX] = {{0}}, t[PMAX];
    if (p < 1 || p > PMAX) return 0;
    for (int k = 0; k < m; k++)
        for (int i = 0; i < p; i++) {
            r[i] += a[k * p + i] * y[k];
            for (int j = 0; j < p; j++) A[i][j] += a[k * p + i] * a[k * p + j];
        }
    /* A = L L^T, then L t = r and L^T z = t */
    for (int i = 0; i < p; i++)
        for (int j = 0; j <= i; j++) {
            double s = A[i][j];
            for (int k = 0; k < j; k++) s -= L[i][k] * L[j][k];
            if (i == j) {
                if (s <= 1e-12 * (A[i][i] > 0 ? A[i][i] : 1)) return 0;
                L[i][i] = sqrt(s);
            } else {
                L[i][j] = s / L[j][j];
            }
        }
    for (int i = 0; i < p; i++) {
        double s = r[i];
        for (int k = 0; k < i; k++) s -= L[i][k] * t[k];
        t[i] = s / L[i][i];
    }
    for (int i = p - 1; i >= 0; i--) {
        double s = t[i];
        for (int k = i + 1; k < p; k++) s -= L[k][i] * z[k];
        z[i] = s / L[i][i];
    }
    return 1;
}

nb_status course_fit(nb_graph *g, const nb_fit_config *cfg, const nb_optim_config *oc,
                     const nb_real *x, const nb_real *y, size_t n, size_t x_size) {
    nb_data data;
    nb_status s = nb_data_from_reals(x, y, n, x_size, 1, &data);
    if (s != NB_OK) return s;
    nb_fit_config c = *cfg;
    c.optimizer = nb_optim_new(oc, nb_param_count(g));
    s = c.optimizer ? nb_fit(g, &c, &data, NULL, NULL) : NB_ERR_ARG;
    nb_optim_free(c.optimizer);
    nb_data_free(&data);
    return s;
}
