/* Evaluation reports from predictions and targets: a classifier's confusion
 * matrix, per-class precision, recall and F1 and top-k accuracy, or a
 * regression model's MAE, RMSE and R^2 (definitions: docs/metrics.md). */
#include "train.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Running sums of regression output j: sums[N_SUMS j ...]. */
enum { SUM_ABS, SUM_SQ, Y_SHIFT, Y_MEAN, Y_M2, N_SUMS };

nb_status nb_report_init(nb_report *r, int n_classes, int top_k, size_t n_outputs) {
    const char *fn = "nb_report_init";
    if (!r) return nb_err(NB_ERR_ARG, "%s: report is NULL", fn);
    memset(r, 0, sizeof *r);
    r->loss = r->mae = r->rmse = r->r2 = NAN;
    r->top_k_accuracy = -1;
    if (n_classes < 0 || n_classes == 1)
        return nb_err(NB_ERR_ARG, "%s: %d classes; expected 0 (regression) or at least 2", fn,
                      n_classes);
    if (n_classes == 0 && top_k != 0)
        return nb_err(NB_ERR_ARG, "%s: top_k %d needs classes (a regression report has none)",
                      fn, top_k);
    if (top_k < 0 || top_k > n_classes)
        return nb_err(NB_ERR_ARG, "%s: top_k %d is not in 0 .. %d (the classes)", fn, top_k,
                      n_classes);
    if (n_classes == 0 && (n_outputs == 0 || n_outputs > SIZE_MAX / sizeof(double) / 8))
        return nb_err(NB_ERR_ARG, "%s: %zu outputs per sample; expected at least 1", fn,
                      n_outputs);
    size_t k = (size_t)n_classes;
    if (k && k > SIZE_MAX / sizeof(size_t) / k)
        return nb_err(NB_ERR_NOMEM, "%s: a confusion matrix of %d classes is too large", fn,
                      n_classes);
    if (k) {
        r->confusion = calloc(k * k, sizeof *r->confusion);
        r->per_class = calloc(k, sizeof *r->per_class);
    } else {
        r->mae_out = calloc((3 + N_SUMS) * n_outputs, sizeof *r->mae_out);
    }
    if (k ? !r->confusion || !r->per_class : !r->mae_out) {
        nb_report_free(r);
        return nb_err(NB_ERR_NOMEM, "%s: out of memory", fn);
    }
    r->n_classes = n_classes;
    r->top_k = top_k;
    r->n_outputs = k ? k : n_outputs;
    if (!k) {
        r->rmse_out = r->mae_out + n_outputs;
        r->r2_out = r->rmse_out + n_outputs;
        r->sums = r->r2_out + n_outputs;
    }
    return NB_OK;
}

void nb_report_free(nb_report *r) {
    if (!r) return;
    free(r->confusion);
    free(r->per_class);
    free(r->mae_out); /* also holds rmse_out, r2_out and sums */
    memset(r, 0, sizeof *r);
}

/* Is the true class t among the k highest scores of s?  Ranked by score,
 * equal scores by class index (the lower first, as argmax picks), so k = 1
 * is the accuracy.  A NaN score of the true class is never a hit. */
static int in_top_k(const nb_real *s, size_t classes, size_t t, int k) {
    nb_real v = s[t];
    if (v != v) return 0;
    size_t above = 0;
    for (size_t j = 0; j < classes && above < (size_t)k; j++)
        if (s[j] > v || (j < t && s[j] == v)) above++;
    return above < (size_t)k;
}

static nb_status add_classes(nb_report *r, const nb_real *out, const nb_real *target,
                             size_t rows, size_t ts) {
    size_t k = (size_t)r->n_classes;
    for (size_t i = 0; i < rows; i++) {
        const nb_real *s = out + i * k, *y = target + i * ts;
        size_t t;
        if (ts == 1) {
            double v = (double)y[0];
            if (!(v >= 0 && v < (double)k && v == floor(v)))
                return nb_err(NB_ERR_ARG, "nb_report_add: sample %zu: target %g is not a "
                              "class index 0 .. %zu", r->n + i, v, k - 1);
            t = (size_t)v;
        } else {
            t = nb__argmax(y, k);
        }
        r->confusion[t * k + nb__argmax(s, k)]++;
        if (r->top_k) r->top_k_correct += (size_t)in_top_k(s, k, t, r->top_k);
    }
    return NB_OK;
}

/* Sums of absolute and squared errors, and the targets' running mean and sum
 * of squared deviations: Welford's update of the targets minus the first
 * one, so targets far from zero with a small spread keep their digits. */
static void add_regression(nb_report *r, const nb_real *out, const nb_real *target,
                           size_t rows) {
    size_t m = r->n_outputs;
    for (size_t i = 0; i < rows; i++) {
        double count = (double)(r->n + i + 1);
        for (size_t j = 0; j < m; j++) {
            double y = (double)target[i * m + j], e = y - (double)out[i * m + j];
            double *s = r->sums + N_SUMS * j;
            if (r->n + i == 0) s[Y_SHIFT] = y;
            s[SUM_ABS] += fabs(e);
            s[SUM_SQ] += e * e;
            double ys = y - s[Y_SHIFT], d = ys - s[Y_MEAN];
            s[Y_MEAN] += d / count;
            s[Y_M2] += d * (ys - s[Y_MEAN]);
        }
    }
}

nb_status nb_report_add(nb_report *r, const nb_real *out, const nb_real *target, size_t rows,
                        size_t target_size) {
    const char *fn = "nb_report_add";
    if (!r || !r->n_outputs) return nb_err(NB_ERR_ARG, "%s: the report is not started", fn);
    if (rows && (!out || !target)) return nb_err(NB_ERR_ARG, "%s: out or target is NULL", fn);
    if (r->n_classes && target_size != 1 && target_size != r->n_outputs)
        return nb_err(NB_ERR_ARG, "%s: target_size %zu; expected 1 (class index) or %zu "
                      "(probabilities)", fn, target_size, r->n_outputs);
    if (!r->n_classes && target_size != r->n_outputs)
        return nb_err(NB_ERR_ARG, "%s: target_size %zu; expected %zu (one target per output)",
                      fn, target_size, r->n_outputs);
    if (r->n_classes) {
        nb_status s = add_classes(r, out, target, rows, target_size);
        if (s != NB_OK) return s;
    } else {
        add_regression(r, out, target, rows);
    }
    r->n += rows;
    return NB_OK;
}

/* Precision, recall and F1 of one class from its counts; 0/0 gives 0 and a flag. */
static void class_figures(nb_class_metrics *c, size_t tp) {
    c->zero_division = 0;
    c->precision = c->predicted ? (double)tp / (double)c->predicted : 0;
    c->recall = c->support ? (double)tp / (double)c->support : 0;
    c->f1 = c->support + c->predicted
                ? 2.0 * (double)tp / (double)(c->support + c->predicted) : 0;
    if (!c->predicted) c->zero_division |= NB_ZERO_DIV_PRECISION;
    if (!c->support) c->zero_division |= NB_ZERO_DIV_RECALL;
    if (!c->support && !c->predicted) c->zero_division |= NB_ZERO_DIV_F1;
}

static void finish_classes(nb_report *r) {
    size_t k = (size_t)r->n_classes, n = r->n;
    nb_class_metrics avg = {0}, wavg = {0};
    r->correct = 0;
    for (size_t c = 0; c < k; c++) {
        nb_class_metrics *m = &r->per_class[c];
        m->support = m->predicted = 0;
        for (size_t j = 0; j < k; j++) {
            m->support += r->confusion[c * k + j];
            m->predicted += r->confusion[j * k + c];
        }
        size_t tp = r->confusion[c * k + c];
        r->correct += tp;
        class_figures(m, tp);
        avg.precision += m->precision;
        avg.recall += m->recall;
        avg.f1 += m->f1;
        wavg.precision += (double)m->support * m->precision;
        wavg.recall += (double)m->support * m->recall;
        wavg.f1 += (double)m->support * m->f1;
        avg.zero_division |= m->zero_division;
    }
    r->macro = (nb_class_metrics){avg.precision / (double)k, avg.recall / (double)k,
                                  avg.f1 / (double)k, n, n, avg.zero_division};
    r->weighted = (nb_class_metrics){wavg.precision / (double)n, wavg.recall / (double)n,
                                     wavg.f1 / (double)n, n, n, avg.zero_division};
    r->zero_division = avg.zero_division;
    r->accuracy = (double)r->correct / (double)n;
    r->top_k_accuracy = r->top_k ? (double)r->top_k_correct / (double)n : -1;
}

/* R^2 of one output: 1 - SS_res / SS_tot; constant targets give 1 when
 * predicted exactly, else 0 (scikit-learn's force_finite); NaN below 2 samples. */
static double r2_of(const double *s, size_t n) {
    if (n < 2) return NAN;
    if (s[Y_M2] == 0) return s[SUM_SQ] == 0 ? 1 : 0;
    return 1 - s[SUM_SQ] / s[Y_M2];
}

static void finish_regression(nb_report *r) {
    size_t m = r->n_outputs;
    double n = (double)r->n, mae = 0, mse = 0, r2 = 0;
    for (size_t j = 0; j < m; j++) {
        const double *s = r->sums + N_SUMS * j;
        r->mae_out[j] = s[SUM_ABS] / n;
        r->rmse_out[j] = sqrt(s[SUM_SQ] / n);
        r->r2_out[j] = r2_of(s, r->n);
        mae += r->mae_out[j];
        mse += s[SUM_SQ] / n;
        r2 += r->r2_out[j];
    }
    r->mae = mae / (double)m;
    r->rmse = sqrt(mse / (double)m);
    r->r2 = r2 / (double)m;
}

nb_status nb_report_finish(nb_report *r) {
    if (!r || !r->n_outputs) return nb_err(NB_ERR_ARG, "nb_report_finish: the report is not "
                                           "started");
    if (!r->n) return nb_err(NB_ERR_ARG, "nb_report_finish: no samples were counted");
    if (r->n_classes) finish_classes(r);
    else finish_regression(r);
    return NB_OK;
}
